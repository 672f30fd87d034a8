#include "http/writer.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http/parser.h"

namespace turnout::http {
namespace {

TEST(WriterTest, SimpleResponseIsExactAndParsesBack) {
  std::string out = "prefix|";
  AppendSimpleResponse(&out, 503, "text/plain", "no instance\n", /*close=*/true,
                       "Retry-After: 1\r\n");
  EXPECT_EQ(out,
            "prefix|HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 12\r\nConnection: close\r\nRetry-After: 1\r\n\r\nno instance\n");

  const std::string_view message = std::string_view(out).substr(7);
  auto head = std::make_unique<ResponseHead>();
  ParseResult r = ParseResponseHead(message, "GET", ParseLimits{}, head.get());
  ASSERT_EQ(r.state, ParseState::kComplete) << r.error_reason;
  EXPECT_EQ(head->status, 503);
  EXPECT_EQ(head->body, BodyKind::kContentLength);
  EXPECT_EQ(head->content_length, 12u);
  EXPECT_EQ(message.substr(r.consumed), "no instance\n");
  EXPECT_FALSE(head->keep_alive);
  ASSERT_NE(head->headers.Find("retry-after"), nullptr);
}

TEST(WriterTest, KeepAliveResponseWithoutContentType) {
  std::string out;
  AppendSimpleResponse(&out, 204, "", "", /*close=*/false);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
  AppendSimpleResponse(&out, 299, "a/b", "x", false);
  EXPECT_NE(out.find("HTTP/1.1 299 \r\nContent-Type: a/b\r\n"), std::string::npos);
}

TEST(WriterTest, ChunksDecodeBack) {
  std::string body;
  AppendChunkHeader(&body, 26);
  body += "abcdefghijklmnopqrstuvwxyz\r\n";
  AppendChunkHeader(&body, 1);
  body += "!\r\n";
  body += kLastChunk;
  EXPECT_EQ(body.substr(0, 4), "1a\r\n");

  ChunkedDecoder decoder;
  std::string data;
  std::string_view rest = body;
  while (!rest.empty() && !decoder.done()) {
    ChunkedDecoder::Step step = decoder.Feed(rest);
    ASSERT_FALSE(step.error) << step.error_reason;
    data.append(step.data);
    rest.remove_prefix(step.consumed);
  }
  EXPECT_TRUE(decoder.done());
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(data, "abcdefghijklmnopqrstuvwxyz!");

  std::string big;
  AppendChunkHeader(&big, 0xffffffffffffffffull);
  EXPECT_EQ(big, "ffffffffffffffff\r\n");
}

}  // namespace
}  // namespace turnout::http
