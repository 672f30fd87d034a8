// The canary and rolling strategies, the gates (pause, resume, promote) and the analysis hook,
// over the same
// real parts as controller_engine_test: a SqliteStateStore, turnout-demo-app processes and an
// in-process Router. The analysis hook is scripted by each test (the daemon plugs the judge and
// the rules in there); the engine's clock is a ManualClock.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/engine.h"
#include "controller/engine_test_fixture.h"
#include "controller/http_probe.h"
#include "router/testing/raw_client.h"

namespace turnout::controller {
namespace {

class CanaryTest : public EngineTest {
 protected:
  // v2 as a canary: 5 % for 60 s, 25 % for 60 s, then 100 %.
  DeploymentSpec CanarySpec(const std::string& version) {
    DeploymentSpec s = Spec(version);
    s.strategy = "canary";
    s.canary_steps = {CanaryStep{500, 60s}, CanaryStep{2500, 60s}};
    s.analysis_interval = 1s;
    return s;
  }

  // An engine whose analysis hook records every request and answers with judge_ (continue when
  // unset).
  std::unique_ptr<Engine> CanaryEngine() {
    EngineOptions o;
    o.router_address = router_address_;
    o.override_secret = kOverrideSecret;
    o.analyze = [this](const AnalysisRequest& r) {
      AnalysisRequest copy = r;
      copy.deployment = nullptr;  // valid during the call only
      requests_.push_back(copy);
      return judge_ ? judge_(r) : AnalysisVerdict{};
    };
    return NewEngine(std::move(o));
  }

  // v1 deployed, then v2 begun as a canary and driven into Canary with step 0's weight applied.
  std::unique_ptr<Engine> V2InCanary(state::Deployment* d1 = nullptr,
                                     DeploymentSpec spec = DeploymentSpec{}) {
    state::Deployment first = Deploy(Spec("v1"), DeploymentState::kSucceeded);
    if (d1) *d1 = first;
    if (spec.service.empty()) spec = CanarySpec("v2");
    auto engine = CanaryEngine();
    auto d2 = engine->Begin(spec);
    EXPECT_TRUE(d2.ok()) << d2.status().ToString();
    Run(*engine, DeploymentState::kCanary);
    EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
    StepOk(*engine);
    return engine;
  }

  // A restarted controller: a platform of its own that knows the instances only through Adopt,
  // and a new engine that resumed the service's deployment.
  std::unique_ptr<Engine> RestartAndResume() {
    restarted_platform_ = std::make_unique<platform::ProcessPlatform>();
    current_platform_ = restarted_platform_.get();
    auto engine = CanaryEngine();
    auto resumed = engine->Resume(kService);
    EXPECT_TRUE(resumed.ok()) << resumed.status().ToString();
    EXPECT_TRUE(resumed.ok() && resumed->has_value());
    return engine;
  }

  StepReport StepOk(Engine& engine) {
    auto r = engine.Step();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : StepReport{};
  }

  // The new slot's canary weight in the router (0 when there is no canary).
  uint32_t CanaryWeight() {
    auto p = router_->GetPolicy();
    EXPECT_TRUE(p.ok());
    if (!p.ok() || !p->canary) return 0;
    EXPECT_EQ(p->canary->slot, "green");
    return p->canary->weight_bp;
  }

  // The version a client with this sticky key gets through the router.
  std::string VersionFor(const std::string& client) {
    ProbeRequest req;
    req.address = router_address_;
    req.headers = {{"Cookie", "turnout_sticky=" + client}};
    auto r = HttpProbe(req);
    if (!r.ok() || r->status != 200) return "";
    return r->Header("X-Version");
  }

  std::vector<std::string> StepNames(int64_t deployment_id) {
    return testing::StepRecordNames(*store_, deployment_id);
  }

  const EngineEvent* LastEvent(const std::string& name) const {
    return testing::LastEventNamed(events_, name);
  }

  size_t CountEvents(const std::string& name) const {
    return testing::CountEventsNamed(events_, name);
  }

  std::function<AnalysisVerdict(const AnalysisRequest&)> judge_;
  std::vector<AnalysisRequest> requests_;
};

using testing::Verdict;

TEST_F(CanaryTest, StepsAdvanceByTimeAndTheRouterWeightFollows) {
  state::Deployment d1;
  auto engine = V2InCanary(&d1);
  const int64_t id = engine->deployment().id;
  // Undecided verdicts with evidence: a step that passes by time carries the last one.
  judge_ = [](const AnalysisRequest& r) {
    return Verdict(
        AnalysisVerdict::Kind::kContinue, "",
        R"({"step":)" + std::to_string(r.step) + R"(,"elapsed_s":)" +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(r.step_elapsed).count()) +
            "}");
  };
  EXPECT_EQ(engine->deployment().strategy, "canary");
  EXPECT_EQ(CanaryWeight(), 500u);
  StepReport r = StepOk(*engine);
  EXPECT_NE(r.waiting_for.find("canary step 1/2 (5 %)"), std::string::npos) << r.waiting_for;
  EXPECT_NE(r.waiting_for.find("60 s left"), std::string::npos) << r.waiting_for;

  clock_.Advance(59s);
  StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 500u) << "the step lasts its full minute";
  clock_.Advance(1s);
  StepOk(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
  EXPECT_EQ(CanaryWeight(), 2500u);
  const EngineEvent* passed = LastEvent("canary_step_passed");
  ASSERT_NE(passed, nullptr);
  EXPECT_NE(passed->detail.find("canary step 1/2 (5 %) passed after 60 s; now canary step 2/2"),
            std::string::npos)
      << passed->detail;
  EXPECT_EQ(nlohmann::json::parse(passed->evidence_json),
            nlohmann::json::parse(R"({"step":0,"elapsed_s":60})"));
  EXPECT_TRUE(FindStep(id, "analysis:canary:0") == std::nullopt) << "continue is not recorded";
  auto step0 = FindStep(id, "canary_step:0");
  ASSERT_TRUE(step0.has_value());
  EXPECT_EQ(step0->outcome, state::StepOutcome::kOk);
  nlohmann::json step0_detail = nlohmann::json::parse(step0->detail_json);
  EXPECT_EQ(step0_detail["weight_bp"], 500);
  EXPECT_EQ(step0_detail["elapsed_ms"], 60000);
  EXPECT_EQ(step0_detail["evidence"]["elapsed_s"], 60);

  // At 25 % sticky clients are split, and each one stays on its side.
  int on_v2 = 0;
  for (int c = 0; c < 40; ++c) {
    const std::string client = "client-" + std::to_string(c);
    const std::string version = VersionFor(client);
    ASSERT_TRUE(version == "v1" || version == "v2") << version;
    EXPECT_EQ(VersionFor(client), version) << "client " << client << " changed sides";
    if (version == "v2") ++on_v2;
  }
  EXPECT_GT(on_v2, 0);
  EXPECT_LT(on_v2, 40);

  clock_.Advance(60s);
  StepOk(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSwitching);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(CanaryWeight(), 0u);
  EXPECT_EQ(UserVersion(), "v2");
  EXPECT_EQ(VersionFor("client-0"), "v2");

  EXPECT_EQ(
      States(id),
      (std::vector<DeploymentState>{
          DeploymentState::kPreChecks, DeploymentState::kLaunching, DeploymentState::kWaitingReady,
          DeploymentState::kSmokeTesting, DeploymentState::kCanary, DeploymentState::kSwitching,
          DeploymentState::kBaking, DeploymentState::kScalingDown, DeploymentState::kSucceeded}));
  // Events of the second deployment, in order.
  std::vector<std::string> names = EventNames();
  names.erase(names.begin(), std::find(names.rbegin(), names.rend(), "deploy_started").base() - 1);
  EXPECT_EQ(names, (std::vector<std::string>{"deploy_started", "pre_checks_passed", "ready",
                                             "smoke_passed", "canary_step_passed",
                                             "canary_step_passed", "switched", "succeeded"}));

  // The hook was asked in every step and in the bake, with the step's facts.
  ASSERT_FALSE(requests_.empty());
  EXPECT_EQ(requests_.front().phase, "canary");
  EXPECT_EQ(requests_.front().step, 0);
  EXPECT_EQ(requests_.front().weight_bp, 500u);
  EXPECT_EQ(requests_.front().stable_slot, "blue");
  EXPECT_EQ(requests_.front().new_slot, "green");
  EXPECT_EQ(requests_.front().step_duration, Clock::Duration(60s));
  bool saw_step1 = false, saw_bake = false;
  for (const auto& q : requests_) {
    EXPECT_LE(q.step_elapsed, q.step_duration);
    if (q.phase == "canary" && q.step == 1) {
      saw_step1 = true;
      EXPECT_EQ(q.weight_bp, 2500u);
    }
    if (q.phase == "bake") {
      saw_bake = true;
      EXPECT_EQ(q.step, -1);
      EXPECT_EQ(q.weight_bp, 10000u);
      EXPECT_EQ(q.step_duration, Clock::Duration(30s));
    }
  }
  EXPECT_TRUE(saw_step1);
  EXPECT_TRUE(saw_bake);
}

TEST_F(CanaryTest, AnalysisRollbackAtStepOneSwitchesBackWithReasonAndEvidence) {
  state::Deployment d1;
  auto engine = V2InCanary(&d1);
  const int64_t id = engine->deployment().id;
  judge_ = [](const AnalysisRequest& r) {
    if (r.step != 1) return AnalysisVerdict{};
    return Verdict(AnalysisVerdict::Kind::kRollback, "error_rate 9.8% > 5% for 2m (1,234 requests)",
                   R"({"canary":{"requests":1234,"errors":121},"p_value":0.001})");
  };
  clock_.Advance(60s);
  StepOk(*engine);
  ASSERT_EQ(CanaryWeight(), 2500u);
  clock_.Advance(1s);
  StepReport r = StepOk(*engine);
  EXPECT_EQ(r.state, DeploymentState::kRollingBack);
  Run(*engine);
  ExpectRolledBackToV1(*engine, "error_rate 9.8% > 5% for 2m");
  EXPECT_NE(engine->deployment().reason.find("canary step 2/2 (25 %)"), std::string::npos)
      << engine->deployment().reason;
  EXPECT_EQ(CanaryWeight(), 0u);
  EXPECT_EQ(VersionFor("client-7"), "v1");

  auto step = FindStep(id, "analysis:canary:1");
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(step->outcome, state::StepOutcome::kFailed);
  nlohmann::json detail = nlohmann::json::parse(step->detail_json);
  EXPECT_EQ(detail["verdict"], "rollback");
  EXPECT_EQ(detail["evidence"]["canary"]["errors"], 121);
  EXPECT_EQ(detail["weight_bp"], 2500);
  EXPECT_FALSE(FindStep(id, "analysis:canary:0").has_value()) << "continue is not recorded";
  auto step1 = FindStep(id, "canary_step:1");
  ASSERT_TRUE(step1.has_value());
  EXPECT_EQ(step1->outcome, state::StepOutcome::kFailed);
  EXPECT_NE(
      nlohmann::json::parse(step1->detail_json)["ended"].get<std::string>().find("error_rate 9.8%"),
      std::string::npos);

  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
  EXPECT_EQ(service->active_revision, d1.revision);
  ExpectInstancesStopped(id);
  ExpectInstancesRunning(d1.id);
  EXPECT_FALSE(Contains(States(id), DeploymentState::kSwitching));
  EXPECT_EQ(EventNames().back(), "rolled_back");
}

TEST_F(CanaryTest, ResumeMidCanaryKeepsTheStepTheTimeLeftThePauseAndRestoresTheWeight) {
  state::Deployment d1;
  int64_t id = 0;
  {
    auto engine = V2InCanary(&d1);
    id = engine->deployment().id;
    clock_.Advance(60s);
    StepOk(*engine);
    ASSERT_EQ(CanaryWeight(), 2500u);
    clock_.Advance(20s);
    StepOk(*engine);
    ASSERT_TRUE(engine->Pause("alice").ok());
    clock_.Advance(5s);
  }  // the controller "crashes"
  // Meanwhile the router lost the canary (a restarted embedded router with an older policy).
  ASSERT_TRUE(router_->Switch("blue").ok());
  ASSERT_EQ(CanaryWeight(), 0u);
  clock_.Advance(10min);

  auto engine = RestartAndResume();
  ASSERT_TRUE(engine->has_deployment());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kCanary);
  EXPECT_TRUE(engine->paused()) << "a restart stays paused";
  StepReport r = StepOk(*engine);
  EXPECT_EQ(CanaryWeight(), 2500u) << "the recorded step's weight is applied again";
  EXPECT_NE(r.waiting_for.find("canary step 2/2"), std::string::npos) << r.waiting_for;
  EXPECT_NE(r.waiting_for.find("paused by alice"), std::string::npos) << r.waiting_for;
  EXPECT_NE(r.waiting_for.find("40 s left"), std::string::npos) << r.waiting_for;
  ASSERT_FALSE(requests_.empty());
  EXPECT_EQ(requests_.back().step, 1);
  EXPECT_EQ(requests_.back().step_elapsed, Clock::Duration(20s));

  ASSERT_TRUE(engine->Unpause("alice").ok());
  clock_.Advance(39s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kCanary);
  clock_.Advance(1s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kSwitching);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(UserVersion(), "v2");
  std::vector<DeploymentState> states = States(id);
  EXPECT_EQ(std::count(states.begin(), states.end(), DeploymentState::kCanary), 1);
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(id);
  auto steps = store_->Steps(id);
  ASSERT_TRUE(steps.ok());
  for (const auto& step : *steps) {
    EXPECT_NE(step.outcome, state::StepOutcome::kRunning) << step.step << " left running";
  }
  EXPECT_TRUE(FindStep(id, "canary_step:1").has_value());
}

TEST_F(CanaryTest, ResumeWhilePausedInBakeStaysPausedWithTheBakeTimeLeft) {
  auto first = V2InCanary();
  ASSERT_TRUE(first->Promote(true, "bob").ok());
  Run(*first, DeploymentState::kBaking);
  StepOk(*first);
  clock_.Advance(10s);
  ASSERT_TRUE(first->Pause("carol").ok());
  clock_.Advance(1h);
  ASSERT_TRUE(first->Unpause("carol").ok());
  clock_.Advance(5s);
  ASSERT_TRUE(first->Pause("carol").ok());
  EXPECT_EQ(CountEvents("paused"), 2u);
  EXPECT_EQ(CountEvents("resumed"), 1u);
  first.reset();
  clock_.Advance(1h);

  auto engine = CanaryEngine();
  ASSERT_TRUE(engine->Resume(kService).ok());
  EXPECT_TRUE(engine->paused());
  StepReport r = StepOk(*engine);
  EXPECT_EQ(r.state, DeploymentState::kBaking);
  EXPECT_NE(r.waiting_for.find("15 s left"), std::string::npos) << r.waiting_for;
  ASSERT_TRUE(engine->Unpause("carol").ok());
  clock_.Advance(14s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kBaking);
  clock_.Advance(1s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kScalingDown);
  EXPECT_FALSE(engine->paused());
}

TEST_F(CanaryTest, APausedCanaryPromotedToAllTrafficBakesPaused) {
  auto engine = V2InCanary();
  ASSERT_TRUE(engine->Pause("frank").ok());
  ASSERT_TRUE(engine->Promote(true, "frank").ok());
  Run(*engine, DeploymentState::kBaking);
  clock_.Advance(1h);
  StepReport r = StepOk(*engine);
  EXPECT_EQ(r.state, DeploymentState::kBaking) << "the bake timer waits for the resume";
  EXPECT_NE(r.waiting_for.find("paused by frank"), std::string::npos) << r.waiting_for;
  ASSERT_TRUE(engine->Unpause("frank").ok());
  clock_.Advance(30s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kScalingDown);
}

TEST_F(CanaryTest, EmergencyRollbackInCanaryClearsTheCanaryInsideTheCall) {
  state::Deployment d1;
  auto engine = V2InCanary(&d1);
  ASSERT_EQ(CanaryWeight(), 500u);
  ASSERT_TRUE(engine->RequestRollback("operator said so").ok());
  EXPECT_EQ(CanaryWeight(), 0u);
  for (int c = 0; c < 20; ++c) EXPECT_EQ(VersionFor("client-" + std::to_string(c)), "v1");
  Run(*engine);
  ExpectRolledBackToV1(*engine, "operator said so");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);
}

// ---- Rolling ------------------------------------------------------------------------------

class RollingTest : public CanaryTest {
 protected:
  DeploymentSpec RollingSpec(const std::string& version, int replicas) {
    DeploymentSpec s = Spec(version);
    s.strategy = "rolling";
    s.replicas = replicas;
    return s;
  }

  // The versions of the running instances the router has in blue, by asking each one.
  std::vector<std::string> BlueVersions() {
    std::vector<std::string> out;
    auto status = router_->GetSlotStatus("blue");
    EXPECT_TRUE(status.ok());
    if (!status.ok()) return out;
    for (const auto& i : status->instances) {
      ProbeRequest req;
      req.address = i.address;
      auto r = HttpProbe(req);
      out.push_back(r.ok() ? r->Header("X-Version") : "down");
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Steps `engine` until it leaves `state`, checking after every Step that the slot never has
  // fewer than `at_least` answering instances nor more than one extra.
  void StepThrough(Engine& engine, DeploymentState state, size_t at_least) {
    for (int n = 0; n < 200 && engine.deployment().state == state; ++n) {
      StepOk(engine);
      std::vector<std::string> versions = BlueVersions();
      EXPECT_GE(versions.size(), at_least);
      EXPECT_LE(versions.size(), at_least + 1);
      EXPECT_EQ(std::count(versions.begin(), versions.end(), "down"), 0);
    }
    EXPECT_NE(engine.deployment().state, state) << "stuck";
  }
};

TEST_F(RollingTest, ReplacesInstancesOneAtATimeUnderLoadWithoutLosingARequest) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  ASSERT_EQ(BlueVersions(), (std::vector<std::string>{"v1", "v1"}));
  auto load = StartLoad();

  auto engine = CanaryEngine();
  auto d2 = engine->Begin(RollingSpec("v2", 2));
  ASSERT_TRUE(d2.ok()) << d2.status().ToString();
  EXPECT_EQ(d2->target_slot, "blue") << "in place";
  EXPECT_EQ(d2->strategy, "rolling");
  Run(*engine, DeploymentState::kRolling);
  ASSERT_EQ(engine->deployment().state, DeploymentState::kRolling);
  StepThrough(*engine, DeploymentState::kRolling, 2);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kBaking) << engine->deployment().reason;
  EXPECT_EQ(BlueVersions(), (std::vector<std::string>{"v2", "v2"}));
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded);

  router::testing::LoadResult result = StopLoad(*load);
  std::printf("rolling update under load: %s\n", result.Summary().c_str());
  EXPECT_EQ(result.failures(), 0u) << result.Summary();
  EXPECT_GT(result.by_upstream["v1"], 0u);
  EXPECT_GT(result.by_upstream["v2"], 0u);
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(d2->id);
  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
  EXPECT_EQ(service->active_revision, d2->revision);
  bool rolling_asked = false;
  for (const auto& q : requests_) rolling_asked |= q.phase == "rolling";
  EXPECT_TRUE(rolling_asked) << "the analysis is consulted during the update";
  EXPECT_EQ(States(d2->id),
            (std::vector<DeploymentState>{DeploymentState::kPreChecks, DeploymentState::kRolling,
                                          DeploymentState::kBaking, DeploymentState::kScalingDown,
                                          DeploymentState::kSucceeded}));
}

TEST_F(RollingTest, AnalysisRollbackHalfwayRelaunchesTheReplacedOldInstances) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  auto engine = CanaryEngine();
  ASSERT_TRUE(engine->Begin(RollingSpec("v2", 2)).ok());
  Run(*engine, DeploymentState::kRolling);
  // Until the first old instance was replaced.
  for (int n = 0; n < 100 && BlueVersions() != std::vector<std::string>{"v1", "v2"}; ++n) {
    StepOk(*engine);
  }
  ASSERT_EQ(BlueVersions(), (std::vector<std::string>{"v1", "v2"}));
  ASSERT_EQ(engine->deployment().state, DeploymentState::kRolling);
  judge_ = [](const AnalysisRequest& r) {
    return Verdict(AnalysisVerdict::Kind::kRollback, "error_rate 12% > 5% for 10s",
                   R"({"phase":")" + r.phase + R"("})");
  };
  clock_.Advance(1s);
  EXPECT_EQ(StepOk(*engine).state, DeploymentState::kRollingBack);
  StepThrough(*engine, DeploymentState::kRollingBack, 2);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolledBack)
      << engine->deployment().reason;
  EXPECT_NE(engine->deployment().reason.find("analysis during the rolling update: error_rate"),
            std::string::npos)
      << engine->deployment().reason;
  EXPECT_EQ(BlueVersions(), (std::vector<std::string>{"v1", "v1"}));
  EXPECT_EQ(UserVersion(), "v1");
  ExpectInstancesStopped(engine->deployment().id);
  ExpectInstancesRunning(d1.id);  // the relaunched one has taken over its row
  auto step = FindStep(engine->deployment().id, "analysis:rolling:1");
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(nlohmann::json::parse(step->detail_json)["evidence"]["phase"], "rolling");
  auto service = store_->GetService(kService);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_revision, d1.revision);
}

TEST_F(RollingTest, ResumeMidUpdateContinuesWhereItStopped) {
  DeploymentSpec v1 = Spec("v1");
  v1.replicas = 2;
  state::Deployment d1 = Deploy(v1, DeploymentState::kSucceeded);
  int64_t id = 0;
  {
    auto engine = CanaryEngine();
    auto d2 = engine->Begin(RollingSpec("v2", 2));
    ASSERT_TRUE(d2.ok());
    id = d2->id;
    Run(*engine, DeploymentState::kRolling);
    for (int n = 0; n < 100 && BlueVersions() != std::vector<std::string>{"v1", "v2"}; ++n) {
      StepOk(*engine);
    }
    ASSERT_EQ(BlueVersions(), (std::vector<std::string>{"v1", "v2"}));
  }  // the controller "crashes" halfway
  auto engine = RestartAndResume();
  ASSERT_TRUE(engine->has_deployment());
  EXPECT_EQ(engine->deployment().state, DeploymentState::kRolling);
  StepThrough(*engine, DeploymentState::kRolling, 2);
  Run(*engine);
  EXPECT_EQ(engine->deployment().state, DeploymentState::kSucceeded) << engine->deployment().reason;
  EXPECT_EQ(BlueVersions(), (std::vector<std::string>{"v2", "v2"}));
  ExpectInstancesStopped(d1.id);
  ExpectInstancesRunning(id);
  std::vector<DeploymentState> states = States(id);
  EXPECT_EQ(std::count(states.begin(), states.end(), DeploymentState::kRolling), 1);
}

}  // namespace
}  // namespace turnout::controller
