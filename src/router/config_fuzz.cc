// libFuzzer target for the router's YAML config reader (ParseRouterConfigYaml). Any text must give
// a config or an error, never a crash, a hang or an exception out of the reader. Besides "no
// sanitizer report", it checks:
//   - an error starts with the file name ("router.yaml:12: ..." or "router.yaml: ...");
//   - an accepted config passes ValidateRouterConfig on its own (the reader adds nothing the
//     validator would refuse), and every address in it splits with ParseHostPort;
//   - the accepted policy survives PolicyToJson -> ParsePolicyJson unchanged.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/fuzz_check.h"
#include "router/config.h"
#include "router/policy.h"

namespace {

using turnout::fuzz::Check;

constexpr std::string_view kFile = "router.yaml";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace turnout::router;
  const turnout::Result<RouterConfig> config = ParseRouterConfigYaml(text, kFile);
  if (!config.ok()) {
    Check(config.status().code() == turnout::StatusCode::kInvalidArgument,
          "error is not InvalidArgument");
    Check(config.status().message().substr(0, kFile.size()) == kFile,
          "error does not name the file");
    return 0;
  }
  Check(ValidateRouterConfig(*config).ok(), "accepted config does not validate");
  Check(!config->listen.empty() && !config->slots.empty(), "accepted without listen or slots");
  for (const auto& listen : config->listen) {
    Check(turnout::ParseHostPort(listen).ok(), "listen address");
  }
  for (const auto& slot : config->slots) {
    for (const auto& instance : slot.instances) {
      Check(turnout::ParseHostPort(instance).ok(), "instance address");
    }
  }
  const auto policy = ParsePolicyJson(PolicyToJson(config->policy, /*include_secret=*/true));
  Check(policy.ok() && *policy == config->policy, "policy does not survive its JSON form");
  return 0;
}
