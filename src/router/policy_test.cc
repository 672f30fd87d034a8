#include "router/policy.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace turnout::router {
namespace {

const std::vector<std::string> kSlots = {"blue", "green"};

TEST(ParseWeightPercent, AcceptsExactPercentages) {
  EXPECT_EQ(ParseWeightPercent("25").value(), 2500u);
  EXPECT_EQ(ParseWeightPercent("25%").value(), 2500u);
  EXPECT_EQ(ParseWeightPercent("0.05").value(), 5u);
  EXPECT_EQ(ParseWeightPercent("12.34").value(), 1234u);
  EXPECT_EQ(ParseWeightPercent("12.5").value(), 1250u);
  EXPECT_EQ(ParseWeightPercent("100").value(), 10000u);
  EXPECT_EQ(ParseWeightPercent("100.00").value(), 10000u);
  EXPECT_EQ(ParseWeightPercent("0").value(), 0u);
}

TEST(ParseWeightPercent, RefusesEverythingElse) {
  for (const char* bad : {"100.01", "-1", "1.234", "abc", "", "%", "101", "1000", "25.", ".5",
                          " 25", "25 ", "2 5", "25%%", "+5", "1e2", "0x10", "99999999999999"}) {
    auto r = ParseWeightPercent(bad);
    EXPECT_FALSE(r.ok()) << "accepted '" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("expected a percentage"), std::string::npos);
    }
  }
}

TEST(StickyBucket, IsAFixedFunction) {
  // These values pin the hash: clients are routed by it across versions, so it must never move.
  EXPECT_EQ(StickyBucket("", 0), StickyBucket("", 0));
  EXPECT_LT(StickyBucket("client-1", 42), 10000u);
  EXPECT_NE(StickyBucket("client-1", 42), StickyBucket("client-1", 43));
  const uint32_t pinned[] = {StickyBucket("a", 1), StickyBucket("0123456789abcdef", 7),
                             StickyBucket("turnout_sticky=xyz", 123456789)};
  EXPECT_EQ(pinned[0], 3562u);
  EXPECT_EQ(pinned[1], 5005u);
  EXPECT_EQ(pinned[2], 6699u);
}

TEST(StickyBucket, IsUniform) {
  std::mt19937_64 rng(20261122);
  std::vector<std::string> keys;
  keys.reserve(100000);
  for (int i = 0; i < 100000; ++i) {
    std::string key(8 + rng() % 24, ' ');
    for (char& c : key) c = static_cast<char>('!' + rng() % 94);
    keys.push_back(std::move(key));
  }
  const uint64_t seed = 0x5eed;
  for (uint32_t percent : {5u, 25u, 50u}) {
    int below = 0;
    for (const auto& k : keys) below += StickyBucket(k, seed) < percent * 100 ? 1 : 0;
    double share = below / 1000.0;  // in percent of 100k
    EXPECT_NEAR(share, percent, 1.0) << "weight " << percent;
  }
}

TEST(StickyBucket, RaisingTheWeightNeverMovesACanaryClientBack) {
  std::mt19937_64 rng(7);
  CanaryPolicy canary{.slot = "green", .weight_bp = 0, .seed = 99};
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back("k" + std::to_string(rng()));
  std::vector<bool> was_canary(keys.size(), false);
  for (uint32_t w : {0u, 1u, 100u, 500u, 1000u, 2500u, 5000u, 7500u, 9999u, 10000u}) {
    canary.weight_bp = w;
    size_t on_canary = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      bool now = ChoosesCanary(canary, keys[i]);
      EXPECT_FALSE(was_canary[i] && !now) << "key " << keys[i] << " flipped back at " << w;
      was_canary[i] = now;
      on_canary += now ? 1 : 0;
    }
    if (w == 0) {
      EXPECT_EQ(on_canary, 0u);
    }
    if (w == 10000) {
      EXPECT_EQ(on_canary, keys.size());
    }
  }
}

TEST(ValidatePolicy, AcceptsAGoodPolicy) {
  RoutingPolicy p;
  p.active = "blue";
  EXPECT_TRUE(ValidatePolicy(p, kSlots).ok());
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 10000, .seed = 1};
  EXPECT_TRUE(ValidatePolicy(p, kSlots).ok());
}

TEST(ValidatePolicy, RefusesWhatCannotWork) {
  RoutingPolicy p;
  EXPECT_EQ(ValidatePolicy(p, kSlots).code(), StatusCode::kInvalidArgument);
  p.active = "red";
  Status s = ValidatePolicy(p, kSlots);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("blue, green"), std::string::npos) << s.message();
  p.active = "blue";
  p.canary = CanaryPolicy{.slot = "blue", .weight_bp = 100};
  EXPECT_NE(ValidatePolicy(p, kSlots).message().find("already the active"), std::string::npos);
  p.canary = CanaryPolicy{.slot = "red", .weight_bp = 100};
  EXPECT_EQ(ValidatePolicy(p, kSlots).code(), StatusCode::kNotFound);
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 10001};
  EXPECT_FALSE(ValidatePolicy(p, kSlots).ok());
  p.canary.reset();
  p.sticky.name = "bad name";
  EXPECT_FALSE(ValidatePolicy(p, kSlots).ok());
  p.sticky.name = "ok";
  p.override_header.header = "X:Slot";
  EXPECT_FALSE(ValidatePolicy(p, kSlots).ok());
  p.override_header.header = "";  // disables overrides: fine
  EXPECT_TRUE(ValidatePolicy(p, kSlots).ok());
}

TEST(PolicyJson, RoundTripsWithoutLeakingTheSecret) {
  RoutingPolicy p;
  p.active = "blue";
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 1234, .seed = 18446744073709551557ull};
  p.sticky = {
      .source = StickinessPolicy::Source::kHeader, .name = "X-User", .cookie_max_age_seconds = 60};
  p.override_header = {.header = "X-Slot", .secret = "s3cret", .reject_bad_secret = true};

  std::string shown = PolicyToJson(p);
  EXPECT_NE(shown.find("\"on_bad_secret\":\"reject\""), std::string::npos) << shown;
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\"secret_set\":true"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\"weight\":12.34"), std::string::npos) << shown;
  auto back = ParsePolicyJson(shown);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  RoutingPolicy expected = p;
  expected.override_header.secret.clear();
  EXPECT_EQ(*back, expected);

  auto full = ParsePolicyJson(PolicyToJson(p, /*include_secret=*/true));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(*full, p);
}

TEST(PolicyJson, MissingFieldsKeepDefaults) {
  auto p = ParsePolicyJson(R"({"active":"green","canary":{"slot":"blue","weight":"5%"}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->active, "green");
  ASSERT_TRUE(p->canary.has_value());
  EXPECT_EQ(p->canary->weight_bp, 500u);
  EXPECT_EQ(p->canary->seed, 0u);
  EXPECT_EQ(p->sticky, StickinessPolicy{});
  EXPECT_EQ(p->override_header, OverridePolicy{});
}

TEST(PolicyJson, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {"{", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"active":1})", "policy.active: expected a string, got number"},
      {R"({"actve":"blue"})", "unknown field 'actve'"},
      {R"({"canary":{"slot":"g","weight":"x"}})", "policy.canary.weight"},
      {R"({"canary":{"slot":"g","weight":1.234}})", "at most two decimals"},
      {R"({"canary":{"slot":"g","weight":101}})", "within 0..100"},
      {R"({"canary":{"weight":1}})", "policy.canary.slot: missing"},
      {R"({"canary":{"slot":"g","seed":-1}})", "policy.canary.seed"},
      {R"({"canary":"green"})", "policy.canary: expected an object or null"},
      {R"({"sticky":{"source":"query"}})", "policy.sticky.source"},
      {R"({"sticky":{"cookie_max_age":"1d"}})", "policy.sticky.cookie_max_age"},
      {R"({"override":{"header":false}})", "policy.override.header: expected a string"},
      {R"({"override":{"x":1}})", "policy.override: unknown field 'x'"},
      {R"({"override":{"on_bad_secret":"drop"}})", "policy.override.on_bad_secret: expected"},
  };
  for (const auto& c : cases) {
    auto r = ParsePolicyJson(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.json << " -> " << r.status().message();
  }
}

TEST(FillCanarySeed, KeepsTheSeedForTheSameSlotOnly) {
  RoutingPolicy current;
  current.active = "blue";
  current.canary = CanaryPolicy{.slot = "green", .weight_bp = 500, .seed = 77};
  RoutingPolicy next = current;
  next.canary->weight_bp = 2500;
  next.canary->seed = 0;
  FillCanarySeed(current, &next);
  EXPECT_EQ(next.canary->seed, 77u);

  next.canary = CanaryPolicy{.slot = "red", .weight_bp = 100, .seed = 0};
  FillCanarySeed(current, &next);
  EXPECT_NE(next.canary->seed, 0u);
  EXPECT_NE(next.canary->seed, 77u);

  next.canary->seed = 5;  // an explicit seed is kept
  FillCanarySeed(current, &next);
  EXPECT_EQ(next.canary->seed, 5u);
}

}  // namespace
}  // namespace turnout::router
