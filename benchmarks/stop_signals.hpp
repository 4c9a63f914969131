// The benchmark servers' lifetime: block SIGINT/SIGTERM before any thread starts (so
// every thread inherits the mask and the signal waits for sigwait), ignore SIGPIPE, then
// serve until one of them arrives.
#pragma once

#include <csignal>

#include <pthread.h>

namespace bench {

/// Call first in main(), before any thread exists.
inline sigset_t block_stop_signals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop;
}

/// Returns once SIGINT or SIGTERM has arrived.
inline void wait_for_stop(const sigset_t& stop) {
  int sig = 0;
  sigwait(&stop, &sig);
}

}  // namespace bench
