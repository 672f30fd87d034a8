#include "common/throttled_count.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

using std::chrono::milliseconds;

TEST(ThrottledCountTest, ReportsAtOnceThenAtMostOncePerPeriodWithTheCountSinceTheLastReport) {
  ManualClock clock;
  ThrottledCount count;
  EXPECT_EQ(count.Add(clock.Now()), 1u);
  for (int i = 0; i < 99; ++i) {
    clock.Advance(milliseconds(5));
    EXPECT_EQ(count.Add(clock.Now()), 0u) << i;
  }
  clock.Advance(milliseconds(600));  // 1.095 s after the first report
  EXPECT_EQ(count.Add(clock.Now()), 100u);
  EXPECT_EQ(count.Add(clock.Now()), 0u);
  EXPECT_EQ(count.total(), 102u);
}

}  // namespace
}  // namespace turnout
