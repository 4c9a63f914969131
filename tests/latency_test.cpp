// Latency specs and their draws (mock_wechat/latency.hpp): what parse_latency accepts and
// the messages of what it refuses, reproducibility from a seed across threads, and the
// distributions' shape over 100,000 draws.
#include <catch2/catch.hpp>
#include <mock_wechat/latency.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

using mock_wechat::latency_spec;
using mock_wechat::parse_latency;
using kind = mock_wechat::latency_spec::kind;

namespace {

// The message parse_latency throws for `spec` (fails the test if it does not throw).
std::string refusal(const std::string& spec) {
  try {
    const auto s = parse_latency(spec);
    FAIL("parse_latency accepted '" << spec << "' as " << s.to_string());
  } catch (const mock_wechat::latency_error& e) {
    return e.what();
  }
  return {};
}

std::vector<std::int64_t> draws(const latency_spec& s, std::uint64_t seed, std::size_t n) {
  mock_wechat::latency_source src(s, seed);
  std::vector<std::int64_t> v(n);
  for (auto& x : v)
    x = src.draw_us();
  return v;
}

// The q-quantile of sorted draws (nearest rank).
double quantile(const std::vector<std::int64_t>& sorted, double q) {
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[i]);
}

}  // namespace

TEST_CASE("parse_latency reads the three distributions and none, in ms with up to 3 decimals",
          "[latency]") {
  CHECK(parse_latency("none") == latency_spec{});
  CHECK(parse_latency("0") == latency_spec{});
  CHECK_FALSE(parse_latency("none").enabled());
  CHECK(parse_latency("fixed:50") == latency_spec{kind::fixed, 50000, 50000});
  CHECK(parse_latency("fixed:0") == latency_spec{kind::fixed, 0, 0});
  CHECK(parse_latency("fixed:0.5") == latency_spec{kind::fixed, 500, 500});
  CHECK(parse_latency("fixed:12.345") == latency_spec{kind::fixed, 12345, 12345});
  CHECK(parse_latency("fixed:007") == latency_spec{kind::fixed, 7000, 7000});
  CHECK(parse_latency("fixed:600000") == latency_spec{kind::fixed, 600000000, 600000000});
  CHECK(parse_latency("uniform:10:90") == latency_spec{kind::uniform, 10000, 90000});
  CHECK(parse_latency("uniform:5:5") == latency_spec{kind::uniform, 5000, 5000});
  CHECK(parse_latency("uniform:0:0.001") == latency_spec{kind::uniform, 0, 1});
  CHECK(parse_latency("lognormal:50:120") == latency_spec{kind::lognormal, 50000, 120000});
  CHECK(parse_latency("lognormal:0.001:0.001") == latency_spec{kind::lognormal, 1, 1});
  CHECK(parse_latency("fixed:50").enabled());
  CHECK(latency_spec::fixed(50000) == parse_latency("fixed:50"));
  CHECK(latency_spec::uniform(1, 2) == parse_latency("uniform:0.001:0.002"));
  CHECK(latency_spec::lognormal(50000, 120000) == parse_latency("lognormal:50:120"));
}

TEST_CASE("to_string gives back the spec parse_latency read", "[latency]") {
  for (const char* s :
       {"none", "fixed:50", "fixed:0", "fixed:0.5", "fixed:12.345", "fixed:0.001", "fixed:600000",
        "uniform:10:90", "uniform:0.25:1.5", "lognormal:50:120", "lognormal:0.1:599999.999"}) {
    INFO(s);
    CHECK(parse_latency(s).to_string() == s);
    CHECK(parse_latency(parse_latency(s).to_string()) == parse_latency(s));
  }
  CHECK(parse_latency("0").to_string() == "none");
  CHECK(parse_latency("fixed:0.500").to_string() == "fixed:0.5");
  CHECK(parse_latency("fixed:007").to_string() == "fixed:7");
  for (std::int64_t us = 0; us <= 3000; us += 7) {  // every shape of fraction
    const auto s = latency_spec::uniform(us, us * 3 + 1);
    CHECK(parse_latency(s.to_string()) == s);
  }
}

TEST_CASE("parse_latency refuses bad specs saying what was wrong and what is expected",
          "[latency]") {
  CHECK(refusal("lognormal:50") ==
        "latency 'lognormal:50': lognormal takes 2 numbers, got 1; expected "
        "lognormal:MEDIAN:P99 (milliseconds, 0 < MEDIAN <= P99 <= 600000, at most 3 decimals)");
  CHECK(refusal("lognormal:120:50") ==
        "latency 'lognormal:120:50': P99 below MEDIAN; expected lognormal:MEDIAN:P99 "
        "(milliseconds, 0 < MEDIAN <= P99 <= 600000, at most 3 decimals)");
  CHECK(refusal("lognormal:0:50").find("MEDIAN 0") != std::string::npos);
  CHECK(refusal("uniform:90:10") ==
        "latency 'uniform:90:10': MIN above MAX; expected uniform:MIN:MAX (milliseconds, 0 <= "
        "MIN <= MAX <= 600000, at most 3 decimals)");
  CHECK(refusal("uniform:10") == "latency 'uniform:10': uniform takes 2 numbers, got 1; "
                                 "expected uniform:MIN:MAX (milliseconds, 0 <= MIN <= MAX <= "
                                 "600000, at most 3 decimals)");
  CHECK(refusal("fixed") == "latency 'fixed': fixed takes 1 number, got 0; expected fixed:MS "
                            "(milliseconds, 0 to 600000, at most 3 decimals)");
  CHECK(refusal("fixed:1:2").find("fixed takes 1 number, got 2") != std::string::npos);
  CHECK(refusal("fixed:abc") == "latency 'fixed:abc': 'abc' is not a number of milliseconds; "
                                "expected fixed:MS (milliseconds, 0 to 600000, at most 3 "
                                "decimals)");
  CHECK(refusal("fixed:600000.001") ==
        "latency 'fixed:600000.001': '600000.001' ms is above the cap of 600000 ms; expected "
        "fixed:MS (milliseconds, 0 to 600000, at most 3 decimals)");
  CHECK(refusal("fixed:99999999999999999999999").find("above the cap of 600000 ms") !=
        std::string::npos);
  CHECK(refusal("fixed:0.0001").find("'0.0001' has more than 3 decimals") != std::string::npos);
  CHECK(refusal("gamma:1:2") ==
        "latency 'gamma:1:2': unknown distribution 'gamma'; expected none, fixed:MS, "
        "uniform:MIN:MAX or lognormal:MEDIAN:P99 (milliseconds, at most 3 decimals, up to "
        "600000)");
  CHECK(refusal("").find("latency '': empty; expected none, fixed:MS") == 0);
  for (const char* bad : {"fixed:-1", "fixed:+1", "fixed:1e3", "fixed:.5", "fixed:5.", "fixed: 5",
                          "fixed:", "uniform::5", "Fixed:5", "fixed:5 ", "lognormal:a:b", "50"}) {
    INFO(bad);
    CHECK(refusal(bad).find("expected") != std::string::npos);
  }
  // What the refusal repeats of the spec is short and printable.
  const std::string m = refusal("fixed:\x1b[31m" + std::string(200, '9'));
  CHECK(m.find('\x1b') == std::string::npos);
  CHECK(m.size() < 400);
  // reason(): the message without its "latency '...': " prefix.
  try {
    parse_latency("uniform:2:1");
    FAIL("accepted");
  } catch (const mock_wechat::latency_error& e) {
    CHECK(std::string(e.reason()).rfind("MIN above MAX; expected uniform:MIN:MAX", 0) == 0);
  }
  CHECK_THROWS_AS(parse_latency("x"), std::invalid_argument);
  CHECK_THROWS_WITH(latency_spec::fixed(-1), Catch::Contains("a negative delay"));
  CHECK_THROWS_WITH(latency_spec::uniform(5, 4),
                    Catch::StartsWith("latency 'uniform(5 us, 4 us)': MIN above MAX"));
  CHECK_THROWS_WITH(latency_spec::lognormal(0, 4), Catch::Contains("MEDIAN 0"));
  CHECK_THROWS_WITH(latency_spec::fixed(600000001), Catch::Contains("above the cap"));
}

TEST_CASE("fixed draws are exact, none draws 0, every draw is capped at 600000 ms", "[latency]") {
  for (const auto us : draws(parse_latency("fixed:12.345"), 1, 1000))
    CHECK(us == 12345);
  mock_wechat::latency_source none(latency_spec{}, 1);
  CHECK(none.draw_us() == 0);
  CHECK(none.draws() == 0);
  // A log-normal whose p99 sits at the cap: its far tail is cut at 600000 ms exactly.
  const auto wide = draws(parse_latency("lognormal:100000:600000"), 3, 100000);
  CHECK(*std::max_element(wide.begin(), wide.end()) == mock_wechat::max_latency_us);
  CHECK(std::count(wide.begin(), wide.end(), mock_wechat::max_latency_us) > 100);
  // Specs built by hand beyond the limits still draw within [0, cap].
  CHECK(mock_wechat::draw_us(latency_spec{kind::fixed, -5, -5}, 0) == 0);
  CHECK(mock_wechat::draw_us(latency_spec{kind::fixed, INT64_MAX, INT64_MAX}, 0) ==
        mock_wechat::max_latency_us);
  CHECK(mock_wechat::draw_us(latency_spec{kind::lognormal, 0, 5}, 0) == 0);
  for (std::uint64_t r : {std::uint64_t{0}, ~std::uint64_t{0}, std::uint64_t{1} << 63}) {
    const auto us = mock_wechat::draw_us(latency_spec{kind::lognormal, 1, 600000000}, r);
    CHECK(us >= 0);
    CHECK(us <= mock_wechat::max_latency_us);
  }
}

TEST_CASE("uniform draws stay within MIN and MAX, both reached, mean at the midpoint",
          "[latency]") {
  auto v = draws(parse_latency("uniform:10:90"), 7, 100000);
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  CHECK(*lo >= 10000);
  CHECK(*hi <= 90000);
  double sum = 0;
  for (const auto us : v)
    sum += static_cast<double>(us);
  CHECK(sum / static_cast<double>(v.size()) == Approx(50000).epsilon(0.01));
  // Both ends are included: a span of 3 values hits each about a third of the time.
  const auto small = draws(parse_latency("uniform:1:1.002"), 7, 30000);
  for (const std::int64_t us : {1000, 1001, 1002}) {
    INFO(us);
    CHECK(std::count(small.begin(), small.end(), us) == Approx(10000).epsilon(0.05));
  }
}

TEST_CASE("100,000 lognormal draws: median and p99 within 3% of the spec", "[latency]") {
  for (const auto& [spec, seed] : {std::pair<const char*, std::uint64_t>{"lognormal:50:120", 1},
                                   {"lognormal:50:120", 987654321},
                                   {"lognormal:2:40", 5},
                                   {"lognormal:0.5:0.6", 11}}) {
    INFO(spec << " seed " << seed);
    const auto s = parse_latency(spec);
    auto v = draws(s, seed, 100000);
    std::sort(v.begin(), v.end());
    CHECK(quantile(v, 0.5) == Approx(static_cast<double>(s.a_us)).epsilon(0.03));
    CHECK(quantile(v, 0.99) == Approx(static_cast<double>(s.b_us)).epsilon(0.03));
    CHECK(v.front() > 0);
  }
  // P99 == MEDIAN: sigma 0, every draw the median.
  for (const auto us : draws(parse_latency("lognormal:50:50"), 2, 1000))
    CHECK(us == 50000);
}

TEST_CASE("the same seed draws the same multiset from several threads, other seeds differ",
          "[latency]") {
  const auto spec = parse_latency("lognormal:50:120");
  constexpr std::size_t n = 40000;
  auto sorted = [](std::vector<std::int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  const auto one_thread = sorted(draws(spec, 42, n));
  for (int run = 0; run < 3; ++run) {
    mock_wechat::latency_source src(spec, 42);
    std::vector<std::vector<std::int64_t>> per(4);
    std::vector<std::thread> threads;
    for (auto& out : per)
      threads.emplace_back([&src, &out] {
        for (std::size_t i = 0; i < n / 4; ++i)
          out.push_back(src.draw_us());
      });
    for (auto& t : threads)
      t.join();
    std::vector<std::int64_t> all;
    for (const auto& p : per)
      all.insert(all.end(), p.begin(), p.end());
    CHECK(src.draws() == n);
    CHECK(sorted(all) == one_thread);
  }
  // Draw n is a pure function of (seed, n).
  mock_wechat::latency_source src(spec, 42);
  for (std::uint64_t i = 0; i < 100; ++i)
    CHECK(src.draw_us() == mock_wechat::draw_us(spec, mock_wechat::counter_random(42, i)));
  // Other seeds, nearby ones included (plain splitmix64(seed ^ n) would give seeds 0 and 1
  // the same multiset), draw other multisets.
  const std::set<std::uint64_t> seeds = {0, 1, 2, 3, 43, 1ULL << 63};
  std::set<std::vector<std::int64_t>> multisets;
  for (const auto seed : seeds) {
    const auto v = sorted(draws(spec, seed, 1000));
    multisets.insert(v);
    if (seed != 42) CHECK(v != sorted(draws(spec, 42, 1000)));
  }
  CHECK(multisets.size() == seeds.size());
  // The counter function is fixed: these values are the splitmix64 reference outputs.
  CHECK(mock_wechat::counter_random(0, 0) == mock_wechat::mix64(mock_wechat::splitmix64_gamma));
  CHECK(mock_wechat::mix64(0x9e3779b97f4a7c15ULL) == 0xe220a8397b1dcdafULL);
}

TEST_CASE("an unseeded source differs from run to run", "[latency]") {
  const auto spec = parse_latency("uniform:0:600000");
  mock_wechat::latency_source a(spec), b(spec);
  CHECK(a.seed() != b.seed());
  CHECK(draws(spec, a.seed(), 8) != draws(spec, b.seed(), 8));
}
