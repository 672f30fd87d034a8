#include "common/secret.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace turnout {
namespace {

namespace fs = std::filesystem;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "turnout-secret-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static unsigned ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0);
    return st.st_mode & 0777;
  }
  std::string dir_;
};

TEST(RandomSecretHexTest, IsLongAndNeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    Result<std::string> s = RandomSecretHex();
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->size(), 64u);
    EXPECT_EQ(s->find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_TRUE(seen.insert(*s).second);
  }
}

TEST_F(SecretFileTest, IsCreated0600EvenWithAPermissiveUmaskAndThenKept) {
  const std::string path = dir_ + "/token";
  const mode_t old = ::umask(0);
  Result<std::string> first = LoadOrCreateSecretFile(path);
  ::umask(old);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(ModeOf(path), 0600u);
  Result<std::string> again = LoadOrCreateSecretFile(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  // No temporary file is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SecretFileTest, AGivenValueIsStoredAndReplacesAnOldOne) {
  const std::string path = dir_ + "/secret";
  ASSERT_TRUE(LoadOrCreateSecretFile(path).ok());
  Result<std::string> given = LoadOrCreateSecretFile(path, "from-the-config");
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(*given, "from-the-config");
  EXPECT_EQ(*LoadOrCreateSecretFile(path), "from-the-config");
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST_F(SecretFileTest, AFileOthersMayReadIsRefused) {
  const std::string path = dir_ + "/token";
  ASSERT_TRUE(LoadOrCreateSecretFile(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  Result<std::string> s = LoadOrCreateSecretFile(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("chmod 600"), std::string::npos);
  EXPECT_NE(s.status().message().find("mode 644"), std::string::npos);
}

TEST_F(SecretFileTest, ASymlinkOrAnEmptyFileIsRefused) {
  const std::string target = dir_ + "/elsewhere";
  std::ofstream(target) << "x\n";
  ::chmod(target.c_str(), 0600);
  const std::string link = dir_ + "/token";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(LoadOrCreateSecretFile(link).status().code(), StatusCode::kFailedPrecondition);
  const std::string empty = dir_ + "/empty";
  std::ofstream(empty).close();
  ::chmod(empty.c_str(), 0600);
  EXPECT_EQ(LoadOrCreateSecretFile(empty).status().code(), StatusCode::kInvalidArgument);
}

TEST(SecretFingerprintTest, IsShortAndDoesNotContainTheSecret) {
  const std::string secret = "0123456789abcdef0123456789abcdef";
  const std::string f = SecretFingerprint(secret);
  EXPECT_EQ(f.rfind("sha256:", 0), 0u);
  EXPECT_EQ(f.size(), 7u + 12u);
  EXPECT_EQ(f.find(secret.substr(0, 8)), std::string::npos);
  EXPECT_EQ(f, SecretFingerprint(secret));
}

TEST(SecretMatches, OnlyTheSameNonEmptySecretMatches) {
  EXPECT_TRUE(SecretMatches("s3cret", "s3cret"));
  EXPECT_FALSE(SecretMatches("s3creT", "s3cret"));
  EXPECT_FALSE(SecretMatches("s3cre", "s3cret"));   // a prefix
  EXPECT_FALSE(SecretMatches("s3crets", "s3cret"));  // longer
  EXPECT_FALSE(SecretMatches("", ""));               // no secret set: nothing matches
  EXPECT_FALSE(SecretMatches("x", ""));
}

}  // namespace
}  // namespace turnout
