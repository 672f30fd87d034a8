// Persistence of the active routing policy, so a restarted router serves what it served before.
//
// The file holds PolicyToJson(policy, include_secret=true): it contains the override secret, so
// it is created with mode 0600. Writes are crash-safe (common/file_util.h WriteFileAtomically):
// a crash leaves either the old or the new file, never a torn one; a temporary file a crash
// left behind ("<path>.tmp.*") is never read.
//
// Thread-safety: reentrant; concurrent SavePolicy calls on one path are safe (the last wins).

#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "router/policy.h"

namespace turnout::router {

// Writes `policy` to `path` atomically (see above). IoError naming the path on failure.
Status SavePolicy(const std::string& path, const RoutingPolicy& policy);

// Reads a policy saved by SavePolicy. NotFound when the file does not exist; InvalidArgument
// naming the file when it is not a valid policy; IoError when it cannot be read. The policy is
// not validated against slot names here (the router does that with its own slots).
Result<RoutingPolicy> LoadPolicy(const std::string& path);

// The override secret file (RouterConfig::override_secret_file): the secret and a newline, mode
// 0600, written atomically like the policy. Load: NotFound when absent; InvalidArgument naming
// the file when it is not a usable secret (visible ASCII without spaces; a trailing newline is
// fine).
Status SaveOverrideSecret(const std::string& path, std::string_view secret);
Result<std::string> LoadOverrideSecret(const std::string& path);

}  // namespace turnout::router
