#include "router/forward_headers.h"

#include <gtest/gtest.h>

#include <string>

namespace turnout::router {
namespace {

std::string Forward(const std::string& raw, ForwardRequestOptions options) {
  http::RequestHead head;
  http::ParseResult r = http::ParseRequestHead(raw, http::ParseLimits{}, &head);
  EXPECT_EQ(r.state, http::ParseState::kComplete) << r.error_reason;
  std::string out;
  AppendForwardedRequestHead(head, options, &out);
  return out;
}

ForwardRequestOptions Untrusted() {
  ForwardRequestOptions o;
  o.peer_ip = "192.0.2.7";
  o.request_id_header = "X-Request-Id";
  o.request_id = "rid-1";
  return o;
}

TEST(ForwardHeadersTest, RebuildsRequestWithProxyFields) {
  std::string out = Forward(
      "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\nConnection: keep-alive, "
      "X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n",
      Untrusted());
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\n"
            "Host: shop.example\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.example\r\n"
            "X-Request-Id: rid-1\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
}

// RFC 9112 §3.2.1: a request is sent to an origin server in origin-form; §3.2.2: with an
// absolute-form target, Host is the target's authority.
TEST(ForwardHeadersTest, AbsoluteFormTargetIsForwardedInOriginFormWithHostFromTheAuthority) {
  std::string out =
      Forward("GET http://Shop.Example:8080/a/b?c=1 HTTP/1.1\r\nHost: shop.example:8080\r\n\r\n",
              Untrusted());
  EXPECT_EQ(out.rfind("GET /a/b?c=1 HTTP/1.1\r\nHost: Shop.Example:8080\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("http://"), std::string::npos) << out;

  out = Forward("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", Untrusted());
  EXPECT_EQ(out.rfind("GET / HTTP/1.1\r\n", 0), 0u) << out;
  out = Forward("GET https://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", Untrusted());
  EXPECT_EQ(out.rfind("GET /?q=1 HTTP/1.1\r\n", 0), 0u) << out;
  out = Forward("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Untrusted());
  EXPECT_EQ(out.rfind("OPTIONS * HTTP/1.1\r\n", 0), 0u) << out;
}

TEST(ForwardHeadersTest, UntrustedPeerCannotForgeForwardedFields) {
  std::string out = Forward(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: evil\r\n\r\n",
      Untrusted());
  EXPECT_EQ(out.find("6.6.6.6"), std::string::npos);
  EXPECT_EQ(out.find("https"), std::string::npos);
  EXPECT_EQ(out.find("evil"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-For: 192.0.2.7\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Host: h\r\n"), std::string::npos);
}

TEST(ForwardHeadersTest, TrustedPeerIsAppendedAndItsFieldsKept) {
  ForwardRequestOptions o = Untrusted();
  o.peer_trusted = true;
  std::string out = Forward(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"
      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\nX-Request-Id: abc\r\n\r\n",
      o);
  EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 192.0.2.7\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Host: front.example\r\n"), std::string::npos);
  // The client's request id is kept, not replaced or duplicated.
  EXPECT_NE(out.find("X-Request-Id: abc\r\n"), std::string::npos);
  EXPECT_EQ(out.find("rid-1"), std::string::npos);
}

TEST(ForwardHeadersTest, ChunkedBodyUpgradeAndSecret) {
  ForwardRequestOptions o = Untrusted();
  o.chunked = true;
  std::string out = Forward(
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Turnout-Secret: s\r\n\r\n",
      o);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n\r\n"), std::string::npos);
  EXPECT_EQ(out.find("X-Turnout-Secret"), std::string::npos);

  ForwardRequestOptions u = Untrusted();
  u.upgrade = true;
  out = Forward(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: k\r\n\r\n",
      u);
  EXPECT_NE(out.find("Sec-WebSocket-Key: k\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), std::string::npos);
  EXPECT_EQ(out.find("keep-alive"), std::string::npos);
}

std::string Respond(const std::string& raw, const ForwardResponseOptions& o) {
  http::ResponseHead head;
  http::ParseResult r = http::ParseResponseHead(raw, "GET", http::ParseLimits{}, &head);
  EXPECT_EQ(r.state, http::ParseState::kComplete) << r.error_reason;
  std::string out;
  AppendForwardedResponseHead(head, o, &out);
  return out;
}

TEST(ForwardHeadersTest, ResponseDropsHopByHopAndAddsRouterFields) {
  ForwardResponseOptions o;
  o.chunked = true;
  o.cookie_name = "turnout_sticky";
  o.cookie_value = "k1";
  o.cookie_max_age = 60;
  std::string out = Respond(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
      "Keep-Alive: timeout=5\r\nSet-Cookie: a=b\r\n\r\n",
      o);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain\r\n"
            "Set-Cookie: a=b\r\n"
            "Set-Cookie: turnout_sticky=k1; Path=/; Max-Age=60; HttpOnly; SameSite=Lax\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");

  ForwardResponseOptions close;
  close.close = true;
  out = Respond("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", close);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

  ForwardResponseOptions up;
  up.upgrade = true;
  out = Respond(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", up);
  EXPECT_EQ(
      out, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

TEST(ForwardHeadersTest, RouterErrorResponseIsFramedAndLabelled) {
  std::string out;
  RouterResponse error;
  error.status = 503;
  error.reason = "no_healthy_upstream";
  error.body = "no healthy instance";
  AppendRouterResponse(error, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 20\r\nX-Turnout-Error: no_healthy_upstream\r\n\r\n"
            "no healthy instance\n");
  // The answer to HEAD: the same head, no body; a page with its type and Retry-After.
  out.clear();
  error.head_only = true;
  error.close = true;
  AppendRouterResponse(error, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 20\r\nX-Turnout-Error: no_healthy_upstream\r\n"
            "Connection: close\r\n\r\n");
  out.clear();
  RouterResponse page;
  page.reason = "maintenance";
  page.body = "<p>soon</p>";
  page.content_type = "text/html";
  page.body_newline = false;
  page.retry_after_seconds = 30;
  AppendRouterResponse(page, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
            "Content-Length: 11\r\nRetry-After: 30\r\nX-Turnout-Error: maintenance\r\n\r\n"
            "<p>soon</p>");
  std::string chunk;
  AppendChunkSize(0x1a2b, &chunk);
  EXPECT_EQ(chunk, "1a2b\r\n");
}

TEST(ForwardHeadersTest, TrustedProxiesMatchExactAndCidr) {
  auto t = TrustedProxies::Parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "172.16.0.0/12"});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
  EXPECT_TRUE(t->Contains(a("10.1.2.3")));
  EXPECT_FALSE(t->Contains(a("11.1.2.3")));
  EXPECT_TRUE(t->Contains(a("192.168.1.7")));
  EXPECT_FALSE(t->Contains(a("192.168.1.8")));
  EXPECT_TRUE(t->Contains(a("172.31.255.255")));
  EXPECT_FALSE(t->Contains(a("172.32.0.1")));
  EXPECT_TRUE(t->Contains(a("fd12::1")));
  EXPECT_FALSE(t->Contains(a("fe80::1")));
  EXPECT_TRUE(t->Contains(a("::ffff:10.9.9.9")));  // v4-mapped

  EXPECT_FALSE(TrustedProxies::Parse({"10.0.0.0/33"}).ok());
  EXPECT_FALSE(TrustedProxies::Parse({"not-an-ip"}).ok());
  EXPECT_FALSE(TrustedProxies::Parse({"10.0.0.0/x"}).ok());
  auto empty = TrustedProxies::Parse({});
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->Contains(a("127.0.0.1")));
}

// W3C Trace Context: what InspectTraceparent accepts and refuses.
TEST(TraceContextTest, InspectTraceparentFollowsTheW3cGrammar) {
  // The views InspectTraceparent returns point into the raw bytes: keep them.
  std::string raw;
  http::RequestHead head;
  auto inspect = [&](const std::string& fields, std::string_view* id) {
    raw = "GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n";
    http::ParseResult r = http::ParseRequestHead(raw, http::ParseLimits{}, &head);
    EXPECT_EQ(r.state, http::ParseState::kComplete) << raw;
    return InspectTraceparent(head.headers, id);
  };
  std::string_view id;
  const std::string good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(inspect("traceparent: " + good + "\r\n", &id), TraceparentState::kValid);
  EXPECT_EQ(id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(inspect("TraceParent: " + good + "\r\n", &id), TraceparentState::kValid);
  EXPECT_EQ(inspect("", &id), TraceparentState::kAbsent);
  // A later version may carry more after a '-'.
  EXPECT_EQ(
      inspect("traceparent: cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x\r\n", &id),
      TraceparentState::kValid);
  for (const std::string bad : {
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 is exactly 55
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",     // short
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // no '-' after flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01",    // not hex
       }) {
    EXPECT_EQ(inspect("traceparent: " + bad + "\r\n", &id), TraceparentState::kInvalid) << bad;
  }
  EXPECT_EQ(inspect("traceparent: " + good + "\r\ntraceparent: " + good + "\r\n", &id),
            TraceparentState::kInvalid);
}

TEST(TraceContextTest, FormattedTraceparentIsValidAndNeverZero) {
  char tp[kTraceparentSize];
  FormatTraceparent(0x0123456789abcdefull, 0xfedcba9876543210ull, 0x1122334455667788ull, tp);
  EXPECT_EQ(std::string(tp, sizeof(tp)), "00-0123456789abcdeffedcba9876543210-1122334455667788-01");
  FormatTraceparent(0, 0, 0, tp);
  EXPECT_EQ(std::string(tp, sizeof(tp)), "00-00000000000000000000000000000001-0000000000000001-01");
}

TEST(TraceContextTest, ValidTraceContextIsForwardedUntouched) {
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: h\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\n\r\n";
  std::string out = Forward(raw, Untrusted());
  EXPECT_NE(out.find("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\n"), std::string::npos)
      << out;
}

TEST(TraceContextTest, GeneratedTraceparentReplacesTheRequestsOwn) {
  ForwardRequestOptions o = Untrusted();
  o.traceparent = "00-0123456789abcdeffedcba9876543210-1122334455667788-01";
  std::string out =
      Forward("GET / HTTP/1.1\r\nHost: h\r\ntraceparent: garbage\r\ntracestate: a=b\r\n\r\n", o);
  EXPECT_EQ(out.find("garbage"), std::string::npos) << out;
  EXPECT_EQ(out.find("tracestate"), std::string::npos) << out;
  EXPECT_NE(out.find("traceparent: 00-0123456789abcdeffedcba9876543210-1122334455667788-01\r\n"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace turnout::router
