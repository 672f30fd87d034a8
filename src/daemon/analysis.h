// Analysis: turnoutd's judgement from data, given to the engine as EngineOptions::analyze.
//
// Every call (the engine asks at most every analysis_interval during canary steps and the bake)
// it gathers what the router measured for the new and the stable slot, the router's view of the
// new slot's health, the dependency checks' states and the latest Prometheus values, and
//   - evaluates the rules of turnout.yaml (judge::RuleEngine, its runs broken only by a gap of
//     two analysis intervals): a firing critical rule rolls back, a firing warning rule warns;
//     insufficient data follows each rule's policy. Each rule's window (which follows its `for`)
//     starts no earlier than the current step or bake (judge::Inputs::since), so what the slot
//     served before does not count;
//   - in a canary step, asks the sequential canary judge (judge::CanaryJudge) to compare the
//     canary with the stable slot over the same period: the counts since the step started,
//     taken as the difference of the router's totals (exact, however long the step);
//   - combines them: any rollback wins, then a warning, then (canary only) a promotion the
//     judge is sure of while no rule waits for data; otherwise continue.
// A new step (a new AnalysisRequest::step_started) starts a new comparison and new rule runs.
//
// Threads: Analyze() runs on the engine's thread; the dependency checker and the Prometheus
// poller have one thread each (started by Start(), stopped by Stop()/the destructor). Analyze()
// only reads their latest results, so it never waits on the network.

#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "controller/engine.h"
#include "router/router_control.h"
#include "service/service_config.h"

namespace turnout::daemon {

class Analysis {
 public:
  using Logger = std::function<void(const std::string&)>;

  // InvalidArgument for rules or a Prometheus URL the judge or the source refuse (turnout.yaml
  // was validated at load, so this is a bug or a race with an edit). `router` and `clock` must
  // outlive the object.
  static Result<std::unique_ptr<Analysis>> Create(const service::ServiceConfig& config,
                                                  router::RouterControl& router, Clock& clock,
                                                  Logger log);
  ~Analysis();
  Analysis(const Analysis&) = delete;
  Analysis& operator=(const Analysis&) = delete;

  // Starts the dependency checks and the Prometheus poller (when configured).
  Status Start();
  void Stop();

  // True when there is anything to judge (rules, or the canary strategy).
  bool enabled() const;

  controller::AnalysisVerdict Analyze(const controller::AnalysisRequest& request);

 private:
  struct Impl;
  explicit Analysis(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::daemon
