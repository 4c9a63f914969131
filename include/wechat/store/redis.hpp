// wechat/store/redis.hpp - the fleet's stores on Redis (target wechat::redis, hiredis; it
// needs no HTTP). With the client (wechat/client.hpp, target wechat::wechat) and the
// directory (wechat/unionid.hpp):
//
//   auto redis = std::make_shared<wechat::redis_connection>(wechat::redis_options{"127.0.0.1",
//   6379}); wechat::client wx(opts, transport, std::make_shared<wechat::redis_token_store>(redis));
//   wechat::identity_directory dir(std::make_shared<wechat::redis_identity_store>(redis));
//
// Tokens: every process of the fleet reads the same token; refreshing takes a lock
// (SET NX PX with a random owner, released only by its owner, by a compare-and-delete
// script), so N processes refresh once per cycle and never invalidate each other's
// tokens. If the lock holder dies, the lock expires and another takes over.
// Identities: links are written by a script that refuses to move an openid to another
// unionid (store_errc::conflict), so several processes agree.
// Redis unreachable: store_errc::unavailable (the token provider then carries on alone).
#pragma once

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "wechat/error.hpp"
#include "wechat/store.hpp"

namespace wechat {

/// Where the Redis server is and how to talk to it.
struct redis_options {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{500};  ///< connect and command timeout
  std::string password;                    ///< AUTH, when set
  std::string prefix = "wechat:";          ///< every key starts with it
};

/// A reply, copied out of hiredis.
struct redis_reply {
  int type = 0;  ///< REDIS_REPLY_*
  std::string str;
  long long integer = 0;
  std::vector<redis_reply> elements;
  /// The reply is Redis nil (no such key).
  bool nil() const noexcept { return type == REDIS_REPLY_NIL; }
};

/// One connection, shared by the threads of a process (commands are serialised), that
/// reconnects after a failure.
class redis_connection {
public:
  /// Connects lazily, on first use; reconnects after a failure.
  explicit redis_connection(redis_options o) : opt_(std::move(o)) {}
  ~redis_connection() {
    if (ctx_) redisFree(ctx_);
  }
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  const redis_options& options() const noexcept { return opt_; }

  /// Runs one command. Errors: store_errc::unavailable (cannot connect, timeout, broken
  /// connection), store_errc::corrupt (Redis answered with an error).
  redis_reply command(const std::vector<std::string>& args, std::error_code& ec) {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connect_locked()) {
        ec = store_errc::unavailable;
        return {};
      }
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      auto* r = static_cast<redisReply*>(
          redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()));
      if (r == nullptr) {  // the connection broke: drop it, retry once on a new one
        redisFree(ctx_);
        ctx_ = nullptr;
        continue;
      }
      redis_reply out = copy(r);
      freeReplyObject(r);
      if (out.type == REDIS_REPLY_ERROR) ec = store_errc::corrupt;
      return out;
    }
    ec = store_errc::unavailable;
    return {};
  }

  /// `k` under the configured key prefix.
  std::string key(std::string_view k) const { return opt_.prefix + std::string(k); }

private:
  bool connect_locked() {
    if (ctx_ && ctx_->err == 0) return true;
    if (ctx_) {
      redisFree(ctx_);
      ctx_ = nullptr;
    }
    const timeval tv{static_cast<time_t>(opt_.timeout.count() / 1000),
                     static_cast<suseconds_t>((opt_.timeout.count() % 1000) * 1000)};
    ctx_ = redisConnectWithTimeout(opt_.host.c_str(), opt_.port, tv);
    if (ctx_ == nullptr || ctx_->err != 0) {
      if (ctx_) redisFree(ctx_);
      ctx_ = nullptr;
      return false;
    }
    redisSetTimeout(ctx_, tv);
    if (!opt_.password.empty()) {
      auto* r = static_cast<redisReply*>(
          redisCommand(ctx_, "AUTH %b", opt_.password.data(), opt_.password.size()));
      const bool ok = r != nullptr && r->type != REDIS_REPLY_ERROR;
      if (r) freeReplyObject(r);
      if (!ok) {
        redisFree(ctx_);
        ctx_ = nullptr;
        return false;
      }
    }
    return true;
  }

  static redis_reply copy(const redisReply* r) {
    redis_reply out;
    out.type = r->type;
    out.integer = r->integer;
    if (r->str) out.str.assign(r->str, r->len);
    for (size_t i = 0; i < r->elements; ++i)
      out.elements.push_back(copy(r->element[i]));
    return out;
  }

  redis_options opt_;
  std::mutex mutex_;
  redisContext* ctx_ = nullptr;
};

/// Access tokens (and the component's ticket and refresh tokens) in Redis, shared by a
/// fleet. Values are "<expires_at_ms> <token>", kept until the token expires (at least 1 s),
/// or for ever when expires_at_ms is 0.
class redis_token_store final : public token_store {
public:
  /// A token store on `c`, shareable by every process of the fleet.
  explicit redis_token_store(std::shared_ptr<redis_connection> c) : redis_(std::move(c)) {}

  std::optional<stored_token> load(const std::string& key, std::error_code& ec) override {
    const auto r = redis_->command({"GET", redis_->key(key)}, ec);
    if (ec || r.nil()) return std::nullopt;
    const auto sp = r.str.find(' ');
    if (sp == std::string::npos) {
      ec = store_errc::corrupt;
      return std::nullopt;
    }
    // The whole field, digits only (what save writes): std::stoll read "12abc" as 12,
    // and skipped blanks and a sign.
    stored_token t;
    const char* first = r.str.data();
    const auto [end, err] = std::from_chars(first, first + sp, t.expires_at_ms);
    if (sp == 0 || err != std::errc() || end != first + sp || t.expires_at_ms < 0 ||
        sp + 1 == r.str.size()) {  // (and a token, not nothing)
      ec = store_errc::corrupt;
      return std::nullopt;
    }
    t.value = r.str.substr(sp + 1);
    return t;
  }

  /// Saves `t` until it expires; expires_at_ms 0 (an authorizer refresh token: it has no
  /// expiry) is kept with no TTL.
  void save(const std::string& key, const stored_token& t, std::error_code& ec) override {
    if (t.expires_at_ms <= 0) {
      redis_->command({"SET", redis_->key(key), "0 " + t.value}, ec);
      return;
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const long long ttl = std::max<long long>(1000, t.expires_at_ms - now);
    redis_->command({"SET", redis_->key(key), std::to_string(t.expires_at_ms) + " " + t.value, "PX",
                     std::to_string(ttl)},
                    ec);
  }

  void erase_if(const std::string& key, const std::string& value, std::error_code& ec) override {
    // (a literal, not a static std::string: nothing here is destroyed at exit under a
    // store call still running on another thread)
    static constexpr const char* script =
        "local v = redis.call('GET', KEYS[1]) "
        "if v then local sp = string.find(v, ' ', 1, true) "
        "if sp and string.sub(v, sp + 1) == ARGV[1] then return redis.call('DEL', KEYS[1]) end end "
        "return 0";
    redis_->command({"EVAL", script, "1", redis_->key(key), value}, ec);
  }

  bool acquire(const std::string& key, const std::string& owner, std::chrono::milliseconds ttl,
               std::error_code& ec) override {
    const auto r = redis_->command({"SET", redis_->key(key), owner, "NX", "PX",
                                    std::to_string(std::max<long long>(1, ttl.count()))},
                                   ec);
    return !ec && r.type == REDIS_REPLY_STATUS && r.str == "OK";
  }

  void release(const std::string& key, const std::string& owner, std::error_code& ec) override {
    // (a literal, not a static std::string: nothing here is destroyed at exit under a
    // store call still running on another thread)
    static constexpr const char* script = "if redis.call('GET', KEYS[1]) == ARGV[1] then return "
                                          "redis.call('DEL', KEYS[1]) end return 0";
    redis_->command({"EVAL", script, "1", redis_->key(key), owner}, ec);
  }

private:
  std::shared_ptr<redis_connection> redis_;
};

/// The identity directory in Redis: "<prefix>identity:o:<appid>:<openid>" holds the
/// unionid ("" while unknown); "<prefix>identity:u:<unionid>" is the set of
/// "<appid>\n<openid>" members.
class redis_identity_store final : public identity_store {
public:
  /// An identity store on `c`, shareable by every process of the fleet.
  explicit redis_identity_store(std::shared_ptr<redis_connection> c) : redis_(std::move(c)) {}

  void link(const app_openid& who, const std::string& unionid, std::error_code& ec) override {
    // (a literal, not a static std::string: nothing here is destroyed at exit under a
    // store call still running on another thread)
    static constexpr const char* script =
        "local cur = redis.call('GET', KEYS[1]) "
        "if ARGV[1] == '' then if not cur then redis.call('SET', KEYS[1], '') end return 'ok' end "
        "if cur and cur ~= '' and cur ~= ARGV[1] then return 'conflict' end "
        "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SADD', KEYS[2], ARGV[2]) return 'ok'";
    const auto r =
        redis_->command({"EVAL", script, "2", okey(who), redis_->key("identity:u:" + unionid),
                         unionid, who.appid + "\n" + who.openid},
                        ec);
    if (!ec && r.str == "conflict") ec = store_errc::conflict;
  }

  std::optional<std::string> unionid_of(const app_openid& who, bool& known,
                                        std::error_code& ec) override {
    const auto r = redis_->command({"GET", okey(who)}, ec);
    known = !ec && !r.nil();
    if (!known || r.str.empty()) return std::nullopt;
    return r.str;
  }

  std::vector<app_openid> openids_of(const std::string& unionid, std::error_code& ec) override {
    const auto r = redis_->command({"SMEMBERS", redis_->key("identity:u:" + unionid)}, ec);
    std::vector<app_openid> out;
    if (ec) return out;
    for (const auto& e : r.elements) {
      const auto nl = e.str.find('\n');
      if (nl == std::string::npos) continue;
      out.push_back({e.str.substr(0, nl), e.str.substr(nl + 1)});
    }
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  std::string okey(const app_openid& who) const {
    return redis_->key("identity:o:" + who.appid + ":" + who.openid);
  }
  std::shared_ptr<redis_connection> redis_;
};

}  // namespace wechat
