// mock_wechat/faults.hpp - injected faults, per WeChat endpoint path.
//
// A fault makes the next `times` calls to `path` (or each call with `probability`)
// misbehave in one way:
//   errcode      HTTP 200 with {"errcode":N,"errmsg":"..."} (e.g. -1 busy, 45011)
//   http_status  that HTTP status with an HTML body, as a failing gateway sends
//   delay_ms     answer late (combinable with any other kind, or alone: then normally)
//   latency      answer late by a draw from a distribution, "fixed:MS", "uniform:MIN:MAX"
//                or "lognormal:MEDIAN:P99" (latency.hpp); combinable like delay_ms, or
//                alone. Given with delay_ms, the two add: delay_ms + a draw (a fixed floor
//                under a spread), the sum capped at 600000 ms like each of them.
//   drop         close the connection without answering
//   malformed    HTTP 200 with a body that is not JSON
//   truncated    HTTP 200 that promises more body than it sends, then closes
//   oversized    HTTP 200 with a JSON body padded to this many bytes
//   content_type the normal answer with this Content-Type instead (no control characters:
//                bytes below 0x20 and 0x7f are refused, they would inject headers)
// `path` "*" matches every WeChat endpoint; the admin API is never faulted.
//
// Randomness: `probability` and `latency` draw from the table's generators, seeded by
// fault_table::seed(N) (the mock's --seed N) so that a run replays: the same calls, in the
// same order, meet the same probabilistic faults, and the fault delays drawn are the same
// multiset whatever the thread timing (fault_table::delay_us, counter-based). Unseeded,
// both start from std::random_device.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/detail/fields.hpp"
#include "mock_wechat/latency.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

struct fault {
  std::string path;
  std::optional<int> errcode;
  std::optional<int> http_status;
  std::int64_t delay_ms = 0;
  bool drop = false;
  bool malformed = false;
  bool truncated = false;
  std::size_t oversized = 0;
  std::string content_type;
  std::int64_t times = -1;   ///< calls left; -1: unlimited (until cleared)
  double probability = 1.0;  ///< chance per call, when times is unlimited
  std::uint64_t id = 0;
  /// A delay drawn per call, added to delay_ms (last, so that code initialising the fields
  /// above in order keeps compiling).
  latency_spec latency;

  /// This fault's delay for one call, in microseconds: delay_ms plus a draw of `latency`
  /// from `random64` (latency.hpp's draw_us), at most max_latency_us.
  std::int64_t delay_us(std::uint64_t random64) const noexcept {
    const std::int64_t fixed_us = std::clamp<std::int64_t>(delay_ms, 0, max_latency_ms) * 1000;
    return std::min(fixed_us + draw_us(latency, random64), max_latency_us);
  }

  /// Parses the admin API's fault object; throws admin_error(400) naming the field.
  static fault from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw admin_error(400, "the fault must be a JSON object");
    // a typo ("time": 1) would leave the fault unlimited: refused, naming the fields
    detail::known_fields_only(j, "fault",
                              {"path", "errcode", "http_status", "delay_ms", "latency", "oversized",
                               "drop", "malformed", "truncated", "content_type", "times",
                               "probability"});
    fault f;
    auto str = [&](const char* k) -> std::string {
      const auto it = j.find(k);
      if (it == j.end()) return {};
      if (!it->is_string())
        throw admin_error(400, std::string("field '") + k + "' must be a string");
      return it->get<std::string>();
    };
    // (an unsigned value past INT64_MAX is out of range, not read as a negative one)
    auto integer = [&](const char* k, std::int64_t lo,
                       std::int64_t hi) -> std::optional<std::int64_t> {
      const auto it = j.find(k);
      if (it == j.end()) return std::nullopt;
      const auto v = detail::integer_in(*it, lo, hi);
      if (!v) throw admin_error(400, detail::range_message(std::string("field '") + k + "'", lo, hi));
      return v;
    };
    auto flag = [&](const char* k) {
      const auto it = j.find(k);
      if (it == j.end()) return false;
      if (!it->is_boolean())
        throw admin_error(400, std::string("field '") + k + "' must be true or false");
      return it->get<bool>();
    };
    f.path = str("path");
    if (f.path.empty())
      throw admin_error(400, "field 'path' is required (a WeChat endpoint path, or \"*\")");
    if (f.path != "*" && f.path[0] != '/')
      throw admin_error(400, "field 'path' must start with '/' or be \"*\"");
    if (f.path.rfind("/__mock", 0) == 0)
      throw admin_error(400, "field 'path': the admin API cannot be faulted");
    if (auto v = integer("errcode", INT32_MIN, INT32_MAX)) f.errcode = static_cast<int>(*v);
    if (auto v = integer("http_status", 100, 599)) f.http_status = static_cast<int>(*v);
    if (auto v = integer("delay_ms", 0, max_latency_ms)) f.delay_ms = *v;
    if (const auto it = j.find("latency"); it != j.end()) {
      if (!it->is_string())
        throw admin_error(400, "field 'latency' must be a string such as \"lognormal:50:120\"; " +
                                   std::string(latency_spec::expected(latency_spec::kind::none)));
      try {
        f.latency = parse_latency(it->get<std::string>());
      } catch (const latency_error& e) {
        throw admin_error(400, std::string("field 'latency': ") + e.reason());
      }
    }
    if (auto v = integer("oversized", 1, 64 << 20)) f.oversized = static_cast<std::size_t>(*v);
    f.drop = flag("drop");
    f.malformed = flag("malformed");
    f.truncated = flag("truncated");
    f.content_type = str("content_type");
    if (detail::has_control_char(f.content_type))
      throw admin_error(400, "field 'content_type' must not contain control characters");
    const int kinds = f.errcode.has_value() + f.http_status.has_value() + f.drop + f.malformed +
                      f.truncated + (f.oversized > 0) + !f.content_type.empty();
    if (kinds > 1)
      throw admin_error(400,
                        "give one of errcode, http_status, drop, malformed, truncated, oversized, "
                        "content_type (delay_ms and latency combine with any)");
    if (kinds == 0 && f.delay_ms == 0 && !f.latency.enabled())
      throw admin_error(400,
                        "the fault needs one of errcode, http_status, delay_ms, latency, drop, "
                        "malformed, truncated, oversized, content_type");
    if (auto v = integer("times", 1, INT32_MAX)) f.times = *v;
    if (const auto it = j.find("probability"); it != j.end()) {
      if (!it->is_number() || it->get<double>() < 0.0 || it->get<double>() > 1.0)
        throw admin_error(400, "field 'probability' must be a number from 0 to 1");
      if (f.times > 0) throw admin_error(400, "give 'times' or 'probability', not both");
      f.probability = it->get<double>();
    }
    return f;
  }

  nlohmann::json to_json() const {
    nlohmann::json j = {{"id", id}, {"path", path}};
    if (errcode) j["errcode"] = *errcode;
    if (http_status) j["http_status"] = *http_status;
    if (delay_ms) j["delay_ms"] = delay_ms;
    if (latency.enabled()) j["latency"] = latency.to_string();
    if (drop) j["drop"] = true;
    if (malformed) j["malformed"] = true;
    if (truncated) j["truncated"] = true;
    if (oversized) j["oversized"] = oversized;
    if (!content_type.empty()) j["content_type"] = content_type;
    if (times >= 0)
      j["times"] = times;
    else
      j["probability"] = probability;
    return j;
  }
};

/// The set of active faults. Cheap when empty: one relaxed atomic load per request.
class fault_table {
public:
  /// Active faults at most: each request scans them, and an admin caller must not be able
  /// to grow them without end.
  static constexpr std::size_t max_faults = 1000;

  /// Adds a fault; its id. At max_faults active faults: admin_error 507.
  std::uint64_t add(fault f) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (faults_.size() >= max_faults)
      throw admin_error(507, "the mock holds " + std::to_string(max_faults) +
                                 " active faults, its limit: DELETE /__mock/faults first");
    f.id = ++next_id_;
    faults_.push_back(std::move(f));
    count_.store(faults_.size(), std::memory_order_release);
    return next_id_;
  }

  /// Removes the fault with this id (what add() returned); false when none is active.
  bool remove(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = std::find_if(faults_.begin(), faults_.end(), [&](const fault& f) { return f.id == id; });
    if (it == faults_.end()) return false;
    faults_.erase(it);
    count_.store(faults_.size(), std::memory_order_release);
    return true;
  }

  /// Removes every fault, or those of one path.
  void clear(std::string_view path = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (path.empty())
      faults_.clear();
    else
      faults_.erase(std::remove_if(faults_.begin(), faults_.end(),
                                   [&](const fault& f) { return f.path == path; }),
                    faults_.end());
    count_.store(faults_.size(), std::memory_order_release);
  }

  nlohmann::json to_json() const {
    std::lock_guard<std::mutex> lock(mutex_);
    nlohmann::json a = nlohmann::json::array();
    for (const auto& f : faults_)
      a.push_back(f.to_json());
    return a;
  }

  /// Seeds the table's randomness (the mock's --seed): the generator deciding which calls
  /// a `probability` fault hits, and the counter-based stream of fault latency draws
  /// (restarted at draw 0). Call before serving, or between runs.
  void seed(std::uint64_t s) {
    std::lock_guard<std::mutex> lock(mutex_);
    rng_.seed(s);
    // Its own stream: the global --latency draws from counter_random(s, n) too.
    latency_seed_.store(s ^ fault_stream, std::memory_order_relaxed);
    latency_draws_.store(0, std::memory_order_relaxed);
  }

  /// The delay of one call that `f` (from take()) applies to, in microseconds: delay_ms
  /// plus a draw of f.latency from the table's seeded counter; at most max_latency_us.
  /// Thread-safe, lock-free.
  std::int64_t delay_us(const fault& f) noexcept {
    if (!f.latency.enabled()) return f.delay_us(0);
    const std::uint64_t n = latency_draws_.fetch_add(1, std::memory_order_relaxed);
    return f.delay_us(counter_random(latency_seed_.load(std::memory_order_relaxed), n));
  }

  /// The fault that applies to this call of `path`, if any (consuming one of its times).
  std::optional<fault> take(std::string_view path) {
    if (count_.load(std::memory_order_acquire) == 0) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (it->path != "*" && it->path != path) continue;
      if (it->times < 0) {
        // 53 bits of mt19937_64 (whose output the standard fixes, unlike its distributions')
        if (it->probability < 1.0 &&
            static_cast<double>(rng_() >> 11) / 9007199254740992.0 >= it->probability)
          continue;
        return *it;
      }
      fault f = *it;
      if (--it->times == 0) {
        faults_.erase(it);
        count_.store(faults_.size(), std::memory_order_release);
      }
      return f;
    }
    return std::nullopt;
  }

private:
  mutable std::mutex mutex_;
  std::vector<fault> faults_;
  std::atomic<std::size_t> count_{0};
  std::uint64_t next_id_ = 0;
  std::mt19937_64 rng_{random_seed()};
  static constexpr std::uint64_t fault_stream = 0x6661756c7473ULL;  // "faults"
  std::atomic<std::uint64_t> latency_seed_{random_seed()};
  std::atomic<std::uint64_t> latency_draws_{0};
};

}  // namespace mock_wechat
