// ApiCommand: the body of a POST to turnoutd's API, read and checked before the daemon acts on
// it. Kept apart from the daemon so that it can be tested and fuzzed without one.
//
// Bodies are JSON objects; an empty body is {}. Fields of the endpoints (docs/api.md):
//   every POST       "actor"        string; default "cli" from the Unix socket, "api" from TCP
//   /v1/deploy       "version"      string, required;  "reason" string, optional
//   /v1/rollback     "to_revision"  a revision number >= 1, or null/absent for the previous one
//   /v1/switch       "slot"         string, required
//   /v1/promote      "full"         true or false (null/absent: false)
//   /v1/audit/acknowledge  "reason" string, required (why the log may be trusted again)
//   /v1/stop-instances     "router" true or false: stop the router process too (default false)
//   /v1/maintenance  "enabled"      true or false, required;  "reason" string, optional
// A string field given another type counts as absent (so a non-string "actor" gets the default).
// Fields an endpoint does not use are ignored.
//
// Thread-safety: pure function.

#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "api/api.h"
#include "common/status.h"

namespace turnout::daemon {

struct ApiCommand {
  std::string actor;
  std::string version;  // /v1/deploy: non-empty
  std::string reason;   // /v1/deploy, /v1/maintenance; /v1/audit/acknowledge: non-empty
  std::optional<int64_t> to_revision;  // /v1/rollback: >= 1 when set
  std::string slot;     // /v1/switch: non-empty
  bool full = false;    // /v1/promote
  bool router = false;  // /v1/stop-instances
  bool enabled = false;  // /v1/maintenance
};

// Reads request.body for the POST endpoint request.path (any other path: only "actor" is read).
// InvalidArgument, with a message naming the field and what it must be, when the body is not a
// JSON object or a field the endpoint needs is missing or wrong.
Result<ApiCommand> ParseApiCommand(const api::Request& request);

}  // namespace turnout::daemon
