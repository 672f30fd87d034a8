// The fixture of the engine's integration tests: a SqliteStateStore in a temp dir, a
// ProcessPlatform running turnout-demo-app, an in-process Router on 127.0.0.1:0 with slots blue
// and green, and the real probe and command mechanisms (HttpProber, LocalCommandRunner). The
// engine's time is a ManualClock (deadlines, canary steps, bake, scale-down delay); the
// processes and sockets run in real time, so the engine's pauses between polls (Clock::SleepFor)
// really wait, and every wait for them is bounded (the engine's own probe_wait). The
// state-machine tests run on doubles instead (engine_state_test.cc). Included by one test file
// per binary.

#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controller/engine.h"
#include "controller/http_probe.h"
#include "controller/testing/engine_test_util.h"
#include "platform/process_platform.h"
#include "router/router.h"
#include "router/testing/raw_client.h"
#include "state/sqlite_state_store.h"

namespace turnout::controller {

using namespace std::chrono_literals;
using state::DeploymentState;

inline SmokeCheck HttpCheck(std::string method, std::string path, int status) {
  SmokeCheck c;
  c.method = std::move(method);
  c.path = std::move(path);
  c.expected_status = status;
  return c;
}

// The engine's clock here: the test's ManualClock for the time, real pauses for SleepFor (the
// processes and the router it waits for run in real time).
class ManualTimeRealPauses final : public Clock {
 public:
  explicit ManualTimeRealPauses(const ManualClock& time) : time_(time) {}
  TimePoint Now() const override { return time_.Now(); }
  WallTime WallNow() const override { return time_.WallNow(); }
  void SleepFor(Duration d) const override { SystemClock::Get().SleepFor(d); }

 private:
  const ManualClock& time_;
};

inline constexpr char kService[] = "demo";
// The router's override secret: smoke checks reach the new slot only with it.
inline constexpr char kOverrideSecret[] = "engine-test-override-secret";

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "/controller_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    state::SqliteStateStoreOptions so;
    so.path = dir_ + "/state.db";
    so.clock = &clock_;
    auto store = state::SqliteStateStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);

    router::RouterConfig rc = RouterConfigForTests();
    rc.health.enabled = false;
    StartRouter(rc);
  }

  // The router of these tests: slots blue (active) and green, one worker, no admin API, the
  // override secret.
  static router::RouterConfig RouterConfigForTests() {
    router::RouterConfig rc;
    rc.listen = {"127.0.0.1:0"};
    rc.workers = 1;
    rc.admin.clear();
    rc.slots = {router::SlotConfig{"blue", {}}, router::SlotConfig{"green", {}}};
    rc.policy.active = "blue";
    rc.policy.override_header.secret = kOverrideSecret;
    return rc;
  }
  // Starts (or replaces) router_ with `rc`.
  void StartRouter(const router::RouterConfig& rc) {
    if (router_) router_->Stop();
    auto router = router::Router::Create(rc);
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::move(*router);
    ASSERT_TRUE(router_->Start().ok());
    router_address_ = router_->ListenAddresses().front();
  }

  void TearDown() override {
    // Stop every instance the tests launched (all are recorded with their handles).
    if (store_) KillInstances(0);
    if (router_) router_->Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  DeploymentSpec Spec(const std::string& version, const std::string& flags = "") {
    DeploymentSpec s;
    s.service = kService;
    s.version = version;
    s.command = std::string(TURNOUT_DEMO_APP_BINARY) +
                " --listen 127.0.0.1:{port} --version {version} --slot {slot} " + flags;
    s.grace = 2s;
    s.log_dir = dir_;
    s.ready_deadline = 10s;
    s.smoke_checks = {HttpCheck("GET", "/", 200)};
    s.bake_time = 30s;
    s.scale_down_delay = 60s;
    s.started_by = "engine_test";
    return s;
  }

  std::unique_ptr<Engine> NewEngine() {
    EngineOptions o;
    o.router_address = router_address_;
    o.override_secret = kOverrideSecret;
    return NewEngine(std::move(o));
  }
  // Every engine records its events in events_.
  std::unique_ptr<Engine> NewEngine(EngineOptions o) {
    o.on_event = [this](const EngineEvent& e) { events_.push_back(e); };
    return std::make_unique<Engine>(*store_, *current_platform_, *router_, prober_, commands_,
                                    engine_clock_, o);
  }

  std::vector<std::string> EventNames() const {
    std::vector<std::string> names;
    for (const auto& e : events_) names.push_back(e.name);
    return names;
  }

  // Begins v2 with manual approval and drives it until it awaits the approval.
  std::unique_ptr<Engine> BeginV2UntilAwaitingApproval() {
    DeploymentSpec v2 = Spec("v2");
    v2.manual_approval = true;
    auto engine = NewEngine();
    EXPECT_TRUE(engine->Begin(v2).ok());
    Run(*engine, DeploymentState::kAwaitingApproval);
    EXPECT_EQ(engine->deployment().state, DeploymentState::kAwaitingApproval);
    return engine;
  }

  // A new engine (a restarted controller) resumes the service's deployment and drives it to the
  // end.
  std::unique_ptr<Engine> ResumeAndRun() {
    auto engine = NewEngine();
    auto resumed = engine->Resume(kService);
    EXPECT_TRUE(resumed.ok() && resumed->has_value());
    Run(*engine);
    return engine;
  }

  // The deployment rolled back for a reason containing `why`, and users get v1 again.
  void ExpectRolledBackToV1(const Engine& engine, std::string_view why) {
    EXPECT_EQ(engine.deployment().state, DeploymentState::kRolledBack);
    EXPECT_NE(engine.deployment().reason.find(why), std::string::npos)
        << engine.deployment().reason;
    EXPECT_EQ(UserVersion(), "v1");
  }

  // The step record named `name` of the deployment (nullopt when there is none).
  std::optional<state::StepRecord> FindStep(int64_t deployment_id, const std::string& name) {
    return testing::FindStepRecord(*store_, deployment_id, name);
  }

  // How many readiness probes the deployment's instance `index` has answered (the demo app's
  // own count).
  int ReadyProbes(int64_t deployment_id, int index = 0) {
    for (const auto& i : Recorded(deployment_id)) {
      if (i.record.instance_index != index) continue;
      ProbeRequest req;
      req.address = "127.0.0.1:" + std::to_string(i.record.port);
      req.path = "/health";
      auto r = HttpProbe(req);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return -1;
      return nlohmann::json::parse(r->body)["ready_probes"].get<int>();
    }
    ADD_FAILURE() << "no instance " << index;
    return -1;
  }

  // Waits (real time, at most 10 s) until every launched instance of the deployment answers
  // /health: with a probe_interval, a readiness probe sent before the instance listens would
  // delay the next one by the interval of a clock that only the test moves.
  void WaitListening(int64_t deployment_id) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (const auto& i : Recorded(deployment_id)) {
      ProbeRequest req;
      req.address = "127.0.0.1:" + std::to_string(i.record.port);
      req.path = "/health";
      while (true) {
        auto r = HttpProbe(req);
        if (r.ok()) break;  // any answer: it listens
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << req.address << " never listened";
        // Bounded wait for the process: returns at once when it exits.
        (void)current_platform_->Wait(i.handle, 50ms);
      }
    }
  }

  // Steps until the deployment finishes or enters `stop_at`. The clock moves only where the
  // engine waits for it (canary steps, bake, scale-down delay); readiness waits on the real
  // processes. Bounded by 400 steps (each blocks at most probe_wait + probe timeouts).
  StepReport Run(Engine& engine, std::optional<DeploymentState> stop_at = std::nullopt) {
    return testing::RunEngine(engine, clock_, stop_at);
  }

  state::Deployment Deploy(const DeploymentSpec& spec, DeploymentState expected) {
    auto engine = NewEngine();
    auto d = engine->Begin(spec);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    if (!d.ok()) return {};
    Run(*engine);
    EXPECT_EQ(engine->deployment().state, expected) << engine->deployment().reason;
    return engine->deployment();
  }

  // Bounded load through the router (4 connections, at most 20000 requests or 30 s), counted by
  // the X-Version of the answers; started once the first 100 requests went through.
  std::unique_ptr<router::testing::LoadRunner> StartLoad() {
    router::testing::LoadOptions load_options;
    load_options.address = router_address_;
    load_options.connections = 4;
    load_options.max_requests = 20000;
    load_options.max_duration = 30s;  // an upper bound; the test stops it when done
    load_options.upstream_header = "X-Version";
    auto load = std::make_unique<router::testing::LoadRunner>(load_options);
    load->Start();
    EXPECT_TRUE(load->WaitForCompleted(100, 10s)) << "load did not start";
    return load;
  }

  // Stops the load after 100 more requests and returns what it saw.
  router::testing::LoadResult StopLoad(router::testing::LoadRunner& load) {
    const uint64_t at_finish = load.completed();
    EXPECT_TRUE(load.WaitForCompleted(at_finish + 100, 10s)) << "no requests after the deploy";
    load.Stop();
    return load.Wait();
  }

  // The version users get through the router ("" when the request fails).
  std::string UserVersion() {
    ProbeRequest req;
    req.address = router_address_;
    auto r = HttpProbe(req);
    if (!r.ok() || r->status != 200) return "";
    return r->Header("X-Version");
  }

  std::vector<DeploymentState> States(int64_t deployment_id) {
    return testing::TransitionStates(*store_, deployment_id);
  }

  static bool Contains(const std::vector<DeploymentState>& v, DeploymentState s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  using RecordedInstance = testing::RecordedInstance;
  // The instance rows (of every service when `deployment_id` is 0) with their persisted handles;
  // rows without a handle (never launched) are left out.
  std::vector<RecordedInstance> Recorded(int64_t deployment_id) {
    return testing::RecordedInstances(*store_, deployment_id);
  }

  // Changes the faults of every instance of the deployment (the demo app's POST /admin/fault,
  // e.g. "fail-ready=true", "fail-live=true").
  void SetFault(int64_t deployment_id, const std::string& query) {
    for (const auto& i : Recorded(deployment_id)) {
      ProbeRequest fault;
      fault.address = "127.0.0.1:" + std::to_string(i.record.port);
      fault.method = "POST";
      fault.path = "/admin/fault?" + query;
      auto reply = HttpProbe(fault);
      ASSERT_TRUE(reply.ok() && reply->status == 200) << fault.address << " " << query;
    }
  }

  // The audit entries with `action` appended after entry `after_seq`.
  std::vector<state::AuditEntry> AuditSince(int64_t after_seq, const std::string& action) {
    return testing::AuditEntriesSince(*store_, after_seq, action);
  }
  // The newest audit entry's seq (0 when the log is empty).
  int64_t LastAuditSeq() {
    auto entries = store_->ReadAudit(0, 0);
    EXPECT_TRUE(entries.ok());
    return entries.ok() && !entries->empty() ? entries->back().seq : 0;
  }

  // Ends the deployment's processes behind the controller's back.
  void KillInstances(int64_t deployment_id) {
    for (const auto& i : Recorded(deployment_id)) {
      EXPECT_TRUE(current_platform_->Stop(i.handle).ok());
    }
  }

  // Begins v2 and "crashes" (destroys the engine) once the deployment entered `state`: nothing
  // of that engine survives but the store, the processes and the router.
  int64_t BeginV2AndCrashAt(DeploymentState state) {
    auto engine = NewEngine();
    auto d2 = engine->Begin(Spec("v2"));
    EXPECT_TRUE(d2.ok()) << d2.status().ToString();
    if (!d2.ok()) return 0;
    Run(*engine, state);
    EXPECT_EQ(engine->deployment().state, state);
    return d2->id;
  }

  // Checks every instance row of the deployment: its recorded state and whether its process
  // runs. `running` false: the row is stopped (or failed) and the process ended.
  void ExpectInstances(int64_t deployment_id, bool running) {
    testing::ExpectRecordedInstances(*store_, *current_platform_, deployment_id, running);
  }
  void ExpectInstancesStopped(int64_t deployment_id) { ExpectInstances(deployment_id, false); }
  void ExpectInstancesRunning(int64_t deployment_id) { ExpectInstances(deployment_id, true); }

  ManualClock clock_;
  ManualTimeRealPauses engine_clock_{clock_};
  HttpProber prober_;
  platform::LocalCommandRunner commands_;
  std::vector<EngineEvent> events_;
  std::string dir_;
  std::unique_ptr<state::SqliteStateStore> store_;
  platform::ProcessPlatform platform_;
  // What engines and checks use; a "restarted daemon" swaps in a fresh platform that only knows
  // the instances through Adopt.
  platform::Platform* current_platform_ = &platform_;
  std::unique_ptr<platform::ProcessPlatform> restarted_platform_;
  std::unique_ptr<router::Router> router_;
  std::string router_address_;
};

}  // namespace turnout::controller
