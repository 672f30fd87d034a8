// Starting a real in-process Router for integration tests.
//
// MakeTestRouterConfig builds a config that listens on 127.0.0.1:0 with the admin API and
// active health checks disabled and two workers (so tests also cover connections spread over
// workers); tests change what they need before starting the router.
//
// RouterTest is a GoogleTest fixture owning the upstreams and the router of one test: the
// router is stopped before the upstreams, so no test leaks threads or sockets into the next.

#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "router/config.h"
#include "router/router.h"
#include "router/testing/raw_client.h"
#include "router/testing/test_upstream.h"

namespace turnout::router::testing {

using SlotList = std::vector<std::pair<std::string, std::vector<std::string>>>;

// Slots in order; `active` is the active slot of the initial policy.
RouterConfig MakeTestRouterConfig(const SlotList& slots, const std::string& active);

// Router::Create + Start. The router listens when this returns.
Result<std::unique_ptr<Router>> StartTestRouter(RouterConfig config,
                                                Clock& clock = SystemClock::Get());

// The first listen address of a started router ("127.0.0.1:<port>").
std::string ListenAddress(const Router& router);

class RouterTest : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts an upstream named `name` (its X-Upstream value), owned by the fixture. A failure to
  // bind 127.0.0.1:0 fails the test and aborts: nothing can be tested without sockets.
  TestUpstream& AddUpstream(const std::string& name);

  // Starts the router (stopping a previous one) and records its address.
  ::testing::AssertionResult StartRouter(RouterConfig config, Clock& clock = SystemClock::Get());
  void StopRouter();

  // One request on a fresh connection.
  RawResponse Get(std::string_view target = "/", std::string_view extra_headers = "",
                  Millis timeout = Millis(5000));
  RawResponse Fetch(std::string_view raw_request, std::string_view method = "GET",
                    Millis timeout = Millis(5000));

  // GetSlotStatus that fails the test on error (returning an empty status).
  SlotStatus Slot(const std::string& name);
  // The status of one instance of a slot by address (default when absent).
  InstanceStatus Instance(const std::string& slot, const std::string& address);

  Router& router() { return *router_; }
  const std::string& address() const { return address_; }

  std::unique_ptr<Router> router_;
  std::string address_;
  std::vector<std::unique_ptr<TestUpstream>> upstreams_;
};

}  // namespace turnout::router::testing
