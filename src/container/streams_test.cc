#include "container/streams.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnout::container {
namespace {

std::string Frame(uint8_t stream, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f + std::string(payload);
}

struct Collected {
  std::string out, err;
  LogDemuxer::Sink Sink() {
    return [this](LogStream s, std::string_view piece) {
      EXPECT_FALSE(piece.empty());
      (s == LogStream::kStderr ? err : out).append(piece);
      return true;
    };
  }
};

TEST(LogDemuxerTest, SplitsStdoutAndStderrWhateverTheChunking) {
  std::string input = Frame(1, "hello\n") + Frame(2, "oops\n") + Frame(1, "") +
                      Frame(1, std::string(70000, 'x')) + Frame(2, "bye\n");
  for (size_t step : {size_t{1}, size_t{3}, size_t{8}, size_t{9}, size_t{4096}, input.size()}) {
    LogDemuxer d;
    Collected c;
    for (size_t i = 0; i < input.size(); i += step) {
      ASSERT_TRUE(d.Feed(std::string_view(input).substr(i, step), c.Sink()).ok()) << step;
    }
    EXPECT_TRUE(d.Finish().ok());
    EXPECT_EQ(c.out, "hello\n" + std::string(70000, 'x')) << step;
    EXPECT_EQ(c.err, "oops\nbye\n") << step;
    EXPECT_EQ(d.frames(), 5u);
  }
}

TEST(LogDemuxerTest, RawTtyOutputIsRefusedAndTheErrorSticks) {
  LogDemuxer d;
  Collected c;
  Status s = d.Feed("hello world, no frames here\n", c.Sink());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("TTY"), std::string::npos) << s.ToString();
  EXPECT_EQ(d.Feed(Frame(1, "later"), c.Sink()), s);
  EXPECT_EQ(c.out, "");
  // A stream byte above 2 is refused too.
  LogDemuxer d2;
  EXPECT_FALSE(d2.Feed(Frame(3, "x"), c.Sink()).ok());
}

TEST(LogDemuxerTest, TruncatedStreamIsReportedAtFinish) {
  LogDemuxer inside_payload;
  Collected c;
  ASSERT_TRUE(inside_payload.Feed(Frame(1, "abcdef").substr(0, 10), c.Sink()).ok());
  EXPECT_EQ(inside_payload.Finish().code(), StatusCode::kInvalidArgument);
  LogDemuxer inside_header;
  ASSERT_TRUE(inside_header.Feed(Frame(1, "abc").substr(0, 5), c.Sink()).ok());
  EXPECT_EQ(inside_header.Finish().code(), StatusCode::kInvalidArgument);
}

TEST(LogDemuxerTest, SinkStopsTheStream) {
  LogDemuxer d;
  int calls = 0;
  Status s = d.Feed(Frame(1, "a") + Frame(1, "b"), [&](LogStream, std::string_view) {
    ++calls;
    return false;
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST(JsonLineReaderTest, ReadsPullProgressSplitAnywhere) {
  std::string input =
      "{\"status\":\"Pulling from library/app\",\"id\":\"v1\"}\r\n"
      "\n"
      "   \n"
      "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"abc\"}\n"
      "{\"status\":\"Digest: sha256:00\"}";  // the last line without "\n"
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, input.size()}) {
    JsonLineReader r;
    std::vector<std::string> statuses;
    auto sink = [&](const nlohmann::json& j) {
      statuses.push_back(j.at("status").get<std::string>());
      return true;
    };
    for (size_t i = 0; i < input.size(); i += step) {
      ASSERT_TRUE(r.Feed(std::string_view(input).substr(i, step), sink).ok()) << step;
    }
    ASSERT_TRUE(r.Finish(sink).ok());
    EXPECT_EQ(statuses, (std::vector<std::string>{"Pulling from library/app", "Download complete",
                                                  "Digest: sha256:00"}))
        << step;
    EXPECT_EQ(r.values(), 3u);
  }
}

TEST(JsonLineReaderTest, GarbageAndOverlongLinesAreErrors) {
  auto sink = [](const nlohmann::json&) { return true; };
  JsonLineReader r;
  Status s = r.Feed("{\"ok\":1}\nnot json\n", sink);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s.ToString();
  EXPECT_EQ(r.Feed("{}\n", sink), s);

  JsonLineReader small(16);
  EXPECT_EQ(small.Feed(std::string(10, ' '), sink).code(), StatusCode::kOk);
  EXPECT_EQ(small.Feed(std::string(10, ' '), sink).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnout::container
