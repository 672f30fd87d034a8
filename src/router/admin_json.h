// The JSON forms of the admin API's replies, shared by AdminServer (writes them) and AdminClient
// (reads them back into the RouterControl types). Layouts are documented in docs/router.md.
//
// The metrics form carries, besides the percentiles humans read, the sparse histogram buckets
// ("histograms") so that a client rebuilds exactly the WindowSnapshot the router computed.
//
// Thread-safety: pure functions. Parsing never throws: a malformed document is an
// InvalidArgument naming the field.

#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "router/router_control.h"

namespace turnout::router {

std::string SlotStatusToJson(const SlotStatus& slot);
std::string RouterStatusToJson(const RouterStatus& status);
std::string WindowMetricsToJson(std::chrono::seconds window,
                                const std::vector<SlotWindowMetrics>& slots);

Result<SlotStatus> ParseSlotStatusJson(std::string_view json);
Result<RouterStatus> ParseRouterStatusJson(std::string_view json);
Result<std::vector<SlotWindowMetrics>> ParseWindowMetricsJson(std::string_view json);

// {"error":"..."}: the body of every admin API error reply.
std::string ErrorJson(std::string_view message);

}  // namespace turnout::router
