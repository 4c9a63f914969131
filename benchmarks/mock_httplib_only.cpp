// mock_httplib_only: the mock served by cpp-httplib (options::engine = engine_kind::httplib,
// detail/httplib_engine.hpp: a thread per connection), so that every request goes through
// cpp-httplib's reader and writer. benchmarks/mock_load measures it beside the standalone
// mock (the event engine) in the same run: the difference is what the event engine is worth.
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
  opt.engine = mock_wechat::engine_kind::httplib;
  mock_wechat::server mock(opt);
  bench::wait_for_stop(stop);
  return 0;
}
