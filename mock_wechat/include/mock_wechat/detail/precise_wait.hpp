// mock_wechat/detail/precise_wait.hpp - an epoll wait that sleeps to the microsecond where
// the kernel can. Shared by the mock's event engine and wechat-loadtest's workers.
//
// epoll_wait takes its timeout in whole milliseconds, rounded up: a loop that waits for a
// timer 0.5 ms away sleeps a whole millisecond (the mock answered `--latency fixed:0.5`
// after 1.1-1.4 ms with it, and sent a loop's delayed answers in bursts on millisecond
// steps). epoll_pwait2 (Linux 5.11, glibc 2.35) takes a timespec. Where it fails otherwise
// than EINTR (ENOSYS from an older kernel, EPERM from a sandbox's seccomp filter that does
// not know the call), the caller's flag is cleared and epoll_wait serves from then on.
#pragma once

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace mock_wechat::detail {

/// epoll_pwait2 through glibc (2.35 and later), or the raw system call where the C
/// library's headers name it (SYS_epoll_pwait2); -1 with ENOSYS where neither does. `t`
/// must not be null.
inline int epoll_pwait2_or_enosys(int ep, epoll_event* events, int max, const timespec* t) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
  return ::epoll_pwait2(ep, events, max, t, nullptr);
#elif defined(SYS_epoll_pwait2)
  // The kernel reads its own __kernel_timespec: two 64-bit fields, even where time_t is 32
  // bits (declared here: <linux/time_types.h> is not everywhere SYS_epoll_pwait2 is).
  struct {
    std::int64_t tv_sec, tv_nsec;
  } const kt{t->tv_sec, t->tv_nsec};
  return static_cast<int>(::syscall(SYS_epoll_pwait2, ep, events, max, &kt, nullptr, 0));
#else
  (void)ep, (void)events, (void)max, (void)t;
  errno = ENOSYS;
  return -1;
#endif
}

/// Waits on `ep` for at most `timeout` (not negative): as asked (the kernel's timer slack
/// aside) while `precise` holds, else in whole milliseconds rounded up (never shorter). `precise`
/// is the caller's (one per thread or loop: no synchronisation); it starts true and is cleared the
/// first time epoll_pwait2 fails otherwise than EINTR. Returns what the call returned: the number
/// of events, or -1 with errno.
inline int wait_precisely(int ep, epoll_event* events, int max, const timespec& timeout,
                          bool& precise) {
  if (precise) {
    const int n = epoll_pwait2_or_enosys(ep, events, max, &timeout);
    if (n >= 0 || errno == EINTR) return n;
    precise = false;
  }
  const std::int64_t ms = static_cast<std::int64_t>(timeout.tv_sec) * 1000 +
                          (static_cast<std::int64_t>(timeout.tv_nsec) + 999'999) / 1'000'000;
  return ::epoll_wait(ep, events, max, ms > INT_MAX ? INT_MAX : static_cast<int>(ms));
}

}  // namespace mock_wechat::detail
