// RouterControl's policy updates are compare-and-set on the generation: writers that race, in
// process and over the admin API, lose none of each other's changes.

#include "router/router_control.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "router/admin_client.h"
#include "router/admin_server.h"
#include "router/router.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

// One writer's change: one more second of sticky cookie age. Counting them shows lost updates.
Result<uint64_t> AddOneSecond(RouterControl& control) {
  return control.UpdatePolicy([](const RoutingPolicy& current, uint64_t) -> Result<RoutingPolicy> {
    RoutingPolicy next = current;
    next.sticky.cookie_max_age_seconds += 1;
    std::this_thread::yield();  // widens the window in which a read-modify-write would race
    return next;
  });
}

// Forwards to a router, yielding after every read: a slow caller. Switch and SetCanaryWeight
// are the base class's, so a read-modify-write in them would race with the other writers.
class SlowReader : public RouterControl {
 public:
  explicit SlowReader(RouterControl& inner) : inner_(inner) {}
  Result<RouterStatus> GetStatus() override { return Yield(inner_.GetStatus()); }
  Result<RoutingPolicy> GetPolicy() override { return Yield(inner_.GetPolicy()); }
  Result<uint64_t> SetPolicy(const RoutingPolicy& p) override { return inner_.SetPolicy(p); }
  Result<uint64_t> SetPolicyIf(const RoutingPolicy& p, uint64_t g) override {
    return inner_.SetPolicyIf(p, g);
  }
  Result<uint64_t> UpdatePolicy(const PolicyChange& change) override {
    return inner_.UpdatePolicy(change);
  }
  Result<uint64_t> SetSlotInstances(const std::string& slot,
                                    const std::vector<std::string>& instances) override {
    return inner_.SetSlotInstances(slot, instances);
  }
  Result<SlotStatus> GetSlotStatus(const std::string& slot) override {
    return inner_.GetSlotStatus(slot);
  }
  Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds w) override {
    return inner_.GetWindowMetrics(w);
  }

 private:
  template <typename T>
  static T Yield(T value) {
    std::this_thread::yield();
    return value;
  }
  RouterControl& inner_;
};

class RouterControlTest : public testing::RouterTest {
 protected:
  void SetUp() override {
    TestUpstream& blue = AddUpstream("blue");
    TestUpstream& green = AddUpstream("green");
    ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig(
        {{"blue", {blue.address()}}, {"green", {green.address()}}}, "blue")));
    initial_age_ = router().GetPolicy()->sticky.cookie_max_age_seconds;
  }
  void TearDown() override {
    if (admin_) admin_->Stop();  // before the router it serves
    testing::RouterTest::TearDown();
  }
  std::unique_ptr<AdminClient> StartAdmin() {
    AdminServer::Options options;
    options.address = "127.0.0.1:0";
    options.token = "tkn";
    admin_ = std::make_unique<AdminServer>(options, router(), nullptr);
    EXPECT_TRUE(admin_->Start().ok());
    auto client = AdminClient::Create(admin_->address(), "tkn", Millis(5000));
    EXPECT_TRUE(client.ok());
    return client.ok() ? std::move(client).value() : nullptr;
  }
  using TestUpstream = testing::TestUpstream;

  uint32_t initial_age_ = 0;
  std::unique_ptr<AdminServer> admin_;
};

TEST_F(RouterControlTest, SwitchAndCanaryWeightRacingAnotherWriterLoseNoChange) {
  constexpr int kRounds = 600;
  SlowReader slow(router());
  std::thread switcher([&] {
    for (int i = 1; i <= kRounds; ++i) {
      Result<uint64_t> g = i % 3 == 0 ? slow.Switch("blue")
                                      : slow.SetCanaryWeight("green", static_cast<uint32_t>(i));
      EXPECT_TRUE(g.ok()) << g.status().ToString();
    }
  });
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) {
      Result<uint64_t> g = AddOneSecond(router());
      EXPECT_TRUE(g.ok()) << g.status().ToString();
    }
  });
  switcher.join();
  other.join();
  RoutingPolicy end = *router().GetPolicy();
  EXPECT_EQ(end.sticky.cookie_max_age_seconds, initial_age_ + kRounds);
  EXPECT_EQ(end.active, "blue");
  EXPECT_FALSE(end.canary.has_value());  // the last round (600) is a switch
}

TEST_F(RouterControlTest, WritersRacingInProcessLoseNoIncrement) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 250;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) EXPECT_TRUE(AddOneSecond(router()).ok());
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(router().GetPolicy()->sticky.cookie_max_age_seconds, initial_age_ + kThreads * kRounds);
}

TEST_F(RouterControlTest, WritersRacingOverTheAdminApiLoseNoIncrement) {
  std::unique_ptr<AdminClient> first = StartAdmin();
  ASSERT_NE(first, nullptr);
  auto second = AdminClient::Create(admin_->address(), "tkn", Millis(5000));
  ASSERT_TRUE(second.ok());
  constexpr int kRounds = 60;
  std::atomic<int> written{0};
  std::atomic<int> gave_up{0};
  auto writer = [&](RouterControl& control) {
    for (int i = 0; i < kRounds; ++i) {
      Result<uint64_t> g = AddOneSecond(control);
      if (g.ok()) {
        ++written;
      } else {
        // A refusal is reported, never a silent loss: only "gave up after retries" is allowed.
        EXPECT_EQ(g.status().code(), StatusCode::kAborted) << g.status().ToString();
        ++gave_up;
      }
    }
  };
  std::thread a([&] { writer(*first); });
  std::thread b([&] { writer(**second); });
  // A third writer in process, as the engine beside the admin API of an embedded router.
  std::thread c([&] {
    for (int i = 1; i <= kRounds; ++i) {
      EXPECT_TRUE(router().SetCanaryWeight("green", static_cast<uint32_t>(i)).ok());
    }
  });
  a.join();
  b.join();
  c.join();
  RoutingPolicy end = *router().GetPolicy();
  EXPECT_EQ(end.sticky.cookie_max_age_seconds, initial_age_ + static_cast<uint32_t>(written));
  EXPECT_GT(written.load(), kRounds);  // most of the 2 x kRounds went through
  ASSERT_TRUE(end.canary.has_value());
  EXPECT_EQ(end.canary->weight_bp, static_cast<uint32_t>(kRounds));
  std::cout << "[ measured ] over the admin API: " << written << " of " << 2 * kRounds
            << " racing updates written, " << gave_up << " gave up after "
            << RouterControl::kPolicyUpdateAttempts << " attempts\n";
}

TEST_F(RouterControlTest, StaleGenerationIsRefusedWith409AndChangesNothing) {
  std::unique_ptr<AdminClient> client = StartAdmin();
  ASSERT_NE(client, nullptr);
  uint64_t read = client->GetStatus()->generation;
  ASSERT_TRUE(router().Switch("green").ok());  // another writer moves the generation
  RoutingPolicy mine = *router().GetPolicy();
  mine.active = "blue";
  Result<uint64_t> g = client->SetPolicyIf(mine, read);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kAborted) << g.status().ToString();
  EXPECT_NE(g.status().message().find("read the policy again"), std::string::npos)
      << g.status().message();
  EXPECT_EQ(router().GetPolicy()->active, "green");

  auto raw = client->Exchange("PUT", "/v1/policy?if_generation=" + std::to_string(read),
                              PolicyToJson(mine));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->status, 409);
  EXPECT_NE(raw->body.find("\"current_generation\""), std::string::npos) << raw->body;
  EXPECT_EQ(router().GetPolicy()->active, "green");

  // With the current generation it goes through.
  uint64_t now = client->GetStatus()->generation;
  EXPECT_TRUE(client->SetPolicyIf(mine, now).ok());
  EXPECT_EQ(router().GetPolicy()->active, "blue");

  auto bad = client->Exchange("PUT", "/v1/policy?if_generation=x", PolicyToJson(mine));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
}

TEST_F(RouterControlTest, UpdateOverTheAdminApiKeepsTheOverrideSecret) {
  RoutingPolicy p = *router().GetPolicy();
  p.override_header.secret = "s3cret";
  ASSERT_TRUE(router().SetPolicy(p).ok());
  std::unique_ptr<AdminClient> client = StartAdmin();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(AddOneSecond(*client).ok());
  EXPECT_EQ(router().GetPolicy()->override_header.secret, "s3cret");
  EXPECT_EQ(router().GetPolicy()->sticky.cookie_max_age_seconds, initial_age_ + 1);
}

// SetMaintenance (strategy recreate, `turnout maintenance`): on sets the page and Retry-After,
// off clears only `enabled`; the rest of the policy, over the admin API too, stays as it was.
TEST_F(RouterControlTest, SetMaintenanceKeepsEveryOtherFieldOfThePolicy) {
  RoutingPolicy p = *router().GetPolicy();
  p.override_header.secret = "s3cret";
  p.sticky.cookie_max_age_seconds = 77;
  ASSERT_TRUE(router().SetPolicy(p).ok());
  std::unique_ptr<AdminClient> client = StartAdmin();
  ASSERT_NE(client, nullptr);
  MaintenancePolicy m;
  m.enabled = true;
  m.retry_after_seconds = 9;
  m.page = "back soon";
  ASSERT_TRUE(client->SetMaintenance(m).ok());
  RoutingPolicy on = *router().GetPolicy();
  EXPECT_EQ(on.maintenance, m);
  EXPECT_EQ(on.active, p.active);
  EXPECT_EQ(on.sticky.cookie_max_age_seconds, 77u);
  EXPECT_EQ(on.override_header.secret, "s3cret");
  ASSERT_TRUE(client->SetMaintenance(MaintenancePolicy{}).ok());
  RoutingPolicy off = *router().GetPolicy();
  EXPECT_FALSE(off.maintenance.enabled);
  EXPECT_EQ(off.maintenance.page, "back soon");
  EXPECT_EQ(off.override_header.secret, "s3cret");
  EXPECT_EQ(off.sticky.cookie_max_age_seconds, 77u);
}

TEST_F(RouterControlTest, AChangeThatFailsCancelsTheUpdate) {
  uint64_t before = router().GetStatus()->generation;
  Result<uint64_t> g =
      router().UpdatePolicy([](const RoutingPolicy&, uint64_t) -> Result<RoutingPolicy> {
        return InvalidArgument("no");
      });
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status(), InvalidArgument("no"));
  EXPECT_EQ(router().GetStatus()->generation, before);
}

// A router whose generation moves before every write: the default UpdatePolicy retries a bounded
// number of times, then says so.
class AlwaysMoving : public RouterControl {
 public:
  Result<RouterStatus> GetStatus() override {
    RouterStatus s;
    s.policy.active = "blue";
    s.generation = ++generation_;
    return s;
  }
  Result<RoutingPolicy> GetPolicy() override {
    RoutingPolicy p;
    p.active = "blue";
    return p;
  }
  Result<uint64_t> SetPolicy(const RoutingPolicy&) override { return ++generation_; }
  Result<uint64_t> SetPolicyIf(const RoutingPolicy&, uint64_t if_generation) override {
    ++writes;
    return StaleGeneration(if_generation, ++generation_);
  }
  Result<uint64_t> SetSlotInstances(const std::string&, const std::vector<std::string>&) override {
    return Internal("unused");
  }
  Result<SlotStatus> GetSlotStatus(const std::string&) override { return Internal("unused"); }
  Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds) override {
    return Internal("unused");
  }
  int writes = 0;

 private:
  uint64_t generation_ = 0;
};

TEST(RouterControlRetries, GivesUpAfterABoundedNumberOfStaleWrites) {
  AlwaysMoving control;
  Result<uint64_t> g = control.Switch("green");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kAborted);
  EXPECT_NE(g.status().message().find("retry later"), std::string::npos) << g.status().message();
  EXPECT_EQ(control.writes, RouterControl::kPolicyUpdateAttempts);
}

}  // namespace
}  // namespace turnout::router
