#include "cli/init_cmd.h"

#include <sys/stat.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "common/file_util.h"
#include "service/compose_import.h"
#include "service/service_config.h"

namespace turnout::cli {
namespace {

using nlohmann::json;

// The text to write and what to say about it, or the exit code of a failure already reported.
struct Draft {
  std::string text;
  std::vector<std::string> warnings;
  std::string what;  // "a commented service definition for the demo app"
};

int Fail(bool as_json, const std::string& message) {
  if (as_json) {
    std::cout << json{{"ok", false}, {"error", message}}.dump(2) << "\n";
  } else {
    std::cerr << "turnout init: " << message << "\n";
  }
  return kExitFailed;
}

}  // namespace

std::vector<FlagSpec> InitFlags() {
  return {
      {"file", "PATH", "where to write the service definition (default: turnout.yaml)"},
      {"force", "", "overwrite the file if it exists"},
      {"from-compose", "FILE", "start from a service of this Docker Compose file"},
      {"service", "NAME", "the compose service to start from (with --from-compose)"},
      {"json", "", "print JSON for scripts instead of text"},
  };
}

int RunInitCommand(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = InitFlags();
  Result<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) {
    std::cerr << "turnout init: " << args.status().message() << "\n"
              << "run `turnout init --help` for usage\n";
    return kExitUsage;
  }
  if (args->help()) {
    std::cout << "usage: turnout init [--file PATH] [--force]\n"
                 "       turnout init --from-compose FILE --service NAME [--file PATH] [--force] "
                 "[--json]\n\n"
                 "Writes a commented example turnout.yaml (the service definition) for the demo\n"
                 "app; edit it for your service. Every key is explained in the file and in\n"
                 "docs/turnout-yaml.md.\n\n"
                 "With --from-compose, writes a turnout.yaml for the container platform from one\n"
                 "service of a Docker Compose file: image (its tag becomes {version}), port,\n"
                 "command, environment, env_file, bind mounts, limits, user, stop signal and\n"
                 "grace, and the health path of a curl or wget healthcheck. What cannot be\n"
                 "carried over (build, depends_on, networks, named volumes, secrets, ports after\n"
                 "the first, ${VAR} interpolation, ...) is listed as warnings, each with its\n"
                 "line, and as comments at the end of the file. See docs/containers.md.\n\n"
                 "Options:\n"
              << FlagsHelp(specs)
              << "\nExit codes: 0 written (warnings allowed), 1 not written (the file exists,\n"
                 "the compose file cannot be read or has no such service), 2 usage error.\n";
    return kExitOk;
  }
  if (!args->positional().empty()) {
    std::cerr << "turnout init: unexpected argument '" << args->positional()[0]
              << "'; use --file PATH to choose where to write\n";
    return kExitUsage;
  }
  const bool from_compose = args->Has("from-compose");
  if (from_compose != args->Has("service")) {
    std::cerr << "turnout init: --from-compose FILE and --service NAME go together\n"
              << "run `turnout init --help` for usage\n";
    return kExitUsage;
  }
  const bool as_json = args->Has("json");
  const std::string path = args->Get("file", "turnout.yaml");
  struct stat st {};
  if (!args->Has("force") && ::stat(path.c_str(), &st) == 0) {
    return Fail(as_json, path +
                             " exists already; pass --force to overwrite it, or --file to "
                             "write elsewhere");
  }

  Draft draft;
  if (from_compose) {
    const std::string compose = args->Get("from-compose");
    const std::string service = args->Get("service");
    Result<std::string> text = ReadFileToString(compose, "compose file");
    if (!text.ok()) return Fail(as_json, text.status().message());
    Result<service::ComposeImport> imported =
        service::ImportComposeService(*text, service, compose);
    if (!imported.ok()) return Fail(as_json, imported.status().message());
    draft.text = std::move(imported->yaml);
    draft.warnings = std::move(imported->warnings);
    draft.what = "the compose service " + service + " on the container platform";
  } else {
    draft.text = service::ExampleServiceConfig();
    draft.what = "a commented service definition for the demo app";
  }

  // A file made from a compose service carries its environment, which often holds credentials
  // (database passwords, API keys): only its owner may read it.
  Status written = WriteFileAtomically(path, draft.text, from_compose ? 0600 : 0644);
  if (!written.ok()) return Fail(as_json, written.message());
  if (as_json) {
    std::cout << json{{"ok", true}, {"file", path}, {"warnings", draft.warnings}}.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& w : draft.warnings) std::cerr << "warning: " << w << "\n";
  std::cout << "wrote " << path << ": " << draft.what
            << (draft.warnings.empty()
                    ? ""
                    : " (" + std::to_string(draft.warnings.size()) +
                          " thing(s) not carried over, listed above and at the end of the file)")
            << "; edit it for your service and check it with `turnout check " << path << "`\n";
  return kExitOk;
}

}  // namespace turnout::cli
