// loadtest/histogram.hpp - a compact log-linear latency histogram (HdrHistogram's layout).
//
// 1 us .. 60 s at about 0.78% resolution: values below 256 us are exact, above that a
// counter is at most 1/128 of its value wide. 2533 uint64 counters (19.8 KiB), one fixed
// layout, so two histograms merge by adding their counters. Single writer, no atomics:
// keep one per thread and merge.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace loadtest {

/// Latencies in microseconds, HdrHistogram's index function with 128 half-buckets
/// (2 significant figures, unit 1 us). Values over 60 s land in the last counter and are
/// counted in over_range(); min(), max() and mean() stay exact.
class histogram {
public:
  /// log2 of the half-bucket count.
  static constexpr int half_magnitude = 7;
  /// Counters per half bucket (128): a counter is at most 1/128 of its value wide.
  static constexpr std::uint64_t half_count = std::uint64_t{1} << half_magnitude;
  /// The largest value kept at full resolution: 60 s in microseconds.
  static constexpr std::uint64_t highest_trackable = 60'000'000;

  /// The counter a value belongs to (no clamping; values over 60 s give indexes past the end).
  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    const int bucket = (64 - __builtin_clzll(v | (2 * half_count - 1))) - (half_magnitude + 1);
    return static_cast<std::size_t>(bucket + 1) * half_count + (v >> bucket) - half_count;
  }
  /// The smallest value counted by counter `i`.
  static constexpr std::uint64_t lowest_of(std::size_t i) noexcept {
    int bucket = static_cast<int>(i >> half_magnitude) - 1;
    std::uint64_t sub = (i & (half_count - 1)) + half_count;
    if (bucket < 0) {
      sub -= half_count;
      bucket = 0;
    }
    return sub << bucket;
  }
  /// How many values counter `i` covers: [lowest_of(i), lowest_of(i) + width_of(i)).
  static constexpr std::uint64_t width_of(std::size_t i) noexcept {
    const int bucket = static_cast<int>(i >> half_magnitude) - 1;
    return std::uint64_t{1} << (bucket < 0 ? 0 : bucket);
  }
  /// Number of counters: index_of(highest_trackable) + 1 (checked below).
  static constexpr std::size_t counter_count = 2533;

  /// Counts one value (microseconds). A value over 60 s goes into the last counter and
  /// over_range().
  void record(std::uint64_t us) noexcept {
    std::size_t i = index_of(us);
    if (us > highest_trackable) {
      i = counter_count - 1;
      ++over_range_;
    }
    ++counts_[i];
    ++total_;
    sum_ += us;
    min_ = std::min(min_, us);
    max_ = std::max(max_, us);
  }

  /// Adds every value `other` recorded, as if they had been recorded here.
  void add(const histogram& other) noexcept {
    for (std::size_t i = 0; i < counter_count; ++i)
      counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    over_range_ += other.over_range_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  /// Forgets everything recorded.
  void reset() noexcept { *this = histogram{}; }

  /// Values recorded.
  std::uint64_t count() const noexcept { return total_; }
  /// The smallest value recorded, exact; 0 when empty.
  std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  /// The largest value recorded, exact; 0 when empty.
  std::uint64_t max() const noexcept { return max_; }
  /// The exact mean of the values recorded; 0 when empty.
  double mean() const noexcept {
    return total_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(total_);
  }
  /// Values recorded over 60 s.
  std::uint64_t over_range() const noexcept { return over_range_; }

  /// The value at percentile `p` (0..100), HdrHistogram's rule: the upper edge of the
  /// counter holding the round(p% * count)-th value (at least the 1st), so never below
  /// the exact value and at most 1/128 above it; clamped to max(). p <= 0 gives min(),
  /// p >= 100 max(); 0 when empty.
  std::uint64_t percentile(double p) const noexcept {
    if (total_ == 0) return 0;
    if (!(p > 0.0)) return min();  // also NaN
    if (p >= 100.0) return max_;
    auto rank = static_cast<std::uint64_t>(std::llround(p / 100.0 * static_cast<double>(total_)));
    rank = std::max<std::uint64_t>(rank, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counter_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(lowest_of(i) + width_of(i) - 1, max_);
    }
    return max_;
  }

  /// The count in counter `i` (for reports that draw the distribution).
  std::uint64_t count_at_index(std::size_t i) const noexcept { return counts_[i]; }

private:
  std::array<std::uint64_t, counter_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;  // exact; wraps only past 1.8e19 us in total
  std::uint64_t over_range_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

static_assert(histogram::counter_count == histogram::index_of(histogram::highest_trackable) + 1,
              "the last counter holds 60 s");

}  // namespace loadtest
