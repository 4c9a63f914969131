// loadtest/template.hpp - request templates (${name} variables), captures and checks.
//
// Everything is parsed and resolved at start-up: variable names become slots, templates
// become literal/variable segments, JSONPaths become RFC 6901 tokens. Per request the
// engine only expands (one pass, appending to a reused buffer) and, for steps that
// capture or check, walks the parsed answer; neither throws anything but std::bad_alloc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mock_wechat/detail/http_text.hpp>
#include <nlohmann/json.hpp>

namespace loadtest {

/// Variable names and their slots, fixed before the run.
class variables {
public:
  /// The slot of `name`, added when new.
  int slot(std::string_view name) {
    const auto it = slots_.find(name);
    if (it != slots_.end()) return it->second;
    const int s = static_cast<int>(names_.size());
    names_.emplace_back(name);
    slots_.emplace(names_.back(), s);
    return s;
  }
  /// The slot of `name`, or -1 when absent.
  int find(std::string_view name) const {
    const auto it = slots_.find(name);
    return it == slots_.end() ? -1 : it->second;
  }
  /// The number of slots.
  std::size_t size() const noexcept { return names_.size(); }
  /// The name of a slot.
  const std::string& name(int slot) const { return names_.at(static_cast<std::size_t>(slot)); }

private:
  std::vector<std::string> names_;
  std::map<std::string, int, std::less<>> slots_;
};

/// One variable's value for one virtual user.
struct value {
  std::string text;
  bool present = false;
};
/// A virtual user's values, indexed by slot (size it to variables::size()).
using values = std::vector<value>;

/// How a template inserts values: JSON-string-escaped inside a string literal of a JSON
/// body (raw outside one), percent-encoded (paths, query values), or as is (headers).
enum class escaping { json_aware, percent, raw };

namespace detail {

inline bool is_var_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

inline void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t run = 0;  // start of the pending run of bytes that pass as they are
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default: {
      const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      out.append(u, sizeof u);
    }
    }
  }
  out.append(s.data() + run, s.size() - run);
}

inline bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

inline void append_percent_encoded(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (is_unreserved(c)) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    const char e[] = {'%', hex[c >> 4], hex[c & 15]};
    out.append(e, sizeof e);
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace detail

/// A compiled template: literal text and ${name} uses, each use resolved to a slot and
/// an escaping. Immutable after compile(); expand() may run on several threads at once.
class text_template {
public:
  /// Splits `text` into literal and ${name} segments, adding unknown names to `vars`.
  /// `$${` is a literal `${`; `${name?}` marks an optional use (expands to "" when the
  /// value is absent). Names are letters, digits, '_', '.', '-'. With json_aware, a use
  /// inside a JSON string literal is JSON-string-escaped and one outside is inserted as
  /// is. Throws std::invalid_argument for an unterminated `${`, an empty or bad name, or
  /// (json_aware) text that ends inside a string literal.
  static text_template compile(std::string_view text, variables& vars, escaping mode) {
    text_template t;
    const auto bad = [&](std::size_t at, const std::string& why) {
      return std::invalid_argument("template '" + std::string(text) + "': " + why + " at offset " +
                                   std::to_string(at));
    };
    bool in_string = false;  // json_aware: inside a JSON string literal of the literal text
    bool escaped = false;    // ... just after a backslash
    std::size_t lit_begin = 0;
    const auto scan_literal = [&](std::string_view lit) {
      t.literals_.append(lit.data(), lit.size());
      if (mode != escaping::json_aware) return;
      for (const char c : lit) {
        if (escaped) {
          escaped = false;
        } else if (in_string && c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = !in_string;
        }
      }
    };
    std::size_t i = 0;
    while (i < text.size()) {
      if (text[i] != '$') {
        ++i;
        continue;
      }
      if (text.compare(i, 3, "$${") == 0) {  // a literal "${"
        scan_literal(text.substr(lit_begin, i - lit_begin));
        scan_literal("${");
        i += 3;
        lit_begin = i;
        continue;
      }
      if (text.compare(i, 2, "${") != 0) {
        ++i;
        continue;
      }
      scan_literal(text.substr(lit_begin, i - lit_begin));
      const std::size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) throw bad(i, "unterminated ${");
      std::string_view name = text.substr(i + 2, close - i - 2);
      segment seg;
      if (!name.empty() && name.back() == '?') {
        seg.optional = true;
        name.remove_suffix(1);
      }
      if (name.empty()) throw bad(i, "empty variable name");
      for (const char c : name) {
        if (!detail::is_var_char(c)) {
          throw bad(i, "bad variable name '" + std::string(name) +
                           "' (letters, digits, '_', '.', '-'; '?' at the end for optional)");
        }
      }
      seg.literal_end = t.literals_.size();
      seg.slot = vars.slot(name);
      seg.how =
          mode == escaping::json_aware ? (in_string ? escaping::json_aware : escaping::raw) : mode;
      t.segments_.push_back(seg);
      t.slots_.push_back(seg.slot);
      i = close + 1;
      lit_begin = i;
    }
    scan_literal(text.substr(lit_begin));
    if (in_string) throw bad(text.size(), "unterminated JSON string");
    return t;
  }

  /// Appends the expansion to `out`. When a non-optional variable is not present it
  /// returns false, sets `*missing` to its slot, and leaves `out` as it was.
  bool expand(const values& v, std::string& out, int* missing = nullptr) const {
    const std::size_t old_size = out.size();
    std::size_t lit = 0;
    for (const segment& seg : segments_) {
      out.append(literals_, lit, seg.literal_end - lit);
      lit = seg.literal_end;
      const auto s = static_cast<std::size_t>(seg.slot);
      if (s >= v.size() || !v[s].present) {
        if (seg.optional) continue;
        if (missing != nullptr) *missing = seg.slot;
        out.resize(old_size);
        return false;
      }
      const std::string& text = v[s].text;
      switch (seg.how) {
      case escaping::json_aware: detail::append_json_escaped(out, text); break;
      case escaping::percent: detail::append_percent_encoded(out, text); break;
      case escaping::raw: out += text; break;
      }
    }
    out.append(literals_, lit, std::string::npos);
    return true;
  }

  /// True when an optional use's value is not present (checks then expect an absent field).
  bool has_absent_optional(const values& v) const noexcept {
    for (const segment& seg : segments_) {
      const auto s = static_cast<std::size_t>(seg.slot);
      if (seg.optional && (s >= v.size() || !v[s].present)) return true;
    }
    return false;
  }

  /// The slots used, in order of use (repeats included).
  const std::vector<int>& slots() const noexcept { return slots_; }
  /// True when `slot` is used without '?' (its value must be present to expand).
  bool uses_required(int slot) const noexcept {
    for (const auto& seg : segments_)
      if (seg.slot == slot && !seg.optional) return true;
    return false;
  }
  /// True for a template with no text and no variable.
  bool empty() const noexcept { return segments_.empty() && literals_.empty(); }

private:
  struct segment {
    std::size_t literal_end = 0;  // the literal text before this use: literals_[prev end, this)
    int slot = -1;
    bool optional = false;
    escaping how = escaping::raw;
  };
  std::string literals_;  // all literal text, the uses' positions marked by literal_end
  std::vector<segment> segments_;
  std::vector<int> slots_;
};

/// JSONPath subset -> RFC 6901 pointer: `$` (""), `$.a.b` ("/a/b"), `$.a[0].c`
/// ("/a/0/c"), `$['a-b']` or `$["a.b"]` (quoted keys hold any characters; `\'`, `\"` and
/// `\\` escape; `~` and `/` become `~0` and `~1`). Dotted names are letters, digits, '_',
/// '-' and non-ASCII bytes. Throws std::invalid_argument for anything else.
inline std::string json_path_to_pointer(std::string_view path);

namespace detail {

inline bool is_path_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || static_cast<unsigned char>(c) >= 0x80;
}

inline void append_pointer_token(std::string& out, std::string_view key) {
  out += '/';
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
}

/// Reads the JSONPath at the start of `s`, appends its pointer to `out`, returns the
/// length read. Throws std::invalid_argument.
inline std::size_t read_json_path(std::string_view s, std::string& out) {
  const auto bad = [&](std::size_t at, const char* why) {
    return std::invalid_argument("JSONPath '" + std::string(s) + "': " + why + " at offset " +
                                 std::to_string(at));
  };
  if (s.empty() || s[0] != '$') throw bad(0, "expected '$'");
  std::size_t i = 1;
  while (i < s.size()) {
    if (s[i] == '.') {
      const std::size_t begin = ++i;
      while (i < s.size() && is_path_name_char(s[i]))
        ++i;
      if (i == begin)
        throw bad(begin, "expected a name after '.' (use ['...'] for other characters)");
      append_pointer_token(out, s.substr(begin, i - begin));
    } else if (s[i] == '[') {
      ++i;
      if (i < s.size() && (s[i] == '\'' || s[i] == '"')) {
        const char quote = s[i++];
        std::string key;
        while (i < s.size() && s[i] != quote) {
          if (s[i] == '\\') {
            ++i;
            if (i >= s.size() || (s[i] != '\\' && s[i] != '\'' && s[i] != '"')) {
              throw bad(i, "expected \\\\, \\' or \\\" in a quoted key");
            }
          }
          key += s[i++];
        }
        if (i >= s.size()) throw bad(i, "unterminated quoted key");
        ++i;  // the closing quote
        append_pointer_token(out, key);
      } else {
        const std::size_t begin = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
          ++i;
        if (i == begin) throw bad(begin, "expected an index or a quoted key after '['");
        if (i - begin > 1 && s[begin] == '0') throw bad(begin, "an index has no leading zero");
        append_pointer_token(out, s.substr(begin, i - begin));
      }
      if (i >= s.size() || s[i] != ']') throw bad(i, "expected ']'");
      ++i;
    } else {
      break;
    }
  }
  return i;
}

/// An RFC 6901 pointer split into unescaped tokens, walked without exceptions.
inline std::vector<std::string> pointer_tokens(std::string_view pointer) {
  std::vector<std::string> tokens;
  std::size_t i = 0;
  while (i < pointer.size()) {  // pointer[i] == '/'
    std::string token;
    for (++i; i < pointer.size() && pointer[i] != '/'; ++i) {
      if (pointer[i] == '~' && i + 1 < pointer.size()) {
        token += pointer[++i] == '0' ? '~' : '/';
      } else {
        token += pointer[i];
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

/// The value at `tokens` in `doc`, or nullptr. An array takes a token of digits only.
inline const nlohmann::json* find(const nlohmann::json& doc,
                                  const std::vector<std::string>& tokens) noexcept {
  const nlohmann::json* at = &doc;
  for (const std::string& t : tokens) {
    if (at->is_object()) {
      const auto& obj = at->get_ref<const nlohmann::json::object_t&>();
      const auto it = obj.find(t);
      if (it == obj.end()) return nullptr;
      at = &it->second;
    } else if (at->is_array()) {
      if (t.empty() || t.size() > 18 || (t.size() > 1 && t[0] == '0')) return nullptr;
      std::size_t index = 0;
      for (const char c : t) {
        if (c < '0' || c > '9') return nullptr;
        index = index * 10 + static_cast<std::size_t>(c - '0');
      }
      const auto& arr = at->get_ref<const nlohmann::json::array_t&>();
      if (index >= arr.size()) return nullptr;
      at = &arr[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

/// A JSON value as the text captures and checks compare: a string's own text, anything
/// else its compact dump.
inline std::string text_of(const nlohmann::json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// `s` for a failure message: quoted, cut to 64 bytes (on a UTF-8 boundary) with "...".
inline std::string quote_short(std::string_view s) {
  constexpr std::size_t limit = 64;
  std::string out = "\"";
  if (s.size() <= limit) {
    out.append(s.data(), s.size());
  } else {
    std::size_t n = limit;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
      --n;
    out.append(s.data(), n);
    out += "...";
  }
  out += '"';
  return out;
}

/// The length of the longest prefix of `s` of at most `limit` bytes that ends on a UTF-8
/// character boundary.
inline std::size_t utf8_prefix(std::string_view s, std::size_t limit) noexcept {
  if (s.size() <= limit) return s.size();
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return n;
}

/// A field name whose value is a credential: an app secret, a session_key, an access or
/// refresh token, a backend's session token. Failure messages never show such values.
inline bool is_secret_name(std::string_view key) noexcept {
  std::string k;
  for (const char c : key)
    k += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  auto ends_with = [&](std::string_view t) {
    return k.size() >= t.size() && k.compare(k.size() - t.size(), t.size(), t) == 0;
  };
  return k.find("secret") != std::string::npos || ends_with("token") || ends_with("key") ||
         ends_with("ticket") || k == "password";
}

/// `s` with the value after any credential's name redacted: `"session_key":"..."` (JSON,
/// also escaped inside another JSON string), `secret=...` (a query string), `token: ...`.
/// A name is a run of letters, digits and '_' that is_secret_name; its value is what follows
/// an optional quote, ':' or '=', and an optional quote, up to the closing quote or, unquoted,
/// to the next '&', quote, backslash, space, ',', ';' or '}'.
inline std::string redact_secrets(std::string_view s) {
  auto word_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (!word_char(s[i]) || (i > 0 && word_char(s[i - 1]))) {
      out += s[i++];
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && word_char(s[j])) ++j;
    out.append(s.data() + i, j - i);
    if (!is_secret_name(s.substr(i, j - i))) {
      i = j;
      continue;
    }
    // The separator: [\]["] spaces (':' | '=') spaces, then the value's opening quote.
    std::size_t k = j;
    if (k + 1 < s.size() && s[k] == '\\' && s[k + 1] == '"') k += 2;
    else if (k < s.size() && s[k] == '"') k += 1;
    while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
    if (k >= s.size() || (s[k] != ':' && s[k] != '=')) {
      i = j;
      continue;
    }
    ++k;
    while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
    std::string_view close;
    if (k + 1 < s.size() && s[k] == '\\' && s[k + 1] == '"') close = "\\\"";
    else if (k < s.size() && s[k] == '"') close = "\"";
    k += close.size();
    std::size_t end = k;
    if (close == "\"") {
      while (end < s.size() && s[end] != '"') end += s[end] == '\\' ? 2 : 1;
    } else if (!close.empty()) {
      end = s.find(close, k);
      if (end == std::string_view::npos) end = s.size();
    } else {
      while (end < s.size() && std::string_view("&\"\\ ,;}\r\n\t").find(s[end]) == std::string_view::npos) ++end;
    }
    end = std::min(end, s.size());
    if (end == k) {  // an empty value: nothing to hide
      out.append(s.data() + j, k - j);
      i = k;
      continue;
    }
    out.append(s.data() + j, k - j);
    out += "(redacted)";
    i = end;
  }
  return out;
}

/// A piece of an answer for a report: credentials redacted (redact_secrets), then at most
/// `limit` bytes, cut on a UTF-8 boundary, with control characters and bytes that are not
/// UTF-8 shown as '?'.
inline std::string printable_sample(std::string_view raw, std::size_t limit = 160) {
  const std::string redacted = redact_secrets(raw);
  const std::string_view s = redacted;
  std::string out;
  std::size_t i = 0;
  while (i < s.size() && out.size() < limit) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (!valid || c < 0x20 || c == 0x7F) {
      out += '?';
      i += 1;
    } else {
      if (out.size() + len > limit) break;
      out.append(s.data() + i, len);
      i += len;
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

/// A JSON value for a failure message: strings quoted, others dumped; cut to 64 bytes on a
/// UTF-8 boundary.
inline std::string show(const nlohmann::json& j) {
  if (j.is_string()) return quote_short(j.get_ref<const std::string&>());
  std::string d = text_of(j);
  if (d.size() > 64) {
    d.resize(utf8_prefix(d, 64));
    d += "...";
  }
  return d;
}

/// show(), or "(redacted)" when the value sits under a credential's name (the last token of
/// its path): a check like absent($.session_key) must not print the key it found.
inline std::string show_at(const nlohmann::json& j, const std::vector<std::string>& tokens) {
  if (!tokens.empty() && is_secret_name(tokens.back())) return "(redacted)";
  return show(j);
}

using mock_wechat::detail::http1::is_tchar;  // an HTTP token's characters (mock_wechat/detail/http_text.hpp)

}  // namespace detail

inline std::string json_path_to_pointer(std::string_view path) {
  std::string pointer;
  const std::size_t n = detail::read_json_path(path, pointer);
  if (n != path.size()) {
    throw std::invalid_argument("JSONPath '" + std::string(path) + "': unexpected '" +
                                std::string(path.substr(n, 1)) + "' at offset " +
                                std::to_string(n) + " (supported: $, $.a.b, $.a[0], $['key'])");
  }
  return pointer;
}

/// `NAME=$.path`: the answer's value at the path goes into variable NAME.
struct capture {
  int slot = -1;
  std::string pointer;              // RFC 6901
  std::string source;               // as written, for messages
  std::vector<std::string> tokens;  // the pointer's unescaped tokens
};

/// Parses "token=$.token". Throws std::invalid_argument naming the bad part.
inline capture parse_capture(std::string_view spec, variables& vars) {
  const std::size_t eq = spec.find('=');
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("capture '" + std::string(spec) + "': " + why);
  };
  if (eq == std::string_view::npos) throw bad("expected NAME=$.path");
  const std::string_view name = spec.substr(0, eq);
  if (name.empty()) throw bad("expected a variable name before '='");
  for (const char c : name) {
    if (!detail::is_var_char(c)) throw bad("bad variable name (letters, digits, '_', '.', '-')");
  }
  capture c;
  try {
    c.pointer = json_path_to_pointer(spec.substr(eq + 1));
  } catch (const std::invalid_argument& e) {
    throw bad(e.what());
  }
  c.slot = vars.slot(name);
  c.source = std::string(spec.substr(eq + 1));
  c.tokens = detail::pointer_tokens(c.pointer);
  return c;
}

/// What a check asserts about the value at its path.
enum class check_kind { equals, not_equals, exists, absent };

/// A check of an answer. `expected` (raw escaping) is used by equals and not_equals.
/// With an optional variable that is not present, equals wants the field absent and
/// not_equals passes (nothing to differ from).
struct check {
  check_kind kind = check_kind::exists;
  std::string pointer;              // RFC 6901
  std::string path;                 // the JSONPath as written, for messages
  std::string source;               // the whole check as written
  std::vector<std::string> tokens;  // the pointer's unescaped tokens
  text_template expected;
};

/// Parses "$.openid==${openid}", "$.x!=lit", "exists($.token)", "absent($.error)".
/// Throws std::invalid_argument naming the bad part.
inline check parse_check(std::string_view spec, variables& vars) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("check '" + std::string(spec) + "': " + why);
  };
  check c;
  c.source = std::string(spec);
  try {
    for (const auto& [word, kind] :
         {std::pair<std::string_view, check_kind>{"exists(", check_kind::exists},
          std::pair<std::string_view, check_kind>{"absent(", check_kind::absent}}) {
      if (spec.substr(0, word.size()) != word) continue;
      if (spec.back() != ')') throw bad("expected ')' at the end");
      c.kind = kind;
      c.path = std::string(spec.substr(word.size(), spec.size() - word.size() - 1));
      c.pointer = json_path_to_pointer(c.path);
      c.tokens = detail::pointer_tokens(c.pointer);
      return c;
    }
    const std::size_t n = detail::read_json_path(spec, c.pointer);
    const std::string_view op = spec.substr(n, 2);
    if (op == "==") {
      c.kind = check_kind::equals;
    } else if (op == "!=") {
      c.kind = check_kind::not_equals;
    } else {
      throw bad("expected '==' or '!=' after the path at offset " + std::to_string(n) +
                " (or exists($.path), absent($.path))");
    }
    c.path = std::string(spec.substr(0, n));
    c.expected = text_template::compile(spec.substr(n + 2), vars, escaping::raw);
    c.tokens = detail::pointer_tokens(c.pointer);
    return c;
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).substr(0, 6) == "check ") throw;
    throw bad(e.what());
  }
}

/// One request of a virtual user's sequence, with what to take from its answer and what
/// to check in it.
struct step {
  std::string method;  // upper case, an HTTP token
  std::string name;    // for reports: the path without query, or set by the caller
  text_template path;  // starts with '/', percent escaping
  text_template body;  // json_aware
  bool has_body = false;
  std::vector<std::pair<std::string, text_template>> headers;  // raw escaping
  int expect_status = 0;                                       // 0 = any 2xx
  std::vector<capture> captures;
  std::vector<check> checks;
  /// True when a capture or a check must parse the answer.
  bool needs_json() const noexcept { return !captures.empty() || !checks.empty(); }
  /// True when the request (path, headers, body) uses `slot`; with `required`, only a use
  /// without '?' counts.
  bool sends(int slot, bool required = false) const noexcept {
    auto in = [&](const text_template& t) {
      return required ? t.uses_required(slot)
                      : std::find(t.slots().begin(), t.slots().end(), slot) != t.slots().end();
    };
    if (in(path) || in(body)) return true;
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return in(h.second); });
  }
};

/// Parses "METHOD /path [BODY]": the method (an HTTP token, upper-cased), one space, the
/// path up to the next space (starting with '/'), then optionally one space and the body
/// (the rest, a JSON template). Throws std::invalid_argument naming the part and what was
/// expected.
inline step parse_step(std::string_view spec, variables& vars) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("step '" + std::string(spec) + "': " + why);
  };
  step s;
  const std::size_t sp = spec.find(' ');
  if (sp == std::string_view::npos) throw bad("expected 'METHOD /path [BODY]'");
  const std::string_view method = spec.substr(0, sp);
  if (method.empty()) throw bad("expected a method (GET, POST ...) before the first space");
  for (const char c : method) {
    if (!detail::is_tchar(c))
      throw bad("the method '" + std::string(method) + "' is not an HTTP token");
    s.method += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  const std::size_t path_end = spec.find(' ', sp + 1);
  const std::string_view path = spec.substr(
      sp + 1, path_end == std::string_view::npos ? std::string_view::npos : path_end - sp - 1);
  if (path.empty() || path[0] != '/') {
    throw bad("expected the path (starting with '/') after one space, got '" + std::string(path) +
              "'");
  }
  for (const char c : path) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f)
      throw bad("a control character in the path");
  }
  try {
    s.path = text_template::compile(path, vars, escaping::percent);
  } catch (const std::invalid_argument& e) {
    throw bad(std::string("path: ") + e.what());
  }
  s.name = std::string(path.substr(0, path.find('?')));
  if (path_end != std::string_view::npos) {
    const std::string_view body = spec.substr(path_end + 1);
    if (!body.empty()) {
      try {
        s.body = text_template::compile(body, vars, escaping::json_aware);
      } catch (const std::invalid_argument& e) {
        throw bad(std::string("body: ") + e.what());
      }
      s.has_body = true;
    }
  }
  return s;
}

/// Parses a header "Name: value template" (raw escaping) for step::headers. Throws
/// std::invalid_argument for a bad name or a CR/LF in the text.
inline std::pair<std::string, text_template> parse_header(std::string_view spec, variables& vars) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("header '" + std::string(spec) + "': " + why);
  };
  const std::size_t colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0) throw bad("expected 'Name: value'");
  const std::string_view name = spec.substr(0, colon);
  for (const char c : name) {
    if (!detail::is_tchar(c)) throw bad("the name is not an HTTP token");
  }
  if (spec.find_first_of("\r\n") != std::string_view::npos) throw bad("CR or LF in a header");
  std::string_view text = spec.substr(colon + 1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  return {std::string(name), text_template::compile(text, vars, escaping::raw)};
}

/// Why an answer failed: kind "json", "capture" or "check"; detail short, values cut to
/// 64 bytes.
struct failure {
  std::string kind;
  std::string detail;
};

/// Runs the step's captures on the parsed answer (filling `v`, present = true), then its
/// checks; returns the first failure or nullopt. A capture whose path is absent fails
/// with kind "capture"; a check with kind "check"; a discarded (unparsable) answer of a
/// step that needs JSON with kind "json". Comparisons use a string's text, or the dump of
/// any other value. Throws nothing but std::bad_alloc.
inline std::optional<failure> apply(const step& s, const nlohmann::json& answer, values& v) {
  if (!s.needs_json()) return std::nullopt;
  if (answer.is_discarded()) return failure{"json", "the answer is not JSON"};
  for (const capture& c : s.captures) {
    const nlohmann::json* found = detail::find(answer, c.tokens);
    if (found == nullptr) return failure{"capture", c.source + " absent"};
    const auto slot = static_cast<std::size_t>(c.slot);
    if (slot >= v.size()) v.resize(slot + 1);
    v[slot].text = detail::text_of(*found);
    v[slot].present = true;
  }
  std::string expected;
  for (const check& c : s.checks) {
    const nlohmann::json* found = detail::find(answer, c.tokens);
    switch (c.kind) {
    case check_kind::exists:
      if (found == nullptr) return failure{"check", c.path + " absent"};
      break;
    case check_kind::absent:
      if (found != nullptr)
        return failure{"check", c.path + " is " + detail::show_at(*found, c.tokens) + ", expected absent"};
      break;
    case check_kind::equals:
    case check_kind::not_equals: {
      if (c.expected.has_absent_optional(v)) {
        if (c.kind == check_kind::equals && found != nullptr) {
          return failure{"check", c.path + " is " + detail::show_at(*found, c.tokens) +
                                      ", expected absent (no value for " +
                                      c.source.substr(c.path.size() + 2) + ")"};
        }
        break;
      }
      expected.clear();
      if (!c.expected.expand(v, expected)) {
        return failure{"check", c.source + ": a variable it uses is not set"};
      }
      const bool equal = found != nullptr && detail::text_of(*found) == expected;
      if (c.kind == check_kind::equals && !equal) {
        const bool secret = !c.tokens.empty() && detail::is_secret_name(c.tokens.back());
        return failure{"check", c.path +
                                    (found == nullptr ? " absent" : " is " + detail::show_at(*found, c.tokens)) +
                                    ", expected " + (secret ? std::string("(redacted)") : detail::quote_short(expected))};
      }
      if (c.kind == check_kind::not_equals && equal) {
        return failure{"check",
                       c.path + " is " + detail::show_at(*found, c.tokens) + ", expected anything else"};
      }
      break;
    }
    }
  }
  return std::nullopt;
}

}  // namespace loadtest
