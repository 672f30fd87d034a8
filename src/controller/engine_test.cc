// The deployment engine over real parts: a SqliteStateStore in a temp dir, a ProcessPlatform
// running turnout-demo-app, and an in-process Router on 127.0.0.1:0. The engine's clock is a
// ManualClock (deadlines, bake, scale-down delay); the processes and sockets run in real time, and
// every wait for them is bounded (the engine's own probe_wait). These are the integration tests
// of what only real parts show (traffic under load, real logs, ports, drains, smoke requests as
// sent, crash-resume with real processes); the state machine's rules are tested on doubles in
// engine_state_test.cc.

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

// The router checks an instance it did not have at once (router/health.h), so its verdict on a
// new slot comes within milliseconds; the smoke tests looked once, then waited a whole
// probe_wait (20 ms in turnoutd) before looking again, a poll interval added to every
// deployment. With probe_wait 3 s, the smoke tests must not take seconds.
TEST_F(EngineTest, SmokeTestsDoNotWaitAWholeProbeWaitForTheRoutersFirstCheck) {
  router::RouterConfig rc = RouterConfigForTests();
  rc.health.enabled = true;
  rc.health.interval = 10s;  // only the check of a new instance can decide within the test
  rc.health.rise = 1;
  StartRouter(rc);

  EngineOptions o;
  o.router_address = router_address_;
  o.override_secret = kOverrideSecret;
  o.probe_wait = 3s;
  auto engine = NewEngine(std::move(o));
  ASSERT_TRUE(engine->Begin(Spec("v1")).ok());
  Run(*engine, DeploymentState::kSmokeTesting);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kSmokeTesting);
  const auto t0 = std::chrono::steady_clock::now();
  Run(*engine, DeploymentState::kBaking);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(engine->deployment().state, DeploymentState::kBaking);
  EXPECT_LT(took, 1s) << "smoke tests and switch took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms: a whole probe_wait for the router's first check";
  EXPECT_EQ(UserVersion(), "v1");
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
  v2.command = std::string(TURNOUT_DEMO_APP_BINARY) +
               " --listen 127.0.0.1:" + std::to_string(held.port()) +
               " --version {version} --slot {slot}";
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
