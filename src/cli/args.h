// The `turnout` binary's exit codes. Flags are parsed by common/flags.h (Args, FlagSpec,
// EnvOr), like every other binary's.
//
// Exit codes of the `turnout` binary (documented in docs/router.md):
//   0 ok, 1 the operation failed, 2 usage error, 3 the router could not be reached.

#pragma once

#include "common/flags.h"

namespace turnout::cli {

enum ExitCode : int { kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3 };

}  // namespace turnout::cli
