// Memory per live login code (issue 16): an embedded mock_wechat::world, the clock held so
// that no code dies, N world::login() calls over U users and A mini programs. Prints the
// growth of the resident set and of glibc's allocated bytes (mallinfo2: uordblks, plus
// hblkhd for chunks mapped on their own), per code issued:
//
//   code_memory [--codes N] [--users U] [--apps A] [--threads T]
//       defaults: 1,000,000 codes, 10,000 users, 3 apps, 1 thread
//
// Two baselines: after the apps are registered ("all": what the world grows by for the
// whole run), and after every (app, user) pair has logged in once, so that what the world
// keeps per pair (session key, openid; not per code) is left out ("per code").
// Output: one JSON line. No session_key is printed.
#include <mock_wechat/world.hpp>

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t allocated_bytes() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

struct sample {
  std::size_t rss, allocated;
};
sample take() { return {rss_bytes(), allocated_bytes()}; }

double per(std::size_t after, std::size_t before, std::size_t n) {
  return n == 0 ? 0 : (static_cast<double>(after) - static_cast<double>(before)) /
                          static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t codes = 1000000, users = 10000, apps = 3, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--codes"))
      codes = v;
    else if (!std::strcmp(argv[i], "--users"))
      users = v;
    else if (!std::strcmp(argv[i], "--apps"))
      apps = v;
    else if (!std::strcmp(argv[i], "--threads"))
      threads = v;
    else {
      std::cerr << "usage: code_memory [--codes N] [--users U] [--apps A] [--threads T]\n";
      return 2;
    }
  }
  if (users == 0 || apps == 0 || threads == 0 || codes < users * apps) {
    std::cerr << "code_memory: need users, apps, threads > 0 and codes >= users * apps\n";
    return 2;
  }

  mock_wechat::world w;
  w.clock().set(1800000000, true);  // held: every code stays alive, nothing is swept
  std::vector<std::string> appids, names;
  for (std::size_t a = 0; a < apps; ++a) {
    mock_wechat::app x;
    x.appid = mock_wechat::make_appid("code-memory-" + std::to_string(a));
    appids.push_back(w.add_app(x).appid);
  }
  for (std::size_t u = 0; u < users; ++u)
    names.push_back("user-" + std::to_string(u));

  // code i: user i % users, app (i / users) % apps, so the first users * apps codes are
  // each pair's first login
  const auto issue = [&](std::size_t from, std::size_t to) {
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (std::size_t i = from + t; i < to; i += threads)
          w.login(appids[(i / users) % apps], names[i % users]);
      });
    for (auto& th : pool)
      th.join();
  };

  const sample empty = take();
  const std::size_t first = users * apps;
  issue(0, first);
  const sample warm = take();
  issue(first, codes);
  const sample full = take();

  const auto live = w.sizes()["js_codes"].get<std::size_t>();
  std::printf(
      "{\"codes\":%zu,\"live_js_codes\":%zu,\"users\":%zu,\"apps\":%zu,\"threads\":%zu,"
      "\"rss_mb\":[%.1f,%.1f,%.1f],"
      "\"all\":{\"rss_per_code\":%.1f,\"malloc_per_code\":%.1f},"
      "\"per_code\":{\"rss_per_code\":%.1f,\"malloc_per_code\":%.1f}}\n",
      codes, live, users, apps, threads, static_cast<double>(empty.rss) / 1e6,
      static_cast<double>(warm.rss) / 1e6, static_cast<double>(full.rss) / 1e6,
      per(full.rss, empty.rss, codes), per(full.allocated, empty.allocated, codes),
      per(full.rss, warm.rss, codes - first), per(full.allocated, warm.allocated, codes - first));
  return live == codes ? 0 : 1;
}
