#include "router/access_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace turnout::router {
namespace {

using nlohmann::json;

AccessLogEntry SampleEntry() {
  AccessLogEntry e;
  e.unix_ms = 1'796'661'217'123;  // 2026-12-07T16:33:37.123Z
  e.client_ip = "192.0.2.7";
  e.client_port = 51234;
  e.method = "GET";
  e.target = "/orders/7?token=abc";
  e.version_minor = 1;
  e.status = 200;
  e.response_bytes = 512;
  e.request_bytes = 87;
  e.duration_ms = 1.25;
  e.upstream_ms = 1.0;
  e.slot = "green";
  e.instance = "127.0.0.1:9002";
  e.reason = RouteReason::kSticky;
  e.request_id = "r-1";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  return e;
}

std::string Format(const AccessLogEntry& e, AccessLogConfig::Format f, bool query = false) {
  std::string out;
  FormatAccessLogLine(e, f, query, &out);
  return out;
}

TEST(AccessLogFormatTest, JsonLineHasEveryField) {
  std::string line = Format(SampleEntry(), AccessLogConfig::Format::kJson);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  json j = json::parse(line);
  EXPECT_EQ(j["time"], "2026-12-07T16:33:37.123Z");
  EXPECT_EQ(j["client"], "192.0.2.7");
  EXPECT_EQ(j["client_port"], 51234);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/orders/7");  // no query by default
  EXPECT_EQ(j["protocol"], "HTTP/1.1");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["bytes_out"], 512);
  EXPECT_EQ(j["bytes_in"], 87);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(j["upstream_ms"].get<double>(), 1.0);
  EXPECT_EQ(j["slot"], "green");
  EXPECT_EQ(j["instance"], "127.0.0.1:9002");
  EXPECT_EQ(j["route"], "sticky");
  EXPECT_EQ(j["request_id"], "r-1");
  EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(j.contains("error"));
}

TEST(AccessLogFormatTest, QueryIsKeptOnlyWhenAskedFor) {
  json j = json::parse(Format(SampleEntry(), AccessLogConfig::Format::kJson, true));
  EXPECT_EQ(j["path"], "/orders/7?token=abc");
}

TEST(AccessLogFormatTest, RouterErrorAndNoUpstreamLatency) {
  AccessLogEntry e = SampleEntry();
  e.status = 502;
  e.upstream_ms = -1;
  e.error = "upstream_connect";
  e.trace_id = "";
  json j = json::parse(Format(e, AccessLogConfig::Format::kJson));
  EXPECT_EQ(j["error"], "upstream_connect");
  EXPECT_FALSE(j.contains("upstream_ms"));
  EXPECT_FALSE(j.contains("trace_id"));
}

TEST(AccessLogFormatTest, HostileBytesStayValidJsonAndCanBeRestored) {
  std::string hostile = "/a\"b\\c\n\r\t\x01\x7f\xff\xc3\xa9{\"x\":1}";
  AccessLogEntry e = SampleEntry();
  e.target = hostile;
  e.method = "G\"ET\n";
  std::string line = Format(e, AccessLogConfig::Format::kJson);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  json j = json::parse(line);
  // Each byte >= 0x80 is one \u00XX: taking each code point as a byte gives the bytes back.
  std::string path = j["path"].get<std::string>();
  std::string restored;
  for (size_t i = 0; i < path.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == 0xc2 || c == 0xc3) {
      restored.push_back(static_cast<char>(((c & 0x03) << 6) | (path[++i] & 0x3f)));
    } else {
      restored.push_back(static_cast<char>(c));
    }
  }
  EXPECT_EQ(restored, hostile);
  EXPECT_EQ(j["method"], "G\"ET\n");
}

TEST(AccessLogFormatTest, LogfmtQuotesWhatNeedsIt) {
  AccessLogEntry e = SampleEntry();
  e.target = "/a b=\"c\"\n";
  std::string line = Format(e, AccessLogConfig::Format::kLogfmt, true);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_NE(line.find("time=2026-12-07T16:33:37.123Z client=192.0.2.7 client_port=51234 "
                      "method=GET path=\"/a b=\\\"c\\\"\\x0a\" protocol=HTTP/1.1 status=200"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(" route=sticky request_id=r-1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"),
            std::string::npos)
      << line;
}

TEST(AccessLogFormatTest, HeadNeverReadHasEmptyRequestFields) {
  AccessLogEntry e;
  e.unix_ms = 0;
  e.version_minor = -1;
  e.status = 408;
  e.error = "head_timeout";
  json j = json::parse(Format(e, AccessLogConfig::Format::kJson));
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(j["method"], "");
  EXPECT_EQ(j["protocol"], "");
  EXPECT_EQ(j["route"], "");
}

class AccessLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "access_log_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    for (const char* suffix : {"", ".1", ".2", ".3", ".4", ".fifo"}) {
      ::unlink((path_ + suffix).c_str());
    }
    ::rmdir(dir_.c_str());
  }
  static std::vector<std::string> Lines(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  static bool Exists(const std::string& file) {
    struct stat st {};
    return ::stat(file.c_str(), &st) == 0;
  }
  static uint64_t Size(const std::string& file) {
    struct stat st {};
    return ::stat(file.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(AccessLogFileTest, KeepSamplesSuccessesOnlyAndAlwaysKeepsErrors) {
  AccessLogConfig c;
  c.path = path_;
  c.sample = 0.1;
  auto log = AccessLog::Open(c, 1);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  uint64_t rng = 88172645463325252ull;
  auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += (*log)->Keep(200, false, next()) ? 1 : 0;
  EXPECT_GT(kept, 800);
  EXPECT_LT(kept, 1200);
  for (int status : {101, 400, 404, 500, 503}) {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE((*log)->Keep(status, false, next())) << status;
  }
  for (int i = 0; i < 100; ++i) EXPECT_TRUE((*log)->Keep(0, true, next()));
  c.sample = 0;
  auto none = AccessLog::Open(c, 1);
  ASSERT_TRUE(none.ok());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE((*none)->Keep(204, false, next()));
  c.sample = 1;
  auto all = AccessLog::Open(c, 1);
  ASSERT_TRUE(all.ok());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE((*all)->Keep(304, false, next()));
}

TEST_F(AccessLogFileTest, LinesFromSeveralWorkersAreWritten) {
  AccessLogConfig c;
  c.path = path_;
  auto log = AccessLog::Open(c, 3);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  AccessLogEntry e = SampleEntry();
  // Each worker appends from its own thread while the writer takes the buffers.
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) (*log)->Append(w, e);
    });
  }
  for (auto& t : workers) t.join();
  ASSERT_TRUE((*log)->Flush());
  std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 30u);
  for (const auto& l : lines) EXPECT_EQ(json::parse(l)["slot"], "green");
  EXPECT_EQ((*log)->written(), 30u);
  EXPECT_EQ((*log)->dropped(), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(AccessLogFileTest, RotatesBySizeAndKeepsAtMostKeepFiles) {
  AccessLogConfig c;
  c.path = path_;
  c.max_size = 4096;
  c.keep = 2;
  auto log = AccessLog::Open(c, 1);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  AccessLogEntry e = SampleEntry();
  const std::string one = Format(e, AccessLogConfig::Format::kJson);
  size_t total = 0;
  for (int i = 0; i < 200; ++i) {
    (*log)->Append(0, e);
    ++total;
    if (i % 10 == 9) {
      ASSERT_TRUE((*log)->Flush());  // batches of 10 lines, well under 4 KiB
    }
  }
  ASSERT_TRUE((*log)->Flush());
  EXPECT_TRUE(Exists(path_ + ".1"));
  EXPECT_TRUE(Exists(path_ + ".2"));
  EXPECT_FALSE(Exists(path_ + ".3"));
  for (const char* suffix : {"", ".1", ".2"}) {
    EXPECT_LE(Size(path_ + suffix), 4096u) << suffix;
    for (const auto& l : Lines(path_ + suffix)) {
      EXPECT_FALSE(json::parse(l, nullptr, false).is_discarded()) << l;
    }
  }
  // The newest lines are in FILE, whole; FILE.1 was full when it was rotated.
  EXPECT_GT(Size(path_ + ".1"), 4096u - 10 * one.size());
  EXPECT_EQ((*log)->written(), total);
}

TEST_F(AccessLogFileTest, ReopenFollowsAnExternalRotation) {
  AccessLogConfig c;
  c.path = path_;
  auto log = AccessLog::Open(c, 1);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  (*log)->Append(0, SampleEntry());
  ASSERT_TRUE((*log)->Flush());
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  (*log)->Reopen();
  (*log)->Append(0, SampleEntry());
  ASSERT_TRUE((*log)->Flush());
  EXPECT_EQ(Lines(path_).size(), 1u);
  EXPECT_EQ(Lines(path_ + ".1").size(), 1u);
}

// A writer that takes nothing (a FIFO nobody reads): the worker side never blocks, memory stays
// bounded, and every line that did not fit is counted.
TEST_F(AccessLogFileTest, BlockedWriterDropsAndCountsInsteadOfBlocking) {
  const std::string fifo = path_ + ".fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // opened, never read
  ASSERT_GE(reader, 0);
  AccessLogConfig c;
  c.path = fifo;
  AccessLog::Options o;
  o.shard_bytes = 16 * 1024;
  o.flush_interval = std::chrono::milliseconds(5);
  {
    auto log = AccessLog::Open(c, 2, o);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    AccessLogEntry e = SampleEntry();
    const auto start = std::chrono::steady_clock::now();
    // The pipe takes 64 KiB, the shards 2 x 16 KiB: 20,000 lines (about 6 MB) cannot fit.
    constexpr int kLines = 20000;
    for (int i = 0; i < kLines; ++i) (*log)->Append(i % 2, e);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    (*log)->Flush(std::chrono::milliseconds(200));  // may or may not fit what is left
    EXPECT_GT((*log)->dropped(), static_cast<uint64_t>(kLines) / 2);
    EXPECT_LE((*log)->dropped() + (*log)->written(), static_cast<uint64_t>(kLines));
    const auto stop = std::chrono::steady_clock::now();
    log->reset();  // must not hang on the blocked writer
    EXPECT_LT(std::chrono::steady_clock::now() - stop, std::chrono::seconds(3));
  }
  ::close(reader);
}

TEST_F(AccessLogFileTest, OpenFailsNamingThePath) {
  AccessLogConfig c;
  c.path = dir_ + "/missing/access.log";
  auto log = AccessLog::Open(c, 1);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find(c.path), std::string::npos) << log.status().ToString();
}

}  // namespace
}  // namespace turnout::router
