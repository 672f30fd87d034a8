// The routing policy survives a restart through the state file; a bad file never stops the
// router from starting with its configured policy.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "router/policy_store.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using testing::RawResponse;
using testing::TestUpstream;

class RouterPersistenceTest : public testing::RouterTest {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "router_persistence_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    state_file_ = dir_ + "/policy.json";
    blue_ = &AddUpstream("blue");
    green_ = &AddUpstream("green");
  }
  void TearDown() override {
    RouterTest::TearDown();
    ::unlink(state_file_.c_str());
    ::unlink((state_file_ + ".tmp").c_str());
    ::unlink((state_file_ + ".override-secret").c_str());
    ::unlink((dir_ + "/secret").c_str());
    ::rmdir(dir_.c_str());
  }

  RouterConfig Config() {
    RouterConfig config = testing::MakeTestRouterConfig(
        {{"blue", {blue_->address()}}, {"green", {green_->address()}}}, "blue");
    config.state_file = state_file_;
    return config;
  }

  std::string dir_;
  std::string state_file_;
  TestUpstream* blue_ = nullptr;
  TestUpstream* green_ = nullptr;
};

TEST_F(RouterPersistenceTest, RestartedRouterServesThePersistedPolicy) {
  ASSERT_TRUE(StartRouter(Config()));
  RoutingPolicy policy;
  policy.active = "green";
  policy.canary = CanaryPolicy{"blue", 1234, 77};
  policy.override_header.secret = "keep-me";
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  StopRouter();

  struct stat st;
  ASSERT_EQ(::stat(state_file_.c_str(), &st), 0) << "no state file written";
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_TRUE(StartRouter(Config()));  // the config still says blue
  Result<RoutingPolicy> restored = router().GetPolicy();
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(*restored, policy);
  RawResponse r = Get("/", "Cookie: turnout_sticky=someone\r\n");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream"), ChoosesCanary(*policy.canary, "someone") ? "blue" : "green");
  // The secret came back too: overrides need it.
  RawResponse overridden = Get("/", "X-Turnout-Slot: blue\r\nX-Turnout-Secret: keep-me\r\n");
  ASSERT_TRUE(overridden.complete());
  EXPECT_EQ(overridden.Header("X-Upstream"), "blue");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(RouterPersistenceTest, AGeneratedSecretIsWrittenOwnerOnlyNextToTheStateFileAndKept) {
  ASSERT_TRUE(StartRouter(Config()));
  const std::string secret = router().GetPolicy()->override_header.secret;
  ASSERT_FALSE(secret.empty());
  const std::string file = state_file_ + ".override-secret";
  EXPECT_EQ(ReadFile(file), secret + "\n");
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(router().PrometheusText().find(secret), std::string::npos);
  StopRouter();

  ASSERT_TRUE(StartRouter(Config()));  // nothing persisted but the secret file
  EXPECT_EQ(router().GetPolicy()->override_header.secret, secret) << "a restart keeps it";
  RawResponse r = Get("/", "X-Turnout-Slot: green\r\nX-Turnout-Secret: " + secret + "\r\n");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream"), "green");

  // A rotated secret replaces the file's.
  RoutingPolicy rotated = *router().GetPolicy();
  rotated.override_header.secret = "rotated-secret";
  ASSERT_TRUE(router().SetPolicy(rotated).ok());
  EXPECT_EQ(ReadFile(file), "rotated-secret\n");
}

TEST_F(RouterPersistenceTest, AnExplicitSecretFileIsUsedAndAConfiguredSecretIsWrittenToIt) {
  RouterConfig config = Config();
  config.override_secret_file = dir_ + "/secret";
  {
    std::ofstream out(config.override_secret_file);
    out << "from-the-file\n";
  }
  ASSERT_TRUE(StartRouter(config));
  EXPECT_EQ(router().GetPolicy()->override_header.secret, "from-the-file");
  StopRouter();
  config.policy.override_header.secret = "from-the-config";
  ASSERT_TRUE(StartRouter(config));
  EXPECT_EQ(router().GetPolicy()->override_header.secret, "from-the-config");
  EXPECT_EQ(ReadFile(config.override_secret_file), "from-the-config\n");
}

TEST_F(RouterPersistenceTest, AConfiguredSecretWinsOverThePersistedOne) {
  ASSERT_TRUE(StartRouter(Config()));
  RoutingPolicy policy;
  policy.active = "green";
  policy.override_header.secret = "persisted";
  ASSERT_TRUE(router().SetPolicy(policy).ok());
  StopRouter();
  RouterConfig config = Config();
  config.policy.override_header.secret = "handed-at-start";
  ASSERT_TRUE(StartRouter(config));
  EXPECT_EQ(router().GetPolicy()->active, "green") << "the rest of the persisted policy stays";
  EXPECT_EQ(router().GetPolicy()->override_header.secret, "handed-at-start");
}

TEST_F(RouterPersistenceTest, EverySwitchIsPersistedAtOnce) {
  ASSERT_TRUE(StartRouter(Config()));
  ASSERT_TRUE(router().Switch("green").ok());
  Result<RoutingPolicy> on_disk = LoadPolicy(state_file_);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status().ToString();
  EXPECT_EQ(on_disk->active, "green");
  ASSERT_TRUE(router().Switch("blue").ok());
  on_disk = LoadPolicy(state_file_);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(on_disk->active, "blue");
}

TEST_F(RouterPersistenceTest, CorruptStateFileFallsBackToTheConfiguredPolicy) {
  std::ofstream(state_file_) << "{\"active\": \"gre";
  ASSERT_TRUE(StartRouter(Config()));
  Result<RoutingPolicy> policy = router().GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "blue");
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.Header("X-Upstream"), "blue");
}

TEST_F(RouterPersistenceTest, PersistedPolicyForUnknownSlotFallsBack) {
  RoutingPolicy stale;
  stale.active = "purple";  // a slot this router no longer has
  ASSERT_TRUE(SavePolicy(state_file_, stale).ok());
  ASSERT_TRUE(StartRouter(Config()));
  Result<RoutingPolicy> policy = router().GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "blue");
}

TEST_F(RouterPersistenceTest, LeftoverTempFileDoesNotMatter) {
  RoutingPolicy saved;
  saved.active = "green";
  ASSERT_TRUE(SavePolicy(state_file_, saved).ok());
  std::ofstream(state_file_ + ".tmp") << "{\"active\":\"blu";  // a crash mid-save
  ASSERT_TRUE(StartRouter(Config()));
  Result<RoutingPolicy> policy = router().GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "green");
  ASSERT_TRUE(router().Switch("blue").ok());
  Result<RoutingPolicy> on_disk = LoadPolicy(state_file_);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(on_disk->active, "blue");
}

}  // namespace
}  // namespace turnout::router
