#include "daemon/analysis.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "judge/canary_judge.h"
#include "judge/judge_json.h"
#include "judge/rule_engine.h"
#include "sources/dependency.h"
#include "sources/prometheus.h"

namespace turnout::daemon {
namespace {

using nlohmann::json;
using Kind = controller::AnalysisVerdict::Kind;

metrics::CumulativeSnapshot AsCumulative(const metrics::WindowSnapshot& w) {
  metrics::CumulativeSnapshot c;
  c.counters = w.counters;
  c.total_latency = w.total_latency;
  c.upstream_latency = w.upstream_latency;
  return c;
}

std::optional<metrics::WindowSnapshot> FindSlot(const std::vector<router::SlotWindowMetrics>& all,
                                                const std::string& slot) {
  for (const auto& s : all) {
    if (s.slot == slot) return s.window;
  }
  return std::nullopt;
}

}  // namespace

struct Analysis::Impl {
  service::ServiceConfig config;
  router::RouterControl& router;
  Clock& clock;
  Logger log;

  std::unique_ptr<judge::RuleEngine> rules;
  std::unique_ptr<sources::DependencyChecker> dependencies;
  std::optional<sources::PrometheusSource> prometheus;

  // The Prometheus poller: the latest value of each named query.
  std::thread poller;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::map<std::string, judge::ExternalValue> external;  // guarded by mu
  std::map<std::string, std::string> query_errors;       // guarded by mu (logged on change)

  // The comparison of the current step (engine thread only).
  int64_t deployment_id = 0;
  std::string phase;
  int step = -2;
  std::unique_ptr<judge::CanaryJudge> canary_judge;
  std::vector<router::SlotWindowMetrics> totals_at_start;
  // When the canary judge starts comparing (after the first step's warmup), and the step's end.
  std::optional<Clock::TimePoint> judge_from;
  Clock::TimePoint step_end{};
  // The router's view of the new slot's health, and since when.
  std::optional<judge::Condition> health;

  Impl(const service::ServiceConfig& c, router::RouterControl& r, Clock& k, Logger l)
      : config(c), router(r), clock(k), log(std::move(l)) {}

  void Poll();
  void NewStep(const controller::AnalysisRequest& r);
  // The canary judge of this step, comparing from `now` (the step's start, or the warmup's end).
  void StartJudge(Clock::TimePoint now);
  void UpdateHealth(const std::string& slot);
};

Result<std::unique_ptr<Analysis>> Analysis::Create(const service::ServiceConfig& config,
                                                   router::RouterControl& router, Clock& clock,
                                                   Logger log) {
  auto impl = std::make_unique<Impl>(config, router, clock, std::move(log));
  std::vector<judge::Rule> rules;
  for (const auto& rc : config.rules) {
    TURNOUT_ASSIGN_OR_RETURN(judge::Rule rule, judge::MakeRule(rc, config.analysis_interval));
    rules.push_back(std::move(rule));
  }
  impl->rules = std::make_unique<judge::RuleEngine>(
      std::move(rules), judge::EngineOptions::ForInterval(config.analysis_interval));
  if (!config.dependencies.empty()) {
    std::vector<sources::NamedCheck> checks;
    for (const auto& d : config.dependencies) {
      checks.push_back(sources::NamedCheck{d.name, d.check, d.interval});
    }
    Logger l = impl->log;
    impl->dependencies = std::make_unique<sources::DependencyChecker>(
        std::move(checks), clock,
        [l](const std::string& name, const sources::DependencyState& s, bool changed) {
          if (changed && l) {
            l("dependency " + name + (s.up ? " is up" : " is DOWN: " + s.last.detail));
          }
        });
  }
  if (!config.prometheus.url.empty() && !config.prometheus.queries.empty()) {
    sources::PrometheusOptions po;
    po.base_url = config.prometheus.url;
    po.timeout = config.prometheus.timeout;
    po.retries = config.prometheus.retries;
    TURNOUT_ASSIGN_OR_RETURN(sources::PrometheusSource source,
                             sources::PrometheusSource::Create(std::move(po)));
    impl->prometheus.emplace(std::move(source));
  }
  return std::unique_ptr<Analysis>(new Analysis(std::move(impl)));
}

Analysis::Analysis(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Analysis::~Analysis() { Stop(); }

bool Analysis::enabled() const {
  return !impl_->config.rules.empty() || impl_->config.strategy == "canary";
}

Status Analysis::Start() {
  if (impl_->dependencies) TURNOUT_RETURN_IF_ERROR(impl_->dependencies->Start());
  if (impl_->prometheus) impl_->poller = std::thread([this] { impl_->Poll(); });
  return Status::Ok();
}

void Analysis::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->poller.joinable()) impl_->poller.join();
  if (impl_->dependencies) impl_->dependencies->Stop();
}

// Each query once per analysis interval, so that Analyze() only reads the latest values.
void Analysis::Impl::Poll() {
  for (;;) {
    for (const auto& [name, promql] : config.prometheus.queries) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      Result<sources::QueryResult> r = prometheus->Query(promql);
      std::string error;
      std::optional<double> value;
      if (!r.ok()) {
        error = r.status().message();
      } else if (r->empty()) {
        error = "no data";
      } else if (!r->series.empty() && !r->series[0].samples.empty()) {
        value = r->series[0].samples.back().value;
      } else {
        error = "the query returned " + std::string(sources::QueryResultTypeName(r->type));
      }
      std::lock_guard<std::mutex> lock(mu);
      if (value) external[name] = judge::ExternalValue{*value, clock.Now()};
      if (query_errors[name] != error) {
        query_errors[name] = error;
        if (!error.empty() && log) log("prometheus query " + name + ": " + error);
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, config.analysis_interval, [&] { return stopping; });
    if (stopping) return;
  }
}

void Analysis::Impl::NewStep(const controller::AnalysisRequest& r) {
  deployment_id = r.deployment->id;
  phase = r.phase;
  step = r.step;
  rules->Reset();
  canary_judge.reset();
  totals_at_start.clear();
  judge_from.reset();
  if (r.phase == "canary") {
    step_end = r.step_started + r.step_duration;
    judge_from = r.step == 0 ? r.step_started + config.canary.warmup : r.step_started;
  }
}

void Analysis::Impl::StartJudge(Clock::TimePoint now) {
  judge::CanaryJudgeConfig jc = config.canary.judge;
  jc.max_duration = std::max<Clock::Duration>(step_end - now, std::chrono::seconds(1));
  canary_judge = std::make_unique<judge::CanaryJudge>(jc, now);
  Result<std::vector<router::SlotWindowMetrics>> totals = router.GetCumulativeMetrics();
  if (totals.ok()) totals_at_start = std::move(totals).value();
}

void Analysis::Impl::UpdateHealth(const std::string& slot) {
  Result<router::SlotStatus> s = router.GetSlotStatus(slot);
  if (!s.ok()) {
    health.reset();
    return;
  }
  const bool ok =
      !s->instances.empty() && std::all_of(s->instances.begin(), s->instances.end(),
                                           [](const auto& i) { return i.healthy && !i.ejected; });
  if (!health || health->ok != ok) health = judge::Condition{ok, clock.Now()};
}

controller::AnalysisVerdict Analysis::Analyze(const controller::AnalysisRequest& r) {
  Impl& a = *impl_;
  controller::AnalysisVerdict out;
  if (r.deployment == nullptr) return out;
  // A step is (deployment, phase, step index); step_started moves with pauses, so it is not
  // part of the identity.
  if (r.deployment->id != a.deployment_id || r.phase != a.phase || r.step != a.step) {
    a.NewStep(r);
  }
  const Clock::TimePoint now = a.clock.Now();
  if (!a.canary_judge && a.judge_from && now >= *a.judge_from) a.StartJudge(now);
  a.UpdateHealth(r.new_slot);

  // Inputs of the rules: each window fetched once per evaluation, when a rule first asks. The
  // windows start no earlier than this step (or the bake): what the slot served before, for
  // another version or at another weight, is not this step's evidence.
  std::map<int64_t, std::optional<std::vector<router::SlotWindowMetrics>>> windows;
  judge::Inputs in;
  in.since = r.step_started;
  in.window = [&](judge::SlotRole role,
                  std::chrono::seconds w) -> std::optional<metrics::WindowSnapshot> {
    auto it = windows.find(w.count());
    if (it == windows.end()) {
      Result<std::vector<router::SlotWindowMetrics>> m = a.router.GetWindowMetrics(w);
      std::optional<std::vector<router::SlotWindowMetrics>> fetched;
      if (m.ok()) fetched = std::move(m).value();
      it = windows.emplace(w.count(), std::move(fetched)).first;
    }
    if (!it->second) return std::nullopt;
    return FindSlot(*it->second, role == judge::SlotRole::kNew ? r.new_slot : r.stable_slot);
  };
  in.health = a.health;
  if (a.dependencies) {
    for (const auto& [name, s] : a.dependencies->Snapshot()) {
      in.dependencies[name] = judge::Condition{s.up, s.since};
    }
  }
  {
    std::lock_guard<std::mutex> lock(a.mu);
    in.external = a.external;
  }
  std::vector<judge::RuleResult> results = a.rules->Evaluate(now, in);
  judge::Decision decision = judge::Decide(results);

  json evidence;
  json rule_json = json::array();
  for (const auto& rr : results) rule_json.push_back(judge::ToJson(rr, now));
  evidence["rules"] = rule_json;
  evidence["decision"] = judge::ToJson(decision);

  std::optional<judge::Verdict> verdict;
  if (a.canary_judge && !a.totals_at_start.empty()) {
    Result<std::vector<router::SlotWindowMetrics>> totals = a.router.GetCumulativeMetrics();
    if (totals.ok()) {
      auto since = [&](const std::string& slot) -> judge::SlotData {
        std::optional<metrics::WindowSnapshot> start = FindSlot(a.totals_at_start, slot);
        std::optional<metrics::WindowSnapshot> now_totals = FindSlot(*totals, slot);
        if (!start || !now_totals) return judge::SlotData{};
        return judge::SlotSince(AsCumulative(*start), AsCumulative(*now_totals));
      };
      verdict = a.canary_judge->Evaluate(now, since(r.new_slot), since(r.stable_slot));
      evidence["judge"] = judge::ToJson(*verdict);
    }
  }
  out.evidence_json = judge::ToJsonText(evidence);

  // Not enough data: the step (or the bake) must not pass by time alone.
  if (decision.waiting_for_data) {
    for (const auto& rr : results) {
      if (rr.insufficient_data && rr.policy == judge::InsufficientDataPolicy::kWait) {
        out.hold = rr.sentence;
        constexpr std::string_view kPrefix = "insufficient data: ";
        if (out.hold.rfind(kPrefix, 0) == 0) out.hold.erase(0, kPrefix.size());
        break;
      }
    }
    if (out.hold.empty()) out.hold = "a rule waits for data";
  } else if (r.phase == "canary" && !a.canary_judge) {
    out.hold = "the canary judge starts after the warmup";
  } else if (verdict && verdict->verdict == judge::VerdictKind::kInsufficientData) {
    out.hold = verdict->reason;
    constexpr std::string_view kPrefix = "insufficient data: ";
    if (out.hold.rfind(kPrefix, 0) == 0) out.hold.erase(0, kPrefix.size());
  }
  if (decision.action == judge::Action::kRollback) {
    out.kind = Kind::kRollback;
    out.reason = decision.reasons.empty() ? "a critical rule fired" : decision.reasons.front();
  } else if (verdict && verdict->verdict == judge::VerdictKind::kRollback) {
    out.kind = Kind::kRollback;
    out.reason = "canary judge: " + verdict->reason;
  } else if (decision.action == judge::Action::kWarn) {
    out.kind = Kind::kWarn;
    out.reason = decision.reasons.empty() ? "a warning rule fired" : decision.reasons.front();
  } else if (verdict && verdict->verdict == judge::VerdictKind::kPromote &&
             !decision.waiting_for_data) {
    out.kind = Kind::kPromote;
    out.reason = "canary judge: " + verdict->reason;
  }
  return out;
}

}  // namespace turnout::daemon
