#include "platform/log_tail.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace turnout::platform {
namespace {

TEST(LogTail, LastLines) {
  EXPECT_EQ(LastLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\nc", 5), "a\nb\nc");
  EXPECT_EQ(LastLines("a\nb\n\n", 1), "b");
  EXPECT_EQ(LastLines("", 3), "");
  EXPECT_EQ(LastLines("a\nb", 0), "");
}

TEST(LogTail, ReadsAtMostTheLastBytesAndWholeLines) {
  char tmpl[] = "/tmp/turnout-tail-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(tmpl);
    for (int i = 0; i < 100; ++i) out << "line " << i << "\n";
    out << "error: bind 127.0.0.1:20001: Address already in use\n";
  }
  EXPECT_EQ(ReadLogTail(tmpl, 2, 2048),
            "line 99\nerror: bind 127.0.0.1:20001: Address already in use");
  // 60 and 66 bytes start inside "line 99" and "line 98": the cut line is dropped.
  EXPECT_EQ(ReadLogTail(tmpl, 10, 60), "error: bind 127.0.0.1:20001: Address already in use");
  EXPECT_EQ(ReadLogTail(tmpl, 10, 66),
            "line 99\nerror: bind 127.0.0.1:20001: Address already in use");
  std::ofstream(tmpl, std::ios::trunc) << "";
  EXPECT_EQ(ReadLogTail(tmpl, 10, 2048), "");
  ::unlink(tmpl);
  EXPECT_EQ(ReadLogTail(tmpl, 10, 2048), "");
}

TEST(LogTail, TailOfTextKeepsTheLastBytesAndWholeLines) {
  const std::string text = "starting\nfatal: no database url\n";
  EXPECT_EQ(TailOfText(text, 10, 4096), "starting\nfatal: no database url");
  EXPECT_EQ(TailOfText(text, 1, 4096), "fatal: no database url");
  // 25 bytes start inside "starting": the cut line is dropped.
  EXPECT_EQ(TailOfText(text, 10, 25), "fatal: no database url");
  // The only line, cut: kept as it is.
  EXPECT_EQ(TailOfText(text, 10, 9), "base url");
  EXPECT_EQ(TailOfText(text, 0, 4096), "");
  EXPECT_EQ(TailOfText("", 5, 10), "");
}

TEST(LogTail, HidesValuesButNotShortOnes) {
  EXPECT_EQ(HideValues("connecting to postgres://app:s3cret@db/app as app",
                       {"postgres://app:s3cret@db/app", "app"}),
            "connecting to [hidden] as app");
  EXPECT_EQ(HideValues("token abcd and abcd again", {"abcd"}), "token [hidden] and [hidden] again");
  EXPECT_EQ(HideValues("nothing here", {}), "nothing here");
}

}  // namespace
}  // namespace turnout::platform
