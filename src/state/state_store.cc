#include "state/state_store.h"

#include <array>
#include <utility>

namespace turnout::state {
namespace {

constexpr std::array<std::pair<DeploymentState, std::string_view>, 16> kStateNames = {{
    {DeploymentState::kPending, "pending"},
    {DeploymentState::kPreChecks, "pre_checks"},
    {DeploymentState::kLaunching, "launching"},
    {DeploymentState::kWaitingReady, "waiting_ready"},
    {DeploymentState::kSmokeTesting, "smoke_testing"},
    {DeploymentState::kAwaitingApproval, "awaiting_approval"},
    {DeploymentState::kCanary, "canary"},
    {DeploymentState::kRolling, "rolling"},
    {DeploymentState::kDraining, "draining"},
    {DeploymentState::kSwitching, "switching"},
    {DeploymentState::kBaking, "baking"},
    {DeploymentState::kScalingDown, "scaling_down"},
    {DeploymentState::kSucceeded, "succeeded"},
    {DeploymentState::kRollingBack, "rolling_back"},
    {DeploymentState::kRolledBack, "rolled_back"},
    {DeploymentState::kFailed, "failed"},
}};

constexpr std::array<std::pair<StepOutcome, std::string_view>, 5> kOutcomeNames = {{
    {StepOutcome::kRunning, "running"},
    {StepOutcome::kOk, "ok"},
    {StepOutcome::kFailed, "failed"},
    {StepOutcome::kSkipped, "skipped"},
    {StepOutcome::kInterrupted, "interrupted"},
}};

constexpr std::array<std::pair<InstanceState, std::string_view>, 5> kInstanceNames = {{
    {InstanceState::kStarting, "starting"},
    {InstanceState::kRunning, "running"},
    {InstanceState::kStopping, "stopping"},
    {InstanceState::kStopped, "stopped"},
    {InstanceState::kFailed, "failed"},
}};

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table,
                       std::string_view name) {
  for (const auto& [e, n] : table) {
    if (n == name) return e;
  }
  return std::nullopt;
}

}  // namespace

std::string_view DeploymentStateName(DeploymentState state) { return NameOf(kStateNames, state); }
std::optional<DeploymentState> ParseDeploymentState(std::string_view name) {
  return Parse(kStateNames, name);
}
bool IsTerminal(DeploymentState state) {
  return state == DeploymentState::kSucceeded || state == DeploymentState::kRolledBack ||
         state == DeploymentState::kFailed;
}

std::string_view StepOutcomeName(StepOutcome outcome) { return NameOf(kOutcomeNames, outcome); }
std::optional<StepOutcome> ParseStepOutcome(std::string_view name) {
  return Parse(kOutcomeNames, name);
}

std::string_view InstanceStateName(InstanceState state) { return NameOf(kInstanceNames, state); }
std::optional<InstanceState> ParseInstanceState(std::string_view name) {
  return Parse(kInstanceNames, name);
}

std::string_view AuditProblemKindName(AuditProblemKind kind) {
  switch (kind) {
    case AuditProblemKind::kNone:
      return "none";
    case AuditProblemKind::kModified:
      return "modified";
    case AuditProblemKind::kDeleted:
      return "deleted";
    case AuditProblemKind::kInserted:
      return "inserted";
    case AuditProblemKind::kReordered:
      return "reordered";
    case AuditProblemKind::kTruncated:
      return "truncated";
    case AuditProblemKind::kHeadMissing:
      return "head_missing";
    case AuditProblemKind::kHeadCorrupt:
      return "head_corrupt";
  }
  return "unknown";
}

std::string AuditReport::ToString() const {
  if (ok()) {
    std::string out =
        "audit log OK: " + std::to_string(entries) + " entries, head " + std::to_string(head_seq);
    if (head_lag > 0) out += " (" + std::to_string(head_lag) + " newer entries not yet anchored)";
    return out;
  }
  std::string out = "audit log BROKEN";
  if (first_bad_seq > 0) out += " at entry " + std::to_string(first_bad_seq);
  out += ": ";
  out += AuditProblemKindName(kind);
  out += ": ";
  out += message;
  if (acknowledged_seq != 0) {
    out += " (acknowledged at entry " + std::to_string(acknowledged_seq) + ": " +
           acknowledged_reason + "; the chain verifies from there on)";
  }
  return out;
}

}  // namespace turnout::state
