// The routing policy: which slot gets which request.
//
// A policy names the active slot, optionally a canary slot with a weight (0..100 %, in steps of
// 0.01 %, stored as basis points 0..10000), how clients are kept on one version (stickiness), and
// an override header that lets smoke tests reach any slot before users do.
//
// Stickiness: a client's key (a cookie, or a header) is hashed with the canary's seed into a
// bucket 0..9999; the client goes to the canary when bucket < weight_bp. Raising the weight only
// adds buckets, so a client on the canary stays there through every step and its promotion, and
// a client on the stable slot moves only when the weight passes its bucket (never back). A
// client without a key is given one: the router picks a random key, routes with it and sets the
// cookie on the response (when the key source is a cookie).
//
// Policies are values; the router publishes them as immutable snapshots.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::router {

struct CanaryPolicy {
  std::string slot;
  uint32_t weight_bp = 0;  // basis points: 2500 = 25.00 %. 0..10000.
  // Salts the sticky hash; a new canary gets a new seed. 0 on input (JSON without "seed", YAML)
  // means "not chosen yet": RouterControl::SetCanaryWeight and the admin API replace it with the
  // current canary's seed when the slot is unchanged, else with a fresh random one.
  uint64_t seed = 0;

  friend bool operator==(const CanaryPolicy&, const CanaryPolicy&) = default;
};

struct StickinessPolicy {
  enum class Source { kCookie, kHeader };
  Source source = Source::kCookie;
  std::string name = "turnout_sticky";  // cookie or header name. Default: cookie turnout_sticky
  // Set-Cookie Max-Age for generated keys. Default: 1 day.
  uint32_t cookie_max_age_seconds = 86400;

  friend bool operator==(const StickinessPolicy&, const StickinessPolicy&) = default;
};

struct OverridePolicy {
  std::string header = "X-Turnout-Slot";  // Default: X-Turnout-Slot. Empty disables overrides.
  // An override is honoured only when the request also carries `X-Turnout-Secret: <secret>`
  // (compared in constant time). With no secret, no override is ever honoured; the router
  // generates one when it is given none (Router::Create).
  std::string secret;
  // A request with the override header but without the right secret: routed as if the header
  // were absent (false, the default), or answered 400 (true; JSON "on_bad_secret":"reject").
  bool reject_bad_secret = false;

  friend bool operator==(const OverridePolicy&, const OverridePolicy&) = default;
};

// Maintenance: while enabled, the router answers every request itself with `503`,
// `Retry-After` and this page, instead of routing it (and never with a connection error), so
// that instances can be stopped for a change that cannot be made while serving (`strategy:
// recreate`, `turnout maintenance on`). A request with the override header and the right secret
// still reaches the slot it names: smoke tests run during maintenance. No slot receives traffic
// (SlotStatus::drained can become true for the active slot).
struct MaintenancePolicy {
  bool enabled = false;
  uint32_t retry_after_seconds = 30;  // 1..86400
  std::string page;  // the body; empty: a short built-in page (kDefaultMaintenancePage)
  std::string content_type = "text/html; charset=utf-8";

  friend bool operator==(const MaintenancePolicy&, const MaintenancePolicy&) = default;
};

inline constexpr size_t kMaxMaintenancePageBytes = 64 * 1024;
inline constexpr std::string_view kDefaultMaintenancePage =
    "<!doctype html><title>Down for maintenance</title>"
    "<h1>Down for maintenance</h1><p>We will be back shortly. Please try again in a moment.</p>\n";

struct RoutingPolicy {
  std::string active;                  // required: the stable slot
  std::optional<CanaryPolicy> canary;  // absent: all traffic to active
  StickinessPolicy sticky;
  OverridePolicy override_header;
  MaintenancePolicy maintenance;

  friend bool operator==(const RoutingPolicy&, const RoutingPolicy&) = default;
};

// Slot names: 1..64 characters of [A-Za-z0-9._-] (they appear in URLs, metric labels and the
// override header).
bool IsValidSlotName(std::string_view name);

// A fresh random canary seed, never 0.
uint64_t NewCanarySeed();

// Gives `next`'s canary a seed when it has none (0): the seed of `current`'s canary when both
// name the same slot (so clients stay where they are while the weight moves), else a new one.
void FillCanarySeed(const RoutingPolicy& current, RoutingPolicy* next);

// Checks the policy against the known slot names: active exists; canary exists, differs from
// active, weight within 0..10000; names non-empty tokens. The error says what to fix.
Status ValidatePolicy(const RoutingPolicy& policy, const std::vector<std::string>& slot_names);

// JSON form (used by the admin API, the CLI and the persisted state file):
// {"active":"blue",
//  "canary":{"slot":"green","weight":25.0,"seed":123}   (or null; weight in percent, 0.01 steps)
//  "sticky":{"source":"cookie","name":"turnout_sticky","cookie_max_age":86400},
//  "override":{"header":"X-Turnout-Slot","secret_set":true,"on_bad_secret":"ignore"},
//                                          (the secret itself is never shown; or "reject")
//  "maintenance":{"enabled":false,"retry_after":30,"page":"","content_type":"text/html; ..."}}
// ParsePolicyJson accepts "secret" on input; missing fields keep their defaults; unknown fields
// and wrong types are errors naming the field.
std::string PolicyToJson(const RoutingPolicy& policy, bool include_secret = false);
Result<RoutingPolicy> ParsePolicyJson(std::string_view json);

// A fresh override secret: 32 hex characters (128 bits) from the system's CSPRNG (OpenSSL
// RAND_bytes). Internal error when the CSPRNG fails.
Result<std::string> NewOverrideSecret();

// Parses "25", "25%", "0.05", "12.34" into basis points; at most two decimals; 0..100.
Result<uint32_t> ParseWeightPercent(std::string_view text);

// The sticky bucket 0..9999 of a client key under a seed. Stable across processes and
// versions of turnout (a fixed hash, not std::hash).
uint32_t StickyBucket(std::string_view key, uint64_t seed);

// True when a client with this key goes to the canary.
inline bool ChoosesCanary(const CanaryPolicy& canary, std::string_view key) {
  return canary.weight_bp > 0 && StickyBucket(key, canary.seed) < canary.weight_bp;
}

}  // namespace turnout::router
