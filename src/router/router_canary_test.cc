// Canary routing: the weight is honoured per sticky key exactly as StickyBucket says, clients
// never flip back while the weight rises, new clients get a key, and the override header
// reaches the inactive slot (with the secret when one is set).

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "router/policy.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::RawClient;
using testing::RawResponse;
using testing::TestUpstream;

class RouterCanaryTest : public testing::RouterTest {
 protected:
  void Start() {
    blue_ = &AddUpstream("blue");
    green_ = &AddUpstream("green");
    RouterConfig config = testing::MakeTestRouterConfig(
        {{"blue", {blue_->address()}}, {"green", {green_->address()}}}, "blue");
    ASSERT_TRUE(StartRouter(config));
  }

  CanaryPolicy CurrentCanary() {
    Result<RoutingPolicy> policy = router().GetPolicy();
    EXPECT_TRUE(policy.ok());
    EXPECT_TRUE(policy.ok() && policy->canary.has_value());
    return policy.ok() && policy->canary ? *policy->canary : CanaryPolicy{};
  }

  // The upstream that answered a request with these extra header lines.
  std::string UpstreamFor(const std::string& extra_headers) {
    RawResponse r = Get("/", extra_headers);
    EXPECT_TRUE(r.complete()) << r.error;
    return r.Header("X-Upstream");
  }

  static std::string Key(int i) { return "client-" + std::to_string(i); }

  // Sends one request per key over a few keep-alive connections; returns the upstream per key.
  std::vector<std::string> RouteKeys(int keys) {
    std::vector<std::string> where(keys);
    constexpr int kConnections = 4;
    std::vector<std::thread> threads;
    for (int t = 0; t < kConnections; ++t) {
      threads.emplace_back([this, t, keys, &where] {
        RawClient client;
        if (!client.Connect(address()).ok()) return;
        for (int i = t; i < keys; i += kConnections) {
          RawResponse r = client.RoundTrip(
              testing::GetRequest("/", "Cookie: a=b; turnout_sticky=" + Key(i) + "\r\n"));
          if (!r.complete()) {
            client.Close();
            if (!client.Connect(address()).ok()) return;
            continue;
          }
          where[i] = r.Header("X-Upstream");
        }
      });
    }
    for (std::thread& t : threads) t.join();
    return where;
  }

  TestUpstream* blue_ = nullptr;
  TestUpstream* green_ = nullptr;
};

TEST_F(RouterCanaryTest, QuarterWeightFollowsStickyBucketsExactly) {
  Start();
  ASSERT_TRUE(router().SetCanaryWeight("green", 2500).ok());
  const CanaryPolicy canary = CurrentCanary();
  ASSERT_EQ(canary.slot, "green");
  ASSERT_EQ(canary.weight_bp, 2500u);

  // Through the real router: every key lands exactly where the sticky hash says.
  constexpr int kRouted = 3000;
  std::vector<std::string> where = RouteKeys(kRouted);
  int mismatches = 0;
  int on_canary = 0;
  for (int i = 0; i < kRouted; ++i) {
    ASSERT_FALSE(where[i].empty()) << "no answer for key " << i;
    const bool expect_canary = ChoosesCanary(canary, Key(i));
    mismatches += (where[i] == "green") != expect_canary ? 1 : 0;
    on_canary += where[i] == "green" ? 1 : 0;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_NEAR(on_canary * 100.0 / kRouted, 25.0, 3.0);

  // The same function over 100k distinct keys: the share is within one point of the weight.
  int share = 0;
  for (int i = 0; i < 100000; ++i) share += ChoosesCanary(canary, Key(i)) ? 1 : 0;
  EXPECT_NEAR(share / 1000.0, 25.0, 1.0);
}

TEST_F(RouterCanaryTest, RaisingTheWeightNeverMovesAClientBack) {
  Start();
  constexpr int kClients = 1500;
  ASSERT_TRUE(router().SetCanaryWeight("green", 500).ok());
  const uint64_t seed = CurrentCanary().seed;
  std::vector<std::string> at5 = RouteKeys(kClients);
  ASSERT_TRUE(router().SetCanaryWeight("green", 2500).ok());
  EXPECT_EQ(CurrentCanary().seed, seed) << "changing only the weight must keep the seed";
  std::vector<std::string> at25 = RouteKeys(kClients);
  ASSERT_TRUE(router().SetCanaryWeight("green", 10000).ok());
  std::vector<std::string> at100 = RouteKeys(kClients);

  int green5 = 0, green25 = 0, flipped_back = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_FALSE(at5[i].empty() || at25[i].empty() || at100[i].empty()) << "key " << i;
    green5 += at5[i] == "green";
    green25 += at25[i] == "green";
    if (at5[i] == "green" && at25[i] != "green") ++flipped_back;
    if (at25[i] == "green" && at100[i] != "green") ++flipped_back;
    EXPECT_EQ(at100[i], "green");
  }
  EXPECT_EQ(flipped_back, 0);
  EXPECT_NEAR(green5 * 100.0 / kClients, 5.0, 2.0);
  EXPECT_NEAR(green25 * 100.0 / kClients, 25.0, 3.5);
  EXPECT_GT(green25, green5);
}

TEST_F(RouterCanaryTest, ClientWithoutKeyGetsACookieAndStays) {
  Start();
  ASSERT_TRUE(router().SetCanaryWeight("green", 5000).ok());
  const CanaryPolicy canary = CurrentCanary();
  for (int n = 0; n < 20; ++n) {
    RawResponse first = Get("/");
    ASSERT_TRUE(first.complete()) << first.error;
    std::string set_cookie = first.Header("Set-Cookie");
    ASSERT_EQ(set_cookie.rfind("turnout_sticky=", 0), 0u) << set_cookie;
    EXPECT_NE(set_cookie.find("Max-Age=86400"), std::string::npos) << set_cookie;
    std::string key = set_cookie.substr(15, set_cookie.find(';') - 15);
    ASSERT_FALSE(key.empty());
    // The first response already went where the generated key leads.
    EXPECT_EQ(first.Header("X-Upstream") == "green", ChoosesCanary(canary, key)) << key;
    for (int i = 0; i < 3; ++i) {
      RawResponse again = Get("/", "Cookie: turnout_sticky=" + key + "\r\n");
      ASSERT_TRUE(again.complete());
      EXPECT_EQ(again.Header("X-Upstream"), first.Header("X-Upstream"));
      EXPECT_FALSE(again.HasHeader("Set-Cookie")) << "a client with a key got a new one";
    }
  }
}

TEST_F(RouterCanaryTest, HeaderStickinessUsesTheHeaderAsKey) {
  Start();
  RoutingPolicy policy;
  policy.active = "blue";
  policy.canary = CanaryPolicy{"green", 3000, 42};
  policy.sticky.source = StickinessPolicy::Source::kHeader;
  policy.sticky.name = "X-User";
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  const CanaryPolicy canary = CurrentCanary();
  for (int i = 0; i < 200; ++i) {
    RawResponse r = Get("/", "X-User: " + Key(i) + "\r\n");
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.Header("X-Upstream") == "green", ChoosesCanary(canary, Key(i))) << Key(i);
    EXPECT_FALSE(r.HasHeader("Set-Cookie"));
  }
}

TEST_F(RouterCanaryTest, OverrideHeaderWithTheSecretReachesTheInactiveSlot) {
  Start();
  const std::string secret = "X-Turnout-Secret: " + router().GetPolicy()->override_header.secret;
  EXPECT_EQ(UpstreamFor(""), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\n" + secret + "\r\n"), "green");
  // An unknown slot is the caller's mistake: refused, not silently routed elsewhere.
  RawResponse unknown = Get("/", "X-Turnout-Slot: purple\r\n" + secret + "\r\n");
  ASSERT_TRUE(unknown.complete());
  EXPECT_EQ(unknown.status, 400);
  EXPECT_FALSE(unknown.HasHeader("X-Upstream"));
}

TEST_F(RouterCanaryTest, OverrideNeedsTheSecretWhenOneIsSet) {
  Start();
  RoutingPolicy policy;
  policy.active = "blue";
  policy.override_header.secret = "s3cret";
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\n"), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\nX-Turnout-Secret: guess\r\n"), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cret\r\n"), "green");
  for (const auto& seen : green_->RecordedRequests()) {
    EXPECT_FALSE(seen.HasHeader("X-Turnout-Secret"));
  }
}

// The defect: a router configured without a secret routed `X-Turnout-Slot: green` alone to the
// idle slot, for anyone. Now it generates a secret, and the header alone is ignored.
TEST_F(RouterCanaryTest, WithoutAConfiguredSecretTheRouterGeneratesOneAndTheHeaderAloneIsIgnored) {
  Start();
  const std::string secret = router().GetPolicy()->override_header.secret;
  ASSERT_EQ(secret.size(), 32u) << "128 bits, hex";
  EXPECT_EQ(secret.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\n"), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: purple\r\n"), "blue") << "ignored, not even a 400";
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\nX-Turnout-Secret: \r\n"), "blue");
  EXPECT_EQ(green_->request_count(), 0u);

  // Another router gets another secret.
  RouterConfig other = testing::MakeTestRouterConfig({{"blue", {blue_->address()}}}, "blue");
  auto second = Router::Create(other);
  ASSERT_TRUE(second.ok());
  EXPECT_NE((*second)->GetPolicy()->override_header.secret, secret);

  // A policy set without a secret keeps the current one: the header never works without it.
  RoutingPolicy policy;
  policy.active = "blue";
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  EXPECT_EQ(router().GetPolicy()->override_header.secret, secret);
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\n"), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\nX-Turnout-Secret: " + secret + "\r\n"), "green");
}

TEST_F(RouterCanaryTest, OnBadSecretRejectAnswers400AndRoutesNothing) {
  Start();
  RoutingPolicy policy;
  policy.active = "blue";
  policy.override_header.secret = "s3cret";
  policy.override_header.reject_bad_secret = true;
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  for (const std::string& headers :
       {std::string("X-Turnout-Slot: green\r\n"),
        std::string("X-Turnout-Slot: green\r\nX-Turnout-Secret: guess\r\n")}) {
    RawResponse r = Get("/", headers);
    ASSERT_TRUE(r.complete()) << r.error;
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.Header("X-Turnout-Error"), "bad_request");
    EXPECT_FALSE(r.HasHeader("X-Upstream"));
  }
  EXPECT_EQ(UpstreamFor(""), "blue");
  EXPECT_EQ(UpstreamFor("X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cret\r\n"), "green");
  EXPECT_EQ(blue_->request_count(), 1u);
}

TEST_F(RouterCanaryTest, NewCanarySlotGetsAFreshSeed) {
  Start();
  ASSERT_TRUE(router().SetCanaryWeight("green", 1000).ok());
  const uint64_t first = CurrentCanary().seed;
  ASSERT_TRUE(router().Switch("blue").ok());  // canary cleared
  ASSERT_TRUE(router().SetCanaryWeight("green", 1000).ok());
  EXPECT_NE(CurrentCanary().seed, first);
}

}  // namespace
}  // namespace turnout::router
