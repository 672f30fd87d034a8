// turnout: zero-downtime deployments. This file is the command table; each command lives in its
// own file and is one line here.

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "backup/backup_cli.h"
#include "cli/args.h"
#include "cli/check_cmd.h"
#include "cli/completion.h"
#include "cli/daemon_cmds.h"
#include "cli/init_cmd.h"
#include "cli/router_cmd.h"
#include "cli/router_flags.h"
#include "db/migrate_cli.h"
#include "rehearsal/rehearse_cli.h"

namespace turnout::cli {
namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const std::vector<std::string>& args);
  // The command's flags and sub-commands, for the shell completions. nullptr for the commands
  // that talk to turnoutd: their table in daemon_cmds.cc holds their flags.
  std::vector<FlagSpec> (*flags)() = nullptr;
  std::vector<std::string> (*subcommands)() = nullptr;
};

int RunHelp(const std::vector<std::string>& args);
int RunCompletion(const std::vector<std::string>& args);
std::vector<std::string> CommandNames();

int RunMigrate(const std::vector<std::string>& args) {
  return db::RunMigrateCommand(args, std::cout, std::cerr);
}

constexpr Command kCommands[] = {
    {"router", "run the traffic router, or drive a running one (switch, weight, status, ...)",
     RunRouterCommand, [] { return RouterRunFlags(); }, RouterSubcommandNames},
    {"init", "write a commented example turnout.yaml (the service definition)", RunInitCommand,
     InitFlags},
    {"check", "validate turnout.yaml without starting anything (every error, with its line)",
     RunCheckCommand, CheckFlags},
    {"up", "start turnoutd for the service in turnout.yaml",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("up", a); }},
    {"down", "stop turnoutd (app instances keep running)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("down", a); }},
    {"deploy", "deploy a version: launch, check, switch traffic, bake (--wait shows it live)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("deploy", a); }},
    {"restart", "replace every instance of the serving version, as a new revision",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("restart", a); }},
    {"scale", "run N instances of the serving version, as a new revision",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("scale", a); }},
    {"set", "`set env K=V`: change the serving version's environment, as a new revision",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("set", a); }},
    {"secrets", "`secrets list`, `rotate NAME`, `drop-previous NAME`: the service's secrets",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("secrets", a); }},
    {"status", "what serves traffic, the deployment in progress, every instance",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("status", a); }},
    {"health-check", "probe every instance's readiness and liveness now",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("health-check", a); }},
    {"switch", "move all traffic to a slot",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("switch", a); }},
    {"rollback", "switch back at once, or redeploy an earlier revision (--to N)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("rollback", a); }},
    {"approve", "let a deployment waiting for approval switch traffic",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("approve", a); }},
    {"abort", "stop the deployment in progress and roll it back",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("abort", a); }},
    {"pause", "stop the clock of a canary step or bake (rules keep watching)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("pause", a); }},
    {"resume", "let a paused deployment's clock run again",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("resume", a); }},
    {"promote", "canary: next step now (--full: all traffic); bake: end it now",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("promote", a); }},
    {"maintenance", "answer users 503 + Retry-After + a page (on), or route again (off)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("maintenance", a); }},
    {"slo", "error budgets and burn rates of the service's objectives",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("slo", a); }},
    {"prune", "remove the images of revisions revisions.on_disk no longer keeps (containers)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("prune", a); }},
    {"history", "the revisions, or one revision's steps",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("history", a); }},
    {"logs", "the end of each instance's log",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("logs", a); }},
    {"audit", "the audit trail, or `audit verify` to check its hash chain",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("audit", a); }},
    {"events", "deployment events as they happen (--follow)",
     [](const std::vector<std::string>& a) { return RunDaemonCommand("events", a); }},
    {"migrate", "apply, roll back, verify and lint PostgreSQL migrations", RunMigrate},
    {"backup", "create, verify, list, restore and prune verified PostgreSQL backups",
     [](const std::vector<std::string>& a) {
       return backup::RunBackupCommand(a, std::cout, std::cerr);
     }},
    {"rehearse", "rehearse pending migrations on a restored backup: locks, rewrites, down files",
     [](const std::vector<std::string>& a) {
       return rehearsal::RunRehearseCommand(a, std::cout, std::cerr);
     }},
    {"completion", "print the shell completion script: turnout completion bash|zsh", RunCompletion,
     [] { return std::vector<FlagSpec>{}; },
     [] {
       return std::vector<std::string>{"bash", "zsh"};
     }},
    {"help", "show help for turnout or for a command (turnout help router)", RunHelp,
     [] { return std::vector<FlagSpec>{}; }, CommandNames},
};

std::vector<std::string> CommandNames() {
  std::vector<std::string> names;
  for (const auto& c : kCommands) names.emplace_back(c.name);
  return names;
}

std::string Usage() {
  std::string out =
      "usage: turnout COMMAND [options]\n\n"
      "turnout switches production traffic between versions of a service without dropping a "
      "request.\n\nCommands:\n";
  for (const auto& c : kCommands) {
    out += "  " + std::string(c.name) + std::string(14 - c.name.size(), ' ') +
           std::string(c.summary) + "\n";
  }
  out +=
      "\nRun `turnout COMMAND --help` for a command's options.\n"
      "Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 turnoutd or the router\n"
      "unreachable.\n";
  return out;
}

int RunHelp(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cout << Usage();
    return kExitOk;
  }
  for (const auto& c : kCommands) {
    if (args[0] == c.name && c.run != RunHelp) return c.run({"--help"});
  }
  std::cerr << "turnout: no command named '" << args[0] << "'\n\n" << Usage();
  return kExitUsage;
}

std::vector<CompletionCommand> CompletionTable() {
  std::vector<CompletionCommand> table;
  for (const auto& c : kCommands) {
    CompletionCommand cc;
    cc.name = std::string(c.name);
    cc.summary = std::string(c.summary);
    cc.flags = c.flags != nullptr ? c.flags() : DaemonCommandFlags(cc.name);
    if (c.subcommands != nullptr) cc.subcommands = c.subcommands();
    table.push_back(std::move(cc));
  }
  return table;
}

int RunCompletion(const std::vector<std::string>& args) {
  constexpr std::string_view kHelp =
      "usage: turnout completion bash|zsh\n\n"
      "Prints the shell completion script of turnout (commands, their flags and\n"
      "sub-commands). The Debian package installs both; by hand:\n"
      "  bash: turnout completion bash > ~/.local/share/bash-completion/completions/turnout\n"
      "  zsh:  turnout completion zsh > \"${fpath[1]}/_turnout\"\n";
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kHelp;
    return kExitOk;
  }
  if (args.size() == 1 && args[0] == "bash") {
    std::cout << BashCompletion(CompletionTable());
    return kExitOk;
  }
  if (args.size() == 1 && args[0] == "zsh") {
    std::cout << ZshCompletion(CompletionTable());
    return kExitOk;
  }
  std::cerr << "turnout completion: expected one shell, bash or zsh\n\n" << kHelp;
  return kExitUsage;
}

}  // namespace

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << Usage();
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << Usage();
    return kExitOk;
  }
  for (const auto& c : kCommands) {
    if (args[0] == c.name) return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  std::cerr << "turnout: unknown command '" << args[0] << "'\n\n" << Usage();
  return kExitUsage;
}

}  // namespace turnout::cli

int main(int argc, char** argv) { return turnout::cli::Main(argc, argv); }
