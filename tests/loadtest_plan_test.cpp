// loadtest/plan.hpp: arrival plans (constant, ramps, pauses) and durations.
#include <loadtest/plan.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

using loadtest::arrival_plan;
using loadtest::parse_duration_s;

namespace {

// The number of arrivals due by time t, by integrating the plan's rate_at() numerically
// (midpoint rule, 10^4 steps per segment, split at the segments' edges where the rate may
// jump): independent of due_s()'s closed form.
double integral_to(const arrival_plan& plan, double t) {
  double n = 0;
  double start = 0;
  for (const loadtest::rate_segment& s : plan.segments()) {
    const double end = std::min(t, start + s.seconds);
    const int steps = 10'000;
    const double h = (end - start) / steps;
    for (int i = 0; end > start && i < steps; ++i)
      n += plan.rate_at(start + (i + 0.5) * h) * h;
    start += s.seconds;
    if (start >= t) break;
  }
  return n;
}

std::string message_of(const std::string& spec, double duration = 10) {
  try {
    (void)arrival_plan::parse(spec, duration);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a constant rate spaces arrivals evenly", "[loadtest][plan]") {
  SECTION("500/s") {
    const arrival_plan plan = arrival_plan::parse("500/s", 10);
    CHECK(plan.total() == 5000);
    CHECK(plan.duration_s() == 10);
    CHECK(plan.peak_rps() == 500);
    CHECK(plan.due_s(0) == 0);
    CHECK(plan.due_s(1) == Approx(0.002));
    CHECK(plan.due_s(4999) == Approx(9.998));
    CHECK(plan.rate_at(3) == 500);
  }
  SECTION("a bare number is per second too") {
    const arrival_plan plan = arrival_plan::parse("500", 2);
    CHECK(plan.total() == 1000);
    CHECK(plan.due_s(250) == Approx(0.5));
  }
  SECTION("no drift after millions of arrivals") {
    const arrival_plan plan = arrival_plan::parse("3/s", 3'000'000);
    CHECK(plan.total() == 9'000'000);
    CHECK(plan.due_s(8'999'999) == Approx(8'999'999.0 / 3).epsilon(1e-15));
  }
  SECTION("a lone segment's own duration wins over the run's") {
    const arrival_plan plan = arrival_plan::parse("100/s:2s", 99);
    CHECK(plan.duration_s() == 2);
    CHECK(plan.total() == 200);
  }
}

TEST_CASE("due times past the plan are infinite", "[loadtest][plan]") {
  const arrival_plan plan = arrival_plan::parse("10/s", 1);
  CHECK(plan.total() == 10);
  CHECK(std::isfinite(plan.due_s(9)));
  CHECK(plan.due_s(10) == std::numeric_limits<double>::infinity());
  CHECK(plan.due_s(UINT64_MAX) == std::numeric_limits<double>::infinity());
}

TEST_CASE("a ramp's closed form matches the numeric integral of its rate", "[loadtest][plan]") {
  const std::string spec =
      GENERATE(as<std::string>{}, "0-2000/s:60s,2000/s:30s", "100-10/s:20s,0/s:5s,5-50/s:10s",
               "1000-0/s:3s", "7-7.5/s:100s");
  CAPTURE(spec);
  const arrival_plan plan = arrival_plan::parse(spec, 0);
  const std::uint64_t total = plan.total();
  REQUIRE(total > 0);
  CHECK(static_cast<double>(total) <= integral_to(plan, plan.duration_s()) + 1e-6);
  CHECK(static_cast<double>(total) + 1 > integral_to(plan, plan.duration_s()) - 1e-6);
  double previous = -1;
  std::uint64_t out_of_order = 0;
  for (std::uint64_t k = 0; k < total; ++k) {
    const double t = plan.due_s(k);
    if (!(t >= previous) || t >= plan.duration_s()) ++out_of_order;
    previous = t;
  }
  CHECK(out_of_order == 0);
  for (const std::uint64_t k :
       {std::uint64_t{1}, total / 7, total / 3, total / 2, total - total / 5, total - 1}) {
    const double t = plan.due_s(k);
    CAPTURE(k, t);
    CHECK(integral_to(plan, t) == Approx(static_cast<double>(k)).margin(1e-3).epsilon(1e-6));
  }
}

TEST_CASE("a ramp from 0 to 2000/s over 60 s then 30 s at 2000/s", "[loadtest][plan]") {
  const arrival_plan plan = arrival_plan::parse("0-2000/s:60s,2000/s:30s", 0);
  CHECK(plan.total() == 60'000 + 60'000);
  CHECK(plan.duration_s() == 90);
  CHECK(plan.peak_rps() == 2000);
  CHECK(plan.rate_at(0) == 0);
  CHECK(plan.rate_at(30) == Approx(1000));
  CHECK(plan.rate_at(60) == 2000);
  CHECK(plan.rate_at(90) == 0);
  CHECK(plan.rate_at(-1) == 0);
  // N(t) = 2000/60 * t^2 / 2 in the ramp: arrival k at sqrt(0.06 k).
  CHECK(plan.due_s(1) == Approx(std::sqrt(0.06)));
  CHECK(plan.due_s(15'000) == Approx(30));
  SECTION("an arrival exactly on the boundary is due at the boundary") {
    CHECK(plan.due_s(59'999) < 60);
    CHECK(plan.due_s(60'000) == 60);
    CHECK(plan.due_s(60'001) == Approx(60.0005));
  }
}

TEST_CASE("a pause sends nothing and the next segment starts after it", "[loadtest][plan]") {
  const arrival_plan plan = arrival_plan::parse("10/s:1s, 0/s:2s, 10/s:1s", 0);
  CHECK(plan.total() == 20);
  CHECK(plan.duration_s() == 4);
  CHECK(plan.rate_at(1.5) == 0);
  CHECK(plan.due_s(9) == Approx(0.9));
  CHECK(plan.due_s(10) == 3);  // after the pause, not at its start
  CHECK(plan.due_s(19) == Approx(3.9));
  SECTION("a fractional count carries across segments") {
    const arrival_plan p2 = arrival_plan::parse("2.5/s:1s,0-0/s:1s,5/s:1s", 0);
    CHECK(p2.total() == 7);
    CHECK(p2.due_s(2) == Approx(0.8));
    CHECK(p2.due_s(3) == Approx(2.1));  // 0.5 arrivals into the third segment at 5/s
  }
}

TEST_CASE("bad plans are refused naming the bad part", "[loadtest][plan]") {
  CHECK(message_of("0/s") == "rate plan '0/s': the rate is 0 throughout");
  CHECK(message_of("0/s:1s,0-0/s:5s") == "rate plan '0/s:1s,0-0/s:5s': the rate is 0 throughout");
  CHECK(message_of("0.5/s", 1) == "rate plan '0.5/s': sends no request (fewer than 1 in all)");
  CHECK(message_of("-5/s") == "rate plan '-5/s': '-5/s': a rate must not be negative");
  CHECK(message_of("5--3/s:1s") ==
        "rate plan '5--3/s:1s': '5--3/s:1s': a rate must not be negative");
  CHECK(message_of("nan/s") == "rate plan 'nan/s': 'nan/s': expected a rate such as 500/s");
  CHECK(message_of("inf") == "rate plan 'inf': 'inf': expected a rate such as 500/s");
  CHECK(message_of("500/m") == "rate plan '500/m': '500/m': the rate's unit must be /s");
  CHECK(message_of("fast") == "rate plan 'fast': 'fast': expected a rate such as 500/s");
  CHECK(message_of("0-x/s:5s") ==
        "rate plan '0-x/s:5s': '0-x/s:5s': expected a ramp such as 0-2000/s");
  CHECK(message_of("100/s:10s,200/s") ==
        "rate plan '100/s:10s,200/s': segment 2 '200/s': needs a duration, e.g. '200/s:30s'");
  CHECK(message_of("100/s:10s,,200/s:1s") ==
        "rate plan '100/s:10s,,200/s:1s': segment 2 '': empty segment (expected R/s:D or A-B/s:D)");
  CHECK(message_of("100/s:10x") ==
        "rate plan '100/s:10x': '100/s:10x': duration '10x': unknown unit (s, ms, m or h)");
  CHECK(message_of("100/s:0s") == "rate plan '100/s:0s': '100/s:0s': the duration must be > 0");
  CHECK(message_of("100/s", 0) == "rate plan '100/s': '100/s': the run's duration must be > 0");
  CHECK(message_of("100/s", std::nan("")) ==
        "rate plan '100/s': '100/s': the run's duration must be > 0");
  CHECK(message_of("") == "rate plan '': '': empty segment (expected R/s:D or A-B/s:D)");
}

TEST_CASE("durations parse in s, ms, m and h", "[loadtest][plan]") {
  CHECK(parse_duration_s("5s") == 5);
  CHECK(parse_duration_s("250ms") == Approx(0.25));
  CHECK(parse_duration_s("2m") == 120);
  CHECK(parse_duration_s("1h") == 3600);
  CHECK(parse_duration_s("1.5s") == 1.5);
  CHECK(parse_duration_s(" 30s ") == 30);
  CHECK(parse_duration_s("0s") == 0);
  SECTION("and refuse anything else, naming the text") {
    const auto message = [](const char* text) {
      try {
        (void)parse_duration_s(text);
      } catch (const std::invalid_argument& e) {
        return std::string(e.what());
      }
      return std::string("(no error)");
    };
    CHECK(message("30") == "duration '30': needs a unit (s, ms, m or h), e.g. 30s");
    CHECK(message("30sec") == "duration '30sec': unknown unit (s, ms, m or h)");
    CHECK(message("s") == "duration 's': expected a number before the unit");
    CHECK(message("-1s") == "duration '-1s': must not be negative");
    CHECK(message("1e3s") == "duration '1e3s': expected a number before the unit");
    CHECK(message("1,5s") == "duration '1,5s': expected a number before the unit");
    CHECK(message("") == "duration '': needs a unit (s, ms, m or h), e.g. 30s");
  }
}
