#include "router/policy_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace turnout::router {
namespace {

class PolicyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "policy_store_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/policy.json";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::unlink((path_ + ".tmp").c_str());
    ::rmdir(dir_.c_str());
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
  std::string path_;
};

RoutingPolicy FullPolicy() {
  RoutingPolicy policy;
  policy.active = "blue";
  policy.canary = CanaryPolicy{"green", 2550, 987654321};
  policy.sticky.source = StickinessPolicy::Source::kHeader;
  policy.sticky.name = "X-User";
  policy.sticky.cookie_max_age_seconds = 3600;
  policy.override_header.header = "X-Slot";
  policy.override_header.secret = "s3cret";
  return policy;
}

TEST_F(PolicyStoreTest, RoundTripKeepsEveryFieldIncludingTheSecret) {
  ASSERT_TRUE(SavePolicy(path_, FullPolicy()).ok());
  Result<RoutingPolicy> loaded = LoadPolicy(path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, FullPolicy());
}

TEST_F(PolicyStoreTest, FileIsPrivateAndNoTempFileRemains) {
  ASSERT_TRUE(SavePolicy(path_, FullPolicy()).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PolicyStoreTest, SaveReplacesThePreviousPolicy) {
  ASSERT_TRUE(SavePolicy(path_, FullPolicy()).ok());
  RoutingPolicy simple;
  simple.active = "green";
  ASSERT_TRUE(SavePolicy(path_, simple).ok());
  Result<RoutingPolicy> loaded = LoadPolicy(path_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, simple);
}

TEST_F(PolicyStoreTest, MissingFileIsNotFound) {
  Result<RoutingPolicy> loaded = LoadPolicy(path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
}

TEST_F(PolicyStoreTest, CorruptFileIsInvalidArgumentNamingTheFile) {
  for (const std::string& text : {std::string("{\"active\":\"bl"), std::string("not json"),
                                  std::string(""), std::string("{\"active\":42}")}) {
    Write(path_, text);
    Result<RoutingPolicy> loaded = LoadPolicy(path_);
    ASSERT_FALSE(loaded.ok()) << text;
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(loaded.status().message().find(path_), std::string::npos)
        << loaded.status().message();
  }
}

TEST_F(PolicyStoreTest, LeftoverTempFileFromACrashIsIgnored) {
  RoutingPolicy saved;
  saved.active = "blue";
  ASSERT_TRUE(SavePolicy(path_, saved).ok());
  // A crash in the middle of the next save left a torn temp file with a wide mode.
  Write(path_ + ".tmp", "{\"active\":\"gre");
  ::chmod((path_ + ".tmp").c_str(), 0644);
  Result<RoutingPolicy> loaded = LoadPolicy(path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, saved);

  RoutingPolicy next = FullPolicy();
  ASSERT_TRUE(SavePolicy(path_, next).ok());
  loaded = LoadPolicy(path_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, next);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PolicyStoreTest, UnwritableLocationIsAnIoError) {
  Status status = SavePolicy(dir_ + "/no/such/dir/policy.json", FullPolicy());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kIoError);
  EXPECT_NE(status.message().find("no/such/dir"), std::string::npos);
}

TEST_F(PolicyStoreTest, RelativePathWorks) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  Status status = SavePolicy("policy.json", FullPolicy());
  Result<RoutingPolicy> loaded = LoadPolicy("policy.json");
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, FullPolicy());
}

}  // namespace
}  // namespace turnout::router
