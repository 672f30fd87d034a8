// `turnout router ...`: run a router in the foreground, or drive a running one over its admin API.
//
//   turnout router [--config FILE | --listen ... --slot ...]   run (until SIGINT/SIGTERM)
//   turnout router switch SLOT | weight SLOT PERCENT | status | policy [--set FILE]
//                  | drain SLOT [--wait] [--timeout 30s] | metrics [--window 60]
//
// Returns the process exit code (cli::ExitCode). Writes results to stdout, errors to stderr.

#pragma once

#include <string>
#include <vector>

namespace turnout::cli {

int RunRouterCommand(const std::vector<std::string>& args);
// The commands that drive a running router (switch, weight, status, ...), for the completions.
std::vector<std::string> RouterSubcommandNames();

}  // namespace turnout::cli
