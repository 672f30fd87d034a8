// A mutex, its scoped lock and a condition variable that clang's thread-safety analysis
// understands (std::mutex carries no annotations in libstdc++). Members guarded by a Mutex are
// marked TURNOUT_GUARDED_BY(mu_); the clang presets then refuse code that touches them unlocked.
//
//   MutexLock lock(mu_);            // held until the end of the scope
//   while (!ready_) cv_.Wait(mu_);  // waits loop on the guarded condition themselves
//
// Waits take no predicate lambda on purpose: a lambda's body is analysed apart from its caller,
// so it could not read guarded members. Thread-safe, as a mutex is.

#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace turnout {

class TURNOUT_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() TURNOUT_ACQUIRE() { mu_.lock(); }
  void Unlock() TURNOUT_RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction. Unlock/Lock let a loop drop it around slow
// work (the analysis follows that too).
class TURNOUT_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) TURNOUT_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() TURNOUT_RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() TURNOUT_RELEASE() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() TURNOUT_ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

class CondVar {
 public:
  // Atomically releases `mu`, waits for a notification (or a spurious wake-up), then holds `mu`
  // again. Callers loop on their condition.
  void Wait(Mutex& mu) TURNOUT_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }

  // As Wait, for at most `timeout`. True when it timed out.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex& mu, std::chrono::duration<Rep, Period> timeout) TURNOUT_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    bool timed_out = cv_.wait_for(lock, timeout) == std::cv_status::timeout;
    lock.release();
    return timed_out;
  }

  // As Wait, until `deadline` (of std::chrono::steady_clock). True when it timed out.
  template <typename Duration>
  bool WaitUntil(Mutex& mu, std::chrono::time_point<std::chrono::steady_clock, Duration> deadline)
      TURNOUT_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    bool timed_out = cv_.wait_until(lock, deadline) == std::cv_status::timeout;
    lock.release();
    return timed_out;
  }

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace turnout
