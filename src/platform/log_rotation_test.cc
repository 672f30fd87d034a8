#include "platform/log_rotation.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace turnout::platform {
namespace {

namespace fs = std::filesystem;

class LogRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "turnout-rotation-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/web-blue-0.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void Append(const std::string& text) {
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    out << text;
  }

  std::string dir_;
  std::string path_;
};

TEST(RotationRenamesTest, OldestFirst) {
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(RotationRenames("a.log", 3),
              ::testing::ElementsAre(P{"a.log.2", "a.log.3"}, P{"a.log.1", "a.log.2"}));
  EXPECT_TRUE(RotationRenames("a.log", 1).empty());
}

TEST_F(LogRotationTest, NothingToDoWhenMissingOrSmall) {
  LogRotationOptions opts{.max_bytes = 10, .keep = 2};
  EXPECT_FALSE(*RotateLogIfNeeded(path_, opts));
  Append("0123456789");  // exactly the limit: not larger
  EXPECT_FALSE(*RotateLogIfNeeded(path_, opts));
  EXPECT_EQ(Read(path_), "0123456789");
  EXPECT_FALSE(fs::exists(path_ + ".1"));
}

TEST_F(LogRotationTest, KeepsNOldFilesNewestFirst) {
  LogRotationOptions opts{.max_bytes = 10, .keep = 2};
  for (const char* round : {"first-round\n", "second-round\n", "third-round\n"}) {
    Append(round);
    Result<bool> rotated = RotateLogIfNeeded(path_, opts);
    ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
    EXPECT_TRUE(*rotated);
    EXPECT_EQ(fs::file_size(path_), 0u);
  }
  EXPECT_EQ(Read(path_ + ".1"), "third-round\n");
  EXPECT_EQ(Read(path_ + ".2"), "second-round\n");
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_FALSE(fs::exists(path_ + ".1.tmp"));
}

TEST_F(LogRotationTest, KeepZeroOnlyTruncates) {
  Append("a long enough line\n");
  EXPECT_TRUE(*RotateLogIfNeeded(path_, {.max_bytes = 4, .keep = 0}));
  EXPECT_EQ(fs::file_size(path_), 0u);
  EXPECT_FALSE(fs::exists(path_ + ".1"));
}

// The writer keeps its O_APPEND descriptor across the rotation, as an app does with its stdout:
// its next write lands at the start of the truncated file, with no hole before it.
TEST_F(LogRotationTest, AppendingWriterContinuesAtTheNewEnd) {
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0);
  std::string before(1000, 'x');
  ASSERT_EQ(::write(fd, before.data(), before.size()), static_cast<ssize_t>(before.size()));
  EXPECT_TRUE(*RotateLogIfNeeded(path_, {.max_bytes = 100, .keep = 1}));
  ASSERT_EQ(::write(fd, "after\n", 6), 6);
  ::close(fd);
  EXPECT_EQ(Read(path_), "after\n");
  EXPECT_EQ(Read(path_ + ".1"), before);
}

TEST_F(LogRotationTest, ReportsIoErrors) {
  Append("some bytes that are over the limit\n");
  // keep=1 must write <path>.1; a directory in its way makes the rename fail.
  fs::create_directory(path_ + ".1.tmp");
  fs::create_directory(path_ + ".1.tmp/blocker");
  Result<bool> r = RotateLogIfNeeded(path_, {.max_bytes = 4, .keep = 1});
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  // The live file is not truncated when its copy could not be made.
  EXPECT_EQ(Read(path_), "some bytes that are over the limit\n");
}

}  // namespace
}  // namespace turnout::platform
