#include "router/health.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "router/testing/test_upstream.h"

namespace turnout::router {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Transition = HealthState::Transition;
using testing::Behavior;
using testing::TestUpstream;

TEST(HealthStateTest, FirstResultDecidesAtOnce) {
  ManualClock clock;
  HealthState failing(2, 3);
  EXPECT_FALSE(failing.decided());
  EXPECT_EQ(failing.Observe(false, clock.Now()), Transition::kBecameUnhealthy);
  EXPECT_TRUE(failing.decided());
  EXPECT_FALSE(failing.healthy());

  HealthState passing(2, 3);
  EXPECT_EQ(passing.Observe(true, clock.Now()), Transition::kNone);
  EXPECT_TRUE(passing.healthy());
}

TEST(HealthStateTest, NeedsRiseSuccessesToRecover) {
  ManualClock clock;
  HealthState state(/*rise=*/3, /*fall=*/2);
  state.Observe(false, clock.Now());
  ASSERT_FALSE(state.healthy());
  clock.Advance(seconds(1));
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kNone);
  // A failure in between restarts the count.
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kNone);
  EXPECT_FALSE(state.healthy());
  clock.Advance(seconds(1));
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kBecameHealthy);
  EXPECT_TRUE(state.healthy());
  EXPECT_EQ(state.last_change(), clock.Now());
}

TEST(HealthStateTest, NeedsFallFailuresToGoDown) {
  ManualClock clock;
  HealthState state(/*rise=*/2, /*fall=*/3);
  state.Observe(true, clock.Now());
  const Clock::TimePoint decided_at = clock.Now();
  clock.Advance(seconds(5));
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kNone);  // resets the failures
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
  EXPECT_TRUE(state.healthy());
  EXPECT_EQ(state.last_change(), decided_at);
  clock.Advance(seconds(1));
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kBecameUnhealthy);
  EXPECT_EQ(state.consecutive_failures(), 3);
  EXPECT_EQ(state.last_change(), clock.Now());
  // Staying down is not a transition.
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kNone);
}

TEST(HealthStateTest, RiseAndFallOfOneAreImmediate) {
  ManualClock clock;
  HealthState state(0, 0);  // clamped to 1
  state.Observe(true, clock.Now());
  EXPECT_EQ(state.Observe(false, clock.Now()), Transition::kBecameUnhealthy);
  EXPECT_EQ(state.Observe(true, clock.Now()), Transition::kBecameHealthy);
}

HealthCheckConfig EjectConfig() {
  HealthCheckConfig config;
  config.eject_after_connect_failures = 3;
  config.eject_for = seconds(10);
  return config;
}

TEST(InstanceHealthTest, EjectsAfterConsecutiveConnectFailuresForEjectFor) {
  ManualClock clock;
  HealthCheckConfig config = EjectConfig();
  InstanceHealth health;
  EXPECT_TRUE(health.Routable(clock.Now()));
  health.RecordConnectFailure(clock.Now(), config);
  health.RecordConnectFailure(clock.Now(), config);
  EXPECT_TRUE(health.Routable(clock.Now()));
  health.RecordConnectFailure(clock.Now(), config);
  EXPECT_FALSE(health.Routable(clock.Now()));
  EXPECT_TRUE(health.Ejected(clock.Now()));
  clock.Advance(seconds(10) - std::chrono::nanoseconds(1));
  EXPECT_FALSE(health.Routable(clock.Now()));
  clock.Advance(std::chrono::nanoseconds(1));
  EXPECT_TRUE(health.Routable(clock.Now()));
  // Still failing after the ejection ran out: one more failure ejects again.
  health.RecordConnectFailure(clock.Now(), config);
  EXPECT_FALSE(health.Routable(clock.Now()));
}

TEST(InstanceHealthTest, SuccessResetsTheFailureCount) {
  ManualClock clock;
  HealthCheckConfig config = EjectConfig();
  InstanceHealth health;
  health.RecordConnectFailure(clock.Now(), config);
  health.RecordConnectFailure(clock.Now(), config);
  health.RecordConnectSuccess();
  EXPECT_EQ(health.consecutive_connect_failures.load(), 0u);
  health.RecordConnectFailure(clock.Now(), config);
  health.RecordConnectFailure(clock.Now(), config);
  EXPECT_TRUE(health.Routable(clock.Now()));
}

TEST(InstanceHealthTest, ZeroThresholdNeverEjects) {
  ManualClock clock;
  HealthCheckConfig config = EjectConfig();
  config.eject_after_connect_failures = 0;
  InstanceHealth health;
  for (int i = 0; i < 100; ++i) health.RecordConnectFailure(clock.Now(), config);
  EXPECT_TRUE(health.Routable(clock.Now()));
}

TEST(InstanceHealthTest, UnhealthyIsNotRoutable) {
  ManualClock clock;
  InstanceHealth health;
  health.healthy = false;
  EXPECT_FALSE(health.Routable(clock.Now()));
}

// --- The checker against real loopback HTTP servers. -----------------------------------------

HealthCheckConfig FastChecks() {
  HealthCheckConfig config;
  config.interval = milliseconds(40);
  config.timeout = milliseconds(250);
  config.rise = 2;
  config.fall = 2;
  return config;
}

template <typename Predicate>
bool Eventually(Predicate predicate) {
  return testing::WaitUntil(predicate, milliseconds(10000));
}

std::unique_ptr<TestUpstream> MustStart(const std::string& name) {
  auto up = TestUpstream::Start(name);
  EXPECT_TRUE(up.ok()) << up.status().ToString();
  return std::move(up).value();
}

TEST(HealthCheckerTest, ClassifiesEveryKindOfAnswer) {
  auto ok = MustStart("ok");
  auto error = MustStart("error");
  error->SetHealthPath("/not-the-check-path");
  error->SetBehavior(Behavior::Respond(500, "broken"));
  auto hang = MustStart("hang");
  hang->SetHealthPath("/not-the-check-path");
  hang->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  auto broken = MustStart("broken");
  broken->SetHealthPath("/not-the-check-path");
  broken->SetBehavior(Behavior::Of(Behavior::Kind::kBrokenHead));
  auto closing = MustStart("closing");
  closing->SetHealthPath("/not-the-check-path");
  closing->SetBehavior(Behavior::Of(Behavior::Kind::kCloseBeforeResponse));
  std::string refused_address;
  {
    auto gone = MustStart("gone");
    refused_address = gone->address();
  }  // stopped: its port now refuses connections

  auto ok_health = std::make_shared<InstanceHealth>();
  auto error_health = std::make_shared<InstanceHealth>();
  auto hang_health = std::make_shared<InstanceHealth>();
  auto refused_health = std::make_shared<InstanceHealth>();
  auto broken_health = std::make_shared<InstanceHealth>();
  auto closing_health = std::make_shared<InstanceHealth>();
  ok_health->healthy = false;  // as for a new instance: must be brought up by a check

  HealthChecker checker(FastChecks(), SystemClock::Get());
  checker.SetTargets({{ok->address(), ok_health},
                      {error->address(), error_health},
                      {hang->address(), hang_health},
                      {refused_address, refused_health},
                      {broken->address(), broken_health},
                      {closing->address(), closing_health}});
  ASSERT_TRUE(checker.Start().ok());
  EXPECT_FALSE(checker.Start().ok());  // already running

  EXPECT_TRUE(Eventually([&] {
    return ok_health->healthy && !error_health->healthy && !hang_health->healthy &&
           !refused_health->healthy && !broken_health->healthy && !closing_health->healthy;
  })) << "ok="
      << ok_health->healthy << " error=" << error_health->healthy
      << " hang=" << hang_health->healthy << " refused=" << refused_health->healthy
      << " broken=" << broken_health->healthy << " closing=" << closing_health->healthy;

  // The checks really went out as specified.
  EXPECT_GT(ok->health_checks(), 0u);
  std::vector<testing::ReceivedRequest> seen = error->RecordedRequests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/ready");
  EXPECT_EQ(seen[0].Header("Host"), error->address());
  EXPECT_EQ(seen[0].Header("Connection"), "close");

  // Several more rounds later the verdicts hold (the hanging target never overlaps itself).
  uint64_t rounds = checker.rounds();
  EXPECT_TRUE(Eventually([&] { return checker.rounds() >= rounds + 3; }));
  EXPECT_TRUE(ok_health->healthy);
  EXPECT_FALSE(hang_health->healthy);
  checker.Stop();
  checker.Stop();  // idempotent
}

TEST(HealthCheckerTest, GoesDownAfterFallAndUpAfterRise) {
  auto up = MustStart("flappy");
  auto health = std::make_shared<InstanceHealth>();
  HealthCheckConfig config = FastChecks();
  config.fall = 3;
  config.rise = 3;
  HealthChecker checker(config, SystemClock::Get());
  checker.SetTargets({{up->address(), health}});
  ASSERT_TRUE(checker.Start().ok());
  ASSERT_TRUE(Eventually([&] { return up->health_checks() >= 2; }));
  ASSERT_TRUE(health->healthy);

  up->SetHealthy(false);
  const uint64_t before_down = up->health_checks();
  ASSERT_TRUE(Eventually([&] { return !health->healthy; }));
  // `fall` failing answers were needed (one check counted before the flip may have failed too).
  EXPECT_GE(up->health_checks() - before_down + 1, 3u);

  up->SetHealthy(true);
  const uint64_t before_up = up->health_checks();
  ASSERT_TRUE(Eventually([&] { return health->healthy.load(); }));
  EXPECT_GE(up->health_checks() - before_up + 1, 3u);
}

TEST(HealthCheckerTest, SuccessfulCheckEndsPassiveEjection) {
  ManualClock clock;
  auto up = MustStart("back");
  auto health = std::make_shared<InstanceHealth>();
  HealthCheckConfig config = FastChecks();
  for (int i = 0; i < config.eject_after_connect_failures; ++i) {
    health->RecordConnectFailure(clock.Now(), config);
  }
  ASSERT_FALSE(health->Routable(clock.Now()));
  HealthChecker checker(config, clock);
  checker.SetTargets({{up->address(), health}});
  ASSERT_TRUE(checker.Start().ok());
  EXPECT_TRUE(Eventually([&] { return health->Routable(clock.Now()); }));
  EXPECT_EQ(health->consecutive_connect_failures.load(), 0u);
}

TEST(HealthCheckerTest, NewTargetsAreCheckedAndKeptTargetsKeepTheirState) {
  auto a = MustStart("a");
  auto b = MustStart("b");
  b->SetHealthy(false);
  auto a_health = std::make_shared<InstanceHealth>();
  auto b_health = std::make_shared<InstanceHealth>();
  HealthCheckConfig config = FastChecks();
  config.fall = 1000;  // once decided healthy, `a` cannot go down within this test
  HealthChecker checker(config, SystemClock::Get());
  checker.SetTargets({{a->address(), a_health}});
  ASSERT_TRUE(checker.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a->health_checks() >= 1; }));
  ASSERT_TRUE(Eventually([&] { return checker.rounds() >= 2; }));

  a->SetHealthy(false);
  checker.SetTargets({{a->address(), a_health}, {b->address(), b_health}});
  ASSERT_TRUE(Eventually([&] { return !b_health->healthy; }));
  const uint64_t a_checks = a->health_checks();
  ASSERT_TRUE(Eventually([&] { return a->health_checks() >= a_checks + 3; }));
  // `a` kept its decided state, so its failures count towards the (huge) fall instead of
  // deciding afresh.
  EXPECT_TRUE(a_health->healthy);
}

// A target added between two rounds waited for the next round, up to a whole interval (the
// readiness interval, 1 s by default): a deployment's smoke tests, which wait for the router to
// see the new slot healthy, took that long for nothing. A new target is checked at once; the
// targets it already had keep their pace.
TEST(HealthCheckerTest, ANewTargetIsCheckedAtOnceNotAtTheNextRound) {
  auto a = MustStart("a");
  auto b = MustStart("b");
  auto a_health = std::make_shared<InstanceHealth>();
  auto b_health = std::make_shared<InstanceHealth>();
  b_health->healthy.store(false);  // as the router adds an instance: unhealthy until checked
  HealthCheckConfig config = FastChecks();
  config.interval = std::chrono::seconds(60);
  HealthChecker checker(config, SystemClock::Get());
  checker.SetTargets({{a->address(), a_health}});
  ASSERT_TRUE(checker.Start().ok());
  ASSERT_TRUE(Eventually([&] { return checker.rounds() >= 1; }));
  ASSERT_EQ(a->health_checks(), 1u);

  const auto t0 = std::chrono::steady_clock::now();
  checker.SetTargets({{a->address(), a_health}, {b->address(), b_health}});
  ASSERT_TRUE(testing::WaitUntil([&] { return b_health->healthy.load(); }, milliseconds(5000)))
      << "the new target waited for the next round (60 s)";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  EXPECT_EQ(b->health_checks(), 1u);
  EXPECT_EQ(a->health_checks(), 1u) << "a target it already had keeps its interval";
  EXPECT_EQ(checker.rounds(), 1u) << "checking a new target is not a round";
  // Removing a target wakes nothing either.
  checker.SetTargets({{b->address(), b_health}});
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(b->health_checks(), 1u);
}

TEST(HealthCheckerTest, DisabledDoesNothing) {
  auto up = MustStart("x");
  up->SetHealthy(false);
  auto health = std::make_shared<InstanceHealth>();
  HealthCheckConfig config = FastChecks();
  config.enabled = false;
  HealthChecker checker(config, SystemClock::Get());
  checker.SetTargets({{up->address(), health}});
  ASSERT_TRUE(checker.Start().ok());
  EXPECT_EQ(checker.rounds(), 0u);
  EXPECT_TRUE(health->healthy);
  checker.Stop();
  EXPECT_EQ(up->health_checks(), 0u);
}

TEST(HealthCheckerTest, RestartsAfterStop) {
  auto up = MustStart("r");
  auto health = std::make_shared<InstanceHealth>();
  HealthChecker checker(FastChecks(), SystemClock::Get());
  checker.SetTargets({{up->address(), health}});
  ASSERT_TRUE(checker.Start().ok());
  ASSERT_TRUE(Eventually([&] { return up->health_checks() >= 1; }));
  checker.Stop();
  up->SetHealthy(false);
  ASSERT_TRUE(checker.Start().ok());
  EXPECT_TRUE(Eventually([&] { return !health->healthy; }));
}

}  // namespace
}  // namespace turnout::router
