// Maintenance mode (RoutingPolicy::maintenance): the router answers every request itself with
// 503, Retry-After and the page, never with a connection error, while the operator's smoke tests
// still reach a slot through the override header; lifting it routes again at once.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::LoadOptions;
using testing::LoadResult;
using testing::LoadRunner;
using testing::RawClient;
using testing::RawResponse;
using testing::TestUpstream;

class RouterMaintenanceTest : public testing::RouterTest {
 protected:
  void Start() {
    blue_ = &AddUpstream("blue");
    green_ = &AddUpstream("green");
    ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig(
        {{"blue", {blue_->address()}}, {"green", {green_->address()}}}, "blue")));
  }

  void SetMaintenance(bool enabled, std::string page = "", std::string content_type = "") {
    Result<uint64_t> g =
        router().UpdatePolicy([&](const RoutingPolicy& current, uint64_t) -> Result<RoutingPolicy> {
          RoutingPolicy next = current;
          next.maintenance.enabled = enabled;
          next.maintenance.retry_after_seconds = 120;
          next.maintenance.page = page;
          if (!content_type.empty()) next.maintenance.content_type = content_type;
          return next;
        });
    ASSERT_TRUE(g.ok()) << g.status().ToString();
  }

  TestUpstream* blue_ = nullptr;
  TestUpstream* green_ = nullptr;
};

TEST_F(RouterMaintenanceTest, EveryRequestIsAnswered503WithRetryAfterAndThePage) {
  Start();
  SetMaintenance(true);
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  for (int i = 0; i < 3; ++i) {  // on one keep-alive connection
    ASSERT_TRUE(client.Send(testing::GetRequest("/cart")).ok());
    RawResponse r = client.ReadResponse("GET", 5000ms);
    ASSERT_TRUE(r.complete()) << r.error;
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.Header("Retry-After"), "120");
    EXPECT_EQ(r.Header("X-Turnout-Error"), "maintenance");
    EXPECT_EQ(r.Header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.body, kDefaultMaintenancePage);
  }
  ASSERT_TRUE(client.Send("HEAD / HTTP/1.1\r\nHost: test.local\r\n\r\n").ok());
  RawResponse head = client.ReadResponse("HEAD", 5000ms);
  ASSERT_TRUE(head.complete()) << head.error;
  EXPECT_EQ(head.status, 503);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(blue_->request_count(), 0u);
  EXPECT_EQ(green_->request_count(), 0u);
  // Not counted as any version's errors (the judge and the rules read these).
  auto totals = router().GetCumulativeMetrics();
  ASSERT_TRUE(totals.ok());
  for (const auto& slot : *totals) EXPECT_EQ(slot.window.counters.requests, 0u) << slot.slot;
  // Nothing is routed, so the active slot can drain and its instances be stopped.
  EXPECT_FALSE(Slot("blue").receives_traffic);
  EXPECT_TRUE(Slot("blue").drained);
}

TEST_F(RouterMaintenanceTest, AConfiguredPageAndContentType) {
  Start();
  SetMaintenance(true, "{\"error\":\"maintenance\"}", "application/json");
  RawResponse r = Get("/api/orders");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.body, "{\"error\":\"maintenance\"}");
}

TEST_F(RouterMaintenanceTest, TheOverrideWithItsSecretStillReachesASlot) {
  Start();
  SetMaintenance(true);
  const std::string secret = router().GetPolicy()->override_header.secret;
  RawResponse r = Get("/", "X-Turnout-Slot: green\r\nX-Turnout-Secret: " + secret + "\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Upstream"), "green");
  RawResponse guess = Get("/", "X-Turnout-Slot: green\r\nX-Turnout-Secret: guess\r\n");
  EXPECT_EQ(guess.status, 503) << "without the secret, the maintenance page";
}

// Under load, turning maintenance on and off loses no connection: every answer is the app's 200
// or the router's 503, and a switch made meanwhile keeps maintenance on.
TEST_F(RouterMaintenanceTest, OnAndOffUnderLoadNeverFailsAConnection) {
  Start();
  LoadOptions options;
  options.address = address();
  options.connections = 16;
  options.max_requests = 20000;
  options.max_duration = 20s;
  LoadRunner load(options);
  load.Start();
  ASSERT_TRUE(load.WaitForCompleted(200, 10s));
  SetMaintenance(true);
  const size_t blue_before = blue_->request_count();
  ASSERT_TRUE(load.WaitForCompleted(load.completed() + 500, 10s));
  ASSERT_TRUE(router().Switch("green").ok());
  EXPECT_TRUE(router().GetPolicy()->maintenance.enabled) << "a switch keeps maintenance on";
  ASSERT_TRUE(load.WaitForCompleted(load.completed() + 500, 10s));
  EXPECT_LE(blue_->request_count(), blue_before + 16) << "at most the requests in flight";
  EXPECT_EQ(green_->request_count(), 0u);
  SetMaintenance(false);
  ASSERT_TRUE(load.WaitForCompleted(load.completed() + 500, 10s));
  load.Stop();
  LoadResult result = load.Wait();
  EXPECT_GT(green_->request_count(), 0u);
  EXPECT_EQ(
      result.resets + result.closed + result.timeouts + result.malformed + result.connect_failures,
      0u)
      << result.Summary();
  for (const auto& [status, count] : result.by_status) {
    EXPECT_TRUE(status == 200 || status == 503) << status << " x" << count;
  }
  EXPECT_GT(result.by_status[503], 0u);
}

TEST(MaintenancePolicyJson, RoundTripsAndRefusesBadValues) {
  RoutingPolicy p;
  p.active = "blue";
  p.maintenance.enabled = true;
  p.maintenance.retry_after_seconds = 90;
  p.maintenance.page = "<p>back soon</p>";
  Result<RoutingPolicy> back = ParsePolicyJson(PolicyToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->maintenance, p.maintenance);
  EXPECT_FALSE(ParsePolicyJson(R"({"active":"blue","maintenance":{"retry_after":0}})").ok());
  EXPECT_FALSE(ParsePolicyJson(R"({"active":"blue","maintenance":{"enabled":"yes"}})").ok());
  RoutingPolicy bad = p;
  bad.maintenance.content_type = "text/html\r\nSet-Cookie: a=b";
  EXPECT_FALSE(ValidatePolicy(bad, {"blue"}).ok()) << "no header injection through the page's type";
  bad = p;
  bad.maintenance.page.assign(kMaxMaintenancePageBytes + 1, 'x');
  EXPECT_FALSE(ValidatePolicy(bad, {"blue"}).ok());
  EXPECT_TRUE(ValidatePolicy(p, {"blue"}).ok());
}

}  // namespace
}  // namespace turnout::router
