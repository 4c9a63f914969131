// mock_wechat/push.hpp - the component_verify_ticket push over HTTP (DESIGN.md, "Contract:
// the ticket push"): what WeChat's servers do every 10 minutes for each third-party
// platform (notes-issue17.md section 2.1).
//
//   POST <ticket_url>?signature=..&timestamp=T&nonce=N&encrypt_type=aes&msg_signature=S
//   Content-Type: text/xml
//   <xml><AppId><![CDATA[component_appid]]></AppId><Encrypt><![CDATA[...]]></Encrypt></xml>
//
// encrypted with wechat::msg_crypt (the library's, so the mock encrypts as the client
// decrypts). `signature` is in the query too, as in a live push logged in 2016 (WuJiY/
// wechat-open-wxbiz): receivers built on silenceper/wechat check it first. WeChat waits 5
// seconds for the answer, which must be exactly "success" (its troubleshooting guide,
// read 2026:
// https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/troubleshooting/component_verify_ticket_troubleshooting.html).
//
// A push is delivered with no lock of the world held (the receiver may call the mock
// back): the world hands out the push (its ticket minted), deliver() does the HTTP, the
// world records what came of it. The receiver's TLS certificate is not verified: the mock
// pushes test data to test receivers, often with self-signed certificates.
#pragma once

#include <httplib.h>
#include <wechat/msg_crypt.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// The inner XML of a ticket push (decrypted, the receiver reads these four fields).
inline std::string ticket_push_xml(const ticket_push& p) {
  return "<xml><AppId><![CDATA[" + p.component_appid + "]]></AppId><CreateTime>" +
         std::to_string(p.create_time) +
         "</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType>"
         "<ComponentVerifyTicket><![CDATA[" +
         p.ticket + "]]></ComponentVerifyTicket></xml>";
}

/// Delivers one push and says what came of it (at: the ticket's CreateTime). Never throws
/// for a delivery failure: the record's `error` says why nothing came back.
inline push_record deliver_push(const ticket_push& p) {
  push_record r;
  r.at = p.create_time;
  if (p.ticket_url.empty()) {
    r.error = "no ticket_url";
    return r;
  }
  std::string base, target;
  if (!detail::split_url(p.ticket_url, base, target)) {  // checked at registration
    r.error = "ticket_url is not an http:// or https:// URL";
    return r;
  }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (base.rfind("https://", 0) == 0) {
    r.error = "https ticket_url: this build of cpp-httplib has no TLS";
    return r;
  }
#endif
  std::error_code ec;
  const wechat::msg_crypt crypt(p.token, p.encoding_aes_key, p.component_appid, ec);
  const std::string nonce = std::to_string(1000000000 + detail::rng()() % 9000000000ULL);
  wechat::encrypted_message m;
  if (!ec) m = crypt.encrypt(ticket_push_xml(p), std::to_string(p.create_time), nonce, ec);
  if (ec) {  // the configuration was checked at registration: not expected
    r.error = "encryption failed: " + ec.message();
    return r;
  }
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += m.push_query();
  httplib::Client cli(base);
  cli.set_connection_timeout(limits::push_timeout_s, 0);
  cli.set_read_timeout(limits::push_timeout_s, 0);
  cli.set_write_timeout(limits::push_timeout_s, 0);
  cli.set_keep_alive(false);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  cli.enable_server_certificate_verification(false);
#endif
  const auto res = cli.Post(target.c_str(), m.push_xml(), "text/xml");
  if (!res) {
    const auto e = res.error();
    r.error = e == httplib::Error::Connection          ? "connection refused"
              : e == httplib::Error::ConnectionTimeout ? "connection timed out"
              : e == httplib::Error::Read              ? "no answer within 5 s (or a read error)"
              : e == httplib::Error::SSLConnection     ? "TLS handshake failed"
                                                       : "HTTP error: " + httplib::to_string(e);
    return r;
  }
  r.ticket_pushed = true;
  r.answer = res->body.substr(0, 256);
  return r;
}

/// Delivers `p` and records the result in the world. Returns the record.
inline push_record push_and_record(world& w, const ticket_push& p) {
  push_record r = deliver_push(p);
  w.record_push(p.component_appid, r);
  return r;
}

/// Makes the pushes due now (every 10 virtual minutes per platform), one after the other,
/// each delivered and recorded, with no lock held while they travel. Returns how many were
/// made. `stopping`, when given, is checked between deliveries (a server being stopped
/// does not wait for every platform's receiver).
inline std::size_t run_due_pushes(world& w, const std::atomic<bool>* stopping = nullptr) {
  const std::vector<ticket_push> due =
      w.push_flights().claim([&w] { return w.due_ticket_pushes(); });
  std::size_t made = 0;
  for (std::size_t i = 0; i < due.size(); ++i) {
    try {
      if (stopping == nullptr || !stopping->load()) {
        push_and_record(w, due[i]);
        ++made;
      }
    } catch (...) {  // out of memory: none of the claimed pushes is left counted in flight
      w.push_flights().landed(due.size() - i);
      throw;
    }
    w.push_flights().landed(1);
  }
  return made;
}

/// What a clock call does before it answers: the pushes the new time makes due, then a
/// wait for any the pusher thread claimed a moment before (at most one push's timeouts,
/// connect and read), so that a test advancing the clock finds them delivered.
inline void run_due_pushes_and_wait(world& w) {
  run_due_pushes(w);
  w.push_flights().wait_idle(std::chrono::seconds(2 * limits::push_timeout_s + 1));
}

}  // namespace mock_wechat
