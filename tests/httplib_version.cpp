// Which cpp-httplib a build compiled against: the CMake provider logic must not pick
// Debian's header when the build asked for another (WECHAT_EXPECT_HTTPLIB, set by
// `make test-httplib-latest`), and the binary must not link Debian's compiled library
// beside a header of another version (two cpp-httplibs in one program).
#include <httplib.h>

#include <cstdio>
#include <string_view>

#ifdef WECHAT_EXPECT_HTTPLIB
static_assert(std::string_view(CPPHTTPLIB_VERSION) == WECHAT_EXPECT_HTTPLIB,
              "built against another cpp-httplib than the one asked for");
#endif

int main() {
  std::printf("cpp-httplib %s\n", CPPHTTPLIB_VERSION);
  return 0;
}
