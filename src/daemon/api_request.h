// ApiCommand: the body of a POST to turnoutd's API, read and checked before the daemon acts on
// it. Kept apart from the daemon so that it can be tested and fuzzed without one.
//
// Bodies are JSON objects; an empty body is {}. Fields of the endpoints (docs/api.md):
//   every POST       "actor"        string; default "cli" from the Unix socket, "api" from TCP
//   /v1/deploy       "version"      string, required;  "reason" string, optional
//   /v1/rollback     "to_revision"  a revision number >= 1, or null/absent for the previous one;
//                    "confirm_data_loss", "confirm_unsupported_schema"  true or false (default
//                    false): let the database ladder run down migrations that destroy data, or
//                    that break the version serving until the switch
//   /v1/switch       "slot"         string, required
//   /v1/promote      "full"         true or false (null/absent: false)
//   /v1/audit/acknowledge  "reason" string, required (why the log may be trusted again)
//   /v1/stop-instances     "router" true or false: stop the router process too (default false)
//   /v1/maintenance  "enabled"      true or false, required;  "reason" string, optional
//   /v1/prune        "dry_run"      true or false: say what would be removed (default false)
//   /v1/restart      "reason"       string, optional
//   /v1/scale        "replicas"     an integer 1..64, required;  "reason" string, optional
//   /v1/env          "set"          object of NAME -> string value;  "unset"  array of NAMEs;
//                    at least one name in all, none in both; a NAME is [A-Za-z_][A-Za-z0-9_]*.
//                    "reason" string, optional. Errors name variables, never a value.
//   /v1/secrets/rotate  "name" a secret's variable name, required; "value" the new value
//                    (a non-empty string; absent: turnoutd generates one, as does
//                    "generate": true); "overlap_ms" how long NAME_PREVIOUS stays, an integer
//                    0 .. 90 days in ms (default 24 h; 0: none); "reason" string, optional.
//                    Errors never contain the value.
//   /v1/secrets/drop-previous  "name" required; "reason" string, optional
// A string field given another type counts as absent (so a non-string "actor" gets the default).
// Fields an endpoint does not use are ignored.
//
// Thread-safety: pure function.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/api.h"
#include "common/status.h"

namespace turnout::daemon {

// The bounds of /v1/scale, those of turnout.yaml's replicas.
inline constexpr int kMinReplicas = 1;
inline constexpr int kMaxReplicas = 64;
// /v1/secrets/rotate's overlap: default and bound.
inline constexpr int64_t kDefaultSecretOverlapMs = 24LL * 3600 * 1000;
inline constexpr int64_t kMaxSecretOverlapMs = 90LL * 24 * 3600 * 1000;

struct ApiCommand {
  std::string actor;
  std::string version;  // /v1/deploy: non-empty
  std::string reason;   // /v1/deploy, /v1/maintenance, /v1/restart, /v1/scale, /v1/env;
                        // /v1/audit/acknowledge: non-empty
  std::optional<int64_t> to_revision;       // /v1/rollback: >= 1 when set
  bool confirm_data_loss = false;           // /v1/rollback
  bool confirm_unsupported_schema = false;  // /v1/rollback
  std::string slot;                         // /v1/switch: non-empty
  bool full = false;                        // /v1/promote
  bool router = false;                      // /v1/stop-instances
  bool enabled = false;                     // /v1/maintenance
  bool dry_run = false;                     // /v1/prune
  int replicas = 0;                         // /v1/scale: 1..kMaxReplicas
  // /v1/env: the variables to set (sorted by name) and to remove.
  std::vector<std::pair<std::string, std::string>> env_set;
  std::vector<std::string> env_unset;
  // /v1/secrets/rotate, /v1/secrets/drop-previous: the secret; rotate: its new value ("":
  // turnoutd generates one) and how long the old one stays as NAME_PREVIOUS.
  std::string secret_name;
  std::string secret_value;
  int64_t overlap_ms = kDefaultSecretOverlapMs;
};

// Reads request.body for the POST endpoint request.path (any other path: only "actor" is read).
// InvalidArgument, with a message naming the field and what it must be, when the body is not a
// JSON object or a field the endpoint needs is missing or wrong.
Result<ApiCommand> ParseApiCommand(const api::Request& request);

}  // namespace turnout::daemon
