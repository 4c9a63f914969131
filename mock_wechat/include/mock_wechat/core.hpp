// mock_wechat/core.hpp - the mock's answers, knowing no HTTP engine: a function from a
// request (method, target, headers, body, peer) to a response (status, type, body, and
// when to send it: now, after a delay, cut short or not at all). Every engine
// (detail/event_engine.hpp, detail/httplib_engine.hpp) calls it, so every engine gives the
// same answers; an engine only frames them (status line, Content-Length, keep-alive).
//
// What it decides, in order:
//  - /__mock: the admin API (admin.hpp), behind the admin token when one is set;
//  - anything else: a WeChat endpoint (api.hpp), after the fault table (faults.hpp) had
//    its say; counted in stats and kept in the journal (observe.hpp).
//
// Delays: the answer is computed when the request arrives and *sent* after the delay (the
// global latency, `--latency`, plus a fault's delay_ms and latency). An engine then holds only bytes while it
// waits, never a thread or a piece of the world. Stats and the journal record the time
// the answer took to compute plus the delay it was given.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <wechat/detail/api_response.hpp>
#include <wechat/crypto.hpp>

#include "mock_wechat/admin.hpp"
#include "mock_wechat/api.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/latency.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/query.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// One header field as received.
struct http_header {
  std::string_view name, value;
};

/// A request as an engine read it. Every view stays valid while core::handle runs.
struct http_request {
  std::string_view method;  ///< as sent: "GET", "POST", "HEAD", "DELETE"...
  std::string_view target;  ///< origin-form, undecoded: "/path?query"
  const http_header* headers = nullptr;
  std::size_t header_count = 0;
  std::string_view body;  ///< the whole body (de-chunked); empty when none came
  std::string_view peer;  ///< the client's address ("127.0.0.1"), empty when unknown

  /// The first value of header `name` (any case), or empty.
  std::string_view header(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < header_count; ++i) {
      const std::string_view n = headers[i].name;
      if (n.size() != name.size()) continue;
      bool same = true;
      for (std::size_t k = 0; k < n.size() && same; ++k)
        same = (n[k] | 0x20) == (name[k] | 0x20);
      if (same) return headers[i].value;
    }
    return {};
  }
};

/// How an answer leaves the connection.
enum class connection_fault : std::uint8_t {
  none,      ///< answered; the connection may stay open
  truncate,  ///< `body` is sent, `length` is announced, then the connection closes
  drop,      ///< nothing is sent; the connection closes
};

/// An answer, before framing.
struct http_response {
  int status = 200;
  std::string content_type;
  std::string body;        ///< for truncate: the part that is sent
  std::size_t length = 0;  ///< the Content-Length to announce (body.size() but when truncated)
  std::int64_t delay_us = 0;  ///< send it this much later (0: now)
  connection_fault fault = connection_fault::none;
};

/// The content type of every answer the mock writes itself (admin API, framing errors).
inline constexpr const char* json_type = "application/json; charset=UTF-8";

/// What an engine answers when it cannot read a request (framing, limits): JSON naming
/// the problem. Every engine sends these bodies, so clients see the same words.
inline http_response framing_error(int status) {
  http_response r;
  r.status = status;
  r.content_type = json_type;
  const char* what = status == 400   ? "bad request"
                     : status == 404 ? "not found"
                     : status == 413 ? "request body too large"
                     : status == 414 ? "request URI too long"
                     : status == 417 ? "expectation not supported: only 100-continue"
                     : status == 431 ? "request headers too large"
                     : status == 501 ? "transfer coding not supported: only chunked"
                     : status == 503 ? "server busy: too many unfinished requests"
                     : status == 505 ? "HTTP version not supported: HTTP/1.1 or HTTP/1.0"
                                     : "bad request";
  r.body = nlohmann::json{{"error", what}}.dump();
  r.length = r.body.size();
  return r;
}

/// A path percent-decoded as HTTP servers decode paths ('+' stays a '+'); a '%' not
/// followed by two hex digits stays as it is.
inline std::string decode_path(std::string_view path) {
  std::string r;
  r.reserve(path.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && hex(path[i + 1]) >= 0 &&
        hex(path[i + 2]) >= 0) {
      r.push_back(static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2])));
      i += 2;
    } else {
      r.push_back(path[i]);
    }
  }
  return r;
}

/// The mock's answers: shared by every engine, thread-safe.
class core {
public:
  /// `latency`: drawn for every WeChat endpoint's answer (never the admin API's), from
  /// `seed`'s stream (latency.hpp).
  core(world& w, fault_table& f, journal& j, stats_table& s, std::string admin_token,
       latency_spec latency = {}, std::uint64_t seed = random_seed())
      : world_(w), faults_(f), journal_(j), stats_(s), api_(w), admin_(w, f, j, s),
        admin_token_(std::move(admin_token)), latency_(latency, seed) {
    api_.set_journal(&journal_);  // openapi/rid/get answers from it
  }

  /// The latency every WeChat endpoint's answer gets.
  const latency_spec& latency() const noexcept { return latency_.spec(); }

  /// The answer to `req`. Never throws: a failure inside is WeChat's -1 with HTTP 500.
  http_response handle(const http_request& req) noexcept {
    try {
      return answer(req);
    } catch (...) {
      http_response r;
      r.status = 500;
      r.content_type = json_type;
      r.body = system_error_body();
      r.length = r.body.size();
      return r;
    }
  }

  /// Whether an Authorization header value carries `token` in the Bearer scheme: the
  /// scheme's name in any case (RFC 7235 section 2.1: "bearer", "BEARER"), one or more
  /// spaces, then the token compared in constant time.
  static bool bearer_matches(std::string_view authorization, std::string_view token) noexcept {
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i)
      if ((authorization[i] | 0x20) != scheme[i]) return false;
    std::size_t at = scheme.size();
    if (authorization[at] != ' ') return false;
    while (at < authorization.size() && authorization[at] == ' ')
      ++at;
    return wechat::constant_time_equal(authorization.substr(at), token);
  }

  /// Whether `path` (decoded) is the admin API's.
  static bool is_admin_path(std::string_view path) noexcept {
    return path.compare(0, 7, "/__mock") == 0 && (path.size() == 7 || path[7] == '/');
  }

private:
  http_response answer(const http_request& req) {
    const std::string_view target = req.target;
    const std::size_t q = target.find_first_of("?#");
    const std::string path = decode_path(target.substr(0, q));
    // HEAD is GET without the body, which the engine leaves out.
    const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : req.method;
    if (is_admin_path(path)) return answer_admin(req, method, path);
    return answer_api(req, method, path);
  }

  http_response answer_admin(const http_request& req, std::string_view method,
                             const std::string& path) {
    http_response r;
    r.content_type = json_type;
    if (!admin_token_.empty() && !bearer_matches(req.header("Authorization"), admin_token_)) {
      r.status = 401;
      r.body = "{\"error\":\"the admin API needs Authorization: Bearer <admin token>\"}";
    } else {
      const params query = parse_query(req.target);
      auto a = admin_.handle(method, path, req.body, &query);
      r.status = a.status;
      r.body = std::move(a.body);
    }
    r.length = r.body.size();
    return r;
  }

  // A request to a WeChat endpoint, faults, stats and journal included.
  http_response answer_api(const http_request& req, std::string_view method,
                           const std::string& path) {
    const auto start = std::chrono::steady_clock::now();
    http_response r;
    api_response out;
    std::string_view fault_kind;
    r.delay_us = latency_.draw_us();  // 0 when there is none
    if (auto f = faults_.take(path)) {
      r.delay_us = std::min(r.delay_us + faults_.delay_us(*f), 2 * max_latency_us);
      fault_kind = apply_fault(*f, path, out, r.fault);
    }
    const params query = parse_query(req.target);
    if (fault_kind.empty() || fault_kind == "delay" || fault_kind == "content_type") {
      const api_request q{method, path, &query, req.body};
      const std::string forced_type = std::move(out.content_type);
      out = api_.handle(q);
      if (fault_kind == "content_type") out.content_type = forced_type;
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count() +
                    r.delay_us;
    const int status = r.fault == connection_fault::drop ? 200 : out.status;
    stats_.of(path).add(out.errcode, status, us);
    if (journal_.enabled()) record(req, path, query, status, out, us, fault_kind);
    r.status = out.status;
    r.content_type = std::move(out.content_type);
    r.body = std::move(out.body);
    r.length = r.body.size() + (r.fault == connection_fault::truncate ? truncated_missing : 0);
    return r;
  }

  static constexpr std::size_t truncated_missing = 64;  // bytes promised but never sent

  // Applies a fault (other than a pure delay) to the answer. Returns its kind.
  std::string_view apply_fault(const fault& f, std::string_view path, api_response& out,
                               connection_fault& end) {
    if (f.errcode) {
      out = api_.error(path, *f.errcode);
      return "errcode";
    }
    out.status = 200;
    out.content_type = wechat_api::content_type(path);
    if (f.http_status) {
      out.status = *f.http_status;
      out.content_type = "text/html";
      out.body = "<html><head><title>" + std::to_string(*f.http_status) +
                 "</title></head><body><center><h1>" + std::to_string(*f.http_status) +
                 "</h1></center><hr><center>nginx</center></body></html>";
      return "http_status";
    }
    if (f.malformed) {
      out.body = system_error_body().substr(0, system_error_body().size() - 4);  // cut short
      return "malformed";
    }
    if (f.oversized) {
      out.body = system_error_body();
      out.body.replace(out.body.size() - 1, 1, ",\"padding\":\"");  // {...,"padding":"x..."}
      out.body.append(f.oversized > out.body.size() + 2 ? f.oversized - out.body.size() - 2 : 0,
                      'x');
      out.body += "\"}";
      out.errcode = static_cast<int>(wechat::api_errc::system_busy);
      return "oversized";
    }
    if (f.drop || f.truncated) {
      out.body = "{\"session_key\":\"";  // the part a truncated answer sends
      end = f.drop ? connection_fault::drop : connection_fault::truncate;
      return f.drop ? "drop" : "truncated";
    }
    if (!f.content_type.empty()) {
      out.content_type = f.content_type;
      return "content_type";
    }
    return "delay";
  }

  void record(const http_request& req, std::string_view path, const params& query, int status, const api_response& out, std::int64_t us,
              std::string_view fault_kind) {
    const std::int64_t now = world_.now();
    // An answer with a rid (an error) keeps what openapi/rid/get tells its app about it.
    const std::string rid = out.errcode != 0 && out.status == 200
                                ? wechat::detail::extract_rid(out.body)
                                : std::string();
    std::string appid;
    if (!rid.empty()) appid = caller_appid(query, req.body);
    journal_.record([&](journal_entry& e) {
      e.time = now;
      e.keep_request(req.method, path, req.target, req.body);
      e.status = status;
      e.errcode = out.errcode;
      e.latency_us = us;
      e.fault.assign(fault_kind);
      e.keep_answer(rid, appid, rid.empty() ? std::string_view() : req.peer, out.body);
    });
  }

  // Whose call it was: the app of its access_token (valid or not), else the appid it
  // names in the query or the JSON body; empty when it names none.
  std::string caller_appid(const params& query, std::string_view body) {
    if (const auto* t = first_param(query, "access_token"); t != nullptr && !t->empty())
      return world_.token_appid(*t);
    if (const auto* a = first_param(query, "appid")) return *a;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object())
      if (const auto it = j.find("appid"); it != j.end() && it->is_string())
        return it->get<std::string>();
    return {};
  }

  world& world_;
  fault_table& faults_;
  journal& journal_;
  stats_table& stats_;
  wechat_api api_;
  admin_api admin_;
  std::string admin_token_;
  latency_source latency_;
};

}  // namespace mock_wechat
