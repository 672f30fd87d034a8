#include "common/file_util.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/sha256.h"

namespace turnout {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/turnout-file-util-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  int CountEntries() {
    int n = 0;
    DIR* d = ::opendir(dir_.c_str());
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n;
  }
  std::string dir_;
};

TEST_F(FileUtilTest, ReadSmallRegularFileRefusesWhatIsNoSmallRegularFile) {
  const std::string page = dir_ + "/page.html";
  ASSERT_TRUE(WriteFileAtomically(page, "<h1>back soon</h1>").ok());
  Result<std::string> ok = ReadSmallRegularFile(page, "page", 64);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, "<h1>back soon</h1>");
  Result<std::string> big = ReadSmallRegularFile(page, "page", 5);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().message(), "page " + page + " is larger than 5 bytes");
  Result<std::string> dir = ReadSmallRegularFile(dir_, "page", 64);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().message(), "page " + dir_ + " is not a regular file");
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Result<std::string> pipe = ReadSmallRegularFile(fifo, "page", 64);  // returns, never waits
  ASSERT_FALSE(pipe.ok());
  EXPECT_EQ(pipe.status().message(), "page " + fifo + " is not a regular file");
  EXPECT_EQ(ReadSmallRegularFile(dir_ + "/none", "page", 64).status().code(), StatusCode::kIoError);
}

TEST_F(FileUtilTest, ReplacesContentWithExactModeAndNoLeftovers) {
  std::string path = dir_ + "/policy.json";
  ASSERT_TRUE(WriteFileAtomically(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two", 0640).ok());
  EXPECT_EQ(ReadFile(path), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(CountEntries(), 1);
}

TEST_F(FileUtilTest, FailureLeavesTheOldFileAlone) {
  std::string path = dir_ + "/missing-dir/file";
  Status s = WriteFileAtomically(path, "x");
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find("cannot create"), std::string::npos) << s.ToString();
}

TEST(DirectoryOfTest, SplitsPaths) {
  EXPECT_EQ(DirectoryOf("a/b/c"), "a/b");
  EXPECT_EQ(DirectoryOf("/c"), "/");
  EXPECT_EQ(DirectoryOf("c"), ".");
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace turnout
