// Starts the real turnout-demo-app binary and checks every flag and endpoint over real sockets.

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "demo/test_support.h"
#include "gtest/gtest.h"

namespace turnout::demo::testing {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

const std::string kBinary = TURNOUT_DEMO_APP_BINARY;

DemoApp Start(std::vector<std::string> args, std::vector<std::string> env = {}) {
  Result<DemoApp> app = StartDemoApp(kBinary, std::move(args), env);
  EXPECT_TRUE(app.ok()) << app.status().ToString();
  if (!app.ok()) std::abort();
  return std::move(app).value();
}

HttpReply MustGet(uint16_t port, const std::string& target, const std::string& method = "GET") {
  Result<HttpReply> r = Get(port, target, method);
  EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : HttpReply{};
}

TEST(DemoAppTest, ServesIdentityWithVersionHeader) {
  DemoApp app = Start({"--version", "v7", "--slot", "blue"});
  HttpReply r = MustGet(app.port, "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-version"), "v7");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["version"], "v7");
  EXPECT_EQ(body["slot"], "blue");
  EXPECT_EQ(body["instance"], app.process.pid());

  HttpReply version = MustGet(app.port, "/version");
  EXPECT_EQ(version.status, 200);
  EXPECT_EQ(nlohmann::json::parse(version.body)["version"], "v7");
  EXPECT_EQ(MustGet(app.port, "/live").status, 200);
  EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
  EXPECT_EQ(MustGet(app.port, "/health").status, 200);
  EXPECT_EQ(MustGet(app.port, "/nope").status, 404);

  HttpReply head = MustGet(app.port, "/", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST(DemoAppTest, SlotComesFromEnvironmentWhenNoFlag) {
  DemoApp app = Start({"--version", "v2"}, {"TURNOUT_SLOT=green"});
  nlohmann::json body = nlohmann::json::parse(MustGet(app.port, "/").body);
  EXPECT_EQ(body["slot"], "green");
  EXPECT_EQ(body["version"], "v2");
}

TEST(DemoAppTest, FailReadyMakesReadyAndHealthFailButNotLive) {
  DemoApp app = Start({"--fail-ready"});
  EXPECT_EQ(MustGet(app.port, "/ready").status, 503);
  EXPECT_EQ(MustGet(app.port, "/health").status, 503);
  EXPECT_EQ(MustGet(app.port, "/live").status, 200);
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
}

TEST(DemoAppTest, ErrorRateOneFailsEveryRootRequestOnly) {
  DemoApp app = Start({"--error-rate", "1"});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(MustGet(app.port, "/").status, 500);
  EXPECT_EQ(MustGet(app.port, "/version").status, 200);
  EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
}

TEST(DemoAppTest, ErrorRateHalfFailsAboutHalf) {
  DemoApp app = Start({"--error-rate", "0.5"});
  Result<Client> c = Client::Connect(app.port);
  ASSERT_TRUE(c.ok());
  int failures = 0;
  constexpr int kRequests = 400;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n").ok());
    Result<HttpReply> r = c->Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->status == 500) ++failures;
  }
  // Binomial(400, 0.5): outside 120..280 has probability far below 1e-15.
  EXPECT_GT(failures, 120);
  EXPECT_LT(failures, 280);
}

TEST(DemoAppTest, LatencyDelaysRootButNotHealthEndpoints) {
  DemoApp app = Start({"--latency", "300ms"});
  Steady::time_point t0 = Steady::now();
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  EXPECT_GE(Steady::now() - t0, milliseconds(300));
  // Health endpoints are never delayed: with a 30 s latency they would time out otherwise.
  HttpReply set = MustGet(app.port, "/admin/fault?latency=30s", "POST");
  ASSERT_EQ(set.status, 200);
  t0 = Steady::now();
  EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
  EXPECT_EQ(MustGet(app.port, "/live").status, 200);
  EXPECT_EQ(MustGet(app.port, "/version").status, 200);
  EXPECT_LT(Steady::now() - t0, std::chrono::seconds(10));
}

TEST(DemoAppTest, LatencyJitterStaysWithinBounds) {
  DemoApp app = Start({"--latency", "100ms", "--latency-jitter", "50ms"});
  for (int i = 0; i < 5; ++i) {
    Steady::time_point t0 = Steady::now();
    EXPECT_EQ(MustGet(app.port, "/").status, 200);
    EXPECT_GE(Steady::now() - t0, milliseconds(50));
  }
}

TEST(DemoAppTest, ReadyAfterIsUnreadyUntilThen) {
  Steady::time_point started = Steady::now();
  DemoApp app = Start({"--ready-after", "700ms"});
  EXPECT_EQ(MustGet(app.port, "/ready").status, 503);
  EXPECT_EQ(MustGet(app.port, "/live").status, 200);
  // Ask on one keep-alive connection until ready, bounded by a deadline.
  Result<Client> c = Client::Connect(app.port);
  ASSERT_TRUE(c.ok());
  int status = 0;
  Steady::time_point deadline = Steady::now() + std::chrono::seconds(10);
  while (status != 200 && Steady::now() < deadline) {
    ASSERT_TRUE(c->Send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n").ok());
    Result<HttpReply> r = c->Receive();
    ASSERT_TRUE(r.ok());
    status = r->status;
  }
  EXPECT_EQ(status, 200);
  EXPECT_GE(Steady::now() - started, milliseconds(700));
}

TEST(DemoAppTest, CrashAfterKillsTheProcessAbnormally) {
  DemoApp app = Start({"--crash-after", "200ms"});
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  Result<int> status = app.process.Wait(milliseconds(10000));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGKILL);
  EXPECT_TRUE(ConnectRefused(app.port));
}

TEST(DemoAppTest, AdminFaultChangesBehaviourAtRuntime) {
  DemoApp app = Start({"--version", "v3"});
  EXPECT_EQ(MustGet(app.port, "/").status, 200);

  HttpReply set = MustGet(app.port, "/admin/fault?error-rate=1&fail-ready=true", "POST");
  EXPECT_EQ(set.status, 200);
  EXPECT_EQ(nlohmann::json::parse(set.body)["error_rate"], 1.0);
  EXPECT_EQ(MustGet(app.port, "/").status, 500);
  EXPECT_EQ(MustGet(app.port, "/").Header("x-version"), "v3");
  EXPECT_EQ(MustGet(app.port, "/ready").status, 503);

  // A bad request changes nothing (all or nothing).
  EXPECT_EQ(MustGet(app.port, "/admin/fault?error-rate=0&bogus=1", "POST").status, 400);
  EXPECT_EQ(MustGet(app.port, "/admin/fault?error-rate=2", "POST").status, 400);
  EXPECT_EQ(MustGet(app.port, "/").status, 500);

  EXPECT_EQ(
      MustGet(app.port, "/admin/fault?error-rate=0&fail-ready=false&latency=250ms", "POST").status,
      200);
  Steady::time_point t0 = Steady::now();
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  EXPECT_GE(Steady::now() - t0, milliseconds(250));
  EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
  HttpReply current = MustGet(app.port, "/admin/fault");
  EXPECT_EQ(nlohmann::json::parse(current.body)["latency"], "250ms");
  EXPECT_EQ(MustGet(app.port, "/admin/fault", "DELETE").status, 405);

  // fail-live: /live answers 503 while /ready and / keep answering.
  EXPECT_EQ(MustGet(app.port, "/admin/fault?fail-live=true&latency=0ms", "POST").status, 200);
  EXPECT_EQ(MustGet(app.port, "/live").status, 503);
  EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  EXPECT_EQ(MustGet(app.port, "/admin/fault?fail-live=false", "POST").status, 200);
  EXPECT_EQ(MustGet(app.port, "/live").status, 200);
}

TEST(DemoAppTest, KeepAliveWithPipelinedBodies) {
  DemoApp app = Start({});
  Result<Client> c = Client::Connect(app.port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\n\r\n"
                      "GET /version HTTP/1.1\r\nHost: t\r\n\r\n")
                  .ok());
  for (int i = 0; i < 3; ++i) {
    Result<HttpReply> r = c->Receive();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("connection"), "");
  }
  // A large body arriving in pieces is read and discarded too.
  std::string big(200000, 'x');
  ASSERT_TRUE(c->Send("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n").ok());
  ASSERT_TRUE(c->Send(big).ok());
  Result<HttpReply> r = c->Receive();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(DemoAppTest, MalformedRequestGets400AndClose) {
  DemoApp app = Start({});
  Result<Client> c = Client::Connect(app.port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n")
                  .ok());
  Result<HttpReply> r = c->Receive();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c->ClosedByPeer(milliseconds(5000)));
}

TEST(DemoAppTest, SigtermFinishesInFlightClosesIdleAndExitsZero) {
  DemoApp app = Start({"--latency", "1500ms"});
  Result<Client> idle = Client::Connect(app.port);
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(idle->Send("GET /live HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  ASSERT_TRUE(idle->Receive().ok());

  Result<Client> busy = Client::Connect(app.port);
  ASSERT_TRUE(busy.ok());
  ASSERT_TRUE(busy->Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  // Wait (bounded) until the app reports the slow request in flight, then signal.
  int in_flight = 0;
  Steady::time_point deadline = Steady::now() + std::chrono::seconds(5);
  while (in_flight < 1 && Steady::now() < deadline) {
    in_flight = nlohmann::json::parse(MustGet(app.port, "/health").body)["in_flight"].get<int>();
  }
  ASSERT_EQ(in_flight, 1);
  ASSERT_TRUE(app.process.Signal(SIGTERM).ok());

  Result<HttpReply> r = busy->Receive(milliseconds(10000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(idle->ClosedByPeer(milliseconds(5000)));

  Result<int> status = app.process.Wait(milliseconds(10000));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_TRUE(ConnectRefused(app.port));
}

TEST(DemoAppTest, VersionSuffixChoosesFaults) {
  {
    DemoApp app = Start({"--version", "3.0.0+fail-ready"});
    EXPECT_EQ(MustGet(app.port, "/ready").status, 503);
    EXPECT_EQ(MustGet(app.port, "/").status, 200);
    EXPECT_EQ(MustGet(app.port, "/").Header("x-version"), "3.0.0+fail-ready");
  }
  {
    DemoApp app = Start({"--version", "v4+errors-100_slow-300ms"});
    Steady::time_point t0 = Steady::now();
    EXPECT_EQ(MustGet(app.port, "/").status, 500);
    EXPECT_GE(Steady::now() - t0, milliseconds(300));
    EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
    nlohmann::json faults = nlohmann::json::parse(MustGet(app.port, "/admin/fault").body);
    EXPECT_EQ(faults["error_rate"], 1.0);
    EXPECT_EQ(faults["latency"], "300ms");
  }
  {
    // errors-10 is a share of 0.10; build metadata items are not faults.
    DemoApp app = Start({"--version", "v5+build.7_errors-10"});
    nlohmann::json faults = nlohmann::json::parse(MustGet(app.port, "/admin/fault").body);
    EXPECT_DOUBLE_EQ(faults["error_rate"].get<double>(), 0.10);
    EXPECT_EQ(faults["latency"], "0ms");
    EXPECT_FALSE(faults["fail_ready"].get<bool>());
  }
}

TEST(DemoAppTest, VersionSuffixCrashKillsTheProcess) {
  DemoApp app = Start({"--version", "v6+crash-200ms"});
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  Result<int> status = app.process.Wait(milliseconds(10000));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGKILL);
}

TEST(DemoAppTest, ExplicitFlagsWinOverVersionFaultsAndStillApply) {
  DemoApp app = Start({"--version", "v7+errors-100_slow-5s", "--error-rate", "0", "--latency",
                       "0ms", "--fail-ready"});
  Steady::time_point t0 = Steady::now();
  EXPECT_EQ(MustGet(app.port, "/").status, 200);
  EXPECT_LT(Steady::now() - t0, milliseconds(4000));
  EXPECT_EQ(MustGet(app.port, "/ready").status, 503);
}

TEST(DemoAppTest, HealthCountsReadinessProbes) {
  DemoApp app = Start({});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(MustGet(app.port, "/ready").status, 200);
  EXPECT_EQ(nlohmann::json::parse(MustGet(app.port, "/health").body)["ready_probes"], 3);
}

TEST(DemoAppTest, BadFlagsExitWithUsageError) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{kBinary, "--latency", "50"},
        std::vector<std::string>{kBinary, "--error-rate", "1.5"},
        std::vector<std::string>{kBinary, "--bogus"},
        std::vector<std::string>{kBinary, "--version", "v+errors-x"},
        std::vector<std::string>{kBinary, "--version", "v+slow-5"},
        std::vector<std::string>{kBinary, "--listen", "nohost"}}) {
    Result<ChildProcess> p = ChildProcess::Start(args);
    ASSERT_TRUE(p.ok());
    Result<int> status = p->Wait(milliseconds(10000));
    ASSERT_TRUE(status.ok());
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 2) << args[1];
  }
}

}  // namespace
}  // namespace turnout::demo::testing
