#include "platform/platform.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "platform/testing/fake_platform.h"
#include "platform/testing/platform_contract.h"

namespace turnout::platform {
namespace {

InstanceSpec Spec() {
  InstanceSpec spec;
  spec.service = "web";
  spec.version = "v1.2.3+build";
  spec.slot = "blue";
  spec.instance = 1;
  spec.port = 8081;
  spec.command = "./app --port {port}";
  spec.env = {{"A", "1"}};
  return spec;
}

TEST(SpecHashTest, StableAndSensitiveToWhatRuns) {
  InstanceSpec a = Spec();
  EXPECT_EQ(SpecHash(a), SpecHash(Spec()));
  EXPECT_EQ(SpecHash(a).size(), 16u);
  auto differs = [&](auto change) {
    InstanceSpec b = Spec();
    change(b);
    return SpecHash(b) != SpecHash(a);
  };
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.version = "v1.2.4"; }));
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.port = 8082; }));
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.command += " "; }));
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.env[0].second = "2"; }));
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.grace = std::chrono::seconds(3); }));
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.image = "sha256:0123"; }));
  // Field boundaries count: moving a character between two fields changes the hash.
  EXPECT_TRUE(differs([](InstanceSpec& s) { s.env = {{"A1", ""}}; }));
}

TEST(SpecHashTest, CoversASecretsReferenceNeverItsValue) {
  InstanceSpec a = Spec();
  a.secrets = {SecretRef{"JWT_KEY", "env", 2, "hmac-sha256:00112233aabbccdd", 1,
                         "hmac-sha256:99887766aabbccdd"}};
  a.secret_env = {{"JWT_KEY", "value-one"}};
  InstanceSpec b = a;
  b.secret_env = {{"JWT_KEY", "value-two"}};
  EXPECT_EQ(SpecHash(a), SpecHash(b)) << "the resolved value is never hashed";
  b = a;
  b.secrets[0].fingerprint = "hmac-sha256:00112233aabbccde";
  EXPECT_NE(SpecHash(a), SpecHash(b)) << "a new value is another definition";
  b = a;
  b.secrets[0].previous_generation = 0;
  b.secrets[0].previous_fingerprint.clear();
  EXPECT_NE(SpecHash(a), SpecHash(b)) << "dropping NAME_PREVIOUS is another definition";
  b = a;
  b.secrets.clear();
  b.secret_env.clear();
  EXPECT_EQ(SpecHash(b), SpecHash(Spec())) << "a spec without secrets keeps its hash";
}

TEST(ValidateSpecTest, ASecretNotResolvedIsRefused) {
  InstanceSpec spec = Spec();
  spec.secrets = {SecretRef{"JWT_KEY", "env", 1, "hmac-sha256:00112233aabbccdd", 0, ""}};
  Status s = ValidateSpec(spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("JWT_KEY"), std::string::npos) << s.ToString();
  spec.secret_env = {{"JWT_KEY", "v"}};
  EXPECT_TRUE(ValidateSpec(spec).ok());
}

TEST(ValidateSpecTest, RefusesNamesThatCouldEscape) {
  EXPECT_TRUE(ValidateSpec(Spec()).ok());
  for (const char* bad : {"", "v1;rm -rf", "../x", "a/b", "-v", ".hidden", "v 1", "$(x)"}) {
    InstanceSpec s = Spec();
    s.version = bad;
    Status st = ValidateSpec(s);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("version"), std::string::npos) << st.message();
  }
  InstanceSpec s = Spec();
  s.slot = "blue/../../etc";
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.instance = -1;
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.command = "  \t";
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.stop_signal = 0;
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.env = {{"A=B", "1"}};
  EXPECT_FALSE(ValidateSpec(s).ok());
}

TEST(HandleEncodingTest, RoundTrips) {
  InstanceHandle h;
  h.id = "web-blue-0-4242";
  h.pid = 4242;
  h.start_time_ticks = 123456789012ULL;
  h.boot_id = "eb49ae87-ac3b-4f7e-8ea3-0d417f9cb0a7";
  h.port = 8080;
  h.spec_hash = "0123456789abcdef";
  h.stop_signal = SIGINT;
  h.grace = std::chrono::milliseconds(2500);
  h.log_path = "logs/web-blue-0.log";
  h.address = "127.0.0.1:8080";
  Result<InstanceHandle> back = DecodeHandle(EncodeHandle(h));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(back->kind, "process");
}

// State databases in the field hold handles written before the kind and the address existed.
TEST(HandleEncodingTest, AHandleOfTheOldShapeDecodesAsAProcessOnLoopback) {
  const char* old_json =
      R"({"id":"web-blue-0-4242","pid":4242,"start_time_ticks":123456,"boot_id":"b-1",)"
      R"("port":8081,"spec_hash":"0123456789abcdef","stop_signal":15,"grace_ms":10000,)"
      R"("log_path":"logs/web-blue-0.log"})";
  Result<InstanceHandle> h = DecodeHandle(old_json);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->kind, "process");
  EXPECT_EQ(h->address, "127.0.0.1:8081");
  EXPECT_EQ(h->pid, 4242);
  EXPECT_EQ(h->start_time_ticks, 123456u);
  EXPECT_EQ(h->boot_id, "b-1");
}

TEST(HandleEncodingTest, AHandleOfAnotherKindDecodesWithoutProcessFieldsAndIsRefusedByKind) {
  Result<InstanceHandle> h =
      DecodeHandle(R"({"kind":"container","id":"4f1c2a9b","address":"127.0.0.1:32768",)"
                   R"("spec_hash":"00","stop_signal":15,"grace_ms":1000})");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->kind, "container");
  EXPECT_EQ(h->pid, 0);
  EXPECT_TRUE(CheckHandleKind(*h, "container").ok());
  Status refused = CheckHandleKind(*h, "process");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("instance 4f1c2a9b was launched by the container platform; "
                                   "this turnoutd runs the process platform"),
            std::string::npos)
      << refused.ToString();
  // A process handle must still name its process completely.
  EXPECT_EQ(DecodeHandle(R"({"kind":"process","id":"x","address":"127.0.0.1:1"})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeHandle(R"({"kind":"","id":"x"})").status().code(), StatusCode::kInvalidArgument);
}

TEST(HandleEncodingTest, RefusesBrokenText) {
  for (const char* bad : {"", "{", "[]", "{\"id\":\"x\"}",
                          R"({"id":"x","pid":"12","start_time_ticks":1,"boot_id":"b","port":1,
                              "spec_hash":"h","stop_signal":15,"grace_ms":1})",
                          R"({"id":"x","pid":12,"start_time_ticks":1,"boot_id":"b","port":1,
                              "spec_hash":"h","stop_signal":99,"grace_ms":1})",
                          R"({"id":"x","pid":12,"start_time_ticks":1,"boot_id":"b","port":70000,
                              "spec_hash":"h","stop_signal":15,"grace_ms":1})"}) {
    Result<InstanceHandle> h = DecodeHandle(bad);
    EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(FreeAddressNotInTest, NeverHandsOutAnAddressInUse) {
  Result<InstanceAddress> first = FreeAddressNotIn("127.0.0.1", {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->host, "127.0.0.1");
  EXPECT_NE(first->port, 0);
  for (int i = 0; i < 5; ++i) {
    Result<InstanceAddress> next = FreeAddressNotIn("127.0.0.1", {first->ToString()});
    ASSERT_TRUE(next.ok());
    EXPECT_NE(next->port, first->port);
  }
  EXPECT_EQ(FreeAddressNotIn("not-an-ip", {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(InstanceStatusTest, Describes) {
  EXPECT_EQ((InstanceStatus{InstanceState::kExited, 3, std::nullopt}).ToString(),
            "exited with code 3");
  EXPECT_EQ((InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL}).ToString(),
            "killed by signal 9 (Killed)");
  EXPECT_EQ((InstanceStatus{InstanceState::kPidReused, std::nullopt, std::nullopt}).ToString(),
            "pid reused");
  EXPECT_EQ((InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL, /*oom_killed=*/true})
                .ToString(),
            "killed: out of memory");
}

// The Platform contract (platform/testing/platform_contract.h), kept by the fake too.
const ManualClock& ContractClock() {
  static const ManualClock clock;
  return clock;
}

using testing::PlatformContractTest;
INSTANTIATE_TEST_SUITE_P(
    Fake, PlatformContractTest,
    ::testing::Values(testing::PlatformContract{
        .name = "FakePlatform",
        .make = [](int exit_code) -> std::unique_ptr<Platform> {
          auto p = std::make_unique<testing::FakePlatform>(ContractClock());
          if (exit_code >= 0) {
            p->set_on_launch([exit_code](testing::FakeInstance& i) {
              i.status = InstanceStatus{InstanceState::kExited, exit_code, std::nullopt};
            });
          }
          return p;
        },
        .complete = [](InstanceSpec& spec, int) { spec.command = "./app"; }}),
    testing::ContractName);

}  // namespace
}  // namespace turnout::platform
