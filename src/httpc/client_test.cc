// The client against real HTTP servers on 127.0.0.1 and on Unix sockets
// (router::testing::TestUpstream).

#include "httpc/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "platform/testing/test_util.h"
#include "router/testing/test_upstream.h"

namespace turnout::httpc {
namespace {

using router::testing::Behavior;
using router::testing::TestUpstream;

Request To(std::string url, Millis timeout = Millis(10000)) {
  Request r;
  r.url = std::move(url);
  r.timeout = timeout;
  return r;
}

std::unique_ptr<TestUpstream> StartUpstream() {
  auto up = TestUpstream::Start("up");
  if (!up.ok()) {
    ADD_FAILURE() << up.status().ToString();
    return nullptr;
  }
  return std::move(up).value();
}

TEST(HttpcClientTest, GetReturnsStatusHeadersAndBody) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  Behavior b = Behavior::Respond(200, "hello body");
  b.headers = {{"X-Extra", "yes"}};
  up->SetBehavior(b);

  Request req;
  req.url = "http://" + up->address() + "/path?q=1";
  req.headers = {{"X-Test", "abc"}};
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello body");
  EXPECT_EQ(resp->Header("x-extra"), "yes");
  EXPECT_EQ(resp->Header("X-Upstream"), "up");
  EXPECT_EQ(resp->Header("absent"), "");

  auto recorded = up->RecordedRequests();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].method, "GET");
  EXPECT_EQ(recorded[0].target, "/path?q=1");
  EXPECT_EQ(recorded[0].Header("X-Test"), "abc");
  EXPECT_EQ(recorded[0].body_bytes, 0u);
}

TEST(HttpcClientTest, PostSendsBodyWithoutExpectContinue) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  up->SetBehavior(Behavior::Respond(201, "made"));
  Request req;
  req.method = "POST";
  req.url = "http://" + up->address() + "/hook";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = std::string(4000, 'x');  // big enough that libcurl would ask for 100-continue
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 201);
  auto recorded = up->RecordedRequests();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].method, "POST");
  EXPECT_EQ(recorded[0].body, req.body);
  EXPECT_EQ(recorded[0].Header("Content-Type"), "application/json");
  EXPECT_FALSE(recorded[0].HasHeader("Expect"));
}

TEST(HttpcClientTest, ServerErrorIsAResponseNotAnError) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  up->SetBehavior(Behavior::Respond(503, "down"));
  Request req;
  req.method = "DELETE";
  req.url = "http://" + up->address() + "/x";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 503);
  EXPECT_EQ(resp->body, "down");
  EXPECT_TRUE(IsRetryableStatus(resp->status));
  EXPECT_EQ(up->RecordedRequests().at(0).method, "DELETE");
}

TEST(HttpcClientTest, RedirectIsNotFollowed) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  Behavior b = Behavior::Respond(302, "");
  b.headers = {{"Location", "/elsewhere"}};
  up->SetBehavior(b);
  auto resp = Fetch(To("http://" + up->address() + "/"));
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 302);
  EXPECT_EQ(resp->Header("Location"), "/elsewhere");
  EXPECT_EQ(up->request_count(), 1u);
}

TEST(HttpcClientTest, ConnectionRefusedIsUnavailable) {
  auto resp = Fetch(To("http://" + router::testing::RefusingAddress() + "/"));
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable) << resp.status().ToString();
}

TEST(HttpcClientTest, ClosedWithoutAnswerIsUnavailable) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  up->SetBehavior(Behavior::Of(Behavior::Kind::kCloseBeforeResponse));
  auto resp = Fetch(To("http://" + up->address() + "/"));
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable) << resp.status().ToString();
}

TEST(HttpcClientTest, BadUrlsAreInvalidArgument) {
  for (std::string url : {"", "ftp://127.0.0.1/", "not a url", "http://[::1/"}) {
    auto resp = Fetch(To(url));
    ASSERT_FALSE(resp.ok()) << url;
    EXPECT_EQ(resp.status().code(), StatusCode::kInvalidArgument)
        << url << ": " << resp.status().ToString();
  }
  Request bad = To("http://127.0.0.1:1/");
  bad.method = "GE T";
  auto bad_method = Fetch(bad);
  EXPECT_EQ(bad_method.status().code(), StatusCode::kInvalidArgument);
  bad = To("http://127.0.0.1:1/");
  bad.headers = {{"X-A", "v\r\nX-Injected: 1"}};
  auto bad_header = Fetch(bad);
  EXPECT_EQ(bad_header.status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpcClientTest, ServerThatNeverAnswersHitsTheDeadline) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  up->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  auto start = std::chrono::steady_clock::now();
  auto resp = Fetch(To("http://" + up->address() + "/", Millis(300)));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded) << resp.status().ToString();
  EXPECT_GE(took, Millis(250));
  EXPECT_LT(took, Millis(3000));
}

TEST(HttpcClientTest, OversizedBodyIsRefused) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  Behavior b;
  b.generated_body_bytes = 200000;
  up->SetBehavior(b);
  Request req = To("http://" + up->address() + "/");
  req.max_response_bytes = 1000;
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kIoError);
  EXPECT_NE(resp.status().message().find("exceeds 1000 bytes"), std::string::npos);

  req.max_response_bytes = 200000;
  auto full = Fetch(req);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->body.size(), 200000u);
}

TEST(HttpcClientTest, ParallelCallsFromManyThreads) {
  auto up = StartUpstream();
  ASSERT_TRUE(up);
  up->SetBehavior(Behavior::Of(Behavior::Kind::kEcho));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 15;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string target = "/t" + std::to_string(t) + "/" + std::to_string(i);
        auto resp = Fetch(To("http://" + up->address() + target));
        if (resp.ok() && resp->status == 200 &&
            resp->body.rfind("GET " + target + " HTTP/1.1\n", 0) == 0) {
          good.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), kThreads * kPerThread);
}

// A TestUpstream listening on a Unix socket in a private temporary directory.
struct UnixUpstream {
  platform::testing::TempDir dir;
  std::unique_ptr<TestUpstream> up;

  UnixUpstream() {
    auto started = TestUpstream::StartUnix("unix", dir.path() + "/api.sock");
    if (!started.ok()) {
      ADD_FAILURE() << started.status().ToString();
      return;
    }
    up = std::move(started).value();
  }
  Request To(std::string path) const {
    Request r;
    r.url = "http://localhost" + path;
    r.unix_socket = up->unix_path();
    return r;
  }
};

TEST(HttpcClientTest, UnixSocketCarriesTheRequest) {
  UnixUpstream u;
  ASSERT_TRUE(u.up);
  u.up->SetBehavior(Behavior::Respond(201, "{\"Id\":\"abc\"}"));
  Request req = u.To("/v1.41/containers/create?name=web");
  req.method = "POST";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = "{\"Image\":\"app\"}";
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, "{\"Id\":\"abc\"}");
  EXPECT_FALSE(resp->stopped);
  auto recorded = u.up->RecordedRequests();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].method, "POST");
  EXPECT_EQ(recorded[0].target, "/v1.41/containers/create?name=web");
  EXPECT_EQ(recorded[0].Header("Host"), "localhost");
  EXPECT_EQ(recorded[0].body, req.body);
}

TEST(HttpcClientTest, MissingUnixSocketIsUnavailableNamingIt) {
  platform::testing::TempDir dir;
  Request req;
  req.url = "http://localhost/_ping";
  req.unix_socket = dir.path() + "/nothing.sock";
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable) << resp.status().ToString();
  EXPECT_NE(resp.status().message().find(req.unix_socket), std::string::npos)
      << resp.status().ToString();

  // A socket file nobody listens on any more (a dead engine) is refused the same way.
  {
    UnixUpstream u;
    ASSERT_TRUE(u.up);
    req.unix_socket = u.up->unix_path();
    u.up->Stop();
  }
  auto dead = Fetch(req);
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.status().code(), StatusCode::kUnavailable) << dead.status().ToString();
}

TEST(HttpcClientTest, OverlongUnixSocketPathIsInvalidArgument) {
  Request req;
  req.url = "http://localhost/_ping";
  req.unix_socket = "/tmp/" + std::string(200, 's') + ".sock";
  auto resp = Fetch(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kInvalidArgument) << resp.status().ToString();
}

TEST(HttpcClientTest, StreamingHandsTheWholeBodyToTheCallback) {
  UnixUpstream u;
  ASSERT_TRUE(u.up);
  Behavior b;
  b.generated_body_bytes = 3 * 1024 * 1024;  // bigger than max_response_bytes below
  b.chunked = true;
  u.up->SetBehavior(b);
  router::testing::BodyHash hash;
  uint64_t received = 0;
  int pieces = 0;
  Request req = u.To("/v1.41/containers/x/logs?follow=1");
  req.max_response_bytes = 1024;  // applies to kept bodies only
  req.on_body = [&](std::string_view piece) {
    EXPECT_FALSE(piece.empty());
    hash.Update(piece);
    received += piece.size();
    ++pieces;
    return true;
  };
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_FALSE(resp->stopped);
  EXPECT_TRUE(resp->body.empty());
  EXPECT_EQ(received, b.generated_body_bytes);
  EXPECT_EQ(hash.value(), router::testing::PatternHash(b.generated_body_bytes));
  EXPECT_GT(pieces, 1);
}

TEST(HttpcClientTest, StreamingStopsWhenTheCallbackSaysSo) {
  UnixUpstream u;
  ASSERT_TRUE(u.up);
  Behavior b;
  b.generated_body_bytes = uint64_t{1} << 40;  // would never end on its own
  b.chunked = true;
  u.up->SetBehavior(b);
  uint64_t received = 0;
  Request req = u.To("/events");
  req.timeout = Millis(0);  // no deadline: only the callback ends it
  req.on_body = [&](std::string_view piece) {
    received += piece.size();
    return received < 100000;
  };
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_TRUE(resp->stopped);
  EXPECT_EQ(resp->status, 200);
  EXPECT_GE(received, 100000u);
  EXPECT_LT(received, 100000u + 1024 * 1024);
}

TEST(HttpcClientTest, StreamingIsCancelledWhileNothingArrives) {
  UnixUpstream u;
  ASSERT_TRUE(u.up);
  Behavior b = Behavior::Respond(200, "late");
  b.body_delay = Millis(60000);  // the head comes, then nothing (a quiet log stream)
  u.up->SetBehavior(b);
  std::atomic<bool> cancel{false};
  Request req = u.To("/logs");
  req.timeout = Millis(0);
  req.cancel = &cancel;
  std::string seen;
  req.on_body = [&](std::string_view piece) {
    seen.append(piece);
    return true;
  };
  std::thread canceller([&] {
    u.up->WaitFor([&] { return u.up->request_count() == 1; }, Millis(10000));
    cancel.store(true);
  });
  auto start = std::chrono::steady_clock::now();
  auto resp = Fetch(req);
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_TRUE(resp->stopped);
  EXPECT_EQ(seen, "");
  EXPECT_LT(took, Millis(5000));
}

TEST(HttpcClientTest, StreamingKeepsAnErrorBody) {
  UnixUpstream u;
  ASSERT_TRUE(u.up);
  u.up->SetBehavior(Behavior::Respond(404, "{\"message\":\"No such container: x\"}"));
  bool called = false;
  Request req = u.To("/v1.41/containers/x/logs");
  req.on_body = [&](std::string_view) {
    called = true;
    return true;
  };
  auto resp = Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 404);
  EXPECT_EQ(resp->body, "{\"message\":\"No such container: x\"}");
  EXPECT_FALSE(called);
  EXPECT_FALSE(resp->stopped);
}

TEST(HttpcClientTest, UrlEncode) {
  EXPECT_EQ(UrlEncode("sum(rate(x{a=\"b\"}[1m]))"),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29");
  EXPECT_EQ(UrlEncode("a-b_c.d~e f+"), "a-b_c.d~e%20f%2B");
  EXPECT_EQ(UrlEncode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace turnout::httpc
