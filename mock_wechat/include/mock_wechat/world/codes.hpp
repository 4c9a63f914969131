// mock_wechat/world/codes.hpp - single-use codes, one lifecycle for every kind (wx.login's
// js_code, the phone button's code, OAuth codes): issued by a device action, 32 random
// characters, alive for their lifetime (5 minutes; a website's OAuth code 10), redeemed
// once by their own app (again: 40163), forgotten when their life is over (a used code is
// kept that long, so that a reuse says 40163 rather than 40029). wechat-api.md sections
// 3, 5 and 7.
//
// How they are kept (issue 16: a load test holds millions of live codes, and a map of
// strings cost ~330 bytes a code in five heap blocks): compactly, with no allocation per
// code.
//   - The code itself, 32 characters of [A-Za-z0-9], packs into 24 bytes (6 bits each);
//     anything of another length or alphabet is no code at all (40029 without a lookup).
//     Codes are random, so their bytes, mixed once, are their hash.
//   - The strings a code stands for (appid, user...) are interned in the table's
//     string_pool: a code holds 4-byte ids. A string is kept as long as a code refers to
//     it (counted), so the pool is bounded by the codes, as the codes are by their limit.
//   - Each shard keeps its codes in trivially copyable 64-byte slots, densely in blocks of
//     1,024 (no slack beyond one block, no copy of the whole table as it grows), with an
//     open-addressing index of 4-byte slot numbers and 1-byte tags beside it (load at most
//     7/8), rebuilt when a sweep has moved the slots up. About 75 bytes per live code in
//     all (benchmarks/RESULTS.md, "Memory per live login code").
// The payload types (world.hpp) say how they pack into a slot; the table gives `check`
// the payload back as the type itself, so the world reads a code as it always did.
#pragma once

#include <wechat/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

/// A code as the tables keep it: its 32 characters of [A-Za-z0-9], 6 bits each.
using code_key = std::array<std::uint8_t, 24>;

/// Packs `code` into `out`; false for anything that cannot be a code (not 32 characters
/// of [A-Za-z0-9]): no code of any table has that shape, so it is unknown as it stands.
inline bool pack_code(std::string_view code, code_key& out) noexcept {
  if (code.size() != 32) return false;
  for (std::size_t i = 0, o = 0; i < 32; i += 4, o += 3) {
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = code[i + j];
      std::uint32_t d = 0;
      if (c >= 'A' && c <= 'Z')
        d = static_cast<std::uint32_t>(c - 'A');
      else if (c >= 'a' && c <= 'z')
        d = static_cast<std::uint32_t>(c - 'a' + 26);
      else if (c >= '0' && c <= '9')
        d = static_cast<std::uint32_t>(c - '0' + 52);
      else
        return false;
      v = (v << 6) | d;
    }
    out[o] = static_cast<std::uint8_t>(v >> 16);
    out[o + 1] = static_cast<std::uint8_t>(v >> 8);
    out[o + 2] = static_cast<std::uint8_t>(v);
  }
  return true;
}

/// A code's hash. Its bytes are random already (random_chars), but a 6-bit group never
/// holds 62 or 63: one multiply-xorshift round spreads that bias over every bit, so the
/// shard (the top 4 bits) and the index's bucket (the low bits) are even.
inline std::uint64_t code_hash(const code_key& k) noexcept {
  std::uint64_t w[3];
  std::memcpy(w, k.data(), sizeof w);
  std::uint64_t h = w[0] ^ (w[1] << 21 | w[1] >> 43) ^ (w[2] << 42 | w[2] >> 22);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/// The strings a code table's codes refer to (appids, users, scopes...), each kept once,
/// for as long as some code refers to it: a code holds a 4-byte id per string. Id 0 is
/// never given out (a packed payload's unset string).
///
/// Locking: the pool has one lock, taken through access; a code table takes it while it
/// holds one of its shards' locks, never the other way round.
class string_pool {
public:
  using id = std::uint32_t;

  /// The pool under its lock.
  class access {
  public:
    explicit access(string_pool& p) : p_(p), lock_(p.mutex_) {}
    /// `s`'s id, counting one more reference to it. May throw (std::bad_alloc) for a
    /// string not in the pool yet; then nothing changed.
    id intern(std::string_view s) {
      thread_local std::string key;  // no allocation per lookup once warm
      key.assign(s);
      if (const auto it = p_.ids_.find(key); it != p_.ids_.end()) {
        ++p_.entries_[it->second].refs;
        return it->second;
      }
      if (p_.entries_.empty()) p_.entries_.push_back(entry{});  // id 0: none
      id i = 0;
      if (p_.free_.empty()) {
        if (p_.entries_.size() > UINT32_MAX - 1) throw std::length_error("string_pool: full");
        // what can throw comes first; free_ has room for every id, so release() never
        // allocates
        grow(p_.entries_);
        if (p_.free_.capacity() < p_.entries_.capacity()) p_.free_.reserve(p_.entries_.capacity());
        i = static_cast<id>(p_.entries_.size());
        const auto node = p_.ids_.emplace(key, i).first;
        p_.entries_.push_back(entry{&node->first, 1});
      } else {
        i = p_.free_.back();
        const auto node = p_.ids_.emplace(key, i).first;
        p_.free_.pop_back();
        p_.entries_[i] = entry{&node->first, 1};
      }
      return i;
    }
    /// One reference fewer to `i` (0: none); the string goes with its last reference.
    void release(id i) noexcept {
      if (i == 0) return;
      entry& e = p_.entries_[i];
      if (--e.refs != 0) return;
      p_.ids_.erase(p_.ids_.find(*e.text));  // by iterator: the key is the node's own
      e = entry{};
      p_.free_.push_back(i);  // room reserved by intern()
    }
    /// The string of a referenced id; valid while the lock is held.
    std::string_view operator[](id i) const noexcept { return *p_.entries_[i].text; }
    /// Forgets every string (the table forgot every code, under every shard's lock).
    void clear() noexcept {  // swapped out, so that the memory goes too
      std::unordered_map<std::string, id>().swap(p_.ids_);
      std::vector<entry>().swap(p_.entries_);
      std::vector<id>().swap(p_.free_);
    }
    std::size_t size() const noexcept { return p_.ids_.size(); }

  private:
    // Room for one more element, doubling (reserve(size + 1) would copy at every call).
    template <class V> static void grow(V& v) {
      if (v.size() == v.capacity()) v.reserve(std::max<std::size_t>(16, 2 * v.capacity()));
    }
    string_pool& p_;
    std::lock_guard<std::mutex> lock_;
  };
  access lock() { return access(*this); }

private:
  struct entry {
    const std::string* text = nullptr;  ///< the key in ids_ (nodes do not move)
    std::uint32_t refs = 0;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, id> ids_;
  std::vector<entry> entries_;  ///< by id
  std::vector<id> free_;        ///< ids to give out again; capacity for every id
};

/// One shard of a code table: slots in blocks, an index over them, and what make_room()
/// and sweep() (sharded_map.hpp) need: the lock, full(), next_sweep, forced_at, erase_if().
/// `Packed`'s first member is `strings`, the pool ids it holds (released as a slot goes).
template <class Packed> class code_shard {
public:
  struct slot {
    code_key key;
    std::int64_t issued;
    Packed data;
    bool used;
  };
  static_assert(std::is_trivially_copyable_v<slot>, "slots are moved as bytes");
  static_assert(sizeof(slot) <= 64, "a payload packs into at most 24 bytes");

  std::mutex mutex;
  std::int64_t next_sweep = 0;
  std::size_t limit = SIZE_MAX;        ///< this shard's share of the table's limit
  std::int64_t forced_at = INT64_MIN;  ///< when make_room last swept it at the limit
  string_pool* pool = nullptr;         ///< the table's, for what erased slots held

  bool full() const noexcept { return count_ >= limit; }
  std::size_t size() const noexcept { return count_; }

  /// The slot of `k` (hash `h`), or nullptr.
  slot* find(const code_key& k, std::uint64_t h) noexcept {
    if (buckets_ == 0) return nullptr;
    const std::uint8_t tag = tag_of(h);
    for (std::size_t b = h & (buckets_ - 1);; b = (b + 1) & (buckets_ - 1)) {
      if (tags_[b] == 0) return nullptr;  // load <= 7/8: there is always an empty bucket
      if (tags_[b] == tag) {
        slot& s = at(index_[b]);
        if (s.key == k) return &s;
      }
    }
  }

  /// Room for one more slot (a block, a larger index): may throw (std::bad_alloc; past
  /// 2^32 slots in a shard, std::length_error), and then nothing changed. After it, add()
  /// cannot fail.
  void reserve_one() {
    if (count_ >= UINT32_MAX) throw std::length_error("code_shard: full");  // 4-byte numbers
    if (count_ == blocks_.size() * block_slots)
      blocks_.push_back(std::make_unique<slot[]>(block_slots));
    if (count_ + 1 > max_load(buckets_)) rebuild(buckets_ == 0 ? min_buckets : 2 * buckets_);
  }

  /// A new slot for `k` (not in the shard), after reserve_one(); the caller fills it.
  slot& add(const code_key& k, std::uint64_t h) noexcept {
    place(h, count_);
    slot& s = at(count_++);
    s.key = k;
    return s;
  }

  /// Erases the slots for which dead(slot) holds, releasing what they held in the pool.
  /// The slots left move up to stay dense, so the index is rebuilt (the scan costs as
  /// much), smaller when it is under a quarter full.
  template <class Dead> void erase_if(Dead&& dead) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      slot& s = at(i);
      if (dead(static_cast<const slot&>(s))) {
        auto p = pool->lock();
        for (const string_pool::id held : s.data.strings)
          p.release(held);
      } else {
        if (kept != i) at(kept) = s;
        ++kept;
      }
    }
    if (kept == count_) return;
    count_ = kept;
    // the blocks in use, and one spare so that a shard near a block's edge does not
    // allocate and free one at every sweep
    while (blocks_.size() > (count_ + block_slots - 1) / block_slots + 1)
      blocks_.pop_back();
    std::size_t want = buckets_;
    while (want > min_buckets && count_ < want / 4)
      want /= 2;
    reindex(want);
  }

  /// Forgets every slot and gives their memory back (the table's clear()).
  void clear() noexcept {
    std::vector<std::unique_ptr<slot[]>>().swap(blocks_);
    std::vector<std::uint32_t>().swap(index_);
    std::vector<std::uint8_t>().swap(tags_);
    count_ = 0;
    buckets_ = 0;
    next_sweep = 0;
  }

private:
  static constexpr std::size_t block_slots = 1024;  // 64 KiB: from the heap, not mmap
  static constexpr std::size_t min_buckets = 16;
  static std::size_t max_load(std::size_t buckets) noexcept { return buckets / 8 * 7; }
  // 7 bits of the hash that neither the shard (top 4) nor a bucket (low bits) uses, with
  // the top bit set: 0 is an empty bucket.
  static std::uint8_t tag_of(std::uint64_t h) noexcept {
    return static_cast<std::uint8_t>(0x80 | ((h >> 45) & 0x7f));
  }

  slot& at(std::size_t i) noexcept { return blocks_[i / block_slots][i % block_slots]; }

  void place(std::uint64_t h, std::size_t i) noexcept {
    std::size_t b = h & (buckets_ - 1);
    while (tags_[b] != 0)
      b = (b + 1) & (buckets_ - 1);
    tags_[b] = tag_of(h);
    index_[b] = static_cast<std::uint32_t>(i);
  }

  // A new index of `buckets` (a power of two), over the slots there are.
  void rebuild(std::size_t buckets) {
    std::vector<std::uint32_t> index(buckets);
    std::vector<std::uint8_t> tags(buckets);
    index_.swap(index);
    tags_.swap(tags);
    buckets_ = buckets;
    reindex_in_place();
  }
  // After a sweep moved slots: the index again, smaller if it can be; a sweep must not
  // fail half done, so when no smaller index can be had, the current one is reused.
  void reindex(std::size_t buckets) {
    if (buckets != buckets_) {
      try {
        rebuild(buckets);
        return;
      } catch (const std::bad_alloc&) {
      }
    }
    reindex_in_place();
  }
  void reindex_in_place() noexcept {
    std::fill(tags_.begin(), tags_.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < count_; ++i)
      place(code_hash(at(i).key), i);
  }

  std::vector<std::unique_ptr<slot[]>> blocks_;  ///< slots [0, count_) are in use
  std::size_t count_ = 0;
  std::vector<std::uint32_t> index_;  ///< bucket -> slot number, where tags_ is not 0
  std::vector<std::uint8_t> tags_;
  std::size_t buckets_ = 0;  ///< 0 or a power of two
};

/// The codes of one kind; `Payload` is what the code stands for (it holds the `appid` the
/// code was issued to). A Payload says how a slot keeps it:
///   struct packed                 trivially copyable, at most 24 bytes; its first member
///                                 `std::array<string_pool::id, N> strings`, strings[0]
///                                 the appid; optionally a `lifetime` (seconds)
///   void pack(packed&, string_pool::access&) const    fills it, interning its strings (if
///                                 it throws, the table releases the ids it had set)
///   void unpack(const packed&, const string_pool::access&)   every member back, exactly
template <class Payload> class code_table {
  using packed = typename Payload::packed;
  using shard = code_shard<packed>;
  using slot = typename shard::slot;
  static constexpr std::size_t shards = 16;  // of() takes the hash's top 4 bits

public:
  /// `what` names the codes in the admin API's 507 ("login codes").
  code_table(const char* what, std::size_t limit) : what_(what), limit_(limit) {
    for (auto& s : shards_) {
      s.limit = std::max<std::size_t>(1, (limit + shards - 1) / shards);
      s.pool = &pool_;
    }
  }

  /// A new code at `t`, standing for what `make()` returns. `make` runs once there is
  /// room (so a refusal at the limit, admin_error 507, leaves nothing half done) and may
  /// itself throw. The code lives limits::code_lifetime, or the payload's `lifetime`
  /// member when it has one (a website's OAuth code).
  template <class Make> std::string issue(std::int64_t t, Make&& make) {
    std::string code = random_chars(32);
    code_key k{};
    pack_code(code, k);  // always a code: 32 characters of [A-Za-z0-9]
    const std::uint64_t h = code_hash(k);
    shard& s = of(h);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto dead = [t](const slot& c) {
      return t - c.issued > lifetime_of(c.data, 0) || t < c.issued - 86400;  // or clock back
    };
    if (!make_room(s, t, 30, dead)) throw limit_reached(what_, limit_, true);
    const Payload data = make();  // before the insert: if it throws, no code was made
    s.reserve_one();
    packed p{};
    {
      auto pool = pool_.lock();
      try {
        data.pack(p, pool);
      } catch (...) {
        for (const string_pool::id held : p.strings)
          pool.release(held);
        throw;
      }
      slot* e = s.find(k, h);
      if (e != nullptr) {  // the same 32 random characters twice: the new code wins
        for (const string_pool::id held : e->data.strings)
          pool.release(held);
      } else {
        e = &s.add(k, h);
      }
      e->issued = t;
      e->data = p;
      e->used = false;
    }
    return code;
  }

  /// Redeems `code` for `appid` at `t`, WeChat's checks in WeChat's order: unknown or past
  /// its life, 40029; issued to another app, `other_app` (40029 for a login or OAuth code,
  /// 40013 for a phone code); used, 40163; then `check(payload)` may refuse with its own
  /// errcode (api_errc{} to accept). `check` runs under the code's lock, so two exchanges
  /// of one code never both pass. Accepted: the code is used from now on.
  template <class Check>
  outcome<done> redeem(std::string_view code, std::string_view appid, std::int64_t t,
                       wechat::api_errc other_app, Check&& check) {
    code_key k{};
    if (!pack_code(code, k)) return outcome<done>::fail(wechat::api_errc::invalid_code);
    const std::uint64_t h = code_hash(k);
    shard& s = of(h);
    std::lock_guard<std::mutex> lock(s.mutex);
    slot* e = s.find(k, h);
    if (e == nullptr || t - e->issued >= lifetime_of(e->data, 0))
      return outcome<done>::fail(wechat::api_errc::invalid_code);
    // the payload as its own type, for `check`: rebuilt in a per-thread value, so that
    // once warm a redemption allocates nothing (check runs on this thread, and never
    // redeems a code itself)
    thread_local Payload view;
    {
      auto pool = pool_.lock();
      if (pool[e->data.strings[0]] != appid) return outcome<done>::fail(other_app);
      if (e->used) return outcome<done>::fail(wechat::api_errc::code_been_used);
      view.unpack(e->data, pool);
    }
    const wechat::api_errc refused = check(static_cast<const Payload&>(view));
    if (refused != wechat::api_errc{}) return outcome<done>::fail(refused);
    e->used = true;
    return {};
  }

  /// Whether `code` is a code of this kind within its life at `t` (used or not, of any
  /// app): getpluginopenpid tells a wx.login code from an unknown one (1007, not 40029).
  bool known(std::string_view code, std::int64_t t) {
    code_key k{};
    if (!pack_code(code, k)) return false;
    const std::uint64_t h = code_hash(k);
    shard& s = of(h);
    std::lock_guard<std::mutex> lock(s.mutex);
    const slot* e = s.find(k, h);
    return e != nullptr && t - e->issued < lifetime_of(e->data, 0);
  }

  /// Makes a redeemed code usable again (the exchange could not be completed).
  void unredeem(std::string_view code) {
    code_key k{};
    if (!pack_code(code, k)) return;
    const std::uint64_t h = code_hash(k);
    shard& s = of(h);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (slot* e = s.find(k, h)) e->used = false;
  }

  /// Forgets every code and every string they held. Under every shard's lock at once (in
  /// order; nothing else holds two), so no issue() is between interning and inserting.
  void clear() {
    std::array<std::unique_lock<std::mutex>, shards> locks;
    for (std::size_t i = 0; i < shards; ++i)
      locks[i] = std::unique_lock<std::mutex>(shards_[i].mutex);
    pool_.lock().clear();
    for (auto& s : shards_)
      s.clear();
  }
  std::size_t size() {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mutex);
      n += s.size();
    }
    return n;
  }

private:
  // A payload's own lifetime, if it has one; else every code's 5 minutes.
  template <class P>
  static auto lifetime_of(const P& p, int) noexcept -> decltype(std::int64_t{p.lifetime}) {
    return p.lifetime;
  }
  template <class P> static std::int64_t lifetime_of(const P&, long) noexcept {
    return limits::code_lifetime;
  }

  shard& of(std::uint64_t h) noexcept { return shards_[h >> 60]; }

  const char* what_;
  std::size_t limit_;
  string_pool pool_;
  std::array<shard, shards> shards_;
};

}  // namespace mock_wechat::detail
