#include "platform/testing/platform_contract.h"

#include <chrono>

namespace turnout::platform::testing {

std::string ContractName(const ::testing::TestParamInfo<PlatformContract>& info) {
  return info.param.name;
}

void PlatformContractTest::TearDown() {
  for (auto& [platform, handle] : launched_) (void)platform->Stop(handle);
}

Platform& PlatformContractTest::Make(int exit_code) {
  platforms_.push_back(GetParam().make(exit_code));
  return *platforms_.back();
}

InstanceSpec PlatformContractTest::Spec(const InstanceAddress& address, int instance,
                                        int exit_code) const {
  InstanceSpec spec;
  spec.service = "web";
  spec.version = "v1";
  spec.slot = "blue";
  spec.instance = instance;
  spec.host = address.host;
  spec.port = address.port;
  spec.grace = std::chrono::seconds(2);
  if (GetParam().complete) GetParam().complete(spec, exit_code);
  return spec;
}

Result<InstanceHandle> PlatformContractTest::LaunchOn(Platform& platform, int instance,
                                                      int exit_code) {
  AddressRequest request;
  request.service = "web";
  request.slot = "blue";
  request.instance = instance;
  TURNOUT_ASSIGN_OR_RETURN(InstanceAddress address, platform.AllocateAddress(request));
  InstanceSpec spec = Spec(address, instance, exit_code);
  TURNOUT_ASSIGN_OR_RETURN(InstanceHandle handle, platform.Launch(spec));
  launched_.emplace_back(&platform, handle);
  return handle;
}

namespace {
constexpr std::chrono::milliseconds kWait = std::chrono::seconds(20);
}  // namespace

TEST_P(PlatformContractTest, AddressesAreNeverInUseAndBecomeTheHandles) {
  Platform& p = Make(-1);
  AddressRequest request;
  request.service = "web";
  request.slot = "blue";
  auto first = p.AllocateAddress(request);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  request.in_use = {first->ToString()};
  for (int i = 0; i < 3; ++i) {
    auto next = p.AllocateAddress(request);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_NE(next->ToString(), first->ToString());
  }
  InstanceSpec spec = Spec(*first, 0, -1);
  auto handle = p.Launch(spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  launched_.emplace_back(&p, *handle);
  EXPECT_EQ(handle->kind, p.Name());
  EXPECT_EQ(handle->address, first->ToString());
  EXPECT_EQ(handle->spec_hash, SpecHash(spec));
}

TEST_P(PlatformContractTest, RunsWaitsAdoptsStopsIdempotentlyAndIsNotRunningAfter) {
  Platform& p = Make(-1);
  auto handle = LaunchOn(p, 0, -1);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  auto status = p.Inspect(*handle);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(status->running()) << status->ToString();
  // Wait returns at its timeout with the instance still running.
  auto waited = p.Wait(*handle, std::chrono::milliseconds(200));
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_TRUE(waited->running()) << waited->ToString();
  auto adopted = p.Adopt(*handle);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_TRUE(adopted->running());
  EXPECT_TRUE(p.Stop(*handle).ok());
  EXPECT_TRUE(p.Stop(*handle).ok()) << "Stop is idempotent";
  auto after = p.Inspect(*handle);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_FALSE(after->running());
}

TEST_P(PlatformContractTest, ExitCodeThroughWaitAndInspect) {
  Platform& p = Make(3);
  auto handle = LaunchOn(p, 0, 3);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  auto ended = p.Wait(*handle, kWait);
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(ended->state, InstanceState::kExited) << ended->ToString();
  EXPECT_EQ(ended->exit_code, 3);
  auto again = p.Inspect(*handle);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, 3);
}

TEST_P(PlatformContractTest, PortARunningInstanceHoldsIsRefusedNamingIt) {
  Platform& p = Make(-1);
  auto first = LaunchOn(p, 0, -1);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Until it listens, the port may still look free to a real platform.
  auto deadline = std::chrono::steady_clock::now() + kWait;
  Result<InstanceHandle> second = InvalidArgument("not launched");
  InstanceSpec spec = Spec({"127.0.0.1", first->port}, 1, -1);
  do {
    second = p.Launch(spec);
    if (second.ok()) {
      (void)p.Stop(*second);
      continue;
    }
  } while (second.ok() && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().ToString();
  EXPECT_NE(second.status().message().find(std::to_string(first->port)), std::string::npos)
      << second.status().message();
}

TEST_P(PlatformContractTest, HandleOfAnotherKindIsRefused) {
  Platform& p = Make(-1);
  InstanceHandle other;
  other.kind = p.Name() == "process" ? "container" : "process";
  other.id = "0123456789ab";
  other.pid = 1;  // a process that is always there: must never be touched
  for (const Status& st : {p.Stop(other), p.Inspect(other).status(), p.Adopt(other).status(),
                           p.Wait(other, std::chrono::milliseconds(10)).status()}) {
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  }
  EXPECT_EQ(p.LogTail(other, 5, 1024), "");
}

}  // namespace turnout::platform::testing
