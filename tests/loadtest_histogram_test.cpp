// loadtest/histogram.hpp: the log-linear layout, percentiles, merge, range.
#include <loadtest/histogram.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

using loadtest::histogram;

namespace {

// Checks that v's counter holds v and is at most 1/128 of v wide; counts failures so a
// loop over a million values stays one assertion.
bool counter_holds(std::uint64_t v) {
  const std::size_t i = histogram::index_of(v);
  const std::uint64_t lo = histogram::lowest_of(i);
  const std::uint64_t w = histogram::width_of(i);
  return i < histogram::counter_count && lo <= v && v < lo + w && (w == 1 || w * 128 <= lo);
}

std::vector<std::uint64_t> lognormal_samples(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(20'000.0), 1.0);  // median 20 ms
  std::vector<std::uint64_t> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(
        std::min<std::uint64_t>(static_cast<std::uint64_t>(d(rng)), histogram::highest_trackable));
  }
  return out;
}

}  // namespace

TEST_CASE("the layout has 2533 counters and covers 60 s", "[loadtest][histogram]") {
  CHECK(histogram::counter_count == 2533);
  CHECK(histogram::index_of(histogram::highest_trackable) == histogram::counter_count - 1);
  CHECK(histogram::index_of(0) == 0);
  CHECK(histogram::index_of(255) == 255);  // exact below 256 us
  CHECK(histogram::index_of(256) == 256);
  CHECK(histogram::width_of(histogram::index_of(256)) == 2);
}

TEST_CASE("every value below 2^20 lies in its counter, at most 1/128 wide",
          "[loadtest][histogram]") {
  std::uint64_t bad = 0;
  std::uint64_t first_bad = 0;
  for (std::uint64_t v = 0; v < (std::uint64_t{1} << 20); ++v) {
    if (!counter_holds(v) && bad++ == 0) first_bad = v;
  }
  CAPTURE(first_bad);
  CHECK(bad == 0);
}

TEST_CASE("sampled values up to 60 s lie in their counters, at most 1/128 wide",
          "[loadtest][histogram]") {
  std::uint64_t bad = 0;
  std::uint64_t first_bad = 0;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::uint64_t> any(0, histogram::highest_trackable);
  for (int n = 0; n < 1'000'000; ++n) {
    const std::uint64_t v = any(rng);
    if (!counter_holds(v) && bad++ == 0) first_bad = v;
  }
  // Both edges of every counter.
  for (std::size_t i = 0; i < histogram::counter_count; ++i) {
    const std::uint64_t lo = histogram::lowest_of(i);
    const std::uint64_t hi = lo + histogram::width_of(i) - 1;
    if ((histogram::index_of(lo) != i || histogram::index_of(hi) != i) && bad++ == 0)
      first_bad = lo;
    if (i + 1 < histogram::counter_count && hi + 1 != histogram::lowest_of(i + 1) && bad++ == 0)
      first_bad = hi;
  }
  CAPTURE(first_bad);
  CHECK(bad == 0);
}

TEST_CASE("percentiles are within 1% above the exact ones of 10^5 log-normal values",
          "[loadtest][histogram]") {
  std::vector<std::uint64_t> values = lognormal_samples(100'000, 42);
  histogram h;
  for (const std::uint64_t v : values)
    h.record(v);
  std::sort(values.begin(), values.end());
  const auto n = static_cast<double>(values.size());
  for (const double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999}) {
    // HdrHistogram's rank: round(p% of n), at least the first value.
    const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(p / 100 * n + 0.5));
    const std::uint64_t exact = values[rank - 1];
    const std::uint64_t got = h.percentile(p);
    CAPTURE(p, exact, got);
    CHECK(got >= exact);
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * 1.01);
  }
  CHECK(h.percentile(100) == values.back());
  CHECK(h.percentile(0) == values.front());
  CHECK(h.max() == values.back());
  CHECK(h.min() == values.front());
  CHECK(h.count() == values.size());
  double sum = 0;
  for (const std::uint64_t v : values)
    sum += static_cast<double>(v);
  CHECK(h.mean() == Approx(sum / n).epsilon(1e-12));
}

TEST_CASE("a percentile is the counter's upper edge, clamped to the max", "[loadtest][histogram]") {
  histogram h;
  h.record(1000);  // counter [1000, 1004)
  h.record(1001);
  CHECK(h.percentile(50) == 1001);  // upper edge 1003, clamped to max 1001
  h.record(5000);
  CHECK(h.percentile(50) == 1003);  // the 2nd of 3 values: upper edge of its counter
  CHECK(h.percentile(100) == 5000);
}

TEST_CASE("merging equals recording everything into one histogram", "[loadtest][histogram]") {
  const std::vector<std::uint64_t> a = lognormal_samples(20'000, 1);
  const std::vector<std::uint64_t> b = lognormal_samples(30'000, 2);
  histogram ha;
  histogram hb;
  histogram all;
  for (const std::uint64_t v : a) {
    ha.record(v);
    all.record(v);
  }
  for (const std::uint64_t v : b) {
    hb.record(v);
    all.record(v);
  }
  hb.record(90'000'000);
  all.record(90'000'000);
  ha.add(hb);
  CHECK(ha.count() == all.count());
  CHECK(ha.min() == all.min());
  CHECK(ha.max() == all.max());
  CHECK(ha.mean() == all.mean());
  CHECK(ha.over_range() == all.over_range());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < histogram::counter_count; ++i) {
    if (ha.count_at_index(i) != all.count_at_index(i)) ++differing;
  }
  CHECK(differing == 0);
  for (const double p : {50.0, 90.0, 99.0, 99.9})
    CHECK(ha.percentile(p) == all.percentile(p));
  SECTION("merging an empty histogram changes nothing") {
    const std::uint64_t min_before = ha.min();
    ha.add(histogram{});
    CHECK(ha.min() == min_before);
    CHECK(ha.count() == all.count());
  }
}

TEST_CASE("values over 60 s are clamped into the last counter and counted",
          "[loadtest][histogram]") {
  histogram h;
  h.record(histogram::highest_trackable);
  CHECK(h.over_range() == 0);
  h.record(histogram::highest_trackable + 1);
  h.record(UINT64_C(3'600'000'000));
  CHECK(h.over_range() == 2);
  CHECK(h.count() == 3);
  CHECK(h.count_at_index(histogram::counter_count - 1) == 3);
  CHECK(h.max() == UINT64_C(3'600'000'000));  // exact
  CHECK(h.percentile(100) == UINT64_C(3'600'000'000));
  CHECK(h.percentile(10) >= histogram::highest_trackable);
}

TEST_CASE("an empty histogram answers 0", "[loadtest][histogram]") {
  histogram h;
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.percentile(100) == 0);
  CHECK(h.over_range() == 0);
}

TEST_CASE("min and max are exact, and reset forgets them", "[loadtest][histogram]") {
  histogram h;
  h.record(123'457);  // a counter 512 wide at this size
  h.record(7'654'321);
  h.record(0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 7'654'321);
  h.reset();
  h.record(123'457);
  CHECK(h.min() == 123'457);
  CHECK(h.max() == 123'457);
  CHECK(h.percentile(50) == 123'457);
  CHECK(h.count() == 1);
  CHECK(h.mean() == 123'457.0);
}
