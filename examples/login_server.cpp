// login_server: what a mini program backend looks like with this library. Copy it.
//
//   login_server --appid A --secret S [--api-base URL] [--ca-file F] [--port 8081]
//                [--mock-port P] [--embedded-mock] [--session-ttl 86400]
//                [--max-sessions 100000] [--sessions-per-user 5] [--threads 16]
//                [--max-connections 1024] [--unionid-rules current|legacy]
//
// --unionid-rules: the rules the UnionID diagnosis assumes: current (default; WeChat since
// 2021-02-23, every user of a bound app gets it from code2session) or legacy (before it).
// Our own session tokens live --session-ttl seconds (then 401: the device logs in again);
// beyond --max-sessions the oldest are forgotten first, and beyond --sessions-per-user
// that user's oldest. --appid/--secret may come from the environment instead
// (WECHAT_APPID, WECHAT_SECRET), which keeps the secret out of `ps`.
// Without --api-base it starts the embedded mock of api.weixin.qq.com (A/S registered as a
// mini program bound to an Open Platform account) and talks to it; its address, and the
// admin token of its admin API (random, for making login codes), go to stderr. A secret
// shaped like a real AppSecret (32 hex digits) is refused there unless --embedded-mock says
// it is meant: the mock would serve it to any local process that has the admin token.
// With --api-base it talks to that base URL: a standalone mock_wechat, or
// https://api.weixin.qq.com. Prints one line "login_server listening on http://HOST:PORT".
//
// Every route is POST with Content-Type: application/json (anything else is 415: a browser
// form cannot post here on a user's behalf).
//   POST /login    {"code"}  (from wx.login)
//     -> 200 {"token","openid","unionid"?}  token: our own opaque session token. The
//        session_key stays here and is never sent back. The same code again within the
//        client's 10-second double-submit window gets the same token (401 once that
//        session was closed); later, 401.
//   POST /logout   {"token"} -> 200 {"logged_out": true|false}
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
//   request, a code that cannot be one), 401 (unknown or expired token, or a code WeChat
//   refused), 404, 405, 409 (the session_key is stale: log in again), 413 (body over
//   64 KiB, however framed), 415, 429 (WeChat's rate limit), 431, 502 (WeChat unreachable
//   or failing) or 503 (too busy: every worker taken).
//
// The HTTP front is the project's event engine (mock_wechat/detail/event_engine.hpp) with
// deferred answers: a few loops own every connection and read each request whole under a
// deadline (10 s from its first byte: a client trickling a header is closed, it holds no
// thread), with caps on the head (16 KiB), the body (64 KiB, chunked or not) and the
// connections (--max-connections; backlog 1024); only a whole, valid request reaches the
// --threads workers that call WeChat. cpp-httplib 0.11.4's server cannot bound a whole
// request (its timeout is per read) and listens with a backlog of 5. In production, put a
// reverse proxy in front anyway (TLS, client_header_timeout/client_body_timeout,
// limit_conn); the handlers below are what to copy into your framework.
#include <mock_wechat/detail/event_engine.hpp>
#include <mock_wechat/mock_wechat.hpp>
#include <nlohmann/json.hpp>
#include <wechat/wechat.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// What the server keeps per logged-in user. In a fleet this lives in Redis, keyed by token.
struct session {
  std::string openid, session_key;
  std::optional<std::string> unionid;
};

// Our own login sessions: token -> what we know of the user. Bounded every way, so that no
// crowd of logins grows the server without end: a session lives `ttl` from its login, a
// user holds at most `per_user` (their oldest goes first), and beyond `max` sessions the
// oldest goes first (O(1) amortized per login). One login (one session_key) is one
// session: the same code submitted twice gets the same token, and once that session is
// closed (logout, a stale key) the code cannot open another while the client would still
// hand its result out (`replay_window`). A forgotten token answers 401: the device logs in
// again.
class session_table {
public:
  struct limits {
    std::chrono::seconds ttl{86400};
    std::size_t max = 100000;
    std::size_t per_user = 5;
    std::chrono::seconds replay_window{10};  ///< the client's code_memory
  };
  explicit session_table(limits l) : lim_(l) {}

  /// The session's token; empty when this login's session was closed (a replay).
  std::string open(session s) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    forget(now);
    forget_closed(now);
    if (const auto k = by_key_.find(s.session_key); k != by_key_.end()) return k->second;
    if (closed_keys_.count(s.session_key) != 0) return {};
    // This user's oldest first, while they hold per_user (erase() drops the token from
    // by_user_, and the user's entry with their last token: look it up each time).
    for (auto u = by_user_.find(s.openid); u != by_user_.end() && u->second.size() >= lim_.per_user;
         u = by_user_.find(s.openid))
      erase(sessions_.find(u->second.front()));
    std::string token = wechat::to_hex(wechat::random_bytes(24));
    by_user_[s.openid].push_back(token);
    by_key_[s.session_key] = token;
    sessions_[token] = entry{std::move(s), now};
    order_.emplace_back(token, now);
    forget(now);
    compact_if_stale();  // a user over their cap leaves records behind in order_
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
  /// Logout, or a session whose key went stale. True when it was open.
  bool close(const std::string& token) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sessions_.find(token);
    if (it == sessions_.end()) return false;
    // Its login may not open another session while the client still remembers its code.
    const auto now = std::chrono::steady_clock::now();
    forget_closed(now);
    if (closed_keys_.emplace(it->second.s.session_key, now).second)
      closed_order_.emplace_back(it->second.s.session_key, now);
    while (closed_order_.size() > lim_.max) {  // a burst of logouts: the oldest go first
      closed_keys_.erase(closed_order_.front().first);
      closed_order_.pop_front();
    }
    erase(it);  // its record in order_ goes when it reaches the front, or at compaction
    compact_if_stale();
    return true;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
  }

private:
  struct entry {
    session s;
    std::chrono::steady_clock::time_point opened;
  };
  using table = std::unordered_map<std::string, entry>;

  // A session out of every index (not order_: see forget and compact). Caller holds mutex_.
  void erase(table::iterator it) {
    if (it == sessions_.end()) return;
    by_key_.erase(it->second.s.session_key);
    const auto u = by_user_.find(it->second.s.openid);
    if (u != by_user_.end()) {
      auto& tokens = u->second;  // at most per_user of them
      tokens.erase(std::remove(tokens.begin(), tokens.end(), it->first), tokens.end());
      if (tokens.empty()) by_user_.erase(u);
    }
    sessions_.erase(it);
  }

  // Oldest first: those past ttl, and while more than max are held. Caller holds mutex_.
  void forget(std::chrono::steady_clock::time_point now) {
    while (!order_.empty()) {
      const auto& [token, opened] = order_.front();
      const auto it = sessions_.find(token);
      const bool current = it != sessions_.end() && it->second.opened == opened;
      if (current && now - opened < lim_.ttl && sessions_.size() <= lim_.max) break;
      if (current) erase(it);
      order_.pop_front();
    }
  }

  // Closed logins past the replay window. Caller holds mutex_.
  void forget_closed(std::chrono::steady_clock::time_point now) {
    while (!closed_order_.empty() && now - closed_order_.front().second >= lim_.replay_window) {
      closed_keys_.erase(closed_order_.front().first);
      closed_order_.pop_front();
    }
  }

  // Records in order_ of sessions no longer open (closed, or over a user's cap) stay until
  // they reach the front; once they outnumber the open ones, compact: O(1) amortized.
  void compact_if_stale() {
    if (order_.size() > 2 * sessions_.size() + 64) compact();
  }

  // Drops the records of sessions no longer open from order_, keeping its order. O(n).
  void compact() {
    std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> kept;
    for (auto& r : order_) {
      const auto it = sessions_.find(r.first);
      if (it != sessions_.end() && it->second.opened == r.second) kept.push_back(std::move(r));
    }
    order_.swap(kept);
  }

  const limits lim_;
  std::mutex mutex_;
  table sessions_;
  std::unordered_map<std::string, std::string> by_key_;                // session_key -> token
  std::unordered_map<std::string, std::vector<std::string>> by_user_;  // openid -> tokens
  // session_keys of closed sessions, for replay_window: a replayed code opens nothing
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> closed_keys_;
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> closed_order_;
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> order_;
};

// What a route answers: a status and a JSON body.
struct answer {
  int status = 200;
  nlohmann::json body;
};

answer error(int status, const std::string& name, const std::string& message) {
  return {status, {{"error", name}, {"message", message}}};
}

// Why there is no unionid: the stable reason, what it means, what to do next.
nlohmann::json diagnosis_json(const wechat::unionid_diagnosis& d) {
  return {{"reason", wechat::to_string(d.reason)}, {"why", d.text()}, {"next_step", d.next_step()}};
}

// How a failed WeChat call maps to our answer. The message is the library's: it never
// contains the secret, the session_key or a token.
answer upstream_error(const std::error_code& ec) {
  int status = 502;  // WeChat unreachable, failing, or answering nonsense
  if (ec == wechat::api_errc::invalid_code || ec == wechat::api_errc::code_been_used ||
      ec == wechat::api_errc::code_blocked)  // 40226: a high-risk user's code, refused
    status = 401;  // the device should call wx.login again
  else if (ec == wechat::api_errc::minute_quota_reached)
    status = 429;
  return error(status, wechat::error_name(ec), ec.message());
}

// Whether `code` can be a wx.login code: WeChat's are 32 characters of [A-Za-z0-9] (seen
// since 2017; wechat-api.md section 1). We allow up to 128 of [A-Za-z0-9_-] to leave room
// for a change, and refuse the rest with 400 before calling WeChat: a 10 KB "code" must not
// reach WeChat (414) and show up as WeChat failing (502) on our dashboards.
bool plausible_code(const std::string& code) {
  if (code.empty() || code.size() > 128) return false;
  for (const char c : code)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-'))
      return false;
  return true;
}

// What the routes share: one client per app (thread safe, shared by all requests), the
// resolver, our sessions.
struct backend {
  std::string appid;
  wechat::client& wx;
  wechat::unionid_resolver& resolver;
  session_table& sessions;
};

// A request as the routes see it: parsed JSON, or discarded when it is not JSON.
using body_t = nlohmann::json;

// POST /login {"code"}: code2session, then a session of ours; the session_key stays here.
answer handle_login(backend& b, const body_t& body) {
  if (!body.is_object() || !body.contains("code") || !body["code"].is_string() ||
      body["code"].get<std::string>().empty())
    return error(400, "bad_request", "send {\"code\": the code from wx.login}");
  const std::string code = body["code"].get<std::string>();
  if (!plausible_code(code))
    return error(400, "bad_request",
                 "field 'code' is not a wx.login code (1-128 characters of A-Z a-z 0-9 _ -)");
  std::error_code ec;
  const wechat::session_info s = b.wx.code2session(code, ec);
  if (ec) return upstream_error(ec);
  const std::string token = b.sessions.open({s.openid, s.session_key, s.unionid});
  if (token.empty())  // the same code again, after its session was closed
    return error(401, "session_closed", "this login's session was closed: call wx.login again");
  nlohmann::json out{{"token", token}, {"openid", s.openid}};
  if (s.unionid) out["unionid"] = *s.unionid;
  return {200, out};
}

// POST /logout {"token"}: the session is forgotten; an unknown token is not an error.
answer handle_logout(backend& b, const body_t& body) {
  if (!body.is_object() || !body.contains("token") || !body["token"].is_string())
    return error(400, "bad_request", "send {\"token\"}");
  return {200, {{"logged_out", b.sessions.close(body["token"].get<std::string>())}}};
}

// The device's data was made with another (newer) session_key than the one we keep.
bool stale_key(const std::error_code& ec) {
  return ec == wechat::decrypt_errc::bad_padding || ec == wechat::decrypt_errc::not_json ||
         ec == wechat::decrypt_errc::signature_mismatch;
}

// POST /userinfo {"token","encryptedData","iv","rawData"?,"signature"?}: decrypt and verify
// with the session's key, then the UnionID from whatever channel has it.
answer handle_userinfo(backend& b, const body_t& body) {
  auto& sessions = b.sessions;
  const std::string& appid = b.appid;
  auto text = [&](const char* k) {
    return body.is_object() && body.contains(k) && body[k].is_string() ? body[k].get<std::string>()
                                                                       : std::string();
  };
  const std::string token = text("token");
  if (token.empty() || text("encryptedData").empty() || text("iv").empty())
    return error(400, "bad_request",
                       "send {\"token\",\"encryptedData\",\"iv\",\"rawData\"?,\"signature\"?}");
  const auto s = sessions.find(token);
  if (!s) return error(401, "unknown_token", "log in again: POST /login");

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
      return error(409, wechat::error_name(ec), ec.message());
    }
    return error(400, wechat::error_name(ec), ec.message());
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
  return {200, out};
}

// POST /unionid: every channel the backend has in hand for this session's user, through
// the resolver (which calls getPaidUnionId only inside the payment's 5-minute window).
answer handle_unionid(backend& b, const body_t& body) {
  const auto bad = [&](const std::string& what) {
    return error(400, "bad_request",
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
  if (!s) return error(401, "unknown_token", "log in again: POST /login");

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
  if (ec) return error(400, wechat::error_name(ec), ec.message());
  if (who.unionid)
    return {200, {{"unionid", *who.unionid}, {"channel", wechat::to_string(who.channel)}}};
  const wechat::unionid_diagnosis& d = *who.diagnosis;
  // Failures that are not an answer: WeChat failing (502, 429), and device data made with
  // a newer session_key than ours (409, as /userinfo: the device must log in again).
  if (d.reason == wechat::unionid_reason::wechat_unavailable)
    return upstream_error(d.cause);
  if (d.reason == wechat::unionid_reason::user_info_invalid && stale_key(d.cause)) {
    b.sessions.close(token);
    return error(409, wechat::error_name(d.cause), d.cause.message());
  }
  return {200, {{"diagnosis", diagnosis_json(d)}}};
}


// A fixed set of threads for the routes, which block on WeChat (20-200 ms a call). Its
// queue is bounded: past it a request is answered 503 at once instead of waiting.
class worker_pool {
public:
  worker_pool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { run(); });
  }
  ~worker_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }
  /// False (and `job` not taken) when the queue is full.
  bool post(std::function<void()>& job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (jobs_.size() >= max_queued_) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;  // queued requests go unanswered: their connections close
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

mock_wechat::http_response to_http(const answer& a) {
  mock_wechat::http_response r;
  r.status = a.status;
  r.content_type = "application/json; charset=UTF-8";
  r.body = a.body.dump();
  r.length = r.body.size();
  return r;
}

// Whether a Content-Type is JSON: "application/json", any case, parameters allowed.
bool is_json(std::string_view type) {
  const std::string_view want = "application/json";
  if (type.size() < want.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(type[i])) != want[i]) return false;
  const std::string_view rest = type.substr(want.size());
  return rest.empty() || rest.front() == ';' || rest.front() == ' ' || rest.front() == '\t';
}

using route = answer (*)(backend&, const body_t&);

// The route for a path, or null.
route route_of(std::string_view path) {
  if (path == "/login") return handle_login;
  if (path == "/logout") return handle_logout;
  if (path == "/userinfo") return handle_userinfo;
  if (path == "/unionid") return handle_unionid;
  return nullptr;
}

// Each whole request, on an engine loop: checked there (cheap), then handed to a worker
// (the route calls WeChat), which answers through the responder.
void dispatch(backend& b, worker_pool& pool, const mock_wechat::http_request& req,
              const mock_wechat::detail::responder& respond) {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  const route r = route_of(path);
  if (r == nullptr)
    return respond(to_http(error(404, "not_found",
                                 "routes: POST /login, /logout, /userinfo, /unionid")));
  if (req.method != "POST")
    return respond(to_http(error(405, "method_not_allowed", "use POST")));
  if (!is_json(req.header("Content-Type")))
    return respond(to_http(error(415, "unsupported_media_type",
                                 "send the body as JSON with Content-Type: application/json")));
  std::function<void()> job = [&b, r, body = std::string(req.body), respond] {
    const auto json = nlohmann::json::parse(body, nullptr, false);
    answer a;
    try {
      a = r(b, json);
    } catch (const std::exception&) {  // a bug of ours; the message may hold anything
      a = error(500, "internal_error", "the server failed; see its log");
    }
    respond(to_http(a));
  };
  if (!pool.post(job))
    respond(to_http(error(503, "busy", "every worker is taken; try again shortly")));
}

// A number option: `fallback` when absent; false when present and not an integer in range.
bool number_option(const std::string& text, long long lo, long long hi, long long& out) {
  if (text.empty() || text.size() > 18) return false;
  for (const char c : text)
    if (c < '0' || c > '9') return false;
  out = std::stoll(text);
  return out >= lo && out <= hi;
}

std::string option(int argc, char** argv, const std::string& name, const char* env = nullptr,
                   const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  if (env != nullptr)
    if (const char* v = std::getenv(env)) return v;
  return fallback;
}

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == name) return true;
  return false;
}

// A secret with the shape of a real AppSecret: 32 hex digits.
bool looks_real(const std::string& secret) {
  if (secret.size() != 32) return false;
  for (const char c : secret)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

constexpr const char* usage =
    "usage: login_server --appid A --secret S [--api-base URL] [--ca-file F] [--port 8081]\n"
    "                    [--mock-port P] [--embedded-mock] [--session-ttl 86400]\n"
    "                    [--max-sessions 100000] [--sessions-per-user 5] [--threads 16]\n"
    "                    [--max-connections 1024] [--unionid-rules current|legacy]\n"
    "       (or WECHAT_APPID / WECHAT_SECRET in the environment)\n"
    "Without --api-base it talks to an embedded mock of api.weixin.qq.com.\n"
    "Routes: POST /login, /logout, /userinfo, /unionid with Content-Type: application/json\n"
    "(see the top of login_server.cpp).\n";

int main(int argc, char** argv) {
  if (flag(argc, argv, "--help") || flag(argc, argv, "-h")) {
    std::cout << usage;
    return 0;
  }
  const std::string appid = option(argc, argv, "--appid", "WECHAT_APPID");
  const std::string secret = option(argc, argv, "--secret", "WECHAT_SECRET");
  const std::string api_base = option(argc, argv, "--api-base");
  const std::string ca_file = option(argc, argv, "--ca-file");
  const std::string rules = option(argc, argv, "--unionid-rules", nullptr, "current");
  long long port = 0, mock_port = 0, session_ttl = 0, max_sessions = 0, per_user = 0,
            threads = 0, max_connections = 0;
  // Our sessions: a day each, 100,000 at most (the oldest forgotten first), 5 per user.
  const bool numbers_ok =
      number_option(option(argc, argv, "--port", nullptr, "8081"), 0, 65535, port) &&
      number_option(option(argc, argv, "--mock-port", nullptr, "0"), 0, 65535, mock_port) &&
      number_option(option(argc, argv, "--session-ttl", nullptr, "86400"), 1, 31536000,
                    session_ttl) &&
      number_option(option(argc, argv, "--max-sessions", nullptr, "100000"), 1, 100000000,
                    max_sessions) &&
      number_option(option(argc, argv, "--sessions-per-user", nullptr, "5"), 1, 1000, per_user) &&
      number_option(option(argc, argv, "--threads", nullptr, "16"), 1, 1024, threads) &&
      number_option(option(argc, argv, "--max-connections", nullptr, "1024"), 1, 1000000,
                    max_connections);
  if (appid.empty() || secret.empty() || (rules != "current" && rules != "legacy") ||
      !numbers_ok) {
    std::cerr << usage;
    return 2;
  }
  if (api_base.empty() && looks_real(secret) && !flag(argc, argv, "--embedded-mock")) {
    std::cerr << "login_server: the secret looks like a real AppSecret, and without --api-base "
                 "it would go to the embedded mock (whose admin API can read it back). Give "
                 "--api-base https://api.weixin.qq.com, or --embedded-mock if this is meant.\n";
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // every thread started below inherits it
  signal(SIGPIPE, SIG_IGN);

  // Without --api-base: WeChat is the embedded mock, with this app registered, its admin API
  // behind a random token (it can mint codes and read the app's secret).
  std::unique_ptr<mock_wechat::server> mock;
  wechat::httplib_transport_options topt;
  if (api_base.empty()) {
    mock_wechat::options mo;
    mo.port = static_cast<int>(mock_port);
    mo.admin_token = wechat::to_hex(wechat::random_bytes(16));
    mock = std::make_unique<mock_wechat::server>(mo);
    mock->world().add_app({appid, secret, mock_wechat::app_type::miniprogram, "example-account"});
    topt.base_url = mock->base_url();
    std::cerr << "embedded mock_wechat on " << mock->base_url() << "; admin token "
              << mo.admin_token << "; a login code: curl -s -XPOST " << mock->base_url()
              << "/__mock/login -H 'Authorization: Bearer " << mo.admin_token << "' -d '{\"appid\":\""
              << appid << "\",\"user\":\"alice\"}'\n";
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
  session_table sessions({std::chrono::seconds(session_ttl),
                          static_cast<std::size_t>(max_sessions),
                          static_cast<std::size_t>(per_user), wechat::client_options{}.code_memory});
  backend b{appid, wx, resolver, sessions};
  worker_pool pool(static_cast<std::size_t>(threads), static_cast<std::size_t>(threads) * 64);

  // Every connection is a descriptor, and so is each call to WeChat: raise the soft limit to
  // the hard one (it is often 1024), and keep the connection cap under it with room for the
  // workers' connections, or a crowd of idle clients makes every login fail (EMFILE).
  if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
      ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    const long long reserve = threads * 2 + 64;
    if (rl.rlim_cur != RLIM_INFINITY &&
        max_connections > static_cast<long long>(rl.rlim_cur) - reserve) {
      max_connections = std::max(1LL, static_cast<long long>(rl.rlim_cur) - reserve);
      std::cerr << "login_server: warning: " << rl.rlim_cur
                << " file descriptors at most (ulimit -n); --max-connections lowered to "
                << max_connections << "\n";
    }
  }
  mock_wechat::detail::engine_limits lim;
  lim.workers = 2;                                // event loops: they never block
  lim.max_header = std::size_t{16} * 1024;        // more: 431
  lim.max_body = std::size_t{64} * 1024;          // more: 413, chunked or not
  lim.request_timeout_ms = 10000;                 // a whole request, from its first byte
  lim.keep_alive_timeout_ms = 5000;
  lim.max_connections = static_cast<std::size_t>(max_connections);  // more are closed at once
  lim.max_pending_bytes = std::size_t{64} << 20;  // unfinished requests, all connections
  lim.backlog = 1024;
  lim.answer_timeout_ms = 60000;                  // a route stuck longer: 503
  std::unique_ptr<mock_wechat::detail::event_engine> http;
  try {
    // --port 0: any free port (tests use it); the line below says which.
    http = std::make_unique<mock_wechat::detail::event_engine>(
        mock_wechat::detail::event_engine::deferred_handler(
            [&b, &pool](const mock_wechat::http_request& req,
                        const mock_wechat::detail::responder& respond) {
              dispatch(b, pool, req, respond);
            }),
        "127.0.0.1", static_cast<int>(port), lim);
  } catch (const std::exception& e) {
    std::cerr << "login_server: " << e.what() << "\n";
    return 1;
  }
  std::cout << "login_server listening on http://127.0.0.1:" << http->port() << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  http->stop();  // no new requests; then the workers finish what they hold
  return 0;
}
