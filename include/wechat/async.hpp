// wechat/async.hpp - the asynchronous API in one include: async_transport (the interface a
// loop implements), result<T> and async_future<T>, cancel tokens, async_client and its
// token provider. No dependency beyond the sync library's; the Boost.Beast transport is
// wechat/transport/beast.hpp, the only header that includes Boost.
#pragma once

#include "wechat/async/client.hpp"     // IWYU pragma: export
#include "wechat/async/result.hpp"     // IWYU pragma: export
#include "wechat/async/token.hpp"      // IWYU pragma: export
#include "wechat/async/transport.hpp"  // IWYU pragma: export
