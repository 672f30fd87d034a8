#include "router/testing/router_harness.h"

#include <cstdlib>

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

void RouterTest::TearDown() {
  StopRouter();
  upstreams_.clear();
}

TestUpstream& RouterTest::AddUpstream(const std::string& name) {
  Result<std::unique_ptr<TestUpstream>> up = TestUpstream::Start(name);
  if (!up.ok()) {
    ADD_FAILURE() << "cannot start upstream " << name << ": " << up.status().ToString();
    std::abort();
  }
  upstreams_.push_back(std::move(up).value());
  return *upstreams_.back();
}

::testing::AssertionResult RouterTest::StartRouter(RouterConfig config, Clock& clock) {
  StopRouter();
  Result<std::unique_ptr<Router>> router = StartTestRouter(std::move(config), clock);
  if (!router.ok()) {
    return ::testing::AssertionFailure() << "router did not start: " << router.status().ToString();
  }
  router_ = std::move(router).value();
  address_ = ListenAddress(*router_);
  if (address_.empty()) return ::testing::AssertionFailure() << "router has no listen address";
  return ::testing::AssertionSuccess();
}

void RouterTest::StopRouter() {
  if (router_) router_->Stop();
  router_.reset();
  address_.clear();
}

RawResponse RouterTest::Get(std::string_view target, std::string_view extra_headers,
                            Millis timeout) {
  return FetchOnce(address_, GetRequest(target, extra_headers), "GET", timeout);
}

RawResponse RouterTest::Fetch(std::string_view raw_request, std::string_view method,
                              Millis timeout) {
  return FetchOnce(address_, raw_request, method, timeout);
}

SlotStatus RouterTest::Slot(const std::string& name) {
  Result<SlotStatus> status = router_->GetSlotStatus(name);
  if (!status.ok()) {
    ADD_FAILURE() << "GetSlotStatus(" << name << "): " << status.status().ToString();
    return SlotStatus{};
  }
  return std::move(status).value();
}

InstanceStatus RouterTest::Instance(const std::string& slot, const std::string& address) {
  for (const InstanceStatus& instance : Slot(slot).instances) {
    if (instance.address == address) return instance;
  }
  ADD_FAILURE() << "slot " << slot << " has no instance " << address;
  return InstanceStatus{};
}

}  // namespace turnout::router::testing
