// The `turnout` commands that talk to turnoutd (or start it): up, down, deploy, status,
// health-check, switch, rollback, approve, abort, history, logs, audit, events.
//
// Every one finds the daemon the same way: --endpoint URL (http://host:port, with --token or
// $TURNOUT_TOKEN), else --socket PATH or $TURNOUT_SOCKET, else the socket in the state directory
// of the turnout.yaml given by --config (default ./turnout.yaml, or $TURNOUT_CONFIG).
// Output is for people by default (with live progress where something takes time) and the
// daemon's JSON with --json. Exit codes: 0 ok, 1 the operation failed (a deployment rolled back,
// a check failed, the daemon refused), 2 usage error, 3 turnoutd could not be reached.

#pragma once

#include <string>
#include <vector>

#include "common/flags.h"

namespace turnout::cli {

// `args` starts after the command's own name; `command` is that name ("deploy").
int RunDaemonCommand(const std::string& command, const std::vector<std::string>& args);
// The flags `command` takes (its own and those that find turnoutd), as its --help lists them;
// empty for a command that is not one of these.
std::vector<FlagSpec> DaemonCommandFlags(const std::string& command);

}  // namespace turnout::cli
