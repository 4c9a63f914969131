// wechat/component.hpp - a third-party platform (component) of the Open Platform: the
// component_verify_ticket push, the component access token, authorizer tokens and
// code2session on behalf of the mini programs that authorized the platform.
//
//   wechat::component_client platform({"wxcomponentappid", "secret", "token", "43-char key"},
//                                     transport, redis_store);          // a fleet: Redis
//   // the push URL's handler (query parameters and body as received):
//   std::error_code ec;
//   std::string answer = platform.handle_push(query, body, ec);        // "success" or ec
//   // login on behalf of an authorizer mini program:
//   wechat::session_info s = platform.code2session("wxauthorizerappid", code);
//
// What it does for you:
// - the push: the signature is verified and the message decrypted with the
//   component_appid as the appid (so the crypto trailer is checked), the inner AppId must be
//   the component_appid too, and the ticket is stored under the component_appid, never over
//   a newer one: two platforms sharing an endpoint or a store never overwrite each other's
//   tickets (zoujingli/WeChatDeveloper#29, EasyWeChat PR #2269, notes on issue 17 4.5);
// - the ticket is kept its whole 12 hours (a shorter TTL gave wechatpy users 61006, PR
//   #294), in the store: a restarted server or another server of the fleet finds it;
// - no ticket: component_errc::no_ticket before any request (a null ticket is answered
//   61006: WxJava #2967, 2023);
// - the component token and the authorizer tokens are token_provider's: cached, refreshed
//   ahead, fetched in a single flight under the store's lock (each fetch supersedes the
//   previous component token: official answer, community doc 000eaa8c848d48ff3b4de9c5c51c00),
//   invalidated and fetched again once when WeChat rejects them (40001, 40014, 42001);
// - authorizer refresh tokens are kept in the store, keyed by component and authorizer,
//   with no expiry (a lost refresh token needs the app to authorize again).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "wechat/client.hpp"
#include "wechat/clock.hpp"
#include "wechat/crypto.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/detail/code_memory.hpp"
#include "wechat/detail/token_call.hpp"
#include "wechat/error.hpp"
#include "wechat/msg_crypt.hpp"
#include "wechat/store.hpp"
#include "wechat/token.hpp"
#include "wechat/transport.hpp"

namespace wechat {

// ------------------------------------------------------------------ the client --

/// A ticket lives 12 hours from its CreateTime (WeChat's doc "component_verify_ticket",
/// read 2026:
/// https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/component_verify_ticket.html;
/// "may change": community doc 00028ce182812071b3796302656400). It is stored that long.
inline constexpr std::int64_t component_ticket_lifetime_s = std::int64_t{12} * 3600;

/// A third-party platform's settings (the Open Platform console's).
struct component_options {
  std::string component_appid;
  std::string component_secret;
  std::string token;             ///< the push's message token
  std::string encoding_aes_key;  ///< the push's 43-character EncodingAESKey
  /// Fetch a new token (component or authorizer) this long before the cached one expires.
  std::chrono::seconds refresh_ahead{300};
  int max_attempts = 3;                      ///< attempts of a token fetch (-1, transport)
  std::chrono::milliseconds backoff{100};    ///< first backoff; doubled, with jitter
  std::chrono::milliseconds lock_ttl{5000};  ///< the store's refresh lock (a fleet)
  /// code2session's double-submit window, as client_options::code_memory.
  std::chrono::seconds code_memory{10};
  std::size_t code_memory_max = 100000;  ///< at most this many remembered codes
};

/// A component_verify_ticket as stored.
struct component_ticket {
  std::string value;
  std::int64_t create_time = 0;  ///< the push's CreateTime, Unix seconds
};

/// What a push carried, for the caller's logs and handlers.
struct component_push {
  std::string info_type;         ///< component_verify_ticket, authorized, unauthorized, ...
  std::string authorizer_appid;  ///< authorized, updateauthorized, unauthorized
  std::int64_t create_time = 0;  ///< Unix seconds
  /// component_verify_ticket: the ticket was stored (false: the store holds a newer one).
  bool ticket_stored = false;
};

/// One third-party platform (component_appid): its push, its token, its authorizers'
/// tokens and code2session for them. Thread safe; share one per platform per process. The
/// store holds the ticket, the tokens and the refresh tokens: memory by default (lost on
/// restart), Redis for a fleet or to survive restarts. Keys, all under the component_appid:
/// component_verify_ticket:<component_appid>, component_access_token:<component_appid>,
/// authorizer_refresh_token:<component_appid>:<authorizer_appid>,
/// authorizer_access_token:<component_appid>:<authorizer_appid>.
class component_client {
public:
  /// `t` speaks to api.weixin.qq.com; `store` holds what outlives a call; `clk` is the
  /// time source. A malformed token or EncodingAESKey is reported by handle_push.
  component_client(component_options o, std::shared_ptr<transport> t,
                   std::shared_ptr<token_store> store = nullptr,
                   std::shared_ptr<const wechat::time_source> clk = nullptr)
      : opt_(std::move(o)), transport_(std::move(t)),
        store_(store ? std::move(store) : std::make_shared<memory_token_store>()),
        clock_(clk ? std::move(clk) : default_clock()), crypt_(make_crypt(opt_)),
        component_tokens_(
            "component_access_token:" + opt_.component_appid,
            [this] { return fetch_component_token(); }, provider_options(), store_, clock_),
        codes_(opt_.code_memory, opt_.code_memory_max, clock_) {}

  component_client(const component_client&) = delete;
  component_client& operator=(const component_client&) = delete;

  const std::string& component_appid() const noexcept { return opt_.component_appid; }
  /// The provider of the component access token (fetches() counts requests).
  token_provider& component_tokens() noexcept { return component_tokens_; }

  // ------------------------------------------------------------------ the push --

  /// Handles a push to the authorization event URL: `query` holds the URL's parameters
  /// (timestamp, nonce, msg_signature, encrypt_type=aes; signature is not needed), `body`
  /// the POST body. Verifies and decrypts it (the crypto trailer must be this
  /// component_appid), checks that its AppId is this component_appid, then by InfoType:
  /// component_verify_ticket is stored unless the store holds a newer one (by CreateTime);
  /// unauthorized forgets that authorizer's tokens and refresh token; authorized,
  /// updateauthorized and any other InfoType are only reported (through `what`). Returns
  /// "success", the text to answer WeChat with (exactly that, within 5 s, or WeChat retries
  /// and alarms: notes on issue 17, 2.1). On error returns "" and stores nothing. Errors:
  /// component_errc (push_not_encrypted, push_query_incomplete, push_field_invalid),
  /// msg_crypt_errc (signature_mismatch, appid_mismatch: another platform's push...),
  /// store_errc.
  std::string handle_push(const std::map<std::string, std::string>& query, std::string_view body,
                          std::error_code& ec, error_detail* d = nullptr,
                          component_push* what = nullptr) {
    ec.clear();
    component_push push;
    handle_push_to(query, body, push, ec, d);
    if (what != nullptr) *what = push;
    return ec ? std::string() : std::string("success");
  }
  /// Throwing overload of handle_push.
  std::string handle_push(const std::map<std::string, std::string>& query, std::string_view body) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return handle_push(query, body, ec, d); },
        "handle_push");
  }

  /// The stored ticket of this component_appid, if any. Errors: store_errc.
  std::optional<component_ticket> ticket(std::error_code& ec) {
    const auto t = store_->load(ticket_key(), ec);
    if (ec || !t || t->value.empty()) return std::nullopt;
    return component_ticket{t->value, ticket_create_time(*t)};
  }
  /// Throwing overload of ticket.
  std::optional<component_ticket> ticket() {
    std::error_code ec;
    auto t = ticket(ec);
    throw_if_error(ec, "component ticket");
    return t;
  }

  // ------------------------------------------------------------------ tokens --

  /// The component access token: POST /cgi-bin/component/api_component_token with the
  /// stored ticket. Errors: component_errc::no_ticket (no request is made);
  /// api_errc::component_ticket_expired / component_ticket_invalid (61005 / 61006: then
  /// error_detail::cause says how old the stored ticket is), invalid_component,
  /// invalid_appsecret...; transport_errc, protocol_errc, store_errc.
  std::string component_access_token(std::error_code& ec, error_detail* d = nullptr) {
    return component_tokens_.get(ec, d);
  }
  /// Throwing overload of component_access_token.
  std::string component_access_token() {
    std::error_code ec;
    error_detail d;
    auto t = component_access_token(ec, &d);
    raise(ec, d, "component_access_token");
    return t;
  }

  /// Records the refresh token of `authorizer_appid` (from the authorization:
  /// api_query_auth's authorizer_refresh_token, or api_get_authorizer_list), in the store
  /// with no expiry. An empty one: component_errc::no_refresh_token. Errors: store_errc.
  void set_authorizer_refresh_token(std::string_view authorizer_appid,
                                    std::string_view refresh_token, std::error_code& ec) {
    ec.clear();
    if (refresh_token.empty()) {
      ec = component_errc::no_refresh_token;
      return;
    }
    const auto previous = store_->load(refresh_key(authorizer_appid), ec);
    if (ec) return;
    store_->save(refresh_key(authorizer_appid), stored_token{std::string(refresh_token), 0}, ec);
    if (ec || (previous && previous->value == refresh_token)) return;
    // A new authorization: the access token fetched with the previous refresh token is
    // dropped, so the next authorizer_access_token() fetches with (and so checks) this one.
    const auto cached = store_->load(authorizer_key(authorizer_appid), ec);
    if (!ec && cached) authorizer(authorizer_appid)->invalidate(cached->value);
  }
  /// Throwing overload of set_authorizer_refresh_token.
  void set_authorizer_refresh_token(std::string_view authorizer_appid,
                                    std::string_view refresh_token) {
    std::error_code ec;
    set_authorizer_refresh_token(authorizer_appid, refresh_token, ec);
    throw_if_error(ec, "set_authorizer_refresh_token");
  }

  /// The access token of an authorizer app (usable for its cgi-bin and wxa calls): POST
  /// /cgi-bin/component/api_authorizer_token with its stored refresh token. Errors:
  /// component_errc::no_refresh_token (no request is made), no_ticket;
  /// api_errc::component_not_authorized (61003), authorizer_refresh_token_invalid (61023:
  /// the app authorized again, or another app's token), invalid_component_credential...;
  /// transport_errc, protocol_errc, store_errc.
  std::string authorizer_access_token(std::string_view authorizer_appid, std::error_code& ec,
                                      error_detail* d = nullptr) {
    return authorizer(authorizer_appid)->get(ec, d);
  }
  /// Throwing overload of authorizer_access_token.
  std::string authorizer_access_token(std::string_view authorizer_appid) {
    std::error_code ec;
    error_detail d;
    auto t = authorizer_access_token(authorizer_appid, ec, &d);
    raise(ec, d, "authorizer_access_token");
    return t;
  }

  /// The provider of an authorizer's access token (fetches(), invalidate()). It calls back
  /// into this client: use it while the client lives.
  std::shared_ptr<token_provider> authorizer_tokens(std::string_view authorizer_appid) {
    return authorizer(authorizer_appid);
  }

  // ------------------------------------------------------------------ login --

  /// Exchanges a wx.login code of the authorizer mini program `authorizer_appid`: GET
  /// /sns/component/jscode2session with the component token. Concurrent calls with the
  /// same code share one request, and the result is remembered for code_memory (as
  /// client::code2session). Errors: api_errc (invalid_code, code_been_used,
  /// component_not_authorized, invalid_component_credential...), the component token's
  /// errors, transport_errc, protocol_errc.
  session_info code2session(std::string_view authorizer_appid, std::string_view code,
                            std::error_code& ec, error_detail* d = nullptr) {
    std::string key(authorizer_appid);
    key.append(1, '\n').append(code);
    return codes_.run(key, ec, d, [&](detail::shared_result<session_info>& r) {
      const auto j = detail::with_token(
          component_tokens_, r.ec, &r.detail,
          [&](const std::string& token, std::error_code& cec, error_detail* cd) {
            http_request req;
            req.target =
                "/sns/component/jscode2session?appid=" + url_encode(authorizer_appid) +
                "&js_code=" + url_encode(code) + "&grant_type=authorization_code&component_appid=" +
                url_encode(opt_.component_appid) + "&component_access_token=" + url_encode(token);
            // Not safe to repeat: a code is single use. One attempt.
            return detail::exchange(*transport_, req, 1, opt_.backoff, cec, cd);
          });
      if (!r.ec) detail::read_session(j, r.value, r.ec, &r.detail);
    });
  }
  /// Throwing overload of code2session.
  session_info code2session(std::string_view authorizer_appid, std::string_view code) {
    std::error_code ec;
    error_detail d;
    auto s = code2session(authorizer_appid, code, ec, &d);
    raise(ec, d, "component code2session");
    return s;
  }

private:
  static msg_crypt make_crypt(const component_options& o) {
    std::error_code ignored;  // kept in config_error(), reported by handle_push
    return msg_crypt(o.token, o.encoding_aes_key, o.component_appid, ignored);
  }

  token_options provider_options() const {
    token_options t;
    t.appid = opt_.component_appid;
    t.refresh_ahead = opt_.refresh_ahead;
    t.max_attempts = opt_.max_attempts;
    t.backoff = opt_.backoff;
    t.lock_ttl = opt_.lock_ttl;
    return t;
  }

  std::string ticket_key() const { return "component_verify_ticket:" + opt_.component_appid; }
  std::string refresh_key(std::string_view authorizer_appid) const {
    return "authorizer_refresh_token:" + opt_.component_appid + ":" + std::string(authorizer_appid);
  }
  std::string authorizer_key(std::string_view authorizer_appid) const {
    return "authorizer_access_token:" + opt_.component_appid + ":" + std::string(authorizer_appid);
  }
  // A ticket is stored with expires_at_ms = (CreateTime + 12 h) * 1000.
  static std::int64_t ticket_create_time(const stored_token& t) {
    return t.expires_at_ms / 1000 - component_ticket_lifetime_s;
  }

  // The throwing overloads: an api error of the component token also says the ticket's
  // age (error_detail::cause), which api_error's text would not show.
  static void raise(const std::error_code& ec, const error_detail& d, const char* what) {
    if (ec && ec.category() == api_category() && !d.cause.empty()) {
      const std::string context = std::string(what) + " (" + d.cause + ")";
      throw_if_error(ec, d, context.c_str());
    }
    throw_if_error(ec, d, what);
  }

  void handle_push_to(const std::map<std::string, std::string>& query, std::string_view body,
                      component_push& push, std::error_code& ec, error_detail* d) {
    const auto param = [&](const char* name) -> const std::string* {
      const auto it = query.find(name);
      if (it != query.end()) return &it->second;
      ec = component_errc::push_query_incomplete;
      if (d) d->field = name;
      return nullptr;
    };
    const auto et = query.find("encrypt_type");
    if (et == query.end() || et->second != "aes") {
      ec = component_errc::push_not_encrypted;
      return;
    }
    const std::string* timestamp = param("timestamp");
    const std::string* nonce = timestamp ? param("nonce") : nullptr;
    const std::string* msg_signature = nonce ? param("msg_signature") : nullptr;
    if (!msg_signature) return;
    std::string inner = crypt_.decrypt_message(*msg_signature, *timestamp, *nonce, body, ec);
    if (ec) return;
    // The trailer was this component_appid; the AppId inside must be too (EasyWeChat PR
    // #2269's check: a push of another platform sharing the URL must not be stored).
    const auto field = [&](const char* name) {
      std::string v = xml_element_text(inner, name, ec);
      if (ec && d) d->field = name;
      return v;
    };
    const std::string appid = field("AppId");
    if (ec) return;
    if (appid != opt_.component_appid) {
      ec = msg_crypt_errc::appid_mismatch;
      if (d) d->field = "AppId";
      return;
    }
    const std::string info_type = field("InfoType");
    if (ec) return;
    const std::string created = field("CreateTime");
    if (ec) return;
    std::int64_t create_time = 0;
    if (!parse_unix_seconds(created, create_time)) {
      ec = component_errc::push_field_invalid;
      if (d) d->field = "CreateTime";
      return;
    }
    push.info_type = info_type;
    push.create_time = create_time;
    if (info_type == "component_verify_ticket") {
      std::string ticket = field("ComponentVerifyTicket");
      if (!ec && ticket.empty()) {
        ec = component_errc::push_field_invalid;
        if (d) d->field = "ComponentVerifyTicket";
      }
      if (!ec) push.ticket_stored = store_ticket(ticket, create_time, ec);
      detail::cleanse(ticket);
    } else if (info_type == "authorized" || info_type == "updateauthorized" ||
               info_type == "unauthorized") {
      push.authorizer_appid = field("AuthorizerAppid");
      if (!ec && push.authorizer_appid.empty()) {
        ec = component_errc::push_field_invalid;
        if (d) d->field = "AuthorizerAppid";
      }
      if (!ec && info_type == "unauthorized") forget_authorizer(push.authorizer_appid, ec);
    }
    // Any other InfoType: "success" all the same (WeChat would push it again otherwise),
    // reported through info_type.
    detail::cleanse(inner);
  }

  static bool parse_unix_seconds(const std::string& s, std::int64_t& out) {
    if (s.empty() || s.size() > 12) return false;
    out = 0;
    for (const char c : s) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  }

  // Stores the ticket unless the store holds one with a later CreateTime (a push delayed
  // or retried by WeChat must not replace a newer ticket). Under the store's lock, so that
  // the servers of a fleet receiving pushes at once agree; a store that cannot lock (or a
  // holder that does not let go within about 1 s) does not stop the push from being stored.
  bool store_ticket(const std::string& ticket, std::int64_t create_time, std::error_code& ec) {
    const std::string lock_key = ticket_key() + ":lock";
    std::error_code rec;
    const std::string owner = to_hex(random_bytes(8, rec));
    bool locked = false;
    for (int i = 0; i < 50 && !rec; ++i) {
      std::error_code lec;
      locked = store_->acquire(lock_key, owner, opt_.lock_ttl, lec);
      if (locked || lec) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    bool stored = false;
    // Pushes handled at once by this process's threads are compared and saved one at a
    // time (a store private to the process grants every lock); the store's lock does the
    // same across a fleet.
    std::lock_guard<std::mutex> serial(ticket_mutex_);
    const auto current = store_->load(ticket_key(), ec);
    // Never over a newer ticket (a late or retried push), unless the stored one claims a
    // CreateTime more than 10 minutes ahead of this machine's clock: a test's mock clock
    // was moved back (or reset) under a store that outlived it, and no push would ever be
    // stored again.
    const std::int64_t stored_at = current ? ticket_create_time(*current) : 0;
    const bool implausible = stored_at > clock_->now_ms() / 1000 + 600;
    if (!ec && (!current || stored_at <= create_time || implausible)) {
      store_->save(ticket_key(),
                   stored_token{ticket, (create_time + component_ticket_lifetime_s) * 1000}, ec);
      stored = !ec;
    }
    if (locked) {
      std::error_code ignored;
      store_->release(lock_key, owner, ignored);
    }
    return stored;
  }

  // unauthorized: the app withdrew its authorization; its tokens and refresh token are
  // worthless (and a new authorization brings a new refresh token).
  void forget_authorizer(const std::string& authorizer_appid, std::error_code& ec) {
    {
      std::lock_guard<std::mutex> lock(authorizers_mutex_);
      authorizers_.erase(authorizer_appid);
    }
    for (const auto& key : {refresh_key(authorizer_appid), authorizer_key(authorizer_appid)}) {
      const auto t = store_->load(key, ec);
      if (!ec && t) store_->erase_if(key, t->value, ec);
      if (ec) return;
    }
  }

  std::shared_ptr<token_provider> authorizer(std::string_view authorizer_appid) {
    std::lock_guard<std::mutex> lock(authorizers_mutex_);
    auto& p = authorizers_[std::string(authorizer_appid)];
    if (!p) {
      auto options = provider_options();
      options.appid = std::string(authorizer_appid);
      p = std::make_shared<token_provider>(
          authorizer_key(authorizer_appid),
          [this, a = std::string(authorizer_appid)] { return fetch_authorizer_token(a); }, options,
          store_, clock_);
    }
    return p;
  }

  // One attempt at the component token (token_provider retries it and runs it in its
  // single flight, under the store's lock).
  token_fetch_result fetch_component_token() {
    token_fetch_result r;
    r.detail.attempts = 1;
    auto ticket = store_->load(ticket_key(), r.ec);
    if (r.ec) return r;
    if (!ticket || ticket->value.empty()) {
      // Never send a null ticket: WeChat answers 61006 (WxJava #2967, 2023).
      r.ec = component_errc::no_ticket;
      return r;
    }
    http_request req;
    req.method = "POST";
    req.target = "/cgi-bin/component/api_component_token";
    req.content_type = "application/json";
    req.body = detail::json_body({{"component_appid", opt_.component_appid},
                                  {"component_appsecret", opt_.component_secret},
                                  {"component_verify_ticket", ticket->value}});
    detail::cleanse(ticket->value);
    const std::int64_t sent = clock_->now_ms();
    const auto j = detail::round_trip(*transport_, req, r.ec, r.detail);
    detail::cleanse(req.body);
    if (r.ec == api_errc::component_ticket_expired || r.ec == api_errc::component_ticket_invalid) {
      const std::int64_t created = ticket_create_time(*ticket);
      r.detail.cause = "the stored component_verify_ticket was pushed with CreateTime " +
                       std::to_string(created) + ", " + std::to_string(sent / 1000 - created) +
                       " s ago (WeChat accepts the latest ticket for 12 hours; it pushes a new "
                       "one every 10 minutes)";
    }
    if (r.ec) return r;
    detail::read_token_answer(j, "component_access_token", sent, r);
    if (r.ec) return r;
    return r;
  }

  // One attempt at an authorizer's token, with the component token (fetched again once
  // when WeChat rejects it).
  token_fetch_result fetch_authorizer_token(const std::string& authorizer_appid) {
    token_fetch_result r;
    r.detail.attempts = 1;
    auto refresh = store_->load(refresh_key(authorizer_appid), r.ec);
    if (r.ec) return r;
    if (!refresh || refresh->value.empty()) {
      r.ec = component_errc::no_refresh_token;
      return r;
    }
    const std::string body = detail::json_body({{"component_appid", opt_.component_appid},
                                                {"authorizer_appid", authorizer_appid},
                                                {"authorizer_refresh_token", refresh->value}});
    const std::int64_t sent = clock_->now_ms();
    const auto j = detail::with_token(
        component_tokens_, r.ec, &r.detail,
        [&](const std::string& token, std::error_code& cec, error_detail* cd) {
          http_request req;
          req.method = "POST";
          req.target =
              "/cgi-bin/component/api_authorizer_token?component_access_token=" + url_encode(token);
          req.content_type = "application/json";
          req.body = body;
          return detail::exchange(*transport_, req, 1, opt_.backoff, cec, cd);
        });
    if (r.ec) return r;
    detail::read_token_answer(j, "authorizer_access_token", sent, r);
    if (r.ec) return r;
    // WeChat hands back the same refresh token (it changes only when the app authorizes
    // again: official answer, community doc 000c6c30848ed0ae9b2dd71fe56400); keep a new one.
    const auto next = detail::optional_string(j, "authorizer_refresh_token");
    if (next && *next != refresh->value) {
      std::error_code ignored;  // the token is good; the old refresh token still works today
      store_->save(refresh_key(authorizer_appid), stored_token{*next, 0}, ignored);
    }
    return r;
  }

  component_options opt_;
  std::shared_ptr<transport> transport_;
  std::shared_ptr<token_store> store_;
  std::shared_ptr<const wechat::time_source> clock_;
  msg_crypt crypt_;
  token_provider component_tokens_;
  std::mutex ticket_mutex_;  // store_ticket's compare and save, within this process
  std::mutex authorizers_mutex_;
  std::unordered_map<std::string, std::shared_ptr<token_provider>> authorizers_;
  detail::code_memory<session_info> codes_;
};

}  // namespace wechat
