#include "demo/util.h"

#include <chrono>

#include "gtest/gtest.h"

namespace turnout::demo {
namespace {

using namespace std::chrono_literals;

TEST(ParseDurationTest, AcceptsUnits) {
  EXPECT_EQ(*ParseDuration("50ms"), 50ms);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration("250us"), 250us);
  EXPECT_EQ(*ParseDuration("2m"), 120s);
  EXPECT_EQ(*ParseDuration("0"), 0ns);
}

TEST(ParseDurationTest, RefusesMissingOrUnknownUnits) {
  EXPECT_FALSE(ParseDuration("50").ok());
  EXPECT_FALSE(ParseDuration("ms").ok());
  EXPECT_FALSE(ParseDuration("5 ms").ok());
  EXPECT_FALSE(ParseDuration("5d").ok());
  EXPECT_FALSE(ParseDuration("-5s").ok());
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("1e30s").ok());
}

TEST(ParseHostPortTest, ParsesV4AndV6) {
  Result<HostPort> v4 = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  Result<HostPort> v6 = ParseHostPort("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_FALSE(ParseHostPort("127.0.0.1").ok());
  EXPECT_FALSE(ParseHostPort("127.0.0.1:65536").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("::1:80").ok());
}

TEST(ParseHttpUrlTest, SplitsHostPortAndTarget) {
  Result<HttpUrl> u = ParseHttpUrl("http://127.0.0.1:8080/a/b?c=d");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->endpoint.host, "127.0.0.1");
  EXPECT_EQ(u->endpoint.port, 8080);
  EXPECT_EQ(u->target, "/a/b?c=d");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");
  Result<HttpUrl> bare = ParseHttpUrl("http://localhost");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->endpoint.port, 80);
  EXPECT_EQ(bare->target, "/");
  EXPECT_FALSE(ParseHttpUrl("https://127.0.0.1/").ok());
  EXPECT_FALSE(ParseHttpUrl("127.0.0.1:80/").ok());
}

TEST(ParseRateTest, BoundsZeroToOne) {
  EXPECT_DOUBLE_EQ(*ParseRate("0.25"), 0.25);
  EXPECT_FALSE(ParseRate("1.01").ok());
  EXPECT_FALSE(ParseRate("-0.1").ok());
  EXPECT_FALSE(ParseRate("x").ok());
}

TEST(LatencyHistogramTest, PercentilesWithinBucketError) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(std::chrono::microseconds(i * 100));
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.PercentileMicros(50), 50000, 50000 * 0.02);
  EXPECT_NEAR(h.PercentileMicros(99), 99000, 99000 * 0.02);
  EXPECT_EQ(h.MaxMicros(), 100000);
  EXPECT_EQ(h.PercentileMicros(100), 100000);
  EXPECT_NEAR(h.MeanMicros(), 50050, 1);
}

TEST(LatencyHistogramTest, MergeAddsSamplesAndSmallValuesAreExact) {
  LatencyHistogram a;
  LatencyHistogram b;
  for (int i = 0; i < 10; ++i) a.Record(std::chrono::microseconds(5));
  for (int i = 0; i < 10; ++i) b.Record(std::chrono::microseconds(40));
  a.Merge(b);
  EXPECT_EQ(a.count(), 20u);
  EXPECT_EQ(a.PercentileMicros(50), 5);
  EXPECT_EQ(a.PercentileMicros(51), 40);
  LatencyHistogram empty;
  EXPECT_EQ(empty.PercentileMicros(99), 0);
  // Huge values are clamped, never out of range.
  a.Record(std::chrono::hours(24 * 365 * 100));
  EXPECT_EQ(a.count(), 21u);
}

}  // namespace
}  // namespace turnout::demo
