// Blue/green switches: no request fails while the active slot flips under load, traffic moves,
// in-flight requests finish where they started, and the old slot drains.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <string>

#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::LoadOptions;
using testing::LoadResult;
using testing::LoadRunner;
using testing::RawClient;
using testing::RawResponse;
using testing::ReceivedRequest;
using testing::TestUpstream;

class RouterSwitchTest : public testing::RouterTest {
 protected:
  void Start() {
    blue1_ = &AddUpstream("blue-1");
    blue2_ = &AddUpstream("blue-2");
    green1_ = &AddUpstream("green-1");
    green2_ = &AddUpstream("green-2");
    RouterConfig config =
        testing::MakeTestRouterConfig({{"blue", {blue1_->address(), blue2_->address()}},
                                       {"green", {green1_->address(), green2_->address()}}},
                                      "blue");
    ASSERT_TRUE(StartRouter(config));
  }

  TestUpstream* blue1_ = nullptr;
  TestUpstream* blue2_ = nullptr;
  TestUpstream* green1_ = nullptr;
  TestUpstream* green2_ = nullptr;
};

TEST_F(RouterSwitchTest, HundredSwitchesUnderLoadLoseNoRequest) {
  Start();
  LoadOptions options;
  options.address = address();
  options.connections = 64;
  options.max_requests = 40000;
  options.max_duration = 20s;  // an upper bound; the test stops the load after the switches
  LoadRunner load(options);
  load.Start();
  ASSERT_TRUE(load.WaitForCompleted(200, 10s)) << "load did not start";
  uint64_t generation = 0;
  for (int i = 0; i < 100; ++i) {
    const char* slot = i % 2 == 0 ? "green" : "blue";
    Result<uint64_t> g = router().Switch(slot);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_GT(*g, generation);
    generation = *g;
    // Let some requests run under each policy (bounded: the load ends by itself anyway).
    load.WaitForCompleted(load.completed() + 20, 2s);
  }
  load.Stop();
  LoadResult result = load.Wait();
  SCOPED_TRACE(result.Summary());
  std::cout << "[ measured ] 100 switches under 64-connection load: " << result.Summary() << "\n";
  EXPECT_EQ(result.failures(), 0u);
  EXPECT_EQ(result.ok, result.total());
  EXPECT_GT(result.total(), 2000u);
  uint64_t blue = result.by_upstream["blue-1"] + result.by_upstream["blue-2"];
  uint64_t green = result.by_upstream["green-1"] + result.by_upstream["green-2"];
  EXPECT_GT(blue, 0u);
  EXPECT_GT(green, 0u);
  EXPECT_EQ(blue + green, result.ok);
  // After the last switch (to blue) new requests go to blue only.
  for (int i = 0; i < 10; ++i) {
    RawResponse r = Get("/after");
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.Header("X-Upstream").rfind("blue", 0), 0u) << r.Header("X-Upstream");
  }
}

TEST_F(RouterSwitchTest, SwitchMovesNewRequestsAndKeepsClientConnections) {
  Start();
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse before = client.RoundTrip(testing::GetRequest("/"));
  ASSERT_TRUE(before.complete());
  EXPECT_EQ(before.Header("X-Upstream").rfind("blue", 0), 0u);
  ASSERT_TRUE(router().Switch("green").ok());
  // Same client connection, next request: the new policy.
  RawResponse after = client.RoundTrip(testing::GetRequest("/"));
  ASSERT_TRUE(after.complete()) << after.error;
  EXPECT_EQ(after.Header("X-Upstream").rfind("green", 0), 0u) << after.Header("X-Upstream");
  Result<RoutingPolicy> policy = router().GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "green");
  EXPECT_FALSE(policy->canary.has_value());
}

TEST_F(RouterSwitchTest, UnknownSlotIsRefusedAndOldPolicyKeepsServing) {
  Start();
  Result<uint64_t> g = router().Switch("purple");
  EXPECT_FALSE(g.ok());
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream").rfind("blue", 0), 0u);
}

TEST_F(RouterSwitchTest, OldSlotPoolIsClosedOnceIdle) {
  Start();
  // Several client connections so that both workers pool blue connections.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 8; ++i) {
    auto c = std::make_unique<RawClient>();
    ASSERT_TRUE(c->Connect(address()).ok());
    RawResponse r = c->RoundTrip(testing::GetRequest("/warm"));
    ASSERT_TRUE(r.complete());
    clients.push_back(std::move(c));
  }
  ASSERT_GT(blue1_->open_connections() + blue2_->open_connections(), 0)
      << "the router keeps no pooled connection";
  ASSERT_TRUE(router().Switch("green").ok());
  for (auto& c : clients) {
    RawResponse r = c->RoundTrip(testing::GetRequest("/now-green"));
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.Header("X-Upstream").rfind("green", 0), 0u);
  }
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return blue1_->open_connections() + blue2_->open_connections() == 0; }, 5s))
      << "blue still has " << blue1_->open_connections() + blue2_->open_connections()
      << " open upstream connections";
  // Green's pooled connections are not closed.
  EXPECT_GT(green1_->open_connections() + green2_->open_connections(), 0);
}

// turnoutd starts its router before the first deployment, with no instance in any slot; the
// instances arrive later through SetSlotInstances. Their upstream connections are pooled all the
// same (the pool's share of the descriptor budget follows the instances).
TEST_F(RouterSwitchTest, InstancesSetAfterStartAreReachedThroughPooledConnections) {
  TestUpstream& late = AddUpstream("late-1");
  ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig({{"blue", {}}, {"green", {}}}, "blue")));
  EXPECT_EQ(router().fd_budget().pooled_upstream, 0u);
  ASSERT_TRUE(router().SetSlotInstances("blue", {late.address()}).ok());
  EXPECT_GT(router().fd_budget().pooled_upstream, 0u);
  for (int i = 0; i < 20; ++i) {
    RawResponse r = Get("/pooled");
    ASSERT_TRUE(r.complete()) << r.error;
    ASSERT_EQ(r.status, 200);
  }
  // Two workers: each may open its own; without pooling it would be one per request.
  EXPECT_LE(late.accepted_connections(), 4u);
}

TEST_F(RouterSwitchTest, InFlightRequestFinishesOnOldSlotAndDrainWaitsForIt) {
  Start();
  Behavior slow;
  slow.delay = 800ms;
  slow.body = "slow blue";
  auto slow_on_path = [slow](const ReceivedRequest& r) {
    return r.target == "/slow" ? slow : Behavior::Respond(200, "fast");
  };
  blue1_->SetHandler(slow_on_path);
  blue2_->SetHandler(slow_on_path);

  RawClient slow_client;
  ASSERT_TRUE(slow_client.Connect(address()).ok());
  ASSERT_TRUE(slow_client.Send(testing::GetRequest("/slow")).ok());
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return blue1_->request_count() + blue2_->request_count() == 1; }, 5s));

  ASSERT_TRUE(router().Switch("green").ok());
  SlotStatus blue = Slot("blue");
  EXPECT_FALSE(blue.receives_traffic);
  EXPECT_EQ(blue.in_flight, 1);
  EXPECT_FALSE(blue.drained) << "drained while a request is in flight";

  RawResponse fresh = Get("/fresh");
  ASSERT_TRUE(fresh.complete());
  EXPECT_EQ(fresh.Header("X-Upstream").rfind("green", 0), 0u);
  EXPECT_FALSE(Slot("blue").drained);

  RawResponse finished = slow_client.ReadResponse("GET", 5s);
  ASSERT_TRUE(finished.complete()) << finished.error;
  EXPECT_EQ(finished.status, 200);
  EXPECT_EQ(finished.body, "slow blue");
  EXPECT_EQ(finished.Header("X-Upstream").rfind("blue", 0), 0u);

  EXPECT_TRUE(testing::WaitUntil([&] { return Slot("blue").drained; }, 5s));
  EXPECT_EQ(Slot("blue").in_flight, 0);
  SlotStatus green = Slot("green");
  EXPECT_TRUE(green.receives_traffic);
  EXPECT_FALSE(green.drained);
}

TEST_F(RouterSwitchTest, GenerationIncreasesWithEveryChange) {
  Start();
  Result<RouterStatus> s0 = router().GetStatus();
  ASSERT_TRUE(s0.ok());
  Result<uint64_t> g1 = router().Switch("green");
  ASSERT_TRUE(g1.ok());
  EXPECT_GT(*g1, s0->generation);
  Result<uint64_t> g2 = router().SetSlotInstances("blue", {blue1_->address()});
  ASSERT_TRUE(g2.ok());
  EXPECT_GT(*g2, *g1);
  Result<RouterStatus> s1 = router().GetStatus();
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(s1->generation, *g2);
  EXPECT_EQ(s1->policy.active, "green");
  ASSERT_EQ(s1->listen.size(), 1u);
  EXPECT_EQ(s1->listen[0], address());
}

}  // namespace
}  // namespace turnout::router
