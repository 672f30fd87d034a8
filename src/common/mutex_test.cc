#include "common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace turnout {
namespace {

using namespace std::chrono_literals;

TEST(CondVar, WaitForSaysItTimedOutWhenNobodyNotifies) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(mu);
  EXPECT_TRUE(cv.WaitFor(mu, 1ms));
}

TEST(CondVar, AWaiterSeesTheChangeMadeUnderTheMutex) {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu (a local cannot carry the annotation)
  std::thread setter([&] {
    MutexLock lock(mu);
    ready = true;
    cv.NotifyAll();
  });
  {
    MutexLock lock(mu);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ready && !cv.WaitUntil(mu, deadline)) {
    }
    EXPECT_TRUE(ready);
  }
  setter.join();
}

TEST(MutexLock, UnlockLetsAnotherThreadInAndLockTakesItBack) {
  Mutex mu;
  int value = 0;
  MutexLock lock(mu);
  lock.Unlock();
  std::thread other([&] {
    MutexLock inner(mu);
    value = 1;
  });
  other.join();
  lock.Lock();
  EXPECT_EQ(value, 1);
}

}  // namespace
}  // namespace turnout
