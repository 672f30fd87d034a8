// RunCommand: run a short-lived command to completion (pre-deploy checks, smoke-test commands,
// hooks, dependency and command checks, pg_dump/pg_restore), with a deadline and its output
// captured.
//
// The command is an argv (no shell unless argv runs one). It runs in its own process group
// (setsid), stdin is /dev/null, stdout and stderr are captured into one buffer in the order they
// were written (the same pipe), keeping the first `max_output_bytes` and counting the rest. Every
// other descriptor of the caller is closed in the child. Environment: the caller's, then
// `env` (later entries win). When the deadline passes, the whole process group gets SIGTERM,
// then SIGKILL after `kill_grace`, and the result says it timed out.
//
// Output is read until the command itself exits (then whatever is already in the pipe): children
// it left running in the background are not waited for, and not killed.
//
// Thread-safety: calls may run in parallel from several threads (waitpid on the exact pid only,
// never -1, so it never reaps another part of the process's children).
// Errors: InvalidArgument for an empty argv; NotFound when the program does not exist or is not
// executable (the message names it); IoError when a pipe or the spawn fails. A command that runs
// and fails (non-zero exit, signal, timeout) is NOT an error: the RunResult says how it ended.

#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::platform {

struct RunSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::string working_dir;        // Default: "" (the caller's working directory)
  std::vector<std::pair<std::string, std::string>> env;  // added to the caller's. Default: none
  std::chrono::milliseconds timeout{60000};              // Default: 60 s
  std::chrono::milliseconds kill_grace{2000};  // SIGTERM -> SIGKILL after a timeout. Default 2 s
  size_t max_output_bytes = 64 * 1024;         // Default: 64 KiB kept; the rest is counted
  // Written to the command's stdin instead of /dev/null when set (then stdin is closed).
  std::optional<std::string> stdin_data;
};

struct RunResult {
  std::optional<int> exit_code;    // it exited: its code
  std::optional<int> term_signal;  // it was killed by a signal: the number
  bool timed_out = false;          // the deadline passed and it was killed
  std::string output;              // stdout+stderr, at most max_output_bytes
  size_t output_dropped = 0;       // bytes beyond max_output_bytes
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds timeout{0};  // the spec's timeout (for Describe)

  bool ok() const { return exit_code && *exit_code == 0 && !timed_out; }
  // "exited with code 3", "killed by signal 9 (Killed)", "timed out after 5 s".
  std::string Describe() const;
  // The last `max_lines` lines of output (for error messages), without a trailing newline.
  std::string Tail(size_t max_lines = 10) const;
};

Result<RunResult> RunCommand(const RunSpec& spec);

// The role of running short-lived commands, for code that must not spawn processes itself (the
// controller's engine runs pre-deploy and smoke-check commands through it). turnoutd wires
// LocalCommandRunner; tests of the engine wire a fake (controller/testing/fake_command_runner.h).
// Same errors as RunCommand.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual Result<RunResult> Run(const RunSpec& spec) = 0;
};

// RunCommand on this machine. Thread-safe.
class LocalCommandRunner final : public CommandRunner {
 public:
  Result<RunResult> Run(const RunSpec& spec) override { return RunCommand(spec); }
};

}  // namespace turnout::platform
