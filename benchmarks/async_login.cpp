// The async client on one loop thread against the sync client on a thread per call
// (issue 21), both against a standalone mock_wechat answering after 50 ms
// (benchmarks/run_async.sh):
//
//   async_login async --base URL --appid A --secret S --inflight N
//                     [--warmup 2] [--seconds 10] [--mock-pid P] [--code-memory 0]
//                     [--stagger MS] [--max-connections M]
//       ONE wechat::async_client on ONE beast_transport (its own loop thread) keeps N
//       code2session calls in flight: each completion starts the next (closed loop), on a
//       fresh code minted beforehand (the first N spread over MS ms, 0: all at once;
//       a 50 ms mock keeps that first shape; --max-connections: the transport's idle
//       pool, the library's default 32 unless given). A probe on the same loop (post_after 1 ms,
//       re-armed each tick) measures the loop's lag. Prints one JSON line.
//   async_login sync  (same options)
//       ONE wechat::client on ONE httplib_transport, N threads each calling code2session
//       in a loop. Prints one JSON line.
//   async_login report FILE
//       the JSON lines of FILE as one table, the ratios and the targets.
//
// Figures are taken over the measured window only (after the warm-up): logins/s, the
// latency of each login completed in the window (call to handler), the process CPU
// (getrusage user+sys over wall), the mock's CPU (/proc/P/stat), and the memory per
// in-flight login: (RSS during the window - RSS before the first call, once the client,
// transport, codes and result buffers exist) / N, and the same for glibc's allocated bytes
// (mallinfo2().uordblks).
//
// code_memory (the double-submit window) is 0 for both clients by default: with the
// library's 10 s every completed login stays remembered for 10 s, so the resident set
// would grow with throughput x 10 s, not with the logins in flight.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <wechat/async.hpp>
#include <wechat/client.hpp>
#include <wechat/transport/beast.hpp>
#include <wechat/transport/httplib.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using steady = std::chrono::steady_clock;
using json = nlohmann::json;

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i + 1 < argc; i += 2)
    a[argv[i]] = argv[i + 1];
  return a;
}

std::string arg(std::map<std::string, std::string>& a, const std::string& k,
                const std::string& def = "") {
  auto it = a.find(k);
  if (it != a.end()) return it->second;
  if (def.empty()) {
    std::cerr << "async_login: missing " << k << "\n";
    std::exit(2);
  }
  return def;
}

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

long malloc_bytes() {
  return static_cast<long>(mallinfo2().uordblks);
}

double cpu_seconds_self() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

// utime + stime of /proc/PATH/stat, in seconds (-1 when unreadable).
double cpu_seconds_stat(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!std::getline(f, s)) return -1;
  const auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  double ut = 0, st = 0;
  for (int i = 3; in >> field; ++i) {  // field 3 is the state
    if (i == 14) ut = std::stod(field);
    if (i == 15) {
      st = std::stod(field);
      break;
    }
  }
  return (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The whole machine's busy CPU time (all but idle and iowait), from /proc/stat, seconds.
double cpu_seconds_machine() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[10] = {};
  f >> cpu;
  for (double& x : v)
    f >> x;
  const double busy =
      v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Seconds a thread waited runnable for a CPU (field 2 of /proc/.../schedstat, ns); -1 if
// unreadable.
double runqueue_wait_seconds(const std::string& schedstat) {
  std::ifstream f(schedstat);
  double run = 0, wait = -1e9;
  if (!(f >> run >> wait)) return -1;
  return wait / 1e9;
}

// TCP connections opened by this machine so far (/proc/net/snmp, Tcp: ActiveOpens): the
// clients' connects (the mock only accepts).
double tcp_active_opens() {
  std::ifstream f("/proc/net/snmp");
  std::string head, values;
  while (std::getline(f, head) && std::getline(f, values)) {
    if (head.rfind("Tcp:", 0) != 0) continue;
    std::istringstream h(head), v(values);
    std::string name, value;
    while (h >> name && v >> value)
      if (name == "ActiveOpens") return std::stod(value);
  }
  return -1;
}

// Fresh login codes from the admin API, in batches of 1,000 (one user each, so no user
// nears the 100-per-minute limit), over 2 connections.
std::vector<std::string> mint(const std::string& base, const std::string& appid,
                              const std::string& prefix, std::size_t count) {
  std::vector<std::string> codes(count);
  const std::size_t batches = (count + 999) / 1000;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      httplib::Client c(base);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_read_timeout(30, 0);
      for (std::size_t b; (b = next++) < batches;) {
        const std::size_t first = b * 1000, n = std::min<std::size_t>(1000, count - first);
        const json body = {
            {"appid", appid}, {"user_prefix", prefix}, {"first", first}, {"count", n}};
        auto r = c.Post("/__mock/logins", body.dump(), "application/json");
        if (!r || r->status != 200) {
          std::cerr << "async_login: minting failed: "
                    << (r ? std::to_string(r->status) + " " + r->body
                          : httplib::to_string(r.error()))
                    << "\n";
          std::exit(1);
        }
        const auto j = json::parse(r->body);
        const auto& logins = j.at("logins");
        for (std::size_t i = 0; i < n; ++i)
          codes[first + i] = logins.at(i).at("code").get<std::string>();
      }
    });
  for (auto& t : threads)
    t.join();
  return codes;
}

struct percentiles {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};
percentiles pct(std::vector<double> v) {
  percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}
json to_json(const percentiles& p) {
  return {{"p50", p.p50}, {"p99", p.p99}, {"max", p.max}, {"n", p.n}};
}

// What both modes share: the codes, the window, the samples.
struct bench {
  std::string mode;
  std::size_t inflight = 0;
  double warmup = 2, seconds = 10;
  int mock_pid = 0;
  double stagger_ms = 0;             ///< the first N calls spread over this long
  std::size_t max_connections = 32;  ///< the transport's idle pool
  std::vector<std::string> codes;
  std::atomic<std::size_t> next_code{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<std::size_t> done_total{0};
  std::atomic<std::size_t> errors{0};
  std::atomic<bool> out_of_codes{false};
  std::mutex first_error_mutex;
  std::string first_error;
  // Latencies (ms) of logins completed in the window: preallocated and touched before the
  // baseline, so they are not counted as memory per login.
  std::vector<double> lat;
  std::atomic<std::size_t> lat_n{0};

  void note_error(const std::string& what) {
    errors++;
    std::lock_guard<std::mutex> lock(first_error_mutex);
    if (first_error.empty()) first_error = what;
  }
  bool take_code(std::string& out) {
    const std::size_t i = next_code++;
    if (i >= codes.size()) {
      out_of_codes = true;
      return false;
    }
    // A copy, not a move: the pool keeps its strings, so the memory held at the baseline
    // (taken after minting) stays held, and what the window adds is the logins' own.
    // Moving them out freed each code as it was used, and made malloc per login negative.
    out = codes[i];
    return true;
  }
  void record(steady::time_point started) {
    const double ms = std::chrono::duration<double, std::milli>(steady::now() - started).count();
    done_total++;
    if (!measuring.load(std::memory_order_relaxed)) return;
    const std::size_t i = lat_n++;
    if (i < lat.size()) lat[i] = ms;
  }
};

struct window_figures {
  double wall = 0, cpu = 0, mock_cpu = -1, loop_cpu = -1, machine_cpu = 0, loop_wait = -1;
  double connects = -1;
  std::size_t logins = 0;
  long rss_base = 0, rss_steady = 0, malloc_base = 0, malloc_steady = 0;
};

// Sleeps through the warm-up, then measures for `seconds`, sampling RSS and malloc'd bytes
// every 250 ms (their medians are the steady state).
window_figures run_window(bench& b, const std::string& loop_task) {
  const std::string loop_task_stat = loop_task.empty() ? "" : loop_task + "/stat";
  const std::string loop_sched = loop_task.empty() ? "" : loop_task + "/schedstat";
  window_figures w;
  std::this_thread::sleep_for(std::chrono::duration<double>(b.warmup));
  const std::string mock_stat = "/proc/" + std::to_string(b.mock_pid) + "/stat";
  const double cpu0 = cpu_seconds_self();
  const double mock0 = b.mock_pid ? cpu_seconds_stat(mock_stat) : -1;
  const double loop0 = loop_task_stat.empty() ? -1 : cpu_seconds_stat(loop_task_stat);
  const double wait0 = loop_sched.empty() ? -1 : runqueue_wait_seconds(loop_sched);
  const double machine0 = cpu_seconds_machine();
  const double opens0 = tcp_active_opens();
  const std::size_t done0 = b.done_total.load();
  const auto t0 = steady::now();
  b.measuring = true;
  std::vector<long> rss, mal;
  const auto end =
      t0 + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(b.seconds));
  while (steady::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    rss.push_back(rss_bytes());
    mal.push_back(malloc_bytes());
  }
  b.measuring = false;
  const std::size_t done1 = b.done_total.load();
  const auto t1 = steady::now();
  w.cpu = cpu_seconds_self() - cpu0;
  if (b.mock_pid) w.mock_cpu = cpu_seconds_stat(mock_stat) - mock0;
  if (!loop_task_stat.empty()) w.loop_cpu = cpu_seconds_stat(loop_task_stat) - loop0;
  if (wait0 >= 0) w.loop_wait = runqueue_wait_seconds(loop_sched) - wait0;
  w.machine_cpu = cpu_seconds_machine() - machine0;
  if (opens0 >= 0) w.connects = tcp_active_opens() - opens0;
  w.wall = std::chrono::duration<double>(t1 - t0).count();
  w.logins = done1 - done0;
  std::sort(rss.begin(), rss.end());
  std::sort(mal.begin(), mal.end());
  w.rss_steady = rss[rss.size() / 2];
  w.malloc_steady = mal[mal.size() / 2];
  return w;
}

json figures(bench& b, const window_figures& w) {
  std::vector<double> lat(
      b.lat.begin(), b.lat.begin() + static_cast<long>(std::min(b.lat_n.load(), b.lat.size())));
  const double n = static_cast<double>(b.inflight);
  json j = {{"mode", b.mode},
            {"max_connections", b.max_connections},
            {"inflight", b.inflight},
            {"window_s", w.wall},
            {"logins", w.logins},
            {"logins_per_sec", static_cast<double>(w.logins) / w.wall},
            {"ideal_per_sec", n / 0.050},
            {"latency_ms", to_json(pct(std::move(lat)))},
            {"cpu_cores", w.cpu / w.wall},
            {"mock_cpu_cores", w.mock_cpu < 0 ? json(nullptr) : json(w.mock_cpu / w.wall)},
            {"rss_base_kib", w.rss_base / 1024},
            {"rss_steady_kib", w.rss_steady / 1024},
            {"rss_per_login_bytes", static_cast<double>(w.rss_steady - w.rss_base) / n},
            {"malloc_per_login_bytes", static_cast<double>(w.malloc_steady - w.malloc_base) / n},
            {"errors", b.errors.load()},
            {"first_error", b.first_error},
            {"out_of_codes", b.out_of_codes.load()},
            {"codes_minted", b.codes.size()}};
  if (w.loop_cpu >= 0) j["loop_thread_cpu_cores"] = w.loop_cpu / w.wall;
  if (w.loop_wait >= 0) j["loop_thread_runqueue_wait_ms_per_s"] = 1000 * w.loop_wait / w.wall;
  if (w.connects >= 0) {
    j["connects_per_sec"] = w.connects / w.wall;
    j["connects_per_login"] = w.logins ? w.connects / static_cast<double>(w.logins) : 0.0;
  }
  // Everything else on the machine: other processes (the machine is shared).
  j["machine_cpu_cores"] = w.machine_cpu / w.wall;
  j["others_cpu_cores"] = (w.machine_cpu - w.cpu - (w.mock_cpu < 0 ? 0 : w.mock_cpu)) / w.wall;
  return j;
}

void setup(bench& b, std::map<std::string, std::string>& a, const char* mode) {
  b.mode = mode;
  b.inflight = std::stoul(arg(a, "--inflight"));
  b.warmup = std::stod(arg(a, "--warmup", "2"));
  b.seconds = std::stod(arg(a, "--seconds", "10"));
  b.mock_pid = std::stoi(arg(a, "--mock-pid", "0"));
  b.stagger_ms = std::stod(arg(a, "--stagger", "0"));
  b.max_connections = std::stoul(arg(a, "--max-connections", "32"));
  // Enough codes for the ideal rate (N / 50 ms) over warm-up and window, half a second
  // more (the stagger, sleeps that overshoot on a busy machine: what matters in short
  // runs), and the calls still in flight at the end; the rate cannot exceed the ideal
  // with a 50 ms mock.
  const double ideal = static_cast<double>(b.inflight) / 0.050;
  const auto need = static_cast<std::size_t>(ideal * ((b.warmup + b.seconds) * 1.05 + 0.5)) +
                    2 * b.inflight;
  const auto t0 = steady::now();
  b.codes =
      mint(arg(a, "--base"), arg(a, "--appid"), arg(a, "--prefix", std::string(mode) + "-"), need);
  std::cerr << "async_login " << mode << " " << b.inflight << ": minted " << need << " codes in "
            << std::chrono::duration<double>(steady::now() - t0).count() << " s\n";
  b.lat.assign(static_cast<std::size_t>(ideal * b.seconds * 1.1) + b.inflight, 0.0);
}

wechat::client_options client_opts(std::map<std::string, std::string>& a) {
  wechat::client_options o;
  o.appid = arg(a, "--appid");
  o.secret = arg(a, "--secret");
  o.code_memory = std::chrono::seconds(std::stoi(arg(a, "--code-memory", "0")));
  return o;
}

// ------------------------------------------------------------------------------ async --

struct lag_probe : std::enable_shared_from_this<lag_probe> {
  std::shared_ptr<wechat::async_transport> t;
  bench* b = nullptr;
  std::vector<double> lag;  // microseconds, preallocated
  std::atomic<std::size_t> n{0};
  std::atomic<bool> stop{false};
  void arm() {
    const auto asked = steady::now() + std::chrono::milliseconds(1);
    t->post_after(std::chrono::milliseconds(1), [self = shared_from_this(), asked] {
      const double us = std::chrono::duration<double, std::micro>(steady::now() - asked).count();
      if (self->b->measuring.load(std::memory_order_relaxed)) {
        const std::size_t i = self->n++;
        if (i < self->lag.size()) self->lag[i] = us;
      }
      if (!self->stop) self->arm();
    });
  }
};

struct async_runner : std::enable_shared_from_this<async_runner> {
  std::shared_ptr<wechat::async_client> wx;
  bench* b = nullptr;
  std::atomic<std::size_t> in_flight{0};

  void start_one() {
    std::string code;
    if (b->stop || !b->take_code(code)) return;
    in_flight++;
    const auto started = steady::now();
    wx->code2session(std::move(code),
                     [self = shared_from_this(), started](wechat::result<wechat::session_info> r) {
                       self->b->record(started);
                       if (!r) self->b->note_error(r.error().message() + ": " + r.detail().errmsg);
                       self->in_flight--;
                       self->start_one();  // closed loop: the next login, from the loop
                     });
  }
};

int run_async(std::map<std::string, std::string>& a) {
  bench b;
  setup(b, a, "async");
  wechat::beast_transport_options to;
  to.base_url = arg(a, "--base");
  to.fallback_base_url.clear();
  if (a.count("--max-connections")) to.max_connections = std::stoul(a["--max-connections"]);
  auto transport = wechat::beast_transport::create(to);
  auto wx = wechat::async_client::create(client_opts(a), transport);
  auto probe = std::make_shared<lag_probe>();
  probe->t = transport;
  probe->b = &b;
  probe->lag.assign(static_cast<std::size_t>(b.seconds * 1000 * 1.2) + 100, 0.0);
  auto runner = std::make_shared<async_runner>();
  runner->wx = wx;
  runner->b = &b;
  // The loop thread's id, for its own CPU time.
  std::promise<long> tid;
  transport->post([&tid] { tid.set_value(static_cast<long>(syscall(SYS_gettid))); });
  const std::string loop_task = "/proc/self/task/" + std::to_string(tid.get_future().get());

  window_figures w;
  w.rss_base = rss_bytes();
  w.malloc_base = malloc_bytes();
  probe->arm();
  // From the main thread (the loop starts the rest), spread over --stagger ms: with a
  // fixed 50 ms answer, N calls started at one instant stay one wave every 50 ms for ever.
  const auto t_start = steady::now();
  for (std::size_t i = 0; i < b.inflight; ++i) {
    if (b.stagger_ms > 0)
      std::this_thread::sleep_until(t_start + std::chrono::microseconds(static_cast<long>(
                                                  1000.0 * b.stagger_ms * i / b.inflight)));
    runner->start_one();
  }
  const auto base = w;
  w = run_window(b, loop_task);
  w.rss_base = base.rss_base;
  w.malloc_base = base.malloc_base;

  b.stop = true;
  probe->stop = true;
  const auto deadline = steady::now() + std::chrono::seconds(20);
  while (runner->in_flight > 0 && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  json j = figures(b, w);
  std::vector<double> lag(probe->lag.begin(),
                          probe->lag.begin() +
                              static_cast<long>(std::min(probe->n.load(), probe->lag.size())));
  j["loop_lag_us"] = to_json(pct(std::move(lag)));
  j["threads"] = 1;
  j["left_in_flight"] = runner->in_flight.load();
  std::cout << j.dump() << std::endl;
  std::fflush(stdout);
  std::_Exit(0);  // the transport's destructor would wait for nothing we need
}

// ------------------------------------------------------------------------------- sync --

int run_sync(std::map<std::string, std::string>& a) {
  bench b;
  setup(b, a, "sync");
  wechat::httplib_transport_options to;
  to.base_url = arg(a, "--base");
  to.fallback_base_url.clear();
  if (a.count("--max-connections")) to.max_connections = std::stoul(a["--max-connections"]);
  auto transport = wechat::httplib_transport::create(to);
  wechat::client wx(client_opts(a), transport);

  window_figures w;
  w.rss_base = rss_bytes();
  w.malloc_base = malloc_bytes();
  std::vector<std::thread> threads;
  threads.reserve(b.inflight);
  const auto t_start = steady::now();
  for (std::size_t i = 0; i < b.inflight; ++i)
    threads.emplace_back([&, i] {
      if (b.stagger_ms > 0)
        std::this_thread::sleep_until(t_start + std::chrono::microseconds(static_cast<long>(
                                                    1000.0 * b.stagger_ms * i / b.inflight)));
      std::string code;
      while (!b.stop && b.take_code(code)) {
        const auto started = steady::now();
        std::error_code ec;
        wechat::error_detail d;
        wx.code2session(code, ec, &d);
        b.record(started);
        if (ec) b.note_error(ec.message() + ": " + d.errmsg);
      }
    });
  const auto base = w;
  w = run_window(b, "");
  w.rss_base = base.rss_base;
  w.malloc_base = base.malloc_base;
  b.stop = true;
  for (auto& t : threads)
    t.join();
  json j = figures(b, w);
  j["threads"] = b.inflight;
  std::cout << j.dump() << std::endl;
  std::fflush(stdout);
  std::_Exit(0);
}

// ----------------------------------------------------------------------------- report --

std::string fmt(double v, int prec = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  std::string s = buf;
  // thousands separators on the integer part
  auto dot = s.find('.');
  std::string ip = s.substr(0, dot), rest = dot == std::string::npos ? "" : s.substr(dot);
  std::string out;
  int k = 0;
  for (auto it = ip.rbegin(); it != ip.rend(); ++it) {
    if (k && k % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++k;
  }
  return out + rest;
}

int report(const std::string& file) {
  std::ifstream in(file);
  std::map<std::pair<std::size_t, std::string>, json> runs;
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    std::string label = j["mode"].get<std::string>();
    const auto pool = j.value("max_connections", std::size_t{32});
    if (pool != 32) label += " (pool " + std::to_string(pool) + ")";
    runs[{j["inflight"].get<std::size_t>(), label}] = j;
  }
  std::cout << "| in flight | client | threads | logins/s | % of ideal (N / 50 ms) | latency p50 / "
               "p99 / max (ms) | loop lag p50 / p99 / max (ms) | RSS / login | malloc / login | "
               "errors |\n";
  std::cout << "|---|---|---|---|---|---|---|---|---|---|\n";
  for (auto& [k, j] : runs) {
    const auto& l = j["latency_ms"];
    std::string lag = "-";
    if (j.contains("loop_lag_us")) {
      const auto& g = j["loop_lag_us"];
      lag = fmt(g["p50"].get<double>() / 1000, 3) + " / " + fmt(g["p99"].get<double>() / 1000, 3) +
            " / " + fmt(g["max"].get<double>() / 1000, 2);
    }
    std::cout << "| " << k.first << " | " << k.second << " | " << j["threads"] << " | "
              << fmt(j["logins_per_sec"].get<double>()) << " | "
              << fmt(100 * j["logins_per_sec"].get<double>() / j["ideal_per_sec"].get<double>(), 1)
              << "% | " << fmt(l["p50"].get<double>(), 1) << " / " << fmt(l["p99"].get<double>(), 1)
              << " / " << fmt(l["max"].get<double>(), 1) << " | " << lag << " | "
              << fmt(j["rss_per_login_bytes"].get<double>() / 1024, 1) << " KiB | "
              << fmt(j["malloc_per_login_bytes"].get<double>() / 1024, 1) << " KiB | "
              << j["errors"] << (j["out_of_codes"].get<bool>() ? " (ran out of codes)" : "")
              << " |\n";
  }
  auto num = [](const json& j, const char* k, int prec) {
    return j.contains(k) && j[k].is_number() ? fmt(j[k].get<double>(), prec) : std::string("-");
  };
  std::cout << "\nWho used the 2 cores during each window (cores, CPU seconds per second):\n\n"
               "| in flight | client | this process | its loop thread | loop thread waiting for "
               "a CPU (ms/s) | mock_wechat | other processes | whole machine | new TCP connections "
               "per login | this process's CPU per login (us) |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n";
  for (auto& [k, j] : runs)
    std::cout << "| " << k.first << " | " << k.second << " | " << num(j, "cpu_cores", 2) << " | "
              << num(j, "loop_thread_cpu_cores", 2) << " | "
              << num(j, "loop_thread_runqueue_wait_ms_per_s", 1) << " | "
              << num(j, "mock_cpu_cores", 2) << " | " << num(j, "others_cpu_cores", 2) << " | "
              << num(j, "machine_cpu_cores", 2) << " | " << num(j, "connects_per_login", 3) << " | "
              << fmt(1e6 * j["cpu_cores"].get<double>() / j["logins_per_sec"].get<double>(), 0)
              << " |\n";
  std::cout << "\n| in flight | async / sync logins/s | async / sync RSS per login | async / sync "
               "malloc per login |\n|---|---|---|---|\n";
  std::set<std::size_t> ns;
  for (auto& [k, j] : runs)
    ns.insert(k.first);
  for (auto n : ns) {
    auto a = runs.find({n, "async"}), s = runs.find({n, "sync"});
    if (a == runs.end() || s == runs.end()) continue;
    const auto& A = a->second;
    const auto& S = s->second;
    std::cout
        << "| " << n << " | "
        << fmt(A["logins_per_sec"].get<double>() / S["logins_per_sec"].get<double>(), 2) << "x | "
        << fmt(A["rss_per_login_bytes"].get<double>() / S["rss_per_login_bytes"].get<double>(), 3)
        << " | "
        << fmt(A["malloc_per_login_bytes"].get<double>() /
                   S["malloc_per_login_bytes"].get<double>(),
               3)
        << " |\n";
  }
  std::cout << "\nTargets (async):\n";
  for (auto n : ns) {
    auto a = runs.find({n, "async"});
    if (a == runs.end()) continue;
    const auto& A = a->second;
    const double ratio = A["logins_per_sec"].get<double>() / A["ideal_per_sec"].get<double>();
    const double p99 = A["latency_ms"]["p99"].get<double>();
    const double lag99 = A["loop_lag_us"]["p99"].get<double>() / 1000;
    auto met = [](bool ok) { return ok ? "met" : "NOT met"; };
    std::cout << "  N=" << n << ": logins/s " << fmt(100 * ratio, 1)
              << "% of ideal (>= 95%): " << met(ratio >= 0.95) << "; p99 latency " << fmt(p99, 1)
              << " ms (< 70 ms): " << met(p99 < 70) << "; loop lag p99 " << fmt(lag99, 3)
              << " ms (< 1 ms): " << met(lag99 < 1) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: async_login async|sync --base URL --appid A --secret S --inflight N "
                 "[--warmup 2] [--seconds 10] [--mock-pid P] [--code-memory 0]\n"
                 "       [--stagger MS] [--max-connections M]\n"
                 "       async_login report FILE\n";
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "report" && argc == 3) return report(argv[2]);
  auto a = parse(argc, argv);
  if (mode == "async") return run_async(a);
  if (mode == "sync") return run_sync(a);
  std::cerr << "async_login: unknown mode " << mode << "\n";
  return 2;
}
