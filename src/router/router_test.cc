// The data plane end to end: a real Router on 127.0.0.1:0 in front of real upstreams.
#include "router/router.h"

#include <gtest/gtest.h>

#include <string>

#include "router/testing/raw_client.h"
#include "router/testing/router_harness.h"
#include "router/testing/test_upstream.h"

namespace turnout::router {
namespace {

using testing::Behavior;
using testing::Millis;
using testing::RawClient;
using testing::RawResponse;
using testing::RouterTest;
using testing::TestUpstream;

class DataPlaneTest : public RouterTest {
 protected:
  // Connects and asks for a WebSocket upgrade; returns the router's answer.
  RawResponse OpenTunnel(RawClient& client) {
    EXPECT_TRUE(client.Connect(address()).ok());
    EXPECT_TRUE(client
                    .Send("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                          "Upgrade: websocket\r\n\r\n")
                    .ok());
    return client.ReadResponse();
  }
};

TEST_F(DataPlaneTest, ProxiesGetsOverOneKeepAliveConnectionAndPoolsUpstreams) {
  TestUpstream& b1 = AddUpstream("b1");
  TestUpstream& b2 = AddUpstream("b2");
  ASSERT_TRUE(
      StartRouter(testing::MakeTestRouterConfig({{"blue", {b1.address(), b2.address()}}}, "blue")));
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  int from_b1 = 0;
  for (int i = 0; i < 6; ++i) {
    RawResponse r = client.RoundTrip(testing::GetRequest("/item?i=" + std::to_string(i)));
    ASSERT_TRUE(r.complete()) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.body, "hello from " + r.Header("X-Upstream"));
    from_b1 += r.Header("X-Upstream") == "b1";
  }
  EXPECT_EQ(from_b1, 3);  // round-robin within the slot
  // One client connection lives on one worker: each upstream saw one pooled connection.
  EXPECT_EQ(b1.accepted_connections(), 1u);
  EXPECT_EQ(b2.accepted_connections(), 1u);

  auto seen = b1.RecordedRequests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].Header("Host"), "test.local");
  EXPECT_EQ(seen[0].Header("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(seen[0].Header("X-Forwarded-Proto"), "http");
  EXPECT_EQ(seen[0].Header("X-Forwarded-Host"), "test.local");
  EXPECT_FALSE(seen[0].Header("X-Request-Id").empty());
  EXPECT_EQ(seen[0].version, "HTTP/1.1");
}

TEST_F(DataPlaneTest, ForwardsContentLengthAndChunkedBodies) {
  TestUpstream& up = AddUpstream("b1");
  up.SetBehavior(Behavior::Of(Behavior::Kind::kEcho));
  ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig({{"blue", {up.address()}}}, "blue")));
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());

  RawResponse r = client.RoundTrip(
      "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", "POST");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  // Chunked with an extension and a trailer: decoded, re-encoded, never passed through raw.
  r = client.RoundTrip(
      "POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
      "POST");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);

  auto seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].body, "hello world");
  EXPECT_FALSE(seen[0].chunked);
  EXPECT_EQ(seen[1].body, "hello world");
  EXPECT_TRUE(seen[1].chunked);
  EXPECT_EQ(seen[1].raw_head.find("ext=1"), std::string::npos);

  // A body bigger than the router's buffers streams through intact, both ways.
  const uint64_t kBig = 3 * 1024 * 1024 + 17;
  ASSERT_TRUE(client
                  .Send("PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kBig) +
                        "\r\n\r\n")
                  .ok());
  ASSERT_TRUE(client.SendPattern(kBig).ok());
  r = client.ReadResponse("PUT", Millis(20000));
  ASSERT_TRUE(r.complete()) << r.error;
  seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].body_bytes, kBig);
  EXPECT_EQ(seen[2].body_hash, testing::PatternHash(kBig));

  Behavior big;
  big.generated_body_bytes = kBig;
  big.chunked = true;
  up.SetBehavior(big);
  r = client.RoundTrip(testing::GetRequest("/download"), "GET", Millis(20000));
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.Header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(r.body_bytes, kBig);
  EXPECT_EQ(r.body_hash, testing::PatternHash(kBig));
}

TEST_F(DataPlaneTest, SwitchMovesTrafficOnAnOpenConnection) {
  TestUpstream& blue = AddUpstream("blue-1");
  TestUpstream& green = AddUpstream("green-1");
  ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig(
      {{"blue", {blue.address()}}, {"green", {green.address()}}}, "blue")));
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse r = client.RoundTrip(testing::GetRequest());
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream"), "blue-1");
  uint64_t before = router().GetStatus()->generation;

  Result<uint64_t> gen = router().Switch("green");
  ASSERT_TRUE(gen.ok()) << gen.status().ToString();
  EXPECT_GT(*gen, before);
  for (int i = 0; i < 3; ++i) {
    r = client.RoundTrip(testing::GetRequest());
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.Header("X-Upstream"), "green-1");
  }
  SlotStatus old = Slot("blue");
  EXPECT_FALSE(old.receives_traffic);
  EXPECT_TRUE(old.drained);
  // The idle pooled connection to the slot that lost traffic is closed.
  EXPECT_TRUE(blue.WaitFor([&] { return blue.open_connections() == 0; }, Millis(5000)));

  // The override header (with the router's secret) reaches the idle slot; an unknown slot is
  // refused.
  const std::string secret = "X-Turnout-Secret: " + router().GetPolicy()->override_header.secret;
  r = client.RoundTrip(testing::GetRequest("/", "X-Turnout-Slot: blue\r\n" + secret + "\r\n"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream"), "blue-1");
  r = client.RoundTrip(testing::GetRequest("/", "X-Turnout-Slot: purple\r\n" + secret + "\r\n"));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Header("X-Turnout-Error"), "bad_request");

  // Metrics saw every request of the slot: 3 switched + the 400, counted on the active slot.
  // A request is recorded just after its last byte is written, so wait for the last one.
  auto green_requests = [&]() -> uint64_t {
    auto window = router().GetWindowMetrics(std::chrono::seconds(60));
    if (!window.ok()) return 0;
    for (const auto& w : *window) {
      if (w.slot == "green") return w.window.counters.requests;
    }
    return 0;
  };
  EXPECT_TRUE(testing::WaitUntil([&] { return green_requests() == 4; }, Millis(5000)))
      << green_requests();
  EXPECT_NE(router().PrometheusText().find("slot=\"green\""), std::string::npos);
}

TEST_F(DataPlaneTest, UpgradeTunnelEchoesBothWays) {
  TestUpstream& up = AddUpstream("ws");
  up.SetBehavior(Behavior::Of(Behavior::Kind::kUpgradeEcho));
  ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig({{"blue", {up.address()}}}, "blue")));
  RawClient client;
  RawResponse r = OpenTunnel(client);
  ASSERT_TRUE(r.complete()) << r.error;
  ASSERT_EQ(r.status, 101);
  EXPECT_EQ(r.Header("Upgrade"), "websocket");
  EXPECT_TRUE(testing::WaitUntil([&] { return Slot("blue").tunnels == 1; }, Millis(5000)));
  EXPECT_EQ(Slot("blue").in_flight, 0);

  for (std::string msg : {"ping", "a longer message through the tunnel"}) {
    ASSERT_TRUE(client.Send(msg).ok());
    Result<std::string> echoed = client.ReadSome(msg.size());
    ASSERT_TRUE(echoed.ok()) << echoed.status().ToString();
    EXPECT_EQ(*echoed, msg);
  }
  client.Close();
  EXPECT_TRUE(testing::WaitUntil([&] { return Slot("blue").tunnels == 0; }, Millis(5000)));
}

TEST_F(DataPlaneTest, TunnelsOfASlotThatLostTrafficAreClosedAfterTunnelDrain) {
  TestUpstream& blue = AddUpstream("ws-blue");
  TestUpstream& green = AddUpstream("ws-green");
  blue.SetBehavior(Behavior::Of(Behavior::Kind::kUpgradeEcho));
  RouterConfig config = testing::MakeTestRouterConfig(
      {{"blue", {blue.address()}}, {"green", {green.address()}}}, "blue");
  config.timeouts.tunnel_drain = Millis(200);
  ASSERT_TRUE(StartRouter(config));
  RawClient client;
  RawResponse r = OpenTunnel(client);
  ASSERT_EQ(r.status, 101);
  ASSERT_TRUE(client.Send("x").ok());
  ASSERT_TRUE(client.ReadSome(1).ok());

  // The tunnel outlives a switch for tunnel_drain, then the router closes it.
  ASSERT_TRUE(router().Switch("green").ok());
  EXPECT_EQ(Slot("blue").tunnels, 1);
  EXPECT_TRUE(Slot("blue").drained);  // tunnels are reported apart from in-flight requests
  testing::CloseKind end = client.WaitForClose(Millis(5000));
  EXPECT_TRUE(end == testing::CloseKind::kClosed || end == testing::CloseKind::kReset);
  EXPECT_TRUE(testing::WaitUntil([&] { return Slot("blue").tunnels == 0; }, Millis(5000)));
}

TEST_F(DataPlaneTest, RouterErrorsHaveStatusesAndReasons) {
  TestUpstream& up = AddUpstream("b1");
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {up.address()}}}, "blue");
  config.timeouts.upstream_response = Millis(300);
  ASSERT_TRUE(StartRouter(config));

  up.SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  RawResponse r = Get();
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.Header("X-Turnout-Error"), "upstream_timeout");

  up.SetBehavior(Behavior::Of(Behavior::Kind::kBrokenHead));
  r = Get();
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);

  Behavior mid = Behavior::Of(Behavior::Kind::kBreakMidBody);
  mid.generated_body_bytes = 100000;
  up.SetBehavior(mid);
  r = Get();
  EXPECT_FALSE(r.complete());  // never a clean end of a truncated body

  r = Fetch("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 400);

  // A slot whose only instance refuses connections: 502 after the retry.
  up.Stop();
  r = Get();
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.Header("X-Turnout-Error"), "upstream_connect");
}

}  // namespace
}  // namespace turnout::router
