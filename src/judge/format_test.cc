#include "judge/format.h"

#include <gtest/gtest.h>

#include "judge/judge_json.h"

namespace turnout::judge {
namespace {

TEST(Format, CountsPercentsLatencies) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatPercent(0.05), "5%");
  EXPECT_EQ(FormatPercent(0.0005), "0.05%");
  EXPECT_EQ(FormatLatencyUs(850), "850us");
  EXPECT_EQ(FormatLatencyUs(450'000), "450ms");
  EXPECT_EQ(FormatLatencyUs(2'100'000), "2.1s");
  EXPECT_EQ(FormatStatistic(Statistic::kRequestRate, 0.5), "0.5/s");
  EXPECT_EQ(FormatStatistic(Statistic::kErrorRate, 1.0), "100%");
  EXPECT_EQ(FormatFor(std::chrono::milliseconds(120'000)), "2m");
}

TEST(JudgeJson, TextNeverThrowsOnBadUtf8) {
  RuleResult r;
  r.name = "bad \xff\xfe name";
  r.expr = "health failing";
  r.state = RuleState::kInsufficientData;
  std::string text = ToJsonText(ToJson(r, Clock::TimePoint{}));
  EXPECT_NE(text.find("\"state\":\"insufficient_data\""), std::string::npos) << text;
  EXPECT_NE(text.find("\xef\xbf\xbd"), std::string::npos) << text;  // U+FFFD
  EXPECT_EQ(text.find("pending_for_ms"), std::string::npos);
}

}  // namespace
}  // namespace turnout::judge
