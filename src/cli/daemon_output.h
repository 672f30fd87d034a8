// Human renderings of turnoutd's replies for the `turnout` commands that talk to it (status,
// history, health-check, audit, events, deploy --wait). Each takes the daemon's JSON (as the
// API documents it, docs/api.md) and returns the text to print, so the layout is tested without
// a daemon.
//
// Columns never run together: every column is at least two spaces from the next (table.h).
//
// Thread-safety: pure functions.

#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace turnout::cli {

// A field of a JSON object as text: strings as they are, other values as JSON, `fallback` when
// missing or null.
std::string JsonText(const nlohmann::json& object, const char* key, std::string fallback = "");

// A duration for people: "3.0 ms", "14 ms", "2.5 s", "3 m 5 s".
std::string FormatMillis(double ms);

// "2026-11-22T08:01:02.123Z" -> "2026-11-22 08:01:02" (other text unchanged).
std::string ShortTime(const std::string& time);

// `turnout status`: GET /v1/status.
std::string FormatDaemonStatus(const nlohmann::json& status);

// What status and up say first: a broken audit log (turnoutd refuses to act) and what the
// daemon resumed after a restart. Empty when there is neither.
std::string FormatDaemonWarnings(const nlohmann::json& status);

// A `resume` step in one line: "turnoutd restarted (down 4.1 s, killed): found baking;
// decided: resume the bake with 4 s left".
std::string FormatResumeStep(const nlohmann::json& step);

// A `verify:<name>` step in one line: a command's result ("exited with code 0"), or a
// performance check's percentiles beside its baseline's: "p50 1.2 ms, p95 3.4 ms, p99 5.0 ms
// (500 requests, 0 errors); baseline revision 3: p50 ..." or "...; no baseline: recorded", then
// why it failed when it did.
std::string FormatVerifyStep(const nlohmann::json& step);

// What a revision changed, from its "change" (GET /v1/deployments): "deploy" (null: a deployment
// of turnout.yaml), "restart", "scale 1->3", "env set A,B unset C" (names only, never a value).
// A secret's rotation: "secrets rotate NAME", "secrets drop-previous NAME".
std::string FormatChange(const nlohmann::json& change);

// `turnout secrets list`: the table of GET /v1/secrets (name, source, delivery, generation,
// keyed fingerprint, last rotation, whether NAME_PREVIOUS is live and until when).
std::string FormatSecretList(const nlohmann::json& secrets);

// `turnout history`: the table of GET /v1/deployments (header, one row per revision, the
// footnote), or a line saying there is none.
std::string FormatDeploymentList(const nlohmann::json& deployments);

// `turnout history REV`: GET /v1/deployments/revN (the deployment, its transitions and steps).
std::string FormatDeploymentDetail(const nlohmann::json& reply);

// `turnout health-check`: GET /v1/health.
std::string FormatHealth(const nlohmann::json& reply);

// One audit entry (`turnout audit`, `turnout events`): sequence, time, action, what happened
// and who did it, on one line. Details without a transition or reason are shown as key=value.
std::string FormatAuditEntry(const nlohmann::json& entry);

// `turnout prune [--dry-run]`: POST /v1/prune. One line per image and stopped container removed
// ("would remove" in a dry run) with its size, one per image kept with the reason, then the
// total; or why there is nothing to prune.
std::string FormatPrune(const nlohmann::json& reply);

// One finished state of `turnout deploy --wait`: "  waiting_ready   5.0 s  FAILED: ...".
std::string FormatStateLine(const std::string& state, double ms, const std::string& outcome);

}  // namespace turnout::cli
