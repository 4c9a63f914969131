// libFuzzer: the mock's request handling with hostile input.
//
// As raw bytes, the input goes through the event engine's HTTP/1.1 reader
// (detail/http1.hpp), whose answers must not depend on how the bytes arrive: a request read
// whole from the input is, read from any shorter prefix of it, "not whole yet" (never
// another request, never refused), and read again from exactly its own bytes, the same
// request; a refusal always closes and names a status the reader may send.
//
// Split at '\n' into method, request target and body, it then goes through every WeChat
// endpoint handler and the admin API: answers are HTTP statuses with JSON, never a crash;
// admin errors are admin_error (a 400/404 answer), nothing else escapes.
#include <mock_wechat/admin.hpp>
#include <mock_wechat/api.hpp>
#include <mock_wechat/detail/http1.hpp>

#include <cstdint>
#include <string>

namespace {

void check_reader(const std::string& in) {
  using mock_wechat::detail::http1_request;
  static mock_wechat::http_header headers[mock_wechat::detail::http1_max_fields];
  static std::string chunked, chunked2;
  const mock_wechat::detail::http1_limits lim{4096, 65536};
  const auto whole = mock_wechat::detail::parse_http1(in, lim, headers, chunked);
  if (whole.kind == http1_request::refused) {
    const int s = whole.status;
    if (!whole.close || (s != 400 && s != 413 && s != 414 && s != 417 && s != 431 && s != 501 &&
                         s != 505))
      __builtin_trap();
    return;
  }
  if (whole.kind != http1_request::complete) return;
  const std::string method(whole.method), target(whole.target), body(whole.body);
  const std::string own = in.substr(0, whole.size);
  const auto again = mock_wechat::detail::parse_http1(own, lim, headers, chunked2);
  if (again.kind != http1_request::complete || again.size != whole.size ||
      again.method != method || again.target != target || again.body != body ||
      again.close != whole.close)
    __builtin_trap();
  for (std::size_t k = 0; k < whole.size; k += 1 + k / 64) {  // every short prefix, then sparser
    const auto part = mock_wechat::detail::parse_http1(std::string_view(in).substr(0, k), lim,
                                                       headers, chunked2);
    if (part.kind != http1_request::need_more) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  check_reader(in);

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
