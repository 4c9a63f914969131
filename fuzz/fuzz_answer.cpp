// libFuzzer: detail::answer (the reading of WeChat's answers without a DOM) against the
// reading on nlohmann's DOM (tests/answer_oracle.hpp), on any bytes: the outcome (error,
// errcode, errmsg, rid) and every probed field must be the same, or the run aborts with
// both readings. Seeded with fuzz_response's corpus (fuzz/run.sh), whose first byte (the
// status and Content-Type there) is here the body's first.
#include "answer_oracle.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const std::string dom = answer_oracle::by_dom(body);
  const std::string read = answer_oracle::by_answer(body);
  if (dom != read) {
    std::fputs("the DOM reads:    ", stderr);
    std::fwrite(dom.data(), 1, dom.size(), stderr);  // whole: a reading may hold a NUL
    std::fputs("\nthe answer reads: ", stderr);
    std::fwrite(read.data(), 1, read.size(), stderr);
    std::fputs("\n", stderr);
    std::abort();
  }
  return 0;
}
