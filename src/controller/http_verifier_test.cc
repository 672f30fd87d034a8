// HttpVerifier against a real loopback server (router/testing's TestUpstream): the mix as sent,
// the concurrency bound, errors and the timeout. Bounded: at most a few hundred requests.

#include "controller/http_verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "router/testing/test_upstream.h"

namespace turnout::controller {
namespace {

using router::testing::Behavior;
using router::testing::ReceivedRequest;
using router::testing::TestUpstream;

std::unique_ptr<TestUpstream> Upstream() {
  auto u = TestUpstream::Start("app");
  EXPECT_TRUE(u.ok()) << u.status().ToString();
  return u.ok() ? std::move(*u) : nullptr;
}

PerformanceRequest Mix(const std::string& address, int requests, int concurrency) {
  PerformanceRequest r;
  r.address = address;
  r.paths = {{"GET", "/a", 3}, {"POST", "/b", 1}};
  r.requests = requests;
  r.concurrency = concurrency;
  r.timeout = Millis(20000);
  return r;
}

TEST(HttpVerifierTest, SendsTheMixAndMeasuresEveryRequest) {
  auto upstream = Upstream();
  ASSERT_TRUE(upstream);
  upstream->SetHandler([&](const ReceivedRequest&) {
    Behavior b = Behavior::Respond(200, "ok");
    b.delay = Millis(2);
    return b;
  });
  HttpVerifier verifier;
  Result<PerformanceResult> r = verifier.MeasurePerformance(Mix(upstream->address(), 200, 4));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->count, 200);
  EXPECT_EQ(r->errors, 0);
  EXPECT_FALSE(r->timed_out);
  EXPECT_GE(r->p50_ms, 2.0);  // the upstream's delay is part of every latency
  EXPECT_LE(r->p50_ms, r->p95_ms);
  EXPECT_LE(r->p95_ms, r->p99_ms);
  std::map<std::string, int> seen;
  for (const auto& req : upstream->RecordedRequests()) ++seen[req.method + " " + req.target];
  EXPECT_EQ(seen["GET /a"], 150);
  EXPECT_EQ(seen["POST /b"], 50);
  // One request per connection (http_verifier.h): latency includes the connect.
  EXPECT_EQ(upstream->accepted_connections(), 200u);
}

TEST(HttpVerifierTest, FiveHundredsAndRefusedConnectionsAreErrors) {
  auto upstream = Upstream();
  ASSERT_TRUE(upstream);
  upstream->SetHandler([](const ReceivedRequest& req) {
    return req.target == "/b" ? Behavior::Respond(503, "busy") : Behavior::Respond(200, "ok");
  });
  HttpVerifier verifier;
  Result<PerformanceResult> r = verifier.MeasurePerformance(Mix(upstream->address(), 40, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 40);
  EXPECT_EQ(r->errors, 10);
  EXPECT_EQ(r->first_error, "503 from POST /b");

  Result<PerformanceResult> refused =
      verifier.MeasurePerformance(Mix(router::testing::RefusingAddress(), 4, 2));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->errors, 4);
  EXPECT_NE(refused->first_error.find("refused"), std::string::npos) << refused->first_error;
}

TEST(HttpVerifierTest, TheTimeoutBoundsTheWholeCheck) {
  auto upstream = Upstream();
  ASSERT_TRUE(upstream);
  upstream->SetHandler([](const ReceivedRequest&) {
    Behavior b = Behavior::Respond(200, "ok");
    b.delay = Millis(100);
    return b;
  });
  HttpVerifier verifier;
  PerformanceRequest req = Mix(upstream->address(), 1000, 2);
  req.timeout = Millis(500);
  const auto start = std::chrono::steady_clock::now();
  Result<PerformanceResult> r = verifier.MeasurePerformance(req);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(r->count, 1000);
  EXPECT_EQ(r->errors, 0);  // the requests the timeout cut off are not the service's errors
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(verifier.MeasurePerformance(Mix("no-port", 1, 1)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnout::controller
