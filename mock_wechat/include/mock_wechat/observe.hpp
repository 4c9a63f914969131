// mock_wechat/observe.hpp - what the mock saw: a bounded request journal (secrets
// redacted) and per-endpoint statistics (counts, errcodes, latency percentiles).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/query.hpp"

namespace mock_wechat {

/// Query/body fields whose values never reach the journal (nor rid/get): any name that
/// contains, in any case, "secret", "token", "key", "signature", "password" or "ticket"
/// (secret, appsecret, SECRET, access_token, refresh_token, session_key, encrypt_key,
/// encoding_aes_key, jsapi_ticket...). Codes (js_code, code), openid and unionid are not
/// secrets: tests read them, and they identify rather than authenticate.
inline bool is_secret_field(std::string_view name) noexcept {
  static constexpr std::string_view parts[] = {"secret",   "token",  "key",
                                                "password", "ticket", "signature"};
  for (const std::string_view part : parts) {
    if (name.size() < part.size()) continue;
    for (std::size_t i = 0; i + part.size() <= name.size(); ++i) {
      bool same = true;
      for (std::size_t k = 0; k < part.size() && same; ++k) {
        const char c = name[i + k];
        same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == part[k];
      }
      if (same) return true;
    }
  }
  return false;
}

/// Redacts secret fields of a JSON body, recursively.
inline void redact(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (is_secret_field(it.key()))
        *it = "***";
      else
        redact(*it);
    }
  } else if (j.is_array()) {
    for (auto& v : j)
      redact(v);
  }
}

/// One journal entry. The request is kept as received and redacted when read (to_json),
/// so that recording costs a few string copies: no secret ever leaves through it.
struct journal_entry {
  /// What one entry keeps at most of a request, so that the journal's memory is bounded
  /// (capacity x about 20 KiB) whatever peers send: WeChat API requests are far smaller.
  static constexpr std::size_t max_method = 16;
  static constexpr std::size_t max_target = 8192;  ///< of the path, and of path and query
  static constexpr std::size_t max_body = 4096;

  std::uint64_t seq = 0;
  std::int64_t time = 0;  ///< virtual Unix seconds
  std::string method, path;
  std::string target;         ///< path and query as received (its first max_target bytes)
  std::string body;           ///< the request body as received, when at most max_body bytes
  std::size_t body_size = 0;  ///< the body's size as received
  int status = 0;
  int errcode = 0;
  std::int64_t latency_us = 0;
  std::string fault;  ///< the fault kind injected, if any

  /// What cgi-bin/openapi/rid/get answers from, kept for answers that carry a rid (the
  /// errors): the rid, whose call it was, the caller's address and the answer's body (its
  /// first max_response bytes). Empty for other answers.
  static constexpr std::size_t max_response = 4096;
  static constexpr std::size_t max_short = 64;  ///< of the rid, the appid, the address
  std::string rid;
  std::string appid;  ///< the app whose token (or appid) the call carried
  std::string client_ip;
  std::string response;

  /// Keeps what rid/get needs of an answer, within the caps above (empty `rid`: keeps
  /// nothing).
  void keep_answer(std::string_view r, std::string_view app, std::string_view ip,
                   std::string_view answer) {
    const bool has = !r.empty();
    keep(rid, r, max_short);
    keep(appid, has ? app : std::string_view(), max_short);
    keep(client_ip, has ? ip : std::string_view(), max_short);
    keep(response, has ? answer : std::string_view(), max_response);
  }

  /// Keeps a request within the caps above (a reused slot: no allocation once warm).
  void keep_request(std::string_view m, std::string_view p, std::string_view t,
                    std::string_view b) {
    keep(method, m, max_method);
    keep(path, p, max_target);
    keep(target, t, max_target);
    body_size = b.size();
    keep(body, b.size() <= max_body ? b : std::string_view(), max_body);
  }

  /// The entry with secret query and body fields shown as "***". A query parameter given
  /// once is a string; one given several times is an array of every value, in the order
  /// sent (the handler read the first).
  nlohmann::json to_json() const {
    nlohmann::json q = nlohmann::json::object();
    for (const auto& [k, v] : parse_query(target)) {
      nlohmann::json value = is_secret_field(k) ? std::string("***") : v;
      const auto it = q.find(k);
      if (it == q.end())
        q[k] = std::move(value);
      else if (it->is_array())
        it->push_back(std::move(value));
      else
        *it = nlohmann::json::array({std::move(*it), std::move(value)});
    }
    nlohmann::json j = {
        {"seq", seq}, {"time", time},     {"method", method},   {"path", path},
        {"query", q}, {"status", status}, {"errcode", errcode}, {"latency_us", latency_us}};
    if (body_size > body.size()) {
      j["body"] = "(" + std::to_string(body_size) + " bytes, not kept)";
    } else if (!body.empty()) {
      auto b = nlohmann::json::parse(body, nullptr, false);
      if (!b.is_discarded()) {
        redact(b);
        j["body"] = std::move(b);
      } else {
        j["body"] = "(" + std::to_string(body.size()) + " bytes, not JSON)";
      }
    }
    if (!fault.empty()) j["fault"] = fault;
    return j;
  }

private:
  // `to` = at most `cap` bytes of `from`, its capacity within `cap` too.
  static void keep(std::string& to, std::string_view from, std::size_t cap) {
    to.assign(from.substr(0, cap));
    if (to.capacity() > cap) to.shrink_to_fit();
  }
};

/// A ring of the last `capacity` requests to WeChat endpoints. Capacity 0 turns it off
/// (then recording costs one branch). Slots are reused, so a full journal records without
/// allocating.
class journal {
public:
  explicit journal(std::size_t capacity = 1000) : capacity_(capacity) {}

  std::size_t capacity() const noexcept { return capacity_; }
  bool enabled() const noexcept { return capacity_ > 0; }

  /// Records one request: `fill(entry)` sets its fields (into a reused slot), the request
  /// through journal_entry::keep_request, which keeps the journal's bytes bounded.
  template <class Fill> void record(Fill&& fill) {
    if (capacity_ == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    journal_entry* e;
    if (slots_.size() < capacity_) {
      e = &slots_.emplace_back();
    } else {
      e = &slots_[head_];
      head_ = (head_ + 1) % capacity_;
    }
    e->seq = ++seq_;
    fill(*e);
  }

  /// Bytes the entries' strings hold (their capacity).
  std::size_t bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& e : slots_)
      n += e.method.capacity() + e.path.capacity() + e.target.capacity() + e.body.capacity() +
           e.fault.capacity() + e.rid.capacity() + e.appid.capacity() + e.client_ip.capacity() +
           e.response.capacity();
    return n;
  }

  /// Entries, oldest first, optionally only those of one path.
  nlohmann::json to_json(std::string_view path = {}) const {
    std::lock_guard<std::mutex> lock(mutex_);
    nlohmann::json a = nlohmann::json::array();
    each([&](const journal_entry& e) {
      if (path.empty() || e.path == path) a.push_back(e.to_json());
    });
    return a;
  }

  /// How many recorded calls went to `path` (all paths when empty).
  std::size_t count(std::string_view path = {}) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    each([&](const journal_entry& e) { n += path.empty() || e.path == path; });
    return n;
  }

  /// The entry of the answer that carried `rid`, if the journal still holds it.
  std::optional<journal_entry> find_rid(std::string_view rid) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<journal_entry> found;
    if (rid.empty()) return found;
    each([&](const journal_entry& e) {
      if (e.rid == rid) found = e;
    });
    return found;
  }

  void clear(std::string_view path = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<journal_entry> kept;
    if (!path.empty())
      each([&](const journal_entry& e) {
        if (e.path != path) kept.push_back(e);
      });
    slots_.swap(kept);
    head_ = 0;
  }

private:
  template <class F> void each(F&& f) const {  // oldest first; the caller holds the lock
    for (std::size_t i = 0; i < slots_.size(); ++i)
      f(slots_[(head_ + i) % slots_.size()]);
  }

  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<journal_entry> slots_;
  std::size_t head_ = 0;  ///< the oldest entry, once the ring is full
  std::uint64_t seq_ = 0;
};

/// Per-endpoint counters. Lock-free on the hot path: atomics, and a log-scale latency
/// histogram (buckets of 2^(k/4) microseconds) for percentiles.
class endpoint_stats {
public:
  static constexpr int buckets = 128;

  void add(int errcode, int status, std::int64_t latency_us) noexcept {
    count_.fetch_add(1, std::memory_order_relaxed);
    if (errcode != 0) errors_.fetch_add(1, std::memory_order_relaxed);
    if (status >= 400 || status == 0) http_errors_.fetch_add(1, std::memory_order_relaxed);
    total_us_.fetch_add(latency_us, std::memory_order_relaxed);
    std::int64_t prev = max_us_.load(std::memory_order_relaxed);
    while (latency_us > prev &&
           !max_us_.compare_exchange_weak(prev, latency_us, std::memory_order_relaxed)) {
    }
    histogram_[bucket_of(latency_us)].fetch_add(1, std::memory_order_relaxed);
    if (errcode != 0) {  // the error path alone takes a lock
      std::lock_guard<std::mutex> lock(errcodes_mutex_);
      ++errcodes_[errcode];
    }
  }

  void reset() noexcept {
    count_ = 0;
    errors_ = 0;
    http_errors_ = 0;
    total_us_ = 0;
    max_us_ = 0;
    for (auto& h : histogram_)
      h = 0;
    std::lock_guard<std::mutex> lock(errcodes_mutex_);
    errcodes_.clear();
  }

  nlohmann::json to_json() const {
    const auto n = count_.load();
    nlohmann::json codes = nlohmann::json::object();
    {
      std::lock_guard<std::mutex> lock(errcodes_mutex_);
      for (const auto& [c, k] : errcodes_)
        codes[std::to_string(c)] = k;
    }
    return {{"count", n},
            {"errors", errors_.load()},
            {"http_errors", http_errors_.load()},
            {"errcodes", codes},
            {"latency_us",
             {{"mean", n ? total_us_.load() / static_cast<std::int64_t>(n) : 0},
              {"p50", percentile(0.50)},
              {"p99", percentile(0.99)},
              {"max", max_us_.load()}}}};
  }

  std::uint64_t count() const noexcept { return count_.load(); }

private:
  static int bucket_of(std::int64_t us) noexcept {
    if (us <= 1) return 0;
    // 4 buckets per power of two
    int log2 = 63 - __builtin_clzll(static_cast<unsigned long long>(us));
    const int frac =
        static_cast<int>((static_cast<unsigned long long>(us) >> (log2 >= 2 ? log2 - 2 : 0)) & 3);
    const int b = log2 * 4 + (log2 >= 2 ? frac : 0);
    return b < buckets ? b : buckets - 1;
  }
  static std::int64_t bucket_upper(int b) noexcept {
    const int log2 = b / 4, frac = b % 4;
    if (log2 < 2) return (std::int64_t{1} << (log2 + 1));
    return (std::int64_t{4 + frac + 1}) << (log2 - 2);
  }
  // Nearest rank: the smallest latency with at least p of the samples at or below it
  // (rank ceil(p * n)), as the upper edge of its bucket but never above the maximum seen.
  // With fewer than 100 samples the p99 is the slowest one: never below the mean.
  std::int64_t percentile(double p) const noexcept {
    std::uint64_t total = 0;
    for (const auto& h : histogram_)
      total += h.load(std::memory_order_relaxed);
    if (total == 0) return 0;
    const double rank = std::ceil(p * static_cast<double>(total));
    const auto want = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(rank));
    const std::int64_t max = max_us_.load(std::memory_order_relaxed);
    std::uint64_t seen = 0;
    for (int b = 0; b < buckets; ++b) {
      seen += histogram_[b].load(std::memory_order_relaxed);
      if (seen >= want) return std::min(bucket_upper(b), max);
    }
    return max;
  }

  std::atomic<std::uint64_t> count_{0}, errors_{0}, http_errors_{0};
  std::atomic<std::int64_t> total_us_{0}, max_us_{0};
  std::array<std::atomic<std::uint64_t>, buckets> histogram_{};
  mutable std::mutex errcodes_mutex_;
  std::map<int, std::uint64_t> errcodes_;
};

/// Statistics for every endpoint the mock serves, keyed by path.
class stats_table {
public:
  explicit stats_table(const std::vector<std::string>& paths) {
    for (const auto& p : paths)
      table_.emplace(p, std::make_unique<endpoint_stats>());
    unknown_ = table_.emplace("(unknown)", std::make_unique<endpoint_stats>()).first->second.get();
  }
  endpoint_stats& of(std::string_view path) {
    const auto it = table_.find(path);
    return it != table_.end() ? *it->second : *unknown_;
  }
  nlohmann::json to_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [p, s] : table_)
      if (s->count() > 0) j[p] = s->to_json();
    return j;
  }
  void clear() {
    for (auto& [p, s] : table_)
      s->reset();
  }

private:
  std::map<std::string, std::unique_ptr<endpoint_stats>, std::less<>> table_;
  endpoint_stats* unknown_ = nullptr;
};

}  // namespace mock_wechat
