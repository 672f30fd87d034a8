#include "common/duration.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("30s"), milliseconds(30000));
  EXPECT_EQ(*ParseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(*ParseDuration("2h"), milliseconds(7200000));
  EXPECT_EQ(*ParseDuration("0"), milliseconds(0));
  EXPECT_EQ(*ParseDuration("0s"), milliseconds(0));
}

TEST(DurationTest, RefusesWhatIsNotADuration) {
  for (const char* bad : {"", "s", "5", "1.5s", "-1s", "+1s", "5 s", "5sec", "1000000000s", "00"}) {
    Result<milliseconds> d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.status().message().find("expected e.g. 500ms"), std::string::npos);
  }
}

TEST(DurationTest, FormatReadsBack) {
  for (int64_t ms : {0, 1, 999, 1000, 1500, 60000, 90000, 3600000, 5400000}) {
    std::string text = FormatDuration(milliseconds(ms));
    EXPECT_EQ(*ParseDuration(text), milliseconds(ms)) << text;
  }
  EXPECT_EQ(FormatDuration(milliseconds(300000)), "5m");
}

}  // namespace
}  // namespace turnout
