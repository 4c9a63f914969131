// mock_wechat/world/payments.hpp - WeChat Pay payments, as getpaidunionid sees them: found
// by transaction_id or by (mch_id, out_trade_no), of use for 5 minutes after the payment
// (wechat-api.md section 4), forgotten a minute after that so that a load run paying all
// the time keeps a flat memory.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

class payment_table {
public:
  explicit payment_table(const world_limits& l) : limit_(l.payments) {
    payments_.set_limit(limit_);
    trades_.set_limit(limit_);
  }

  void clear() {
    payments_.clear();
    trades_.clear();
  }

  /// A payment by `user` in `appid` at `t`. admin_error 507 at the payments limit.
  payment_record record(const std::string& appid, const std::string& user, std::int64_t t) {
    payment_record p;
    p.transaction_id = "4200" + digits(24);
    p.mch_id = "1" + digits(9);
    p.out_trade_no = random_chars(32);
    auto stale = [t](std::int64_t paid_at) {
      return t - paid_at > limits::payment_window + 60 || t < paid_at - 86400;
    };
    const auto dead_payment = [&](const payment& e) { return stale(e.paid_at); };
    const auto dead_trade = [&](const trade& e) { return stale(e.paid_at); };
    auto& ps = payments_.of(p.transaction_id);
    std::lock_guard<std::mutex> payment_lock(ps.mutex);
    auto& ts = trades_.of(pair_key(p.mch_id, p.out_trade_no));
    std::lock_guard<std::mutex> trade_lock(ts.mutex);
    if (!make_room(ps, t, 30, dead_payment) || !make_room(ts, t, 30, dead_trade))
      throw limit_reached("payments", limit_, true);
    ps.map[p.transaction_id] = payment{appid, user, t};
    ts.map[pair_key(p.mch_id, p.out_trade_no)] = trade{p.transaction_id, t};
    return p;
  }

  /// Who paid, where and when.
  struct payment {
    std::string appid, user;
    std::int64_t paid_at = 0;
  };

  /// The payment with `transaction_id`, or else the one of (`mch_id`, `out_trade_no`), if
  /// the mock still has it.
  std::optional<payment> find(std::string_view transaction_id, std::string_view mch_id,
                              std::string_view out_trade_no) {
    std::string tid(transaction_id);
    if (tid.empty()) {
      const std::string k = pair_key(mch_id, out_trade_no);
      auto& s = trades_.of(k);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(k);
      if (it == s.map.end()) return std::nullopt;
      tid = it->second.transaction_id;
    }
    auto& s = payments_.of(tid);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(tid);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }

  std::size_t payment_count() { return payments_.size(); }
  std::size_t trade_count() { return trades_.size(); }

private:
  struct trade {
    std::string transaction_id;
    std::int64_t paid_at = 0;
  };

  static std::string digits(std::size_t n) {
    std::string d(n, '0');
    for (auto& c : d)
      c = static_cast<char>('0' + rng()() % 10);
    return d;
  }

  std::size_t limit_;
  sharded_map<payment> payments_;
  sharded_map<trade> trades_;
};

}  // namespace mock_wechat::detail
