#include "http/api_support.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnout::http {
namespace {

TEST(ApiSupportTest, EveryStatusCodeHasItsHttpStatus) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAborted), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(StatusCode::kIoError), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
}

TEST(ApiSupportTest, BearerTokenMustMatchExactly) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cret2", "s3cret"));
  // RFC 9110 §11.1: the auth-scheme is case-insensitive.
  EXPECT_TRUE(BearerTokenMatches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("BEARER s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("Bearer  s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer S3CRET", "s3cret"));  // the token is not
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearers3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", ""));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("", "s3cret"));
}

TEST(ApiSupportTest, JsonContentTypeAllowsParametersAndAnyCase) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(IsJsonContentType(" application/json ;charset=UTF-8"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType("application/x-www-form-urlencoded"));
  EXPECT_FALSE(IsJsonContentType("application/jsonp"));
  EXPECT_FALSE(IsJsonContentType("multipart/form-data; boundary=application/json"));
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE"}) EXPECT_TRUE(IsMutatingMethod(m)) << m;
  for (const char* m : {"GET", "HEAD", "OPTIONS"}) EXPECT_FALSE(IsMutatingMethod(m)) << m;
}

TEST(ApiSupportTest, OwnHostsOfALoopbackBindIncludeTheLoopbackNames) {
  using Hosts = std::vector<std::string>;
  EXPECT_EQ(OwnHostsFor("127.0.0.1:9901", {}),
            (Hosts{"127.0.0.1:9901", "localhost:9901", "[::1]:9901"}));
  EXPECT_EQ(OwnHostsFor("[::1]:7070", {"Router.Internal", "10.0.0.5:9000", "[fd00::1]"}),
            (Hosts{"[::1]:7070", "localhost:7070", "127.0.0.1:7070", "router.internal:7070",
                   "10.0.0.5:9000", "[fd00::1]:7070"}));
  // A bind to one address answers to that address only, unless names are configured.
  EXPECT_EQ(OwnHostsFor("10.1.2.3:9901", {}), (Hosts{"10.1.2.3:9901"}));
  // Port 80 may be left out of Host.
  EXPECT_EQ(OwnHostsFor("10.1.2.3:80", {}), (Hosts{"10.1.2.3:80", "10.1.2.3"}));
}

class CheckApiRequestTest : public ::testing::Test {
 protected:
  ApiAccess tcp_{.token = "s3cret", .unix_socket = false, .hosts = OwnHostsFor("127.0.0.1:9901", {})};
  ApiAccess socket_{.token = "", .unix_socket = true, .hosts = {}};
  ApiRequestHeaders Good() const {
    return {.method = "POST",
            .authorization = "Bearer s3cret",
            .content_type = "application/json",
            .origin = "",
            .host = "127.0.0.1:9901"};
  }
  static int StatusOf(const std::optional<ApiRefusal>& r) { return r ? r->status : 0; }
};

TEST_F(CheckApiRequestTest, AWellFormedRequestPasses) {
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, Good())), 0);
  auto r = Good();
  r.host = "LOCALHOST:9901";
  r.origin = "http://localhost:9901";  // the admin's own origin (e.g. its own page)
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 0);
  r = Good();
  r.method = "GET";
  r.content_type = "";
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 0);
}

TEST_F(CheckApiRequestTest, EachCheckHasItsStatusAndSaysWhatToDo) {
  auto r = Good();
  r.host = "rebind.evil.example:9901";
  auto refusal = CheckApiRequest(tcp_, r);
  EXPECT_EQ(StatusOf(refusal), 421);
  EXPECT_NE(refusal->message.find("127.0.0.1:9901"), std::string::npos) << refusal->message;
  r.host = "";
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 421);
  r.host = "127.0.0.1:9902";
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 421);

  r = Good();
  for (const char* origin : {"http://evil.example", "null", "https://127.0.0.1:9901",
                             "http://127.0.0.1:9901.evil.example", "http://127.0.0.1"}) {
    r.origin = origin;
    refusal = CheckApiRequest(tcp_, r);
    EXPECT_EQ(StatusOf(refusal), 403) << origin;
  }
  EXPECT_NE(refusal->message.find("cross-site"), std::string::npos) << refusal->message;

  r = Good();
  r.authorization = "";
  refusal = CheckApiRequest(tcp_, r);
  EXPECT_EQ(StatusOf(refusal), 401);
  EXPECT_EQ(refusal->extra_headers, "WWW-Authenticate: Bearer\r\n");
  r.authorization = "Bearer guess";
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 401);
  r.authorization = "bearer s3cret";
  EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 0);

  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    r = Good();
    r.method = method;
    r.content_type = "text/plain";
    refusal = CheckApiRequest(tcp_, r);
    EXPECT_EQ(StatusOf(refusal), 415) << method;
    EXPECT_NE(refusal->message.find("send Content-Type: application/json"), std::string::npos);
    r.content_type = "";
    EXPECT_EQ(StatusOf(CheckApiRequest(tcp_, r)), 415) << method;
  }
}

TEST_F(CheckApiRequestTest, OnAUnixSocketHostIsNotCheckedButOriginAndContentTypeAre) {
  auto r = Good();
  r.authorization = "";
  r.host = "anything.example";
  EXPECT_EQ(StatusOf(CheckApiRequest(socket_, r)), 0);
  r.origin = "http://localhost";
  EXPECT_EQ(StatusOf(CheckApiRequest(socket_, r)), 403);
  r.origin = "";
  r.content_type = "text/plain";
  EXPECT_EQ(StatusOf(CheckApiRequest(socket_, r)), 415);
}

}  // namespace
}  // namespace turnout::http
