// libFuzzer target for the turnout.yaml reader: any text goes to ParseServiceConfig, which must
// answer with a config or an error and never crash, hang or throw. Besides "no sanitizer
// report", it checks:
//   - an error names the file on every line ("turnout.yaml:12: ..." or "turnout.yaml: ...");
//   - an accepted config keeps the invariants the header promises (a name, at least one listen
//     address, at least two unique slots, a port range in order, timeouts within intervals);
//   - the canonical text and hash of an accepted config are the same when the same text is
//     parsed again (no state leaks between parses).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "service/service_config.h"

namespace {

using turnout::fuzz::Check;

constexpr std::string_view kFile = "turnout.yaml";

void CheckError(const turnout::Status& status) {
  Check(status.code() == turnout::StatusCode::kInvalidArgument, "error is not InvalidArgument");
  const std::string& message = status.message();
  Check(!message.empty(), "error without message");
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    const std::string_view line = std::string_view(message).substr(start, end - start);
    // The last line may be the count of problems left out.
    Check(line.substr(0, kFile.size()) == kFile || line.substr(0, 1) == "(",
          "error line does not name the file");
    start = end + 1;
  }
}

void CheckConfig(const turnout::service::ServiceConfig& c) {
  Check(!c.name.empty(), "accepted without a name");
  Check(!c.listen.empty(), "accepted without a listen address");
  Check(c.slots.size() >= 2, "accepted with fewer than two slots");
  Check(std::set<std::string>(c.slots.begin(), c.slots.end()).size() == c.slots.size(),
        "accepted duplicate slots");
  Check(c.platform.ports.first <= c.platform.ports.last, "port range out of order");
  Check(c.platform.replicas >= 1 && c.platform.replicas <= 64, "replicas out of range");
  if (c.platform.is_container()) {
    Check(!c.platform.container.image.empty(), "accepted without platform.image");
    Check(c.platform.container.network != "bridge" || c.platform.container.port != 0,
          "accepted a bridge without platform.port");
  } else {
    Check(!c.platform.command.empty(), "accepted without platform.command");
  }
  Check(c.health.readiness.timeout <= c.health.readiness.interval, "readiness timeout > interval");
  Check(c.health.liveness.timeout <= c.health.liveness.interval, "liveness timeout > interval");
  Check(c.revisions.on_disk >= c.revisions.warm, "revisions.on_disk < warm");
  for (const auto& dep : c.dependencies) Check(dep.timeout <= dep.interval, "dependency timeout");
  uint32_t previous = 0;
  for (const auto& step : c.canary.steps) {
    Check(step.weight_bp > previous && step.weight_bp < 10000, "canary weights not increasing");
    previous = step.weight_bp;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace turnout::service;
  const turnout::Result<ServiceConfig> config = ParseServiceConfig(text, kFile);
  if (!config.ok()) {
    CheckError(config.status());
    return 0;
  }
  CheckConfig(*config);
  const std::string canonical = CanonicalServiceConfig(*config);
  const turnout::Result<ServiceConfig> again = ParseServiceConfig(text, kFile);
  Check(again.ok(), "the same text parsed twice gave different verdicts");
  Check(CanonicalServiceConfig(*again) == canonical, "canonical text differs between parses");
  Check(ConfigHash(*again).size() == 64, "config hash is not 64 hex digits");
  return 0;
}
