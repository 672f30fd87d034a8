// Command-line parsing shared by every `turnout` command.
//
// A command declares its flags (FlagSpec); Parse splits argv into flags and positional
// arguments. Accepted forms: `--name value`, `--name=value`, boolean `--name`; `--` ends the
// flags. `-h`/`--help` anywhere sets help(). Unknown flags, missing values and a repeated
// non-repeatable flag are usage errors (InvalidArgument whose message names the flag).
//
// Exit codes of the `turnout` binary (documented in docs/router.md):
//   0 ok, 1 the operation failed, 2 usage error, 3 the router could not be reached.

#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::cli {

enum ExitCode : int { kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3 };

struct FlagSpec {
  std::string name;        // without dashes: "admin"
  std::string value_name;  // "ADDR"; empty for a boolean flag
  std::string help;        // one line
  bool repeatable = false;
};

class Args {
 public:
  static Result<Args> Parse(const std::vector<std::string>& argv,
                            const std::vector<FlagSpec>& specs);

  bool help() const { return help_; }
  bool Has(std::string_view name) const { return values_.count(std::string(name)) > 0; }
  // The flag's value, or `fallback` when absent.
  std::string Get(std::string_view name, std::string fallback = "") const;
  // Every value of a repeatable flag, in order.
  std::vector<std::string> GetAll(std::string_view name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// "  --admin ADDR   where the router's admin API listens ..." lines for a help text.
std::string FlagsHelp(const std::vector<FlagSpec>& specs);

// The value of an environment variable, or `fallback`.
std::string EnvOr(const char* name, std::string fallback);

}  // namespace turnout::cli
