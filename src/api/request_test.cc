#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/target.h"

namespace turnout::api {
namespace {

using nlohmann::json;

TEST(DecodeTargetTest, DecodesPathAndQueryInOrder) {
  Request r;
  ASSERT_TRUE(DecodeTarget("/v1/hist%6Fry?limit=5&name=a%20b+c&flag&&x=%2F%3D&limit=7", &r).ok());
  EXPECT_EQ(r.path, "/v1/history");
  const std::vector<std::pair<std::string, std::string>> want = {
      {"limit", "5"}, {"name", "a b c"}, {"flag", ""}, {"x", "/="}, {"limit", "7"}};
  EXPECT_EQ(r.query, want);
  EXPECT_EQ(r.Query("limit"), "5");  // the first one wins
  EXPECT_EQ(r.Query("flag", "unset"), "");
  EXPECT_EQ(r.Query("missing", "dflt"), "dflt");
}

TEST(DecodeTargetTest, PlusIsLiteralInThePath) {
  Request r;
  ASSERT_TRUE(DecodeTarget("/a+b", &r).ok());
  EXPECT_EQ(r.path, "/a+b");
  EXPECT_TRUE(r.query.empty());
}

TEST(DecodeTargetTest, RefusesBadEscapesNulAndNonOriginForm) {
  Request r;
  EXPECT_EQ(DecodeTarget("/a%2", &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTarget("/a%zz", &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTarget("/a?x=%", &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTarget("/a%00b", &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTarget("*", &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTarget("http://h/a", &r).code(), StatusCode::kInvalidArgument);
}

TEST(ReplyTest, JsonAppendsNewline) {
  Reply r = Reply::Json(201, R"({"a":1})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"a\":1}\n");
}

TEST(ReplyTest, ErrorEscapesAndSurvivesInvalidUtf8) {
  Reply r = Reply::Error(404, "no \"x\"\n\xff");
  EXPECT_EQ(r.status, 404);
  json j = json::parse(r.body);
  EXPECT_EQ(j["error"].get<std::string>().substr(0, 7), "no \"x\"\n");
}

TEST(ReplyTest, FromStatusMapsCodes) {
  struct Case {
    Status status;
    int http;
    std::string code;
  };
  const Case cases[] = {
      {InvalidArgument("m"), 400, "invalid_argument"},
      {NotFound("m"), 404, "not_found"},
      {AlreadyExists("m"), 409, "already_exists"},
      {FailedPrecondition("m"), 409, "failed_precondition"},
      {Aborted("m"), 409, "aborted"},
      {Unavailable("m"), 503, "unavailable"},
      {DeadlineExceeded("m"), 504, "deadline_exceeded"},
      {IoError("m"), 500, "io_error"},
      {Internal("m"), 500, "internal"},
  };
  for (const Case& c : cases) {
    Reply r = Reply::FromStatus(c.status);
    EXPECT_EQ(r.status, c.http) << c.code;
    json j = json::parse(r.body);
    EXPECT_EQ(j["error"], "m");
    EXPECT_EQ(j["code"], c.code);
    // And back: the client recovers the exact Status.
    EXPECT_EQ(StatusFromReply(r), c.status) << c.code;
  }
  EXPECT_EQ(Reply::FromStatus(Status::Ok()).status, 200);
}

TEST(StatusFromReplyTest, TwoHundredsAreOkOthersUseHttpStatusWhenNoCode) {
  EXPECT_TRUE(StatusFromReply(Reply::Json(204, "")).ok());
  Status s = StatusFromReply(Reply::Error(401, "the token was refused"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "the token was refused");
  Reply plain;
  plain.status = 502;
  plain.content_type = "text/plain";
  plain.body = "bad gateway\n";
  s = StatusFromReply(plain);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "bad gateway");
}

}  // namespace
}  // namespace turnout::api
