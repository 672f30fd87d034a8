// Turning a command template into argv, without a shell.
//
// The template is split into words the way a POSIX shell splits a simple command, but nothing
// else of the shell happens: no variables, globs, pipes or redirections. Quoting:
//   'single'    everything literal up to the next '
//   "double"    literal except \" and \\ (a backslash before anything else stays)
//   \x          outside quotes: x, literally
// Then, inside every word, {version} {port} {slot} {instance} are replaced by their values; a
// value never splits a word. Other braces stay as they are (so `${HOME}` reaches `sh -c`).
// Pure functions; thread-safe.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "platform/platform.h"

namespace turnout::platform {

// Splits `command` into words. InvalidArgument for an unterminated quote, a trailing backslash
// or a command with no words.
Result<std::vector<std::string>> SplitCommand(std::string_view command);

// Replaces the four placeholders in `word` with the spec's values.
std::string SubstitutePlaceholders(std::string_view word, const InstanceSpec& spec);

// SplitCommand(spec.command), then SubstitutePlaceholders on every word.
Result<std::vector<std::string>> ExpandCommand(const InstanceSpec& spec);

}  // namespace turnout::platform
