#include "router/routing_table.h"

#include <gtest/gtest.h>

#include <string>

namespace turnout::router {
namespace {

std::shared_ptr<const InstanceEntry> MakeInstance(uint64_t id, std::string address) {
  auto e = std::make_shared<InstanceEntry>();
  e->id = id;
  e->address = std::move(address);
  e->health = std::make_shared<InstanceHealth>();
  e->metrics = std::make_shared<metrics::SlotMetrics>(1, 10);
  return e;
}

RoutingTable MakeTable(RoutingPolicy policy) {
  RoutingTable t;
  t.policy = std::move(policy);
  uint64_t id = 1;
  for (const char* name : {"blue", "green"}) {
    SlotEntry s;
    s.runtime = std::make_shared<SlotRuntime>();
    s.runtime->name = name;
    s.runtime->metrics = std::make_shared<metrics::SlotMetrics>(1, 10);
    for (int i = 0; i < 3; ++i) {
      s.instances.push_back(
          MakeInstance(id++, std::string(name) + "-" + std::to_string(i) + ":80"));
    }
    t.slots.push_back(std::move(s));
  }
  IndexRoutingTable(&t);
  return t;
}

RoutingPolicy Policy(std::string active) {
  RoutingPolicy p;
  p.active = std::move(active);
  return p;
}

// Parses `raw` into `head`; the buffer must outlive the head.
void Parse(const std::string& raw, http::RequestHead* head) {
  http::ParseResult r = http::ParseRequestHead(raw, http::ParseLimits{}, head);
  ASSERT_EQ(r.state, http::ParseState::kComplete) << r.error_reason;
}

// SelectSlot for a request with these extra header lines.
SlotSelection Select(const RoutingTable& t, const std::string& extra_headers,
                     std::string_view generated_key = "0123456789abcdef") {
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n" + extra_headers + "\r\n";
  http::RequestHead head;
  Parse(raw, &head);
  return SelectSlot(t, head, generated_key);
}

TEST(RoutingTableTest, IndexesActiveAndCanary) {
  RoutingPolicy p = Policy("green");
  p.canary = CanaryPolicy{.slot = "blue", .weight_bp = 0, .seed = 7};
  RoutingTable t = MakeTable(p);
  EXPECT_EQ(t.active, 1);
  EXPECT_EQ(t.canary, -1);  // weight 0: the canary gets nothing
  EXPECT_TRUE(t.slots[1].receives_traffic);
  EXPECT_FALSE(t.slots[0].receives_traffic);

  p.canary->weight_bp = 1;
  t = MakeTable(p);
  EXPECT_EQ(t.canary, 0);
  EXPECT_TRUE(t.slots[0].receives_traffic);
  EXPECT_EQ(t.FindSlot("green"), 1);
  EXPECT_EQ(t.FindSlot("red"), -1);
}

TEST(RoutingTableTest, ActiveWithoutCanaryAndNoCookie) {
  RoutingTable t = MakeTable(Policy("blue"));
  SlotSelection s = Select(t, "");
  EXPECT_EQ(s.slot, 0);
  EXPECT_FALSE(s.set_cookie);  // no canary: no reason to hand out keys
}

TEST(RoutingTableTest, OverrideHeaderWithTheSecretWinsAndUnknownSlotIsReported) {
  RoutingPolicy p = Policy("blue");
  p.override_header.secret = "s3cret";
  RoutingTable t = MakeTable(p);
  SlotSelection s = Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cret\r\n");
  EXPECT_EQ(s.slot, 1);
  EXPECT_TRUE(s.by_override);
  EXPECT_EQ(Select(t, "x-turnout-slot: purple\r\nX-Turnout-Secret: s3cret\r\n").slot, -1);
}

// The defect: with no secret configured, anyone reached the idle slot with the header alone.
TEST(RoutingTableTest, WithoutASecretConfiguredTheOverrideHeaderIsNeverHonoured) {
  RoutingTable t = MakeTable(Policy("blue"));
  ASSERT_TRUE(t.policy.override_header.secret.empty());
  SlotSelection s = Select(t, "X-Turnout-Slot: green\r\n");
  EXPECT_EQ(s.slot, 0);
  EXPECT_FALSE(s.by_override);
  EXPECT_EQ(Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: \r\n").slot, 0);
  EXPECT_EQ(Select(t, "X-Turnout-Slot: purple\r\n").slot, 0) << "not even reported";
}

TEST(RoutingTableTest, AWrongSecretIsReportedWhenThePolicyRejectsIt) {
  RoutingPolicy p = Policy("blue");
  p.override_header.secret = "s3cret";
  p.override_header.reject_bad_secret = true;
  RoutingTable t = MakeTable(p);
  SlotSelection s = Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: guess\r\n");
  EXPECT_TRUE(s.bad_secret);
  EXPECT_EQ(s.slot, -1);
  EXPECT_TRUE(Select(t, "X-Turnout-Slot: green\r\n").bad_secret);
  s = Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cret\r\n");
  EXPECT_FALSE(s.bad_secret);
  EXPECT_EQ(s.slot, 1);
  EXPECT_FALSE(Select(t, "").bad_secret) << "no override header: normal routing";
}

TEST(RoutingTableTest, OverrideNeedsTheSecretWhenOneIsSet) {
  RoutingPolicy p = Policy("blue");
  p.override_header.secret = "s3cret";
  RoutingTable t = MakeTable(p);
  // Without the secret (or with a wrong one) the override is ignored: normal routing.
  EXPECT_EQ(Select(t, "X-Turnout-Slot: green\r\n").slot, 0);
  EXPECT_EQ(Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cres\r\n").slot, 0);
  EXPECT_EQ(Select(t, "X-Turnout-Slot: green\r\nX-Turnout-Secret: s3cret\r\n").slot, 1);
}

TEST(RoutingTableTest, CanaryFollowsTheStickyBucketOfTheCookie) {
  RoutingPolicy p = Policy("blue");
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 5000, .seed = 42};
  RoutingTable t = MakeTable(p);
  int canary = 0;
  for (int i = 0; i < 200; ++i) {
    std::string key = "client-" + std::to_string(i);
    std::string raw =
        "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=b; turnout_sticky=" + key + "; c=d\r\n\r\n";
    http::RequestHead head;
    Parse(raw, &head);
    SlotSelection s = SelectSlot(t, head, "unused");
    EXPECT_FALSE(s.set_cookie);
    int expected = StickyBucket(key, 42) < 5000 ? 1 : 0;
    EXPECT_EQ(s.slot, expected) << key;
    canary += s.slot;
  }
  EXPECT_GT(canary, 50);
  EXPECT_LT(canary, 150);
}

TEST(RoutingTableTest, ClientWithoutKeyGetsTheGeneratedOne) {
  RoutingPolicy p = Policy("blue");
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 10000, .seed = 1};
  RoutingTable t = MakeTable(p);
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nCookie: other=1\r\n\r\n";
  http::RequestHead head;
  Parse(raw, &head);
  SlotSelection s = SelectSlot(t, head, "0123456789abcdef");
  EXPECT_EQ(s.slot, 1);
  EXPECT_TRUE(s.set_cookie);

  // Header stickiness: no cookie is set, the generated key still routes.
  p.sticky.source = StickinessPolicy::Source::kHeader;
  p.sticky.name = "X-User";
  t = MakeTable(p);
  s = SelectSlot(t, head, "0123456789abcdef");
  EXPECT_EQ(s.slot, 1);
  EXPECT_FALSE(s.set_cookie);
}

TEST(RoutingTableTest, FindStickyKeyFromHeaderOrQuotedCookie) {
  StickinessPolicy cookie;
  std::string raw =
      "GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\nCookie: turnout_sticky=\"abc\"\r\n"
      "X-User: u1\r\n\r\n";
  http::RequestHead head;
  Parse(raw, &head);
  EXPECT_EQ(FindStickyKey(cookie, head.headers), "abc");
  StickinessPolicy header;
  header.source = StickinessPolicy::Source::kHeader;
  header.name = "x-user";
  EXPECT_EQ(FindStickyKey(header, head.headers), "u1");
  header.name = "X-Missing";
  EXPECT_EQ(FindStickyKey(header, head.headers), "");
}

TEST(RoutingTableTest, PickInstanceRoundRobinsOverRoutableInstances) {
  RoutingTable t = MakeTable(Policy("blue"));
  const SlotEntry& blue = t.slots[0];
  Clock::TimePoint now{};
  uint32_t cursor = 0;
  EXPECT_EQ(PickInstance(blue, now, &cursor)->address, "blue-0:80");
  EXPECT_EQ(PickInstance(blue, now, &cursor)->address, "blue-1:80");
  EXPECT_EQ(PickInstance(blue, now, &cursor)->address, "blue-2:80");
  EXPECT_EQ(PickInstance(blue, now, &cursor)->address, "blue-0:80");

  blue.instances[1]->health->healthy.store(false);
  for (int i = 0; i < 6; ++i) EXPECT_NE(PickInstance(blue, now, &cursor)->address, "blue-1:80");

  // A retry prefers another instance, and falls back to the failed one when it is alone.
  const InstanceEntry* failed = blue.instances[0].get();
  EXPECT_EQ(PickInstance(blue, now, &cursor, failed)->address, "blue-2:80");
  blue.instances[2]->health->healthy.store(false);
  EXPECT_EQ(PickInstance(blue, now, &cursor, failed), failed);
  blue.instances[0]->health->healthy.store(false);
  EXPECT_EQ(PickInstance(blue, now, &cursor), nullptr);
}

TEST(RoutingTableTest, PickInstanceSkipsEjectedInstances) {
  RoutingTable t = MakeTable(Policy("blue"));
  const SlotEntry& blue = t.slots[0];
  Clock::TimePoint now{std::chrono::seconds(100)};
  blue.instances[0]->health->ejected_until_ns.store(
      (now + std::chrono::seconds(10)).time_since_epoch().count());
  uint32_t cursor = 0;
  for (int i = 0; i < 4; ++i) EXPECT_NE(PickInstance(blue, now, &cursor)->address, "blue-0:80");
  now += std::chrono::seconds(11);
  bool seen = false;
  for (int i = 0; i < 3; ++i) seen |= PickInstance(blue, now, &cursor)->address == "blue-0:80";
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace turnout::router
