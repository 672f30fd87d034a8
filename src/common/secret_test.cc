#include "common/secret.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "common/sha256.h"

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

TEST(KeyedSecretFingerprintTest, DependsOnTheKeyAndMatchesHmacSha256) {
  // RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string f = KeyedSecretFingerprint("key-one", "hunter2");
  EXPECT_EQ(f, "hmac-sha256:" + HmacSha256Hex("key-one", "hunter2").substr(0, 16));
  EXPECT_EQ(f, KeyedSecretFingerprint("key-one", "hunter2"));
  // Without the key, a guess of a low-entropy value cannot be checked against it.
  EXPECT_NE(f, KeyedSecretFingerprint("key-two", "hunter2"));
  EXPECT_NE(f.substr(12), Sha256Hex("hunter2").substr(0, 16));
  EXPECT_NE(f, KeyedSecretFingerprint("key-one", "hunter3"));
}

TEST_F(SecretFileTest, CreatePrivateFileMakesItOnceWithItsModeWhateverTheUmask) {
  const mode_t old = ::umask(0);
  const std::string path = dir_ + "/copy";
  Result<bool> created = CreatePrivateFile(path, "s3cret", 0400);
  ::umask(old);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);
  EXPECT_EQ(ModeOf(path), 0400u);
  Result<bool> again = CreatePrivateFile(path, "other", 0600);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "an existing file is kept";
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "s3cret");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1)
      << "no temporary file is left";
}

TEST_F(SecretFileTest, ReadSecretFileNeverCreatesAndRefusesWhatOthersMayRead) {
  const std::string path = dir_ + "/value";
  EXPECT_EQ(ReadSecretFile(path).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(path)) << "reading never creates";
  std::ofstream(path) << "s3cret\n";
  ::chmod(path.c_str(), 0640);
  Result<std::string> wide = ReadSecretFile(path);
  EXPECT_EQ(wide.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wide.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(wide.status().message().find("s3cret"), std::string::npos);
  ::chmod(path.c_str(), 0400);
  EXPECT_EQ(ReadSecretFile(path).value_or(""), "s3cret");
}

TEST(SecretMatches, OnlyTheSameNonEmptySecretMatches) {
  EXPECT_TRUE(SecretMatches("s3cret", "s3cret"));
  EXPECT_FALSE(SecretMatches("s3creT", "s3cret"));
  EXPECT_FALSE(SecretMatches("s3cre", "s3cret"));    // a prefix
  EXPECT_FALSE(SecretMatches("s3crets", "s3cret"));  // longer
  EXPECT_FALSE(SecretMatches("", ""));               // no secret set: nothing matches
  EXPECT_FALSE(SecretMatches("x", ""));
}

}  // namespace
}  // namespace turnout
