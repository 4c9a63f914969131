// mock_httplib_only: the mock with its fast path off (options::fast_path = false), so that
// every request goes through cpp-httplib 0.11.4's reader and writer as it did before
// wire.hpp. benchmarks/mock_load measures it beside the standalone mock in the same run:
// the difference is what the fast path is worth.
//
//   mock_httplib_only PORT        serves until SIGINT/SIGTERM
#include <mock_wechat/server.hpp>

#include "stop_signals.hpp"

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mock_httplib_only PORT\n";
    return 2;
  }
  const sigset_t stop = bench::block_stop_signals();
  mock_wechat::options opt;
  opt.port = std::stoi(argv[1]);
  opt.fast_path = false;
  mock_wechat::server mock(opt);
  bench::wait_for_stop(stop);
  return 0;
}
