#include "cli/init_cmd.h"

#include <sys/stat.h>

#include <iostream>

#include "cli/args.h"
#include "common/file_util.h"
#include "service/service_config.h"

namespace turnout::cli {

int RunInitCommand(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"file", "PATH", "where to write the service definition (default: turnout.yaml)"},
      {"force", "", "overwrite the file if it exists"},
  };
  Result<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) {
    std::cerr << "turnout init: " << args.status().message() << "\n"
              << "run `turnout init --help` for usage\n";
    return kExitUsage;
  }
  if (args->help()) {
    std::cout << "usage: turnout init [--file PATH] [--force]\n\n"
                 "Writes a commented example turnout.yaml (the service definition) for the demo\n"
                 "app; edit it for your service. Every key is explained in the file and in\n"
                 "docs/turnout-yaml.md.\n\nOptions:\n"
              << FlagsHelp(specs);
    return kExitOk;
  }
  if (!args->positional().empty()) {
    std::cerr << "turnout init: unexpected argument '" << args->positional()[0]
              << "'; use --file PATH to choose where to write\n";
    return kExitUsage;
  }
  const std::string path = args->Get("file", "turnout.yaml");
  struct stat st {};
  if (!args->Has("force") && ::stat(path.c_str(), &st) == 0) {
    std::cerr << "turnout init: " << path
              << " exists already; pass --force to overwrite it, or --file to write elsewhere\n";
    return kExitFailed;
  }
  Status written = WriteFileAtomically(path, service::ExampleServiceConfig(), 0644);
  if (!written.ok()) {
    std::cerr << "turnout init: " << written.message() << "\n";
    return kExitFailed;
  }
  std::cout << "wrote " << path
            << ": a commented service definition for the demo app; edit it for your service\n";
  return kExitOk;
}

}  // namespace turnout::cli
