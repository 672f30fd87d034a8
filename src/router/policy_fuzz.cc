// libFuzzer target for the control-surface parsers that see bytes from the network (the admin
// API's request bodies): policy JSON, weights and host:port lists. Properties checked besides
// "no crash, no sanitizer report": an accepted policy survives PolicyToJson -> ParsePolicyJson
// unchanged, and an accepted weight is within 0..10000 basis points.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/duration.h"
#include "router/config.h"
#include "router/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  using namespace turnout::router;

  auto policy = ParsePolicyJson(input);
  if (policy.ok()) {
    auto again = ParsePolicyJson(PolicyToJson(*policy, /*include_secret=*/true));
    if (!again.ok() || !(*again == *policy)) std::abort();
    (void)ValidatePolicy(*policy, {"blue", "green"});
  }
  auto weight = ParseWeightPercent(input);
  if (weight.ok() && *weight > 10000) std::abort();
  (void)turnout::ParseHostPort(input);
  (void)turnout::ParseDuration(input);
  (void)StickyBucket(input, size);
  return 0;
}
