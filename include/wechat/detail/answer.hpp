// wechat/detail/answer.hpp - one answer of WeChat's, read once: the body is validated in the
// grammar of nlohmann::json::parse (json_reader::dom_compatible) and its top-level members
// are noted where they lie, without building a DOM. The fields of a flat answer (the
// errcode, code2session's openid and session_key, a token) are decoded from the body when
// asked for; a call whose answer nests (a phone number, a key list) asks for json(), the
// DOM, parsed then and only then. A login thus allocates its body and the strings it
// takes out, not nlohmann's map, nodes and token buffers: up to 8 members are noted in
// place, more in a vector (benchmarks/RESULTS.md, run 10). Whatever the body, reading it
// keeps at most about 24 bytes per body byte live (40-byte members for 5-byte `"":0,`, in
// a vector while it doubles) and 3 per level of nesting; the transport caps the body
// (max_response_bytes). tests/answer_bounds_test.cpp measures both.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "wechat/detail/json_reader.hpp"

namespace wechat::detail {

class answer {
public:
  /// What a top-level member's value is.
  enum class kind : unsigned char { string, integer, number, boolean, null, object, array };

  /// A top-level member: its key and its value's text, as offsets (the body may move).
  struct member {
    std::size_t key_at = 0, key_size = 0;  // into the body, or into the decoded keys
    std::size_t at = 0, size = 0;          // the value's text, quotes included
    kind type = kind::null;
    bool key_decoded = false;  // the key had an escape: it lies in decoded_keys_
    bool escaped = false;      // a string value with an escape (else its text is its value)
  };

  /// What reading the body found.
  enum class shape { object, not_object, not_json };

  answer() = default;
  /// A moved-from answer is empty (no text, no members), not a table of another's text.
  answer(answer&& o) noexcept { take(o); }
  answer& operator=(answer&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }
  answer(const answer&) = delete;
  answer& operator=(const answer&) = delete;

  /// Reads `body`, which the answer keeps: an object's members are noted; anything else is
  /// only validated.
  static answer read(std::string body, shape& found) {
    answer a;
    a.text_ = std::move(body);
    found = a.scan();
    if (found != shape::object) a.clear_members();
    return a;
  }

  /// The last member named `name` (the last one wins, as in nlohmann's DOM), or null.
  const member* find(std::string_view name) const noexcept {
    for (std::size_t i = more_.size(); i-- > 0;)
      if (key(more_[i]) == name) return &more_[i];
    for (std::size_t i = inline_count_; i-- > 0;)
      if (key(inline_[i]) == name) return &inline_[i];
    return nullptr;
  }

  /// Calls f(key, member) for each member noted, in the body's order (duplicates too).
  template <class F> void each_member(F&& f) const {
    for (std::size_t i = 0; i < inline_count_; ++i)
      f(key(inline_[i]), inline_[i]);
    for (const auto& m : more_)
      f(key(m), m);
  }

  /// A member's value text: a string with its quotes, a number as written.
  std::string_view text(const member& m) const noexcept {
    return std::string_view(text_).substr(m.at, m.size);
  }

  /// A string member's value, decoded into `out`.
  void string_value(const member& m, std::string& out) const {
    if (!m.escaped) {
      out.assign(text_, m.at + 1, m.size - 2);
      return;
    }
    json_reader r(text(m));  // validated already: cannot fail
    r.string(out);
  }

  /// The whole body as nlohmann's DOM, parsed at the first call (an answer that is not an
  /// object, or none: null). Not thread-safe, though const: an answer belongs to the one
  /// call that reads it.
  const nlohmann::json& json() const {
    if (!dom_) {
      dom_ = std::make_unique<nlohmann::json>(
          members_found_ ? nlohmann::json::parse(text_, nullptr, false) : nlohmann::json());
      if (dom_->is_discarded()) *dom_ = nullptr;
    }
    return *dom_;
  }

private:
  std::string_view key(const member& m) const noexcept {
    return std::string_view(m.key_decoded ? decoded_keys_ : text_).substr(m.key_at, m.key_size);
  }

  void take(answer& o) noexcept {
    text_ = std::move(o.text_);
    // Only the members in use: an answer moves a few times per call, and a login's has four.
    std::copy_n(o.inline_.begin(), o.inline_count_, inline_.begin());
    inline_count_ = o.inline_count_;
    more_ = std::move(o.more_);
    decoded_keys_ = std::move(o.decoded_keys_);
    members_found_ = o.members_found_;
    dom_ = std::move(o.dom_);
    o.text_.clear();
    o.clear_members();
  }

  void clear_members() noexcept {
    inline_count_ = 0;
    more_.clear();
    decoded_keys_.clear();
    members_found_ = false;
  }

  void add(const member& m) {
    if (inline_count_ < inline_.size())
      inline_[inline_count_++] = m;
    else
      more_.push_back(m);
  }

  shape scan() {
    json_reader r(text_, json_reader::dom_compatible);
    if (r.peek() != '{') {
      const bool valid = r.skip_any() && r.finish();
      return valid ? shape::not_object : shape::not_json;
    }
    const bool read = r.object([&](std::string_view k) {
      member m;
      // The key: a view into the body, unless it was decoded (the reader's own buffer).
      if (r.key_decoded()) {
        m.key_decoded = true;
        m.key_at = decoded_keys_.size();
        decoded_keys_.append(k);
      } else {
        m.key_at = static_cast<std::size_t>(k.data() - text_.data());
      }
      m.key_size = k.size();
      const char c = r.peek();
      m.at = r.offset();
      bool ok = false;
      switch (c) {
      case '"':
        m.type = kind::string;
        ok = r.skip_string(m.escaped);
        break;
      case '{':
      case '[':
      case 't':
      case 'f':
      case 'n':
        m.type = c == '{'   ? kind::object
                 : c == '[' ? kind::array
                 : c == 'n' ? kind::null
                            : kind::boolean;
        ok = r.skip_any();
        break;
      default: {
        bool integral = true;
        ok = r.skip_number(integral);
        m.type = integral ? kind::integer : kind::number;
      }
      }
      if (!ok) return;  // the reader failed: object() stops
      m.size = r.offset() - m.at;
      add(m);
    });
    if (!read || !r.finish()) return shape::not_json;
    members_found_ = true;
    return shape::object;
  }

  std::string text_;
  std::array<member, 8> inline_{};  // most answers have fewer members than this
  std::size_t inline_count_ = 0;
  std::vector<member> more_;
  std::string decoded_keys_;  // keys that had an escape ("open\u0069d"), decoded
  bool members_found_ = false;
  mutable std::unique_ptr<nlohmann::json> dom_;
};

}  // namespace wechat::detail
