// Shell completion scripts for `turnout`, generated from its command table (cli/main.cc) by
// `turnout completion bash|zsh`; the Debian package installs both.
//
// Completes: the command after `turnout`, each command's flags after a `-`, a command's
// sub-commands (`turnout router sw<TAB>`, `turnout help ro<TAB>`) where it has them; anything
// else falls back to file names.

#pragma once

#include <string>
#include <vector>

#include "common/flags.h"

namespace turnout::cli {

struct CompletionCommand {
  std::string name;
  std::string summary;                   // one line
  std::vector<FlagSpec> flags;           // --help is always offered as well
  std::vector<std::string> subcommands;  // `help`'s are the command names
};

// A bash script defining _turnout and `complete -o default -F _turnout turnout`.
std::string BashCompletion(const std::vector<CompletionCommand>& commands);
// A zsh script for fpath (#compdef turnout), also usable by sourcing it after compinit.
std::string ZshCompletion(const std::vector<CompletionCommand>& commands);

}  // namespace turnout::cli
