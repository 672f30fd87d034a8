// Health inside the router: active checks take an instance out after `fall` failures and back
// after `rise` successes; connect failures eject an instance passively.

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::RawResponse;
using testing::TestUpstream;

class RouterHealthTest : public testing::RouterTest {
 protected:
  // Upstreams answering each of `n` requests, by X-Upstream.
  std::multiset<std::string> Spread(int n) {
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i) {
      RawResponse r = Get("/");
      EXPECT_TRUE(r.complete()) << r.error;
      EXPECT_EQ(r.status, 200);
      seen.insert(r.Header("X-Upstream"));
    }
    return seen;
  }

  ManualClock clock_;  // declared here so that it outlives the router stopped in TearDown
};

TEST_F(RouterHealthTest, FailingInstanceIsTakenOutAfterFallAndReturnsAfterRise) {
  TestUpstream& b1 = AddUpstream("blue-1");
  TestUpstream& b2 = AddUpstream("blue-2");
  RouterConfig config =
      testing::MakeTestRouterConfig({{"blue", {b1.address(), b2.address()}}}, "blue");
  config.health.enabled = true;
  config.health.interval = 50ms;
  config.health.timeout = 250ms;
  config.health.rise = 2;
  config.health.fall = 3;
  ASSERT_TRUE(StartRouter(config));
  ASSERT_TRUE(
      testing::WaitUntil([&] { return b1.health_checks() >= 1 && b2.health_checks() >= 1; }));
  EXPECT_TRUE(Instance("blue", b1.address()).healthy);
  EXPECT_GT(Spread(20).count("blue-1"), 0u) << "both healthy instances get traffic";

  b1.SetHealthy(false);
  const uint64_t checks_at_flip = b1.health_checks();
  ASSERT_TRUE(testing::WaitUntil([&] { return !Instance("blue", b1.address()).healthy; }));
  EXPECT_GE(b1.health_checks() - checks_at_flip + 1, 3u) << "taken out before `fall` failures";
  b1.ClearRecorded();
  EXPECT_EQ(Spread(20).count("blue-2"), 20u);
  EXPECT_EQ(b1.request_count(), 0u);

  b1.SetHealthy(true);
  const uint64_t checks_at_recovery = b1.health_checks();
  ASSERT_TRUE(testing::WaitUntil([&] { return Instance("blue", b1.address()).healthy; }));
  EXPECT_GE(b1.health_checks() - checks_at_recovery + 1, 2u) << "back before `rise` successes";
  EXPECT_GT(Spread(20).count("blue-1"), 0u);
}

TEST_F(RouterHealthTest, AllInstancesUnhealthyIs503AndRecovers) {
  TestUpstream& b1 = AddUpstream("blue-1");
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {b1.address()}}}, "blue");
  config.health.enabled = true;
  config.health.interval = 50ms;
  config.health.rise = 1;
  config.health.fall = 1;
  ASSERT_TRUE(StartRouter(config));
  b1.SetHealthy(false);
  ASSERT_TRUE(testing::WaitUntil([&] { return !Instance("blue", b1.address()).healthy; }));
  RawResponse down = Get("/");
  ASSERT_TRUE(down.complete());
  EXPECT_EQ(down.status, 503);
  b1.SetHealthy(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return Instance("blue", b1.address()).healthy; }));
  RawResponse up = Get("/");
  ASSERT_TRUE(up.complete());
  EXPECT_EQ(up.status, 200);
}

TEST_F(RouterHealthTest, NewInstancesAreCheckedBeforeTheyGetTraffic) {
  TestUpstream& b1 = AddUpstream("blue-1");
  TestUpstream& b2 = AddUpstream("blue-2");
  b2.SetHealthy(false);
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {b1.address()}}}, "blue");
  config.health.enabled = true;
  config.health.interval = 50ms;
  ASSERT_TRUE(StartRouter(config));
  ASSERT_TRUE(router().SetSlotInstances("blue", {b1.address(), b2.address()}).ok());
  // b2 answers /ready with 503: it must never get a request, before or after its first check.
  Spread(10);
  ASSERT_TRUE(testing::WaitUntil([&] { return b2.health_checks() >= 2; }));
  Spread(10);
  EXPECT_EQ(b2.request_count(), 0u);
  EXPECT_FALSE(Instance("blue", b2.address()).healthy);
}

TEST_F(RouterHealthTest, ConnectFailuresEjectAnInstancePassively) {
  TestUpstream& live = AddUpstream("blue-live");
  const std::string dead = testing::RefusingAddress();
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {dead, live.address()}}}, "blue");
  config.health.enabled = false;
  config.health.eject_after_connect_failures = 2;
  config.health.eject_for = 60s;
  ASSERT_TRUE(StartRouter(config));
  EXPECT_FALSE(Instance("blue", dead).ejected);
  // Every request succeeds (retried on the live instance) while the dead one collects failures.
  for (int i = 0; i < 12; ++i) {
    RawResponse r = Get("/");
    ASSERT_TRUE(r.complete()) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("X-Upstream"), "blue-live");
  }
  EXPECT_TRUE(Instance("blue", dead).ejected);
  EXPECT_FALSE(Instance("blue", live.address()).ejected);
  EXPECT_TRUE(Instance("blue", dead).healthy) << "checks are off: only passive ejection applies";
}

TEST_F(RouterHealthTest, EjectionEndsAfterEjectFor) {
  ManualClock& clock = clock_;
  TestUpstream& live = AddUpstream("blue-live");
  const std::string dead = testing::RefusingAddress();
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {dead, live.address()}}}, "blue");
  config.health.enabled = false;
  config.health.eject_after_connect_failures = 1;
  config.health.eject_for = 30s;
  ASSERT_TRUE(StartRouter(config, clock));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(Get("/").status, 200);
  ASSERT_TRUE(Instance("blue", dead).ejected);
  clock.Advance(29s);
  EXPECT_TRUE(Instance("blue", dead).ejected);
  clock.Advance(2s);
  EXPECT_FALSE(Instance("blue", dead).ejected);
}

}  // namespace
}  // namespace turnout::router
