// The deployment engine over real parts: a SqliteStateStore in a temp dir, a ProcessPlatform
// running turnout-demo-app, and an in-process Router on 127.0.0.1:0. The engine's clock is a
// ManualClock (deadlines, bake, scale-down delay); the processes and sockets run in real time, and
// every wait for them is bounded (the engine's own probe_wait).

#include "controller/engine.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/engine_test_fixture.h"
#include "controller/http_probe.h"
#include "platform/process_platform.h"
#include "platform/testing/test_util.h"
#include "router/router.h"
#include "router/testing/raw_client.h"
#include "router/testing/test_upstream.h"
#include "state/sqlite_state_store.h"

namespace turnout::controller {
namespace {

TEST_F(EngineTest, FirstDeploymentThenSecondMovesTrafficAndScalesDownOldSlot) {
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
  EXPECT_EQ(d2->previous_slot, "blue");
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
  EXPECT_EQ(UserVersion(), "v2");

  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "green");
  EXPECT_EQ(service->active_revision, 2);
  auto history = store_->History(kService, 0);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].version, "v2");
  EXPECT_EQ((*history)[1].version, "v1");
  auto steps = store_->Steps(d2->id);
  ASSERT_TRUE(steps.ok());
  std::vector<std::string> names;
  for (const auto& step : *steps) {
    names.push_back(step.step);
    EXPECT_EQ(step.outcome, state::StepOutcome::kOk) << step.step;
    ASSERT_TRUE(step.finished_at.has_value()) << step.step;
    EXPECT_GE(*step.finished_at, step.started_at);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"state:pre_checks", "state:launching", "state:waiting_ready",
                                      "state:smoke_testing", "smoke_test:GET /", "state:switching",
                                      "state:baking", "state:scaling_down"}));
  // The bake's step lasted the bake time by the controller's clock.
  EXPECT_GE(steps->at(6).finished_at.value() - steps->at(6).started_at, Clock::Duration(30s));
  auto audit = store_->VerifyAudit();
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->ok()) << audit->ToString();
}

TEST_F(EngineTest, DeploymentUnderLoadLosesNoRequest) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  auto load = StartLoad();

  DeploymentSpec v2 = Spec("v2");
  v2.replicas = 2;
  state::Deployment d2 = Deploy(v2, DeploymentState::kSucceeded);  // incl. v1's scale-down
  router::testing::LoadResult result = StopLoad(*load);
  std::printf("deploy under load: %s\n", result.Summary().c_str());
  EXPECT_EQ(result.failures(), 0u) << result.Summary();
  EXPECT_GT(result.by_upstream["v1"], 0u);
  EXPECT_GT(result.by_upstream["v2"], 0u);
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(d2.id);
}

TEST_F(EngineTest, VersionFailingReadinessIsNeverSwitchedTo) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v3", "--fail-ready")).ok());
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
  EXPECT_NE(engine->deployment().reason.find("not ready within 10 s"), std::string::npos)
      << engine->deployment().reason;
  std::vector<DeploymentState> states = States(engine->deployment().id);
  EXPECT_FALSE(Contains(states, DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_revision, d1.revision);
}

TEST_F(EngineTest, FailedSmokeTestIsNeverSwitchedTo) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.smoke_checks = {HttpCheck("GET", "/", 418)};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("expected 418, got 200"), std::string::npos) << d2.reason;
  EXPECT_FALSE(Contains(States(d2.id), DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(d2.id);
  auto steps = store_->Steps(d2.id);
  ASSERT_TRUE(steps.ok());
  auto smoke = std::find_if(steps->begin(), steps->end(),
                            [](const auto& step) { return step.step == "smoke_test:GET /"; });
  ASSERT_NE(smoke, steps->end());
  EXPECT_EQ(smoke->outcome, state::StepOutcome::kFailed);
  EXPECT_NE(smoke->detail_json.find("\"status\":200"), std::string::npos) << smoke->detail_json;
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineTest, InstanceCrashingAfterStartIsNeverSwitchedTo) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  state::Deployment d2 =
      Deploy(Spec("v2", "--ready-after 30s --crash-after 300ms"), DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("before becoming ready"), std::string::npos) << d2.reason;
  EXPECT_FALSE(Contains(States(d2.id), DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineTest, AnInstanceThatExitsBeforeReadyShowsTheEndOfItsLog) {
  // The reported fault: the reason said only "exited with code 1 before becoming ready"; the
  // cause was in the instance's log. Here the app is told to listen on a port someone holds.
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  platform::testing::HeldPort held;
  DeploymentSpec v2 = Spec("v2");
  v2.command = std::string(TURNOUT_DEMO_APP_BINARY) + " --listen 127.0.0.1:" +
               std::to_string(held.port()) + " --version {version} --slot {slot}";
  v2.env = {{"DATABASE_PASSWORD", "127.0.0.1:" + std::to_string(held.port())}};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("exited with code 1 before becoming ready; last lines of its log: "),
            std::string::npos)
      << d2.reason;
  EXPECT_NE(d2.reason.find("Address already in use"), std::string::npos) << d2.reason;
  // The values of the instance's environment are not repeated from its log.
  EXPECT_EQ(d2.reason.find("127.0.0.1:" + std::to_string(held.port())), std::string::npos)
      << d2.reason;
  EXPECT_EQ(d2.reason.find('\n'), std::string::npos) << d2.reason;
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineTest, APortInUseIsRefusedAtLaunchNamingThePort) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);  // on blue
  platform::testing::HeldPort held;
  DeploymentSpec v2 = Spec("v2");
  v2.base_port = static_cast<uint16_t>(held.port() - 1);  // green's instance 0: base + 1
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("launching instance 0 failed: "), std::string::npos) << d2.reason;
  EXPECT_NE(d2.reason.find("port " + std::to_string(held.port()) + " is already in use"),
            std::string::npos)
      << d2.reason;
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineTest, FailureDuringBakeSwitchesBack) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2", "--crash-after 1500ms");
  v2.bake_time = std::chrono::hours(1);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  EXPECT_EQ(UserVersion(), "v2");
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("during bake"), std::string::npos)
      << engine->deployment().reason;
  EXPECT_EQ(UserVersion(), "v1");
  std::vector<DeploymentState> states = States(engine->deployment().id);
  EXPECT_TRUE(Contains(states, DeploymentState::kBaking));
  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
  EXPECT_EQ(service->active_revision, d1.revision);
  ExpectInstancesRunning(d1.id);
  // The crash rollback is one decision: one switch back on record.
  int back = 0;
  for (const auto& e : AuditSince(0, "service.switch")) {
    if (e.detail_json.find("rolled back from v2") != std::string::npos) ++back;
  }
  EXPECT_EQ(back, 1);
}

TEST_F(EngineTest, FailingReadinessDuringBakeSwitchesBackAfterTheThreshold) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  v2.bake_failure_threshold = 3;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  ASSERT_EQ(UserVersion(), "v2");
  SetFault(engine->deployment().id, "fail-ready=true");
  // Two failed probes are tolerated, the third switches back.
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
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

// turnout-yaml.md, bake_time: "failing liveness switches traffic back at once" - after the
// liveness check's unhealthy_threshold failures in a row, probed every liveness interval by the
// controller's clock, even while readiness still answers 200.
TEST_F(EngineTest, FailingLivenessDuringBakeSwitchesBackAtOnce) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  v2.liveness_path = "/live";
  v2.liveness_interval = 1s;
  v2.liveness_failure_threshold = 3;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  ASSERT_EQ(UserVersion(), "v2");
  const int64_t d2_id = engine->deployment().id;
  SetFault(d2_id, "fail-live=true");
  for (int failures = 1; failures <= 3; ++failures) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (failures < 3) {
      EXPECT_EQ(r->state, DeploymentState::kBaking) << failures;
      // Within the interval nothing is probed again, so nothing more counts.
      r = engine->Step();
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->state, DeploymentState::kBaking) << failures;
      clock_.Advance(1s);
    } else {
      EXPECT_EQ(r->state, DeploymentState::kRollingBack);
    }
  }
  EXPECT_NE(engine->deployment().reason.find("failed 3 liveness probes in a row during bake"),
            std::string::npos)
      << engine->deployment().reason;
  EXPECT_NE(engine->deployment().reason.find("GET /live: 503"), std::string::npos)
      << engine->deployment().reason;
  // At once: the next Step switches users back to v1 (before it waits for green to drain).
  ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(UserVersion(), "v1");
  Run(*engine);
  ExpectRolledBackToV1(*engine, "liveness");
  ExpectInstancesStopped(d2_id);
  ExpectInstancesRunning(d1.id);
}

// One rollback decision is one "service.switch" audit entry, however many Steps the rollback
// takes (here it waits for a slow request in flight to drain).
TEST_F(EngineTest, RollbackWaitingForTheDrainWritesOneSwitchEntry) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2", "--latency 1500ms");
  v2.bake_time = std::chrono::hours(1);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v2).ok());
  Run(*engine, DeploymentState::kBaking);
  const int64_t before = LastAuditSeq();
  // A slow request on v2 keeps green from draining for about 1.5 s.
  std::thread slow([this] {
    ProbeRequest req;
    req.address = router_address_;
    req.timeout = 10s;
    (void)HttpProbe(req);
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (true) {
    auto status = router_->GetSlotStatus("green");
    ASSERT_TRUE(status.ok());
    if (status->in_flight > 0) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the slow request never arrived";
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(engine->RequestRollback("operator rollback").ok());
  int drain_steps = 0;
  while (!state::IsTerminal(engine->deployment().state) && drain_steps < 200) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->waiting_for.find("drain") != std::string::npos) ++drain_steps;
  }
  slow.join();
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_GT(drain_steps, 1) << "the rollback never waited for the drain";
  std::vector<state::AuditEntry> switches = AuditSince(before, "service.switch");
  ASSERT_EQ(switches.size(), 1u);
  EXPECT_NE(switches[0].detail_json.find("rolled back from v2"), std::string::npos)
      << switches[0].detail_json;
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineTest, ResumeInSwitchingWithADeadNewInstanceRollsBack) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2_id = BeginV2AndCrashAt(DeploymentState::kSwitching);
  KillInstances(d2_id);  // while no controller runs, the new instance dies
  ExpectRolledBackToV1(*ResumeAndRun(), "before the switch");
  ExpectInstancesRunning(d1.id);
  States(d2_id);
}

TEST_F(EngineTest, EmergencyRollbackWhileOldSlotIsWarmSwitchesBackAtOnce) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2")).ok());
  Run(*engine, DeploymentState::kBaking);
  ASSERT_EQ(UserVersion(), "v2");
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(engine->RequestRollback("operator said so").ok());
  const auto took = std::chrono::steady_clock::now() - started;
  std::printf("emergency rollback: traffic back in %.1f ms (incl. the durable transition)\n",
              std::chrono::duration<double, std::milli>(took).count());
  // Traffic moved inside the call, before any Step.
  EXPECT_EQ(UserVersion(), "v1");
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineTest, NoSwitchBackToAnOldSlotWhoseInstancesEnded) {
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

TEST_F(EngineTest, AbortBeforeTheSwitchStopsTheNewInstancesOnly) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(Spec("v2", "--fail-ready")).ok());
  Run(*engine, DeploymentState::kWaitingReady);
  ASSERT_TRUE(engine->Step().ok());  // launched and probed: not ready
  ASSERT_TRUE(engine->RequestRollback("aborted by operator").ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(engine->deployment().reason.find("aborted by operator"), std::string::npos);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
  EXPECT_EQ(engine->RequestRollback("again").code(), StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, FirstDeploymentFailingAfterItsSwitchEndsFailedWithNothingToGoBackTo) {
  DeploymentSpec v1 = Spec("v1", "--crash-after 1500ms");
  v1.bake_time = std::chrono::hours(1);
  state::Deployment d1 = Deploy(v1, DeploymentState::kFailed);
  EXPECT_NE(d1.reason.find("no previous version"), std::string::npos) << d1.reason;
  std::vector<DeploymentState> states = States(d1.id);
  EXPECT_TRUE(Contains(states, DeploymentState::kRollingBack));
  auto policy = router_->GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "blue");
  auto active = store_->ActiveDeployment(kService);
  ASSERT_TRUE(active.ok());
  EXPECT_FALSE(active->has_value()) << "a failed deployment must release the service";
}

TEST_F(EngineTest, SecondDeploymentWhileOneIsActiveIsRefused) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto first = NewEngine();
  ASSERT_TRUE(first->Begin(Spec("v2")).ok());
  Run(*first, DeploymentState::kWaitingReady);
  auto second = NewEngine();
  auto refused = second->Begin(Spec("v3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(refused.status().message().find("v2"), std::string::npos) << refused.status().message();
  Run(*first);
  EXPECT_EQ(first->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineTest, FirstDeploymentThatNeverGetsReadyLeavesNothingRunning) {
  DeploymentSpec v1 = Spec("v1", "--fail-ready");
  v1.ready_deadline = 1s;
  auto engine = NewEngine();
  ASSERT_TRUE(engine->Begin(v1).ok());
  Run(*engine, DeploymentState::kWaitingReady);
  clock_.Advance(2s);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  ExpectInstancesStopped(engine->deployment().id);
  auto active = store_->ActiveDeployment(kService);
  ASSERT_TRUE(active.ok());
  EXPECT_FALSE(active->has_value());
}

TEST_F(EngineTest, FailingPreDeployCheckRollsBackBeforeAnyLaunchWithItsOutput) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  DeploymentSpec v2 = Spec("v2");
  v2.pre_deploy = {
      PreDeployCheck{"disk", "true"},
      PreDeployCheck{"schema",
                     "sh -c 'echo checking $0; echo schema drift in orders >&2; exit 3' "
                     "{version}"},
      PreDeployCheck{"never", "sh -c 'echo must not run; exit 9'"}};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_NE(d2.reason.find("pre-deploy check 'schema' exited with code 3"), std::string::npos)
      << d2.reason;
  EXPECT_NE(d2.reason.find("schema drift in orders"), std::string::npos) << d2.reason;
  std::vector<DeploymentState> states = States(d2.id);
  EXPECT_FALSE(Contains(states, DeploymentState::kLaunching));
  auto instances = store_->ListInstances(kService, false);
  ASSERT_TRUE(instances.ok());
  for (const auto& i : *instances) EXPECT_NE(i.deployment_id, d2.id) << "launched " << i.slot;

  std::optional<state::StepRecord> disk = FindStep(d2.id, "pre_deploy:disk");
  ASSERT_TRUE(disk.has_value());
  EXPECT_EQ(disk->outcome, state::StepOutcome::kOk);
  std::optional<state::StepRecord> schema = FindStep(d2.id, "pre_deploy:schema");
  ASSERT_TRUE(schema.has_value());
  EXPECT_EQ(schema->outcome, state::StepOutcome::kFailed);
  nlohmann::json detail = nlohmann::json::parse(schema->detail_json);
  EXPECT_EQ(detail["exit"], 3);
  EXPECT_EQ(detail["output_tail"], "checking v2\nschema drift in orders");
  EXPECT_FALSE(FindStep(d2.id, "pre_deploy:never").has_value());
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "rolled_back"}));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineTest, PreDeployCheckWhoseProgramIsMissingRollsBack) {
  DeploymentSpec v1 = Spec("v1");
  v1.pre_deploy = {PreDeployCheck{"tool", "turnout-no-such-tool --check"}};
  state::Deployment d1 = Deploy(v1, DeploymentState::kRolledBack);
  EXPECT_NE(d1.reason.find("pre-deploy check 'tool' could not run"), std::string::npos)
      << d1.reason;
  EXPECT_NE(d1.reason.find("turnout-no-such-tool"), std::string::npos) << d1.reason;
  EXPECT_FALSE(Contains(States(d1.id), DeploymentState::kLaunching));
}

TEST_F(EngineTest, SuccessfulDeploymentRunsPreDeployChecksAndEmitsEventsInOrder) {
  std::ofstream(dir_ + "/marker") << "present";
  DeploymentSpec v1 = Spec("v1");
  v1.working_dir = dir_;
  v1.env = {{"APP_ENV", "prod"}};
  // The first check leaves a file in the working directory that the second one reads.
  v1.pre_deploy = {
      PreDeployCheck{"write", "sh -c 'test -f marker && echo \"$0 $APP_ENV\" > pre.txt' {version}"},
      PreDeployCheck{"read", "sh -c 'test \"$(cat pre.txt)\" = \"v1 prod\"'"}};
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  for (const char* name : {"pre_deploy:write", "pre_deploy:read"}) {
    std::optional<state::StepRecord> step = FindStep(d1.id, name);
    ASSERT_TRUE(step.has_value()) << name;
    EXPECT_EQ(step->outcome, state::StepOutcome::kOk) << name << " " << step->detail_json;
  }
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                                    "smoke_passed", "switched", "succeeded"}));
  // Each event carries the deployment as recorded after its transition.
  const std::vector<DeploymentState> at = {
      DeploymentState::kPending,   DeploymentState::kLaunching, DeploymentState::kSmokeTesting,
      DeploymentState::kSwitching, DeploymentState::kBaking,    DeploymentState::kSucceeded};
  ASSERT_EQ(events_.size(), at.size());
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_EQ(events_[i].deployment.state, at[i]) << events_[i].name;
    EXPECT_EQ(events_[i].deployment.id, d1.id);
  }
  EXPECT_EQ(events_[4].detail, "traffic on blue");
}

TEST_F(EngineTest, FailedSmokeTestEmitsRolledBackAfterReady) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  DeploymentSpec v2 = Spec("v2");
  v2.smoke_checks = {HttpCheck("GET", "/nope", 200)};
  state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                                    "rolled_back"}));
  EXPECT_EQ(events_.back().detail, d2.reason);
  EXPECT_NE(d2.reason.find("smoke test GET /nope: expected 200, got 404"), std::string::npos)
      << d2.reason;
}

TEST_F(EngineTest, RichSmokeChecksPassThroughTheRouter) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  SmokeCheck body = HttpCheck("GET", "/", 200);
  body.name = "identity";
  body.expect_body_contains = "\"version\":\"{version}\"";
  body.expect_json = {{"version", "{version}"}, {"slot", "green"}};
  SmokeCheck missing = HttpCheck("GET", "/nope", 404);
  SmokeCheck command;
  command.kind = SmokeCheck::Kind::kCommand;
  command.command = "sh -c 'test \"$0 $1 $2\" = \"http://" + router_address_ +
                    " green v2\"' {url} {slot} "
                    "{version}";
  command.name = "substitution";
  v2.smoke_checks = {body, missing, command};
  state::Deployment d2 = Deploy(v2, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
  for (const char* name :
       {"smoke_test:identity", "smoke_test:GET /nope", "smoke_test:substitution"}) {
    std::optional<state::StepRecord> step = FindStep(d2.id, name);
    ASSERT_TRUE(step.has_value()) << name;
    EXPECT_EQ(step->outcome, state::StepOutcome::kOk) << name << " " << step->detail_json;
  }
  nlohmann::json detail =
      nlohmann::json::parse(FindStep(d2.id, "smoke_test:identity")->detail_json);
  EXPECT_EQ(detail["status"], 200);
  EXPECT_EQ(detail["expected_json"]["version"], "v2");
  nlohmann::json command_detail =
      nlohmann::json::parse(FindStep(d2.id, "smoke_test:substitution")->detail_json);
  EXPECT_EQ(command_detail["exit"], 0);
  EXPECT_EQ(command_detail["command"][3], "http://" + router_address_);
}

TEST_F(EngineTest, EachRichSmokeCheckFailureRollsBackNamingTheMismatch) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  struct Case {
    SmokeCheck check;
    std::string step;
    std::string reason;
  };
  std::vector<Case> cases;
  {
    SmokeCheck c = HttpCheck("GET", "/", 200);
    c.expect_body_contains = "\"version\":\"v9\"";
    cases.push_back({c, "smoke_test:GET /", "the body does not contain '\"version\":\"v9\"'"});
  }
  {
    SmokeCheck c = HttpCheck("GET", "/version", 200);
    c.name = "json";
    c.expect_json = {{"slot", "green"}, {"version", "v1"}};
    cases.push_back({c, "smoke_test:json", "JSON version: expected 'v1', got 'v2'"});
  }
  {
    SmokeCheck c = HttpCheck("GET", "/version", 200);
    c.expect_json = {{"data.items[0]", "1"}};
    cases.push_back({c, "smoke_test:GET /version", "JSON data.items[0]: missing"});
  }
  {
    SmokeCheck c = HttpCheck("GET", "/live", 200);
    c.expect_json = {{"x", "1"}};
    cases.push_back({c, "smoke_test:GET /live", "the body is not JSON"});
  }
  {
    SmokeCheck c;
    c.kind = SmokeCheck::Kind::kCommand;
    c.command = "sh -c 'echo no answer from $0; exit 4' {url}";
    cases.push_back({c, "smoke_test:" + c.command,
                     "exited with code 4: no answer from http://" + router_address_});
  }
  {
    SmokeCheck c;
    c.kind = SmokeCheck::Kind::kCommand;
    c.name = "slow";
    c.command = "sleep 30";
    c.timeout = 300ms;
    cases.push_back({c, "smoke_test:slow", "timed out after 300 ms"});
  }
  for (const Case& c : cases) {
    DeploymentSpec v2 = Spec("v2");
    v2.smoke_checks = {c.check};
    state::Deployment d2 = Deploy(v2, DeploymentState::kRolledBack);
    EXPECT_NE(d2.reason.find(c.reason), std::string::npos) << d2.reason;
    std::optional<state::StepRecord> step = FindStep(d2.id, c.step);
    ASSERT_TRUE(step.has_value()) << c.step;
    EXPECT_EQ(step->outcome, state::StepOutcome::kFailed);
    nlohmann::json detail = nlohmann::json::parse(step->detail_json);
    EXPECT_NE(detail["mismatch"].get<std::string>().find(c.reason.substr(0, 20)), std::string::npos)
        << step->detail_json;
    EXPECT_FALSE(Contains(States(d2.id), DeploymentState::kSwitching));
    EXPECT_EQ(UserVersion(), "v1");
  }
  ExpectInstancesRunning(d1.id);
}

// The smoke requests as they leave the engine: sent to a recording upstream in place of the
// router address.
TEST_F(EngineTest, SmokeRequestCarriesMethodHeadersBodyAndOverrideSecret) {
  auto upstream = router::testing::TestUpstream::Start("smoke");
  ASSERT_TRUE(upstream.ok());
  (*upstream)->SetHandler([](const router::testing::ReceivedRequest&) {
    return router::testing::Behavior::Respond(201, R"({"ok":true,"items":[{"id":7}]})");
  });
  SmokeCheck check = HttpCheck("POST", "/api/items", 201);
  check.headers = {{"X-Check", "yes"}, {"Content-Type", "application/json"}};
  check.body = R"({"name":"smoke"})";
  check.expect_json = {{"items[0].id", "7"}, {"ok", "true"}};
  DeploymentSpec v1 = Spec("v1");
  v1.smoke_checks = {check};

  EngineOptions options;
  options.router_address = (*upstream)->address();
  options.override_secret = "s3cret";
  auto engine = NewEngine(options);
  ASSERT_TRUE(engine->Begin(v1).ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  std::vector<router::testing::ReceivedRequest> seen = (*upstream)->RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/items");
  EXPECT_EQ(seen[0].Header("X-Turnout-Slot"), "blue");
  EXPECT_EQ(seen[0].Header("X-Turnout-Secret"), "s3cret");
  EXPECT_EQ(seen[0].Header("X-Check"), "yes");
  EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(seen[0].body, R"({"name":"smoke"})");

  // Without a secret none is sent; a wrong status rolls back.
  (*upstream)->ClearRecorded();
  (*upstream)->SetHandler([](const router::testing::ReceivedRequest&) {
    return router::testing::Behavior::Respond(500, "{}");
  });
  options.override_secret.clear();
  auto second = NewEngine(options);
  ASSERT_TRUE(second->Begin(Spec("v2")).ok());  // the default check: GET / -> 200
  Run(*second);
  EXPECT_EQ(second->deployment().state, DeploymentState::kRolledBack);
  EXPECT_NE(second->deployment().reason.find("smoke test GET /: expected 200, got 500"),
            std::string::npos)
      << second->deployment().reason;
  seen = (*upstream)->RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("X-Turnout-Slot"), "green");
  EXPECT_FALSE(seen[0].HasHeader("X-Turnout-Secret"));
  EXPECT_EQ(UserVersion(), "v1");
}

TEST_F(EngineTest, ApprovalGateWaitsUntilApproved) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  auto engine = BeginV2UntilAwaitingApproval();
  clock_.Advance(std::chrono::hours(5));  // an approval may come hours later
  for (int i = 0; i < 3; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, DeploymentState::kAwaitingApproval);
    EXPECT_EQ(r->waiting_for, "waiting for approval: run `turnout approve`");
  }
  EXPECT_EQ(UserVersion(), "v1");
  ASSERT_TRUE(engine->Approve("alice").ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSwitching);
  EXPECT_EQ(engine->deployment().reason, "approved by alice");
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
  ExpectInstancesStopped(d1.id);
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                                    "smoke_passed", "awaiting_approval", "switched",
                                                    "succeeded"}));
  EXPECT_EQ(engine->Approve("alice").code(), StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, AbortWhileAwaitingApprovalRollsBackWithNothingSwitched) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  events_.clear();
  auto engine = BeginV2UntilAwaitingApproval();
  ASSERT_TRUE(engine->Abort("bob").ok());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRollingBack);
  EXPECT_EQ(engine->deployment().reason, "aborted by bob");
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack);
  EXPECT_EQ(engine->deployment().reason, "aborted by bob");
  EXPECT_FALSE(Contains(States(engine->deployment().id), DeploymentState::kSwitching));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
  EXPECT_EQ(EventNames(), (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                                    "smoke_passed", "awaiting_approval", "aborted",
                                                    "rolled_back"}));
  EXPECT_EQ(engine->Abort("bob").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->Approve("bob").code(), StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, ResumeWhileAwaitingApprovalKeepsWaitingOrRollsBackWhenAnInstanceDied) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2_id = BeginV2UntilAwaitingApproval()->deployment().id;  // then "crashes"
  restarted_platform_ = std::make_unique<platform::ProcessPlatform>();
  current_platform_ = restarted_platform_.get();
  {
    auto engine = NewEngine();
    auto resumed = engine->Resume(kService);
    ASSERT_TRUE(resumed.ok() && resumed->has_value());
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, DeploymentState::kAwaitingApproval);
    EXPECT_EQ(UserVersion(), "v1");
  }  // crashes again, and this time the new instance dies while no controller runs
  KillInstances(d2_id);
  ExpectRolledBackToV1(*ResumeAndRun(), "while awaiting approval");
  ExpectInstancesRunning(d1.id);
}

TEST_F(EngineTest, ResumedApprovalCanBeApproved) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  BeginV2UntilAwaitingApproval();  // and the controller "crashes"
  auto engine = NewEngine();
  auto resumed = engine->Resume(kService);
  ASSERT_TRUE(resumed.ok() && resumed->has_value());
  ASSERT_TRUE(engine->Approve("carol").ok());
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineTest, ExpediteScaleDownStopsTheOldSlotWithoutWaitingForTheDelay) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  auto engine = NewEngine();
  auto d2 = engine->Begin(Spec("v2"));
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(engine->ExpediteScaleDown("too early").code(), StatusCode::kFailedPrecondition);
  Run(*engine, DeploymentState::kScalingDown);
  auto waiting = engine->Step();
  ASSERT_TRUE(waiting.ok());
  EXPECT_NE(waiting->waiting_for.find("scale-down in 60 s"), std::string::npos);
  ExpectInstancesRunning(d1.id);
  ASSERT_TRUE(engine->ExpediteScaleDown("v3 was requested").ok());
  auto done = engine->Step();  // the clock did not move
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, DeploymentState::kSucceeded);
  EXPECT_NE(engine->deployment().reason.find("early (v3 was requested)"), std::string::npos)
      << engine->deployment().reason;
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(d2->id);
  EXPECT_EQ(UserVersion(), "v2");
}

TEST_F(EngineTest, ProbeIntervalLimitsReadinessProbesPerInstance) {
  DeploymentSpec v1 = Spec("v1", "--fail-ready");
  v1.probe_interval = 5s;
  v1.ready_deadline = 60s;
  auto engine = NewEngine();
  auto d1 = engine->Begin(v1);
  ASSERT_TRUE(d1.ok());
  Run(*engine, DeploymentState::kWaitingReady);
  WaitListening(d1->id);
  for (int i = 0; i < 4; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state, DeploymentState::kWaitingReady);
    EXPECT_NE(r->waiting_for.find("(0/1)"), std::string::npos) << r->waiting_for;
  }
  EXPECT_EQ(ReadyProbes(d1->id), 1);
  clock_.Advance(5s);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(ReadyProbes(d1->id), 2);
  ASSERT_TRUE(engine->RequestRollback("done").ok());
  Run(*engine);

  // probe_interval 0: every Step probes.
  DeploymentSpec v2 = Spec("v2", "--fail-ready");
  auto every = NewEngine();
  auto d2 = every->Begin(v2);
  ASSERT_TRUE(d2.ok());
  Run(*every, DeploymentState::kWaitingReady);
  WaitListening(d2->id);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(every->Step().ok());
  EXPECT_EQ(ReadyProbes(d2->id), 4);
}

TEST_F(EngineTest, ProbeIntervalDuringBakeCountsOnlyFreshProbesTowardsTheThreshold) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  DeploymentSpec v2 = Spec("v2");
  v2.bake_time = std::chrono::hours(1);
  v2.bake_failure_threshold = 2;
  v2.probe_interval = 10s;
  auto engine = NewEngine();
  auto d2 = engine->Begin(v2);
  ASSERT_TRUE(d2.ok());
  Run(*engine, DeploymentState::kWaitingReady);
  WaitListening(d2->id);
  Run(*engine, DeploymentState::kBaking);
  SetFault(d2->id, "fail-ready=true");
  const int before = ReadyProbes(d2->id);
  for (int i = 0; i < 5; ++i) {
    auto r = engine->Step();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->state, DeploymentState::kBaking);
  }
  EXPECT_LE(ReadyProbes(d2->id) - before, 1);
  clock_.Advance(10s);
  ASSERT_TRUE(engine->Step().ok());
  clock_.Advance(10s);
  auto r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kRollingBack);
  Run(*engine);
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesRunning(d1.id);
}

// "Crash" at each state: the engine that recorded the transition into the state is destroyed
// before it acts on it; a new engine over the same store, platform and router resumes.
class EngineCrashTest : public EngineTest, public ::testing::WithParamInterface<DeploymentState> {};

TEST_P(EngineCrashTest, ResumeAfterCrashReachesTheDocumentedOutcome) {
  const DeploymentState crash_at = GetParam();
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2_id = BeginV2AndCrashAt(crash_at);
  ASSERT_NE(d2_id, 0);

  // The restarted controller has a platform of its own that never launched anything.
  restarted_platform_ = std::make_unique<platform::ProcessPlatform>();
  current_platform_ = restarted_platform_.get();
  auto engine = NewEngine();
  auto resumed = engine->Resume(kService);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  ASSERT_TRUE(resumed->has_value());
  EXPECT_EQ((*resumed)->id, d2_id);
  Run(*engine);

  const bool pre_switch =
      crash_at == DeploymentState::kPending || crash_at == DeploymentState::kPreChecks ||
      crash_at == DeploymentState::kLaunching || crash_at == DeploymentState::kWaitingReady ||
      crash_at == DeploymentState::kSmokeTesting;
  std::vector<DeploymentState> states = States(d2_id);
  auto service = store_->GetService(kService);
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
  for (const auto& step : *steps) {
    EXPECT_NE(step.outcome, state::StepOutcome::kRunning) << step.step << " left running";
  }
  // The resume is on record once, as a step and an audit entry saying what it found and
  // decided; the state record the first engine was running ends interrupted.
  int resume_steps = 0;
  for (const auto& step : *steps) {
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
  auto again = NewEngine()->Resume(kService);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "no deployment may stay active after the resume";
}

// A controller that was down for part of the bake: the bake record of the dead one ends
// interrupted when it was last alive, the resume says so, and the time nobody watched does not
// count as bake time.
TEST_F(EngineTest, ResumedBakeDoesNotCountTheTimeTheControllerWasDown) {
  Deploy(Spec("v1"), DeploymentState::kSucceeded);
  // The bake (30 s) ran 5 s, watched; then nobody watched for 20 s.
  const int64_t d2_id = BeginV2AndCrashAt(DeploymentState::kBaking);
  clock_.Advance(5s);
  const state::WallTime last_alive = clock_.WallNow();
  clock_.Advance(20s);
  RestartFacts facts;
  facts.last_alive = last_alive;
  facts.previous_end = "crash";
  auto engine = NewEngine();
  auto resumed = engine->Resume(kService, facts);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  ASSERT_TRUE(resumed->has_value());
  EXPECT_NE(engine->resume_summary().find("down 20 s"), std::string::npos)
      << engine->resume_summary();
  EXPECT_NE(engine->resume_summary().find("resume the bake with 25 s left"), std::string::npos)
      << engine->resume_summary();
  auto r = engine->Step();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, DeploymentState::kBaking);
  EXPECT_NE(r->waiting_for.find("25 s left"), std::string::npos) << r->waiting_for;

  auto steps = store_->Steps(d2_id);
  ASSERT_TRUE(steps.ok());
  std::vector<std::string> bake_outcomes;
  for (const auto& step : *steps) {
    if (step.step != "state:baking") continue;
    bake_outcomes.push_back(std::string(state::StepOutcomeName(step.outcome)));
    if (step.outcome == state::StepOutcome::kInterrupted) {
      ASSERT_TRUE(step.finished_at.has_value());
      EXPECT_EQ(*step.finished_at, last_alive);  // not when the next engine found it
    }
  }
  EXPECT_EQ(bake_outcomes, (std::vector<std::string>{"interrupted", "running"}));
  auto resume = FindStep(d2_id, "resume");
  ASSERT_TRUE(resume.has_value());
  auto detail = nlohmann::json::parse(resume->detail_json);
  EXPECT_EQ(detail.value("down_ms", int64_t{0}), 20000);
  EXPECT_EQ(detail.value("unwatched_ms", int64_t{0}), 20000);
  EXPECT_EQ(detail.value("previous_end", ""), "crash");
  EXPECT_EQ(detail["new_instances"].value("running", 0), 1);
  std::vector<state::AuditEntry> audit = AuditSince(0, "deployment.resume");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(audit[0].detail_json).value("decided", ""),
            detail.value("decided", ""));
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);
}

INSTANTIATE_TEST_SUITE_P(AllStates, EngineCrashTest,
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

// A crash after the rollback began (during bake, after the switch back was recorded): the new
// engine finishes the rollback.
TEST_F(EngineTest, CrashDuringRollingBackIsFinishedByTheNextEngine) {
  state::Deployment d1 = Deploy(Spec("v1"), DeploymentState::kSucceeded);
  const int64_t d2_id = BeginV2AndCrashAt(DeploymentState::kBaking);
  // Record the rollback as the first engine would have, just before its crash.
  ASSERT_TRUE(store_
                  ->RecordTransition(d2_id, DeploymentState::kBaking, DeploymentState::kRollingBack,
                                     "bake failed")
                  .ok());
  EXPECT_EQ(UserVersion(), "v2");
  ExpectRolledBackToV1(*ResumeAndRun(), "bake failed");
  ExpectInstancesStopped(d2_id);
  ExpectInstancesRunning(d1.id);
  States(d2_id);
}

}  // namespace
}  // namespace turnout::controller
