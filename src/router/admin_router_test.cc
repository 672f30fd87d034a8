// The admin API in front of the real data plane: AdminServer over an in-process Router, driven
// by AdminClient, with real upstreams on loopback, checking where requests actually go.

#include <gtest/gtest.h>

#include <string>

#include "router/admin_client.h"
#include "router/admin_server.h"
#include "router/router.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

class AdminRouterTest : public testing::RouterTest {
 protected:
  void SetUp() override {
    blue_ = &AddUpstream("blue");
    green_ = &AddUpstream("green");
    ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig(
        {{"blue", {blue_->address()}}, {"green", {green_->address()}}}, "blue")));
    AdminServer::Options options;
    options.address = "127.0.0.1:0";
    options.token = "tkn";
    Router* r = &router();
    admin_ = std::make_unique<AdminServer>(options, router(), [r] { return r->PrometheusText(); });
    ASSERT_TRUE(admin_->Start().ok());
    auto client = AdminClient::Create(admin_->address(), "tkn", Millis(5000));
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
  }
  void TearDown() override {
    admin_->Stop();  // before the router it serves
    testing::RouterTest::TearDown();
  }

  std::string UpstreamOf(std::string_view extra_headers = "") {
    testing::RawResponse r = Get("/", extra_headers);
    EXPECT_EQ(r.status, 200) << r.error;
    return r.Header("X-Upstream");
  }

  testing::TestUpstream* blue_ = nullptr;
  testing::TestUpstream* green_ = nullptr;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<AdminClient> client_;
};

TEST_F(AdminRouterTest, SwitchAndCanaryMoveRealTraffic) {
  EXPECT_EQ(UpstreamOf(), "blue");

  auto g1 = client_->Switch("green");
  ASSERT_TRUE(g1.ok()) << g1.status().ToString();
  // The contract of SetPolicy: every request that starts after it returned uses the new policy.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(UpstreamOf(), "green");

  auto g2 = client_->SetCanaryWeight("blue", 10000);
  ASSERT_TRUE(g2.ok()) << g2.status().ToString();
  EXPECT_GT(*g2, *g1);
  EXPECT_EQ(UpstreamOf("Cookie: turnout_sticky=client-1\r\n"), "blue");
  ASSERT_TRUE(client_->SetCanaryWeight("blue", 0).ok());
  EXPECT_EQ(UpstreamOf("Cookie: turnout_sticky=client-1\r\n"), "green");

  // Refused changes leave routing alone.
  EXPECT_EQ(client_->Switch("red").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(client_->SetCanaryWeight("green", 500).ok());  // green is the active slot
  EXPECT_EQ(UpstreamOf(), "green");

  auto status = client_->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->policy.active, "green");
  ASSERT_EQ(status->slots.size(), 2u);
  for (const auto& s : status->slots) {
    EXPECT_EQ(s.receives_traffic, s.name == "green") << s.name;
    ASSERT_EQ(s.instances.size(), 1u);
  }
  EXPECT_EQ(status->listen.size(), 1u);
}

TEST_F(AdminRouterTest, InstancesDrainAndMetrics) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(UpstreamOf(), "blue");
  // Point blue at green's upstream: the next requests reach it.
  ASSERT_TRUE(client_->SetSlotInstances("blue", {green_->address()}).ok());
  EXPECT_EQ(UpstreamOf(), "green");
  auto bad = client_->SetSlotInstances("blue", {"not-an-address"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);

  auto green = client_->GetSlotStatus("green");
  ASSERT_TRUE(green.ok());
  EXPECT_FALSE(green->receives_traffic);
  EXPECT_TRUE(green->drained);
  EXPECT_EQ(client_->GetSlotStatus("red").status().code(), StatusCode::kNotFound);

  // A request is recorded when it ends, which may be just after its client saw the response.
  auto blue_requests = [&]() -> uint64_t {
    auto m = client_->GetWindowMetrics(std::chrono::seconds(60));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return 0;
    for (const auto& s : *m) {
      if (s.slot == "blue") return s.window.counters.requests;
    }
    return 0;
  };
  EXPECT_TRUE(testing::WaitUntil([&] { return blue_requests() == 4; }, Millis(5000)))
      << blue_requests();
  // The totals since start arrive through the same API (window=0) and match the window's.
  auto totals = client_->GetCumulativeMetrics();
  ASSERT_TRUE(totals.ok()) << totals.status().ToString();
  for (const auto& s : *totals) {
    EXPECT_EQ(s.window.window.count(), 0);
    if (s.slot == "blue") {
      EXPECT_EQ(s.window.counters.requests, 4u);
      EXPECT_EQ(s.window.total_latency.count, 4u);
    }
  }
  auto prom = client_->PrometheusText();
  ASSERT_TRUE(prom.ok());
  EXPECT_NE(prom->find("turnout_requests_total{slot=\"blue\"} 4"), std::string::npos) << *prom;
}

}  // namespace
}  // namespace turnout::router
