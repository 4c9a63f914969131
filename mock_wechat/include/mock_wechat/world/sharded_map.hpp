// mock_wechat/world/sharded_map.hpp - how the world stores things: maps split into 16
// shards, each with its own lock and its own share of a limit, swept of what time has
// killed (docs/bounds.md). Every part of the world keeps its tables in these.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mock_wechat::detail {

/// A map from string keys to V in N shards, each locked on its own (a lookup locks one).
template <class V, std::size_t N = 16> class sharded_map {
public:
  struct shard {
    std::mutex mutex;
    std::unordered_map<std::string, V> map;
    std::int64_t next_sweep = 0;
    std::size_t limit = SIZE_MAX;        ///< this shard's share of the map's limit
    std::int64_t forced_at = INT64_MIN;  ///< when make_room last swept it at the limit
    bool full() const noexcept { return map.size() >= limit; }
    /// Whether `key` may be set: it is there already, or the shard is below its limit.
    bool room_for(const std::string& key) const { return !full() || map.count(key) != 0; }
    /// Erases the entries for which dead(value) holds (sweep()'s scan).
    template <class Dead> void erase_if(Dead&& dead) {
      for (auto it = map.begin(); it != map.end();) {
        if (dead(static_cast<const V&>(it->second)))
          it = map.erase(it);
        else
          ++it;
      }
    }
  };
  shard& of(std::string_view key) { return shards_[std::hash<std::string_view>{}(key) % N]; }
  /// At most about `total` entries in all: each of the N shards holds at most
  /// ceil(total / N), at least 1 (keys spread evenly over the shards).
  void set_limit(std::size_t total) {
    for_each_shard([&](shard& s) { s.limit = std::max<std::size_t>(1, (total + N - 1) / N); });
  }
  template <class F> void for_each_shard(F&& f) {
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mutex);
      f(s);
    }
  }
  void clear() {
    for_each_shard([](shard& s) {
      s.map.clear();
      s.next_sweep = 0;
    });
  }
  std::size_t size() {
    std::size_t n = 0;
    for_each_shard([&](shard& s) { n += s.map.size(); });
    return n;
  }

private:
  std::array<shard, N> shards_;
};

// Erases a shard's entries for which dead(v) holds, at most every `every` seconds of the
// world's clock, and at once when the clock was moved back (the next sweep would
// otherwise wait for it to catch up). The caller holds the shard's lock. A Shard is
// sharded_map's, or any with next_sweep, forced_at, full() and erase_if(dead) (the code
// tables' compact shards, codes.hpp).
template <class Shard, class Dead>
void sweep(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead) {
  if (now < s.next_sweep && s.next_sweep - now <= every) return;
  s.next_sweep = now + every;
  s.erase_if(dead);
}

// Before an insert into a shard: the periodic sweep of what dead() says (every `every`
// seconds), then, at the limit, a sweep now of what dead_when_full() says (tokens: also
// those dead but kept to answer 42001), and whether there is room. Entries die only as the
// clock moves, so a shard still full is not swept again until it has: at the limit an
// insert costs one scan per clock second, not one per attempt. The caller holds the
// shard's lock.
template <class Shard, class Dead, class DeadWhenFull>
bool make_room(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead,
               DeadWhenFull&& dead_when_full) {
  sweep(s, now, every, dead);
  if (!s.full()) return true;
  if (s.forced_at == now) return false;
  s.forced_at = now;
  const std::int64_t next = s.next_sweep;
  s.next_sweep = 0;
  sweep(s, now, 0, dead_when_full);
  s.next_sweep = next;
  return !s.full();
}
template <class Shard, class Dead>
bool make_room(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead) {
  return make_room(s, now, every, dead, dead);
}

// The key of a pair ("a\nb"), written into `k` (a reused buffer: no allocation once warm).
inline void pair_key(std::string& k, std::string_view a, std::string_view b) {
  k.reserve(a.size() + b.size() + 1);
  k.assign(a).push_back('\n');
  k.append(b);
}

inline std::string pair_key(std::string_view a, std::string_view b) {
  std::string k;
  pair_key(k, a, b);
  return k;
}

}  // namespace mock_wechat::detail
