// The fixture of the engine's state-machine tests: every part the engine uses is a double, so a
// test runs in milliseconds and starts no process and opens no socket:
//   - platform::testing::FakePlatform: instances are records; the test makes them unready, exit,
//     die by a signal or be OOM-killed (faults per version: OnVersion);
//   - testing::FakeProber answering from the fake instances: GET /ready 2xx while an instance is
//     ready, GET /live 2xx while live, nothing (connection refused) once it ended; requests to
//     the router address (smoke checks) 200 with the version of the slot named by the override
//     header, unless the test set another answer;
//   - platform::testing::FakeCommandRunner for pre-deploy and smoke commands;
//   - router::testing::InMemoryRouter (slots blue and green; health as the test says);
//   - the real SqliteStateStore, on a memory file system (/dev/shm when there is one, else the
//     temp dir): a second, in-memory StateStore would drift from the one that runs, and on
//     tmpfs its fsyncs cost nothing (on a disk they cost ~0.3 s per test);
//   - a ManualClock: the engine's pauses (Clock::SleepFor, FakePlatform::Wait) move it, so
//     deadlines pass by steps, not by waiting.

#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/engine.h"
#include "controller/testing/engine_test_util.h"
#include "controller/testing/fake_prober.h"
#include "platform/testing/fake_command_runner.h"
#include "platform/testing/fake_platform.h"
#include "router/testing/in_memory_router.h"
#include "state/sqlite_state_store.h"

namespace turnout::controller {

using namespace std::chrono_literals;
using platform::testing::FakeInstance;
using state::DeploymentState;

inline constexpr char kFakeService[] = "demo";
// Where smoke checks go; nothing listens there (the fake prober answers for it).
inline constexpr char kFakeRouterAddress[] = "127.0.0.1:8080";
inline constexpr char kFakeOverrideSecret[] = "engine-state-test-secret";

class EngineStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::error_code ec;
    const std::string base =
        std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm/" : ::testing::TempDir();
    std::string templ = base + "/engine_state_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    state::SqliteStateStoreOptions so;
    so.path = dir_ + "/state.db";
    so.clock = &clock_;
    auto store = state::SqliteStateStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    router_.UseFixedEjection(false);
    platform_.set_on_launch([this](FakeInstance& i) {
      if (auto it = on_version_.find(i.spec.version); it != on_version_.end()) it->second(i);
    });
    prober_.SetHandler([this](const ProbeRequest& r) { return AnswerProbe(r); });
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Each instance of `version` is changed by `fault` when it is launched.
  void OnVersion(const std::string& version, std::function<void(FakeInstance&)> fault) {
    on_version_[version] = std::move(fault);
  }

  Result<ProbeResponse> AnswerProbe(const ProbeRequest& r) {
    if (r.address == kFakeRouterAddress) {
      // Through the router to the slot the override header names (the active one without it).
      std::string slot = router_.policy().active;
      for (const auto& [name, value] : r.headers) {
        if (name == "X-Turnout-Slot") slot = value;
      }
      std::optional<FakeInstance> i = FirstRunning(slot);
      if (!i) return Unavailable("upstream connect error");
      ProbeResponse resp =
          testing::FakeProber::Status(200, "{\"version\":\"" + i->spec.version + "\"}");
      resp.headers.emplace_back("X-Version", i->spec.version);
      return resp;
    }
    std::optional<FakeInstance> i = platform_.At(r.address);
    if (!i || !i->status.running()) return Unavailable("connect to " + r.address + ": refused");
    bool ok = true;
    if (r.path == "/ready") ok = i->ready;
    if (r.path == "/live") ok = i->live;
    return testing::FakeProber::Status(ok ? 200 : 503);
  }

  std::optional<FakeInstance> FirstRunning(const std::string& slot) {
    for (const auto& address : router_.instances(slot)) {
      std::optional<FakeInstance> i = platform_.At(address);
      if (i && i->status.running()) return i;
    }
    return std::nullopt;
  }

  DeploymentSpec Spec(const std::string& version) {
    DeploymentSpec s;
    s.service = kFakeService;
    s.version = version;
    s.command = "app --listen 127.0.0.1:{port} --version {version}";
    s.grace = 2s;
    s.ready_deadline = 10s;
    SmokeCheck check;
    check.method = "GET";
    check.path = "/";
    check.expected_status = 200;
    s.smoke_checks = {check};
    s.bake_time = 30s;
    s.scale_down_delay = 60s;
    s.started_by = "engine_state_test";
    return s;
  }

  EngineOptions Options() {
    EngineOptions o;
    o.router_address = kFakeRouterAddress;
    o.override_secret = kFakeOverrideSecret;
    o.verifier = verifier_;
    return o;
  }
  std::unique_ptr<Engine> NewEngine() { return NewEngine(Options()); }
  std::unique_ptr<Engine> NewEngine(EngineOptions o) {
    o.on_event = [this](const EngineEvent& e) { events_.push_back(e); };
    return std::make_unique<Engine>(*store_, platform_, router_, prober_, commands_, clock_, o);
  }

  std::vector<std::string> EventNames() const {
    std::vector<std::string> names;
    for (const auto& e : events_) names.push_back(e.name);
    return names;
  }

  // Steps until the deployment finishes or enters `stop_at`; the clock moves 10 s where the
  // engine waits for time (canary steps, bake, scale-down delay), and by the engine's own pauses
  // elsewhere. Bounded by 400 steps.
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

  // Begins v2 and "crashes" (drops the engine) once it entered `state`.
  int64_t BeginV2AndCrashAt(DeploymentState state, DeploymentSpec spec = {}) {
    if (spec.service.empty()) spec = Spec("v2");
    auto engine = NewEngine();
    auto d2 = engine->Begin(spec);
    EXPECT_TRUE(d2.ok()) << d2.status().ToString();
    if (!d2.ok()) return 0;
    Run(*engine, state);
    EXPECT_EQ(engine->deployment().state, state);
    return d2->id;
  }

  std::unique_ptr<Engine> ResumeAndRun() {
    auto engine = NewEngine();
    auto resumed = engine->Resume(kFakeService);
    EXPECT_TRUE(resumed.ok() && resumed->has_value());
    Run(*engine);
    return engine;
  }

  // The version users get: the active slot's first running instance ("" when none).
  std::string UserVersion() {
    std::optional<FakeInstance> i = FirstRunning(router_.policy().active);
    return i ? i->spec.version : "";
  }

  void ExpectRolledBackToV1(const Engine& engine, std::string_view why) {
    EXPECT_EQ(engine.deployment().state, DeploymentState::kRolledBack);
    EXPECT_NE(engine.deployment().reason.find(why), std::string::npos)
        << engine.deployment().reason;
    EXPECT_EQ(UserVersion(), "v1");
  }

  std::vector<DeploymentState> States(int64_t deployment_id) {
    return testing::TransitionStates(*store_, deployment_id);
  }
  static bool Contains(const std::vector<DeploymentState>& v, DeploymentState s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }

  std::optional<state::StepRecord> FindStep(int64_t deployment_id, const std::string& name) {
    return testing::FindStepRecord(*store_, deployment_id, name);
  }

  // The instance rows of the deployment that have a handle, with the handle.
  using RecordedInstance = testing::RecordedInstance;
  std::vector<RecordedInstance> Recorded(int64_t deployment_id) {
    return testing::RecordedInstances(*store_, deployment_id);
  }

  // Every instance row of the deployment is live (running) or stopped, and so is its instance.
  void ExpectInstances(int64_t deployment_id, bool running) {
    testing::ExpectRecordedInstances(*store_, platform_, deployment_id, running);
  }
  void ExpectInstancesStopped(int64_t id) { ExpectInstances(id, false); }
  void ExpectInstancesRunning(int64_t id) { ExpectInstances(id, true); }

  // The audit entries with `action` appended after entry `after_seq`.
  std::vector<state::AuditEntry> AuditSince(int64_t after_seq, const std::string& action) {
    return testing::AuditEntriesSince(*store_, after_seq, action);
  }

  // Ends every instance of the deployment behind the engine's back (exit code 1).
  void KillInstances(int64_t deployment_id) {
    for (const auto& i : Recorded(deployment_id)) platform_.Exit(i.handle.id, 1);
  }

  ManualClock clock_;
  platform::testing::FakePlatform platform_{clock_};
  testing::FakeProber prober_;
  platform::testing::FakeCommandRunner commands_;
  router::testing::InMemoryRouter router_;
  std::map<std::string, std::function<void(FakeInstance&)>> on_version_;
  std::vector<EngineEvent> events_;
  std::string dir_;
  std::unique_ptr<state::SqliteStateStore> store_;
  Verifier* verifier_ = nullptr;  // EngineOptions::verifier of the engines Options() makes
};

}  // namespace turnout::controller
