// wechat/detail/json_reader.hpp - a strict, allocation-light JSON reader: it accepts
// exactly RFC 8259 JSON (what nlohmann::json::accept accepts, but for the BOM, NUL, number
// and depth differences below; checked by a differential test and a fuzzer), decodes only the
// fields the caller asks for and skips the rest without building a DOM. It reads the small
// flat objects WeChat encrypts (user info, phone number), where a DOM parse alone costs
// more than the base64 + AES work it follows, and WeChat's answers (detail::answer).
//
// Usage: json_reader r(text); r.object([&](std::string_view key) { if (key == "a")
// r.string(a); else r.skip(0); }); r.finish(); (decrypt.hpp's read_top_object wraps it).
// A grammar violation sets syntax_error(); a value of the wrong type for a known field
// is skipped and sets shape_error(), so "not JSON" and "JSON of the wrong shape" stay
// distinguishable. Nesting stops at max_depth.
//
// The DOM-compatible grammar (json_reader::dom_compatible) is the reading of WeChat's
// answers (detail::answer): it accepts exactly what nlohmann::json::parse accepts, where
// nlohmann differs from RFC 8259: a UTF-8 BOM at the start is skipped, a NUL after the
// value ends the input, a number that overflows a double is refused, and nesting has no
// depth limit (skip() and skip_any() keep their own stack, not the call stack). Numbers
// are judged in the C locale, rounding to nearest, whatever the process's; nlohmann's
// strtod follows the process's rounding mode, and its locale's decimal point when that is
// one byte (a longer one, as fa_IR's, cuts "7.2e3" to 7): there only, they can differ.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace wechat::detail {

class json_reader {
public:
  static constexpr int max_depth = 256;

  explicit json_reader(std::string_view text) noexcept
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  /// The grammar of nlohmann::json::parse, for WeChat's answers (see the file's comment).
  struct dom_compatible_t {};
  static constexpr dom_compatible_t dom_compatible{};
  json_reader(std::string_view text, dom_compatible_t) noexcept : json_reader(text) {
    dom_ = true;
    static constexpr char bom[] = "\xEF\xBB\xBF";
    if (text.size() >= 3 && std::memcmp(p_, bom, 3) == 0) p_ += 3;
  }

  /// Inside object()'s on_key: whether the key had an escape (it is then a decoded copy,
  /// else a view of the text).
  bool key_decoded() const noexcept { return key_decoded_; }

  /// Where the reader is: bytes from the start of the text.
  std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }

  bool syntax_error() const noexcept { return syntax_; }
  bool shape_error() const noexcept { return shape_; }
  void set_shape_error() noexcept { shape_ = true; }
  bool failed() const noexcept { return syntax_; }

  /// Skips whitespace; returns the next character or '\0' at the end.
  char peek() noexcept {
    skip_ws();
    return p_ < end_ ? *p_ : '\0';
  }

  /// After the top-level value: only whitespace may remain (in the DOM-compatible
  /// grammar, whitespace and then a NUL, after which nothing is read).
  bool finish() noexcept {
    skip_ws();
    if (p_ != end_ && !(dom_ && *p_ == '\0')) syntax_ = true;
    return !syntax_;
  }

  /// Reads an object, calling on_key(key) for each member with the reader positioned at
  /// the value; on_key must consume the value (with string(), integer(), skip()...).
  /// `key` is only valid during the call (it usually points into the input).
  template <class OnKey> bool object(OnKey&& on_key, int depth = 0) {
    if (depth > max_depth) return fail();
    if (peek() != '{') return fail();
    ++p_;
    if (peek() == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (peek() != '"') return fail();
      ++p_;
      std::string decoded;  // used only for keys with escapes; no allocation otherwise
      const std::string_view key = read_key(decoded);
      if (syntax_) return false;
      if (peek() != ':') return fail();
      ++p_;
      on_key(key);
      if (syntax_) return false;
      const char c = peek();
      if (c == ',') {
        ++p_;
        continue;
      }
      if (c == '}') {
        ++p_;
        return true;
      }
      return fail();
    }
  }

  /// Reads a string value into out. null leaves out unchanged and returns false without
  /// error (callers decide whether null is allowed). Any other type: skipped, shape error.
  bool string(std::string& out) {
    const char c = peek();
    if (c == '"') {
      ++p_;
      out.clear();
      return read_string_body(out);
    }
    if (c == 'n') {
      skip(0);
      return false;
    }
    skip(0);
    shape_ = true;
    return false;
  }

  /// Reads an integral number. A number with a fraction or exponent, out of range, or any
  /// other type is skipped and sets the shape error.
  bool integer(std::int64_t& out) {
    if (peek() != '-' && !(p_ < end_ && *p_ >= '0' && *p_ <= '9')) {
      skip(0);
      shape_ = true;
      return false;
    }
    const char* start = p_;
    bool integral = true;
    if (!scan_number(integral)) return false;
    if (!integral) {
      shape_ = true;
      return false;
    }
    const auto v = int64_of_integral(std::string_view(start, static_cast<std::size_t>(p_ - start)));
    if (!v) {
      shape_ = true;
      return false;
    }
    out = *v;
    return true;
  }

  /// An integral number's text, already validated ("-12": no fraction, no exponent), as an
  /// int64_t; nullopt beyond [-2^63, 2^63) (where nlohmann makes it an unsigned, up to
  /// 2^64 - 1, or a double beyond that).
  static std::optional<std::int64_t> int64_of_integral(std::string_view t) noexcept {
    const bool negative = !t.empty() && t[0] == '-';
    std::uint64_t u = 0;
    for (std::size_t i = negative ? 1 : 0; i < t.size(); ++i) {
      const auto digit = static_cast<std::uint64_t>(t[i] - '0');
      if (u > (UINT64_MAX - digit) / 10) return std::nullopt;
      u = u * 10 + digit;
    }
    const std::uint64_t limit = static_cast<std::uint64_t>(INT64_MAX) + (negative ? 1 : 0);
    if (u > limit) return std::nullopt;
    return negative ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
  }

  /// A string, or a number kept as its text (countryCode arrives as "86" or 86).
  bool string_or_number(std::string& out) {
    const char c = peek();
    if (c == '"') return string(out);
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char* start = p_;
      bool integral = true;
      if (!scan_number(integral)) return false;
      out.assign(start, static_cast<std::size_t>(p_ - start));
      return true;
    }
    if (c == 'n') {
      skip(0);
      return false;
    }
    skip(0);
    shape_ = true;
    return false;
  }

  /// Validates and skips any value (in the DOM-compatible grammar, of any depth).
  bool skip(int depth) {
    if (dom_) return skip_any();
    if (depth > max_depth) return fail();
    const char c = peek();
    switch (c) {
    case '{': return object([&](std::string_view) { skip(depth + 1); }, depth + 1);
    case '[': {
      ++p_;
      if (peek() == ']') {
        ++p_;
        return true;
      }
      for (;;) {
        if (!skip(depth + 1)) return false;
        const char d = peek();
        if (d == ',') {
          ++p_;
          continue;
        }
        if (d == ']') {
          ++p_;
          return true;
        }
        return fail();
      }
    }
    default: return skip_scalar();
    }
  }

  /// Validates and skips any value, nested to any depth, without recursion: the open
  /// containers are a bit each (64 in a word, then a string), so a hostile answer of a
  /// million '[' costs a million bytes at most, never the call stack.
  bool skip_any() {
    std::uint64_t inline_bits = 0;  // bit i: level i is an object (else an array)
    std::string deeper;             // levels 64 and up
    std::size_t depth = 0;
    const auto is_object = [&](std::size_t level) {
      return level < 64 ? ((inline_bits >> level) & 1U) != 0 : deeper[level - 64] != 0;
    };
    const auto member_key = [&] {  // a key and its ':'
      bool escaped = false;
      if (!skip_string(escaped)) return false;
      if (peek() != ':') return fail();
      ++p_;
      return true;
    };
    for (;;) {
      // A value.
      const char c = peek();
      if (c == '{' || c == '[') {
        ++p_;
        const bool object = c == '{';
        if (peek() == (object ? '}' : ']')) {
          ++p_;
        } else {
          if (depth < 64) {
            inline_bits =
                (inline_bits & ~(std::uint64_t{1} << depth)) | (std::uint64_t{object} << depth);
          } else {
            deeper.resize(depth - 64);
            deeper.push_back(object ? 1 : 0);
          }
          ++depth;
          if (object && !member_key()) return false;
          continue;
        }
      } else if (!skip_scalar()) {
        return false;
      }
      // After a value: close what ends here, then the next value, or the end.
      for (;;) {
        if (depth == 0) return true;
        const bool object = is_object(depth - 1);
        const char d = peek();
        if (d == ',') {
          ++p_;
          if (object && !member_key()) return false;
          break;
        }
        if (d != (object ? '}' : ']')) return fail();
        ++p_;
        --depth;
      }
    }
  }

  /// At a string value (peek() == '"'): validates it and moves past it without decoding;
  /// `escaped` tells whether it holds an escape (a value without one is its own text).
  bool skip_string(bool& escaped) {
    if (peek() != '"') return fail();
    ++p_;
    escaped = false;
    return scan_string_body(escaped);
  }

  /// At a number (peek() is '-' or a digit): validates it and moves past it; `integral`
  /// tells whether it has neither fraction nor exponent.
  bool skip_number(bool& integral) {
    peek();
    integral = true;
    return scan_number(integral);
  }

private:
  bool fail() noexcept {
    syntax_ = true;
    p_ = end_;
    return false;
  }

  void skip_ws() noexcept {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  bool literal(const char* word) noexcept {
    const std::size_t n = std::strlen(word);
    if (static_cast<std::size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return fail();
    p_ += n;
    return true;
  }

  // A string, a literal or a number (anything else is a syntax error).
  bool skip_scalar() {
    switch (peek()) {
    case '"': {
      bool escaped = false;
      return skip_string(escaped);
    }
    case 't': return literal("true");
    case 'f': return literal("false");
    case 'n': return literal("null");
    default: {
      bool integral = true;
      return scan_number(integral);
    }
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool scan_number(bool& integral) noexcept {
    const char* start = p_;
    if (!scan_number_grammar(integral)) return false;
    if (dom_ && overflows_double(start, p_)) return fail();
    return true;
  }

  // Whether a grammatical number is beyond a double (nlohmann's parser refuses it: "number
  // overflow"). Its decade is found from its digits and exponent first: a number below
  // 1e299 never overflows, and only one at or past it is converted (from_chars rounds as
  // strtod does in the default rounding mode; out of range there, a number that large
  // overflowed: it cannot have underflowed).
  static bool overflows_double(const char* s, const char* e) noexcept {
    const char* p = s + (*s == '-' ? 1 : 0);
    long decade = 0;  // the value is in [10^(decade-1), 10^decade)
    if (*p != '0') {
      while (p < e && *p >= '0' && *p <= '9') {
        ++p;
        ++decade;
      }
    } else {  // 0, or 0.000ddd: each zero after the point is a decade down
      ++p;
      if (p < e && *p == '.') ++p;
      while (p < e && *p == '0') {
        ++p;
        --decade;
      }
      if (p == e || *p < '1' || *p > '9') return false;  // zero: 0, 0.000, 0e999
    }
    while (p < e && *p != 'e' && *p != 'E')
      ++p;
    if (p < e) {  // the exponent: clamped beyond anything the digits could bring back
      ++p;
      const bool negative = *p == '-';
      if (*p == '+' || *p == '-') ++p;
      const long limit = static_cast<long>(e - s) + 400;
      long x = 0;
      for (; p < e; ++p)
        if (x <= limit) x = x * 10 + (*p - '0');
      decade += negative ? -x : x;
    }
    if (decade < 300) return false;
    double v = 0;
    return std::from_chars(s, e, v).ec == std::errc::result_out_of_range;
  }

  bool scan_number_grammar(bool& integral) noexcept {
    auto digit = [&] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    if (p_ < end_ && *p_ == '-') ++p_;
    if (!digit()) return fail();
    if (*p_ == '0') {
      ++p_;
    } else {
      while (digit())
        ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      integral = false;
      ++p_;
      if (!digit()) return fail();
      while (digit())
        ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) return fail();
      while (digit())
        ++p_;
    }
    return true;
  }

  // Advances p_ over plain string bytes (printable ASCII other than '"' and '\\'), eight
  // at a time: most of a WeChat payload is long ASCII strings (URLs, ids).
  void skip_plain_ascii() noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end_ - p_ >= 8) {
      std::uint64_t v;
      std::memcpy(&v, p_, 8);
      const std::uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
      const std::uint64_t special =
          ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v;
      if (special & highs) return;
      p_ += 8;
    }
  }

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool read_hex4(std::uint32_t& v) noexcept {
    if (end_ - p_ < 4) return fail();
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(p_[i]);
      if (h < 0) return fail();
      v = (v << 4) | static_cast<std::uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  // Where a string's text goes when it is only validated: nothing is kept but whether an
  // escape was seen (escapes are the only characters pushed one by one).
  struct escape_sink {
    bool& escaped;
    void append(const char*, std::size_t) noexcept {}
    void push_back(char) noexcept { escaped = true; }
  };

  bool scan_string_body(bool& escaped) {
    escape_sink sink{escaped};
    return read_string_body(sink);
  }

  template <class Out> static void append_utf8(Out& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Validates one UTF-8 sequence starting at p_ (first byte >= 0x80), advances past it.
  bool utf8_sequence() noexcept {
    const auto b0 = static_cast<unsigned char>(*p_);
    int extra;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      extra = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      extra = 2;
      if (b0 == 0xE0) lo = 0xA0;  // no overlong
      if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      extra = 3;
      if (b0 == 0xF0) lo = 0x90;  // no overlong
      if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      return fail();
    }
    if (end_ - p_ <= extra) return fail();
    const auto b1 = static_cast<unsigned char>(p_[1]);
    if (b1 < lo || b1 > hi) return fail();
    for (int i = 2; i <= extra; ++i) {
      const auto b = static_cast<unsigned char>(p_[i]);
      if (b < 0x80 || b > 0xBF) return fail();
    }
    p_ += extra + 1;
    return true;
  }

  // After a key's opening quote: a view of the key in the input when it has no escapes
  // (the usual case), else its decoded form in `decoded`.
  std::string_view read_key(std::string& decoded) {
    key_decoded_ = false;
    const char* start = p_;
    skip_plain_ascii();
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') return std::string_view(start, static_cast<std::size_t>(p_++ - start));
      if (c == '\\' || c < 0x20) break;
      if (c >= 0x80) {
        if (!utf8_sequence()) return {};
      } else {
        ++p_;
      }
    }
    key_decoded_ = true;
    decoded.assign(start, static_cast<std::size_t>(p_ - start));
    if (!read_string_body(decoded)) return {};
    return decoded;
  }

  // After the opening quote: decodes into out up to and past the closing quote.
  template <class Out> bool read_string_body(Out& out) {
    for (;;) {
      const char* run = p_;
      skip_plain_ascii();
      while (p_ < end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20) break;
        if (c >= 0x80) {
          if (!utf8_sequence()) return false;
        } else {
          ++p_;
        }
      }
      out.append(run, static_cast<std::size_t>(p_ - run));
      if (p_ >= end_) return fail();
      const char c = *p_++;
      if (c == '"') return true;
      if (c != '\\') return fail();  // control character
      if (p_ >= end_) return fail();
      const char e = *p_++;
      switch (e) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '/': out.push_back('/'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!read_hex4(cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: a low one must follow
          if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') return fail();
          p_ += 2;
          std::uint32_t low = 0;
          if (!read_hex4(low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) return fail();
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail();  // lone low surrogate
        }
        append_utf8(out, cp);
        break;
      }
      default: return fail();
      }
    }
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  bool syntax_ = false;
  bool shape_ = false;
  bool dom_ = false;  // the DOM-compatible grammar
  bool key_decoded_ = false;
};

}  // namespace wechat::detail
