// Starting a real in-process Router for integration tests.
//
// MakeTestRouterConfig builds a config that listens on 127.0.0.1:0 with the admin API and
// active health checks disabled and two workers (so tests also cover connections spread over
// workers); tests change what they need before StartTestRouter.

#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "router/config.h"
#include "router/router.h"

namespace turnout::router::testing {

using SlotList = std::vector<std::pair<std::string, std::vector<std::string>>>;

// Slots in order; `active` is the active slot of the initial policy.
RouterConfig MakeTestRouterConfig(const SlotList& slots, const std::string& active);

// Router::Create + Start. The router listens when this returns.
Result<std::unique_ptr<Router>> StartTestRouter(RouterConfig config,
                                                Clock& clock = SystemClock::Get());

// The first listen address of a started router ("127.0.0.1:<port>").
std::string ListenAddress(const Router& router);

}  // namespace turnout::router::testing
