// How the router answers when upstreams fail: the right status, retries only when safe, and
// never a clean-looking response that is really truncated.

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::RawClient;
using testing::RawResponse;
using testing::TestUpstream;
using Kind = Behavior::Kind;

class RouterUpstreamFailureTest : public testing::RouterTest {
 protected:
  void StartWith(std::vector<std::string> blue, void (*tweak)(RouterConfig&) = nullptr) {
    RouterConfig config = testing::MakeTestRouterConfig({{"blue", blue}}, "blue");
    if (tweak != nullptr) tweak(config);
    ASSERT_TRUE(StartRouter(config));
  }
};

// router.h: a body that stops moving is aborted, and the client must see a broken transfer (a
// reset), never a clean end that looks like a complete response framed by close.
TEST_F(RouterUpstreamFailureTest, BodyIdleTimeoutResetsTheClientConnection) {
  TestUpstream& slow = AddUpstream("blue-slow");
  Behavior b = Behavior::Respond(200, std::string(1000, 'x'));
  b.body_delay = 3000ms;  // the head goes out, the body stalls past body_idle
  slow.SetBehavior(b);
  StartWith({slow.address()}, [](RouterConfig& c) { c.timeouts.body_idle = 200ms; });
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  ASSERT_TRUE(client.Send(testing::GetRequest("/stall")).ok());
  RawResponse r = client.ReadResponse("GET", 2000ms);
  EXPECT_EQ(r.status, 200) << "the head was relayed";
  EXPECT_EQ(r.outcome, RawResponse::Outcome::kReset) << testing::OutcomeName(r.outcome);
}

TEST_F(RouterUpstreamFailureTest, ConnectRefusedIs502) {
  StartWith({testing::RefusingAddress()});
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);
  EXPECT_FALSE(r.HasHeader("X-Upstream"));
}

TEST_F(RouterUpstreamFailureTest, ConnectRefusedIsRetriedOnAnotherInstance) {
  TestUpstream& live = AddUpstream("blue-live");
  StartWith({testing::RefusingAddress(), live.address()});
  // Enough requests that round robin picks the dead instance first several times.
  for (int i = 0; i < 10; ++i) {
    RawResponse r = Get("/retry");
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200) << "request " << i;
    EXPECT_EQ(r.Header("X-Upstream"), "blue-live");
  }
  EXPECT_EQ(live.request_count(), 10u);
}

// An instance that is shutting down closes connections it has accepted (its listen backlog) or
// read a request from without answering. On a new connection that is as safe to retry as a
// refused connect for an idempotent request whose body is buffered: nothing was answered. A
// rolling update met this as a 502 when a request picked an instance just as it left the slot.
TEST_F(RouterUpstreamFailureTest, IdempotentRequestClosedUnansweredIsRetriedOnAnotherInstance) {
  TestUpstream& closing = AddUpstream("blue-closing");
  closing.SetBehavior(Behavior::Of(Kind::kCloseBeforeResponse));
  TestUpstream& live = AddUpstream("blue-live");
  StartWith({closing.address(), live.address()});
  for (int i = 0; i < 10; ++i) {
    RawResponse r = testing::FetchOnce(address(), testing::GetRequest("/retry"));
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200) << "request " << i;
    EXPECT_EQ(r.Header("X-Upstream"), "blue-live");
  }
  EXPECT_GT(closing.request_count(), 0u) << "round robin picked the closing instance first";
  EXPECT_EQ(live.request_count(), 10u);
}

TEST_F(RouterUpstreamFailureTest, IdempotentRequestResetUnansweredIsRetriedOnAnotherInstance) {
  TestUpstream& reset = AddUpstream("blue-reset");
  reset.SetBehavior(Behavior::Of(Kind::kReset));
  TestUpstream& live = AddUpstream("blue-live");
  StartWith({reset.address(), live.address()});
  for (int i = 0; i < 10; ++i) {
    RawResponse r = testing::FetchOnce(address(), testing::GetRequest("/retry"));
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200) << "request " << i;
  }
  EXPECT_GT(reset.request_count(), 0u);
}

// A POST may have had its effect before the upstream closed: it is never sent twice.
TEST_F(RouterUpstreamFailureTest, PostClosedUnansweredIsNotRetried) {
  TestUpstream& closing = AddUpstream("blue-closing");
  closing.SetBehavior(Behavior::Of(Kind::kCloseBeforeResponse));
  TestUpstream& live = AddUpstream("blue-live");
  StartWith({closing.address(), live.address()});
  int bad_gateway = 0;
  for (int i = 0; i < 10; ++i) {
    RawResponse r =
        testing::FetchOnce(address(),
                           "POST /order HTTP/1.1\r\nHost: test.local\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\nhi",
                           "POST");
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    if (r.status == 502) ++bad_gateway;
  }
  EXPECT_EQ(static_cast<uint64_t>(bad_gateway), closing.request_count());
  EXPECT_EQ(closing.request_count() + live.request_count(), 10u) << "a POST reached two instances";
  EXPECT_GT(bad_gateway, 0);
}

TEST_F(RouterUpstreamFailureTest, NoHealthyInstanceIs503) {
  TestUpstream& sick = AddUpstream("blue-sick");
  sick.SetHealthy(false);
  StartWith({sick.address()}, [](RouterConfig& c) {
    c.health.enabled = true;
    c.health.interval = 50ms;
    c.health.timeout = 250ms;
    c.health.fall = 1;
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return !Instance("blue", sick.address()).healthy; }));
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(sick.request_count(), 0u);
}

// A response to HEAD has no body (RFC 9110 §9.3.2), the router's own ones included: a body
// would be read by a keep-alive client as the start of the next response.
TEST_F(RouterUpstreamFailureTest, TheRoutersOwnAnswerToHeadHasNoBody) {
  StartWith({testing::RefusingAddress()});
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  ASSERT_TRUE(client.Send("HEAD / HTTP/1.1\r\nHost: test.local\r\n\r\n").ok());
  RawResponse head = client.ReadResponse("HEAD", 5000ms);
  ASSERT_TRUE(head.complete()) << head.error;
  EXPECT_EQ(head.status, 502);
  EXPECT_EQ(head.body, "");
  ASSERT_TRUE(client.Send(testing::GetRequest("/")).ok());
  RawResponse next = client.ReadResponse("GET", 5000ms);
  ASSERT_TRUE(next.complete()) << next.error;
  EXPECT_EQ(next.status, 502) << "the second response on the connection is read intact";
}

TEST_F(RouterUpstreamFailureTest, ResponseTimeoutIs504) {
  TestUpstream& slow = AddUpstream("blue-hang");
  slow.SetBehavior(Behavior::Of(Kind::kHang));
  StartWith({slow.address()}, [](RouterConfig& c) { c.timeouts.upstream_response = 300ms; });
  auto start = std::chrono::steady_clock::now();
  RawResponse r = Get("/", "", 5s);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 504);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 4s);
}

TEST_F(RouterUpstreamFailureTest, ResetBeforeHeadIs502) {
  TestUpstream& up = AddUpstream("blue-reset");
  up.SetBehavior(Behavior::Of(Kind::kReset));
  StartWith({up.address()});
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);
}

TEST_F(RouterUpstreamFailureTest, CloseBeforeHeadIs502) {
  TestUpstream& up = AddUpstream("blue-close");
  up.SetBehavior(Behavior::Of(Kind::kCloseBeforeResponse));
  StartWith({up.address()});
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);
  // docs/router.md "Retries": once, on the same instance when it is the only one.
  EXPECT_EQ(up.request_count(), 2u);
}

TEST_F(RouterUpstreamFailureTest, InvalidResponseFramingIs502) {
  TestUpstream& up = AddUpstream("blue-bad");
  StartWith({up.address()});
  for (Kind kind : {Kind::kContentLengthAndChunked, Kind::kBrokenHead}) {
    up.SetBehavior(Behavior::Of(kind));
    RawResponse r = Get("/");
    ASSERT_TRUE(r.complete()) << r.error;
    EXPECT_EQ(r.status, 502) << static_cast<int>(kind);
    EXPECT_EQ(r.body.find("hello"), std::string::npos) << "smuggled upstream body reached client";
  }
}

TEST_F(RouterUpstreamFailureTest, BreakMidBodyNeverLooksComplete) {
  TestUpstream& up = AddUpstream("blue-break");
  Behavior b = Behavior::Of(Kind::kBreakMidBody);
  b.generated_body_bytes = 1 << 20;
  up.SetBehavior(b);
  StartWith({up.address()});
  for (int i = 0; i < 3; ++i) {
    RawClient client;
    ASSERT_TRUE(client.Connect(address()).ok());
    RawResponse r = client.RoundTrip(testing::GetRequest("/big"), "GET", 5s);
    EXPECT_FALSE(r.complete()) << "a truncated body was delivered as a complete response";
    EXPECT_TRUE(r.outcome == RawResponse::Outcome::kClosed ||
                r.outcome == RawResponse::Outcome::kReset)
        << testing::OutcomeName(r.outcome);
    if (r.status != 0) {
      EXPECT_EQ(r.status, 200);
      EXPECT_LT(r.body_bytes, uint64_t{1} << 20);
    }
  }
}

TEST_F(RouterUpstreamFailureTest, StalePooledConnectionIsRetriedTransparently) {
  TestUpstream& up = AddUpstream("blue-stale");
  // Every upstream connection serves one response and is then closed without notice, as by an
  // upstream keep-alive timeout: any pooled connection the router reuses is dead.
  Behavior b;
  b.silent_close_after = true;
  up.SetBehavior(b);
  StartWith({up.address()});
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  for (int i = 0; i < 20; ++i) {
    RawResponse r = client.RoundTrip(testing::GetRequest("/stale" + std::to_string(i)));
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200) << "request " << i;
    ASSERT_TRUE(r.keep_alive);
  }
  EXPECT_EQ(up.request_count(), 20u);
  EXPECT_GE(up.accepted_connections(), 20u);
}

TEST_F(RouterUpstreamFailureTest, KeepAliveUpstreamConnectionsArePooled) {
  TestUpstream& up = AddUpstream("blue-pool");
  StartWith({up.address()});
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  for (int i = 0; i < 30; ++i) {
    RawResponse r = client.RoundTrip(testing::GetRequest("/p"));
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.status, 200);
  }
  // One client connection lives on one worker; its requests reuse one pooled connection.
  EXPECT_LE(up.accepted_connections(), 2u);
}

TEST_F(RouterUpstreamFailureTest, PostIsNotReplayedAfterTheUpstreamGotIt) {
  TestUpstream& a = AddUpstream("blue-a");
  TestUpstream& b = AddUpstream("blue-b");
  a.SetBehavior(Behavior::Of(Kind::kReset));
  b.SetBehavior(Behavior::Of(Kind::kReset));
  StartWith({a.address(), b.address()});
  RawResponse r =
      Fetch("POST /pay HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\n\r\nabc", "POST");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 502);
  // The request reached an upstream once; a non-idempotent request must not be sent again.
  EXPECT_EQ(a.request_count() + b.request_count(), 1u);
}

}  // namespace
}  // namespace turnout::router
