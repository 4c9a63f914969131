// libFuzzer: scenario files are user input. Any bytes: not JSON is refused; JSON is applied
// to a fresh world or refused with admin_error naming the bad field. Nothing else.
#include <mock_wechat/scenario.hpp>

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  mock_wechat::world w;
  try {
    mock_wechat::apply_scenario(w, j);
  } catch (const mock_wechat::admin_error&) {
  }
  return 0;
}
