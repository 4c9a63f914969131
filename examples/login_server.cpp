// login_server: what a mini program backend looks like with this library. Copy it.
//
//   login_server --appid A --secret S [--api-base URL] [--ca-file F] [--port 8081]
//                [--mock-port P] [--session-ttl 86400] [--max-sessions 100000]
//                [--unionid-rules current|legacy]
//
// --unionid-rules: the rules the UnionID diagnosis assumes: current (default; WeChat since
// 2021-02-23, every user of a bound app gets it from code2session) or legacy (before it).
// Our own session tokens live --session-ttl seconds; beyond --max-sessions the oldest are
// forgotten first (a forgotten token answers 401 and the device logs in again).
// --appid/--secret may come from the environment instead (WECHAT_APPID, WECHAT_SECRET), which
// keeps the secret out of `ps`. Without --api-base it starts the embedded mock of
// api.weixin.qq.com (A/S registered as a mini program bound to an Open Platform account) and
// talks to it; its address, and that of its admin API for making login codes, go to stderr.
// With --api-base it talks to that base URL: a standalone mock_wechat, or
// https://api.weixin.qq.com. Prints one line "login_server listening on http://HOST:PORT".
//
//   POST /login    {"code"}  (from wx.login)
//     -> 200 {"token","openid","unionid"?}  token: our own opaque session token. The
//        session_key stays here and is never sent back.
//   POST /userinfo {"token","encryptedData","iv","rawData"?,"signature"?}  (wx.getUserInfo
//        or wx.getUserProfile: the latter has no ids inside, and since 2021-04-28 / 2022-11-08
//        both profiles are anonymous, "微信用户")
//     -> 200 {"user":{...decrypted, verified fields...},"unionid"?,"unionid_missing"?}
//   POST /unionid {"token","transaction_id"? | "mch_id"+"out_trade_no"?,"paid_at"?,
//                  "encryptedData"?,"iv"?,"rawData"?,"signature"?,"cloud"?}
//        every channel the backend has: the session, a payment (paid_at: Unix seconds of
//        the payment notification, default now; getPaidUnionId is asked only within 5
//        minutes of it), the device's user info, a cloud function's getWXContext()
//        ("cloud":{"OPENID","APPID","UNIONID"?})
//     -> 200 {"unionid","channel"} or 200 {"diagnosis":{"reason","why","next_step"}};
//        409 when the device data is from a newer login, 502/429 when WeChat failed
//   Errors: {"error": stable name, "message": what happened and what to do}, with 400 (bad
//   request), 401 (unknown token, or a code WeChat refused), 409 (the session_key is stale:
//   log in again), 429 (WeChat's rate limit) or 502 (WeChat unreachable or failing).
#include <httplib.h>
#include <mock_wechat/mock_wechat.hpp>
#include <nlohmann/json.hpp>
#include <wechat/wechat.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace {

// What the server keeps per logged-in user. In a fleet this lives in Redis, keyed by token.
struct session {
  std::string openid, session_key;
  std::optional<std::string> unionid;
};

// Our own login sessions: token -> what we know of the user. Bounded both ways, so that
// no crowd of logins grows the server without end: a session lives `ttl` from its
// login, and beyond `max` sessions the oldest goes first (O(1) amortized per login). A
// forgotten token answers 401: the device logs in again.
class session_table {
public:
  session_table(std::chrono::seconds ttl, std::size_t max) : ttl_(ttl), max_(max) {}

  std::string open(session s) {
    std::string token = wechat::to_hex(wechat::random_bytes(24));
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_[token] = entry{std::move(s), now};
    order_.emplace_back(token, now);
    forget(now);
    return token;
  }
  std::optional<session> find(const std::string& token) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    forget(now);
    const auto it = sessions_.find(token);
    if (it == sessions_.end()) return std::nullopt;
    return it->second.s;
  }
  void close(const std::string& token) {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(token);  // its record in order_ goes when it reaches the front...
    if (order_.size() > 2 * sessions_.size() + 64) compact();  // ...or now, if many wait
  }

private:
  struct entry {
    session s;
    std::chrono::steady_clock::time_point opened;
  };
  // Oldest first: those past ttl_, and while more than max_ are held. Caller holds mutex_.
  void forget(std::chrono::steady_clock::time_point now) {
    while (!order_.empty()) {
      const auto& [token, opened] = order_.front();
      const auto it = sessions_.find(token);
      const bool current = it != sessions_.end() && it->second.opened == opened;
      if (current && now - opened < ttl_ && sessions_.size() <= max_) break;
      if (current) sessions_.erase(it);
      order_.pop_front();
    }
  }

  // Drops the records of closed sessions from order_, keeping its order. O(n), once the
  // closed records outnumber the open ones: O(1) amortized per close.
  void compact() {
    std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> kept;
    for (auto& r : order_) {
      const auto it = sessions_.find(r.first);
      if (it != sessions_.end() && it->second.opened == r.second) kept.push_back(std::move(r));
    }
    order_.swap(kept);
  }

  const std::chrono::seconds ttl_;
  const std::size_t max_;
  std::mutex mutex_;
  std::unordered_map<std::string, entry> sessions_;
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> order_;
};

void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json; charset=UTF-8");
}

void reply_error(httplib::Response& res, int status, const std::string& name,
                 const std::string& message) {
  reply(res, status, {{"error", name}, {"message", message}});
}

// Why there is no unionid: the stable reason, what it means, what to do next.
nlohmann::json diagnosis_json(const wechat::unionid_diagnosis& d) {
  return {{"reason", wechat::to_string(d.reason)}, {"why", d.text()}, {"next_step", d.next_step()}};
}

// How a failed WeChat call maps to our answer. The message is the library's: it never
// contains the secret, the session_key or a token.
void reply_upstream_error(httplib::Response& res, const std::error_code& ec) {
  int status = 502;  // WeChat unreachable, failing, or answering nonsense
  if (ec == wechat::api_errc::invalid_code || ec == wechat::api_errc::code_been_used)
    status = 401;  // the device should call wx.login again
  else if (ec == wechat::api_errc::minute_quota_reached)
    status = 429;
  reply_error(res, status, wechat::error_name(ec), ec.message());
}

std::string option(int argc, char** argv, const std::string& name, const char* env = nullptr,
                   const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  if (env != nullptr)
    if (const char* v = std::getenv(env)) return v;
  return fallback;
}

// What the routes share: one client per app (thread safe, shared by all requests), the
// resolver, our sessions.
struct backend {
  std::string appid;
  wechat::client& wx;
  wechat::unionid_resolver& resolver;
  session_table& sessions;
};

// POST /login {"code"}: code2session, then a session of ours; the session_key stays here.
void handle_login(backend& b, const httplib::Request& req, httplib::Response& res) {
  auto& wx = b.wx;
  auto& sessions = b.sessions;
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("code") || !body["code"].is_string() ||
      body["code"].get<std::string>().empty())
    return reply_error(res, 400, "bad_request", "send {\"code\": the code from wx.login}");
  std::error_code ec;
  const wechat::session_info s = wx.code2session(body["code"].get<std::string>(), ec);
  if (ec) return reply_upstream_error(res, ec);
  const std::string token = sessions.open({s.openid, s.session_key, s.unionid});
  nlohmann::json out{{"token", token}, {"openid", s.openid}};
  if (s.unionid) out["unionid"] = *s.unionid;
  reply(res, 200, out);
}

// The device's data was made with another (newer) session_key than the one we keep.
bool stale_key(const std::error_code& ec) {
  return ec == wechat::decrypt_errc::bad_padding || ec == wechat::decrypt_errc::not_json ||
         ec == wechat::decrypt_errc::signature_mismatch;
}

// POST /userinfo {"token","encryptedData","iv","rawData"?,"signature"?}: decrypt and verify
// with the session's key, then the UnionID from whatever channel has it.
void handle_userinfo(backend& b, const httplib::Request& req, httplib::Response& res) {
  auto& sessions = b.sessions;
  const std::string& appid = b.appid;
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  auto text = [&](const char* k) {
    return body.is_object() && body.contains(k) && body[k].is_string() ? body[k].get<std::string>()
                                                                       : std::string();
  };
  const std::string token = text("token");
  if (token.empty() || text("encryptedData").empty() || text("iv").empty())
    return reply_error(res, 400, "bad_request",
                       "send {\"token\",\"encryptedData\",\"iv\",\"rawData\"?,\"signature\"?}");
  const auto s = sessions.find(token);
  if (!s) return reply_error(res, 401, "unknown_token", "log in again: POST /login");

  wechat::verify_options verify;
  verify.appid = appid;
  verify.max_age = std::chrono::minutes(10);
  const std::string encrypted = text("encryptedData"), iv = text("iv"), raw = text("rawData"),
                    signature = text("signature");
  const wechat::device_data data{encrypted, iv, raw, signature};
  std::error_code ec;
  wechat::user_info user = wechat::decrypt_user_info(s->session_key, data, verify, ec);
  if (ec == wechat::decrypt_errc::profile_without_ids) {
    // wx.getUserProfile data: verified, a profile with no ids; the ids are the session's.
    const wechat::user_profile p = wechat::decrypt_user_profile(s->session_key, data, verify, ec);
    user.nickname = p.nickname;
    user.gender = p.gender;
    user.language = p.language;
    user.city = p.city;
    user.province = p.province;
    user.country = p.country;
    user.avatar_url = p.avatar_url;
  }
  if (ec) {
    // The commonest cause: the device called wx.login again and this session's key is no
    // longer the current one. The device must log in again; we forget this session.
    if (stale_key(ec)) {
      sessions.close(token);
      return reply_error(res, 409, wechat::error_name(ec), ec.message());
    }
    return reply_error(res, 400, wechat::error_name(ec), ec.message());
  }

  wechat::unionid_evidence evidence;
  evidence.session = {s->openid, s->session_key, s->unionid};
  evidence.user_info = wechat::encrypted_user_info{encrypted, iv, raw, signature};
  const wechat::unionid_result who = b.resolver.resolve(evidence, ec);

  nlohmann::json u{{"nickName", user.nickname}, {"gender", user.gender},
                   {"language", user.language}, {"city", user.city},
                   {"province", user.province}, {"country", user.country},
                   {"avatarUrl", user.avatar_url}};
  if (!user.openid.empty()) u["openId"] = user.openid;  // getUserProfile data has none
  if (user.unionid) u["unionId"] = *user.unionid;
  nlohmann::json out{{"user", u}};
  if (!ec && who.unionid) {
    out["unionid"] = *who.unionid;
  } else if (!ec && who.diagnosis) {
    out["unionid_missing"] = diagnosis_json(*who.diagnosis);
  }
  reply(res, 200, out);
}

// POST /unionid: every channel the backend has in hand for this session's user, through
// the resolver (which calls getPaidUnionId only inside the payment's 5-minute window).
void handle_unionid(backend& b, const httplib::Request& req, httplib::Response& res) {
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  const auto bad = [&](const std::string& what) {
    reply_error(res, 400, "bad_request",
                what + "; send {\"token\",\"transaction_id\"? | \"mch_id\"+\"out_trade_no\"?,"
                       "\"paid_at\"?,\"encryptedData\"?,\"iv\"?,\"cloud\"?}");
  };
  if (!body.is_object()) return bad("the body is not a JSON object");
  // A field that must be a string when present.
  std::string field_error;
  auto text = [&](const char* k) {
    const auto it = body.find(k);
    if (it == body.end()) return std::string();
    if (!it->is_string()) field_error = std::string("field '") + k + "' must be a string";
    return it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string token = text("token"), transaction = text("transaction_id"),
                    mch = text("mch_id"), trade = text("out_trade_no"),
                    encrypted = text("encryptedData"), iv = text("iv"), raw = text("rawData"),
                    signature = text("signature");
  if (!field_error.empty()) return bad(field_error);
  if (token.empty()) return bad("field 'token' is missing");
  if (!transaction.empty() && (!mch.empty() || !trade.empty()))
    return bad("give transaction_id or mch_id + out_trade_no, not both");
  if (mch.empty() != trade.empty()) return bad("mch_id and out_trade_no go together");
  if (encrypted.empty() != iv.empty()) return bad("encryptedData and iv go together");
  const auto s = b.sessions.find(token);
  if (!s) return reply_error(res, 401, "unknown_token", "log in again: POST /login");

  wechat::unionid_evidence evidence;
  evidence.session = {s->openid, s->session_key, s->unionid};
  if (!encrypted.empty())
    evidence.user_info = wechat::encrypted_user_info{encrypted, iv, raw, signature};
  if (!transaction.empty() || !mch.empty()) {
    wechat::payment_evidence p;
    p.order = !transaction.empty() ? wechat::paid_order::by_transaction(transaction)
                                    : wechat::paid_order::by_trade(mch, trade);
    p.paid_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    if (const auto it = body.find("paid_at"); it != body.end()) {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 0)
        return bad("field 'paid_at' must be Unix seconds");
      p.paid_at = it->get<std::int64_t>();
    }
    evidence.payment = std::move(p);
  } else if (body.contains("paid_at")) {
    return bad("'paid_at' without a payment");
  }
  if (const auto it = body.find("cloud"); it != body.end()) {
    const auto str = [&](const char* k) {
      const auto f = it->find(k);
      return f != it->end() && f->is_string() ? f->get<std::string>() : std::string();
    };
    if (!it->is_object() || str("OPENID").empty() || str("APPID").empty())
      return bad("field 'cloud' must be getWXContext(): {\"OPENID\",\"APPID\",\"UNIONID\"?}");
    wechat::cloud_context c{str("OPENID"), str("APPID"), std::nullopt};
    if (!str("UNIONID").empty()) c.unionid = str("UNIONID");
    evidence.cloud = std::move(c);
  }
  std::error_code ec;
  const wechat::unionid_result who = b.resolver.resolve(evidence, ec);
  if (ec) return reply_error(res, 400, wechat::error_name(ec), ec.message());
  if (who.unionid)
    return reply(res, 200, {{"unionid", *who.unionid}, {"channel", wechat::to_string(who.channel)}});
  const wechat::unionid_diagnosis& d = *who.diagnosis;
  // Failures that are not an answer: WeChat failing (502, 429), and device data made with
  // a newer session_key than ours (409, as /userinfo: the device must log in again).
  if (d.reason == wechat::unionid_reason::wechat_unavailable)
    return reply_upstream_error(res, d.cause);
  if (d.reason == wechat::unionid_reason::user_info_invalid && stale_key(d.cause)) {
    b.sessions.close(token);
    return reply_error(res, 409, wechat::error_name(d.cause), d.cause.message());
  }
  reply(res, 200, {{"diagnosis", diagnosis_json(d)}});
}

}  // namespace

constexpr const char* usage =
    "usage: login_server --appid A --secret S [--api-base URL] [--ca-file F] [--port 8081]\n"
    "                    [--mock-port P] [--session-ttl 86400] [--max-sessions 100000]\n"
    "                    [--unionid-rules current|legacy]\n"
    "       (or WECHAT_APPID / WECHAT_SECRET in the environment)\n"
    "Without --api-base it talks to an embedded mock of api.weixin.qq.com.\n"
    "Routes: POST /login, POST /userinfo, POST /unionid (see the top of login_server.cpp).\n";

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << usage;
      return 0;
    }
  const std::string appid = option(argc, argv, "--appid", "WECHAT_APPID");
  const std::string secret = option(argc, argv, "--secret", "WECHAT_SECRET");
  const std::string api_base = option(argc, argv, "--api-base");
  const std::string ca_file = option(argc, argv, "--ca-file");
  const int port = std::atoi(option(argc, argv, "--port", nullptr, "8081").c_str());
  const int mock_port = std::atoi(option(argc, argv, "--mock-port", nullptr, "0").c_str());
  // Our sessions: a day each, 100,000 at most (the oldest forgotten first).
  const long long session_ttl =
      std::atoll(option(argc, argv, "--session-ttl", nullptr, "86400").c_str());
  const long long max_sessions =
      std::atoll(option(argc, argv, "--max-sessions", nullptr, "100000").c_str());
  const std::string rules = option(argc, argv, "--unionid-rules", nullptr, "current");
  if (appid.empty() || secret.empty() || (rules != "current" && rules != "legacy")) {
    std::cerr << usage;
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Without --api-base: WeChat is the embedded mock, with this app registered.
  std::unique_ptr<mock_wechat::server> mock;
  wechat::httplib_transport_options topt;
  if (api_base.empty()) {
    mock_wechat::options mo;
    mo.port = mock_port;
    mock = std::make_unique<mock_wechat::server>(mo);
    mock->world().add_app({appid, secret, mock_wechat::app_type::miniprogram, "example-account"});
    topt.base_url = mock->base_url();
    std::cerr << "embedded mock_wechat on " << mock->base_url() << "; a login code: curl -s -XPOST "
              << mock->base_url() << "/__mock/login -d '{\"appid\":\"" << appid
              << "\",\"user\":\"alice\"}'\n";
  } else {
    topt.base_url = api_base;
  }
  topt.ca_file = ca_file;
  auto transport = wechat::httplib_transport::create(topt);
  wechat::client wx({appid, secret}, transport);  // one per app, shared by all threads
  wechat::resolver_options ro;
  ro.appid = appid;
  ro.rules = rules == "legacy" ? wechat::unionid_rules::legacy : wechat::unionid_rules::current;
  wechat::unionid_resolver resolver(ro, wx);
  session_table sessions(std::chrono::seconds(std::max(1LL, session_ttl)),
                         static_cast<std::size_t>(std::max(1LL, max_sessions)));

  httplib::Server http;
  http.set_tcp_nodelay(true);
  http.set_payload_max_length(std::size_t{64} * 1024);

  backend b{appid, wx, resolver, sessions};
  http.Post("/login", [&b](const httplib::Request& req, httplib::Response& res) {
    handle_login(b, req, res);
  });
  http.Post("/userinfo", [&b](const httplib::Request& req, httplib::Response& res) {
    handle_userinfo(b, req, res);
  });
  http.Post("/unionid", [&b](const httplib::Request& req, httplib::Response& res) {
    handle_unionid(b, req, res);
  });

  // --port 0: any free port (tests use it); the line below says which.
  const int bound = port == 0 ? http.bind_to_any_port("127.0.0.1")
                              : (http.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound <= 0) {
    std::cerr << "login_server: cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  std::cout << "login_server listening on http://127.0.0.1:" << bound << std::endl;
  std::thread serving([&] { http.listen_after_bind(); });
  int sig = 0;
  sigwait(&stop, &sig);
  http.stop();
  serving.join();
  return 0;
}
