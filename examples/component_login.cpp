// component_login: a third-party platform's backend (an Open Platform "component") that logs
// in the users of the mini programs that authorized it. Copy it.
//
//   component_login --component-appid C [--api-base URL] [--ca-file F] [--port 8083]
//                   [--redis HOST:PORT] [--redis-prefix P]
//                   [--wecom-corpid ID] [--wecom-api-base URL]
//   secrets from the environment (never on the command line, where `ps` shows them):
//     WECHAT_COMPONENT_SECRET    the platform's AppSecret
//     WECHAT_COMPONENT_TOKEN     the message-check token set in the platform's console
//     WECHAT_COMPONENT_AES_KEY   the 43-character EncodingAESKey set beside it
//     WECHAT_WECOM_SECRET        with --wecom-corpid: the secret of the WeCom application
//                                linked to the corp's mini program
//
// WeChat pushes a component_verify_ticket to the platform's "authorization event URL" every
// 10 minutes (encrypted); the platform needs the latest one to get its component_access_token,
// and that token to exchange its mini programs' login codes. So the ticket is state that must
// outlive a restart and be shared by every server of the platform: with --redis it lives in
// Redis (key <prefix>component_verify_ticket:<component_appid>), which a restart or a second
// server finds; without, in memory, and a restart waits up to 10 minutes for the next push.
// --api-base: https://api.weixin.qq.com (default), or a standalone mock_wechat.
// Prints one line "component_login listening on http://HOST:PORT".
//
//   POST /wechat/component   WeChat's push (the authorization event URL): the query carries
//        timestamp, nonce, encrypt_type=aes, msg_signature; the body is the encrypted XML.
//     -> 200 "success" once verified, decrypted and stored; 400 otherwise (WeChat retries).
//   POST /login {"appid","code"}   a user of an authorized mini program (wx.login's code)
//     -> 200 {"appid","openid","unionid"?}
//   POST /authorizers {"appid","authorizer_refresh_token"}   what the authorization flow
//        (api_query_auth) hands the platform, kept in the store; an authorizer token is
//        fetched with it once, to check it. An internal call: in production, behind your
//        own authentication (or done where api_query_auth is called)
//     -> 200 {"appid","authorized":true}
//   POST /wecom/login {"code"}   with --wecom-corpid: a WeCom mini program's user (the code
//        of wx.qy.login), through qyapi.weixin.qq.com (--wecom-api-base: or a mock_wechat)
//     -> 200 {"corpid","userid"}
//   GET  /health -> 200 {"ticket":true|false,"ticket_age_s"?}
//   Errors: {"error": stable name, "message": what happened and what to do}, with 400 (bad
//   request), 401 (a code WeChat refused), 403 (the mini program has not authorized this
//   platform: 61003), 503 (no usable ticket yet: 61005, 61006, or none received) or 502
//   (WeChat unreachable or failing).
//
// The session_key stays here: a real backend keeps it with its own session (see
// login_server.cpp for that part) and never sends it to the device.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>
#include <wechat/component.hpp>
#include <wechat/store/redis.hpp>
#include <wechat/transport/httplib.hpp>
#include <wechat/wecom.hpp>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace {

const char* usage =
    "usage: component_login --component-appid C [--api-base URL] [--ca-file F] [--port 8083]\n"
    "                       [--redis HOST:PORT] [--redis-prefix P]\n"
    "                       [--wecom-corpid ID] [--wecom-api-base URL]\n"
    "  WECHAT_COMPONENT_SECRET, WECHAT_COMPONENT_TOKEN, WECHAT_COMPONENT_AES_KEY: from the\n"
    "  environment (the platform's AppSecret, message token and EncodingAESKey);\n"
    "  WECHAT_WECOM_SECRET with --wecom-corpid\n";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

void answer(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// What went wrong, in words: the library's message, WeChat's own errmsg (with its rid, for a
// support ticket) or the transport's cause.
std::string describe(const std::error_code& ec, const wechat::error_detail& d) {
  std::string out = ec.message();
  if (!d.errmsg.empty()) out += " (WeChat: " + d.errmsg + ")";
  if (!d.cause.empty()) out += " (" + d.cause + ")";
  return out;
}

// An error as the device's backend answers it: a stable name and what to do. No secret,
// ticket or token is in any message the library writes.
void fail(httplib::Response& res, const std::error_code& ec, const wechat::error_detail& d) {
  int status = 502;
  std::string hint;
  if (ec == wechat::api_errc::component_not_authorized) {
    status = 403;
    hint = "this mini program has not authorized the platform";
  } else if (ec == wechat::api_errc::component_ticket_expired ||
             ec == wechat::api_errc::component_ticket_invalid ||
             ec == wechat::component_errc::no_ticket) {
    status = 503;
    hint = "no usable component_verify_ticket: WeChat pushes one every 10 minutes";
  } else if (ec == wechat::api_errc::invalid_code || ec == wechat::api_errc::code_been_used) {
    status = 401;
    hint = "log in again on the device (wx.login)";
  }
  std::string message = describe(ec, d);
  if (!hint.empty()) message += " (" + hint + ")";
  answer(res, status, {{"error", wechat::error_name(ec)}, {"message", message}});
}

// The body's string field, or "" (and a 400 answered) when it is missing.
std::string field(const nlohmann::json& j, const char* name, httplib::Response& res) {
  const auto it = j.find(name);
  if (it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
    return it->get<std::string>();
  answer(res, 400, {{"error", "bad_request"}, {"message", std::string("missing field ") + name}});
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  // Stop on SIGINT/SIGTERM: blocked here, before any thread exists (every thread inherits
  // the mask), and waited for by one thread, which then stops the server.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::string component_appid, api_base = "https://api.weixin.qq.com", ca_file, redis,
                               redis_prefix = "wechat:", wecom_corpid,
                               wecom_api_base = "https://qyapi.weixin.qq.com";
  int port = 8083;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "component_login: " << a << " needs a value\n" << usage;
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--component-appid")
      component_appid = v;
    else if (a == "--api-base")
      api_base = v;
    else if (a == "--ca-file")
      ca_file = v;
    else if (a == "--redis")
      redis = v;
    else if (a == "--redis-prefix")
      redis_prefix = v;
    else if (a == "--wecom-corpid")
      wecom_corpid = v;
    else if (a == "--wecom-api-base")
      wecom_api_base = v;
    else if (a == "--port")
      port = std::atoi(v.c_str());
    else {
      std::cerr << "component_login: unknown option " << a << "\n" << usage;
      return 2;
    }
  }
  wechat::component_options opt;
  opt.component_appid = component_appid;
  opt.component_secret = env("WECHAT_COMPONENT_SECRET");
  opt.token = env("WECHAT_COMPONENT_TOKEN");
  opt.encoding_aes_key = env("WECHAT_COMPONENT_AES_KEY");
  if (opt.component_appid.empty() || opt.component_secret.empty() || opt.token.empty() ||
      opt.encoding_aes_key.empty()) {
    std::cerr << usage;
    return 2;
  }

  // The store: Redis for a platform that restarts or runs on several servers.
  std::shared_ptr<wechat::token_store> store;
  if (!redis.empty()) {
    wechat::redis_options ro;
    const auto colon = redis.rfind(':');
    ro.host = redis.substr(0, colon);
    if (colon != std::string::npos) ro.port = std::atoi(redis.c_str() + colon + 1);
    ro.prefix = redis_prefix;
    store =
        std::make_shared<wechat::redis_token_store>(std::make_shared<wechat::redis_connection>(ro));
  } else {
    std::cerr << "component_login: no --redis: the ticket is kept in memory; after a restart "
                 "logins wait for WeChat's next push (up to 10 minutes)\n";
  }
  wechat::httplib_transport_options topt;
  topt.base_url = api_base;
  topt.ca_file = ca_file;
  std::shared_ptr<wechat::component_client> platform;
  std::shared_ptr<wechat::wecom_client> wecom;
  try {
    platform = std::make_shared<wechat::component_client>(
        opt, wechat::httplib_transport::create(topt), store);
    if (!wecom_corpid.empty()) {
      wechat::wecom_options wo;
      wo.corpid = wecom_corpid;
      wo.corpsecret = env("WECHAT_WECOM_SECRET");
      if (wo.corpsecret.empty()) {
        std::cerr << "component_login: --wecom-corpid needs WECHAT_WECOM_SECRET\n" << usage;
        return 2;
      }
      auto wt = topt;
      wt.base_url = wecom_api_base;
      wecom =
          std::make_shared<wechat::wecom_client>(wo, wechat::httplib_transport::create(wt), store);
    }
  } catch (const std::exception& e) {  // a bad --api-base, or an EncodingAESKey of the wrong size
    std::cerr << "component_login: " << e.what() << "\n";
    return 2;
  }

  httplib::Server http;
  http.set_payload_max_length(std::size_t{64} * 1024);
  http.set_read_timeout(5, 0);

  http.Post("/wechat/component", [&](const httplib::Request& req, httplib::Response& res) {
    std::map<std::string, std::string> query;
    for (const auto& [name, value] : req.params)
      query.emplace(name, value);
    std::error_code ec;
    wechat::error_detail d;
    wechat::component_push what;
    const std::string reply = platform->handle_push(query, req.body, ec, &d, &what);
    if (ec) {  // not from WeChat, or not for this platform: nothing was stored
      std::cerr << "component_login: push refused: " << describe(ec, d) << "\n";
      res.status = 400;
      res.set_content("refused", "text/plain");
      return;
    }
    std::cerr << "component_login: push " << what.info_type << " of " << what.create_time
              << (what.authorizer_appid.empty() ? "" : " for " + what.authorizer_appid) << "\n";
    res.set_content(reply, "text/plain");  // exactly "success", within WeChat's 5 seconds
  });

  http.Post("/login", [&](const httplib::Request& req, httplib::Response& res) {
    const auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (!j.is_object())
      return answer(res, 400, {{"error", "bad_request"}, {"message", "not JSON"}});
    const std::string appid = field(j, "appid", res);
    if (appid.empty()) return;
    const std::string code = field(j, "code", res);
    if (code.empty()) return;
    std::error_code ec;
    wechat::error_detail d;
    const auto s = platform->code2session(appid, code, ec, &d);
    if (ec) return fail(res, ec, d);
    nlohmann::json out = {{"appid", appid}, {"openid", s.openid}};
    if (s.unionid) out["unionid"] = *s.unionid;
    answer(res, 200, out);  // s.session_key stays on the server
  });

  http.Post("/authorizers", [&](const httplib::Request& req, httplib::Response& res) {
    const auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (!j.is_object())
      return answer(res, 400, {{"error", "bad_request"}, {"message", "not JSON"}});
    const std::string appid = field(j, "appid", res);
    if (appid.empty()) return;
    const std::string refresh = field(j, "authorizer_refresh_token", res);
    if (refresh.empty()) return;
    std::error_code ec;
    wechat::error_detail d;
    platform->set_authorizer_refresh_token(appid, refresh, ec);
    if (!ec) platform->authorizer_access_token(appid, ec, &d);
    if (ec) return fail(res, ec, d);
    answer(res, 200, {{"appid", appid}, {"authorized", true}});
  });

  http.Post("/wecom/login", [&](const httplib::Request& req, httplib::Response& res) {
    if (!wecom) return answer(res, 404, {{"error", "not_found"}, {"message", "no --wecom-corpid"}});
    const auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (!j.is_object())
      return answer(res, 400, {{"error", "bad_request"}, {"message", "not JSON"}});
    const std::string code = field(j, "code", res);
    if (code.empty()) return;
    std::error_code ec;
    wechat::error_detail d;
    const auto s = wecom->code2session(code, ec, &d);
    if (ec) return fail(res, ec, d);
    // A mini program linked to several corps may answer another corp's user: that user must
    // then be served with that corp's credentials (WeCom's docs).
    answer(res, 200, {{"corpid", s.corpid}, {"userid", s.userid}});
  });

  http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    std::error_code ec;
    const auto t = platform->ticket(ec);
    nlohmann::json out = {{"ticket", t.has_value()}};
    if (t) out["ticket_age_s"] = std::time(nullptr) - t->create_time;
    answer(res, ec ? 503 : 200, out);
  });

  const int bound = port == 0                              ? http.bind_to_any_port("127.0.0.1")
                    : http.bind_to_port("127.0.0.1", port) ? port
                                                           : -1;
  if (bound < 0) {
    std::cerr << "component_login: cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop, &sig);
    http.stop();
  });
  std::cout << "component_login listening on http://127.0.0.1:" << bound << std::endl;
  const bool served = http.listen_after_bind();  // returns once stopped, or on an error
  if (!served) ::kill(::getpid(), SIGTERM);      // the waiter then returns too
  waiter.join();
  return served ? 0 : 1;
}
