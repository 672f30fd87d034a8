#include "common/clock.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

using namespace std::chrono_literals;

TEST(ClockTest, ManualClockSleepMovesItsTimeAndReturnsAtOnce) {
  ManualClock clock;
  const Clock& as_clock = clock;
  const Clock::TimePoint before = clock.Now();
  const Clock::WallTime wall_before = clock.WallNow();
  const auto real_before = std::chrono::steady_clock::now();
  as_clock.SleepFor(90s);
  EXPECT_EQ(clock.Now() - before, Clock::Duration(90s));
  EXPECT_EQ(clock.WallNow() - wall_before, Clock::Duration(90s));
  EXPECT_LT(std::chrono::steady_clock::now() - real_before, 1s);
  as_clock.SleepFor(-5s);  // nothing to wait: time never goes back
  EXPECT_EQ(clock.Now() - before, Clock::Duration(90s));
}

TEST(ClockTest, SystemClockSleepWaitsAtLeastTheDuration) {
  const Clock& clock = SystemClock::Get();
  const Clock::TimePoint before = clock.Now();
  clock.SleepFor(5ms);
  EXPECT_GE(clock.Now() - before, Clock::Duration(5ms));
}

}  // namespace
}  // namespace turnout
