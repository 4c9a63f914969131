// wechat/detail/token_call.hpp - a request and its answer, retried when safe; and a call
// carrying a token, retried once with a fresh token when WeChat rejects it. Shared by
// client, component_client and wecom_client.
#pragma once

#include <chrono>
#include <string>
#include <system_error>

#include "wechat/detail/api_response.hpp"
#include "wechat/detail/retry.hpp"
#include "wechat/error.hpp"
#include "wechat/token.hpp"
#include "wechat/transport.hpp"

namespace wechat::detail {

/// One request, parsed: retried on -1 and transport failures up to `attempts` times (1
/// for a call that is not safe to repeat). Fills `*d` with the last attempt's detail.
inline answer exchange(transport& t, const http_request& req, int attempts,
                       std::chrono::milliseconds backoff, std::error_code& ec, error_detail* d) {
  answer j;
  error_detail local;
  retry(attempts, backoff, [&](int attempt) {
    local = error_detail{};
    j = round_trip(t, req, ec, local);
    local.attempts = attempt;
    return ec;
  });
  if (d) *d = local;
  return j;
}

/// WeChat rejected the token the call carried: 40001 (superseded or wrong), 40014
/// (garbage), 42001 (expired). WxJava and wechatpy treat the same three alike (notes on
/// issue 17, section 2.5).
inline bool token_rejected(const std::error_code& ec) noexcept {
  return ec == api_errc::invalid_credential || ec == api_errc::invalid_access_token ||
         ec == api_errc::access_token_expired;
}

/// A call that carries a token of `tokens`: `call(token, ec, d)` sends it and returns the
/// answer. A token WeChat rejects (token_rejected) is invalidated if it is still the
/// current one, and the call made once more with a fresh token.
template <class Call>
answer with_token(token_provider& tokens, std::error_code& ec, error_detail* d, Call&& call) {
  answer j;
  for (int round = 0; round < 2; ++round) {
    const std::string token = tokens.get(ec, d);
    if (ec) return answer();
    j = call(token, ec, d);
    if (!token_rejected(ec)) return j;
    tokens.invalidate(token);
  }
  return j;
}

}  // namespace wechat::detail
