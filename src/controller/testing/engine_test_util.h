// What both fixtures of the engine's tests read and do the same way, whatever runs behind the
// engine (doubles in engine_state_fixture.h, processes and a router in engine_test_fixture.h):
// driving an engine to a state, and reading back its records. Failures are test failures.

#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "controller/engine.h"
#include "platform/platform.h"
#include "state/state_store.h"

namespace turnout::controller::testing {

// Steps until the deployment finishes or enters `stop_at`. The clock moves 10 s only where the
// engine waits for time (canary steps, bake, scale-down delay). Bounded by 400 steps.
inline StepReport RunEngine(Engine& engine, ManualClock& clock,
                            std::optional<state::DeploymentState> stop_at = std::nullopt) {
  using state::DeploymentState;
  StepReport last;
  last.state = engine.deployment().state;
  for (int i = 0; i < 400; ++i) {
    if (stop_at && engine.deployment().state == *stop_at) return last;
    if (state::IsTerminal(engine.deployment().state)) return last;
    auto r = engine.Step();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return last;
    last = *r;
    if (last.state == DeploymentState::kCanary || last.state == DeploymentState::kBaking ||
        last.state == DeploymentState::kScalingDown) {
      if (!last.waiting_for.empty()) clock.Advance(std::chrono::seconds(10));
    }
  }
  ADD_FAILURE() << "deployment did not finish; last: " << last.waiting_for;
  return last;
}

// The states the deployment entered, in order; checks that they form one unbroken chain.
inline std::vector<state::DeploymentState> TransitionStates(state::StateStore& store,
                                                            int64_t deployment_id) {
  std::vector<state::DeploymentState> out;
  auto ts = store.Transitions(deployment_id);
  EXPECT_TRUE(ts.ok());
  if (!ts.ok()) return out;
  state::DeploymentState at = state::DeploymentState::kPending;
  for (const auto& t : *ts) {
    EXPECT_EQ(t.from, at) << "broken transition chain";
    at = t.to;
    out.push_back(t.to);
  }
  return out;
}

// The step record named `name` of the deployment (nullopt when there is none).
inline std::optional<state::StepRecord> FindStepRecord(state::StateStore& store,
                                                       int64_t deployment_id,
                                                       const std::string& name) {
  auto steps = store.Steps(deployment_id);
  EXPECT_TRUE(steps.ok());
  if (!steps.ok()) return std::nullopt;
  for (const auto& step : *steps) {
    if (step.step == name) return step;
  }
  return std::nullopt;
}

struct RecordedInstance {
  state::InstanceRecord record;
  platform::InstanceHandle handle;
};
// The instance rows (of every service when `deployment_id` is 0) with their persisted handles;
// rows without a handle (never launched) are left out.
inline std::vector<RecordedInstance> RecordedInstances(state::StateStore& store,
                                                       int64_t deployment_id) {
  std::vector<RecordedInstance> out;
  auto records = store.ListInstances("", false);
  EXPECT_TRUE(records.ok());
  if (!records.ok()) return out;
  for (const auto& r : *records) {
    if (deployment_id != 0 && r.deployment_id != deployment_id) continue;
    if (r.platform_handle.empty()) continue;
    auto handle = platform::DecodeHandle(r.platform_handle);
    EXPECT_TRUE(handle.ok());
    if (handle.ok()) out.push_back({r, *handle});
  }
  return out;
}

// The audit entries with `action` appended after entry `after_seq`.
inline std::vector<state::AuditEntry> AuditEntriesSince(state::StateStore& store, int64_t after_seq,
                                                        const std::string& action) {
  std::vector<state::AuditEntry> out;
  auto entries = store.ReadAudit(after_seq, 0);
  EXPECT_TRUE(entries.ok());
  if (!entries.ok()) return out;
  for (auto& e : *entries) {
    if (e.action == action) out.push_back(std::move(e));
  }
  return out;
}

// Every instance row of the deployment is live (running) or not, and so is its instance on
// `platform`.
inline void ExpectRecordedInstances(state::StateStore& store, platform::Platform& platform,
                                    int64_t deployment_id, bool running) {
  std::vector<RecordedInstance> instances = RecordedInstances(store, deployment_id);
  EXPECT_FALSE(instances.empty());
  for (const auto& i : instances) {
    EXPECT_EQ(i.record.state == state::InstanceState::kRunning, running)
        << state::InstanceStateName(i.record.state);
    auto st = platform.Inspect(i.handle);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->running(), running) << st->ToString();
  }
}

// The names of the deployment's step records, in order.
inline std::vector<std::string> StepRecordNames(state::StateStore& store, int64_t deployment_id) {
  std::vector<std::string> out;
  auto steps = store.Steps(deployment_id);
  EXPECT_TRUE(steps.ok());
  if (steps.ok()) {
    for (const auto& s : *steps) out.push_back(s.step);
  }
  return out;
}

// The last event named `name` (nullptr when none), and how many there are.
inline const EngineEvent* LastEventNamed(const std::vector<EngineEvent>& events,
                                         const std::string& name) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->name == name) return &*it;
  }
  return nullptr;
}
inline size_t CountEventsNamed(const std::vector<EngineEvent>& events, const std::string& name) {
  size_t n = 0;
  for (const auto& e : events) n += e.name == name ? 1 : 0;
  return n;
}

// An analysis verdict, as a scripted analysis hook answers.
inline AnalysisVerdict Verdict(AnalysisVerdict::Kind kind, std::string reason,
                               std::string evidence) {
  AnalysisVerdict v;
  v.kind = kind;
  v.reason = std::move(reason);
  v.evidence_json = std::move(evidence);
  return v;
}

}  // namespace turnout::controller::testing
