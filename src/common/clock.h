// Time comes in through Clock so that time-based logic (health rise/fall, idle deadlines,
// sliding metric windows, rollout bake times) is tested with ManualClock, never with sleeps.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace turnout {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  // Monotonic time: never goes back; for intervals, deadlines and windows.
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;
  // Wall-clock time: for humans and records (history, audit), never for intervals.
  using WallTime = std::chrono::time_point<std::chrono::system_clock, Duration>;

  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual WallTime WallNow() const = 0;
  // Waits `d` of this clock's time: SystemClock blocks the calling thread, ManualClock moves its
  // time forward by `d` and returns at once. For bounded pauses between polls (an engine step
  // waiting for a drain or a database phase), never for synchronisation.
  virtual void SleepFor(Duration d) const = 0;
};

// The operating system's clocks. Thread-safe.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  void SleepFor(Duration d) const override;
  // A process-wide instance.
  static SystemClock& Get();
};

// A clock that moves only when told to (Advance, or SleepFor, which advances it). Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Duration start = std::chrono::hours(1)) : now_(start.count()) {}
  TimePoint Now() const override { return TimePoint(Duration(now_.load())); }
  WallTime WallNow() const override {
    return WallTime(std::chrono::seconds(1'700'000'000) + Duration(now_.load()));
  }
  void Advance(Duration by) { now_.fetch_add(by.count()); }
  // Advances the clock by `d` (what a sleep of `d` would have let pass) and returns at once.
  void SleepFor(Duration d) const override {
    if (d > Duration::zero()) now_.fetch_add(d.count());
  }

 private:
  mutable std::atomic<int64_t> now_;
};

}  // namespace turnout
