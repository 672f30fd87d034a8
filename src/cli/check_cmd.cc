#include "cli/check_cmd.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "daemon/wiring.h"
#include "service/service_config.h"

namespace turnout::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// "path:12: message" -> {12, "message"}; lines without a line number keep line 0.
json ErrorJson(const std::string& path, const std::string& text) {
  json e = {{"line", 0}, {"message", text}};
  const std::string prefix = path + ":";
  if (text.rfind(prefix, 0) == 0) {
    const char* rest = text.c_str() + prefix.size();
    char* end = nullptr;
    const long line = std::strtol(rest, &end, 10);
    if (end != rest && end[0] == ':' && end[1] == ' ') {
      e["line"] = line;
      e["message"] = std::string(end + 2);
    } else {
      e["message"] = std::string(rest[0] == ' ' ? rest + 1 : rest);
    }
  }
  return e;
}

}  // namespace

std::vector<FlagSpec> CheckFlags() {
  return {
      {"config", "FILE",
       "the file to check when FILE is not given (default $TURNOUT_CONFIG or turnout.yaml)"},
      {"json", "", "print JSON for scripts instead of text"},
  };
}

int RunCheckCommand(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = CheckFlags();
  Result<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) {
    std::cerr << "turnout check: " << args.status().message() << "\n"
              << "run `turnout check --help` for usage\n";
    return kExitUsage;
  }
  if (args->help()) {
    std::cout
        << "usage: turnout check [FILE] [--json]\n\n"
           "Validates a service definition without starting anything: every key of\n"
           "turnout.yaml (rules, hooks, canary, dependencies, database included) and the\n"
           "deployment it describes. Prints every error as FILE:LINE: message; warnings\n"
           "(e.g. platform.ports inside the kernel's ephemeral port range) are printed too.\n\n"
           "Options:\n"
        << FlagsHelp(specs)
        << "\nExit codes: 0 valid (warnings allowed), 2 errors found or no such file.\n";
    return kExitOk;
  }
  if (args->positional().size() > 1) {
    std::cerr << "turnout check: expected at most one FILE\n"
              << "run `turnout check --help` for usage\n";
    return kExitUsage;
  }
  const bool as_json = args->Has("json");
  const std::string path = args->positional().empty()
                               ? args->Get("config", EnvOr("TURNOUT_CONFIG", "turnout.yaml"))
                               : args->positional()[0];

  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  Result<service::ServiceConfig> config = service::LoadServiceConfig(path);
  if (!config.ok()) {
    std::istringstream lines(config.status().message());
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) errors.push_back(line);
    }
    if (config.status().code() == StatusCode::kIoError && errors.size() == 1) {
      errors[0] += "; write one with `turnout init`, or name the file: `turnout check FILE`";
    }
    // In the order of the file, whatever order the checks found them in.
    std::stable_sort(errors.begin(), errors.end(), [&](const std::string& a, const std::string& b) {
      return ErrorJson(path, a)["line"].get<long>() < ErrorJson(path, b)["line"].get<long>();
    });
  } else {
    // What `turnout deploy` builds from it: the same checks, with a placeholder version.
    std::error_code ec;
    const std::string dir = fs::absolute(path, ec).parent_path().string();
    const daemon::StatePaths paths = daemon::PathsFor(*config, dir);
    Result<controller::DeploymentSpec> spec =
        daemon::SpecFromConfig(*config, dir, paths, "0.0.0-check");
    if (!spec.ok()) errors.push_back(path + ": " + spec.status().message());
    warnings = daemon::ConfigWarnings(*config);
  }

  if (as_json) {
    json out = {
        {"file", path}, {"ok", errors.empty()}, {"errors", json::array()}, {"warnings", warnings}};
    for (const auto& e : errors) out["errors"].push_back(ErrorJson(path, e));
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& e : errors) std::cerr << e << "\n";
    for (const auto& w : warnings) std::cerr << path << ": warning: " << w << "\n";
    if (errors.empty()) {
      std::cout << path << ": OK, service " << config->name << " (" << config->strategy << ", "
                << config->rules.size() << " rule(s), " << config->hooks.size() << " hook(s)"
                << (config->database.enabled() ? ", database" : "") << ")"
                << (warnings.empty() ? "" : ", " + std::to_string(warnings.size()) + " warning(s)")
                << "\n";
    } else {
      std::cerr << path << ": " << errors.size() << " error(s); nothing was started\n";
    }
  }
  return errors.empty() ? kExitOk : kExitUsage;
}

}  // namespace turnout::cli
