// loadtest/plan.hpp - open-loop arrival plans: constant rates and piecewise-linear ramps.
//
// Arrival k is due where the integral of the rate reaches k; inside a segment with rate
// a + b*t that is a closed form (no summing of 1/r steps, so no drift).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <mock_wechat/detail/http_text.hpp>

namespace loadtest {

namespace detail {

using mock_wechat::detail::http1::trim;  // spaces and tabs (mock_wechat/detail/http_text.hpp)

/// A whole-string finite decimal number, or false.
inline bool parse_number(std::string_view s, double& out) noexcept {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out, std::chars_format::fixed);
  return ec == std::errc{} && ptr == end && std::isfinite(out);
}

}  // namespace detail

/// A duration such as "5s", "250ms", "2m", "1h" or "1.5s", in seconds. Throws
/// std::invalid_argument naming the text for anything else (a bare number, a negative or
/// non-finite value, an unknown unit).
inline double parse_duration_s(std::string_view text) {
  const std::string_view s = detail::trim(text);
  std::size_t unit_at = s.size();
  while (unit_at > 0 && ((s[unit_at - 1] >= 'a' && s[unit_at - 1] <= 'z') ||
                         (s[unit_at - 1] >= 'A' && s[unit_at - 1] <= 'Z'))) {
    --unit_at;
  }
  const std::string_view number = s.substr(0, unit_at);
  const std::string_view unit = s.substr(unit_at);
  const auto bad = [&](const char* why) {
    return std::invalid_argument("duration '" + std::string(text) + "': " + why);
  };
  double scale = 0;
  if (unit == "s") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1e-3;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit.empty()) {
    throw bad("needs a unit (s, ms, m or h), e.g. 30s");
  } else {
    throw bad("unknown unit (s, ms, m or h)");
  }
  double value = 0;
  if (!detail::parse_number(number, value)) throw bad("expected a number before the unit");
  if (value < 0) throw bad("must not be negative");
  return value * scale;
}

/// One piece of a plan: the rate goes linearly from `from_rps` to `to_rps` over `seconds`.
struct rate_segment {
  double from_rps;
  double to_rps;
  double seconds;
};

/// When each arrival of an open-loop run is due. Immutable after parse(); due_s() is
/// const and may be called from several threads.
class arrival_plan {
public:
  /// Parses "500/s" or "500" (constant for `default_duration_s`) or segments separated by
  /// commas, each "R/s:D" or "A-B/s:D" (a ramp from A to B), e.g.
  /// "0-2000/s:60s,2000/s:30s"; durations as parse_duration_s. A lone segment without
  /// ":D" runs for `default_duration_s`; with several segments each needs its duration.
  /// A 0/s segment is a pause. Throws std::invalid_argument naming the bad part: a bad
  /// number or unit, a negative rate, a zero duration, or a plan that sends nothing.
  static arrival_plan parse(std::string_view spec, double default_duration_s) {
    const auto whole = [&] { return "rate plan '" + std::string(spec) + "': "; };
    std::vector<std::string_view> parts;
    for (std::string_view rest = spec;;) {
      const std::size_t comma = rest.find(',');
      parts.push_back(detail::trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    std::vector<rate_segment> segments;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const std::string_view part = parts[i];
      const auto bad = [&](const std::string& why) {
        std::string message = whole();
        if (parts.size() > 1) message += "segment " + std::to_string(i + 1) + " ";
        message += '\'';
        message += part;
        message += "': ";
        message += why;
        return std::invalid_argument(message);
      };
      if (part.empty()) throw bad("empty segment (expected R/s:D or A-B/s:D)");
      const std::size_t colon = part.find(':');
      std::string_view rate = detail::trim(part.substr(0, colon));
      double seconds = default_duration_s;
      if (colon != std::string_view::npos) {
        try {
          seconds = parse_duration_s(part.substr(colon + 1));
        } catch (const std::invalid_argument& e) {
          throw bad(e.what());
        }
      } else if (parts.size() > 1) {
        throw bad("needs a duration, e.g. '" + std::string(part) + ":30s'");
      }
      if (!(seconds > 0) || !std::isfinite(seconds)) {
        throw bad(colon == std::string_view::npos ? "the run's duration must be > 0"
                                                  : "the duration must be > 0");
      }
      if (rate.size() >= 2 && rate.substr(rate.size() - 2) == "/s") {
        rate.remove_suffix(2);
      } else if (rate.find('/') != std::string_view::npos) {
        throw bad("the rate's unit must be /s");
      }
      const std::size_t dash = rate.find('-', 1);  // not a leading minus sign
      double from = 0;
      double to = 0;
      if (dash == std::string_view::npos) {
        if (!detail::parse_number(rate, from)) throw bad("expected a rate such as 500/s");
        to = from;
      } else if (!detail::parse_number(rate.substr(0, dash), from) ||
                 !detail::parse_number(rate.substr(dash + 1), to)) {
        throw bad("expected a ramp such as 0-2000/s");
      }
      if (from < 0 || to < 0) throw bad("a rate must not be negative");
      segments.push_back({from, to, seconds});
    }
    arrival_plan plan(std::move(segments));
    if (plan.peak_rps() == 0) throw std::invalid_argument(whole() + "the rate is 0 throughout");
    if (plan.total() == 0)
      throw std::invalid_argument(whole() + "sends no request (fewer than 1 in all)");
    return plan;
  }

  /// A plan from segments already checked by the caller (rates >= 0, durations > 0).
  explicit arrival_plan(std::vector<rate_segment> segments) : segments_(std::move(segments)) {
    double t = 0;
    double n = 0;
    for (const rate_segment& s : segments_) {
      start_s_.push_back(t);
      start_n_.push_back(n);
      t += s.seconds;
      n += (s.from_rps + s.to_rps) / 2 * s.seconds;
      peak_ = std::max({peak_, s.from_rps, s.to_rps});
    }
    duration_ = t;
    // The floor of the integral, forgiving rounding just below a whole number.
    total_ = static_cast<std::uint64_t>(std::floor(n + 1e-9 * std::max(1.0, n)));
  }

  /// When arrival k (0-based) is due, in seconds after the start; +infinity when
  /// k >= total(). An arrival exactly on a segment boundary is due at the boundary.
  double due_s(std::uint64_t k) const noexcept {
    if (k >= total_) return std::numeric_limits<double>::infinity();
    const auto kd = static_cast<double>(k);
    // The last segment that starts at or before arrival k. Never a pause: the segment
    // after a pause starts at the same count, and k < total() rules out a trailing pause.
    const auto it = std::upper_bound(start_n_.begin(), start_n_.end(), kd);
    const std::size_t i = static_cast<std::size_t>(it - start_n_.begin()) - 1;
    const rate_segment& s = segments_[i];
    const double x = kd - start_n_[i];  // arrivals into this segment
    if (x <= 0) return start_s_[i];
    const double a = s.from_rps;
    const double b = (s.to_rps - s.from_rps) / s.seconds;
    // a*t + b*t^2/2 = x, the root in a stable form (no cancellation for small b).
    const double root = std::sqrt(std::max(0.0, a * a + 2 * b * x));
    const double t = a + root > 0 ? 2 * x / (a + root) : s.seconds;
    return start_s_[i] + std::min(t, s.seconds);
  }

  /// Arrivals in the whole plan: the floor of the rate's integral.
  std::uint64_t total() const noexcept { return total_; }
  /// The plan's length in seconds.
  double duration_s() const noexcept { return duration_; }
  /// The highest rate anywhere in the plan.
  double peak_rps() const noexcept { return peak_; }
  /// The plan's target rate at `t` seconds after the start; 0 outside [0, duration_s()).
  /// On a boundary, the next segment's rate.
  double rate_at(double t) const noexcept {
    if (!(t >= 0) || t >= duration_) return 0;
    const auto it = std::upper_bound(start_s_.begin(), start_s_.end(), t);
    const std::size_t i = static_cast<std::size_t>(it - start_s_.begin()) - 1;
    const rate_segment& s = segments_[i];
    const double f = std::min(1.0, (t - start_s_[i]) / s.seconds);
    return s.from_rps + (s.to_rps - s.from_rps) * f;
  }
  /// The segments, in order.
  const std::vector<rate_segment>& segments() const noexcept { return segments_; }

private:
  std::vector<rate_segment> segments_;
  std::vector<double> start_s_;  // when each segment starts
  std::vector<double> start_n_;  // arrivals (fractional) before each segment
  double duration_ = 0;
  double peak_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace loadtest
