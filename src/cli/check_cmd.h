// `turnout check [FILE]`: validates a service definition (turnout.yaml) without starting
// anything: the file with its rules, hooks, canary, dependencies and database section
// (service::LoadServiceConfig), then the deployment it describes (what `turnout deploy` would
// build from it). Prints every error as FILE:LINE: message and exits 2 when there is one, 0
// when the file is valid; warnings (a port range that overlaps the kernel's ephemeral range)
// are printed and do not change the exit code. `--json` prints
//   {"file": ..., "ok": bool, "errors": [{"line": N, "message": ...}], "warnings": [...]}.
// FILE defaults to --config, $TURNOUT_CONFIG or ./turnout.yaml.

#pragma once

#include <string>
#include <vector>

#include "common/flags.h"

namespace turnout::cli {

int RunCheckCommand(const std::vector<std::string>& args);
// The flags of `turnout check` (also for the shell completions).
std::vector<FlagSpec> CheckFlags();

}  // namespace turnout::cli
