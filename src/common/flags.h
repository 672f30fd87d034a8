// Command-line flags, parsed the same way by every binary and sub-command (turnout and its
// commands, turnoutd, the demo tools).
//
// A command declares its flags (FlagSpec); Args::Parse splits argv into flags and positional
// arguments. Accepted forms: `--name value`, `--name=value`, boolean `--name`, `-c value` for a
// flag with a short name; `--` ends the
// flags. `-h`/`--help` anywhere sets help(). Usage errors are InvalidArgument, with one wording
// everywhere:
//   unknown flag --x (see --help)
//   unknown flag '-x' (flags are spelled --name; see --help)
//   --x needs a value (VALUE)
//   --x takes no value
//   --x given twice            (a flag that is not `repeatable`)

#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout {

struct FlagSpec {
  std::string name;        // without dashes: "admin"
  std::string value_name;  // "ADDR"; empty for a boolean flag
  std::string help;        // one line
  bool repeatable = false;
  char short_name = '\0';  // also accepted as `-c value` ('\0': none)
};

class Args {
 public:
  static Result<Args> Parse(const std::vector<std::string>& argv,
                            const std::vector<FlagSpec>& specs);
  // For a program that takes flags only: parses argv[1..argc) and refuses any positional
  // argument ("unexpected argument 'x' (see --help)").
  static Result<Args> ParseFlagsOnly(int argc, char** argv, const std::vector<FlagSpec>& specs);

  bool help() const { return help_; }
  bool Has(std::string_view name) const { return values_.count(std::string(name)) > 0; }
  // The flag's value, or `fallback` when absent.
  std::string Get(std::string_view name, std::string fallback = "") const;
  // Every value of a repeatable flag, in order.
  std::vector<std::string> GetAll(std::string_view name) const;
  // The names of the flags given, sorted.
  std::vector<std::string> Names() const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// The value of an environment variable (a flag's default), or `fallback` when unset or empty.
std::string EnvOr(const char* name, std::string fallback);

// "  --admin ADDR   where the router's admin API listens ..." lines for a help text.
std::string FlagsHelp(const std::vector<FlagSpec>& specs);

}  // namespace turnout
