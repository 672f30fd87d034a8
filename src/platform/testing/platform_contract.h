// The contract every Platform implementation keeps, as one parameterised GoogleTest suite
// (PlatformContractTest) run against each of them: FakePlatform (platform_test), ProcessPlatform
// (platform_process_test) and ContainerPlatform (container_platform_test). A test binary adds
// platform_contract.cc to its sources and instantiates the suite with its implementation:
//
//   INSTANTIATE_TEST_SUITE_P(Process, PlatformContractTest,
//                            ::testing::Values(PlatformContract{...}), ContractName);
//
// What it checks: addresses are never in `in_use` and become the handle's; the handle carries
// the platform's kind; a serving instance is running, still running when Wait's timeout passes,
// adopted as running, stops (twice: idempotent) and is not running after; an instance that exits
// with a code reports it through Wait and Inspect; the port a running instance holds is refused to
// a second one with FailedPrecondition naming it; Adopt of a running instance says it runs; a
// handle of another kind is refused by every method that takes one (and LogTail gives "").

#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "platform/platform.h"

namespace turnout::platform::testing {

struct PlatformContract {
  std::string name;  // the implementation, for test names: [A-Za-z0-9_]
  // A platform whose instances serve on their port until stopped (exit_code < 0), or exit with
  // `exit_code` at once. Called once per test.
  std::function<std::unique_ptr<Platform>(int exit_code)> make;
  // Completes a spec the suite filled (service "web", version "v1", slot "blue", the instance,
  // host and port) with what that platform needs (a command, a log dir; an exit code as for
  // `make`). Default: nothing to add.
  std::function<void(InstanceSpec& spec, int exit_code)> complete;
};

std::string ContractName(const ::testing::TestParamInfo<PlatformContract>& info);

class PlatformContractTest : public ::testing::TestWithParam<PlatformContract> {
 protected:
  void TearDown() override;
  // The completed spec of instance `instance` at `address`.
  InstanceSpec Spec(const InstanceAddress& address, int instance, int exit_code) const;
  // Allocates an address on `platform` and launches instance `instance` there (exit code as for
  // PlatformContract::make); remembered for clean-up.
  Result<InstanceHandle> LaunchOn(Platform& platform, int instance, int exit_code);

  std::vector<std::pair<Platform*, InstanceHandle>> launched_;
  std::vector<std::unique_ptr<Platform>> platforms_;
  Platform& Make(int exit_code);
};

}  // namespace turnout::platform::testing
