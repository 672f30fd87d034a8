// What the router changes (and must not change) in the messages it forwards.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::RawClient;
using testing::RawResponse;
using testing::ReceivedRequest;
using testing::TestUpstream;

class RouterProxyTest : public testing::RouterTest {
 protected:
  void Start(void (*tweak)(RouterConfig&) = nullptr) {
    upstream_ = &AddUpstream("blue-1");
    RouterConfig config = testing::MakeTestRouterConfig({{"blue", {upstream_->address()}}}, "blue");
    if (tweak != nullptr) tweak(config);
    ASSERT_TRUE(StartRouter(config));
  }

  ReceivedRequest LastRequest() {
    std::vector<ReceivedRequest> all = upstream_->RecordedRequests();
    EXPECT_FALSE(all.empty());
    return all.empty() ? ReceivedRequest{} : all.back();
  }

  TestUpstream* upstream_ = nullptr;
};

TEST_F(RouterProxyTest, HopByHopRequestHeadersAreRemoved) {
  Start();
  RawResponse r = Get("/hop",
                      "Connection: keep-alive, X-Private-Hop\r\nX-Private-Hop: secret\r\n"
                      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                      "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-End-To-End: kept\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  ASSERT_EQ(r.status, 200);
  ReceivedRequest seen = LastRequest();
  for (const char* name :
       {"X-Private-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Proxy-Authorization"}) {
    EXPECT_FALSE(seen.HasHeader(name)) << name << " was forwarded";
  }
  EXPECT_FALSE(seen.Header("Connection").find("X-Private-Hop") != std::string::npos);
  EXPECT_EQ(seen.Header("X-End-To-End"), "kept");
  EXPECT_EQ(seen.target, "/hop");
  EXPECT_EQ(seen.version, "HTTP/1.1");
}

TEST_F(RouterProxyTest, HopByHopResponseHeadersAreRemoved) {
  Start();
  Behavior b;
  b.headers = {{"Connection", "X-Upstream-Hop"},
               {"X-Upstream-Hop", "1"},
               {"Keep-Alive", "timeout=5"},
               {"X-Kept", "yes"}};
  upstream_->SetBehavior(b);
  RawResponse r = Get("/");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.HasHeader("X-Upstream-Hop"));
  EXPECT_FALSE(r.HasHeader("Keep-Alive"));
  EXPECT_EQ(r.Header("X-Kept"), "yes");
}

TEST_F(RouterProxyTest, ForwardedHeadersAreReplacedForUntrustedPeers) {
  Start();
  RawResponse r = Get("/xff",
                      "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n"
                      "X-Forwarded-Host: evil.example\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.HeaderCount("X-Forwarded-For"), 1);
  EXPECT_EQ(seen.Header("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(seen.Header("X-Forwarded-Proto"), "http");
  EXPECT_EQ(seen.Header("X-Forwarded-Host"), "test.local");
  EXPECT_EQ(seen.Header("Host"), "test.local");
}

TEST_F(RouterProxyTest, ForwardedHeadersAreAppendedForTrustedPeers) {
  Start([](RouterConfig& c) { c.trusted_proxies = {"127.0.0.0/8"}; });
  RawResponse r = Get("/xff",
                      "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n"
                      "X-Forwarded-Host: app.example\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.Header("X-Forwarded-For"), "1.2.3.4, 127.0.0.1");
  EXPECT_EQ(seen.Header("X-Forwarded-Proto").rfind("https", 0), 0u)
      << seen.Header("X-Forwarded-Proto");
  EXPECT_EQ(seen.Header("X-Forwarded-Host").rfind("app.example", 0), 0u)
      << seen.Header("X-Forwarded-Host");

  // Without incoming headers a trusted peer gets fresh ones.
  ASSERT_TRUE(Get("/plain").complete());
  seen = LastRequest();
  EXPECT_EQ(seen.Header("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(seen.Header("X-Forwarded-Proto"), "http");
}

TEST_F(RouterProxyTest, RequestIdIsAddedOnlyWhenMissing) {
  Start();
  ASSERT_TRUE(Get("/a").complete());
  std::string first = LastRequest().Header("X-Request-Id");
  EXPECT_FALSE(first.empty());
  ASSERT_TRUE(Get("/b").complete());
  std::string second = LastRequest().Header("X-Request-Id");
  EXPECT_FALSE(second.empty());
  EXPECT_NE(first, second) << "request ids must be unique";

  ASSERT_TRUE(Get("/c", "X-Request-Id: client-chosen-42\r\n").complete());
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.HeaderCount("X-Request-Id"), 1);
  EXPECT_EQ(seen.Header("X-Request-Id"), "client-chosen-42");
}

TEST_F(RouterProxyTest, OverrideSecretIsNeverForwarded) {
  Start();
  ASSERT_TRUE(Get("/", "X-Turnout-Secret: hunter2\r\n").complete());
  EXPECT_FALSE(LastRequest().HasHeader("X-Turnout-Secret"));
}

TEST_F(RouterProxyTest, HeadAnd204And304CarryNoBody) {
  Start();
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  // HEAD: the upstream announces Content-Length 5 but sends no body.
  RawResponse head = client.RoundTrip("HEAD /h HTTP/1.1\r\nHost: test.local\r\n\r\n", "HEAD");
  ASSERT_TRUE(head.complete()) << head.error;
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body_bytes, 0u);

  upstream_->SetBehavior(Behavior::Respond(204));
  RawResponse no_content = client.RoundTrip(testing::GetRequest("/204"));
  ASSERT_TRUE(no_content.complete()) << no_content.error;
  EXPECT_EQ(no_content.status, 204);
  EXPECT_EQ(no_content.body_bytes, 0u);
  EXPECT_FALSE(no_content.HasHeader("Transfer-Encoding"));

  upstream_->SetBehavior(Behavior::Respond(304));
  RawResponse not_modified = client.RoundTrip(testing::GetRequest("/304"));
  ASSERT_TRUE(not_modified.complete()) << not_modified.error;
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.body_bytes, 0u);

  // Had any body bytes leaked, this response would be garbled.
  upstream_->SetBehavior(Behavior::Respond(200, "after"));
  RawResponse after = client.RoundTrip(testing::GetRequest("/after"));
  ASSERT_TRUE(after.complete()) << after.error;
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.body, "after");
}

TEST_F(RouterProxyTest, ExpectContinueIsRelayed) {
  Start();
  upstream_->SetBehavior(Behavior::Of(Behavior::Kind::kEcho));
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  ASSERT_TRUE(client
                  .Send("PUT /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\n"
                        "Expect: 100-continue\r\n\r\n")
                  .ok());
  // The client holds its body until told to continue.
  RawResponse interim = client.ReadResponse("PUT", 5s);
  ASSERT_TRUE(interim.complete()) << interim.error;
  ASSERT_EQ(interim.status, 100);
  ASSERT_TRUE(client.Send("hello world").ok());
  RawResponse final_response = client.ReadResponse("PUT", 5s);
  ASSERT_TRUE(final_response.complete()) << final_response.error;
  EXPECT_EQ(final_response.status, 200);
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.body, "hello world");
}

TEST_F(RouterProxyTest, ChunkedRequestIsReframed) {
  Start();
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse r = client.RoundTrip(
      "POST /chunks HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
      "POST");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.body, "hello 0123456789");
  // Either re-chunked or given a length, never both, and the extension is not passed on.
  EXPECT_NE(seen.chunked, seen.HasHeader("Content-Length"));
  EXPECT_LE(seen.HeaderCount("Transfer-Encoding"), 1);
  EXPECT_EQ(seen.raw_head.find("name=value"), std::string::npos);
  // The connection stays usable after the chunked body.
  RawResponse next = client.RoundTrip(testing::GetRequest("/next"));
  ASSERT_TRUE(next.complete()) << next.error;
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(LastRequest().target, "/next");
}

TEST_F(RouterProxyTest, ChunkedResponseIsRelayedIntact) {
  Start();
  Behavior b;
  b.chunked = true;
  b.generated_body_bytes = 300000;
  upstream_->SetBehavior(b);
  RawResponse r = Get("/chunked");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.body_bytes, 300000u);
  EXPECT_EQ(r.body_hash, testing::PatternHash(300000));
}

TEST_F(RouterProxyTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  upstream_->SetBehavior(Behavior::Of(Behavior::Kind::kEcho));
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  ASSERT_TRUE(client
                  .Send(testing::GetRequest("/one") + testing::GetRequest("/two") +
                        testing::GetRequest("/three"))
                  .ok());
  for (const char* target : {"/one", "/two", "/three"}) {
    RawResponse r = client.ReadResponse();
    ASSERT_TRUE(r.complete()) << target << ": " << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind(std::string("GET ") + target + " HTTP/1.1\n", 0), 0u) << r.body;
  }
}

TEST_F(RouterProxyTest, Http10ClientGetsItsConnectionClosed) {
  Start();
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  RawResponse r = client.RoundTrip("GET /old HTTP/1.0\r\nHost: test.local\r\n\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello from blue-1");
  EXPECT_EQ(client.WaitForClose(3s), testing::CloseKind::kClosed);
  // Upstream side it is a normal HTTP/1.1 request.
  EXPECT_EQ(LastRequest().version, "HTTP/1.1");
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

int64_t VmRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST_F(RouterProxyTest, LargeBodiesStreamBothWaysWithBoundedMemory) {
  Start();
  constexpr uint64_t kSize = 64ull << 20;
  // Warm up allocators and pools so the measurement sees only per-body growth.
  ASSERT_TRUE(Get("/warm").complete());
  const int64_t rss_before = VmRssKiB();
  ASSERT_GT(rss_before, 0);

  const auto start = std::chrono::steady_clock::now();
  RawClient client;
  ASSERT_TRUE(client.Connect(address()).ok());
  ASSERT_TRUE(client
                  .Send("POST /up HTTP/1.1\r\nHost: test.local\r\nContent-Length: " +
                        std::to_string(kSize) + "\r\n\r\n")
                  .ok());
  ASSERT_TRUE(client.SendPattern(kSize, 60s).ok());
  RawResponse up = client.ReadResponse("POST", 60s, 0);
  ASSERT_TRUE(up.complete()) << up.error;
  EXPECT_EQ(up.status, 200);
  ReceivedRequest seen = LastRequest();
  EXPECT_EQ(seen.body_bytes, kSize);
  EXPECT_EQ(seen.body_hash, testing::PatternHash(kSize));

  Behavior big;
  big.generated_body_bytes = kSize;
  upstream_->SetBehavior(big);
  ASSERT_TRUE(client.Send(testing::GetRequest("/down")).ok());
  RawResponse down = client.ReadResponse("GET", 60s, 0);
  ASSERT_TRUE(down.complete()) << down.error;
  EXPECT_EQ(down.body_bytes, kSize);
  EXPECT_EQ(down.body_hash, testing::PatternHash(kSize));

  const int64_t growth_mib = (VmRssKiB() - rss_before) / 1024;
  // Buffering either body would cost 64 MiB; streaming costs a few buffers per connection.
  // AddressSanitizer keeps freed memory in quarantine, so RSS there reflects allocation churn,
  // not what is held; the bound is checked in the other builds.
  if (!kAddressSanitizer) {
    EXPECT_LT(growth_mib, 32) << "RSS grew by " << growth_mib << " MiB";
  }
  std::cout << "[ measured ] 64 MiB up + 64 MiB down through the router in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms; process RSS growth " << growth_mib << " MiB\n";
}

}  // namespace
}  // namespace turnout::router
