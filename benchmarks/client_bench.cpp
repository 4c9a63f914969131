// The client under load, against a standalone mock_wechat (benchmarks/run_client.sh):
//
//   client_bench issue  --base URL --appid A --count N --out FILE --prefix P
//       issues N login codes through the mock's admin API (spread over users P-0, P-1..., so the
//       per-user rate limit is never hit), one per line
//   client_bench login  --base URL --appid A --secret S --codes FILE --threads N
//                       [--code-memory-max M]
//       exchanges every code once through ONE shared wechat::client from N threads;
//       prints {"logins_per_sec":..,"errors":..,"seconds":..}
//   client_bench token  --threads N --seconds S
//       N threads read a cached access token as fast as they can (no network);
//       prints {"ns_per_get":..,"gets":..}
//   client_bench soak   --base URL --appid A --secret S --logins N --threads T --every K
//                       [--users U] [--code-memory-max M]
//       ONE client with the default options (or code_memory_max M) exchanges N fresh
//       codes from T threads, minting them K at a time through the admin API; after every
//       K logins prints a CSV line: logins,rss_kib,remembered_codes,seconds
//       (benchmarks/run_client_soak.sh)
#include <httplib.h>
#include <wechat/client.hpp>
#include <wechat/transport/httplib.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i + 1 < argc; i += 2)
    a[argv[i]] = argv[i + 1];
  return a;
}

// Fills `codes` with fresh login codes from the admin API (4 connections), code i for user
// prefix-(first + i) % users, so no user comes near the per-user rate limit.
void mint(const std::string& base, const std::string& appid, const std::string& prefix,
          std::size_t first, std::size_t users, std::vector<std::string>& codes) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      httplib::Client c(base);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      for (std::size_t i; (i = next++) < codes.size();) {
        const std::string body = "{\"appid\":\"" + appid + "\",\"user\":\"" + prefix + "-" +
                                 std::to_string((first + i) % users) + "\"}";
        auto r = c.Post("/__mock/login", body, "application/json");
        if (!r || r->status != 200) {
          std::cerr << "issue: login failed: "
                    << (r ? std::to_string(r->status) + " " + r->body
                          : httplib::to_string(r.error()))
                    << "\n";
          std::exit(1);
        }
        codes[i] = nlohmann::json::parse(r->body)["code"].get<std::string>();
      }
    });
  for (auto& t : threads)
    t.join();
}

int issue(std::map<std::string, std::string>& a) {
  const std::size_t count = std::stoul(a["--count"]);
  std::vector<std::string> codes(count);
  mint(a["--base"], a["--appid"], a["--prefix"], 0, count / 40 + 1, codes);
  std::ofstream out(a["--out"]);
  for (const auto& c : codes)
    out << c << '\n';
  return 0;
}

// Exchanges every code once through `wx` from `threads` threads; the failed logins (the
// first few are named on stderr).
std::size_t exchange_all(wechat::client& wx, const std::vector<std::string>& codes, int threads) {
  std::atomic<std::size_t> next{0}, errors{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      for (std::size_t k; (k = next++) < codes.size();) {
        std::error_code ec;
        const auto s = wx.code2session(codes[k], ec);
        if ((ec || s.openid.empty()) && errors++ < 5)
          std::cerr << "code2session failed: " << ec.message() << "\n";
      }
    });
  for (auto& th : pool)
    th.join();
  return errors.load();
}

int login(std::map<std::string, std::string>& a) {
  std::vector<std::string> codes;
  std::ifstream in(a["--codes"]);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) codes.push_back(l);
  const int n = std::stoi(a["--threads"]);
  wechat::httplib_transport_options t;
  t.base_url = a["--base"];
  t.max_connections = static_cast<std::size_t>(n);
  wechat::client_options o;
  o.appid = a["--appid"];
  o.secret = a["--secret"];
  if (a.count("--code-memory-max")) o.code_memory_max = std::stoul(a["--code-memory-max"]);
  wechat::client wx(o, wechat::httplib_transport::create(t));
  const auto start = std::chrono::steady_clock::now();
  const std::size_t errors = exchange_all(wx, codes, n);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << nlohmann::json{{"logins_per_sec", codes.size() / secs},
                              {"errors", errors},
                              {"seconds", secs},
                              {"logins", codes.size()},
                              {"threads", n}}
                   .dump()
            << std::endl;
  return errors > 0 ? 1 : 0;
}

// A transport that answers stable_token instantly: measures the provider alone.
class instant_transport final : public wechat::transport {
public:
  wechat::http_response send(const wechat::http_request&, std::error_code& ec) override {
    ec.clear();
    return {200, R"({"access_token":")" + std::string(136, 'T') + R"(","expires_in":7200})",
            "application/json"};
  }
};

int token(std::map<std::string, std::string>& a) {
  const int n = std::stoi(a["--threads"]);
  const double seconds = std::stod(a["--seconds"]);
  wechat::token_provider p({"wx1000000000000001", "s"}, std::make_shared<instant_transport>());
  p.get();  // warm
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> gets{0};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&] {
      std::uint64_t local = 0;
      std::size_t sink = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 256; ++k)
          sink += p.get().size();
        local += 256;
      }
      gets += local;
      if (sink == 0) std::cerr << "";
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads)
    t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const unsigned cores = std::max(
      1u, std::min<unsigned>(std::thread::hardware_concurrency(), static_cast<unsigned>(n)));
  std::cout << nlohmann::json{{"threads", n},
                              {"gets", gets.load()},
                              {"ns_per_get", secs * 1e9 * cores / static_cast<double>(gets.load())},
                              {"fetches", p.fetches()}}
                   .dump()
            << std::endl;
  return 0;
}

// This process's resident set (KiB), from /proc/self/statm.
std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) / 1024;
}

int soak(std::map<std::string, std::string>& a) {
  const std::size_t logins = std::stoul(a["--logins"]);
  const std::size_t every = std::stoul(a["--every"]);
  const int n = std::stoi(a["--threads"]);
  const std::size_t users = a.count("--users") ? std::stoul(a["--users"]) : 50000;
  wechat::client_options o;
  o.appid = a["--appid"];
  o.secret = a["--secret"];
  if (a.count("--code-memory-max")) o.code_memory_max = std::stoul(a["--code-memory-max"]);
  wechat::httplib_transport_options t;
  t.base_url = a["--base"];
  t.max_connections = static_cast<std::size_t>(n);
  wechat::client wx(o, wechat::httplib_transport::create(t));
  std::vector<std::string> codes(every);  // reused: the batch costs the same every time
  std::size_t errors = 0;
  const auto start = std::chrono::steady_clock::now();
  std::cout << "logins,rss_kib,remembered_codes,seconds" << std::endl;
  for (std::size_t done = 0; done < logins; done += every) {
    mint(a["--base"], o.appid, "soak", done, users, codes);
    errors += exchange_all(wx, codes, n);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << done + every << ',' << rss_kib() << ',' << wx.remembered_codes() << ',' << secs
              << std::endl;
  }
  if (errors > 0) std::cerr << "soak: " << errors << " failed logins\n";
  return errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: client_bench issue|login|token ...\n";
    return 2;
  }
  auto a = parse(argc, argv);
  const std::string mode = argv[1];
  if (mode == "issue") return issue(a);
  if (mode == "login") return login(a);
  if (mode == "token") return token(a);
  if (mode == "soak") return soak(a);
  std::cerr << "unknown mode\n";
  return 2;
}
