// demo: what `make demo` runs. The main job of a WeChat mini program backend, played
// against the embedded mock of api.weixin.qq.com: a device logs in, the backend exchanges
// the code, decrypts and verifies the user info, checks the session key, and learns who
// the user is; then the commonest failure (the device logged in again and the backend kept
// the old key) as it happens live. Secrets are never printed.
//
// The mock behaves as WeChat does today: the UnionID rules since 2021-02-23 (every user of a
// bound mini program gets it from code2session) and anonymous profiles since 2021-04-28
// (getUserInfo says "微信用户"); mock_wechat::options::rules and ::profiles give the
// older world.
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/wechat.hpp>

#include <iostream>
#include <map>
#include <string>

namespace {

void step(int n, const std::string& text) {
  std::cout << "\n[" << n << "] " << text << '\n';
}
void line(const std::string& text) {
  std::cout << "    " << text << '\n';
}
std::string show(const std::optional<std::string>& v, const char* none) {
  return v ? *v : none;
}

}  // namespace

int main() {
  const std::string appid = "wx4f4bc4dec97d474b", secret = "demo-appsecret-not-real";
  const std::string oa_appid = "wx6a2b3c4d5e6f7a8b";

  step(1, "Start the mock WeChat API in this process; register the apps");
  mock_wechat::server mock;
  auto& wx_world = mock.world();
  wx_world.add_app({appid, secret, mock_wechat::app_type::miniprogram, "acme-open-account"});
  wx_world.add_app(
      {oa_appid, "oa-secret", mock_wechat::app_type::official_account, "acme-open-account"});
  line("mock serving on " + mock.base_url());
  line("mini program " + appid + " and official account " + oa_appid +
       ", both bound to one Open Platform account");
  line("the mock's world is today's WeChat: UnionID rules since 2021-02-23, anonymous");
  line("profiles since 2021-04-28 (--unionid-rules conditional / --profiles real: the older one)");

  // The backend: one transport, one client per app. Against WeChat, base_url is simply
  // left at its default (https://api.weixin.qq.com).
  wechat::httplib_transport_options topt;
  topt.base_url = mock.base_url();
  auto transport = wechat::httplib_transport::create(topt);
  wechat::client backend({appid, secret}, transport);

  step(2, "Device: wx.login() gives a one-time code; the backend exchanges it (code2session)");
  const std::string code = wx_world.login(appid, "zhang-san");
  line("code from the device: " + code);
  std::error_code ec;
  wechat::error_detail detail;
  const wechat::session_info session = backend.code2session(code, ec, &detail);
  if (ec) {
    std::cerr << "code2session failed: " << wechat::error_name(ec) << ": " << ec.message() << '\n';
    return 1;
  }
  line("openid:      " + session.openid);
  line("session_key: kept on the server, never sent to the device (not shown)");
  line("unionid:     " + show(session.unionid, "(none: is the app bound?)") +
       "  <- every user of a bound mini program, no consent needed (since 2021-02-23)");
  [[maybe_unused]] const auto again = backend.code2session(code, ec);  // a front end double submit
  line(std::string("same code again (double submit): ") +
       (ec ? wechat::error_name(ec) : "the remembered result, no 40163"));

  step(3, "Backend: resolve the UnionID with what it has in hand (the session)");
  wechat::resolver_options ro;
  ro.appid = appid;  // ro.rules: today's by default (unionid_rules::legacy for the old ones)
  wechat::unionid_resolver resolver(ro, backend);
  wechat::unionid_evidence evidence;
  evidence.session = session;
  auto resolved = resolver.resolve(evidence);
  line("resolver: unionid " + show(resolved.unionid, "(none)") + " through the " +
       wechat::to_string(resolved.channel) + " channel");
  {
    // The same call for a mini program not bound to an Open Platform account.
    const std::string lone = "wx0123456789abcdef";
    wx_world.add_app({lone, "lone-secret", mock_wechat::app_type::miniprogram, ""});
    wechat::client lone_backend({lone, "lone-secret"}, transport);
    wechat::resolver_options lo;
    lo.appid = lone;
    wechat::unionid_evidence le;
    le.session = lone_backend.code2session(wx_world.login(lone, "zhang-san"));
    const auto r = wechat::unionid_resolver(lo, lone_backend).resolve(le);
    line("an unbound mini program instead: no unionid, " +
         std::string(wechat::to_string(r.diagnosis->reason)));
    line("  why:       " + std::string(r.diagnosis->text()));
    line("  next step: " + std::string(r.diagnosis->next_step()));
  }

  step(4, "Device: wx.getUserInfo(); the backend decrypts and verifies it with the session_key");
  const auto payload = wx_world.get_user_info(appid, "zhang-san");
  wechat::verify_options verify;
  verify.appid = appid;
  verify.max_age = std::chrono::minutes(10);
  const wechat::user_info user = wechat::decrypt_user_info(
      session.session_key,
      {payload.encrypted_data, payload.iv, payload.raw_data, payload.signature}, verify, ec);
  if (ec) {
    std::cerr << "decrypt failed: " << ec.message() << '\n';
    return 1;
  }
  line("verified: padding, JSON, watermark appid, watermark age, rawData signature");
  line("nickname: " + user.nickname + " (anonymous since 2021-04-28), openId " + user.openid);
  line("unionId:  " + show(user.unionid, "(none)"));
  const auto profile_payload = wx_world.get_user_profile(appid, "zhang-san");
  const wechat::user_profile profile = wechat::decrypt_user_profile(
      session.session_key,
      {profile_payload.encrypted_data, profile_payload.iv, profile_payload.raw_data,
       profile_payload.signature},
      verify);
  line("wx.getUserProfile data: " + profile.nickname +
       ", no openId, no unionId inside (decrypt_user_profile)");
  line("real names and avatars now come from what the user types (nickname input, chooseAvatar)");

  step(5, "Backend: is the session_key still the current one? (checkSessionKey)");
  backend.check_session_key(session.openid, session.session_key, ec);
  line(ec ? "no: " + wechat::error_name(ec) : "yes");

  step(6, "The commonest failure: the device logged in again, the backend kept the old key");
  const std::string code2 = wx_world.login(appid, "zhang-san");
  backend.check_session_key(session.openid, session.session_key, ec, &detail);
  line("checkSessionKey with the old key -> " + wechat::error_name(ec) + " (errcode " +
       std::to_string(detail.errcode) + ", rid " + detail.rid + ")");
  const auto payload2 = wx_world.get_user_info(appid, "zhang-san");
  wechat::decrypt_user_info(session.session_key, {payload2.encrypted_data, payload2.iv}, verify,
                            ec);
  line("decrypting the new payload with the old key -> " + wechat::error_name(ec) + ":");
  line("  " + ec.message());
  const auto session2 = backend.code2session(code2);
  const auto user2 = wechat::decrypt_user_info(session2.session_key,
                                               {payload2.encrypted_data, payload2.iv}, verify);
  line("exchanging the new code gives the new key; the payload now decrypts: " + user2.nickname);

  step(7, "The same person signs in to the official account's web page (OAuth, snsapi_userinfo)");
  wechat::client oa_backend({oa_appid, "oa-secret"}, transport);
  const auto oauth =
      oa_backend.oauth_exchange(wx_world.oauth_code(oa_appid, "zhang-san", "snsapi_userinfo"));
  line("openid in the official account: " + oauth.openid + " (another openid: one per app)");
  line("unionid: " + show(oauth.unionid, "(none)"));
  const auto snapshot = oa_backend.oauth_exchange(
      wx_world.oauth_code(oa_appid, "zhang-san", "snsapi_userinfo", /*snapshot=*/true));
  line(std::string("from the page's snapshot view (since 2022-07-12): is_snapshot_user ") +
       (snapshot.is_snapshot_user ? "true" : "false") + ", a virtual openid, unionid " +
       show(snapshot.unionid, "(none)") + ": not a user to link");

  step(8, "The identity directory links the openids through the unionid");
  wechat::identity_directory directory;
  if (resolved.unionid) directory.link(appid, session.openid, *resolved.unionid);
  if (oauth.unionid) directory.link(oa_appid, oauth.openid, *oauth.unionid);
  for (const auto& who : directory.openids_of(resolved.unionid.value_or("")))
    line("unionid " + resolved.unionid.value_or("") + " -> " + who.appid + " / " + who.openid);
  // Every request the backends made, by endpoint (the mock's journal): they add up.
  std::map<std::string, int> by_path;
  for (const auto& entry : mock.journal().to_json()) ++by_path[entry["path"].get<std::string>()];
  std::string counts;
  for (const auto& [path, n] : by_path)
    counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + path;
  line("requests the backends made to WeChat: " + std::to_string(mock.journal().count()) + " (" +
       counts + ")");
  std::cout << "\ndemo finished\n";
  return 0;
}
