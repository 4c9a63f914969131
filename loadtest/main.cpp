// wechat-loadtest: a crowd of WeChat devices logging in to your backend, against the mock.
//
// Each virtual user does what a device does: wx.login (a code minted by the mock, in bulk,
// ahead of time), optionally wx.getUserInfo / wx.getUserProfile / the phone button (payloads
// encrypted with that login's session_key), then calls the backend's endpoints with request
// templates, carrying values captured from earlier answers. Every answer is checked (status,
// the openid/unionid the mock gives that user, the user's own checks), and after the run the
// mock's counters say whether the backend used WeChat correctly (one jscode2session per
// login, no 40163, no access-token storm, no unexpected errcode).
//
// Open loop (--rate): arrivals follow a plan, whatever the backend does; latency is measured
// from each arrival's planned time, so a backend that stalls is charged for every device that
// waited (coordinated omission corrected, as wrk2 does). Closed loop (--connections N): N
// connections each run virtual users back to back, for peak throughput.
//
// docs/loadtest.md has every option, the template syntax, the checks and the report.
// Exit status: 0 every check and SLO passed; 1 a check failed; 2 an SLO was missed; 3 usage
// or setup error.
#include <loadtest/histogram.hpp>
#include <loadtest/http_reader.hpp>
#include <loadtest/plan.hpp>
#include <loadtest/template.hpp>
#include <mock_wechat/detail/precise_wait.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using loadtest::histogram;

constexpr int exit_ok = 0, exit_check = 1, exit_slo = 2, exit_usage = 3;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------
// Options

struct slo {
  std::string text;       // as given: "p99<200ms", "/login:p99.9<500ms"
  std::string step;       // "" = all steps
  double percentile = 0;  // 0..100; 100 = max
  double limit_ms = 0;
};

struct options {
  std::string target, mock, appid, admin_token, rate, user_prefix, phone;
  std::size_t connections = 0, threads = 2, max_connections = 1024, users = 0, show = 5;
  double duration_s = 10, warmup_s = 0, timeout_s = 5;
  std::vector<loadtest::step> steps;
  std::string wechat_latency;
  std::vector<slo> slos;
  std::string csv, png, json;
  std::vector<long> allowed_errcodes;
  long max_token_fetches = -1;  // -1: one per token lifetime the run spans, plus one
  bool default_checks = true, quiet = false;
};

const char* const usage_text = R"(usage: wechat-loadtest --target URL (--rate SPEC | --connections N) --step 'METHOD /path [BODY]' ...
  --target URL            the backend under test (http://HOST:PORT)
  --mock URL              the mock_wechat its WeChat calls go to (needed when a step uses a
                          minted value, and for the post-run checks)
  --appid A               the mini program the virtual users log in to (registered in the mock)
  --admin-token T         the mock's admin token (better: env MOCK_WECHAT_ADMIN_TOKEN, out of ps)
  --rate SPEC             open loop: '500/s', or ramps '0-2000/s:60s,2000/s:30s'
  --connections N         closed loop: N connections, each running users back to back
  --duration D            how long a constant --rate or the closed loop runs (default 10s)
  --warmup D              answers to arrivals in the first D are checked, not measured
  --timeout D             per request (default 5s)
  --threads N             generator threads (default 2)
  --max-connections N     open loop: connections to the target at most (default 1024)
  --step 'M /p [BODY]'    a request each virtual user makes, in order; ${var} in the path,
                          headers and body; the options below apply to the last --step
    --name NAME           the step's name in the report (default: its path without the query)
    --header 'K: V'       a request header
    --capture NAME=$.path take a value from the JSON answer for later steps
    --check EXPR          '$.a==${var}', '$.a!=text', 'exists($.a)', 'absent($.a)'
    --expect-status N     the status the answer must have (default: any 2xx)
  --no-default-checks     do not compare an answer's openid/unionid with the mock's ids
  --users N               distinct users to cycle through (default: enough that none logs in
                          more than once every 2 minutes)
  --phone NUMBER          the number the phone button gives (default: the mock's)
  --wechat-latency SPEC   make the mock's WeChat endpoints answer this late during the run
                          (fixed:MS, uniform:MIN:MAX, lognormal:MEDIAN:P99)
  --allow-errcode N       a WeChat errcode the run expects (repeatable)
  --max-token-fetches N   access-token fetches allowed in the run
  --slo '[STEP:]pNN<Xms'  a latency objective (p50, p99, p99.9, max); repeatable
  --csv FILE              one row per second; --png FILE draws it (gnuplot; alone, the
                          CSV goes beside it: run.png -> run.csv)
  --json FILE             the whole report as JSON ('-' for stdout)
  --show N                failures shown per kind (default 5)
  --quiet                 no text report
Exit status: 0 passed, 1 a check failed, 2 an SLO was missed, 3 usage or setup error.
)";

double parse_ms(std::string_view s) {  // "200ms", "1.5s", "200" (ms)
  try {
    if (s.size() > 2 && s.substr(s.size() - 2) == "ms") return std::stod(std::string(s.substr(0, s.size() - 2)));
    if (s.size() > 1 && s.back() == 's') return loadtest::parse_duration_s(s) * 1000;
    std::size_t used = 0;
    const double v = std::stod(std::string(s), &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw usage_error("bad time '" + std::string(s) + "' (e.g. 200ms, 1.5s)");
}

slo parse_slo(const std::string& text) {
  slo o;
  o.text = text;
  std::string_view s = text;
  const auto lt = s.find('<');
  if (lt == std::string_view::npos) throw usage_error("--slo '" + text + "': expected [STEP:]pNN<TIME, e.g. p99<200ms");
  std::string_view what = s.substr(0, lt);
  if (const auto colon = what.rfind(':'); colon != std::string_view::npos) {
    o.step = std::string(what.substr(0, colon));
    what.remove_prefix(colon + 1);
  }
  if (what == "max") {
    o.percentile = 100;
  } else if (what.size() > 1 && what[0] == 'p') {
    try {
      std::size_t used = 0;
      o.percentile = std::stod(std::string(what.substr(1)), &used);
      if (used != what.size() - 1 || !(o.percentile > 0 && o.percentile <= 100)) throw usage_error("");
    } catch (const std::exception&) {
      throw usage_error("--slo '" + text + "': '" + std::string(what) + "' is not p50, p99, p99.9 or max");
    }
  } else {
    throw usage_error("--slo '" + text + "': '" + std::string(what) + "' is not p50, p99, p99.9 or max");
  }
  o.limit_ms = parse_ms(s.substr(lt + 1));
  return o;
}

std::size_t parse_count(const std::string& opt, const std::string& v, std::size_t lo, std::size_t hi) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || v[0] == '-' || n < lo || n > hi)
    throw usage_error(opt + " takes a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                      ", got '" + v + "'");
  return static_cast<std::size_t>(n);
}

// ---------------------------------------------------------------------------------------
// Addresses

struct endpoint {
  std::string host;  // as given
  int port = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host_header;
  std::string base;  // scheme://host:port
};

endpoint parse_url(const std::string& opt, const std::string& url) {
  endpoint e;
  if (url.rfind("http://", 0) != 0)
    throw usage_error(opt + " '" + url + "': only http://HOST:PORT is supported (put TLS in front of your backend's test copy, or test it plain)");
  std::string rest = url.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) throw usage_error(opt + " '" + url + "': give the origin only (http://HOST:PORT); paths go in --step");
  std::string port = "80";
  if (!rest.empty() && rest[0] == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) throw usage_error(opt + " '" + url + "': unbalanced [");
    e.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    e.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    e.host = rest;
  }
  e.port = static_cast<int>(parse_count(opt + " port", port, 1, 65535));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(e.host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr)
    throw usage_error(opt + " '" + url + "': cannot resolve '" + e.host + "'");
  std::memcpy(&e.addr, found->ai_addr, found->ai_addrlen);
  e.addr_len = found->ai_addrlen;
  ::freeaddrinfo(found);
  e.host_header = rest;
  e.base = "http://" + rest;
  return e;
}

// ---------------------------------------------------------------------------------------
// Minted logins: what the mock's POST /__mock/logins gives, in the slots the templates use.

// The variables a mint fills, by name. Payload fields are "user_info.rawData" and so on.
const std::vector<std::string> mint_names = {
    "code", "user", "openid", "unionid",
    "user_info.rawData", "user_info.signature", "user_info.encryptedData", "user_info.iv",
    "user_profile.rawData", "user_profile.signature", "user_profile.encryptedData", "user_profile.iv",
    "phone.code", "phone.encryptedData", "phone.iv"};

struct login {
  loadtest::values values;  // the mint's slots filled, the rest empty
};

class admin_client {
public:
  admin_client(const endpoint& mock, std::string token) : cli_(mock.host, mock.port), token_(std::move(token)) {
    cli_.set_keep_alive(true);
    cli_.set_connection_timeout(5);
    cli_.set_read_timeout(60);
    cli_.set_write_timeout(10);
  }
  // The answer's JSON; throws std::runtime_error with the mock's message on an error.
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& body = {}) {
    httplib::Headers h;
    if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
    httplib::Result r = method == "GET"      ? cli_.Get(path.c_str(), h)
                        : method == "DELETE" ? cli_.Delete(path.c_str(), h)
                                             : cli_.Post(path.c_str(), h, body, "application/json");
    if (!r) throw std::runtime_error(method + " " + path + ": " + httplib::to_string(r.error()));
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (r->status != 200) {
      std::string msg = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : r->body.substr(0, 200);
      auto e = std::runtime_error(method + " " + path + ": HTTP " + std::to_string(r->status) + ": " + msg);
      last_status = r->status;
      last_answer = std::move(j);
      throw e;
    }
    last_status = 200;
    return j;
  }
  int last_status = 0;
  nlohmann::json last_answer;

private:
  httplib::Client cli_;
  std::string token_;
};

// Keeps a queue of ready logins ahead of the plan (at most twice its low-water mark), minted
// in batches on its own connection to the mock.
class minter {
public:
  minter(const endpoint& mock, const options& o, const loadtest::variables& vars, std::vector<std::string> with,
         std::size_t users, std::string prefix)
      : admin_(mock, o.admin_token), appid_(o.appid), phone_(o.phone), with_(std::move(with)), users_(users),
        prefix_(std::move(prefix)) {
    // Where each used minted value sits in an entry: "code", or "user_info" then "iv".
    for (const auto& n : mint_names) {
      const int slot = vars.find(n);
      if (slot < 0) continue;
      const auto dot = n.find('.');
      fields_.push_back({slot, n.substr(0, dot), dot == std::string::npos ? std::string() : n.substr(dot + 1)});
    }
    nslots_ = vars.size();
  }

  static constexpr std::size_t max_batch = 250;

  // Mints what the first seconds need before the run (a setup error is reported, not a
  // run's failure).
  void prime(std::size_t n) {
    n = std::max<std::size_t>(1, std::min<std::size_t>(n, 4 * max_batch));
    for (std::size_t done = 0; done < n; done += max_batch) mint(std::min(max_batch, n - done));
  }

  void start(std::size_t low_water) {
    low_water_ = std::max<std::size_t>(low_water, 200);
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Takes up to n ready logins (fewer when the minter is behind).
  std::size_t take(std::deque<login>& into, std::size_t n) {
    std::size_t got = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (got < n && !ready_.empty()) {
        into.push_back(std::move(ready_.front()));
        ready_.pop_front();
        ++got;
      }
    }
    wake_.notify_one();
    return got;
  }

  std::string error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }
  std::uint64_t calls() const { return calls_.load(); }
  double seconds() const { return static_cast<double>(busy_us_.load()) / 1e6; }
  std::uint64_t minted() const { return minted_.load(); }

private:
  void run() {
    for (;;) {
      std::size_t want = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        // After an error it only waits to be stopped (the run ends on it).
        wake_.wait_for(lock, std::chrono::milliseconds(50),
                       [&] { return stopping_ || (error_.empty() && ready_.size() < low_water_); });
        if (stopping_) return;
        if (ready_.size() >= low_water_ || !error_.empty()) continue;
        // Small batches: a batch occupies one of the mock's event loops while it is made
        // (17-23 ms for 250 logins with every payload, Release), and the backend's WeChat
        // calls on that loop wait as long.
        want = std::min<std::size_t>(max_batch, 2 * low_water_ - ready_.size());
      }
      try {
        mint(want);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = e.what();
      }
    }
  }

  void mint(std::size_t n) {
    const auto t0 = clock_type::now();
    nlohmann::json req = {{"appid", appid_}, {"user_prefix", prefix_}, {"first", next_user_ % users_},
                          {"count", std::min<std::size_t>(n, users_ - next_user_ % users_)}};
    if (!with_.empty()) req["with"] = with_;
    if (!phone_.empty() && std::find(with_.begin(), with_.end(), "phone") != with_.end()) req["phone"] = phone_;
    nlohmann::json answer;
    try {
      answer = admin_.call("POST", "/__mock/logins", req.dump());
    } catch (const std::runtime_error&) {
      if (admin_.last_status != 507 || !admin_.last_answer.is_object()) throw;
      answer = admin_.last_answer;  // at a limit: the minted ones are valid; then stop
      error_after_ = "the mock is at a limit: " + admin_.last_answer.value("error", std::string());
    }
    std::deque<login> fresh;
    const auto& logins = answer.at("logins");
    for (const auto& l : logins) {
      login x;
      x.values.resize(nslots_);
      for (const auto& f : fields_) {
        const nlohmann::json* v = nullptr;
        if (const auto it = l.find(f.key); it != l.end()) v = &*it;
        if (v != nullptr && !f.sub.empty()) {
          const auto it = v->is_object() ? v->find(f.sub) : v->end();
          v = v->is_object() && it != v->end() ? &*it : nullptr;
        }
        if (v != nullptr && v->is_string()) {
          auto& slot = x.values[static_cast<std::size_t>(f.slot)];
          slot.text = v->get<std::string>();
          slot.present = true;
        }
      }
      fresh.push_back(std::move(x));
    }
    next_user_ += logins.size();
    calls_.fetch_add(1);
    minted_.fetch_add(logins.size());
    busy_us_.fetch_add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count()));
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& x : fresh) ready_.push_back(std::move(x));
    if (!error_after_.empty()) error_ = error_after_;
  }

  admin_client admin_;
  std::string appid_, phone_;
  std::vector<std::string> with_;
  std::size_t users_;
  std::string prefix_;
  struct field {
    int slot;
    std::string key, sub;  // the entry's key; the key inside it for a payload ("" if none)
  };
  std::vector<field> fields_;
  std::size_t nslots_ = 0;
  std::uint64_t next_user_ = 0;
  std::string error_after_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<login> ready_;
  std::size_t low_water_ = 200;
  bool stopping_ = false;
  std::string error_;
  std::thread thread_;
  std::atomic<std::uint64_t> calls_{0}, minted_{0}, busy_us_{0};
};

// ---------------------------------------------------------------------------------------
// What a worker counts. One per (thread, step); merged at the end and each second.

struct step_counts {
  // sent: requests written to the target; ok: answered right; failed: users that ended at
  // this step with a failure, including requests that never went out (a refused
  // connection, a missing value); skipped: users that ended at an earlier step.
  std::uint64_t sent = 0, ok = 0, failed = 0, skipped = 0, measured_ok = 0;
  histogram latency;      // from when the step was due (what the report leads with)
  histogram uncorrected;  // from the actual write
  void add(const step_counts& o) {
    sent += o.sent;
    ok += o.ok;
    failed += o.failed;
    skipped += o.skipped;
    measured_ok += o.measured_ok;
    latency.add(o.latency);
    uncorrected.add(o.uncorrected);
  }
};

struct failure_log {
  // A kind holds a piece of the answer (an "error" field): a target whose errors carry ids
  // would make a kind per answer, so past max_kinds new kinds are folded into one.
  static constexpr std::size_t max_kinds = 64;
  static constexpr const char* other_kinds = "(other kinds: more than 64)";
  std::map<std::string, std::uint64_t> by_kind;            // "POST /login: status 502 (wechat_unavailable)"
  std::map<std::string, std::vector<std::string>> samples;  // the first few of each kind
  std::size_t show = 5;
  void add(const std::string& kind, std::string detail) {
    if (folds(kind)) {
      detail.insert(0, kind + ": ");
      return add(other_kinds, std::move(detail));
    }
    auto& n = by_kind[kind];
    ++n;
    if (n <= show) samples[kind].push_back(std::move(detail));
  }
  // A new kind when max_kinds others are listed already goes into other_kinds.
  bool folds(const std::string& kind) const {
    return kind != other_kinds && by_kind.count(kind) == 0 && by_kind.size() - by_kind.count(other_kinds) >= max_kinds;
  }
  void merge(const failure_log& o) {
    for (const auto& [k, n] : o.by_kind) {
      const bool fold = folds(k);
      const std::string& into = fold ? std::string(other_kinds) : k;
      by_kind[into] += n;
      auto& mine = samples[into];
      if (const auto it = o.samples.find(k); it != o.samples.end())
        for (const auto& s : it->second)
          if (mine.size() < show) mine.push_back(fold ? std::string(k).append(": ").append(s) : s);
    }
  }
};

struct thread_totals {
  std::vector<step_counts> steps;
  histogram send_lag;  // open loop, first step: actual write - planned time
  std::uint64_t arrivals = 0, late_starts = 0, unsent = 0, mint_waits = 0, stopped = 0;
  std::uint64_t logins_sent = 0, logins_ok = 0;
  std::uint64_t users_done = 0, users_ok = 0;
  std::uint64_t openid_checked = 0, unionid_checked = 0;
  std::uint64_t connects = 0, connect_errors = 0, protocol_errors = 0;
  clock_type::time_point last_answer{};
  failure_log failures;
};

// Per second, read and zeroed by the reporting thread under `mutex`.
struct interval_counts {
  std::mutex mutex;
  std::uint64_t sent = 0, ok = 0, failed = 0;
  histogram latency;
};

struct shared_state {
  // stop_arrivals: the plan's time is up (the open loop still admits the plan's arrivals
  // that were due by then); stop_early: interrupted or out of codes, admit nothing more;
  // stop_now: the hard stop.
  std::atomic<bool> stop_arrivals{false}, stop_early{false}, stop_now{false};
  std::atomic<std::size_t> running{0};  // workers still in their loop
  clock_type::time_point t0;
};

// ---------------------------------------------------------------------------------------
// A worker: one epoll loop, its share of the arrivals and of the connections.
//
// Users wait in `pending_` (new arrivals; in the closed loop, one queued each time a user
// ends) or `resume_` (a user whose connection the target closed between two steps) until
// an idle connection takes them. A connection is in `idle_` only with no user; a user is
// on at most one connection. At the end every arrival is counted once: done (ok or
// failed), stopped (in flight at the hard stop) or unsent.
class worker {
public:
  worker(const options& o, const endpoint& target, const loadtest::variables& vars,
         const std::optional<loadtest::arrival_plan>& plan, minter* mint, shared_state& shared,
         std::size_t index, std::size_t nthreads, std::size_t max_conns)
      : o_(o), target_(target), plan_(plan), mint_(mint), shared_(shared), index_(index), nthreads_(nthreads),
        max_conns_(std::max<std::size_t>(1, max_conns)) {
    totals.steps.resize(o.steps.size());
    totals.failures.show = o.show;
    interval.resize(o.steps.size());
    for (auto& i : interval) i = std::make_unique<interval_counts>();
    nslots_ = vars.size();
    for (std::size_t i = 0; i < nslots_; ++i) names_.push_back(vars.name(static_cast<int>(i)));
    code_slot_ = vars.find("code");
    openid_slot_ = vars.find("openid");
    unionid_slot_ = vars.find("unionid");
    vu_slot_ = vars.find("vu");
    for (const auto& s : o.steps) {
      step_has_code_.push_back(code_slot_ >= 0 && s.sends(code_slot_));
      step_label_.push_back(s.method + " " + s.name);
    }
  }

  void run() {
    // The default 50 us timer slack would show as send lag behind the plan.
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    next_k_ = index_;
    if (!plan_)
      for (std::size_t i = 0; i < max_conns_; ++i) queue_closed_loop_user(clock_type::now());
    std::vector<epoll_event> events(256);
    auto last_sweep = clock_type::now();
    for (;;) {
      const auto now = clock_type::now();
      if (plan_) admit(now);
      dispatch(now);
      if (finished()) break;
      const timespec ts = wait_time(now);
      const int n = mock_wechat::detail::wait_precisely(
          ep_, events.data(), static_cast<int>(events.size()), ts, precise_wait_);
      if (n < 0 && errno != EINTR) {
        std::fprintf(stderr, "wechat-loadtest: epoll: %s\n", std::strerror(errno));
        std::abort();
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<connection*>(events[i].data.ptr);
        if (c->fd < 0) continue;
        if (!c->connected || (events[i].events & EPOLLOUT)) on_writable(*c);
        if (c->fd >= 0 && c->connected && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
          on_readable(*c);
      }
      const auto after = clock_type::now();
      if (after - last_sweep > std::chrono::milliseconds(10)) {
        sweep_timeouts(after);
        last_sweep = after;
      }
    }
    for (auto& c : conns_)
      if (c->fd >= 0) ::close(c->fd);
    ::close(ep_);
    shared_.running.fetch_sub(1);
  }

  thread_totals totals;
  std::vector<std::unique_ptr<interval_counts>> interval;

private:
  struct vuser {
    loadtest::values values;
    std::uint64_t k = 0;
    std::size_t step = 0;
    clock_type::time_point due;  // when its current step was due: latency counts from here
    bool measured = true;
    bool waited = false;     // counted once in mint_waits
    bool code_sent = false;  // a step carrying its code was written (once per user)
    bool code_ok = false;    // and answered right
  };
  struct connection {
    int fd = -1;
    bool connected = false, busy = false, stamped = false;
    bool in_idle = false;  // has an entry in idle_ (at most one: idle_ stays within conns_)
    std::string out;
    std::size_t written = 0;
    loadtest::http_reader reader;
    std::optional<vuser> user;
    clock_type::time_point write_time, deadline;
  };

  // Open loop: arrivals of this thread that are due join the queue with their planned time.
  void admit(clock_type::time_point now) {
    if (shared_.stop_early.load(std::memory_order_relaxed)) return;
    const double elapsed = std::chrono::duration<double>(now - shared_.t0).count();
    for (;;) {
      const double due = plan_->due_s(next_k_);
      if (!(due <= elapsed)) break;
      vuser u;
      u.k = next_k_;
      u.due = shared_.t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(due));
      u.measured = due >= o_.warmup_s;
      pending_.push_back(std::move(u));
      ++totals.arrivals;
      next_k_ += nthreads_;
    }
  }

  // Closed loop: one more user, started as soon as a connection takes it.
  void queue_closed_loop_user(clock_type::time_point now) {
    if (shared_.stop_arrivals.load(std::memory_order_relaxed)) return;
    vuser u;
    u.k = next_k_;
    u.due = now;
    next_k_ += nthreads_;
    ++totals.arrivals;
    pending_.push_back(std::move(u));
  }

  // Waiting users go out on idle connections, opening new ones up to the cap: first those
  // whose connection was closed between two steps (they have waited longest), then new
  // arrivals. Only the users waiting on entry: one that fails at once and queues its
  // successor (closed loop) goes round the event loop first.
  void dispatch(clock_type::time_point now) {
    for (std::size_t n = resume_.size(); n > 0 && !resume_.empty(); --n) {
      connection* c = idle_connection(now);
      if (c == nullptr) return;
      vuser u = std::move(resume_.front());
      resume_.pop_front();
      c->user = std::move(u);
      send_step(*c, now);
    }
    for (std::size_t n = pending_.size(); n > 0 && !pending_.empty(); --n) {
      if (!fill_user(pending_.front())) {
        if (!pending_.front().waited) ++totals.mint_waits;
        pending_.front().waited = true;
        return;
      }
      connection* c = idle_connection(now);
      if (c == nullptr) return;
      vuser u = std::move(pending_.front());
      pending_.pop_front();
      start_user(*c, std::move(u), now);
    }
  }

  // A waiting user gets its minted login (values) the first time it could go out.
  bool fill_user(vuser& u) {
    if (!u.values.empty()) return true;
    if (mint_ == nullptr) {
      u.values.resize(nslots_);
    } else {
      if (ready_.empty()) mint_->take(ready_, 64);
      if (ready_.empty()) return false;
      u.values = std::move(ready_.front().values);
      ready_.pop_front();
    }
    if (vu_slot_ >= 0) {
      auto& v = u.values[static_cast<std::size_t>(vu_slot_)];
      v.text = std::to_string(u.k);
      v.present = true;
    }
    return true;
  }

  connection* idle_connection(clock_type::time_point now) {
    while (!idle_.empty()) {
      connection* c = idle_.back();
      idle_.pop_back();
      c->in_idle = false;
      if (c->fd >= 0 && !c->busy && !c->user) return c;  // else closed, or reopened and taken since
    }
    if (open_count_ >= max_conns_) return nullptr;
    // After a connection that could not be opened (no descriptor, no port; in the closed
    // loop also a refused one), the next try is 10 ms later, not a busy loop; the users
    // wait, and their wait counts.
    if (now < reconnect_after_) return nullptr;
    connection* c = nullptr;
    if (!closed_slots_.empty()) {
      c = closed_slots_.back();
      closed_slots_.pop_back();
    } else {
      conns_.push_back(std::make_unique<connection>());
      c = conns_.back().get();
    }
    if (!open(*c)) {
      closed_slots_.push_back(c);
      return nullptr;
    }
    return c;
  }

  bool open(connection& c) {
    c.fd = ::socket(target_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      ++totals.connect_errors;
      totals.failures.add("transport: socket", std::strerror(errno));
      reconnect_after_ = clock_type::now() + std::chrono::milliseconds(10);
      return false;
    }
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int r = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&target_.addr), target_.addr_len);
    if (r != 0 && errno != EINPROGRESS) {
      ++totals.connect_errors;
      totals.failures.add("transport: connect", std::strerror(errno));
      reconnect_after_ = clock_type::now() + std::chrono::milliseconds(10);
      ::close(c.fd);
      c.fd = -1;
      return false;
    }
    ++open_count_;
    c.connected = r == 0;
    if (c.connected) ++totals.connects;
    c.busy = false;
    c.user.reset();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  // Closes c; a user still on it must have been dealt with (ended or moved) by the caller.
  void close_connection(connection& c) {
    if (c.fd >= 0) {
      ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      --open_count_;
      closed_slots_.push_back(&c);
    }
    c.fd = -1;
    c.busy = false;
    c.connected = false;
    c.user.reset();
  }

  void start_user(connection& c, vuser u, clock_type::time_point now) {
    if (!plan_) {
      // Closed loop: a user starts when a connection takes it (a wait for a minted code
      // is the generator's, counted in mint_waits, not the target's).
      u.due = now;
      u.measured = std::chrono::duration<double>(now - shared_.t0).count() >= o_.warmup_s;
    }
    c.user = std::move(u);
    send_step(c, now);
  }

  // Builds the user's current step and writes it on connection c.
  void send_step(connection& c, clock_type::time_point now) {
    vuser& u = *c.user;
    const loadtest::step& s = o_.steps[u.step];
    c.out.clear();
    c.out += s.method;
    c.out += ' ';
    int missing = -1;
    bool ok = s.path.expand(u.values, c.out, &missing);
    c.out += " HTTP/1.1\r\nHost: ";
    c.out += target_.host_header;
    c.out += "\r\n";
    for (const auto& [name, value] : s.headers) {
      if (!ok) break;
      c.out += name;
      c.out += ": ";
      const std::size_t at = c.out.size();
      ok = value.expand(u.values, c.out, &missing);
      // A captured value with a line break must not add a header of its own.
      if (ok && c.out.find_first_of("\r\n", at) != std::string::npos) {
        ok = false;
        missing = -2;
      }
      c.out += "\r\n";
    }
    if (ok && s.has_body) {
      body_.clear();
      ok = s.body.expand(u.values, body_, &missing);
      c.out += "Content-Type: application/json\r\nContent-Length: ";
      c.out += std::to_string(body_.size());
      c.out += "\r\n\r\n";
      c.out += body_;
    } else {
      c.out += "\r\n";
    }
    if (!ok) {  // nothing goes out; the user ends here
      fail_user(u, "missing value",
               missing == -2 ? std::string("a header value holds a line break")
                             : "${" + var_name(missing) + "} has no value (an earlier step did not capture it)",
               now);
      c.user.reset();
      release(c);
      return;
    }
    c.written = 0;
    c.busy = true;
    c.stamped = false;
    c.reader.reset(s.method == "HEAD");
    c.write_time = now;
    c.deadline = now + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o_.timeout_s));
    if (c.connected) write_some(c);
  }

  std::string var_name(int slot) const {
    return slot >= 0 && static_cast<std::size_t>(slot) < names_.size() ? names_[static_cast<std::size_t>(slot)] : "?";
  }

  // The request's first byte goes out: it is sent (counted once), and its write time and
  // send lag are taken now, not when the loop began its turn.
  void stamp(connection& c) {
    c.stamped = true;
    const auto now = clock_type::now();
    c.write_time = now;
    vuser& u = *c.user;
    ++totals.steps[u.step].sent;
    if (step_has_code_[u.step] && !u.code_sent) {
      u.code_sent = true;
      ++totals.logins_sent;
    }
    if (plan_ && u.step == 0 && u.measured) {
      const auto lag = now - u.due;
      totals.send_lag.record(static_cast<std::uint64_t>(
          std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(lag).count())));
      if (lag > std::chrono::milliseconds(1)) ++totals.late_starts;
    }
    auto& iv = *interval[u.step];
    std::lock_guard<std::mutex> lock(iv.mutex);
    ++iv.sent;
  }

  void write_some(connection& c) {
    while (c.written < c.out.size()) {
      if (!c.stamped) stamp(c);
      const ssize_t n = ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes it
      transport_failure(c, std::string("write: ") + std::strerror(errno));
      return;
    }
  }

  void on_writable(connection& c) {
    if (!c.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++totals.connect_errors;
        if (!plan_) reconnect_after_ = clock_type::now() + std::chrono::milliseconds(10);
        transport_failure(c, std::string("connect: ") + std::strerror(err));
        return;
      }
      c.connected = true;
      ++totals.connects;
    }
    if (c.busy) write_some(c);
  }

  void on_readable(connection& c) {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        std::string_view in(buf, static_cast<std::size_t>(n));
        while (!in.empty()) {
          if (!c.busy) {
            protocol_error(c, "the target sent bytes with no request outstanding: " +
                                  loadtest::detail::printable_sample(in, 80));
            return;
          }
          std::size_t used = 0;
          const auto r = c.reader.feed(in, used);
          in.remove_prefix(used);
          if (r == loadtest::http_reader::result::need_more) break;
          if (r == loadtest::http_reader::result::error) {
            transport_failure(c, "bad answer: " + c.reader.error());
            return;
          }
          if (!in.empty()) {
            // More bytes than the answer: a second answer to one request. The answer is
            // taken, the protocol error counted against this step, and the connection
            // closed before anything else is sent on it.
            ++totals.protocol_errors;
            totals.failures.add(step_label_[c.user->step] + ": protocol: more than one answer to a request",
                                loadtest::detail::printable_sample(in, 80));
            answered(c, /*force_close=*/true);
            return;
          }
          if (!answered(c)) return;  // the connection was closed
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // The target closed the connection (or an error).
      if (c.busy) {
        if (n == 0 && c.reader.end_of_stream() == loadtest::http_reader::result::complete) {
          answered(c);
          return;
        }
        transport_failure(c, n == 0 ? c.reader.error() : std::string("read: ") + std::strerror(errno));
      } else {
        close_connection(c);  // an idle keep-alive connection the target let go
      }
      return;
    }
  }

  // A whole answer arrived: record, check, go on. False when the connection was closed.
  bool answered(connection& c, bool force_close = false) {
    const auto now = clock_type::now();
    totals.last_answer = now;
    // An answer before the whole request went out (a 413, say): the rest of the request
    // would be read as a new one, so this connection is done after it.
    const bool cut_short = c.written < c.out.size();
    c.busy = false;
    vuser& u = *c.user;
    const loadtest::step& s = o_.steps[u.step];
    auto& counts = totals.steps[u.step];
    const auto corrected = us_since(u.due, now);
    const auto raw = us_since(c.write_time, now);
    auto& res = c.reader.response();
    std::optional<std::pair<std::string, std::string>> failure = check_answer(u, s, res);
    if (u.measured) {
      counts.latency.record(corrected);
      counts.uncorrected.record(raw);
      if (!failure) ++counts.measured_ok;
    }
    count_interval(u.step, !failure, u.measured ? std::optional<std::uint64_t>(corrected) : std::nullopt);
    const bool close = res.close || cut_short || force_close;
    if (failure) {
      fail_user(u, failure->first, std::move(failure->second), now);
      c.user.reset();
    } else {
      ++counts.ok;
      if (step_has_code_[u.step] && !u.code_ok) {
        u.code_ok = true;
        ++totals.logins_ok;
      }
      if (++u.step == o_.steps.size()) {
        ++totals.users_done;
        ++totals.users_ok;
        c.user.reset();
        if (!plan_) queue_closed_loop_user(now);
      } else {
        u.due = now;  // the next step is due now (no think time)
      }
    }
    if (close) {
      // A user with steps left goes on over another connection; its wait counts.
      std::optional<vuser> rest = std::move(c.user);
      c.user.reset();
      close_connection(c);
      if (rest) resume_.push_back(std::move(*rest));
      return false;
    }
    release(c);
    return true;
  }

  static std::uint64_t us_since(clock_type::time_point from, clock_type::time_point to) {
    return static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(to - from).count()));
  }

  // The connection is free: the user's next step, or idle.
  void release(connection& c) {
    if (c.fd < 0) return;
    if (c.user) {
      send_step(c, clock_type::now());
      return;
    }
    if (!c.in_idle) {
      c.in_idle = true;
      idle_.push_back(&c);
    }
  }

  // The user ends at its current step with a failure; its later steps are skipped. In the
  // closed loop another user takes its place. (The caller drops the user.)
  void fail_user(const vuser& u, const std::string& kind, std::string detail, clock_type::time_point now) {
    ++totals.steps[u.step].failed;
    for (std::size_t i = u.step + 1; i < o_.steps.size(); ++i) ++totals.steps[i].skipped;
    totals.failures.add(step_label_[u.step] + ": " + kind, std::move(detail));
    ++totals.users_done;
    if (!plan_) queue_closed_loop_user(now);
  }

  // One answer (or failure) of a step in the current second's row of the CSV.
  void count_interval(std::size_t step, bool ok, std::optional<std::uint64_t> latency_us) {
    auto& iv = *interval[step];
    std::lock_guard<std::mutex> lock(iv.mutex);
    ++(ok ? iv.ok : iv.failed);
    if (latency_us) iv.latency.record(*latency_us);
  }

  // The request on c failed without an answer (refused, reset, timed out, malformed):
  // the user fails, with the time it waited in the latency figures, and c is closed.
  void transport_failure(connection& c, const std::string& what) {
    if (c.user) {
      const auto now = clock_type::now();
      const vuser& u = *c.user;
      std::optional<std::uint64_t> waited;
      if (c.busy && u.measured) {
        waited = us_since(u.due, now);
        totals.steps[u.step].latency.record(*waited);
        if (c.stamped) totals.steps[u.step].uncorrected.record(us_since(c.write_time, now));
      }
      count_interval(u.step, false, waited);
      const auto colon = what.find(':');
      fail_user(u, "transport: " + what.substr(0, colon), what, now);
      c.user.reset();
    }
    close_connection(c);
  }

  // Bytes the target sent with no request outstanding: a protocol error of the target's.
  void protocol_error(connection& c, std::string what) {
    ++totals.protocol_errors;
    totals.failures.add("protocol: bytes with no request outstanding", std::move(what));
    close_connection(c);
  }

  std::optional<std::pair<std::string, std::string>> check_answer(vuser& u, const loadtest::step& s,
                                                                  const loadtest::http_response& res) {
    using loadtest::detail::printable_sample;
    const bool status_ok = s.expect_status == 0 ? (res.status >= 200 && res.status < 300) : res.status == s.expect_status;
    const bool looks_json = [&] {
      for (const char ch : res.body) {
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
        return ch == '{' || ch == '[';
      }
      return false;
    }();
    const bool minted = openid_slot_ >= 0 && u.values[static_cast<std::size_t>(openid_slot_)].present;
    const bool want_json = s.needs_json() || (o_.default_checks && minted) || !status_ok;
    nlohmann::json j;
    if (want_json && looks_json) j = nlohmann::json::parse(res.body, nullptr, false);
    if (!status_ok) {
      std::string kind = "status " + std::to_string(res.status);
      if (j.is_object()) {
        const auto e = j.find("error");
        if (e != j.end() && e->is_string())
          kind += " (" + printable_sample(e->get_ref<const std::string&>(), 48) + ")";
      }
      return std::make_pair(kind, "HTTP " + std::to_string(res.status) + ": " + printable_sample(res.body));
    }
    if (s.needs_json() && (j.is_discarded() || !looks_json))
      return std::make_pair(std::string("answer is not JSON"), printable_sample(res.body));
    if (j.is_discarded()) j = nullptr;
    if (s.needs_json()) {
      if (auto f = loadtest::apply(s, j, u.values)) return std::make_pair(f->kind, f->detail);
    }
    // By default an answer's openid and unionid are the mock's ids for this user.
    if (o_.default_checks && minted && j.is_object()) {
      const auto& want_openid = u.values[static_cast<std::size_t>(openid_slot_)];
      if (const auto it = j.find("openid"); it != j.end()) {
        ++totals.openid_checked;
        if (!it->is_string() || it->get_ref<const std::string&>() != want_openid.text)
          return std::make_pair(std::string("wrong openid"), "openid " + loadtest::detail::show(*it) +
                                                                 ", the mock's id for this user is \"" +
                                                                 want_openid.text + "\"");
      }
      if (const auto it = j.find("unionid"); it != j.end() && unionid_slot_ >= 0) {
        const auto& want = u.values[static_cast<std::size_t>(unionid_slot_)];
        ++totals.unionid_checked;
        if (!want.present)
          return std::make_pair(std::string("unexpected unionid"),
                                "unionid " + loadtest::detail::show(*it) +
                                    ", but jscode2session gives this user none in this app (today's rules)");
        if (!it->is_string() || it->get_ref<const std::string&>() != want.text)
          return std::make_pair(std::string("wrong unionid"), "unionid " + loadtest::detail::show(*it) +
                                                                  ", the mock's id for this user is \"" +
                                                                  want.text + "\"");
      }
    }
    return std::nullopt;
  }

  void sweep_timeouts(clock_type::time_point now) {
    for (auto& p : conns_) {
      connection& c = *p;
      if (c.fd >= 0 && c.busy && now >= c.deadline) {
        char what[96];
        std::snprintf(what, sizeof what, "timeout: no whole answer within %.3g s", o_.timeout_s);
        transport_failure(c, what);
      }
    }
  }

  // Done when arrivals have stopped and no user is in flight or waiting for a connection
  // (pending arrivals never sent are counted unsent); at the hard stop, users in flight
  // are counted as stopped, with the time they waited.
  bool finished() {
    if (shared_.stop_now.load(std::memory_order_relaxed)) {
      for (auto& p : conns_) {
        connection& c = *p;
        if (c.fd >= 0 && c.user) {
          ++totals.stopped;
          transport_failure(c, c.stamped ? "stopped: still waiting for an answer at the end of the run"
                                         : "stopped: still connecting at the end of the run");
        }
      }
      const auto now = clock_type::now();
      for (const auto& u : resume_) {
        if (u.measured) totals.steps[u.step].latency.record(us_since(u.due, now));
        count_interval(u.step, false, std::nullopt);
        ++totals.stopped;
        fail_user(u, "stopped", "still waiting for a connection at the end of the run", now);
      }
      resume_.clear();
      count_unsent();
      return true;
    }
    if (!shared_.stop_arrivals.load(std::memory_order_relaxed)) return false;
    if (plan_ && !shared_.stop_early.load(std::memory_order_relaxed) && std::isfinite(plan_->due_s(next_k_)))
      return false;  // arrivals of the plan still to admit (this thread ran late)
    if (!resume_.empty()) return false;
    for (const auto& p : conns_)
      if (p->fd >= 0 && p->user) return false;
    count_unsent();
    return true;
  }

  // Users that never got a connection. In the open loop they arrived and waited the whole
  // time: a failure, and their wait is in the latency figures. In the closed loop they are
  // only the next users queued (the generator's, waiting for a code): not arrivals.
  void count_unsent() {
    if (plan_) {
      const auto now = clock_type::now();
      totals.unsent += pending_.size();
      for (const auto& u : pending_)
        if (u.measured) totals.steps[0].latency.record(us_since(u.due, now));
    } else {
      totals.arrivals -= pending_.size();
    }
    pending_.clear();
    resume_.clear();
  }

  timespec wait_time(clock_type::time_point now) const {
    double s = 0.010;  // timeouts are swept every 10 ms
    if (plan_ && !shared_.stop_arrivals.load(std::memory_order_relaxed)) {
      const double due = plan_->due_s(next_k_);
      const double elapsed = std::chrono::duration<double>(now - shared_.t0).count();
      s = std::min(s, std::max(0.0, due - elapsed));
    }
    if ((!pending_.empty() && ready_.empty() && mint_ != nullptr) || !resume_.empty() ||
        (!plan_ && !pending_.empty()))
      s = std::min(s, 0.001);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(s);
    ts.tv_nsec = static_cast<long>((s - static_cast<double>(ts.tv_sec)) * 1e9);
    return ts;
  }

  const options& o_;
  const endpoint& target_;
  const std::optional<loadtest::arrival_plan>& plan_;
  minter* mint_;
  shared_state& shared_;
  std::size_t index_, nthreads_, max_conns_;
  std::size_t nslots_ = 0, open_count_ = 0;
  bool precise_wait_ = true;  // epoll_pwait2 works here (mock_wechat/detail/precise_wait.hpp)
  int code_slot_ = -1, openid_slot_ = -1, unionid_slot_ = -1, vu_slot_ = -1;
  std::vector<bool> step_has_code_;
  std::vector<std::string> step_label_, names_;
  int ep_ = -1;
  std::uint64_t next_k_ = 0;
  std::deque<vuser> pending_, resume_;
  clock_type::time_point reconnect_after_{};
  std::deque<login> ready_;
  std::vector<std::unique_ptr<connection>> conns_;
  std::vector<connection*> idle_, closed_slots_;
  std::string body_;
};

// ---------------------------------------------------------------------------------------
// The report

double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

nlohmann::json latency_json(const histogram& h) {
  return {{"count", h.count()},
          {"mean_ms", h.mean() / 1000.0},
          {"p50_ms", ms(h.percentile(50))},
          {"p90_ms", ms(h.percentile(90))},
          {"p99_ms", ms(h.percentile(99))},
          {"p99_9_ms", ms(h.percentile(99.9))},
          {"max_ms", ms(h.max())}};
}

struct mock_check {
  std::string name;
  bool passed = true;
  std::string detail;
};

// The counters of GET /__mock/stats that the checks compare, before and after the run.
struct mock_counters {
  std::uint64_t exchanges = 0, tokens = 0;
  std::map<std::string, std::map<std::string, std::uint64_t>> errcodes;  // endpoint -> errcode -> n

  static mock_counters from(const nlohmann::json& stats) {
    mock_counters m;
    const auto eps = stats.find("endpoints");
    if (eps == stats.end() || !eps->is_object()) return m;
    for (const auto& [path, e] : eps->items()) {
      const std::uint64_t n = e.value("count", std::uint64_t{0});
      if (path == "/sns/jscode2session" || path == "/sns/component/jscode2session") m.exchanges += n;
      if (path == "/cgi-bin/token" || path == "/cgi-bin/stable_token") m.tokens += n;
      if (const auto ec = e.find("errcodes"); ec != e.end() && ec->is_object())
        for (const auto& [code, k] : ec->items()) m.errcodes[path][code] = k.get<std::uint64_t>();
    }
    return m;
  }
};

void write_csv(const std::string& path, const std::vector<std::vector<double>>& rows) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << "second,target_rps,sent,ok,errors,p50_ms,p90_ms,p99_ms,p999_ms,max_ms\n";
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (i) out << ',';
      if (i == 1 && std::isnan(r[i])) continue;  // closed loop: no target rate
      out << r[i];
    }
    out << '\n';
  }
}

// Draws the CSV with gnuplot (requests/s on the left axis, latency on a log right axis).
bool draw_png(const std::string& csv, const std::string& png, bool open_loop, std::string& error) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    error = "gnuplot is not installed (apt-get install gnuplot-nox); the CSV has the figures";
    return false;
  }
  auto quote = [](const std::string& s) {
    std::string q = "\"";
    for (const char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  std::string script =
      "set terminal pngcairo noenhanced size 1000,500 font 'sans,10'\n"
      "set output " + quote(png) + "\n"
      "set datafile separator comma\n"
      "set key top left\n"
      "set xlabel 'seconds'\nset ylabel 'requests/s'\nset y2label 'latency (ms, log)'\n"
      "set yrange [0:*]\nset offsets 0, 0, graph 0.15, 0\nset ytics nomirror\nset y2tics\nset logscale y2\nset grid\n"
      "plot ";
  if (open_loop) script += quote(csv) + " using 1:2 skip 1 with lines dashtype 2 lw 2 title 'target rate', ";
  script += quote(csv) + " using 1:4 skip 1 with lines lw 2 title 'ok/s', " +
            quote(csv) + " using 1:($5 > 0 ? $5 : 1/0) skip 1 with points pt 7 title 'errors/s', " +
            quote(csv) + " using 1:($6 > 0 ? $6 : 1/0) skip 1 axes x1y2 with lines title 'p50', " +
            quote(csv) + " using 1:($8 > 0 ? $8 : 1/0) skip 1 axes x1y2 with lines title 'p99', " +
            quote(csv) + " using 1:($10 > 0 ? $10 : 1/0) skip 1 axes x1y2 with lines title 'max'\n";
  FILE* p = ::popen("gnuplot 2>&1", "w");
  if (p == nullptr) {
    error = "cannot run gnuplot";
    return false;
  }
  std::fwrite(script.data(), 1, script.size(), p);
  const int rc = ::pclose(p);
  if (rc != 0) {
    error = "gnuplot failed (status " + std::to_string(rc) + ")";
    return false;
  }
  return true;
}

std::string random_hex(std::size_t n) {
  std::random_device rd;
  std::string s;
  static const char* digits = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) s += digits[rd() % 16];
  return s;
}

options parse_options(int argc, char** argv, loadtest::variables& vars) {
  options o;
  if (const char* t = std::getenv("MOCK_WECHAT_ADMIN_TOKEN"); t != nullptr) o.admin_token = t;
  std::vector<std::string> args(argv + 1, argv + argc);
  bool have_duration = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--help" || k == "-h") {
      std::cout << usage_text;
      std::exit(exit_ok);
    }
    if (k == "--no-default-checks") {
      o.default_checks = false;
      continue;
    }
    if (k == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (i + 1 >= args.size()) throw usage_error(k + " needs a value");
    const std::string& v = args[++i];
    auto last_step = [&]() -> loadtest::step& {
      if (o.steps.empty()) throw usage_error(k + " applies to a --step: give the --step first");
      return o.steps.back();
    };
    try {
      if (k == "--target") o.target = v;
      else if (k == "--mock") o.mock = v;
      else if (k == "--appid") o.appid = v;
      else if (k == "--admin-token") o.admin_token = v;
      else if (k == "--rate") o.rate = v;
      else if (k == "--connections") o.connections = parse_count(k, v, 1, 100000);
      else if (k == "--duration") {
        o.duration_s = loadtest::parse_duration_s(v);
        have_duration = true;
      } else if (k == "--warmup") o.warmup_s = loadtest::parse_duration_s(v);
      else if (k == "--timeout") o.timeout_s = loadtest::parse_duration_s(v);
      else if (k == "--threads") o.threads = parse_count(k, v, 1, 64);
      else if (k == "--max-connections") o.max_connections = parse_count(k, v, 1, 100000);
      else if (k == "--users") o.users = parse_count(k, v, 1, 4000000);
      else if (k == "--phone") o.phone = v;
      else if (k == "--show") o.show = parse_count(k, v, 0, 1000);
      else if (k == "--wechat-latency") o.wechat_latency = v;
      else if (k == "--allow-errcode") o.allowed_errcodes.push_back(static_cast<long>(parse_count(k, v, 1, 9999999)));
      else if (k == "--max-token-fetches") o.max_token_fetches = static_cast<long>(parse_count(k, v, 0, 1000000));
      else if (k == "--slo") o.slos.push_back(parse_slo(v));
      else if (k == "--csv") o.csv = v;
      else if (k == "--png") o.png = v;
      else if (k == "--json") o.json = v;
      else if (k == "--step") o.steps.push_back(loadtest::parse_step(v, vars));
      else if (k == "--name") last_step().name = v;
      else if (k == "--header") last_step().headers.push_back(loadtest::parse_header(v, vars)); else if (k == "--capture") last_step().captures.push_back(loadtest::parse_capture(v, vars));
      else if (k == "--check") last_step().checks.push_back(loadtest::parse_check(v, vars));
      else if (k == "--expect-status") last_step().expect_status = static_cast<int>(parse_count(k, v, 100, 599));
      else throw usage_error("unknown option " + k + " (see --help)");
    } catch (const std::invalid_argument& e) {
      throw usage_error(k + ": " + e.what());
    }
  }
  if (o.target.empty()) throw usage_error("--target is required");
  if (o.steps.empty()) throw usage_error("give at least one --step");
  if (o.rate.empty() == (o.connections == 0)) throw usage_error("give either --rate (open loop) or --connections (closed loop)");
  if (!o.png.empty() && o.csv.empty()) {  // run.png -> run.csv, beside it
    const auto slash = o.png.rfind('/');
    const auto dot = o.png.rfind('.');
    o.csv = (dot != std::string::npos && (slash == std::string::npos || dot > slash + 1) ? o.png.substr(0, dot) : o.png) +
            ".csv";
  }
  if (have_duration && o.rate.find(':') != std::string::npos)
    std::cerr << "wechat-loadtest: warning: --duration is ignored: the --rate segments give the run's length\n";
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  // SIGINT and SIGTERM end the run early, the normal way (the mock's latency fault is
  // removed, the report says the run was interrupted). Blocked here, before any thread
  // starts, so every thread inherits the mask and only the main loop takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  loadtest::variables vars;
  for (const auto& n : mint_names) vars.slot(n);
  vars.slot("vu");
  const std::size_t builtin_slots = vars.size();
  options o;
  endpoint target, mock;
  std::optional<loadtest::arrival_plan> plan;
  try {
    o = parse_options(argc, argv, vars);
    target = parse_url("--target", o.target);
    if (!o.mock.empty()) mock = parse_url("--mock", o.mock);
    if (!o.rate.empty()) plan = loadtest::arrival_plan::parse(o.rate, o.duration_s);
    // Every variable a template names is minted, "vu", or captured by an earlier step (a
    // step's checks may also use its own captures: they run first).
    std::vector<bool> captured(vars.size(), false);
    std::string known;
    for (const auto& n : mint_names) known += (known.empty() ? "" : ", ") + n;
    auto require = [&](const loadtest::text_template& t, const loadtest::step& s, const char* where) {
      for (const int slot : t.slots()) {
        const auto i = static_cast<std::size_t>(slot);
        if (i < builtin_slots || captured[i]) continue;
        throw usage_error("--step '" + s.method + " " + s.name + "': " + where + " uses ${" + vars.name(slot) +
                          "}, which no earlier step captures (--capture NAME=$.path) and which is not minted (" + known +
                          ", vu)");
      }
    };
    for (const auto& s : o.steps) {
      require(s.path, s, "its path");
      require(s.body, s, "its body");
      for (const auto& h : s.headers) require(h.second, s, "a header");
      for (const auto& c : s.captures) captured[static_cast<std::size_t>(c.slot)] = true;
      for (const auto& c : s.checks) require(c.expected, s, "a check");
    }
    // WeChat gives no unionid to a user of an app not bound to an Open Platform account: a
    // request cannot require one.
    const int unionid = vars.find("unionid");
    for (const auto& s : o.steps) {
      if (s.sends(unionid, /*required=*/true))
        throw usage_error("--step '" + s.method + " " + s.name + "' sends ${unionid}, which WeChat may not give (an app not "
                          "bound to an Open Platform account): write ${unionid?} (empty when absent)");
    }
    const double planned_s = plan ? plan->duration_s() : o.duration_s;
    if (o.warmup_s >= planned_s) {
      char text[160];
      std::snprintf(text, sizeof text, "--warmup %g s leaves nothing of the %g s run to measure", o.warmup_s, planned_s);
      throw usage_error(text);
    }
  } catch (const std::exception& e) {
    std::cerr << "wechat-loadtest: " << e.what() << "\n";
    return exit_usage;
  }

  // What to mint: logins when any minted value is used, payloads when their fields are.
  bool need_mint = false;
  std::vector<std::string> with;
  for (std::size_t i = 0; i < mint_names.size(); ++i) {
    const int slot = static_cast<int>(i);
    const bool used = std::any_of(o.steps.begin(), o.steps.end(), [&](const loadtest::step& s) {
      return s.sends(slot) || std::any_of(s.checks.begin(), s.checks.end(), [&](const loadtest::check& c) {
               const auto& used_by_check = c.expected.slots();
               return std::find(used_by_check.begin(), used_by_check.end(), slot) != used_by_check.end();
             });
    });
    if (!used) continue;
    need_mint = true;
    const auto dot = mint_names[i].find('.');
    if (dot != std::string::npos) {
      const auto kind = mint_names[i].substr(0, dot);
      if (std::find(with.begin(), with.end(), kind) == with.end()) with.push_back(kind);
    }
  }
  if (need_mint && (o.mock.empty() || o.appid.empty())) {
    std::cerr << "wechat-loadtest: the steps use minted values (${code}...): give --mock and --appid\n";
    return exit_usage;
  }

  std::unique_ptr<admin_client> admin;
  mock_counters before;
  std::uint64_t latency_fault = 0;
  std::unique_ptr<minter> mint;
  const double peak = plan ? plan->peak_rps() : 0;
  std::size_t users = o.users;
  if (users == 0) users = plan ? static_cast<std::size_t>(std::max(100.0, std::ceil(peak * 120))) : (std::size_t{1} << 20);
  // WeChat (and the mock) allow 100 jscode2session calls per user per minute (45011 past it).
  if (o.users != 0 && plan && need_mint && peak * 60 / static_cast<double>(users) > 100)
    std::cerr << "wechat-loadtest: warning: " << users << " users at " << peak
              << " logins/s log in more than 100 times a minute each: expect 45011 (rate limited)"
                 " unless that is what the run is for (--allow-errcode 45011)\n";
  try {
    if (!o.mock.empty()) {
      admin = std::make_unique<admin_client>(mock, o.admin_token);
      before = mock_counters::from(admin->call("GET", "/__mock/stats"));
    }
    if (!o.wechat_latency.empty()) {
      if (!admin) throw usage_error("--wechat-latency needs --mock");
      latency_fault = admin->call("POST", "/__mock/faults", nlohmann::json{{"path", "*"}, {"latency", o.wechat_latency}}.dump())
                          .at("id")
                          .get<std::uint64_t>();
    }
    if (need_mint) {
      mint = std::make_unique<minter>(mock, o, vars, with, users, "lt-" + random_hex(6) + "-");
      const std::size_t ahead = plan ? static_cast<std::size_t>(std::ceil(peak * 2)) : 2000;
      mint->prime(ahead);
      mint->start(ahead);
    }
  } catch (const std::exception& e) {
    std::cerr << "wechat-loadtest: setup: " << e.what() << "\n";
    if (latency_fault != 0) {
      try {
        admin->call("DELETE", "/__mock/faults?id=" + std::to_string(latency_fault));
      } catch (const std::exception&) {
      }
    }
    return exit_usage;
  }

  // Each connection is a file descriptor: the soft limit goes up to the hard one.
  {
    const std::size_t want = (plan ? o.max_connections : o.connections) + 64;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(want));
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
      }
      if (rl.rlim_cur < want)
        std::cerr << "wechat-loadtest: warning: " << (plan ? o.max_connections : o.connections)
                  << " connections need more file descriptors than the limit of " << rl.rlim_cur
                  << " (ulimit -n): expect 'transport: socket' failures\n";
    }
  }

  // The run.
  const std::size_t nthreads = std::max<std::size_t>(1, std::min(o.threads, plan ? o.max_connections : o.connections));
  shared_state shared;
  std::vector<std::unique_ptr<worker>> workers;
  for (std::size_t t = 0; t < nthreads; ++t) {
    const std::size_t total = plan ? o.max_connections : o.connections;
    const std::size_t share = total / nthreads + (t < total % nthreads ? 1 : 0);
    workers.push_back(std::make_unique<worker>(o, target, vars, plan, mint.get(), shared, t, nthreads, share));
  }
  bool interrupted = false;
  clock_type::time_point interrupted_at{};
  rusage ru0{};
  ::getrusage(RUSAGE_SELF, &ru0);
  shared.t0 = clock_type::now();
  shared.running = workers.size();
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  // One CSV row per second until every worker has ended (the drain after the last arrival
  // included); arrivals stop at the plan's end (fractions of a second included), users in
  // flight get --timeout, then the hard stop.
  const double run_s = plan ? plan->duration_s() : o.duration_s;
  const auto arrivals_end = shared.t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(run_s));
  auto hard_stop = clock_type::time_point::max();
  std::vector<std::vector<double>> rows;
  std::string mint_error;
  double arrivals_s = run_s;
  auto take_row = [&](double second) {
    histogram lat;
    double sent = 0, ok = 0, failed = 0;
    for (auto& w : workers)
      for (auto& iv : w->interval) {
        std::lock_guard<std::mutex> lock(iv->mutex);
        sent += static_cast<double>(iv->sent);
        ok += static_cast<double>(iv->ok);
        failed += static_cast<double>(iv->failed);
        lat.add(iv->latency);
        iv->sent = iv->ok = iv->failed = 0;
        iv->latency.reset();
      }
    const double target_rps =
        plan && second <= std::ceil(run_s) ? plan->rate_at(std::min(second - 0.5, run_s)) : std::nan("");
    rows.push_back({second, target_rps, sent, ok, failed, ms(lat.percentile(50)), ms(lat.percentile(90)),
                    ms(lat.percentile(99)), ms(lat.percentile(99.9)), ms(lat.max())});
  };
  auto next_row = shared.t0 + std::chrono::seconds(1);
  double row_second = 1;
  for (;;) {
    const auto now = clock_type::now();
    if (now >= next_row) {
      take_row(row_second);
      row_second += 1;
      next_row += std::chrono::seconds(1);
    }
    if (shared.running.load() == 0) break;
    if (!shared.stop_arrivals.load()) {
      if (mint && mint_error.empty()) mint_error = mint->error();
      if (now >= arrivals_end || !mint_error.empty() || interrupted) {
        if (!mint_error.empty() || interrupted) shared.stop_early = true;
        shared.stop_arrivals = true;
        arrivals_s = std::chrono::duration<double>(now - shared.t0).count();
        hard_stop = now + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.timeout_s + 1));
      }
    } else if (now >= hard_stop) {
      shared.stop_now = true;
    }
    if (interrupted) shared.stop_early = true;
    if (interrupted) hard_stop = std::min(hard_stop, interrupted_at + std::chrono::seconds(1));
    // Wait for a signal, at most until the next thing to do (10 ms at most).
    auto until = std::min({next_row, now + std::chrono::milliseconds(10)});
    if (!shared.stop_arrivals.load()) until = std::min(until, arrivals_end);
    const auto wait_ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(until - now).count());
    timespec ts{static_cast<time_t>(wait_ns / 1000000000), static_cast<long>(wait_ns % 1000000000)};
    if (sigtimedwait(&stop_signals, nullptr, &ts) > 0 && !interrupted) {
      interrupted = true;
      interrupted_at = clock_type::now();
      std::cerr << "wechat-loadtest: interrupted: ending the run (the answers in flight get 1 s)\n";
    }
  }
  for (auto& t : threads) t.join();
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);  // a second Ctrl-C ends the program
  // The last, partial second's row (what arrived after the last whole second).
  if (clock_type::now() > next_row - std::chrono::seconds(1) + std::chrono::milliseconds(1)) take_row(row_second);
  const double elapsed = std::chrono::duration<double>(clock_type::now() - shared.t0).count();
  rusage ru1{};
  ::getrusage(RUSAGE_SELF, &ru1);
  if (mint) mint->stop();
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  const double cpu_s = tv(ru1.ru_utime) - tv(ru0.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_stime);

  // Merge.
  thread_totals all;
  all.steps.resize(o.steps.size());
  all.failures.show = o.show;
  for (auto& w : workers) {
    auto& t = w->totals;
    for (std::size_t i = 0; i < o.steps.size(); ++i) all.steps[i].add(t.steps[i]);
    all.send_lag.add(t.send_lag);
    all.arrivals += t.arrivals;
    all.late_starts += t.late_starts;
    all.unsent += t.unsent;
    all.mint_waits += t.mint_waits;
    all.logins_sent += t.logins_sent;
    all.logins_ok += t.logins_ok;
    all.users_done += t.users_done;
    all.users_ok += t.users_ok;
    all.openid_checked += t.openid_checked;
    all.unionid_checked += t.unionid_checked;
    all.connects += t.connects;
    all.connect_errors += t.connect_errors;
    all.protocol_errors += t.protocol_errors;
    all.stopped += t.stopped;
    all.last_answer = std::max(all.last_answer, t.last_answer);
    all.failures.merge(t.failures);
  }
  step_counts whole;
  for (const auto& s : all.steps) whole.add(s);

  // Checks.
  std::vector<mock_check> checks;
  std::uint64_t failed_answers = 0;
  for (const auto& s : all.steps) failed_answers += s.failed;
  checks.push_back({"every answer right (status, the user's checks, openid/unionid = the mock's ids)",
                    failed_answers == 0 && all.unsent == 0 && all.protocol_errors == 0,
                    std::to_string(whole.ok) + " right, " + std::to_string(failed_answers) + " wrong" +
                        (all.unsent ? ", " + std::to_string(all.unsent) + " users never sent" : std::string()) +
                        (all.stopped ? ", " + std::to_string(all.stopped) + " stopped in flight at the end" : std::string()) +
                        (all.protocol_errors ? ", " + std::to_string(all.protocol_errors) + " protocol errors" : std::string()) +
                        (all.openid_checked ? "; openid compared in " + std::to_string(all.openid_checked) + " answers" : std::string()) +
                        (all.unionid_checked ? ", unionid in " + std::to_string(all.unionid_checked) : std::string())});
  // The generator's own books: every arrival ended once (an internal error otherwise).
  if (all.arrivals != all.users_done + all.unsent)
    checks.push_back({"every user accounted for", false,
                      std::to_string(all.arrivals) + " arrived, " + std::to_string(all.users_done) + " ended, " +
                          std::to_string(all.unsent) + " never sent: a wechat-loadtest bug, please report it"});
  if (interrupted) checks.push_back({"the run played its whole plan", false, "interrupted by a signal"});
  if (!mint_error.empty()) checks.push_back({"codes minted as needed", false, mint_error});
  if (admin) {
    try {
      if (latency_fault != 0) {
        try {
          admin->call("DELETE", "/__mock/faults?id=" + std::to_string(latency_fault));
        } catch (const std::exception&) {  // someone cleared the faults meanwhile: the checks still run
          if (admin->last_status != 404) throw;
        }
        latency_fault = 0;
      }
      const auto after = mock_counters::from(admin->call("GET", "/__mock/stats"));
      if (after.exchanges < before.exchanges || after.tokens < before.tokens)
        throw std::runtime_error("its counters went back: the mock was reset (POST /__mock/reset) during the run");
      const std::uint64_t exchanges = after.exchanges - before.exchanges;
      if (all.logins_sent > 0) {
        checks.push_back({"one jscode2session per login", exchanges >= all.logins_ok && exchanges <= all.logins_sent,
                          std::to_string(exchanges) + " exchanges for " + std::to_string(all.logins_sent) + " codes sent (" +
                              std::to_string(all.logins_ok) + " logins answered right)"});
      }
      std::uint64_t c40163 = 0;
      std::map<std::string, std::uint64_t> unexpected;
      for (const auto& [path, codes] : after.errcodes)
        for (const auto& [code, n] : codes) {
          std::uint64_t was = 0;
          if (const auto p = before.errcodes.find(path); p != before.errcodes.end())
            if (const auto c = p->second.find(code); c != p->second.end()) was = c->second;
          if (n <= was) continue;
          if (code == "40163") c40163 += n - was;
          const long value = std::strtol(code.c_str(), nullptr, 10);
          if (std::find(o.allowed_errcodes.begin(), o.allowed_errcodes.end(), value) == o.allowed_errcodes.end())
            unexpected[std::string(path).append(" ").append(code)] += n - was;
        }
      checks.push_back({"no 40163 (a code exchanged twice)", c40163 == 0, std::to_string(c40163) + " seen"});
      const std::uint64_t tokens = after.tokens - before.tokens;
      const long allowed = o.max_token_fetches >= 0 ? o.max_token_fetches : 1 + static_cast<long>(std::ceil(elapsed / 7200.0));
      checks.push_back({"access-token fetches within one per token lifetime", static_cast<long>(tokens) <= allowed,
                        std::to_string(tokens) + " fetches, " + std::to_string(allowed) + " allowed"});
      std::string list;
      for (const auto& [k, n] : unexpected) list += (list.empty() ? "" : ", ") + k + " x" + std::to_string(n);
      checks.push_back({"every WeChat errcode accounted for", unexpected.empty(),
                        unexpected.empty() ? std::string("none unexpected") : list + " (--allow-errcode N if the run meant them)"});
    } catch (const std::exception& e) {
      checks.push_back({"the mock's counters read after the run", false, e.what()});
    }
  }
  struct slo_result {
    slo s;
    double value_ms = 0;
    bool passed = false;
    bool found = true;
  };
  std::vector<slo_result> slos;
  for (const auto& s : o.slos) {
    slo_result r{s};
    const histogram* h = &whole.latency;
    if (!s.step.empty()) {
      h = nullptr;
      for (std::size_t i = 0; i < o.steps.size(); ++i)
        if (o.steps[i].name == s.step || o.steps[i].method + " " + o.steps[i].name == s.step) h = &all.steps[i].latency;
    }
    if (h == nullptr) {
      r.found = false;
    } else {
      r.value_ms = ms(s.percentile >= 100 ? h->max() : h->percentile(s.percentile));
      r.passed = h->count() > 0 && r.value_ms < s.limit_ms;
    }
    slos.push_back(r);
  }
  const bool checks_passed = std::all_of(checks.begin(), checks.end(), [](const mock_check& c) { return c.passed; });
  const bool slos_passed = std::all_of(slos.begin(), slos.end(), [](const slo_result& r) { return r.passed; });

  // Files.
  std::string png_error;
  if (!o.csv.empty()) {
    try {
      write_csv(o.csv, rows);
    } catch (const std::exception& e) {
      png_error = e.what();
    }
  }
  if (!o.png.empty() && png_error.empty()) draw_png(o.csv, o.png, plan.has_value(), png_error);

  // Throughput: right answers of measured users over the measured part, from the warmup's
  // end to the last answer (or the end of arrivals, if later).
  const double last_answer_s =
      all.last_answer == clock_type::time_point{} ? 0 : std::chrono::duration<double>(all.last_answer - shared.t0).count();
  const double measured_s = std::max(1e-9, std::max(arrivals_s, last_answer_s) - o.warmup_s);
  nlohmann::json report = {
      {"mode", plan ? "open" : "closed"},
      {"target", target.base},
      {"rate", o.rate},
      {"connections", plan ? o.max_connections : o.connections},
      {"seconds", elapsed},
      {"warmup_s", o.warmup_s},
      {"arrivals", all.arrivals},
      {"users_done", all.users_done},
      {"users_ok", all.users_ok},
      {"unsent", all.unsent},
      {"stopped", all.stopped},
      {"protocol_errors", all.protocol_errors},
      {"interrupted", interrupted},
      {"late_starts", all.late_starts},
      {"send_lag", latency_json(all.send_lag)},
      {"mint", {{"calls", mint ? mint->calls() : 0}, {"logins", mint ? mint->minted() : 0},
                {"seconds", mint ? mint->seconds() : 0.0}, {"waits", all.mint_waits}}},
      {"generator", {{"cpu_s", cpu_s}, {"cores", cpu_s / elapsed}, {"threads", nthreads}, {"connects", all.connects},
                     {"connect_errors", all.connect_errors}}},
      {"all", {{"sent", whole.sent}, {"ok", whole.ok}, {"failed", whole.failed}, {"ok_per_s", static_cast<double>(whole.measured_ok) / measured_s},
               {"latency", latency_json(whole.latency)}, {"uncorrected", latency_json(whole.uncorrected)}}}};
  report["steps"] = nlohmann::json::array();
  for (std::size_t i = 0; i < o.steps.size(); ++i) {
    const auto& s = all.steps[i];
    report["steps"].push_back({{"step", o.steps[i].method + " " + o.steps[i].name}, {"sent", s.sent}, {"ok", s.ok},
                               {"failed", s.failed}, {"skipped", s.skipped}, {"ok_per_s", static_cast<double>(s.measured_ok) / measured_s},
                               {"latency", latency_json(s.latency)}, {"uncorrected", latency_json(s.uncorrected)}});
  }
  report["failures"] = nlohmann::json::array();
  for (const auto& [kind, n] : all.failures.by_kind)
    report["failures"].push_back({{"kind", kind}, {"count", n}, {"samples", all.failures.samples[kind]}});
  report["checks"] = nlohmann::json::array();
  for (const auto& c : checks) report["checks"].push_back({{"check", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  report["slos"] = nlohmann::json::array();
  for (const auto& r : slos)
    report["slos"].push_back({{"slo", r.s.text}, {"passed", r.passed}, {"value_ms", r.value_ms}, {"found", r.found}});
  report["passed"] = checks_passed && slos_passed;
  if (!png_error.empty()) report["png_error"] = png_error;

  if (!o.quiet) {
    std::ostringstream t;
    char line[512];
    t << "wechat-loadtest: " << (plan ? "open loop, " + o.rate : "closed loop, " + std::to_string(o.connections) + " connections")
      << ", " << target.base << ", " << std::fixed;
    t.precision(1);
    t << elapsed << " s";
    if (o.warmup_s > 0) t << " (first " << o.warmup_s << " s warmup, checked not measured)";
    t << "\n";
    std::snprintf(line, sizeof line, "  users: %llu arrived, %llu done, %llu all steps right, %llu never sent\n",
                  static_cast<unsigned long long>(all.arrivals), static_cast<unsigned long long>(all.users_done),
                  static_cast<unsigned long long>(all.users_ok), static_cast<unsigned long long>(all.unsent));
    t << line;
    if (all.stopped) t << "  " << all.stopped << " users were still in flight at the hard stop (--timeout after the last arrival)\n";
    if (plan) {
      std::snprintf(line, sizeof line, "  send lag behind the plan: p50 %.3f ms, p99 %.3f ms, max %.3f ms; %llu late starts (> 1 ms)\n",
                    ms(all.send_lag.percentile(50)), ms(all.send_lag.percentile(99)), ms(all.send_lag.max()),
                    static_cast<unsigned long long>(all.late_starts));
      t << line;
    }
    t << "  latency in ms, from when each step was due"
      << (plan ? " (a user's first step: its planned arrival; coordinated omission corrected)"
               : " (a user's first step: when a connection took it)")
      << "\n";
    std::snprintf(line, sizeof line, "  %-28s %9s %9s %8s %9s %8s %8s %8s %8s %8s\n", "step", "sent", "ok", "failed", "ok/s",
                  "p50", "p90", "p99", "p99.9", "max");
    t << line;
    auto row = [&](const std::string& name, const step_counts& s) {
      std::snprintf(line, sizeof line, "  %-28s %9llu %9llu %8llu %9.1f %8.2f %8.2f %8.2f %8.2f %8.2f\n", name.substr(0, 28).c_str(),
                    static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.ok),
                    static_cast<unsigned long long>(s.failed), static_cast<double>(s.measured_ok) / measured_s,
                    ms(s.latency.percentile(50)), ms(s.latency.percentile(90)), ms(s.latency.percentile(99)),
                    ms(s.latency.percentile(99.9)), ms(s.latency.max()));
      t << line;
    };
    for (std::size_t i = 0; i < o.steps.size(); ++i) row(o.steps[i].method + " " + o.steps[i].name, all.steps[i]);
    if (o.steps.size() > 1) row("all", whole);
    std::snprintf(line, sizeof line, "  uncorrected (from the write): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                  ms(whole.uncorrected.percentile(50)), ms(whole.uncorrected.percentile(99)), ms(whole.uncorrected.max()));
    t << line;
    if (!all.failures.by_kind.empty()) {
      t << "  failures by kind:\n";
      for (const auto& [kind, n] : all.failures.by_kind) {
        t << "    " << n << "  " << kind << "\n";
        for (const auto& s : all.failures.samples[kind]) t << "        e.g. " << s << "\n";
      }
    }
    t << "  checks:\n";
    for (const auto& c : checks) t << "    " << (c.passed ? "PASS " : "FAIL ") << c.name << ": " << c.detail << "\n";
    for (const auto& r : slos) {
      if (!r.found) t << "    FAIL SLO " << r.s.text << ": no step named '" << r.s.step << "'\n";
      else {
        std::snprintf(line, sizeof line, "    %s SLO %s: %.2f ms\n", r.passed ? "PASS" : "FAIL", r.s.text.c_str(), r.value_ms);
        t << line;
      }
    }
    std::snprintf(line, sizeof line, "  generator: %.2f cores of CPU, %zu threads, %llu connections opened",
                  cpu_s / elapsed, nthreads, static_cast<unsigned long long>(all.connects));
    t << line;
    if (mint) {
      std::snprintf(line, sizeof line, "; %llu logins minted in %llu calls (%.2f s)", static_cast<unsigned long long>(mint->minted()),
                    static_cast<unsigned long long>(mint->calls()), mint->seconds());
      t << line;
      if (all.mint_waits) t << ", " << all.mint_waits << " users waited for a code";
    }
    t << "\n";
    if (plan && all.send_lag.percentile(99) > 1000)
      t << "  warning: the generator sent late (send lag p99 over 1 ms): the figures include its own queueing; use fewer "
           "users per second or more --max-connections\n";
    if (!o.csv.empty() && png_error.empty()) t << "  per second: " << o.csv << (o.png.empty() ? "" : ", " + o.png) << "\n";
    if (!png_error.empty()) t << "  warning: " << png_error << "\n";
    t << (checks_passed ? (slos_passed ? "PASSED\n" : "FAILED: an SLO was missed\n") : "FAILED: a check failed\n");
    // With --json - the JSON owns stdout and the text goes to stderr.
    (o.json == "-" ? std::cerr : std::cout) << t.str() << std::flush;
  }
  if (!o.json.empty()) {
    // Answers are quoted cut on UTF-8 boundaries; a byte that is not UTF-8 still becomes
    // U+FFFD rather than an exception.
    const auto text = report.dump(o.json == "-" ? -1 : 2, ' ', false, nlohmann::json::error_handler_t::replace);
    if (o.json == "-") {
      std::cout << text << "\n";
    } else {
      std::ofstream out(o.json);
      out << text << "\n";
      if (!out) std::cerr << "wechat-loadtest: cannot write " << o.json << "\n";
    }
  }
  if (!checks_passed) return exit_check;
  if (!slos_passed) return exit_slo;
  return exit_ok;
}
