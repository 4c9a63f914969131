// mock_wechat/latency.hpp - delays drawn from a distribution, reproducible from a seed.
//
// A latency spec (the mock's `--latency SPEC`, a fault's "latency" field) is one of
//   none                    no delay ("0" means the same)
//   fixed:MS                exactly MS
//   uniform:MIN:MAX         any whole microsecond from MIN to MAX, both included, equally likely
//   lognormal:MEDIAN:P99    log-normal with that median and 99th percentile: mu = ln MEDIAN,
//                           sigma = (ln P99 - ln MEDIAN) / 2.326347874 (the normal's 99% point)
// Every number is milliseconds, written as digits with at most three decimals (50, 0.5,
// 12.345, never 1e3, -1 or .5), from 0 to 600000 (the cap of a fault's delay_ms), with
// MIN <= MAX and 0 < MEDIAN <= P99. A spec holds whole microseconds, so fractions of a
// millisecond are exact and parse_latency(s.to_string()) == s for every valid spec. A bad
// spec throws latency_error (a std::invalid_argument) saying what was wrong and what is
// expected, e.g. "latency 'lognormal:50': lognormal takes 2 numbers, got 1; expected
// lognormal:MEDIAN:P99 (milliseconds, 0 < MEDIAN <= P99 <= 600000, at most 3 decimals)".
//
// Draws are microseconds, capped at 600000 ms (a lognormal's far tail is cut there). They
// use no <random> distribution (whose output each standard library defines its own way):
// draw_us(spec, r) turns one 64-bit random number into a delay. Uniform: MIN + r mod
// (MAX - MIN + 1) (bias below 1e-10). Lognormal: Box-Muller, u1 from the top 53 bits of r
// and u2 from those of splitmix64's next output after r, z = sqrt(-2 ln u1) cos(2 pi u2),
// delay = exp(mu + sigma z) rounded to the microsecond. Only the libm functions may differ
// across platforms, by an ulp, which moves a rare draw by 1 us.
//
// The random numbers are counter-based: draw n of a seed is counter_random(seed, n), the
// n-th output of splitmix64 started from mix64(seed) (the seed is mixed first so that nearby
// seeds, 1 and 2, give unrelated streams, which plain splitmix64(seed ^ n) would not). A
// latency_source takes n from an atomic counter, so a run with a given seed draws the same
// multiset of delays whatever the thread timing (which request gets which delay still
// follows arrival order). Without a seed, seed from random_seed() (std::random_device).
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>  // std::random_device only
#include <stdexcept>
#include <string>
#include <string_view>

namespace mock_wechat {

namespace detail {

// At most `max` characters of `s` (then "..."), each byte outside printable ASCII as '?':
// what an error message may repeat of its input.
inline std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (const char c : s.substr(0, s.size() > max ? max - 3 : max))
    out += static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f ? '?' : c;
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace detail

/// The largest delay a spec may name, and the cap of every draw (as a fault's delay_ms).
inline constexpr std::int64_t max_latency_ms = 600000;
inline constexpr std::int64_t max_latency_us = max_latency_ms * 1000;

/// A bad latency spec. what(): "latency 'SPEC': REASON; expected FORM"; reason(): from
/// REASON on (for callers that name the spec their own way, as the admin API's field).
class latency_error : public std::invalid_argument {
public:
  latency_error(std::string_view spec, const std::string& reason)
      : std::invalid_argument(prefix(spec) + reason), reason_at_(prefix(spec).size()) {}
  const char* reason() const noexcept { return what() + reason_at_; }

private:
  static std::string prefix(std::string_view spec) {
    return "latency '" + detail::printable(spec, 64) + "': ";
  }
  std::size_t reason_at_;
};

/// A delay distribution; parameters in whole microseconds (specs are written in ms).
struct latency_spec {
  enum class kind { none, fixed, uniform, lognormal };
  kind type = kind::none;
  std::int64_t a_us = 0;  ///< fixed: the delay; uniform: MIN; lognormal: MEDIAN
  std::int64_t b_us = 0;  ///< uniform: MAX; lognormal: P99; fixed: the delay again

  /// Checked constructors (microseconds); they throw latency_error as parse_latency does.
  static latency_spec fixed(std::int64_t us) { return checked({kind::fixed, us, us}); }
  static latency_spec uniform(std::int64_t min_us, std::int64_t max_us) {
    return checked({kind::uniform, min_us, max_us});
  }
  static latency_spec lognormal(std::int64_t median_us, std::int64_t p99_us) {
    return checked({kind::lognormal, median_us, p99_us});
  }

  bool enabled() const noexcept { return type != kind::none; }

  /// The spec as parse_latency reads it: "none", "fixed:50", "uniform:0.5:2",
  /// "lognormal:50:120" (milliseconds, at most 3 decimals, no trailing zeros).
  std::string to_string() const {
    switch (type) {
    case kind::fixed: return "fixed:" + ms(a_us);
    case kind::uniform: return "uniform:" + ms(a_us) + ":" + ms(b_us);
    case kind::lognormal: return "lognormal:" + ms(a_us) + ":" + ms(b_us);
    case kind::none: break;
    }
    return "none";
  }

  friend bool operator==(const latency_spec& x, const latency_spec& y) noexcept {
    return x.type == y.type && x.a_us == y.a_us && x.b_us == y.b_us;
  }
  friend bool operator!=(const latency_spec& x, const latency_spec& y) noexcept {
    return !(x == y);
  }

  /// What a spec of kind `k` must look like (the "expected ..." of error messages).
  static const char* expected(kind k) noexcept {
    switch (k) {
    case kind::fixed: return "expected fixed:MS (milliseconds, 0 to 600000, at most 3 decimals)";
    case kind::uniform:
      return "expected uniform:MIN:MAX (milliseconds, 0 <= MIN <= MAX <= 600000, at most 3 "
             "decimals)";
    case kind::lognormal:
      return "expected lognormal:MEDIAN:P99 (milliseconds, 0 < MEDIAN <= P99 <= 600000, at most "
             "3 decimals)";
    case kind::none: break;
    }
    return "expected none, fixed:MS, uniform:MIN:MAX or lognormal:MEDIAN:P99 (milliseconds, at "
           "most 3 decimals, up to 600000)";
  }

private:
  static std::string ms(std::int64_t us) {
    std::string s = std::to_string(us / 1000);
    if (const auto frac = us % 1000) {
      std::string f = std::to_string(frac);
      f.insert(0, 3 - f.size(), '0');
      while (f.back() == '0')
        f.pop_back();
      s += "." + f;
    }
    return s;
  }
  static latency_spec checked(latency_spec s) {
    auto fail = [&](const std::string& why) {
      // The caller gave microseconds, not a spec: show them so, e.g. "uniform(9000 us, 10 us)".
      static const char* const names[] = {"none", "fixed", "uniform", "lognormal"};
      throw latency_error(
          std::string(names[static_cast<int>(s.type)]) + "(" + std::to_string(s.a_us) + " us" +
              (s.type == kind::fixed ? "" : ", " + std::to_string(s.b_us) + " us") + ")",
          why + "; " + expected(s.type));
    };
    if (s.a_us < 0 || s.b_us < 0) fail("a negative delay");
    if (s.a_us > max_latency_us || s.b_us > max_latency_us)
      fail("above the cap of " + std::to_string(max_latency_ms) + " ms");
    if (s.type == kind::uniform && s.a_us > s.b_us) fail("MIN above MAX");
    if (s.type == kind::lognormal && s.a_us == 0) fail("MEDIAN 0");
    if (s.type == kind::lognormal && s.b_us < s.a_us) fail("P99 below MEDIAN");
    return s;
  }
};

namespace detail {

// Milliseconds with at most 3 decimals, 0 to max_latency_ms, as whole microseconds; false
// on anything else, with `why` set.
inline bool parse_latency_ms(std::string_view t, std::int64_t& us, std::string& why) {
  const std::string shown = "'" + printable(t, 20) + "'";
  const auto dot = t.find('.');
  const std::string_view whole = t.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : t.substr(dot + 1);
  auto digits = [](std::string_view d) {
    if (d.empty()) return false;
    for (const char c : d)
      if (c < '0' || c > '9') return false;
    return true;
  };
  if (!digits(whole) || (dot != std::string_view::npos && !digits(frac))) {
    why = shown + " is not a number of milliseconds";
    return false;
  }
  if (frac.size() > 3) {
    why = shown + " has more than 3 decimals (the unit is the microsecond)";
    return false;
  }
  std::size_t lead = 0;
  while (lead + 1 < whole.size() && whole[lead] == '0')
    ++lead;
  if (whole.size() - lead > 6) {
    why = shown + " ms is above the cap of " + std::to_string(max_latency_ms) + " ms";
    return false;
  }
  std::int64_t v = 0;
  for (const char c : whole.substr(lead))
    v = v * 10 + (c - '0');
  for (std::size_t i = 0; i < 3; ++i)
    v = v * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  if (v > max_latency_us) {
    why = shown + " ms is above the cap of " + std::to_string(max_latency_ms) + " ms";
    return false;
  }
  us = v;
  return true;
}

// A draw within [0, max_latency_us] (specs built by hand may hold anything).
constexpr std::int64_t clamp_delay_us(std::int64_t us) noexcept {
  return us < 0 ? 0 : us > max_latency_us ? max_latency_us : us;
}

}  // namespace detail

/// Reads "none", "0", "fixed:MS", "uniform:MIN:MAX" or "lognormal:MEDIAN:P99" (ms, at most
/// 3 decimals, up to 600000; MIN <= MAX; 0 < MEDIAN <= P99). Throws latency_error.
inline latency_spec parse_latency(std::string_view text) {
  using kind = latency_spec::kind;
  if (text == "none" || text == "0") return {};
  const auto colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  kind k = kind::none;
  std::size_t want = 0;
  if (name == "fixed") {
    k = kind::fixed;
    want = 1;
  } else if (name == "uniform") {
    k = kind::uniform;
    want = 2;
  } else if (name == "lognormal") {
    k = kind::lognormal;
    want = 2;
  } else {
    throw latency_error(text, (text.empty()
                                   ? std::string("empty")
                                   : "unknown distribution '" + detail::printable(name, 20) + "'") +
                                  "; " + latency_spec::expected(kind::none));
  }
  auto fail = [&](const std::string& why) {
    throw latency_error(text, why + "; " + latency_spec::expected(k));
  };
  std::int64_t v[2] = {0, 0};
  std::size_t got = 0;
  if (colon != std::string_view::npos) {
    std::string_view rest = text.substr(colon + 1);
    for (;;) {
      const auto next = rest.find(':');
      const std::string_view field = rest.substr(0, next);
      std::string why;
      std::int64_t us = 0;
      if (got < want && !detail::parse_latency_ms(field, us, why)) fail(why);
      if (got < want) v[got] = us;
      ++got;
      if (next == std::string_view::npos) break;
      rest = rest.substr(next + 1);
    }
  }
  if (got != want)
    fail(std::string(name) + " takes " + std::to_string(want) +
         (want == 1 ? " number" : " numbers") + ", got " + std::to_string(got));
  if (k == kind::fixed) return latency_spec{k, v[0], v[0]};
  if (k == kind::uniform && v[0] > v[1]) fail("MIN above MAX");
  if (k == kind::lognormal && v[0] == 0) fail("MEDIAN 0 (a log-normal needs MEDIAN > 0)");
  if (k == kind::lognormal && v[1] < v[0]) fail("P99 below MEDIAN");
  return latency_spec{k, v[0], v[1]};
}

/// splitmix64's output function: a bijection of 64-bit values, every input bit reaching
/// every output bit.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// splitmix64's increment (the golden ratio in 64 bits).
inline constexpr std::uint64_t splitmix64_gamma = 0x9e3779b97f4a7c15ULL;

/// Random number n of `seed`: splitmix64 started from mix64(seed), output n (from 0).
/// Any n in any order, from any thread: no state.
constexpr std::uint64_t counter_random(std::uint64_t seed, std::uint64_t n) noexcept {
  return mix64(mix64(seed) + (n + 1) * splitmix64_gamma);
}

/// 64 bits from std::random_device, for a run given no seed.
inline std::uint64_t random_seed() {
  std::random_device rd;
  const std::uint64_t hi = rd();
  return (hi << 32) ^ rd();
}

/// One delay in microseconds from one 64-bit random number (see the top of this file):
/// 0 for none, the same random number always giving the same delay. At most max_latency_us.
inline std::int64_t draw_us(const latency_spec& s, std::uint64_t random64) noexcept {
  using kind = latency_spec::kind;
  switch (s.type) {
  case kind::none: return 0;
  case kind::fixed: return detail::clamp_delay_us(s.a_us);
  case kind::uniform: {
    if (s.b_us <= s.a_us) return detail::clamp_delay_us(s.a_us);
    const auto span = static_cast<std::uint64_t>(s.b_us) - static_cast<std::uint64_t>(s.a_us) + 1;
    return detail::clamp_delay_us(
        static_cast<std::int64_t>(static_cast<std::uint64_t>(s.a_us) + random64 % span));
  }
  case kind::lognormal: {
    if (s.a_us <= 0 || s.b_us <= 0) return 0;  // not a valid spec: parse refuses MEDIAN 0
    constexpr double two_pow_53 = 9007199254740992.0;
    constexpr double two_pi = 6.283185307179586476925;
    constexpr double z99 = 2.3263478740408408;  // the standard normal's 99th percentile
    const double mu = std::log(static_cast<double>(s.a_us));
    const double sigma = (std::log(static_cast<double>(s.b_us)) - mu) / z99;
    const double u1 = static_cast<double>((random64 >> 11) + 1) / two_pow_53;  // (0, 1]
    const double u2 =
        static_cast<double>(mix64(random64 + splitmix64_gamma) >> 11) / two_pow_53;  // [0, 1)
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
    const double us = std::exp(mu + sigma * z);
    if (!(us < static_cast<double>(max_latency_us))) return max_latency_us;  // also NaN
    return static_cast<std::int64_t>(std::llround(us));
  }
  }
  return 0;
}

/// A spec and a seed: thread-safe draws, draw n = draw_us(spec, counter_random(seed, n)).
class latency_source {
public:
  /// Seeded from std::random_device (a run that cannot be replayed).
  explicit latency_source(latency_spec spec = {}) : latency_source(spec, random_seed()) {}
  latency_source(latency_spec spec, std::uint64_t seed) noexcept : spec_(spec), seed_(seed) {}

  /// The next delay in microseconds; 0 (and no draw counted) for none. Thread-safe.
  std::int64_t draw_us() noexcept {
    if (!spec_.enabled()) return 0;
    const std::uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
    return mock_wechat::draw_us(spec_, counter_random(seed_, n));
  }

  const latency_spec& spec() const noexcept { return spec_; }
  std::uint64_t seed() const noexcept { return seed_; }
  /// Draws so far.
  std::uint64_t draws() const noexcept { return next_.load(std::memory_order_relaxed); }

private:
  latency_spec spec_;
  std::uint64_t seed_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace mock_wechat
