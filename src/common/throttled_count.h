// ThrottledCount: counts events and says when to log about them, at most once per period, with
// the number of events since the last report. For warnings about events that may come by the
// thousand per second (refused connections, skipped health checks).
//
// Time comes in with each event (Clock::Now() of the caller), so tests drive it with ManualClock.
// Thread-safety: lock-free; any number of threads may call Add concurrently.

#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>

#include "common/clock.h"

namespace turnout {

class ThrottledCount {
 public:
  explicit ThrottledCount(Clock::Duration period = std::chrono::seconds(1)) : period_(period) {}

  // Counts one event at `now`. Returns the number of events to report (this one included) when
  // a report is due, else 0. The first event is reported at once.
  uint64_t Add(Clock::TimePoint now) {
    total_.fetch_add(1, std::memory_order_relaxed);
    unreported_.fetch_add(1, std::memory_order_relaxed);
    const int64_t now_ns = now.time_since_epoch().count();
    int64_t due = due_ns_.load(std::memory_order_relaxed);
    if (now_ns < due) return 0;
    if (!due_ns_.compare_exchange_strong(due, now_ns + period_.count(),
                                         std::memory_order_relaxed)) {
      return 0;  // another thread reports this period
    }
    return unreported_.exchange(0, std::memory_order_relaxed);
  }

  // Every event counted so far.
  uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  Clock::Duration period_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> unreported_{0};
  std::atomic<int64_t> due_ns_{INT64_MIN};
};

}  // namespace turnout
