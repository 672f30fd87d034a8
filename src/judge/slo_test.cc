#include "judge/slo.h"

#include <gtest/gtest.h>

#include "judge/judge_json.h"

namespace turnout::judge {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(Slo, ErrorBudgetFromCounts) {
  // 99.95 % of 1,000,000 requests allows 500 bad ones; 125 spent leaves 75 %.
  ErrorBudget b = ComputeErrorBudget(0.9995, EventCounts{1'000'000, 1'000'000 - 125});
  EXPECT_NEAR(b.allowed_bad, 500, 1e-6);
  EXPECT_EQ(b.bad, 125u);
  EXPECT_NEAR(b.remaining, 0.75, 1e-9);
  EXPECT_NEAR(b.good_share, 0.999875, 1e-12);

  ErrorBudget over = ComputeErrorBudget(0.9995, EventCounts{1'000'000, 1'000'000 - 1000});
  EXPECT_NEAR(over.remaining, -1.0, 1e-9);  // spent twice over

  ErrorBudget none = ComputeErrorBudget(0.9995, EventCounts{});
  EXPECT_EQ(none.remaining, 1.0);
  EXPECT_EQ(none.bad, 0u);

  nlohmann::json j = ToJson(b);
  EXPECT_EQ(j["bad"], 125);
  EXPECT_NEAR(j["remaining"].get<double>(), 0.75, 1e-9);
}

TEST(Slo, DescribeAndTimeToExhaustion) {
  SloObjective o{.name = "availability"};
  ErrorBudget b = ComputeErrorBudget(0.9995, EventCounts{1'000'000, 1'000'000 - 125});
  EXPECT_EQ(DescribeErrorBudget(o, b),
            "availability: 99.99% good over 720h (target 99.95%), 75% of the error budget left "
            "(125 of 500 bad events)");
  // 75 % of a 30-day budget at 14.4x lasts 0.75 * 30 d / 14.4 = 37.5 h.
  EXPECT_EQ(TimeToExhaustion(b, o.period, 14.4), std::chrono::seconds(37 * 3600 + 1800));
  EXPECT_EQ(TimeToExhaustion(b, o.period, 0), std::nullopt);
  ErrorBudget spent = ComputeErrorBudget(0.9995, EventCounts{1'000'000, 1'000'000 - 1000});
  EXPECT_EQ(TimeToExhaustion(spent, o.period, 1), std::chrono::seconds(0));
  EXPECT_NE(DescribeErrorBudget(o, spent).find("error budget overspent by 100%"),
            std::string::npos);
}

TEST(Slo, BurnRate) {
  EXPECT_NEAR(BurnRate(0.999, EventCounts{10'000, 9'990}), 1.0, 1e-9);
  EXPECT_NEAR(BurnRate(0.999, EventCounts{10'000, 9'856}), 14.4, 1e-9);
  EXPECT_EQ(BurnRate(0.999, EventCounts{}), 0.0);
}

TEST(Slo, CountEventsForAvailabilityAndLatency) {
  metrics::Counters c;
  c.requests = 1000;
  c.by_class[2] = 990;
  c.by_class[5] = 10;
  metrics::Histogram::Counts lat;
  lat.buckets.assign(metrics::Histogram::kBuckets, 0);
  lat.buckets[metrics::Histogram::BucketIndex(50'000)] = 940;  // 50 ms
  lat.buckets[metrics::Histogram::BucketIndex(250'000)] = 60;  // 250 ms
  lat.count = 1000;

  SloObjective availability{.name = "availability"};
  EventCounts a = CountEvents(availability, c, lat);
  EXPECT_EQ(a.total, 1000u);
  EXPECT_EQ(a.good, 990u);

  SloObjective latency{.name = "p95-under-100ms",
                       .kind = SloObjective::Kind::kLatency,
                       .target = 0.95,
                       .latency_threshold_us = 100'000};
  ASSERT_TRUE(ValidateSloObjective(latency).ok());
  EventCounts l = CountEvents(latency, c, lat);
  EXPECT_EQ(l.total, 1000u);
  EXPECT_EQ(l.good, 940u);
  // 6 % slow against an allowed 5 %: budget overspent by a fifth.
  EXPECT_NEAR(ComputeErrorBudget(latency.target, l).remaining, -0.2, 1e-9);
}

TEST(Slo, Validation) {
  EXPECT_TRUE(ValidateSloObjective(SloObjective{.name = "a"}).ok());
  EXPECT_FALSE(ValidateSloObjective(SloObjective{.name = "a", .target = 1.0}).ok());
  EXPECT_FALSE(ValidateSloObjective(SloObjective{.name = "a", .target = 0}).ok());
  EXPECT_FALSE(ValidateSloObjective(SloObjective{.name = "a", .period = seconds(0)}).ok());
  EXPECT_FALSE(
      ValidateSloObjective(SloObjective{.name = "l", .kind = SloObjective::Kind::kLatency}).ok());
}

TEST(Slo, MultiWindowBurnRateAlertsNeedBothWindows) {
  std::vector<BurnRateAlert> alerts = DefaultBurnRateAlerts();
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(alerts[0].long_window, hours(1));
  EXPECT_EQ(alerts[0].short_window, minutes(5));
  EXPECT_DOUBLE_EQ(alerts[0].factor, 14.4);
  EXPECT_EQ(alerts[1].long_window, hours(6));
  EXPECT_EQ(alerts[1].short_window, minutes(30));
  EXPECT_DOUBLE_EQ(alerts[1].factor, 6);

  const double target = 0.999;
  // A burst at 20x budget that is still going on: both windows of the fast page burn > 14.4.
  std::map<seconds, EventCounts> counts = {
      {hours(1), {36'000, 36'000 - 720}},    // 2 % bad = 20x
      {minutes(5), {3'000, 3'000 - 60}},     // 2 % bad = 20x
      {hours(6), {216'000, 216'000 - 800}},  // 0.37 % bad = 3.7x
      {minutes(30), {18'000, 18'000 - 360}}, {hours(72), {2'592'000, 2'592'000 - 1000}},
      {hours(6), {216'000, 216'000 - 800}},
  };
  auto lookup = [&](seconds w) { return counts.at(w); };
  std::vector<BurnRateAlertResult> r = EvaluateBurnRateAlerts(target, alerts, lookup);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].firing);
  EXPECT_NEAR(r[0].long_burn, 20, 1e-9);
  EXPECT_FALSE(r[1].firing);  // 6 h burns at 3.7x only
  EXPECT_FALSE(r[2].firing);

  // The burst has stopped: the last 5 minutes are clean, so the page resolves even though the
  // hour still shows the burn.
  counts[minutes(5)] = {3'000, 3'000};
  r = EvaluateBurnRateAlerts(target, alerts, lookup);
  EXPECT_FALSE(r[0].firing);
  EXPECT_NEAR(r[0].long_burn, 20, 1e-9);
  EXPECT_EQ(r[0].short_burn, 0);

  nlohmann::json j = ToJson(r[0]);
  EXPECT_EQ(j["name"], "page-fast");
  EXPECT_EQ(j["long_window_s"], 3600);
  EXPECT_EQ(j["firing"], false);
}

}  // namespace
}  // namespace turnout::judge
