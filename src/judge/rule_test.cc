#include "judge/rule.h"

#include <gtest/gtest.h>

namespace turnout::judge {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Expression MustParse(std::string_view text) {
  Result<Expression> e = ParseExpression(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().ToString();
  return e.ok() ? *e : Expression{};
}

std::string ErrorOf(std::string_view text) {
  Result<Expression> e = ParseExpression(text);
  EXPECT_FALSE(e.ok()) << text;
  return e.ok() ? "" : e.status().message();
}

TEST(ParseExpression, RunbookForms) {
  Expression e = MustParse("error_rate > 5% for 2m");
  EXPECT_EQ(e.kind, Expression::Kind::kSlotStatistic);
  EXPECT_EQ(e.statistic, Statistic::kErrorRate);
  EXPECT_EQ(e.op, Comparison::kGreater);
  EXPECT_DOUBLE_EQ(e.threshold, 0.05);
  EXPECT_EQ(e.for_duration, milliseconds(120'000));
  EXPECT_FALSE(e.vs_baseline);

  e = MustParse("p95 > 2s for 5m");
  EXPECT_EQ(e.statistic, Statistic::kP95);
  EXPECT_DOUBLE_EQ(e.threshold, 2e6);
  EXPECT_EQ(e.for_duration, milliseconds(300'000));

  e = MustParse("p99 > baseline * 1.5 for 1m");
  EXPECT_EQ(e.statistic, Statistic::kP99);
  EXPECT_TRUE(e.vs_baseline);
  EXPECT_DOUBLE_EQ(e.baseline_factor, 1.5);

  e = MustParse("health failing for 30s");
  EXPECT_EQ(e.kind, Expression::Kind::kHealthFailing);
  EXPECT_EQ(e.for_duration, milliseconds(30'000));

  e = MustParse("dependency postgres unavailable for 10s");
  EXPECT_EQ(e.kind, Expression::Kind::kDependencyUnavailable);
  EXPECT_EQ(e.name, "postgres");
  EXPECT_EQ(e.for_duration, milliseconds(10'000));

  e = MustParse("metric db_connections >= 90 for 1m");
  EXPECT_EQ(e.kind, Expression::Kind::kExternalMetric);
  EXPECT_EQ(e.name, "db_connections");
  EXPECT_EQ(e.op, Comparison::kGreaterEqual);
  EXPECT_DOUBLE_EQ(e.threshold, 90);
}

TEST(ParseExpression, UnitsAndSpacing) {
  EXPECT_DOUBLE_EQ(MustParse("error_rate>0.5%").threshold, 0.005);
  EXPECT_DOUBLE_EQ(MustParse("error_rate > 0.02").threshold, 0.02);
  EXPECT_DOUBLE_EQ(MustParse("p50 < 800us").threshold, 800);
  EXPECT_DOUBLE_EQ(MustParse("p999 <= 1.5s").threshold, 1.5e6);
  EXPECT_DOUBLE_EQ(MustParse("mean_latency > 150ms").threshold, 150e3);
  EXPECT_DOUBLE_EQ(MustParse("request_rate < 1/s for 1m").threshold, 1);
  EXPECT_DOUBLE_EQ(MustParse("request_rate < 30/m").threshold, 0.5);
  EXPECT_DOUBLE_EQ(MustParse("request_rate < 2").threshold, 2);
  EXPECT_DOUBLE_EQ(MustParse("metric queue_delta < -3").threshold, -3);
  EXPECT_EQ(MustParse("  p90>baseline  ").baseline_factor, 1.0);
  EXPECT_EQ(MustParse("  p90>baseline  ").text, "p90>baseline");
  EXPECT_EQ(MustParse("dependency redis-cache down").name, "redis-cache");
  EXPECT_EQ(MustParse("error_rate > 5%").for_duration, milliseconds(0));
}

TEST(ParseExpression, ErrorsNameTheColumnAndWhatWasExpected) {
  EXPECT_EQ(ErrorOf("error_rate > 5% for 2 minutes"),
            "error_rate > 5% for 2 minutes: column 21: expected a duration after 'for' (e.g. "
            "30s, 2m), got '2 minutes'");
  EXPECT_EQ(ErrorOf("error_rate > 5"),
            "error_rate > 5: column 14: expected a percentage (e.g. 5%) or a fraction up to 1, "
            "or 'baseline', got '5'");
  EXPECT_EQ(ErrorOf("p95 = 2s"),
            "p95 = 2s: column 5: expected a comparison (>, >=, <, <=), got '= 2s'");
  EXPECT_EQ(ErrorOf("p95 > 2"),
            "p95 > 2: column 7: expected a latency (e.g. 800us, 150ms, 1.5s, up to 71m) or "
            "'baseline', got '2'");
  EXPECT_EQ(ErrorOf("latency > 2s"),
            "latency > 2s: column 1: expected a statistic (error_rate, p50, p90, p95, p99, p999, "
            "mean_latency, request_rate), 'health', 'dependency' or 'metric', got 'latency > 2s'");
  EXPECT_EQ(ErrorOf("health failing for"),
            "health failing for: column 19: expected a duration after 'for' (e.g. 30s, 2m), got "
            "the end of the rule");
  EXPECT_EQ(ErrorOf("health is bad"),
            "health is bad: column 8: expected 'failing' after 'health', got 'is bad'");
  EXPECT_EQ(ErrorOf("p99 > baseline * 0 for 1m"),
            "p99 > baseline * 0 for 1m: column 18: expected a positive factor after 'baseline *' "
            "(e.g. 1.5), got '0 for 1m'");
  EXPECT_EQ(ErrorOf("error_rate > 5% for 2m and more"),
            "error_rate > 5% for 2m and more: column 24: expected the end of the rule, got 'and "
            "more'");
  EXPECT_EQ(ErrorOf("error_rate > 5% during 2m"),
            "error_rate > 5% during 2m: column 17: expected 'for <duration>' or the end of the "
            "rule, got 'during 2m'");
  EXPECT_NE(ErrorOf("").find("empty rule"), std::string::npos);
  EXPECT_NE(ErrorOf("dependency for").find("expected 'unavailable'"), std::string::npos);
  EXPECT_NE(ErrorOf("metric x > 5%").find("expected a plain number"), std::string::npos);
  // Out of range and malformed numbers.
  ErrorOf("error_rate > 101%");
  ErrorOf("error_rate > 1.5");
  ErrorOf("p95 > 1.2.3s");
  ErrorOf("p95 > -1s");
  ErrorOf("p95 > 100m");
  ErrorOf("error_rate > 5%% for 2m");
  ErrorOf("p95 > 2s for 1.5m");
  ErrorOf("p95 > 2s for -1s");
  ErrorOf("health failing for 30s\x01");
}

TEST(ParseExpression, LongRestIsCut) {
  std::string msg = ErrorOf("p95 ? aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_NE(msg.find("got '? aaaaaaaaaaaaaaaaaaaaaa...'"), std::string::npos) << msg;
}

TEST(ParseRule, DefaultsAndWindow) {
  Result<Rule> r = ParseRule("error_rate > 5% for 2m");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "error_rate > 5% for 2m");
  EXPECT_EQ(r->severity, Severity::kCritical);
  EXPECT_EQ(r->min_samples, 50u);
  EXPECT_EQ(r->on_insufficient_data, InsufficientDataPolicy::kWait);
  EXPECT_EQ(r->for_duration, milliseconds(120'000));
  EXPECT_EQ(r->window, seconds(120));

  EXPECT_EQ(DefaultWindow(milliseconds(45'500)), seconds(46));
  EXPECT_EQ(DefaultWindow(milliseconds(300'000)), seconds(120));
}

TEST(ParseRule, TheWindowFollowsTheRulesFor) {
  // `for 5s` looks at the last 5 s, not at a 30 s floor.
  Result<Rule> r = ParseRule("error_rate > 5% for 5s");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->window, seconds(5));
  EXPECT_EQ(DefaultWindow(milliseconds(10'000)), seconds(10));
  EXPECT_EQ(DefaultWindow(milliseconds(2'500)), seconds(3));
  // Without `for`, about the time since the previous evaluation.
  EXPECT_EQ(DefaultWindow(milliseconds(0)), seconds(1));
  EXPECT_EQ(DefaultWindow(milliseconds(0), milliseconds(250)), seconds(1));
  EXPECT_EQ(DefaultWindow(milliseconds(0), milliseconds(5'000)), seconds(5));
  EXPECT_EQ(DefaultWindow(milliseconds(5'000), milliseconds(10'000)), seconds(10));
}

TEST(MakeRule, AForShorterThanTheEvaluationIntervalIsRefusedWithWhatIsPossible) {
  RuleConfig c;
  c.name = "errors";
  c.expr = "error_rate > 5% for 1s";
  Result<Rule> r = MakeRule(c, milliseconds(2'000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "rule 'errors': `for 1s` is shorter than the evaluation interval 2s "
            "(analysis_interval), and a condition is only seen once per evaluation; write "
            "`for 2s` or more, leave `for` out to act at the first evaluation, or lower "
            "analysis_interval");
  EXPECT_TRUE(MakeRule(c, milliseconds(1'000)).ok());
  c.expr = "error_rate > 5% for 2s";
  r = MakeRule(c, milliseconds(2'000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->window, seconds(2));
  c.expr = "error_rate > 5%";  // no `for`: acts at the first evaluation
  r = MakeRule(c, milliseconds(2'000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->window, seconds(2));
  c.expr = "error_rate > 5% for 500ms";
  r = MakeRule(c, milliseconds(250));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->window, seconds(1));
}

TEST(MakeRule, AppliesConfigAndValidates) {
  RuleConfig c;
  c.name = "slow";
  c.expr = "p95 > 2s for 5m";
  c.severity = Severity::kWarning;
  c.min_samples = 200;
  c.on_insufficient_data = InsufficientDataPolicy::kFail;
  c.window = milliseconds(60'000);
  Result<Rule> r = MakeRule(c);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "slow");
  EXPECT_EQ(r->severity, Severity::kWarning);
  EXPECT_EQ(r->min_samples, 200u);
  EXPECT_EQ(r->on_insufficient_data, InsufficientDataPolicy::kFail);
  EXPECT_EQ(r->window, seconds(60));

  c.window = milliseconds(121'000);
  EXPECT_NE(MakeRule(c).status().message().find("rule 'slow': window 121s must be whole seconds"),
            std::string::npos);
  c.window = milliseconds(1500);
  EXPECT_FALSE(MakeRule(c).ok());
  c.window = milliseconds(0);
  EXPECT_FALSE(MakeRule(c).ok());
  c.window.reset();
  c.min_samples = 0;
  EXPECT_FALSE(MakeRule(c).ok());
  c.min_samples.reset();
  c.expr = "p95 > fast";
  Result<Rule> bad = MakeRule(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("rule 'slow': p95 > fast: column 7", 0), 0u)
      << bad.status().message();
}

TEST(Names, ParseAndPrint) {
  EXPECT_EQ(*ParseSeverity("warning"), Severity::kWarning);
  EXPECT_EQ(*ParseSeverity("critical"), Severity::kCritical);
  EXPECT_FALSE(ParseSeverity("page").ok());
  EXPECT_EQ(*ParseInsufficientDataPolicy("pass"), InsufficientDataPolicy::kPass);
  EXPECT_FALSE(ParseInsufficientDataPolicy("skip").ok());
  EXPECT_EQ(StatisticName(Statistic::kP999), "p999");
  EXPECT_EQ(ComparisonSymbol(Comparison::kLessEqual), "<=");
  EXPECT_TRUE(Compare(2, Comparison::kGreaterEqual, 2));
  EXPECT_FALSE(Compare(2, Comparison::kGreater, 2));
  EXPECT_DOUBLE_EQ(PercentileOf(Statistic::kP999), 99.9);
}

}  // namespace
}  // namespace turnout::judge
