// The fleet on a real redis-server (started by scripts/redis-test-server.sh as a ctest
// fixture): the token store and its lock, N processes refreshing exactly once per cycle,
// a lock holder killed mid-refresh, Redis going away, and the directory shared by
// processes.
#include "mock_support.hpp"

#include <wechat/component.hpp>
#include <wechat/store/redis.hpp>
#include <wechat/token.hpp>
#include <wechat/transport/httplib.hpp>
#include <wechat/unionid.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace mocktest;

namespace {

int redis_port() {
  std::ifstream in(REDIS_PORT_FILE);
  int port = 0;
  in >> port;
  REQUIRE(port > 0);
  return port;
}

std::shared_ptr<wechat::redis_connection> connect(std::string prefix) {
  wechat::redis_options o;
  o.port = redis_port();
  o.prefix = std::move(prefix);
  return std::make_shared<wechat::redis_connection>(o);
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  CHECK(pclose(p) == 0);
  return out;
}

}  // namespace

TEST_CASE("redis token store: save, load, erase only the same token, lock only for its owner",
          "[redis]") {
  auto redis = connect("wechat-test-" + std::to_string(::getpid()) + ":");
  wechat::redis_token_store store(redis);
  std::error_code ec;
  CHECK_FALSE(store.load("access_token:wx1:stable", ec));
  CHECK_FALSE(ec);
  const auto expires = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() +
                       60000;
  store.save("access_token:wx1:stable", {"TOKEN-1", expires}, ec);
  REQUIRE_FALSE(ec);
  auto t = store.load("access_token:wx1:stable", ec);
  REQUIRE(t);
  CHECK(t->value == "TOKEN-1");
  CHECK(t->expires_at_ms == expires);
  store.erase_if("access_token:wx1:stable", "TOKEN-0", ec);  // not the current one: kept
  CHECK(store.load("access_token:wx1:stable", ec));
  store.erase_if("access_token:wx1:stable", "TOKEN-1", ec);
  CHECK_FALSE(store.load("access_token:wx1:stable", ec));

  CHECK(store.acquire("lock", "a", std::chrono::milliseconds(5000), ec));
  CHECK_FALSE(store.acquire("lock", "b", std::chrono::milliseconds(5000), ec));
  store.release("lock", "b", ec);  // not b's: still held
  CHECK_FALSE(store.acquire("lock", "c", std::chrono::milliseconds(5000), ec));
  store.release("lock", "a", ec);
  CHECK(store.acquire("lock", "c", std::chrono::milliseconds(200), ec));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(store.acquire("lock", "d", std::chrono::milliseconds(5000), ec));  // c's lock expired
}

TEST_CASE("redis token store: a value it did not write reads as corrupt, never as a token",
          "[redis]") {
  auto redis = connect("wechat-test-corrupt-" + std::to_string(::getpid()) + ":");
  wechat::redis_token_store store(redis);
  const std::string key = "access_token:wx1:stable";
  // (what save writes: "<expires_at_ms> <token>", digits only before the space)
  for (const std::string bad :
       {"TOKEN", " TOKEN", "12abc TOKEN", "abc TOKEN", "+12 TOKEN", "-12 TOKEN", "0x10 TOKEN",
        "99999999999999999999 TOKEN", "1.5 TOKEN", "12 "}) {
    INFO("stored: \"" << bad << "\"");
    std::error_code ec;
    redis->command({"SET", redis->key(key), bad}, ec);
    REQUIRE_FALSE(ec);
    const auto t = store.load(key, ec);
    CHECK_FALSE(t);
    CHECK(ec == wechat::store_errc::corrupt);
  }
  std::error_code ec;
  redis->command({"SET", redis->key(key), "0 REFRESH"}, ec);  // kept for ever: readable
  const auto t = store.load(key, ec);
  REQUIRE(t);
  CHECK_FALSE(ec);
  CHECK(t->expires_at_ms == 0);
  CHECK(t->value == "REFRESH");
  redis->command({"DEL", redis->key(key)}, ec);
}

namespace {

// What the workers of one fleet run saw: fetches made, distinct tokens used.
struct fleet_outcome {
  std::uint64_t fetches = 0;
  std::set<std::string> tokens;
};

// Runs the workers' commands at once and adds up their JSON lines.
fleet_outcome run_fleet(const std::vector<std::string>& cmds) {
  std::vector<FILE*> workers;
  for (const auto& cmd : cmds) {
    workers.push_back(popen(cmd.c_str(), "r"));
    REQUIRE(workers.back());
  }
  fleet_outcome o;
  for (FILE* w : workers) {
    std::string out;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, w)) > 0)
      out.append(buf, n);
    INFO(out);
    CHECK(pclose(w) == 0);
    const auto j = nlohmann::json::parse(out);
    if (j.contains("gets")) {  // an event-loop worker: it did read tokens
      CHECK(j["gets"].get<long>() > 0);
      CHECK_FALSE(j["tokens"].empty());
    }
    o.fetches += j["fetches"].get<std::uint64_t>();
    for (const auto& t : j["tokens"])
      o.tokens.insert(t.get<std::string>());
    CHECK(j["failures"] == 0);
  }
  return o;
}

// Exactly one upstream fetch per refresh cycle (a second) across the fleet, each used.
void check_once_per_cycle(const fleet_outcome& o, std::uint64_t upstream) {
  INFO("fetches " << o.fetches << ", distinct tokens " << o.tokens.size() << ", upstream "
                  << upstream);
  CHECK(upstream == o.fetches);        // every fetch a process made reached WeChat once...
  CHECK(o.tokens.size() == upstream);  // ...and every token minted was used: none wasted
  CHECK(upstream >= 3);                // a cycle a second for 3.5 s
  CHECK(upstream <= 5);                // and not one more than a cycle needs
}

}  // namespace

TEST_CASE("4 processes x 16 threads refresh the token exactly once per cycle", "[redis][fleet]") {
  fixture f;
  f.add_standard_apps();
  run("redis-cli -p " + std::to_string(redis_port()) + " del wechat:access_token:" + mp +
      ":classic > /dev/null");
  std::vector<std::string> cmds;
  for (int i = 0; i < 4; ++i)
    cmds.push_back(std::string(FLEET_WORKER) + " tokens " + f.mock.base_url() + " " +
                   std::to_string(redis_port()) + " 3.5 16 " + mp + " " + mp_secret);
  const auto o = run_fleet(cmds);
  check_once_per_cycle(o, f.mock.journal().count("/cgi-bin/token"));
}

#ifdef FLEET_ASYNC_WORKER
TEST_CASE("2 sync and 2 event-loop processes share one refresh per cycle",
          "[redis][fleet][async]") {
  // The async token provider keeps the sync one's fleet rules: the same store key and
  // lock, a peer's token taken from the store, the lock's holder awaited by polling.
  fixture f;
  f.add_standard_apps();
  run("redis-cli -p " + std::to_string(redis_port()) + " del wechat:access_token:" + mp +
      ":classic > /dev/null");
  std::vector<std::string> cmds;
  for (int i = 0; i < 2; ++i) {
    cmds.push_back(std::string(FLEET_WORKER) + " tokens " + f.mock.base_url() + " " +
                   std::to_string(redis_port()) + " 3.5 16 " + mp + " " + mp_secret);
    cmds.push_back(std::string(FLEET_ASYNC_WORKER) + " tokens " + f.mock.base_url() + " " +
                   std::to_string(redis_port()) + " 3.5 64 " + mp + " " + mp_secret);
  }
  const auto o = run_fleet(cmds);
  check_once_per_cycle(o, f.mock.journal().count("/cgi-bin/token"));
}
#endif

TEST_CASE("a lock holder killed mid-refresh does not deadlock the others", "[redis][fleet]") {
  fixture f;
  f.add_standard_apps();
  const int port = redis_port();
  run("redis-cli -p " + std::to_string(port) + " del wechat:access_token:" + mp +
      ":stable > /dev/null");
  const std::string lock_key = "access_token:" + mp + ":stable:lock";
  FILE* holder = popen((std::string(FLEET_WORKER) + " hold_lock " + std::to_string(port) + " " +
                        lock_key + " 1500 & echo $!")
                           .c_str(),
                       "r");
  REQUIRE(holder);
  char pidbuf[32] = {0};
  REQUIRE(fgets(pidbuf, sizeof pidbuf, holder));
  const pid_t pid = std::atoi(pidbuf);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // it holds the lock now
  ::kill(pid, SIGKILL);
  pclose(holder);
  wechat::httplib_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::token_options o;
  o.appid = mp;
  o.secret = mp_secret;
  o.lock_ttl = std::chrono::milliseconds(1500);
  wechat::token_provider p(o, wechat::httplib_transport::create(t),
                           std::make_shared<wechat::redis_token_store>(connect("wechat:")));
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const std::string token = p.get(ec);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK_FALSE(ec);
  CHECK(token.size() >= 100);
  CHECK(took <
        std::chrono::seconds(4));  // waited for the dead holder's lock to expire, not forever
  CHECK(p.fetches() == 1);
}

TEST_CASE("Redis away: the directory says unavailable, tokens and memory stores keep working",
          "[redis]") {
  fixture f;
  f.add_standard_apps();
  wechat::redis_options dead;
  dead.port = 1;  // nothing listens there
  dead.timeout = std::chrono::milliseconds(200);
  auto gone = std::make_shared<wechat::redis_connection>(dead);
  wechat::identity_directory dir(std::make_shared<wechat::redis_identity_store>(gone));
  std::error_code ec;
  dir.link(mp, "o1", "u1", ec);
  CHECK(ec == wechat::store_errc::unavailable);
  CHECK(ec.message().find("cannot be reached") != std::string::npos);
  CHECK_THROWS_AS(dir.openids_of("u1"), wechat::error);
  wechat::httplib_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::client wx({mp, mp_secret}, wechat::httplib_transport::create(t),
                    std::make_shared<wechat::redis_token_store>(gone));
  CHECK(wx.tokens().get().size() >= 100);  // carries on alone
  wechat::identity_directory memory;
  memory.link(mp, "o1", "u1");
  CHECK(memory.openids_of("u1").size() == 1);
}

TEST_CASE("directory operations from several processes agree", "[redis][directory]") {
  const int port = redis_port();
  run("redis-cli -p " + std::to_string(port) +
      " --scan --pattern 'wechat:identity:*' | xargs -r redis-cli -p " + std::to_string(port) +
      " del > /dev/null");
  std::vector<FILE*> workers;
  for (int i = 0; i < 4; ++i)
    workers.push_back(popen((std::string(FLEET_WORKER) + " link " + std::to_string(port) + " " +
                             std::to_string(i) + " 150")
                                .c_str(),
                            "r"));
  for (FILE* w : workers) {
    char buf[256];
    std::string out;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, w)) > 0)
      out.append(buf, n);  // read to EOF, then reap
    CHECK(out == "ok\n");
    CHECK(pclose(w) == 0);
  }
  wechat::identity_directory dir(
      std::make_shared<wechat::redis_identity_store>(connect("wechat:")));
  for (int k = 0; k < 150; ++k) {
    const std::string user = "user" + std::to_string(k);
    const auto ids = dir.openids_of("u-" + user);
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == wechat::app_openid{"wxA", "o-wxA-" + user});
    CHECK(ids[1] == wechat::app_openid{"wxB", "o-wxB-" + user});
    CHECK(dir.unionid_of("wxA", "o-wxA-" + user) == std::optional<std::string>("u-" + user));
  }
  std::error_code ec;
  dir.link("wxA", "o-wxA-user0", "u-someone-else", ec);
  CHECK(ec == wechat::store_errc::conflict);
  CHECK(dir.unionid_of("wxA", "o-wxA-user0") == std::optional<std::string>("u-user0"));
}

namespace {
// Answers the component token and authorizer token requests; records the bodies.
class component_fake final : public wechat::transport {
public:
  std::vector<std::string> bodies;
  wechat::http_response send(const wechat::http_request& req, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    bodies.push_back(req.body);
    if (req.target == "/cgi-bin/component/api_component_token")
      return {200, R"({"component_access_token":"61_fleet","expires_in":7200})",
              "application/json"};
    return {
        200,
        R"({"authorizer_access_token":"auth_fleet","expires_in":7200,"authorizer_refresh_token":"refreshtoken@@@fleet"})",
        "application/json"};
  }

private:
  std::mutex mutex_;
};
}  // namespace

TEST_CASE("redis: a component's ticket lives its 12 hours, refresh tokens never expire, and a "
          "restart finds both",
          "[redis][component]") {
  const std::string prefix = "wechat-test-component-" + std::to_string(::getpid()) + ":";
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  auto clock = std::make_shared<wechat::manual_clock>(now);
  wechat::component_options o;
  o.component_appid = "wx1111111111111111";
  o.component_secret = "componentsecret";
  o.token = "pushtoken123";
  o.encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
  const auto push = [&](wechat::component_client& c, const std::string& ticket) {
    const wechat::msg_crypt crypt(o.token, o.encoding_aes_key, c.component_appid());
    const auto m =
        crypt.encrypt("<xml><AppId><![CDATA[" + c.component_appid() + "]]></AppId><CreateTime>" +
                          std::to_string(now - 60) +
                          "</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType>"
                          "<ComponentVerifyTicket><![CDATA[" +
                          ticket + "]]></ComponentVerifyTicket></xml>",
                      std::to_string(now), "42");
    std::map<std::string, std::string> q{{"timestamp", m.timestamp},
                                         {"nonce", m.nonce},
                                         {"encrypt_type", "aes"},
                                         {"msg_signature", m.msg_signature}};
    REQUIRE(c.handle_push(q, m.push_xml()) == "success");
  };
  auto t = std::make_shared<component_fake>();
  {
    auto redis = connect(prefix);
    wechat::component_client before(o, t, std::make_shared<wechat::redis_token_store>(redis),
                                    clock);
    push(before, "ticket@@@one");
    before.set_authorizer_refresh_token("wx3333333333333333", "refreshtoken@@@fleet");
    auto other_options = o;
    other_options.component_appid = "wx2222222222222222";
    wechat::component_client other(other_options, t,
                                   std::make_shared<wechat::redis_token_store>(redis), clock);
    push(other, "ticket@@@two");  // another platform on the same Redis: its own key
    std::error_code ec;
    const auto ttl =
        redis->command({"PTTL", redis->key("component_verify_ticket:" + o.component_appid)}, ec);
    REQUIRE_FALSE(ec);
    CHECK(ttl.integer > (12 * 3600 - 120) * 1000LL);  // the ticket's 12 hours, not less
    const auto rttl =
        redis->command({"PTTL", redis->key("authorizer_refresh_token:" + o.component_appid +
                                           ":wx3333333333333333")},
                       ec);
    CHECK(rttl.integer == -1);  // no expiry
  }
  auto redis = connect(prefix);  // a restarted process
  wechat::component_client after(o, t, std::make_shared<wechat::redis_token_store>(redis), clock);
  REQUIRE(after.ticket());
  CHECK(after.ticket()->value == "ticket@@@one");
  CHECK(after.ticket()->create_time == now - 60);
  CHECK(after.authorizer_access_token("wx3333333333333333") == "auth_fleet");
  REQUIRE(t->bodies.size() == 2);
  CHECK(nlohmann::json::parse(t->bodies[0])["component_verify_ticket"] == "ticket@@@one");
  CHECK(nlohmann::json::parse(t->bodies[1])["authorizer_refresh_token"] == "refreshtoken@@@fleet");
  std::error_code ec;
  redis->command(
      {"EVAL",
       "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0", "0",
       prefix + "*"},
      ec);
}
