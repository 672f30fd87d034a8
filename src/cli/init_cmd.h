// `turnout init [--file turnout.yaml] [--force]`: writes a commented example service definition
// (service::ExampleServiceConfig) to start from. Never overwrites an existing file without
// --force. Returns the process exit code (cli::ExitCode).

#pragma once

#include <string>
#include <vector>

namespace turnout::cli {

int RunInitCommand(const std::vector<std::string>& args);

}  // namespace turnout::cli
