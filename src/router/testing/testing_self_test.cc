// The test-support library against itself (no router): each scripted upstream behaviour looks
// to a client exactly as documented, so router tests that rely on it test the router.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "router/testing/raw_client.h"
#include "router/testing/test_upstream.h"

namespace turnout::router::testing {
namespace {

using namespace std::chrono_literals;
using Kind = Behavior::Kind;
using Outcome = RawResponse::Outcome;

class TestingSelfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<TestUpstream>> up = TestUpstream::Start("self-1");
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    up_ = std::move(up).value();
  }
  RawResponse Fetch(const std::string& request, std::string_view method = "GET") {
    return FetchOnce(up_->address(), request, method, 3s);
  }
  std::unique_ptr<TestUpstream> up_;
};

TEST_F(TestingSelfTest, DefaultResponseNamesTheUpstreamAndRecordsTheRequest) {
  RawResponse r = Fetch(GetRequest("/a?b=c", "X-Test: 1\r\n"));
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Upstream"), "self-1");
  EXPECT_EQ(r.body, "hello from self-1");
  std::vector<ReceivedRequest> seen = up_->RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/a?b=c");
  EXPECT_EQ(seen[0].Header("x-test"), "1");
  EXPECT_EQ(up_->accepted_connections(), 1u);
}

TEST_F(TestingSelfTest, EchoAndChunkedBodies) {
  up_->SetBehavior(Behavior::Of(Kind::kEcho));
  RawResponse r = Fetch(
      "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "POST");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_NE(r.body.find("POST /e HTTP/1.1\n"), std::string::npos);
  EXPECT_EQ(r.body.substr(r.body.size() - 3), "abc");
  EXPECT_TRUE(up_->RecordedRequests()[0].chunked);

  Behavior chunked;
  chunked.chunked = true;
  chunked.generated_body_bytes = 100000;
  up_->SetBehavior(chunked);
  r = Fetch(GetRequest("/c"));
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.body_bytes, 100000u);
  EXPECT_EQ(r.body_hash, PatternHash(100000));
}

TEST_F(TestingSelfTest, MisbehavioursLookAsDocumented) {
  up_->SetBehavior(Behavior::Of(Kind::kCloseBeforeResponse));
  EXPECT_EQ(Fetch(GetRequest()).outcome, Outcome::kClosed);
  up_->SetBehavior(Behavior::Of(Kind::kReset));
  EXPECT_EQ(Fetch(GetRequest()).outcome, Outcome::kReset);
  up_->SetBehavior(Behavior::Of(Kind::kBrokenHead));
  EXPECT_EQ(Fetch(GetRequest()).outcome, Outcome::kMalformed);
  up_->SetBehavior(Behavior::Of(Kind::kContentLengthAndChunked));
  EXPECT_EQ(Fetch(GetRequest()).outcome, Outcome::kMalformed);
  Behavior broken = Behavior::Of(Kind::kBreakMidBody);
  broken.generated_body_bytes = 10000;
  up_->SetBehavior(broken);
  RawResponse r = Fetch(GetRequest());
  EXPECT_EQ(r.outcome, Outcome::kClosed);
  EXPECT_EQ(r.body_bytes, 5000u);
  up_->SetBehavior(Behavior::Of(Kind::kHang));
  RawClient client;
  ASSERT_TRUE(client.Connect(up_->address()).ok());
  EXPECT_EQ(client.RoundTrip(GetRequest(), "GET", 200ms).outcome, Outcome::kTimeout);
}

TEST_F(TestingSelfTest, UpgradeEchoesTunnelBytes) {
  up_->SetBehavior(Behavior::Of(Kind::kUpgradeEcho));
  RawClient client;
  ASSERT_TRUE(client.Connect(up_->address()).ok());
  RawResponse r =
      client.RoundTrip(GetRequest("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n"));
  ASSERT_TRUE(r.complete()) << r.error;
  ASSERT_EQ(r.status, 101);
  ASSERT_TRUE(client.Send("ping").ok());
  Result<std::string> echoed = client.ReadSome(4, 3s);
  ASSERT_TRUE(echoed.ok());
  EXPECT_EQ(*echoed, "ping");
}

TEST_F(TestingSelfTest, HealthEndpointAndConnectionAccounting) {
  EXPECT_EQ(Fetch(GetRequest("/ready")).status, 200);
  up_->SetHealthy(false);
  EXPECT_EQ(Fetch(GetRequest("/ready")).status, 503);
  EXPECT_EQ(up_->health_checks(), 2u);
  EXPECT_EQ(up_->request_count(), 0u);
  EXPECT_TRUE(up_->WaitFor([&] { return up_->open_connections() == 0; }, 3s));

  RawClient client;
  ASSERT_TRUE(client.Connect(up_->address()).ok());
  ASSERT_TRUE(client.RoundTrip(GetRequest()).complete());
  EXPECT_EQ(up_->open_connections(), 1);
  client.Close();
  EXPECT_TRUE(up_->WaitFor([&] { return up_->open_connections() == 0; }, 3s));
}

TEST_F(TestingSelfTest, LoadRunnerCountsOutcomesAndStopsAtItsBudget) {
  LoadOptions options;
  options.address = up_->address();
  options.connections = 4;
  options.max_requests = 200;
  LoadResult result = RunLoad(options);
  EXPECT_EQ(result.ok, 200u) << result.Summary();
  EXPECT_EQ(result.by_upstream["self-1"], 200u);
  EXPECT_EQ(result.failures(), 0u);
  EXPECT_LE(up_->accepted_connections(), 4u);

  options.address = RefusingAddress();
  options.max_requests = 10;
  result = RunLoad(options);
  EXPECT_EQ(result.connect_failures, 10u);
  EXPECT_EQ(result.failures(), 10u);
}

}  // namespace
}  // namespace turnout::router::testing
