// Building a RouterConfig from `turnout router` flags (the quick way to run a router; a YAML
// file via --config gives every setting).
//
//   --listen A (repeatable)  --slot NAME=HOST:PORT[,HOST:PORT...] (repeatable)  --active SLOT
//   --admin A  --admin-token T | --admin-token-file F  --admin-host NAME (repeatable)
//   --workers N  --state-file F  --health-path P
//   --no-health-checks  --trusted-proxy CIDR (repeatable)  --config FILE
//   --access-log FILE|-  --access-log-format json|logfmt  --access-log-sample FRACTION
//   --trace-generate
//
// Thread-safety: pure functions.

#pragma once

#include <vector>

#include "cli/args.h"
#include "common/status.h"
#include "router/config.h"

namespace turnout::cli {

// The flags `turnout router` accepts when it runs a router.
const std::vector<FlagSpec>& RouterRunFlags();

// --config FILE loads the YAML (other router flags are then refused, so that nobody wonders
// which one won); otherwise the config is built from the flags with the defaults of
// RouterConfig. --active may be omitted when there is one slot; the admin token comes from
// --admin-token, else --admin-token-file, else $TURNOUT_ADMIN_TOKEN. The result is validated
// (ValidateRouterConfig). Errors are InvalidArgument naming the flag (or the file:line).
Result<router::RouterConfig> RouterConfigFromArgs(const Args& args);

// A token read from a file given with `flag` (e.g. "--token-file"): the file's content without
// the trailing newline `echo` leaves. An unreadable file is IoError; an empty one
// InvalidArgument, each naming the flag and the file.
Result<std::string> ReadTokenFile(const std::string& path, std::string_view flag);

}  // namespace turnout::cli
