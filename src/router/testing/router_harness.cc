#include "router/testing/router_harness.h"

namespace turnout::router::testing {

RouterConfig MakeTestRouterConfig(const SlotList& slots, const std::string& active) {
  RouterConfig config;
  config.listen = {"127.0.0.1:0"};
  config.workers = 2;
  config.admin.clear();
  for (const auto& [name, instances] : slots) {
    config.slots.push_back(SlotConfig{name, instances});
  }
  config.policy.active = active;
  config.health.enabled = false;
  return config;
}

Result<std::unique_ptr<Router>> StartTestRouter(RouterConfig config, Clock& clock) {
  TURNOUT_ASSIGN_OR_RETURN(std::unique_ptr<Router> router,
                           Router::Create(std::move(config), clock));
  TURNOUT_RETURN_IF_ERROR(router->Start());
  return router;
}

std::string ListenAddress(const Router& router) {
  std::vector<std::string> addresses = router.ListenAddresses();
  return addresses.empty() ? std::string() : addresses.front();
}

}  // namespace turnout::router::testing
