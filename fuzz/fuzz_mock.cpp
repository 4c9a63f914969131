// libFuzzer: the mock's request handling with hostile input. The input is split at '\n'
// into method, request target, body. It goes through the request framer (as raw bytes),
// every WeChat endpoint handler and the admin API: answers are HTTP statuses with JSON,
// never a crash; admin errors are admin_error (a 400/404 answer), nothing else escapes.
// As raw bytes it also goes through the fast path's reader (detail/wire.hpp): whatever that
// accepts, cpp-httplib must read the same way.
#include <mock_wechat/admin.hpp>
#include <mock_wechat/api.hpp>
#include <mock_wechat/detail/reactor.hpp>
#include <mock_wechat/detail/wire.hpp>

#include "../tests/httplib_reference.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto frame = mock_wechat::detail::frame_request(in, 4096, 65536);
  if (frame.kind == mock_wechat::detail::request_frame::ready) {
    const std::string whole = in.substr(0, frame.size);
    if (const auto fast = mock_wechat::detail::parse_plain_request(whole)) {
      static httplib_reference::reference_server reference;
      const auto slow = reference.read(whole);
      if (!slow.handled || slow.method != fast->method || slow.path != fast->path ||
          slow.target != fast->target || slow.body != fast->body || slow.closed != fast->close ||
          slow.consumed != whole.size())
        __builtin_trap();
    }
  }

  static mock_wechat::world world;
  static mock_wechat::fault_table faults;
  static mock_wechat::journal journal(16);
  static mock_wechat::stats_table stats(mock_wechat::wechat_api::paths());
  static mock_wechat::wechat_api api(world);
  static mock_wechat::admin_api admin(world, faults, journal, stats);
  static std::size_t runs = 0;
  if (runs++ % 5000 == 0) {  // a bounded world: start over now and then
    (void)admin.handle("POST", "/__mock/reset", "", nullptr);
    world.add_app({"wx1000000000000001", "s", mock_wechat::app_type::miniprogram, "acct"});
    world.add_app({"wx2000000000000002", "o", mock_wechat::app_type::official_account, "acct"});
  }

  const auto nl1 = in.find('\n');
  const auto nl2 = nl1 == std::string::npos ? nl1 : in.find('\n', nl1 + 1);
  const std::string method = in.substr(0, std::min(nl1, in.size()));
  const std::string target =
      nl1 == std::string::npos ? "" : in.substr(nl1 + 1, std::min(nl2, in.size()) - nl1 - 1);
  const std::string body = nl2 == std::string::npos ? "" : in.substr(nl2 + 1);
  const std::string path = target.substr(0, target.find('?'));
  const auto query = mock_wechat::parse_query(target);

  const mock_wechat::api_request req{method, path, &query, body};
  const auto r = api.handle(req);
  if (r.status < 100 || r.status > 599) __builtin_trap();
  const auto a = admin.handle(method, path, body, &query);
  if (a.status < 100 || a.status > 599) __builtin_trap();
  return 0;
}
