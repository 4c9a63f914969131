// wechat/store.hpp - where the library keeps what outlives a call: access tokens (for the
// token provider) and identity links (for the identity directory). Each is an interface
// with an in-memory default; wechat/store/redis.hpp implements both on Redis for a fleet.
// Implementations are thread safe. Nothing here speaks HTTP, so the Redis target
// (wechat::redis) links hiredis and wechat::crypto, not cpp-httplib.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "wechat/error.hpp"

namespace wechat {

// ------------------------------------------------------------------ access tokens --

/// A token as stored: its value and when it stops working (Unix ms; 0: it does not expire,
/// as an authorizer refresh token).
struct stored_token {
  std::string value;
  std::int64_t expires_at_ms = 0;
};

/// Where tokens live between processes. The in-memory store serves one process; the Redis
/// store (wechat/store/redis.hpp) a fleet. Implementations are thread safe.
class token_store {
public:
  virtual ~token_store() = default;
  virtual std::optional<stored_token> load(const std::string& key, std::error_code& ec) = 0;
  virtual void save(const std::string& key, const stored_token& token, std::error_code& ec) = 0;
  /// Removes the token under `key` only if it is still `value`.
  virtual void erase_if(const std::string& key, const std::string& value, std::error_code& ec) = 0;
  /// Takes the refresh lock `key` for `owner` for `ttl`, if nobody holds it. A store
  /// shared by several processes must implement it (the Redis store does, with SET NX PX);
  /// a store private to one process needs no lock: the default always grants it.
  virtual bool acquire(const std::string& key, const std::string& owner,
                       std::chrono::milliseconds ttl, std::error_code& ec) {
    (void)key, (void)owner, (void)ttl;
    ec.clear();
    return true;
  }
  /// Releases the lock if `owner` still holds it.
  virtual void release(const std::string& key, const std::string& owner, std::error_code& ec) {
    (void)key, (void)owner;
    ec.clear();
  }
  /// Whether every call answers at once, without I/O (the in-memory store: true). The
  /// async token provider calls a store that does not (Redis, or a store of your own
  /// unless it says so) on a worker thread of its own, never on the event loop. Since
  /// 0.2.0.
  virtual bool answers_at_once() const noexcept { return false; }
};

/// The default store: a map in this process.
class memory_token_store final : public token_store {
public:
  std::optional<stored_token> load(const std::string& key, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void save(const std::string& key, const stored_token& token, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    map_[key] = token;
  }
  void erase_if(const std::string& key, const std::string& value, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = map_.find(key);
    if (it != map_.end() && it->second.value == value) map_.erase(it);
  }
  bool answers_at_once() const noexcept override { return true; }

private:
  std::mutex mutex_;
  std::unordered_map<std::string, stored_token> map_;
};

// ------------------------------------------------------------------ identities --

/// An openid in an app.
struct app_openid {
  std::string appid, openid;
  bool operator<(const app_openid& o) const {
    return std::tie(appid, openid) < std::tie(o.appid, o.openid);
  }
  bool operator==(const app_openid& o) const { return appid == o.appid && openid == o.openid; }
};

/// Where the directory keeps its links. In memory by default; Redis for a fleet.
class identity_store {
public:
  virtual ~identity_store() = default;
  /// Records `who`, linked to `unionid` when it is not empty. Linking an openid already
  /// linked to another unionid: store_errc::conflict. Idempotent.
  virtual void link(const app_openid& who, const std::string& unionid, std::error_code& ec) = 0;
  /// The unionid of `who`, if linked. `known` says whether `who` was ever recorded.
  virtual std::optional<std::string> unionid_of(const app_openid& who, bool& known,
                                                std::error_code& ec) = 0;
  /// Every openid linked to `unionid`, sorted.
  virtual std::vector<app_openid> openids_of(const std::string& unionid, std::error_code& ec) = 0;
};

/// The default store: maps in this process, thread safe.
class memory_identity_store final : public identity_store {
public:
  void link(const app_openid& who, const std::string& unionid, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    auto& current = by_openid_[who];  // records `who` even without a unionid
    if (unionid.empty()) return;
    if (!current.empty() && current != unionid) {
      ec = store_errc::conflict;
      return;
    }
    current = unionid;
    by_unionid_[unionid].insert(who);
  }
  std::optional<std::string> unionid_of(const app_openid& who, bool& known,
                                        std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = by_openid_.find(who);
    known = it != by_openid_.end();
    if (!known || it->second.empty()) return std::nullopt;
    return it->second;
  }
  std::vector<app_openid> openids_of(const std::string& unionid, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = by_unionid_.find(unionid);
    if (it == by_unionid_.end()) return {};
    return {it->second.begin(), it->second.end()};
  }

private:
  std::mutex mutex_;
  std::map<app_openid, std::string> by_openid_;
  std::map<std::string, std::set<app_openid>> by_unionid_;
};

}  // namespace wechat
