// `turnout init [--file turnout.yaml] [--force]`: writes a commented example service definition
// (service::ExampleServiceConfig) to start from.
// `turnout init --from-compose FILE --service NAME [--file PATH] [--force] [--json]`: writes the
// turnout.yaml of one Docker Compose service (service::ImportComposeService) and prints what
// could not be carried over as warnings (stderr, or the JSON's "warnings").
// Never overwrites an existing file without --force. Returns the process exit code
// (cli::ExitCode): 1 when nothing was written, 2 for a usage error.

#pragma once

#include <string>
#include <vector>

#include "common/flags.h"

namespace turnout::cli {

int RunInitCommand(const std::vector<std::string>& args);
// The flags of `turnout init` (also for the shell completions).
std::vector<FlagSpec> InitFlags();

}  // namespace turnout::cli
