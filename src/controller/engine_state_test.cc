// The engine's state machine on doubles (engine_state_fixture.h): transitions, rollbacks, the
// crash-resume rules, the gates, canary steps and rolling updates, with no process and no
// socket. The same flows with real processes and a real router: engine_test.cc,
// engine_canary_test.cc.

#include <signal.h>

#include <nlohmann/json.hpp>

#include "controller/engine_state_fixture.h"

namespace turnout::controller {
namespace {

// A kCommand verify check, its other fields at their defaults.
VerifyCheck CommandCheck(std::string name, std::string command) {
  VerifyCheck c;
  c.name = std::move(name);
  c.kind = VerifyCheck::Kind::kCommand;
  c.command = std::move(command);
  return c;
}

TEST_F(EngineStateTest, FirstDeploymentThenSecondMovesTrafficAndScalesDownOldSlot) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  EXPECT_EQ(d1.target_slot, "blue");
  EXPECT_EQ(UserVersion(), "v1");
  EXPECT_EQ(States(d1.id), (std::vector<DeploymentState>{
                               DeploymentState::kPreChecks, DeploymentState::kLaunching,
                               DeploymentState::kWaitingReady, DeploymentState::kSmokeTesting,
                               DeploymentState::kSwitching, DeploymentState::kBaking,
                               DeploymentState::kScalingDown, DeploymentState::kSucceeded}));

  DeploymentSpec v2 = Spec("v2");
  v2.replicas = 2;
  auto engine = NewEngine();
  auto d2 = engine->Begin(v2);
  ASSERT_TRUE(d2.ok()) << d2.status().ToString();
  EXPECT_EQ(d2->target_slot, "green");
  Run(*engine, DeploymentState::kScalingDown);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kScalingDown);
  EXPECT_EQ(UserVersion(), "v2");
  ExpectInstancesRunning(d1.id);  // still warm for an instant rollback
  auto waiting = engine->Step();
  ASSERT_TRUE(waiting.ok());
  EXPECT_NE(waiting->waiting_for.find("scale-down in 60 s"), std::string::npos)
      << waiting->waiting_for;
  clock_.Advance(61s);
  Run(*engine);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(d2->id);
  EXPECT_EQ(platform_.launches(), 4);
  EXPECT_EQ(platform_.stops(), 2);
  auto service = store_->GetService(kFakeService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "green");
  EXPECT_EQ(service->active_revision, 2);
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                                    "smoke_passed", "switched", "succeeded",
                                                    "deploy_started", "pre_checks_passed", "ready",
                                                    "smoke_passed", "switched", "succeeded"}));
}

// The router and the probes reach instances only where the platform said: the handle's address.
TEST_F(EngineStateTest, TheRouterAndTheProbesUseTheAddressThePlatformAllocated) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  v1.base_port = 31000;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  std::vector<std::string> recorded;
  for (const auto& i : Recorded(d1.id)) {
    recorded.push_back(i.handle.address);
    EXPECT_EQ(i.handle.kind, "process");
    EXPECT_EQ(i.handle.address, "127.0.0.1:" + std::to_string(i.record.port));
    EXPECT_GT(prober_.Count(i.handle.address, "/ready"), 0) << i.handle.address;
  }
  std::sort(recorded.begin(), recorded.end());
  EXPECT_EQ(recorded, (std::vector<std::string>{"127.0.0.1:31000", "127.0.0.1:31001"}));
  EXPECT_EQ(router_.instances("blue"), recorded);

  // Without fixed ports the platform picks them, never one another instance holds.
  Deploy(Spec("v2"), DeploymentState::kSucceeded);
  std::vector<std::string> green = router_.instances("green");
  ASSERT_EQ(green.size(), 1u);
  EXPECT_EQ(std::count(recorded.begin(), recorded.end(), green[0]), 0);
}

// Crash safety: the address comes from the platform before the launch, and the instance row with
// its port is on record (starting, no handle yet) when the platform launches it.
TEST_F(EngineStateTest, TheInstanceIsRecordedWithItsAllocatedPortBeforeItIsLaunched) {
  int checked = 0;
  OnVersion("v1", [&](FakeInstance& i) {
    auto rows = store_->ListInstances(kFakeService, false);
    ASSERT_TRUE(rows.ok());
    bool recorded = false;
    for (const auto& r : *rows) {
      if (r.port == i.spec.port && r.slot == i.spec.slot && r.instance_index == i.spec.instance) {
        recorded = r.state == state::InstanceState::kStarting && r.platform_handle.empty();
      }
    }
    EXPECT_TRUE(recorded) << "no starting row for port " << i.spec.port;
    ++checked;
  });
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  Deploy(v1, DeploymentState::kSucceeded);
  EXPECT_EQ(checked, 2);
}

TEST_F(EngineStateTest, VersionFailingReadinessIsNeverSwitchedTo) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  OnVersion("v3", [](FakeInstance& i) { i.ready = false; });
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v3")).ok());
  Run(*engine, DeploymentState::kWaitingReady);
  for (int i = 0; i < 3; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->state, DeploymentState::kWaitingReady);
    EXPECT_NE(r->waiting_for.find("(0/1)"), std::string::npos) << r->waiting_for;
  }
  clock_.Advance(11s);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("not ready within 10 s (0/1 ready)"),
            std::string::npos)
      << engine->deployment().reason;
  EXPECT_FALSE(Contains(States(engine->deployment().id), DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

// Readiness deadlines pass by the engine's own pauses (the clock), not by waiting.
TEST_F(EngineStateTest, AReadinessDeadlinePassesByStepsAlone) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  OnVersion("v3", [](FakeInstance& i) { i.ready = false; });
  state::Deployment d3 = Deploy(Spec("v3"), DeploymentState::kRolledBack);
  EXPECT_NE(d3.reason.find("not ready within 10 s"), std::string::npos) << d3.reason;
}

TEST_F(EngineStateTest, FailedSmokeTestIsNeverSwitchedTo) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.smoke_checks[0].expected_status = 418;
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("expected 418, got 200"), std::string::npos) << d2.reason;
  EXPECT_FALSE(Contains(States(d2.id), DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(d2.id);
  std::optional<state::StepRecord> smoke = FindStep(d2.id, "smoke_test:GET /");
  ASSERT_TRUE(smoke.has_value());
  EXPECT_EQ(smoke->outcome, state::StepOutcome::kFailed);
  // Sent through the router to the new slot, with the override secret.
  bool through_router = false;
  for (const auto& r : prober_.requests()) {
    if (r.address != kFakeRouterAddress || through_router) continue;
    if (std::find(r.headers.begin(), r.headers.end(),
                  std::pair<std::string, std::string>{"X-Turnout-Slot", "blue"}) !=
        r.headers.end()) {
      continue;  // v1's own smoke test
    }
    through_router = true;
    EXPECT_NE(std::find(r.headers.begin(), r.headers.end(),
                        std::pair<std::string, std::string>{"X-Turnout-Slot", "green"}),
              r.headers.end());
    EXPECT_NE(
        std::find(r.headers.begin(), r.headers.end(),
                  std::pair<std::string, std::string>{"X-Turnout-Secret", kFakeOverrideSecret}),
        r.headers.end());
  }
  EXPECT_TRUE(through_router);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, AnInstanceThatExitsBeforeReadyShowsTheEndOfItsLogWithoutItsSecrets) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  OnVersion("v2", [](FakeInstance& i) {
    i.status = platform::InstanceStatus{platform::InstanceState::kExited, 1, std::nullopt};
    i.log = "starting\nconnecting with hunter2-password\nbind: Address already in use\n";
  });
  DeploymentSpec v2 = Spec("v2");
  v2.env = {{"DATABASE_PASSWORD", "hunter2-password"}};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("exited with code 1 before becoming ready; last lines of its log: "
                           "starting | connecting with [hidden] | bind: Address already in use"),
            std::string::npos)
      << d2.reason;
  EXPECT_EQ(d2.reason.find("hunter2"), std::string::npos) << d2.reason;
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineStateTest, AnInstanceKilledForLackOfMemorySaysSo) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kWaitingReady);
  for (const auto& i : platform_.Instances()) {
    if (i.spec.version == "v2") platform_.OomKill(i.handle.id);
  }
  Run(*engine);
  ExpectRolledBackToV1(*engine, "killed: out of memory before becoming ready");
}

TEST_F(EngineStateTest, ALaunchThePlatformRefusesRollsBackNamingTheReason) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  platform_.FailLaunches(FailedPrecondition("port 31001 is already in use on this machine"));
  state::Deployment d2 = Deploy(Spec("v2"), DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("launching instance 0 failed: "), std::string::npos) << d2.reason;
  EXPECT_NE(d2.reason.find("port 31001 is already in use"), std::string::npos) << d2.reason;
  auto rows = store_->ListInstances(kFakeService, false);
  ASSERT_TRUE(rows.ok());
  int intents = 0;
  for (const auto& r : *rows) {
    if (r.deployment_id != d2.id) continue;
    ++intents;
    EXPECT_TRUE(r.platform_handle.empty()) << "never launched";
    EXPECT_NE(r.state, state::InstanceState::kRunning);
  }
  EXPECT_EQ(intents, 1) << "the intent was recorded before the launch";
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineStateTest, FailureDuringBakeSwitchesBack) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  EXPECT_EQ(UserVersion(), "v2");
  ASSERT_TRUE(engine->Step().ok());
  KillInstances(engine->deployment().id);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "exited with code 1 during bake");
  EXPECT_TRUE(Contains(States(engine->deployment().id), DeploymentState::kBaking));
  auto service = store_->GetService(kFakeService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
  EXPECT_EQ(service->active_revision, d1.revision);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, FailingReadinessDuringBakeSwitchesBackAfterTheThreshold) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  v2.bake_failure_threshold = 3;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  for (const auto& i : Recorded(engine->deployment().id)) platform_.SetReady(i.handle.id, false);
  for (int i = 0; i < 2; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, DeploymentState::kBaking);
  }
  auto r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kRollingBack);
  EXPECT_NE(engine->deployment().reason.find("failed 3 readiness probes"), std::string::npos)
      << engine->deployment().reason;
  Run(*engine);
  ExpectRolledBackToV1(*engine, "readiness");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, FailingLivenessDuringBakeSwitchesBackAtOnce) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  v2.liveness_path = "/live";
  v2.liveness_interval = 1s;
  v2.liveness_failure_threshold = 3;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  const int64_t d2_id = engine->deployment().id;
  for (const auto& i : Recorded(d2_id)) platform_.SetLive(i.handle.id, false);
  for (int failures = 1; failures <= 3; ++failures) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (failures < 3) {
      EXPECT_EQ(r->state, DeploymentState::kBaking) << failures;
      r = engine->Step();  // within the interval: not probed again
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->state, DeploymentState::kBaking) << failures;
      clock_.Advance(1s);
    } else {
      EXPECT_EQ(r->state, DeploymentState::kRollingBack);
    }
  }
  EXPECT_NE(engine->deployment().reason.find("failed 3 liveness probes in a row during bake (GET "
                                             "/live: 503)"),
            std::string::npos)
      << engine->deployment().reason;
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(UserVersion(), "v1");
  Run(*engine);
  ExpectRolledBackToV1(*engine, "liveness");
  ExpectInstancesStopped(d2_id);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, EmergencyRollbackWhileOldSlotIsWarmSwitchesBackInsideTheCall) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kBaking);
  ASSERT_EQ(UserVersion(), "v2");
  ASSERT_TRUE(engine->RequestRollback("operator said so").ok());
  EXPECT_EQ(UserVersion(), "v1");
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, NoSwitchBackToAnOldSlotWhoseInstancesEnded) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kBaking);
  KillInstances(d1.id);
  Status s = engine->RequestRollback("operator said so");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(engine->deployment().state, DeploymentState::kBaking);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineStateTest, FirstDeploymentFailingAfterItsSwitchEndsFailedWithNothingToGoBackTo) {
  DeploymentSpec v1 = Spec("v1");
  v1.bake_time = std::chrono::hours(1);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v1).ok());
  Run(*engine, DeploymentState::kBaking);
  KillInstances(engine->deployment().id);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kFailed);
  EXPECT_NE(engine->deployment().reason.find("no previous version"), std::string::npos)
      << engine->deployment().reason;
  auto active = store_->ActiveDeployment(kFakeService);
  ASSERT_TRUE(active.ok());
  EXPECT_FALSE(active->has_value()) << "a failed deployment must release the service";
}

TEST_F(EngineStateTest, FailingPreDeployCheckRollsBackBeforeAnyLaunchWithItsOutput) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  const int launched = platform_.launches();
  commands_.Exits("check-schema", 3, "checking v2\nschema drift in orders\n");
  DeploymentSpec v2 = Spec("v2");
  v2.pre_deploy = {PreDeployCheck{"disk", "check-disk"},
                   PreDeployCheck{"schema", "check-schema {version}"},
                   PreDeployCheck{"never", "never-run"}};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("pre-deploy check 'schema' exited with code 3: checking v2"),
            std::string::npos)
      << d2.reason;
  EXPECT_NE(d2.reason.find("schema drift in orders"), std::string::npos) << d2.reason;
  EXPECT_FALSE(Contains(States(d2.id), DeploymentState::kLaunching));
  EXPECT_EQ(platform_.launches(), launched);
  std::vector<platform::RunSpec> calls = commands_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].argv, (std::vector<std::string>{"check-schema", "v2"}));
  std::optional<state::StepRecord> schema = FindStep(d2.id, "pre_deploy:schema");
  ASSERT_TRUE(schema.has_value());
  EXPECT_EQ(schema->outcome, state::StepOutcome::kFailed);
  EXPECT_EQ(nlohmann::json::parse(schema->detail_json)["exit"], 3);
  EXPECT_FALSE(FindStep(d2.id, "pre_deploy:never").has_value());
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "rolled_back"}));
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, PreDeployCheckWhoseProgramIsMissingRollsBack) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  commands_.Fails("no-such-program", NotFound("program 'no-such-program' not found"));
  DeploymentSpec v2 = Spec("v2");
  v2.pre_deploy = {PreDeployCheck{"missing", "no-such-program"}};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("could not run: program 'no-such-program' not found"), std::string::npos)
      << d2.reason;
}

TEST_F(EngineStateTest, ApprovalGateWaitsUntilApproved) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.manual_approval = true;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kAwaitingApproval);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kAwaitingApproval);
  clock_.Advance(std::chrono::hours(5));
  auto r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kAwaitingApproval);
  EXPECT_EQ(UserVersion(), "v1");
  ASSERT_TRUE(engine->Approve("alice").ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineStateTest, ExpediteScaleDownStopsTheOldSlotWithoutWaitingForTheDelay) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kScalingDown);
  ASSERT_TRUE(engine->ExpediteScaleDown("deployment of v3 requested").ok());
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_NE(engine->deployment().reason.find("early (deployment of v3 requested)"),
            std::string::npos)
      << engine->deployment().reason;
  ExpectInstancesStopped(d1.id);
}

// --- crash resume: the rules of engine.h ---

TEST_F(EngineStateTest, ResumeBeforeTheSwitchRollsBackAndStopsTheNewInstances) {
  for (DeploymentState at : {DeploymentState::kWaitingReady, DeploymentState::kSmokeTesting}) {
    SCOPED_TRACE(state::DeploymentStateName(at));
    TearDown();
    router_.Reset();
    router_.UseFixedEjection(false);
    SetUp();
    state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
    const int64_t d2 = BeginV2AndCrashAt(at);
    const int adoptions = platform_.adoptions();
    auto engine = ResumeAndRun();
    ExpectRolledBackToV1(*engine, "controller restarted during");
    EXPECT_GT(platform_.adoptions(), adoptions) << "the recorded instances are re-adopted";
    ExpectInstancesStopped(d2);
    ExpectInstancesRunning(d1.id);
  }
}

TEST_F(EngineStateTest, ResumeInSwitchingFinishesTheSwitchOrRollsBackWhenAnInstanceDied) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2 = BeginV2AndCrashAt(DeploymentState::kSwitching);
  auto engine = ResumeAndRun();
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
  EXPECT_NE(engine->resume_summary().find("decided: finish the switch to green"), std::string::npos)
      << engine->resume_summary();

  const int64_t d3 = BeginV2AndCrashAt(DeploymentState::kSwitching, Spec("v3"));
  KillInstances(d3);  // while no controller runs, the new instance dies
  auto again = ResumeAndRun();
  EXPECT_EQ(again->deployment().state, DeploymentState::kRolledBack);
  EXPECT_EQ(UserVersion(), "v2");
  ExpectInstancesRunning(d2);
}

TEST_F(EngineStateTest, ResumeWhileAwaitingApprovalKeepsWaiting) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.manual_approval = true;
  BeginV2AndCrashAt(DeploymentState::kAwaitingApproval, v2);
  auto engine = NewEngine();
  auto resumed = engine->Resume(kFakeService);
  ASSERT_TRUE(resumed.ok() && resumed->has_value());
  auto r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kAwaitingApproval);
  ASSERT_TRUE(engine->Approve("bob").ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
}

TEST_F(EngineStateTest, ResumedBakeDoesNotCountTheTimeTheControllerWasDown) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = 60s;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  clock_.Advance(20s);
  const state::WallTime last_alive = clock_.WallNow();
  engine.reset();        // the controller dies 20 s into the bake...
  clock_.Advance(5min);  // ...and is down for 5 minutes
  auto resumed_engine = NewEngine();
  RestartFacts facts;
  facts.last_alive = last_alive;
  facts.previous_end = "crash";
  auto resumed = resumed_engine->Resume(kFakeService, facts);
  ASSERT_TRUE(resumed.ok() && resumed->has_value());
  EXPECT_NE(resumed_engine->resume_summary().find("resume the bake with 40 s left"),
            std::string::npos)
      << resumed_engine->resume_summary();
  auto r = resumed_engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kBaking);
}

// A Verifier that measures nothing: every call answers what the test last set (Unavailable
// before that) and records the request.
class FakeVerifier final : public Verifier {
 public:
  void Answer(PerformanceResult r) { answer_ = r; }
  Result<PerformanceResult> MeasurePerformance(const PerformanceRequest& request) override {
    requests.push_back(request);
    if (!answer_) return Unavailable("no answer set");
    return *answer_;
  }
  std::vector<PerformanceRequest> requests;

 private:
  std::optional<PerformanceResult> answer_;
};

PerformanceResult Latency(double p50, double p95, double p99, int64_t count = 200) {
  PerformanceResult r;
  r.count = count;
  r.p50_ms = p50;
  r.p95_ms = p95;
  r.p99_ms = p99;
  return r;
}

VerifyCheck PerfCheck() {
  VerifyCheck c;
  c.name = "latency";
  c.kind = VerifyCheck::Kind::kPerformance;
  c.requests = 200;
  c.concurrency = 2;
  c.paths = {{"GET", "/", 3}, {"GET", "/api", 1}};
  return c;
}

class VerifyStateTest : public EngineStateTest {
 protected:
  void SetUp() override {
    EngineStateTest::SetUp();
    verifier_ = &fake_verifier_;
  }
  nlohmann::json Detail(int64_t id, const std::string& step) {
    std::optional<state::StepRecord> r = FindStep(id, step);
    EXPECT_TRUE(r.has_value()) << step;
    return r ? nlohmann::json::parse(r->detail_json) : nlohmann::json();
  }
  FakeVerifier fake_verifier_;
};

TEST_F(VerifyStateTest, AFailingVerifyCommandAfterTheSwitchRollsBackWithItsRedactedOutput) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  commands_.Exits("e2e", 2,
                  "checkout against http://127.0.0.1:8080\nDB_PASSWORD=hunter2-secret\n"
                  "X-Turnout-Secret: " +
                      std::string(kFakeOverrideSecret) + "\n");
  DeploymentSpec v2 = Spec("v2");
  v2.env = {{"DB_PASSWORD", "hunter2-secret"}, {"MODE", "on"}};
  v2.verify = {CommandCheck("functional", "e2e --base {url} {version}")};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  // After the switch: traffic went to v2, then back.
  EXPECT_TRUE(Contains(States(d2.id), DeploymentState::kBaking));
  EXPECT_NE(d2.reason.find("verify functional: exited with code 2"), std::string::npos)
      << d2.reason;
  EXPECT_EQ(d2.reason.find("hunter2-secret"), std::string::npos) << d2.reason;
  std::vector<platform::RunSpec> calls = commands_.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().argv,
            (std::vector<std::string>{"e2e", "--base", std::string("http://") + kFakeRouterAddress,
                                      "v2"}));
  const nlohmann::json detail = Detail(d2.id, "verify:functional");
  EXPECT_EQ(detail["exit"], 2);
  const std::string tail = detail["output_tail"];
  EXPECT_NE(tail.find("DB_PASSWORD=[redacted]"), std::string::npos) << tail;
  EXPECT_NE(tail.find("X-Turnout-Secret: [redacted]"), std::string::npos) << tail;
  EXPECT_EQ(detail.dump().find(kFakeOverrideSecret), std::string::npos) << detail.dump();
  EXPECT_EQ(detail.dump().find("hunter2-secret"), std::string::npos) << detail.dump();
  EXPECT_EQ(FindStep(d2.id, "verify:functional")->outcome, state::StepOutcome::kFailed);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesRunning(d1.id);
  EXPECT_EQ(EventNames().back(), "rolled_back");
}

TEST_F(VerifyStateTest, APassingVerifyCommandLetsTheBakeFinish) {
  DeploymentSpec v1 = Spec("v1");
  v1.verify = {CommandCheck("functional", "e2e {url}")};
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  EXPECT_EQ(FindStep(d1.id, "verify:functional")->outcome, state::StepOutcome::kOk);
}

TEST_F(VerifyStateTest, PerformanceIsComparedWithTheLastSucceededRevisionOfTheSameMix) {
  DeploymentSpec v1 = Spec("v1");
  v1.verify = {PerfCheck()};
  fake_verifier_.Answer(Latency(10, 20.1, 30));
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  nlohmann::json first = Detail(d1.id, "verify:latency");
  EXPECT_TRUE(first["baseline"].is_null());
  EXPECT_EQ(first["note"], "no baseline: recorded");
  EXPECT_EQ(first["result"]["p95_ms"], 20.1);
  EXPECT_EQ(first["mix_hash"], MixHash(PerfCheck()));
  ASSERT_EQ(fake_verifier_.requests.size(), 1u);
  EXPECT_EQ(fake_verifier_.requests[0].address, kFakeRouterAddress);
  EXPECT_EQ(fake_verifier_.requests[0].requests, 200);
  EXPECT_EQ(fake_verifier_.requests[0].concurrency, 2);

  // Equal within tolerance: passes, compared with revision 1.
  DeploymentSpec v2 = Spec("v2");
  v2.verify = {PerfCheck()};
  fake_verifier_.Answer(Latency(11, 22, 33));
  state::Deployment d2 = Deploy(v2, DeploymentState::kSucceeded);
  EXPECT_EQ(Detail(d2.id, "verify:latency")["baseline"]["revision"], d1.revision);

  // p95 twice the baseline (revision 2 now): rolled back with the numbers.
  DeploymentSpec v3 = Spec("v3");
  v3.verify = {PerfCheck()};
  fake_verifier_.Answer(Latency(12, 44, 50));
  state::Deployment d3 = Deploy(v3, DeploymentState::kRolledBack);
  EXPECT_NE(d3.reason.find("verify latency: p95 44.0 ms > baseline 22.0 ms +25% (revision " +
                           std::to_string(d2.revision) + ")"),
            std::string::npos)
      << d3.reason;
  EXPECT_EQ(UserVersion(), "v2");
  EXPECT_EQ(Detail(d3.id, "verify:latency")["failure"],
            "p95 44.0 ms > baseline 22.0 ms +25% (revision " + std::to_string(d2.revision) + ")");

  // A rolled-back revision is no baseline, and another mix has none: recorded, passes.
  DeploymentSpec v4 = Spec("v4");
  v4.verify = {PerfCheck()};
  v4.verify[0].concurrency = 8;
  fake_verifier_.Answer(Latency(100, 200, 300));
  state::Deployment d4 = Deploy(v4, DeploymentState::kSucceeded);
  EXPECT_TRUE(Detail(d4.id, "verify:latency")["baseline"].is_null());
}

TEST_F(VerifyStateTest, ErrorsOrNoVerifierFailThePerformanceCheck) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.verify = {PerfCheck()};
  PerformanceResult failing = Latency(1, 2, 3);
  failing.errors = 3;
  failing.first_error = "503 from GET /";
  fake_verifier_.Answer(failing);
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("verify latency: 3 of 200 requests failed (first: 503 from GET /)"),
            std::string::npos)
      << d2.reason;

  DeploymentSpec v3 = Spec("v3");
  v3.verify = {PerfCheck()};
  verifier_ = nullptr;  // none wired
  state::Deployment d3 = Deploy(v3, DeploymentState::kRolledBack);
  EXPECT_NE(d3.reason.find("no performance verifier"), std::string::npos) << d3.reason;
}

TEST_F(VerifyStateTest, TheBakeWaitsForEveryCheckButAPromoteStillEndsIt) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = 0s;
  v2.verify = {CommandCheck("first", "check-one"), CommandCheck("second", "check-two")};
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  auto r = engine->Step();  // bake_time 0 has passed, the checks have not
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kBaking);
  EXPECT_EQ(r->waiting_for, "verify check 'first' passed (1/2)");
  ASSERT_TRUE(engine->Promote(false, "ann").ok());
  r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kScalingDown);
  EXPECT_FALSE(FindStep(engine->deployment().id, "verify:second").has_value());
}

TEST_F(VerifyStateTest, AControllerKilledDuringVerifyRunsTheVerifyAgainAfterResume) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.verify = {CommandCheck("first", "check-one"), CommandCheck("second", "check-two")};
  const auto runs = [&](const std::string& program) {
    int n = 0;
    for (const auto& c : commands_.calls()) n += c.argv[0] == program;
    return n;
  };
  int64_t id = 0;
  {
    auto engine = NewEngine();
    auto d = engine->Begin(v2);
    ASSERT_TRUE(d.ok());
    id = d->id;
    Run(*engine, DeploymentState::kBaking);
    auto r = engine->Step();  // the first check
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->waiting_for, "verify check 'first' passed (1/2)");
  }  // killed before the second
  EXPECT_EQ(runs("check-one"), 1);
  EXPECT_EQ(runs("check-two"), 0);
  auto engine = ResumeAndRun();
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(runs("check-one"), 2);  // from the start again
  EXPECT_EQ(runs("check-two"), 1);

  // Killed after the verification passed: the resumed bake does not verify again.
  DeploymentSpec v3 = Spec("v3");
  v3.verify = v2.verify;
  {
    auto e3 = NewEngine();
    ASSERT_TRUE(e3->Begin(v3).ok());
    Run(*e3, DeploymentState::kBaking);
    ASSERT_TRUE(e3->Step().ok());
    auto r = e3->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->waiting_for, "verify check 'second' passed (2/2)");
  }
  auto resumed = ResumeAndRun();
  EXPECT_EQ(resumed->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(runs("check-one"), 3);
  EXPECT_EQ(runs("check-two"), 2);
  (void)id;
}

// A handle another platform wrote is refused by name, never read as one of this platform's.
TEST_F(EngineStateTest, ResumeRefusesAnInstanceOfAnotherPlatformKind) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2 = BeginV2AndCrashAt(DeploymentState::kBaking);
  auto rows = store_->ListInstances(kFakeService, false);
  ASSERT_TRUE(rows.ok());
  for (auto r : *rows) {
    if (r.deployment_id != d2) continue;
    auto h = platform::DecodeHandle(r.platform_handle);
    ASSERT_TRUE(h.ok());
    h->kind = "container";
    r.platform_handle = platform::EncodeHandle(*h);
    ASSERT_TRUE(store_->UpsertInstance(r).ok());
  }
  auto engine = NewEngine();
  auto resumed = engine->Resume(kFakeService);
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(resumed.status().message().find("was launched by the container platform; this "
                                            "turnoutd runs the process platform"),
            std::string::npos)
      << resumed.status().ToString();
}

// "Crash" at each state: the engine that recorded the transition into the state is dropped
// before it acts on it; a new engine over the same store, platform and router resumes.
class EngineStateCrashTest : public EngineStateTest,
                             public ::testing::WithParamInterface<DeploymentState> {};

TEST_P(EngineStateCrashTest, ResumeAfterCrashReachesTheDocumentedOutcome) {
  const DeploymentState crash_at = GetParam();
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2_id = BeginV2AndCrashAt(crash_at);
  ASSERT_NE(d2_id, 0);
  auto engine = NewEngine();
  auto resumed = engine->Resume(kFakeService);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  ASSERT_TRUE(resumed->has_value());
  EXPECT_EQ((*resumed)->id, d2_id);
  Run(*engine);

  const bool pre_switch =
      crash_at == DeploymentState::kPending || crash_at == DeploymentState::kPreChecks ||
      crash_at == DeploymentState::kLaunching || crash_at == DeploymentState::kWaitingReady ||
      crash_at == DeploymentState::kSmokeTesting;
  std::vector<DeploymentState> states = States(d2_id);
  auto service = store_->GetService(kFakeService);
  ASSERT_TRUE(service.ok());
  if (pre_switch) {
    EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
    EXPECT_NE(engine->deployment().reason.find("controller restarted"), std::string::npos);
    EXPECT_FALSE(Contains(states, DeploymentState::kSwitching));
    EXPECT_EQ(UserVersion(), "v1");
    EXPECT_EQ(service->active_revision, d1.revision);
    ExpectInstancesRunning(d1.id);
    if (crash_at != DeploymentState::kPending && crash_at != DeploymentState::kPreChecks &&
        crash_at != DeploymentState::kLaunching) {
      ExpectInstancesStopped(d2_id);
    }
  } else {
    EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded)
        << engine->deployment().reason;
    EXPECT_EQ(UserVersion(), "v2");
    EXPECT_EQ(service->active_slot, "green");
    EXPECT_EQ(service->active_revision, d1.revision + 1);
    ExpectInstancesStopped(d1.id);
    ExpectInstancesRunning(d2_id);
    // No state ran twice: the resumed engine continued where the first one stopped.
    for (DeploymentState s :
         {DeploymentState::kSwitching, DeploymentState::kBaking, DeploymentState::kScalingDown}) {
      EXPECT_EQ(std::count(states.begin(), states.end(), s), 1);
    }
  }
  auto steps = store_->Steps(d2_id);
  ASSERT_TRUE(steps.ok());
  int resume_steps = 0;
  for (const auto& step : *steps) {
    EXPECT_NE(step.outcome, state::StepOutcome::kRunning) << step.step << " left running";
    if (step.step != "resume") continue;
    ++resume_steps;
    auto detail = nlohmann::json::parse(step.detail_json);
    EXPECT_EQ(detail.value("state", ""), state::DeploymentStateName(crash_at));
    EXPECT_FALSE(detail.value("decided", "").empty()) << step.detail_json;
  }
  EXPECT_EQ(resume_steps, 1);
  if (crash_at != DeploymentState::kPending) {  // Pending has no step record of its own
    auto interrupted =
        FindStep(d2_id, "state:" + std::string(state::DeploymentStateName(crash_at)));
    ASSERT_TRUE(interrupted.has_value());
    EXPECT_EQ(interrupted->outcome, state::StepOutcome::kInterrupted);
  }
  EXPECT_EQ(AuditSince(0, "deployment.resume").size(), 1u);
  auto again = NewEngine()->Resume(kFakeService);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "no deployment may stay active after the resume";
}

INSTANTIATE_TEST_SUITE_P(AllStates, EngineStateCrashTest,
                         ::testing::Values(DeploymentState::kPending, DeploymentState::kPreChecks,
                                           DeploymentState::kLaunching,
                                           DeploymentState::kWaitingReady,
                                           DeploymentState::kSmokeTesting,
                                           DeploymentState::kSwitching, DeploymentState::kBaking,
                                           DeploymentState::kScalingDown),
                         [](const ::testing::TestParamInfo<DeploymentState>& info) {
                           std::string name(state::DeploymentStateName(info.param));
                           name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
                           return name;
                         });

TEST_F(EngineStateTest, SecondDeploymentWhileOneIsActiveIsRefused) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  auto other = NewEngine()->Begin(Spec("v3"));
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists) << other.status().ToString();
  EXPECT_EQ(engine->Begin(Spec("v3")).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(EngineStateTest, AbortBeforeTheSwitchStopsTheNewInstancesOnly) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  OnVersion("v2", [](FakeInstance& i) { i.ready = false; });
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kWaitingReady);
  ASSERT_TRUE(engine->Step().ok());  // launched and probed: not ready
  ASSERT_TRUE(engine->Abort("dave").ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("aborted by dave"), std::string::npos);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
  EXPECT_EQ(engine->RequestRollback("again").code(), StatusCode::kFailedPrecondition);
  const std::vector<std::string> names = EventNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "aborted"), names.end());
}

// --- canary ---

using testing::Verdict;

class CanaryStateTest : public EngineStateTest {
 protected:
  // v2 as a canary: 5 % for 60 s, 25 % for 60 s, then 100 %.
  DeploymentSpec CanarySpec(const std::string& version) {
    DeploymentSpec s = Spec(version);
    s.strategy = "canary";
    s.canary_steps = {CanaryStep{500, 60s}, CanaryStep{2500, 60s}};
    s.analysis_interval = 1s;
    return s;
  }
  // An engine whose analysis hook counts the requests and answers with judge_ (continue when
  // unset).
  std::unique_ptr<Engine> CanaryEngine() {
    EngineOptions o = Options();
    o.analyze = [this](const AnalysisRequest& r) {
      ++analyses_;
      return judge_ ? judge_(r) : AnalysisVerdict{};
    };
    return NewEngine(std::move(o));
  }
  // v1 deployed, then v2 begun as a canary and driven into Canary with step 0's weight applied.
  std::unique_ptr<Engine> V2InCanary(state::Deployment* d1 = nullptr) {
    state::Deployment first = Deploy(Spec("v1"), DeploymentState::kSucceeded);
    if (d1) *d1 = first;
    auto engine = CanaryEngine();
    EXPECT_TRUE(engine->Begin(CanarySpec("v2")).ok());
    Run(*engine, DeploymentState::kCanary);
    EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
    StepOk(*engine);
    return engine;
  }
  StepReport StepOk(Engine& engine) {
    auto r = engine.Step();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : StepReport{};
  }
  uint32_t CanaryWeight() {
    router::RoutingPolicy p = router_.policy();
    return p.canary ? p.canary->weight_bp : 0;
  }

  std::function<AnalysisVerdict(const AnalysisRequest&)> judge_;
  int analyses_ = 0;
};

TEST_F(CanaryStateTest, StepsAdvanceByTimeAndTheRouterWeightFollows) {
  auto engine = V2InCanary();
  EXPECT_EQ(CanaryWeight(), 500u);
  EXPECT_EQ(router_.policy().active, "blue");
  clock_.Advance(59s);
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(CanaryWeight(), 500u) << "the step lasts its full minute";
  clock_.Advance(1s);
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
  EXPECT_EQ(CanaryWeight(), 2500u);
  clock_.Advance(60s);
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSwitching);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(router_.policy().active, "green");
  EXPECT_EQ(CanaryWeight(), 0u);
  EXPECT_GT(analyses_, 0);
  auto step0 = FindStep(engine->deployment().id, "canary_step:0");
  ASSERT_TRUE(step0.has_value());
  EXPECT_EQ(step0->outcome, state::StepOutcome::kOk);
}

TEST_F(CanaryStateTest, AnalysisRollbackSwitchesBackWithTheReason) {
  auto engine = V2InCanary();
  judge_ = [](const AnalysisRequest& r) {
    AnalysisVerdict v;
    if (r.phase == "canary") {
      v.kind = AnalysisVerdict::Kind::kRollback;
      v.reason = "error_rate 9.8% > 5% for 2m";
    }
    return v;
  };
  clock_.Advance(2s);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("analysis at canary step 1/2 (5 %): error_rate 9.8%"),
            std::string::npos)
      << engine->deployment().reason;
  EXPECT_EQ(router_.policy().active, "blue");
  EXPECT_EQ(CanaryWeight(), 0u);
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(CanaryStateTest, ACanaryInstanceThatDiesRollsBack) {
  auto engine = V2InCanary();
  platform_.Kill(Recorded(engine->deployment().id).at(0).handle.id, SIGSEGV);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("during the canary"), std::string::npos)
      << engine->deployment().reason;
  EXPECT_EQ(CanaryWeight(), 0u);
}

TEST_F(CanaryStateTest, ResumeMidCanaryKeepsTheStepAndRestoresTheWeight) {
  auto engine = V2InCanary();
  clock_.Advance(61s);
  ASSERT_TRUE(engine->Step().ok());
  ASSERT_EQ(CanaryWeight(), 2500u);
  engine.reset();
  ASSERT_TRUE(router_.SetCanaryWeight("green", 500).ok());  // the router lost the step
  auto resumed = CanaryEngine();
  auto d = resumed->Resume(kFakeService);
  ASSERT_TRUE(d.ok() && d->has_value());
  ASSERT_TRUE(resumed->Step().ok());
  EXPECT_EQ(CanaryWeight(), 2500u);
  EXPECT_NE(resumed->resume_summary().find("resume canary step 2/2 (25 %)"), std::string::npos)
      << resumed->resume_summary();
}

TEST_F(CanaryStateTest, AnalysisPromoteSkipsAheadAtMostOncePerInterval) {
  auto engine = V2InCanary();
  judge_ = [](const AnalysisRequest& r) {
    return Verdict(AnalysisVerdict::Kind::kPromote,
                   "no difference at step " + std::to_string(r.step),
                   R"({"verdict":"promote","step":)" + std::to_string(r.step) + "}");
  };
  // The last consult was when step 0 began; the next is due one analysis_interval later.
  clock_.Advance(1s);
  StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 2500u);
  const EngineEvent* passed = testing::LastEventNamed(events_, "canary_step_passed");
  ASSERT_NE(passed, nullptr);
  EXPECT_NE(passed->detail.find("passed early: no difference at step 0"), std::string::npos)
      << passed->detail;
  EXPECT_EQ(nlohmann::json::parse(passed->evidence_json)["step"], 0);
  StepOk(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary) << "consulted again too soon";
  clock_.Advance(1s);
  StepOk(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSwitching);
  EXPECT_TRUE(FindStep(engine->deployment().id, "analysis:canary:0").has_value());
  EXPECT_TRUE(FindStep(engine->deployment().id, "analysis:canary:1").has_value());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(CanaryStateTest, PauseStopsTheTimerButAnalysisStillRollsBack) {
  state::Deployment d1;
  auto engine = V2InCanary(&d1);
  clock_.Advance(20s);
  StepOk(*engine);
  ASSERT_TRUE(engine->Pause("alice").ok());
  EXPECT_TRUE(engine->paused());
  EXPECT_TRUE(engine->Pause("alice").ok()) << "pausing twice is fine";
  EXPECT_EQ(testing::CountEventsNamed(events_, "paused"), 1u);
  clock_.Advance(10min);
  StepReport r = StepOk(*engine);
  EXPECT_EQ(r.state, DeploymentState::kCanary);
  EXPECT_EQ(CanaryWeight(), 500u) << "paused: the step timer does not run";
  EXPECT_NE(r.waiting_for.find("paused by alice"), std::string::npos) << r.waiting_for;
  EXPECT_NE(r.waiting_for.find("40 s left"), std::string::npos) << r.waiting_for;

  ASSERT_TRUE(engine->Unpause("alice").ok());
  EXPECT_FALSE(engine->paused());
  EXPECT_EQ(testing::LastEventNamed(events_, "resumed")->detail.find("resumed by alice"), 0u);
  clock_.Advance(39s);
  StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 500u);
  clock_.Advance(1s);
  StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 2500u) << "20 s before and 40 s after the pause make the minute";

  // Paused again: the automatic rollback keeps working.
  ASSERT_TRUE(engine->Pause("alice").ok());
  judge_ = [](const AnalysisRequest&) {
    return Verdict(AnalysisVerdict::Kind::kRollback, "p95 3.1s > 2s for 5m", "");
  };
  clock_.Advance(1s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kRollingBack);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "p95 3.1s > 2s for 5m");
  ExpectInstancesRunning(d1.id);
  EXPECT_FALSE(engine->paused()) << "a pause ends with the canary";
  EXPECT_EQ(engine->Pause("alice").code(), StatusCode::kFailedPrecondition);
}

TEST_F(CanaryStateTest, GatesAreRefusedOutsideCanaryAndBakeNamingTheStates) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = CanaryEngine();
  ASSERT_TRUE(engine->Begin(CanarySpec("v2")).ok());
  for (Status s : {engine->Pause("bob"), engine->Unpause("bob"), engine->Promote(false, "bob"),
                   engine->Promote(true, "bob")}) {
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(s.message().find("pending"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("canary and baking"), std::string::npos) << s.message();
  }
  EXPECT_EQ(
      testing::CountEventsNamed(events_, "paused") + testing::CountEventsNamed(events_, "promoted"),
      0u);
}

TEST_F(CanaryStateTest, PromoteGoesToTheNextStepOrStraightToAllTrafficAndEndsTheBake) {
  auto engine = V2InCanary();
  ASSERT_TRUE(engine->Promote(false, "bob").ok());
  EXPECT_EQ(CanaryWeight(), 2500u) << "the next step's weight applies inside the call";
  EXPECT_NE(testing::LastEventNamed(events_, "promoted")
                ->detail.find("promoted by bob at canary step 1/2"),
            std::string::npos);
  ASSERT_TRUE(engine->Promote(true, "bob").ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSwitching);
  EXPECT_NE(engine->deployment().reason.find("to 100 %"), std::string::npos);
  Run(*engine, DeploymentState::kBaking);
  EXPECT_EQ(CanaryWeight(), 0u);
  EXPECT_EQ(UserVersion(), "v2");
  ASSERT_TRUE(engine->Promote(false, "bob").ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kScalingDown);
  EXPECT_NE(engine->deployment().reason.find("bake ended after"), std::string::npos);
  EXPECT_EQ(testing::CountEventsNamed(events_, "promoted"), 3u);
  EXPECT_EQ(testing::CountEventsNamed(events_, "canary_step_passed"), 0u);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
}

TEST_F(CanaryStateTest, BakeAnalysisRollsBackAndWarnsOncePerReason) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = CanaryEngine();
  DeploymentSpec v2 = Spec("v2");  // blue/green: the bake is judged too
  v2.bake_time = 1h;
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  ASSERT_EQ(UserVersion(), "v2");
  judge_ = [](const AnalysisRequest& r) {
    if (r.step_elapsed < 10s) {
      return Verdict(AnalysisVerdict::Kind::kWarn, "cpu 85% > 80% for 1m", R"({"cpu":0.85})");
    }
    return Verdict(AnalysisVerdict::Kind::kRollback, "health failing for 30s",
                   R"({"failing_for_ms":30000})");
  };
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(StepOk(*engine).state, DeploymentState::kBaking);
    clock_.Advance(1s);
  }
  EXPECT_EQ(testing::CountEventsNamed(events_, "warning"), 1u) << "one warning per distinct reason";
  EXPECT_EQ(testing::LastEventNamed(events_, "warning")->detail, "cpu 85% > 80% for 1m");
  EXPECT_EQ(
      nlohmann::json::parse(testing::LastEventNamed(events_, "warning")->evidence_json)["cpu"],
      0.85);
  clock_.Advance(5s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kRollingBack);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "analysis during bake: health failing for 30s");
  ExpectInstancesRunning(d1.id);
  ExpectInstancesStopped(engine->deployment().id);
  std::vector<std::string> steps = testing::StepRecordNames(*store_, engine->deployment().id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "analysis:bake:-1"), 2)
      << "the warning and the rollback";
  auto service = store_->GetService(kFakeService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
}

TEST_F(CanaryStateTest, AbortInCanaryRollsBack) {
  auto engine = V2InCanary();
  ASSERT_TRUE(engine->Abort("dave").ok());
  EXPECT_EQ(CanaryWeight(), 0u);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "aborted by dave");
}

TEST_F(CanaryStateTest, FirstDeploymentHasNoStableVersionAndSwitchesDirectly) {
  auto engine = CanaryEngine();
  ASSERT_TRUE(engine->Begin(CanarySpec("v1")).ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  std::vector<DeploymentState> states = States(engine->deployment().id);
  EXPECT_FALSE(Contains(states, DeploymentState::kCanary));
  auto transitions = store_->Transitions(engine->deployment().id);
  ASSERT_TRUE(transitions.ok());
  bool explained = false;
  for (const auto& t : *transitions) {
    if (t.to == DeploymentState::kSwitching &&
        t.reason.find("no stable version") != std::string::npos) {
      explained = true;
    }
  }
  EXPECT_TRUE(explained);
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(CanaryStateTest, ApprovalLeadsIntoTheCanary) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = CanarySpec("v2");
  v2.manual_approval = true;
  auto engine = CanaryEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kAwaitingApproval);
  ASSERT_TRUE(engine->Approve("erin").ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
  StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 500u);
}

// --- rolling ---

TEST_F(EngineStateTest, RollingReplacesInstancesOneAtATimeNeverWithFewerReady) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 3;
  v1.strategy = "rolling";
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);  // first: blue/green
  DeploymentSpec v2 = Spec("v2");
  v2.replicas = 3;
  v2.strategy = "rolling";
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  size_t min_ready = 3, max_in_slot = 0;
  for (int i = 0; i < 400 && !state::IsTerminal(engine->deployment().state); ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->state == DeploymentState::kRolling) {
      std::vector<std::string> in_slot = router_.instances("blue");
      size_t ready = 0;
      for (const auto& a : in_slot) {
        std::optional<FakeInstance> inst = platform_.At(a);
        ready += inst && inst->status.running() && inst->ready ? 1 : 0;
      }
      min_ready = std::min(min_ready, ready);
      max_in_slot = std::max(max_in_slot, in_slot.size());
    }
    if (!r->waiting_for.empty() && r->state != DeploymentState::kRolling) clock_.Advance(10s);
  }
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(min_ready, 3u);
  EXPECT_LE(max_in_slot, 4u);
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(engine->deployment().id);
  EXPECT_EQ(router_.instances("blue").size(), 3u);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineStateTest, RollingAnalysisRollbackHalfwayRelaunchesTheReplacedOldInstances) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  v1.strategy = "rolling";
  Deploy(v1, DeploymentState::kSucceeded);
  DeploymentSpec v2 = v1;
  v2.version = "v2";
  bool fail = false;
  EngineOptions o = Options();
  o.analyze = [&fail](const AnalysisRequest&) {
    AnalysisVerdict v;
    if (fail) {
      v.kind = AnalysisVerdict::Kind::kRollback;
      v.reason = "errors";
    }
    return v;
  };
  auto engine = NewEngine(o);
  ASSERT_TRUE(engine->Begin(v2).ok());
  // Until the first old instance was replaced.
  for (int i = 0; i < 100; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    if (r->waiting_for.starts_with("replaced blue-0")) break;
  }
  fail = true;
  clock_.Advance(2s);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack)
      << engine->deployment().reason;
  std::vector<std::string> in_slot = router_.instances("blue");
  ASSERT_EQ(in_slot.size(), 2u);
  for (const auto& a : in_slot) {
    std::optional<FakeInstance> inst = platform_.At(a);
    ASSERT_TRUE(inst.has_value()) << a;
    EXPECT_EQ(inst->spec.version, "v1") << a;
    EXPECT_TRUE(inst->status.running()) << a;
  }
  ExpectInstancesStopped(engine->deployment().id);
}

// A rolling deployment's rollback runs the database ladder (the "rollback" phase) as blue/green
// does, and in the same order: once every old instance is back and alone in the slot and every
// new instance is stopped, so that neither version serves on a schema it does not support.
class RollingLadderTest : public EngineStateTest {
 protected:
  DeploymentSpec RollingSpec(const std::string& version) {
    DeploymentSpec s = Spec(version);
    s.replicas = 2;
    s.strategy = "rolling";
    return s;
  }

  // The versions of the running instances in the slot, and how many of the deployment's
  // instances run.
  std::vector<std::string> SlotVersions(const std::string& slot) {
    std::vector<std::string> out;
    for (const auto& a : router_.instances(slot)) {
      std::optional<FakeInstance> i = platform_.At(a);
      if (i && i->status.running()) out.push_back(i->spec.version);
    }
    return out;
  }
  int Running(int64_t deployment_id) {
    int n = 0;
    for (const auto& r : Recorded(deployment_id)) {
      auto st = platform_.Inspect(r.handle);
      n += st.ok() && st->running() ? 1 : 0;
    }
    return n;
  }

  // Steps v2 until its first old instance was replaced, then ends v2's instances.
  void FailHalfway(Engine& engine, int64_t id) {
    for (int i = 0; i < 100; ++i) {
      auto r = engine.Step();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (r->waiting_for.starts_with("replaced blue-0")) break;
    }
    ASSERT_EQ(engine.deployment().state, DeploymentState::kRolling);
    KillInstances(id);
  }
};

TEST_F(RollingLadderTest, ARollingRollbackRunsTheDatabaseLadderOnceTheOldVersionAloneServes) {
  Deploy(RollingSpec("v1"), DeploymentState::kSucceeded);
  std::vector<std::string> phases;
  int64_t v2 = 0;
  EngineOptions o = Options();
  o.database = [&](const PhaseRequest& r) {
    phases.push_back(r.phase);
    EXPECT_FALSE(r.nothing_serves) << r.phase << ": v1 serves";
    if (r.phase == "rollback") {
      EXPECT_EQ(SlotVersions("blue"), (std::vector<std::string>{"v1", "v1"}));
      EXPECT_EQ(router_.instances("blue").size(), 2u) << "only the old instances in the slot";
      EXPECT_EQ(Running(v2), 0) << "no new instance runs while the schema goes back";
    }
    return PhaseStatus{};
  };
  auto engine = NewEngine(o);
  auto d = engine->Begin(RollingSpec("v2"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  v2 = d->id;
  FailHalfway(*engine, v2);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "during the rolling update");
  EXPECT_EQ(phases, (std::vector<std::string>{"before_launch", "rollback"}));
  ExpectInstancesStopped(v2);
}

TEST_F(RollingLadderTest, ARollingRollbackWhoseLadderFailsEndsFailedSayingWhatToDo) {
  Deploy(RollingSpec("v1"), DeploymentState::kSucceeded);
  EngineOptions o = Options();
  o.database = [&](const PhaseRequest& r) {
    if (r.phase != "rollback") return PhaseStatus{};
    return PhaseStatus{PhaseStatus::Kind::kFailed,
                       "rung 3: restore with `turnout backup restore B1 --to <url> "
                       "--confirm-data-loss`"};
  };
  auto engine = NewEngine(o);
  auto d = engine->Begin(RollingSpec("v2"));
  ASSERT_TRUE(d.ok());
  FailHalfway(*engine, d->id);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kFailed);
  EXPECT_NE(engine->deployment().reason.find("database: rung 3: restore with `turnout backup "
                                             "restore B1"),
            std::string::npos)
      << engine->deployment().reason;
  // The old version serves (the ladder runs only once it does); the new one is stopped.
  EXPECT_EQ(SlotVersions("blue"), (std::vector<std::string>{"v1", "v1"}));
  ExpectInstancesStopped(d->id);
}

// Killed while the ladder runs: the next turnoutd finds the old version back and the new one
// stopped, relaunches nothing, and polls the phase again until it ends.
TEST_F(RollingLadderTest, ACrashWhileTheLadderRunsResumesAtTheLadder) {
  Deploy(RollingSpec("v1"), DeploymentState::kSucceeded);
  int64_t v2 = 0;
  int rollback_polls = 0;
  {
    EngineOptions o = Options();
    o.database = [&](const PhaseRequest& r) {
      if (r.phase != "rollback") return PhaseStatus{};
      ++rollback_polls;
      return PhaseStatus{PhaseStatus::Kind::kRunning, "running down migrations to 3"};
    };
    auto engine = NewEngine(o);
    auto d = engine->Begin(RollingSpec("v2"));
    ASSERT_TRUE(d.ok());
    v2 = d->id;
    FailHalfway(*engine, v2);
    for (int i = 0; i < 100 && rollback_polls == 0; ++i) ASSERT_TRUE(engine->Step().ok());
    ASSERT_EQ(rollback_polls, 1);
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, DeploymentState::kRollingBack);
    EXPECT_EQ(r->waiting_for, "database: running down migrations to 3");
  }
  const int launches = platform_.launches();
  std::vector<std::string> resumed_phases;
  EngineOptions o = Options();
  o.database = [&](const PhaseRequest& r) {
    resumed_phases.push_back(r.phase);
    EXPECT_EQ(SlotVersions("blue"), (std::vector<std::string>{"v1", "v1"}));
    EXPECT_EQ(Running(v2), 0);
    return PhaseStatus{};
  };
  auto engine = NewEngine(o);
  auto found = engine->Resume(kFakeService);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status().ToString();
  Run(*engine);
  ExpectRolledBackToV1(*engine, "during the rolling update");
  EXPECT_EQ(resumed_phases, (std::vector<std::string>{"rollback"}));
  EXPECT_EQ(platform_.launches(), launches)
      << "the restored old instances are kept, not relaunched";
  ExpectInstancesStopped(v2);
}

// `turnout scale N` in place (rolling with keep_instances): the serving instances are kept; only
// the difference is started (ready and healthy before it joins the slot) or drained and stopped.
class ScaleInPlaceTest : public RollingLadderTest {
 protected:
  DeploymentSpec Scaled(int replicas) {
    DeploymentSpec s = RollingSpec("v1");
    s.replicas = replicas;
    s.keep_instances = true;
    return s;
  }
};

TEST_F(ScaleInPlaceTest, ScaleUpStartsOnlyTheNewInstancesAndScaleDownStopsOnlyTheExtraOnes) {
  Deploy(RollingSpec("v1"), DeploymentState::kSucceeded);
  const std::vector<std::string> serving = router_.instances("blue");
  ASSERT_EQ(serving.size(), 2u);
  int launches = platform_.launches(), stops = platform_.stops();
  Deploy(Scaled(4), DeploymentState::kSucceeded);
  EXPECT_EQ(platform_.launches() - launches, 2) << "only the two new instances";
  EXPECT_EQ(platform_.stops() - stops, 0) << "no serving instance is replaced";
  std::vector<std::string> four = router_.instances("blue");
  EXPECT_EQ(SlotVersions("blue").size(), 4u);
  for (const auto& a : serving) {
    EXPECT_NE(std::find(four.begin(), four.end(), a), four.end()) << a << " kept";
  }
  launches = platform_.launches();
  stops = platform_.stops();
  Deploy(Scaled(1), DeploymentState::kSucceeded);
  EXPECT_EQ(platform_.launches() - launches, 0);
  EXPECT_EQ(platform_.stops() - stops, 3);
  EXPECT_EQ(router_.instances("blue"), (std::vector<std::string>{serving[0]}));
  EXPECT_EQ(SlotVersions("blue"), (std::vector<std::string>{"v1"}));
}

TEST_F(ScaleInPlaceTest, ARolledBackScaleUpStopsOnlyTheAddedInstances) {
  Deploy(RollingSpec("v1"), DeploymentState::kSucceeded);
  const std::vector<std::string> serving = router_.instances("blue");
  OnVersion("v1", [](FakeInstance& i) { i.ready = false; });  // the added ones never get ready
  const int launches = platform_.launches();
  auto engine = NewEngine();
  auto d = engine->Begin(Scaled(3));
  ASSERT_TRUE(d.ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack)
      << engine->deployment().reason;
  EXPECT_EQ(platform_.launches() - launches, 1) << "one added instance; nothing relaunched";
  EXPECT_EQ(router_.instances("blue"), serving);
  EXPECT_EQ(SlotVersions("blue"), (std::vector<std::string>{"v1", "v1"}));
  ExpectInstancesStopped(d->id);
}

// Images (containers): resolved once in PreChecks before anything launches, recorded in the saved
// spec, and every instance of the deployment launched with exactly that image.
TEST_F(EngineStateTest, PreChecksResolveTheImageAndEveryInstanceRunsIt) {
  std::map<std::string, std::string> tags = {{"v1", "sha256:1111"}, {"v2", "sha256:2222"}};
  platform_.set_resolve_image([&](std::string_view version) -> Result<std::string> {
    return tags.at(std::string(version));
  });
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  EXPECT_EQ(platform_.image_resolutions(), 1);
  for (const FakeInstance& i : platform_.Instances()) EXPECT_EQ(i.spec.image, "sha256:1111");
  std::optional<state::StepRecord> step = FindStep(d1.id, "resolve_image");
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(step->outcome, state::StepOutcome::kOk);
  EXPECT_NE(step->detail_json.find("sha256:1111"), std::string::npos) << step->detail_json;
  Result<std::optional<std::string>> saved =
      store_->GetSetting("controller.spec." + std::to_string(d1.id));
  ASSERT_TRUE(saved.ok() && saved->has_value());
  Result<DeploymentSpec> decoded = DecodeSpec(**saved);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->image, "sha256:1111");

  // Redeploying the saved spec (rollback --to 1) after the tag moved runs the recorded image and
  // does not ask again.
  Deploy(Spec("v2"), DeploymentState::kSucceeded);
  tags["v1"] = "sha256:moved";
  const int before = platform_.image_resolutions();
  const size_t launched = platform_.Instances().size();
  Deploy(*decoded, DeploymentState::kSucceeded);
  EXPECT_EQ(platform_.image_resolutions(), before);
  std::vector<FakeInstance> all = platform_.Instances();
  ASSERT_EQ(all.size(), launched + 2);
  for (size_t i = launched; i < all.size(); ++i) EXPECT_EQ(all[i].spec.image, "sha256:1111");
}

TEST_F(EngineStateTest, AnImageThatCannotBeResolvedFailsPreChecksWithNothingLaunched) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  platform_.set_resolve_image([](std::string_view) -> Result<std::string> {
    return Unavailable("cannot reach the container engine at /run/x/podman.sock");
  });
  const int launched = platform_.launches();
  state::Deployment d2 = Deploy(Spec("v2"), DeploymentState::kRolledBack);
  EXPECT_EQ(d2.reason, "pre-check failed: cannot reach the container engine at /run/x/podman.sock");
  EXPECT_EQ(platform_.launches(), launched);
  std::optional<state::StepRecord> step = FindStep(d2.id, "resolve_image");
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(step->outcome, state::StepOutcome::kFailed);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineStateTest, PlatformsWithoutImagesRecordNoImageStep) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  EXPECT_FALSE(FindStep(d1.id, "resolve_image").has_value());
  for (const FakeInstance& i : platform_.Instances()) EXPECT_EQ(i.spec.image, "");
}

}  // namespace
}  // namespace turnout::controller

namespace turnout::controller {
namespace {

// strategy recreate: the old version stops, the database phases run, the new version starts;
// meanwhile the router is in maintenance (503 + Retry-After + page), never pointing users at a
// slot with nothing running.
class RecreateStateTest : public EngineStateTest {
 protected:
  DeploymentSpec RecreateSpec(const std::string& version) {
    DeploymentSpec s = Spec(version);
    s.strategy = "recreate";
    s.replicas = 2;
    return s;
  }

  // v1 serving in blue (a first deployment is always blue/green).
  int64_t DeployV1() { return Deploy(RecreateSpec("v1"), DeploymentState::kSucceeded).id; }

  EngineOptions RecreateOptions() {
    EngineOptions o = Options();
    o.maintenance = [] {
      router::MaintenancePolicy m;
      m.retry_after_seconds = 7;
      m.page = "back soon";
      return Result<router::MaintenancePolicy>(m);
    };
    return o;
  }

  bool Maintenance() { return router_.policy().maintenance.enabled; }

  // Users either reach a running instance of the active slot or get the maintenance page.
  void ExpectNoDeadEnd(const std::string& when) {
    EXPECT_TRUE(Maintenance() || !UserVersion().empty())
        << when << ": maintenance off and nothing runs in " << router_.policy().active;
  }

  // Steps to the end, checking after every Step that users never hit a dead end.
  void RunChecked(Engine& engine) {
    for (int i = 0; i < 400 && !state::IsTerminal(engine.deployment().state); ++i) {
      auto r = engine.Step();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectNoDeadEnd(std::string(state::DeploymentStateName(r->state)) + ": " + r->waiting_for);
      if (!r->waiting_for.empty() &&
          (r->state == DeploymentState::kBaking || r->state == DeploymentState::kScalingDown)) {
        clock_.Advance(10s);
      }
    }
  }

  int RunningOf(const std::string& version) {
    int n = 0;
    for (const auto& slot : {"blue", "green"}) {
      for (const auto& a : router_.instances(slot)) {
        std::optional<FakeInstance> i = platform_.At(a);
        if (i && i->spec.version == version && i->status.running()) ++n;
      }
    }
    return n;
  }
};

TEST_F(RecreateStateTest, StopsTheOldVersionInMaintenanceMigratesThenSwitchesAndLiftsIt) {
  const int64_t v1 = DeployV1();
  std::vector<std::string> db_calls;
  EngineOptions o = RecreateOptions();
  o.database = [&](const PhaseRequest& r) {
    if (r.deployment->version == "v2" && r.phase == "before_launch") {
      // Backup and every migration (contract ones too: nothing serves) run with the old
      // version stopped, users on the maintenance page.
      EXPECT_TRUE(r.nothing_serves);
      EXPECT_TRUE(Maintenance());
      EXPECT_EQ(router_.policy().maintenance.page, "back soon");
      EXPECT_EQ(router_.policy().maintenance.retry_after_seconds, 7u);
      EXPECT_EQ(RunningOf("v1"), 0);
      EXPECT_EQ(RunningOf("v2"), 0);
    }
    if (r.deployment->version == "v2" && r.phase == "after_retire") {
      EXPECT_FALSE(r.nothing_serves) << "v2 serves";
    }
    db_calls.push_back(r.phase);
    return PhaseStatus{};
  };
  auto engine = NewEngine(o);
  auto d = engine->Begin(RecreateSpec("v2"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  RunChecked(*engine);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(UserVersion(), "v2");
  EXPECT_FALSE(Maintenance());
  EXPECT_EQ(router_.policy().maintenance.page, "back soon");  // kept for next time
  ExpectInstancesStopped(v1);
  EXPECT_EQ(RunningOf("v2"), 2);
  EXPECT_EQ(States(d->id), (std::vector<DeploymentState>{
                               DeploymentState::kPreChecks, DeploymentState::kDraining,
                               DeploymentState::kLaunching, DeploymentState::kWaitingReady,
                               DeploymentState::kSmokeTesting, DeploymentState::kSwitching,
                               DeploymentState::kBaking, DeploymentState::kScalingDown,
                               DeploymentState::kSucceeded}));
  EXPECT_EQ(db_calls, (std::vector<std::string>{"before_launch", "after_retire"}));
  // The downtime window is in the record of the switch, and each state has its timing.
  auto ts = store_->Transitions(d->id);
  ASSERT_TRUE(ts.ok());
  bool said = false;
  for (const auto& t : *ts) {
    said |= t.to == DeploymentState::kBaking &&
            t.reason.find("maintenance off after") != std::string::npos;
  }
  EXPECT_TRUE(said);
  EXPECT_TRUE(FindStep(d->id, "state:draining").has_value());
}

TEST_F(RecreateStateTest, ANewVersionFailingReadinessBringsTheOldBackThenLiftsMaintenance) {
  DeployV1();
  OnVersion("v2", [](FakeInstance& i) { i.ready = false; });
  std::vector<std::string> db_calls;
  EngineOptions o = RecreateOptions();
  o.database = [&](const PhaseRequest& r) {
    if (r.phase == "rollback") {
      // The ladder runs with nothing running (v1 may not work on v2's schema, nor v2 on the
      // schema taken back), behind the maintenance page; v1 comes back after it.
      EXPECT_TRUE(r.nothing_serves);
      EXPECT_EQ(RunningOf("v1"), 0);
      for (const auto& i : platform_.Instances()) {
        EXPECT_FALSE(i.status.running())
            << i.spec.version << " " << i.spec.slot << "-" << i.spec.instance;
      }
      EXPECT_TRUE(Maintenance());
    }
    db_calls.push_back(r.phase);
    return PhaseStatus{};
  };
  auto engine = NewEngine(o);
  auto d = engine->Begin(RecreateSpec("v2"));
  ASSERT_TRUE(d.ok());
  RunChecked(*engine);
  ExpectRolledBackToV1(*engine, "not ready within");
  EXPECT_NE(engine->deployment().reason.find("maintenance off after"), std::string::npos)
      << engine->deployment().reason;
  EXPECT_FALSE(Maintenance());
  EXPECT_EQ(router_.policy().active, "blue");
  EXPECT_EQ(RunningOf("v1"), 2);
  ExpectInstancesStopped(d->id);
  EXPECT_TRUE(Contains(States(d->id), DeploymentState::kDraining));
  EXPECT_EQ(db_calls.back(), "rollback");
}

TEST_F(RecreateStateTest, AFailedLadderBringsTheOldVersionBackBehindTheMaintenancePage) {
  DeployV1();
  OnVersion("v2", [](FakeInstance& i) { i.ready = false; });
  EngineOptions o = RecreateOptions();
  o.database = [&](const PhaseRequest& r) {
    if (r.phase != "rollback") return PhaseStatus{};
    return PhaseStatus{PhaseStatus::Kind::kFailed, "rung 3: restore backup B1"};
  };
  auto engine = NewEngine(o);
  ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
  RunChecked(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kFailed);
  const std::string& reason = engine->deployment().reason;
  EXPECT_NE(reason.find("database: rung 3: restore backup B1; maintenance stays on: fix the "
                        "database, then run `turnout maintenance off`"),
            std::string::npos)
      << reason;
  EXPECT_TRUE(Maintenance());
  EXPECT_EQ(router_.policy().active, "blue");
  EXPECT_EQ(RunningOf("v1"), 2);
  EXPECT_EQ(RunningOf("v2"), 0);
}

TEST_F(RecreateStateTest, AFailedBakeRelaunchesTheOldVersionAndSwitchesBack) {
  DeployV1();
  auto engine = NewEngine(RecreateOptions());
  auto d = engine->Begin(RecreateSpec("v2"));
  ASSERT_TRUE(d.ok());
  Run(*engine, DeploymentState::kBaking);
  EXPECT_FALSE(Maintenance());
  EXPECT_EQ(UserVersion(), "v2");
  KillInstances(d->id);
  RunChecked(*engine);
  ExpectRolledBackToV1(*engine, "during bake");
  EXPECT_FALSE(Maintenance());
}

TEST_F(RecreateStateTest, ARequestedRollbackAfterTheSwitchRelaunchesTheOldVersion) {
  DeployV1();
  auto engine = NewEngine(RecreateOptions());
  ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
  Run(*engine, DeploymentState::kBaking);
  // The old slot is cold on purpose: no fast switch, the rollback relaunches it first.
  ASSERT_TRUE(engine->RequestRollback("by hand").ok());
  EXPECT_EQ(UserVersion(), "v2");
  RunChecked(*engine);
  ExpectRolledBackToV1(*engine, "by hand");
  EXPECT_FALSE(Maintenance());
}

TEST_F(RecreateStateTest, AFailureBeforeMaintenanceLeavesTheOldVersionAlone) {
  const int64_t v1 = DeployV1();
  DeploymentSpec v2 = RecreateSpec("v2");
  v2.pre_deploy = {PreDeployCheck{"gate", "check-gate"}};
  commands_.Exits("check-gate", 1, "not today\n");
  auto engine = NewEngine(RecreateOptions());
  auto d = engine->Begin(v2);
  ASSERT_TRUE(d.ok());
  RunChecked(*engine);
  ExpectRolledBackToV1(*engine, "gate");
  EXPECT_FALSE(Maintenance());
  EXPECT_FALSE(Contains(States(d->id), DeploymentState::kDraining));
  ExpectInstancesRunning(v1);
}

// Maintenance an operator turned on before a recreate began is theirs: the deployment keeps it
// on (with their page) to the end, whichever way it ends, and its final step says so.
class RecreateInMaintenanceTest : public RecreateStateTest {
 protected:
  void OperatorMaintenanceOn() {
    router::MaintenancePolicy m;
    m.enabled = true;
    m.page = "disk swap until 18:00";
    m.retry_after_seconds = 600;
    ASSERT_TRUE(router_.SetMaintenance(m).ok());
  }
  EngineOptions Owned() {
    EngineOptions o = RecreateOptions();
    o.maintenance_owner = [] { return std::string("bob: disk swap"); };
    return o;
  }
  void ExpectOperatorMaintenance(const Engine& engine) {
    EXPECT_TRUE(Maintenance());
    EXPECT_EQ(router_.policy().maintenance.page, "disk swap until 18:00");
    EXPECT_EQ(router_.policy().maintenance.retry_after_seconds, 600u);
    EXPECT_NE(engine.deployment().reason.find(
                  "maintenance stays on as it was before this deployment (bob: disk swap)"),
              std::string::npos)
        << engine.deployment().reason;
    EXPECT_EQ(engine.deployment().reason.find("maintenance off after"), std::string::npos)
        << engine.deployment().reason;
  }
};

TEST_F(RecreateInMaintenanceTest, ASucceededRecreateLeavesTheOperatorsMaintenanceOn) {
  DeployV1();
  OperatorMaintenanceOn();
  auto engine = NewEngine(Owned());
  ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
  RunChecked(*engine);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  ExpectOperatorMaintenance(*engine);
  EXPECT_EQ(RunningOf("v2"), 2);
  EXPECT_EQ(router_.policy().active, "green");
}

TEST_F(RecreateInMaintenanceTest, ARolledBackRecreateLeavesTheOperatorsMaintenanceOn) {
  DeployV1();
  OperatorMaintenanceOn();
  OnVersion("v2", [](FakeInstance& i) { i.ready = false; });
  auto engine = NewEngine(Owned());
  ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
  RunChecked(*engine);
  ExpectRolledBackToV1(*engine, "not ready within");
  ExpectOperatorMaintenance(*engine);
}

TEST_F(RecreateInMaintenanceTest, AResumedRecreateStillKnowsTheMaintenanceWasNotItsOwn) {
  DeployV1();
  OperatorMaintenanceOn();
  {
    auto engine = NewEngine(Owned());
    ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
    Run(*engine, DeploymentState::kWaitingReady);
    ASSERT_EQ(engine->deployment().state, DeploymentState::kWaitingReady);
  }
  auto resumed = NewEngine(Owned());
  auto found = resumed->Resume(kFakeService);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status().ToString();
  RunChecked(*resumed);
  ExpectRolledBackToV1(*resumed, "controller restarted");
  ExpectOperatorMaintenance(*resumed);
}

// A turnoutd killed during a recreate ends consistent: before the switch the old version comes
// back and maintenance goes off; from the switch on the new version serves, maintenance off.
struct RecreateCrash {
  DeploymentState at;
  bool after_one_step;  // crash after one Step in the state (maintenance on, old stopped)
  DeploymentState ends;
  const char* serving;
};

class RecreateCrashTest : public RecreateStateTest,
                          public ::testing::WithParamInterface<RecreateCrash> {};

TEST_P(RecreateCrashTest, ResumeEndsConsistentWithMaintenanceOff) {
  const RecreateCrash c = GetParam();
  DeployV1();
  // To crash while rolling back, v2 must fail first.
  if (c.at == DeploymentState::kRollingBack)
    OnVersion("v2", [](FakeInstance& i) { i.ready = false; });
  {
    EngineOptions o = RecreateOptions();
    // The migrations still run when the controller dies.
    o.database = [&](const PhaseRequest& r) {
      PhaseStatus s;
      if (c.after_one_step && r.phase == "before_launch") {
        s.kind = PhaseStatus::Kind::kRunning;
        s.detail = "migrating";
      }
      return s;
    };
    auto engine = NewEngine(o);
    ASSERT_TRUE(engine->Begin(RecreateSpec("v2")).ok());
    Run(*engine, c.at);
    ASSERT_EQ(engine->deployment().state, c.at);
    if (c.after_one_step) {
      ASSERT_TRUE(engine->Step().ok());
      ASSERT_EQ(engine->deployment().state, c.at);
      EXPECT_TRUE(Maintenance());
      EXPECT_EQ(RunningOf("v1"), 0);
    }
  }
  auto resumed = NewEngine(RecreateOptions());
  auto found = resumed->Resume(kFakeService);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status().ToString();
  RunChecked(*resumed);
  EXPECT_EQ(resumed->deployment().state, c.ends) << resumed->deployment().reason;
  EXPECT_EQ(UserVersion(), c.serving);
  EXPECT_FALSE(Maintenance());
  EXPECT_EQ(RunningOf(c.serving), 2);
}

INSTANTIATE_TEST_SUITE_P(
    EveryState, RecreateCrashTest,
    ::testing::Values(
        RecreateCrash{DeploymentState::kDraining, false, DeploymentState::kRolledBack, "v1"},
        RecreateCrash{DeploymentState::kDraining, true, DeploymentState::kRolledBack, "v1"},
        RecreateCrash{DeploymentState::kLaunching, false, DeploymentState::kRolledBack, "v1"},
        RecreateCrash{DeploymentState::kWaitingReady, false, DeploymentState::kRolledBack, "v1"},
        RecreateCrash{DeploymentState::kSmokeTesting, false, DeploymentState::kRolledBack, "v1"},
        RecreateCrash{DeploymentState::kSwitching, false, DeploymentState::kSucceeded, "v2"},
        RecreateCrash{DeploymentState::kBaking, false, DeploymentState::kSucceeded, "v2"},
        RecreateCrash{DeploymentState::kRollingBack, false, DeploymentState::kRolledBack, "v1"}),
    [](const auto& info) {
      return std::string(state::DeploymentStateName(info.param.at)) +
             (info.param.after_one_step ? "_after_a_step" : "");
    });

}  // namespace
}  // namespace turnout::controller
