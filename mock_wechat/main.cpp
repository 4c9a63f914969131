// mock_wechat: a faithful offline api.weixin.qq.com.
//
//   mock_wechat [--host 127.0.0.1] [--port 8080]    port 0 = any free port
//               [--scenario FILE.json]              apps, users, follows, authorizations, rules
//               [--unionid-rules bound|conditional] default bound (WeChat since 2021-02-23);
//                                                   conditional = the rules before it
//               [--profiles anonymous|real]         default anonymous (getUserInfo since
//                                                   2021-04-28); real = the old full profile
//               [--latency SPEC] [--seed N]         added to every WeChat endpoint (not the
//                                                   admin API): fixed:MS, uniform:MIN:MAX or
//                                                   lognormal:MEDIAN:P99 (milliseconds); the
//                                                   seed of the latency and fault draws
//               [--tls-cert F --tls-key F]          serve HTTPS
//               [--threads N] [--journal N]         worker threads; journal size (0 = off)
//               [--engine event|httplib]            plain HTTP's engine: the mock's own event
//                                                   loops (default) or cpp-httplib's Server
//                                                   (docs/mock.md, "Engines")
//               [--admin-token T]                   require it on /__mock (needed off loopback)
//               [--admin-token-file F]              the same, read from file F (all of it, one
//                                                   trailing newline dropped);
//                                                   or env MOCK_WECHAT_ADMIN_TOKEN when neither
//                                                   is given. 16 characters at least off
//                                                   loopback (a warning on it).
//               [--max-connections N]               open plain-HTTP connections (10000)
//               [--limit NAME=N]...                 raise or lower a limit of the world:
//                                                   apps, users, sessions, codes, payments,
//                                                   tokens, user_tokens, refresh_tokens,
//                                                   components, component_authorizations, corps
//                                                   (docs/mock.md, "Limits")
//
// Prints exactly one line "mock_wechat listening on http://HOST:PORT" when ready, serves
// until SIGINT or SIGTERM, then exits 0. Bad arguments: a message on stderr, exit 2.
// With --host 0.0.0.0 (or ::) the line names loopback (127.0.0.1, [::1]), a URL that
// connects, and a second line on stderr says that it listens on every interface.
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/detail/net.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

constexpr const char* usage =
    "usage: mock_wechat [--host 127.0.0.1] [--port 8080] [--scenario FILE.json]\n"
    "                   [--unionid-rules bound|conditional] [--profiles anonymous|real]\n"
    "                   [--latency SPEC] [--seed N] [--tls-cert F --tls-key F]\n"
    "                   [--threads N] [--journal N] [--engine event|httplib]\n"
    "                   [--admin-token T | --admin-token-file F]\n"
    "                   (or MOCK_WECHAT_ADMIN_TOKEN in the environment; 16 characters at least off loopback)\n"
    "                   [--max-connections N] [--limit NAME=N]...\n";

int bad(const std::string& what) {
  std::cerr << "mock_wechat: " << what << "\n" << usage;
  return 2;
}

bool parse_size(const std::string& s, long long lo, long long hi, long long& out) {
  char* end = nullptr;
  out = std::strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0' && out >= lo && out <= hi;
}

// "NAME=N" into the world limit NAME.
bool parse_limit(const std::string& v, mock_wechat::world_limits& l) {
  const auto eq = v.find('=');
  long long n = 0;
  if (eq == std::string::npos || !parse_size(v.substr(eq + 1), 1, 1000000000LL, n)) return false;
  const std::string name = v.substr(0, eq);
  std::size_t* field = name == "apps"                       ? &l.apps
                       : name == "users"                    ? &l.users
                       : name == "sessions"                 ? &l.sessions
                       : name == "codes"                    ? &l.codes
                       : name == "payments"                 ? &l.payments
                       : name == "tokens"                   ? &l.tokens
                       : name == "user_tokens"              ? &l.user_tokens
                       : name == "refresh_tokens"           ? &l.refresh_tokens
                       : name == "components"               ? &l.components
                       : name == "component_authorizations" ? &l.component_authorizations
                       : name == "corps"                    ? &l.corps
                                                            : nullptr;
  if (field == nullptr) return false;
  *field = static_cast<std::size_t>(n);
  return true;
}

// 127.0.0.0/8 and ::1 as real address literals, or the name localhost: one reading shared
// with the client's plain-http guard (a prefix test let 127.evil.example through).
bool is_loopback(const std::string& host) {
  return wechat::detail::is_loopback_host(host);
}

// What the command line asks for.
struct command_line {
  mock_wechat::options opt;
  std::string scenario;
  bool rules_given = false;
  bool profiles_given = false;
  bool token_given = false;       // --admin-token
  std::string token_file;         // --admin-token-file
};

// The environment variable the admin token may come from (kept out of argv, which any
// local user sees in ps).
constexpr const char* admin_token_env = "MOCK_WECHAT_ADMIN_TOKEN";
// Shorter admin tokens are refused: they can be guessed.
constexpr std::size_t min_admin_token = 16;

// The admin token from --admin-token, --admin-token-file or the environment, in that order
// (the two options together are refused), checked for control characters; `from` says
// where it came from (empty: nowhere). Never echoes the token. False (and `error` set) when
// it is refused. Its length is checked with the host (admin_token_too_short).
bool resolve_admin_token(command_line& c, std::string& from, std::string& error) {
  std::string& token = c.opt.admin_token;
  if (c.token_given && !c.token_file.empty()) {
    error = "give --admin-token or --admin-token-file, not both";
    return false;
  }
  if (c.token_given) {
    from = "--admin-token";
  } else if (!c.token_file.empty()) {
    // The path is not shown: a token pasted where the path belongs would be.
    from = "--admin-token-file";
    struct stat st {};
    const bool found = ::stat(c.token_file.c_str(), &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
      error = "cannot read the file given to --admin-token-file: " +
              std::string(found ? "not a regular file" : std::strerror(errno));
      return false;
    }
    std::ifstream in(c.token_file, std::ios::binary);
    if (!in) {
      error = std::string("cannot read the file given to --admin-token-file: ") +
              std::strerror(errno);
      return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    token = ss.str();
    if (!token.empty() && token.back() == '\n') token.pop_back();  // as `echo T > F` writes it
    if (!token.empty() && token.back() == '\r') token.pop_back();
    if (token.empty()) {  // asked for a token and got none: never an open admin API
      error = "the file given to --admin-token-file is empty";
      return false;
    }
  } else if (const char* env = std::getenv(admin_token_env); env != nullptr && *env != '\0') {
    from = admin_token_env;
    token = env;
  } else {
    return true;  // no token: the admin API is open (loopback only, checked below)
  }
  for (const char ch : token)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      error = "the admin token from " + from +
              " contains a control character (a second line?): it could never be sent in a "
              "header";
      return false;
    }
  return true;
}

// What is wrong with a token under 16 characters (empty when it is long enough). Off
// loopback, where the token is all that guards the admin API, it is refused; on loopback,
// where the token is optional, it is a warning: the command line DESIGN.md gives takes any
// token, and scripts pass short ones.
std::string admin_token_too_short(const std::string& token, const std::string& from) {
  if (token.size() >= min_admin_token) return {};
  return "the admin token from " + from + " has " + std::to_string(token.size()) +
         " characters: give at least " + std::to_string(min_admin_token) +
         " (e.g. openssl rand -hex 16), a short one can be guessed";
}

// One option and its value into `c`; false for a bad value (`error` says why) or an
// argument that is not an option (`error` empty).
bool apply_option(const std::string& a, const std::string& v, command_line& c, std::string& error) {
  auto& opt = c.opt;
  long long n = 0;
  const auto fail = [&](const char* what) {
    error = what;
    return false;
  };
  if (a == "--host")
    opt.host = v;
  else if (a == "--port") {
    if (!parse_size(v, 0, 65535, n)) return fail("--port must be 0-65535");
    opt.port = static_cast<int>(n);
  } else if (a == "--scenario")
    c.scenario = v;
  else if (a == "--unionid-rules") {
    if (!mock_wechat::parse_unionid_rules(v, opt.rules))
      return fail("--unionid-rules must be bound or conditional");
    c.rules_given = true;
  } else if (a == "--profiles") {
    if (!mock_wechat::parse_profile_era(v, opt.profiles))
      return fail("--profiles must be anonymous or real");
    c.profiles_given = true;
  } else if (a == "--latency") {
    try {
      opt.latency = mock_wechat::parse_latency(v);
    } catch (const mock_wechat::latency_error& e) {
      error = std::string("--latency: ") + e.reason();
      return false;
    }
  } else if (a == "--seed") {
    char* end = nullptr;
    errno = 0;
    const unsigned long long seed = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-')
      return fail("--seed must be an integer from 0 to 18446744073709551615");
    opt.seed = seed;
  } else if (a == "--tls-cert")
    opt.tls_cert = v;
  else if (a == "--tls-key")
    opt.tls_key = v;
  else if (a == "--threads") {
    if (!parse_size(v, 1, 4096, n)) return fail("--threads must be 1-4096");
    opt.threads = static_cast<std::size_t>(n);
  } else if (a == "--engine") {
    if (v == "event")
      opt.engine = mock_wechat::engine_kind::event;
    else if (v == "httplib")
      opt.engine = mock_wechat::engine_kind::httplib;
    else
      return fail("--engine must be event or httplib");
  } else if (a == "--journal") {
    if (!parse_size(v, 0, 10000000, n)) return fail("--journal must be 0-10000000");
    opt.journal = static_cast<std::size_t>(n);
  } else if (a == "--admin-token") {
    opt.admin_token = v;
    c.token_given = true;
  } else if (a == "--admin-token-file") {
    if (v.empty()) return fail("--admin-token-file needs a file name");
    c.token_file = v;
  } else if (a == "--max-connections") {
    if (!parse_size(v, 1, 10000000, n)) return fail("--max-connections must be 1-10000000");
    opt.max_connections = static_cast<std::size_t>(n);
  } else if (a == "--limit") {
    if (!parse_limit(v, opt.limits))
      return fail("--limit takes NAME=N (N 1-1000000000), NAME one of apps, users, sessions, "
                  "codes, payments, tokens, user_tokens, refresh_tokens, components, "
                  "component_authorizations, corps");
  } else {
    error.clear();  // not an option: the caller names it by position (not_an_option)
    return false;
  }
  return true;
}

// An argument that is not an option may be a value put where an option belongs (the
// --admin-token after an option that lost its value): named by its position, never shown.
std::string not_an_option(int position) {
  return "argument " + std::to_string(position) +
         " is not an option (not shown: it may be a secret, such as the value after an "
         "option that is missing its own)";
}

// The whole command line into `c`. Returns -1 to go on, or the exit status (0 after
// --help, 2 after a message on stderr).
int parse_command_line(int argc, char** argv, command_line& c) {
  c.opt.port = 8080;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    }
    std::string error;
    if (i + 1 >= argc) {
      command_line probe;  // is `a` an option at all? (apply_option to a scratch copy)
      const bool known = apply_option(a, "", probe, error) || !error.empty();
      return bad(known ? "option " + a + " needs a value" : not_an_option(i));
    }
    if (!apply_option(a, argv[i + 1], c, error))
      return bad(error.empty() ? not_an_option(i) : error);
    ++i;
  }
  std::string from;
  if (std::string error; !resolve_admin_token(c, from, error)) return bad(error);
  if (c.opt.tls_cert.empty() != c.opt.tls_key.empty())
    return bad("--tls-cert and --tls-key go together");
  const bool loopback = is_loopback(c.opt.host);
  if (!loopback && c.opt.admin_token.empty())
    return bad("serving on " + c.opt.host +
               " exposes the admin API: give --admin-token, --admin-token-file or " +
               admin_token_env);
  if (const std::string short_token = admin_token_too_short(c.opt.admin_token, from);
      !from.empty() && !short_token.empty()) {
    if (!loopback) return bad(short_token);
    std::cerr << "mock_wechat: warning: " << short_token << "\n";  // stdout keeps its one line
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  command_line c;
  if (const int status = parse_command_line(argc, argv, c); status >= 0) return status;
  const mock_wechat::options& opt = c.opt;

  // Block the stop signals before any thread starts, then wait for them synchronously.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A load test may open thousands of connections: allow as many descriptors as permitted.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  try {
    if (!c.scenario.empty()) {  // loaded before the port is bound: no request sees it empty
      c.opt.prepare = [&c, rules = opt.rules, profiles = opt.profiles](mock_wechat::world& w) {
        mock_wechat::load_scenario_file(w, c.scenario);
        if (c.rules_given) w.set_rules(rules);  // the command line wins
        if (c.profiles_given) w.set_profiles(profiles);
      };
    }
    mock_wechat::server server(opt);
    std::cout << "mock_wechat listening on " << server.base_url() << std::endl;
    if (server.listens_on_all_interfaces())  // the line above names loopback only
      std::cerr << "mock_wechat: --host " << (opt.host.empty() ? "\"\"" : opt.host)
                << " listens on every interface: other machines reach it at this machine's "
                   "addresses, port "
                << server.port() << "\n";
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  } catch (const mock_wechat::admin_error& e) {
    std::cerr << "mock_wechat: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mock_wechat: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
