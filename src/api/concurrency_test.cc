// Many clients at once over both transports: every reply must be the one for its own request,
// and the server must stay consistent (run under ThreadSanitizer by the tsan preset).

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "api/api.h"
#include "api/test_util.h"

namespace turnout::api {
namespace {

using nlohmann::json;

TEST(ApiConcurrencyTest, EightClientThreadsGetTheirOwnReplies) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::atomic<int> handled{0};
  Server server({.unix_path = dir.File("c.sock"),
                 .tcp_address = "127.0.0.1:0",
                 .token = "tok",
                 .handler_threads = 4},
                [&](const Request& r) {
                  ++handled;
                  return testing::Echo(r);
                });
  ASSERT_TRUE(server.Start().ok());

  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 150;
  std::atomic<int> good{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Even threads use the Unix socket, odd ones TCP; every thread keeps one connection, and
      // every fifth call uses a fresh client so that connects race with requests too.
      auto make = [&] {
        return t % 2 == 0 ? Client({.endpoint = "unix:" + dir.File("c.sock")})
                          : Client({.endpoint = "http://" + server.tcp_address(), .token = "tok"});
      };
      auto client = std::make_unique<Client>(make());
      for (int i = 0; i < kCallsPerThread; ++i) {
        if (i % 5 == 4) client = std::make_unique<Client>(make());
        const std::string body = "thread " + std::to_string(t) + " call " + std::to_string(i);
        const std::string target = "/v1/echo?t=" + std::to_string(t) + "&i=" + std::to_string(i);
        auto r = client->Call("POST", target, body);
        if (!r.ok()) {
          failures[t] = r.status().ToString();
          return;
        }
        json j = json::parse(r->body, nullptr, false);
        if (r->status != 200 || j.is_discarded() || j["body"] != body ||
            j["query"][1][1] != std::to_string(i) || j["path"] != "/v1/echo") {
          failures[t] = "wrong reply for " + body + ": " + r->body;
          return;
        }
        ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  EXPECT_EQ(good.load(), kThreads * kCallsPerThread);
  EXPECT_EQ(handled.load(), kThreads * kCallsPerThread);
  server.Stop();
}

}  // namespace
}  // namespace turnout::api
