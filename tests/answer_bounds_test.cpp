// What reading one answer may allocate, whatever the body: the member table, the decoded
// keys and the skip stack grow with the body, and the body is capped by the transport
// (max_response_bytes, 1 MiB by default). This binary replaces operator new and delete to
// see the live heap's peak while an answer reads the worst bodies of their kind.
#include <catch2/catch.hpp>
#include <wechat/detail/answer.hpp>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>

namespace {

// Live bytes of operator new, and their peak since the last reset (this thread's only
// allocations matter: the test runs on one thread).
std::size_t live_bytes = 0;
std::size_t peak_bytes = 0;

void* counted_new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  live_bytes += malloc_usable_size(p);
  peak_bytes = std::max(peak_bytes, live_bytes);
  return p;
}

void counted_delete(void* p) noexcept {
  if (p == nullptr) return;
  live_bytes -= malloc_usable_size(p);
  std::free(p);
}

// The heap's peak above its level before, while `body` (already built) is read.
std::size_t peak_while_reading(std::string body, std::size_t& members,
                               wechat::detail::answer::shape& found) {
  const std::size_t before = live_bytes;
  peak_bytes = before;
  {
    auto a = wechat::detail::answer::read(std::move(body), found);
    members = 0;
    a.each_member([&](std::string_view, const wechat::detail::answer::member&) { ++members; });
  }
  return peak_bytes - before;
}

constexpr std::size_t one_mib = 1024 * 1024;

// `{` + `piece` repeated to about 1 MiB (the last comma dropped) + `}`.
std::string object_of(const std::string& piece) {
  std::string body = "{";
  body.reserve(one_mib + piece.size() + 2);
  while (body.size() + piece.size() < one_mib)
    body += piece;
  body.back() = '}';
  return body;
}

}  // namespace

void* operator new(std::size_t n) {
  return counted_new(n);
}
void* operator new[](std::size_t n) {
  return counted_new(n);
}
void operator delete(void* p) noexcept {
  counted_delete(p);
}
void operator delete[](void* p) noexcept {
  counted_delete(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_delete(p);
}

// The bound for a table: a member is 40 bytes for at least 5 of body (`"":0,`, the
// densest member JSON has; duplicates are kept, as each_member lists them), in a vector
// that doubles, whose old and new buffers are both live while it grows: at most 3 times
// the members' bytes, so 24 times the body.
// (plus `slack` for the allocator's rounding: glibc gives a large block whole pages).
constexpr std::size_t table_bound_per_body_byte = 3 * sizeof(wechat::detail::answer::member) / 5;
constexpr std::size_t slack = 64 * 1024;
static_assert(sizeof(wechat::detail::answer::member) <= 40, "the bound below assumes 40 bytes");

namespace {

// Reads `body`, an object of `expected` members, and checks the table's bound; the peak.
std::size_t check_table_bound(std::string body, std::size_t expected) {
  const std::size_t size = body.size();
  std::size_t members = 0;
  auto found = wechat::detail::answer::shape::not_json;
  const std::size_t peak = peak_while_reading(std::move(body), members, found);
  REQUIRE(found == wechat::detail::answer::shape::object);
  CHECK(members == expected);
  INFO(members << " members, body " << size << " bytes, peak " << peak << " bytes (" << peak / size
               << "x)");
  CHECK(peak <= table_bound_per_body_byte * size + slack);
  return peak;
}

}  // namespace

TEST_CASE("answer bounds: 1 MiB of the shortest members costs at most 24 times the body",
          "[answer][bounds]") {
  const std::string body = object_of(R"("":0,)");
  const std::size_t peak = check_table_bound(body, (body.size() - 1) / 5);
  CHECK(peak >= 4 * body.size());  // the measure sees the table (8 bytes of it per body byte)
}

TEST_CASE("answer bounds: the table's bound holds where its vector has just grown",
          "[answer][bounds]") {
  // Member counts just past each doubling (8 inline, then the vector's 2^k): the worst
  // ratio of allocated to used.
  for (std::size_t k = 4; k <= 17; ++k) {
    const std::size_t n = 8 + (std::size_t{1} << k) + 1;
    std::string body = "{";
    for (std::size_t i = 0; i < n; ++i)
      body += R"("":0,)";
    body.back() = '}';
    check_table_bound(std::move(body), n);
  }
}

TEST_CASE("answer bounds: escaped keys stay within the table's bound", "[answer][bounds]") {
  // A key with an escape is decoded once into one string: `"\u0041":0,` (11 bytes) adds
  // one byte of decoded key to its 40-byte member, well within the table's bound.
  const std::string body = object_of(R"("\u0041":0,)");
  check_table_bound(body, (body.size() - 1) / 11);
}

TEST_CASE("answer bounds: 1 MiB of nesting costs at most 3 bytes per level", "[answer][bounds]") {
  // `{"a":[[[[...]]]]}`: the skip stack keeps a bit per level in a word, then a byte per
  // level past 64; nothing recurses.
  const std::size_t depth = one_mib / 2;
  std::string body = R"({"a":)";
  body.append(depth, '[');
  body.append(depth, ']');
  body += '}';
  std::size_t members = 0;
  auto found = wechat::detail::answer::shape::not_json;
  const std::size_t peak = peak_while_reading(body, members, found);
  REQUIRE(found == wechat::detail::answer::shape::object);
  CHECK(members == 1);
  INFO("depth " << depth << ", peak " << peak << " bytes");
  // A string of depth - 64 bytes, grown by doubling: while it grows, its old and new
  // buffers are both live, up to 3 bytes per level.
  CHECK(peak <= 3 * depth + slack);
  CHECK(peak >= depth / 2);
}
