#include "cli/access_logs.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace turnout::cli {
namespace {

constexpr std::string_view kLine =
    R"({"time":"2026-12-07T16:33:37.123Z","client":"192.0.2.7","client_port":51234,)"
    R"("method":"GET","path":"/orders/7","protocol":"HTTP/1.1","status":503,"bytes_out":512,)"
    R"("bytes_in":87,"duration_ms":1.25,"slot":"green","instance":"127.0.0.1:9002",)"
    R"("route":"canary_weight","request_id":"r-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",)"
    R"("error":"no_healthy_upstream"})";

TEST(AccessLogsTest, ParsesALineAndFormatsARow) {
  std::optional<AccessLogLine> l = ParseAccessLogLine(kLine);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 503);
  EXPECT_EQ(l->slot, "green");
  EXPECT_EQ(FormatAccessLogRow(*l),
            "16:33:37.123  503     GET     /orders/7                       green     1.2       "
            "canary_weight  no_healthy_upstream 4bf92f3577b34da6a3ce929d0e0e4736\n");
  EXPECT_FALSE(ParseAccessLogLine("time=2026 status=200").has_value());  // logfmt
  EXPECT_FALSE(ParseAccessLogLine(R"({"time":"2026)").has_value());      // torn
}

TEST(AccessLogsTest, ControlBytesInThePathAreEscaped) {
  std::optional<AccessLogLine> l = ParseAccessLogLine(R"({"path":"/a\u001b[31m\n","status":200})");
  ASSERT_TRUE(l.has_value());
  std::string row = FormatAccessLogRow(*l);
  EXPECT_EQ(row.find('\x1b'), std::string::npos) << row;
  EXPECT_EQ(row.find('\n'), row.size() - 1) << row;
}

TEST(AccessLogsTest, FiltersBySlotStatusAndTime) {
  AccessLogLine l = *ParseAccessLogLine(kLine);
  AccessLogFilter f;
  EXPECT_TRUE(Matches(l, f));
  ASSERT_TRUE(ParseStatusFilter("5xx", &f).ok());
  EXPECT_TRUE(Matches(l, f));
  f = {};
  ASSERT_TRUE(ParseStatusFilter("4XX", &f).ok());
  EXPECT_FALSE(Matches(l, f));
  f = {};
  ASSERT_TRUE(ParseStatusFilter("503", &f).ok());
  EXPECT_TRUE(Matches(l, f));
  f = {};
  ASSERT_TRUE(ParseStatusFilter("404", &f).ok());
  EXPECT_FALSE(Matches(l, f));
  f = {};
  f.slot = "blue";
  EXPECT_FALSE(Matches(l, f));
  f.slot = "green";
  EXPECT_TRUE(Matches(l, f));
  f.since = "2026-12-07T16:33:37.124Z";
  EXPECT_FALSE(Matches(l, f));
  f.since = "2026-12-07T16:33:37.123Z";
  EXPECT_TRUE(Matches(l, f));
  for (const char* bad : {"6xx", "5x", "99", "600", "abc", ""}) {
    AccessLogFilter g;
    Status s = ParseStatusFilter(bad, &g);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("--status"), std::string::npos);
  }
}

class AccessLogsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "access_logs_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::unlink((path_ + ".1").c_str());
    ::rmdir(dir_.c_str());
  }
  void Append(const std::string& file, const std::string& text) {
    std::ofstream(file, std::ios::app) << text;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(AccessLogsFileTest, ReadsCompleteLinesOnly) {
  Append(path_, "one\ntwo\nthr");
  std::vector<std::string> seen;
  ASSERT_TRUE(ReadAccessLog(path_, false, std::chrono::milliseconds(1), [&](std::string_view l) {
                seen.emplace_back(l);
                return true;
              }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "two"}));
  Status missing = ReadAccessLog(dir_ + "/none.log", false, std::chrono::milliseconds(1),
                                 [](std::string_view) { return true; });
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("none.log"), std::string::npos);
}

// --follow goes on reading across a rotation: the rest of the old file first, then the new one.
TEST_F(AccessLogsFileTest, FollowCrossesARotation) {
  Append(path_, "a\n");
  std::vector<std::string> seen;
  std::atomic<size_t> count{0};
  std::thread reader([&] {
    Status s = ReadAccessLog(path_, true, std::chrono::milliseconds(5), [&](std::string_view l) {
      seen.emplace_back(l);
      ++count;
      return l != "d";
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  auto wait_for = [&](size_t n) {
    for (int i = 0; i < 1000 && count.load() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return count.load() >= n;
  };
  ASSERT_TRUE(wait_for(1));
  Append(path_, "b\n");
  ASSERT_TRUE(wait_for(2));
  // Rotated: a last line lands in the old file after the rename, then the new file starts.
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  Append(path_ + ".1", "c\n");
  Append(path_, "d\n");
  reader.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d"}));
}

}  // namespace
}  // namespace turnout::cli
