// The router refuses malformed or ambiguous client input before anything reaches an upstream,
// bounds slow and idle clients, and limits connections.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "router/testing/router_harness.h"
#include "router/worker.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::CloseKind;
using testing::Millis;
using testing::RawClient;
using testing::RawResponse;
using testing::TestUpstream;

class RouterInputTest : public testing::RouterTest {
 protected:
  void Start(void (*tweak)(RouterConfig&) = nullptr) {
    upstream_ = &AddUpstream("blue-1");
    RouterConfig config = testing::MakeTestRouterConfig({{"blue", {upstream_->address()}}}, "blue");
    config.limits.max_head_bytes = 8 * 1024;
    config.limits.max_target_bytes = 1024;
    config.limits.max_headers = 50;
    if (tweak != nullptr) tweak(config);
    ASSERT_TRUE(StartRouter(config));
  }

  // Sends `raw`, expects `status`, then the router must close the connection, and the upstream
  // must have seen neither a request nor a connection.
  void ExpectRejected(const std::string& raw, int status, const std::string& what) {
    SCOPED_TRACE(what);
    RawClient client;
    ASSERT_TRUE(client.Connect(address()).ok());
    RawResponse r = client.RoundTrip(raw);
    ASSERT_TRUE(r.complete()) << testing::OutcomeName(r.outcome) << " " << r.error;
    EXPECT_EQ(r.status, status) << r.raw_head << r.body;
    EXPECT_FALSE(r.keep_alive) << "a rejection must announce Connection: close";
    CloseKind end = client.WaitForClose(3s);
    EXPECT_TRUE(end == CloseKind::kClosed || end == CloseKind::kReset)
        << "connection left open after a rejection";
    EXPECT_EQ(upstream_->request_count(), 0u) << "the upstream saw the rejected request";
    EXPECT_EQ(upstream_->accepted_connections(), 0u) << "the router connected upstream";
  }

  TestUpstream* upstream_ = nullptr;
};

constexpr char kHead[] = "POST / HTTP/1.1\r\nHost: test.local\r\n";

TEST_F(RouterInputTest, ValidRequestPassesAsAControl) {
  Start();
  RawResponse r = Get("/hello");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Upstream"), "blue-1");
  EXPECT_EQ(upstream_->request_count(), 1u);
}

TEST_F(RouterInputTest, AmbiguousFramingIsRefusedWith400) {
  Start();
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n";
  struct Case {
    std::string what;
    std::string raw;
  };
  const std::vector<Case> cases = {
      {"CL and TE", std::string(kHead) +
                        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n" +
                        smuggled},
      {"TE and CL", std::string(kHead) +
                        "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n"
                        "0\r\n\r\n" +
                        smuggled},
      {"TE chunked, chunked",
       std::string(kHead) + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"TE gzip, chunked",
       std::string(kHead) + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"duplicate TE", std::string(kHead) +
                           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "0\r\n\r\n" +
                           smuggled},
      {"duplicate CL", std::string(kHead) + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
      {"differing CL", std::string(kHead) + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
      {"CL list", std::string(kHead) + "Content-Length: 3, 3\r\n\r\nabc"},
      {"signed CL +", std::string(kHead) + "Content-Length: +3\r\n\r\nabc"},
      {"signed CL -", std::string(kHead) + "Content-Length: -3\r\n\r\nabc"},
      {"CL with letters", std::string(kHead) + "Content-Length: 3a\r\n\r\nabc"},
      {"empty CL", std::string(kHead) + "Content-Length: \r\n\r\n"},
      {"overflowing CL", std::string(kHead) + "Content-Length: 99999999999999999999999\r\n\r\n"},
  };
  for (const Case& c : cases) {
    // A fresh router per case would hide nothing more; the upstream counters must stay 0.
    ExpectRejected(c.raw, 400, c.what);
  }
}

TEST_F(RouterInputTest, MalformedHeadsAreRefusedWith400) {
  Start();
  struct Case {
    std::string what;
    std::string raw;
  };
  const std::vector<Case> cases = {
      {"bare LF in head", "GET / HTTP/1.1\r\nHost: test.local\nX-A: b\r\n\r\n"},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: test.local\n\n"},
      {"bare CR", "GET / HTTP/1.1\r\nHost: test.local\rX-A: b\r\n\r\n"},
      {"space before colon", "GET / HTTP/1.1\r\nHost : test.local\r\n\r\n"},
      {"tab before colon", "GET / HTTP/1.1\r\nHost: test.local\r\nX-A\t: b\r\n\r\n"},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: test.local\r\nX-A: b\r\n c\r\n\r\n"},
      {"control char in value",
       "GET / HTTP/1.1\r\nHost: test.local\r\nX-A: b\x01"
       "c\r\n\r\n"},
      {"DEL in name",
       "GET / HTTP/1.1\r\nHost: test.local\r\nX\x7f"
       "A: b\r\n\r\n"},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: test.local\r\nX-A: b\0c\r\n\r\n", 46)},
      {"bad request line", "GET  / HTTP/1.1\r\nHost: test.local\r\n\r\n"},
      {"missing Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n"},
  };
  for (const Case& c : cases) ExpectRejected(c.raw, 400, c.what);
}

// The malformed chunk arrives in the same write as the head, so the router has it before it
// picks an upstream: it must refuse the request without forwarding any of it.
TEST_F(RouterInputTest, BadChunkedBodyIsRefusedWith400BeforeForwarding) {
  Start();
  struct Case {
    std::string what;
    std::string raw;
  };
  const std::vector<Case> cases = {
      {"bad chunk size",
       std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
      {"signed chunk size",
       std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"},
      {"bad chunk extension",
       std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n5;\"x\r\nhello\r\n0\r\n\r\n"},
  };
  for (const Case& c : cases) ExpectRejected(c.raw, 400, c.what);
}

TEST_F(RouterInputTest, OversizedHeadIs431AndLongTargetIs414) {
  Start();
  ExpectRejected(
      "GET / HTTP/1.1\r\nHost: test.local\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431,
      "head over max_head_bytes");
  std::string many = "GET / HTTP/1.1\r\nHost: test.local\r\n";
  for (int i = 0; i < 60; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  ExpectRejected(many + "\r\n", 431, "more than max_headers fields");
  ExpectRejected("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: test.local\r\n\r\n", 414,
                 "target over max_target_bytes");
}

TEST_F(RouterInputTest, UnsupportedVersionIs505) {
  Start();
  ExpectRejected("GET / HTTP/2.0\r\nHost: test.local\r\n\r\n", 505, "HTTP/2.0 request line");
}

TEST_F(RouterInputTest, SlowlorisGets408AfterHeadTimeout) {
  Start([](RouterConfig& c) { c.timeouts.head = 400ms; });
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  auto start = std::chrono::steady_clock::now();
  // A head that would take 5 s to arrive: the router must give up after `head`.
  std::string head = "GET / HTTP/1.1\r\nHost: test.local\r\nX-Slow: " + std::string(100, 'a');
  Status trickled = client.Trickle(head, 50ms, 5s);
  EXPECT_FALSE(trickled.ok()) << "the router let a head trickle in for 5 s";
  RawResponse r = client.ReadResponse("GET", 3s);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.complete()) << testing::OutcomeName(r.outcome) << " " << r.error;
  EXPECT_EQ(r.status, 408);
  EXPECT_GE(elapsed, 350ms);
  EXPECT_LT(elapsed, 4s);
  CloseKind end = client.WaitForClose(3s);
  EXPECT_TRUE(end == CloseKind::kClosed || end == CloseKind::kReset);
  EXPECT_EQ(upstream_->request_count(), 0u);
}

TEST_F(RouterInputTest, IdleKeepAliveConnectionIsClosedAfterClientIdle) {
  Start([](RouterConfig& c) { c.timeouts.client_idle = 300ms; });
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse r = client.RoundTrip(testing::GetRequest("/"));
  ASSERT_TRUE(r.complete());
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.keep_alive);
  auto idle_since = std::chrono::steady_clock::now();
  EXPECT_EQ(client.WaitForClose(5s), CloseKind::kClosed);
  auto idle_for = std::chrono::steady_clock::now() - idle_since;
  EXPECT_GE(idle_for, 250ms);
  EXPECT_LT(idle_for, 4s);
}

TEST_F(RouterInputTest, ActiveKeepAliveConnectionIsNotClosedEarly) {
  Start([](RouterConfig& c) { c.timeouts.client_idle = 2s; });
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  for (int i = 0; i < 20; ++i) {
    RawResponse r = client.RoundTrip(testing::GetRequest("/n" + std::to_string(i)));
    ASSERT_TRUE(r.complete()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(upstream_->request_count(), 20u);
}

TEST_F(RouterInputTest, ConnectionLimitRefusesConnectionsOverTheLimit) {
  Start([](RouterConfig& c) { c.limits.max_connections = 4; });
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 4; ++i) {
    auto client = std::make_unique<RawClient>();
    ASSERT_TRUE(client->Connect(address()).ok());
    RawResponse r = client->RoundTrip(testing::GetRequest("/held"));
    ASSERT_TRUE(r.complete()) << "connection " << i << ": " << r.error;
    ASSERT_EQ(r.status, 200);
    held.push_back(std::move(client));
  }
  // The fifth connection is not served: refused, closed, or answered 503.
  RawResponse over = Get("/over", "", 3s);
  EXPECT_FALSE(over.complete() && over.status >= 200 && over.status < 300)
      << "served over the connection limit: " << over.status;
  if (over.complete()) {
    EXPECT_EQ(over.status, 503);
  }
  // Counted as connection_limit on the active slot and in the router's refused total.
  auto totals = router().GetCumulativeMetrics();
  ASSERT_TRUE(totals.ok());
  EXPECT_GE(totals->at(0).window.counters.router_errors[static_cast<size_t>(
                metrics::RouterError::kConnectionLimit)],
            1u);
  EXPECT_NE(router().PrometheusText().find("turnout_client_connections_refused_total 1\n"),
            std::string::npos);
  EXPECT_NE(router().PrometheusText().find("turnout_client_connections_max 4\n"),
            std::string::npos);

  // Held connections still work.
  RawResponse again = held[0]->RoundTrip(testing::GetRequest("/held-again"));
  ASSERT_TRUE(again.complete()) << again.error;
  EXPECT_EQ(again.status, 200);

  // Freeing a slot lets a new client in (once the router has seen the close).
  held.pop_back();
  EXPECT_TRUE(testing::WaitUntil([&] {
    RawResponse r = Get("/after", "", 2s);
    return r.complete() && r.status == 200;
  }));
}

// The data plane never throws: a connection whose request memory cannot be allocated is
// answered 503 (or closed) and the router goes on serving the next one.
TEST_F(RouterInputTest, OutOfRequestMemoryRefusesOneConnectionAndTheRouterServesOn) {
  Start();
  FailRequestMemoryForTesting(1);
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse refused = client.RoundTrip("GET / HTTP/1.1\r\nHost: test.local\r\n\r\n");
  if (refused.complete()) {
    EXPECT_EQ(refused.status, 503) << refused.raw_head;
    EXPECT_FALSE(refused.keep_alive);
  }
  EXPECT_EQ(upstream_->request_count(), 0u);
  // The refused connection is closed and counted out, not left behind.
  CloseKind end = client.WaitForClose(3s);
  EXPECT_TRUE(end == CloseKind::kClosed || end == CloseKind::kReset);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (router().PrometheusText().find("turnout_client_connections 0\n") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(router().PrometheusText().find("turnout_client_connections 0\n"), std::string::npos)
      << router().PrometheusText();
  RawResponse next = Get("/after");
  ASSERT_TRUE(next.complete()) << next.error;
  EXPECT_EQ(next.status, 200);
}

}  // namespace
}  // namespace turnout::router
