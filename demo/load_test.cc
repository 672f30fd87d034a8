// Runs the real turnout-load binary against the real demo app and against small misbehaving
// servers (silent, resetting, absent) and checks what it counts and how it exits.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "demo/test_support.h"
#include "gtest/gtest.h"

namespace turnout::demo::testing {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

const std::string kDemoApp = TURNOUT_DEMO_APP_BINARY;
const std::string kLoad = TURNOUT_LOAD_BINARY;

struct LoadRun {
  int exit_code = -1;
  std::string output;
  nlohmann::json json;
  double wall_seconds = 0;
};

LoadRun RunLoad(std::vector<std::string> args, bool json = true) {
  args.insert(args.begin(), kLoad);
  if (json) args.push_back("--json");
  Steady::time_point t0 = Steady::now();
  Result<ChildProcess> p = ChildProcess::Start(args, {}, /*stderr_too=*/!json);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  LoadRun run;
  if (!p.ok()) return run;
  Result<std::string> out = p->ReadAll(milliseconds(60000));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  Result<int> status = p->Wait(milliseconds(60000));
  EXPECT_TRUE(status.ok());
  run.wall_seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  if (out.ok()) run.output = *out;
  if (status.ok() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  if (json && run.exit_code != 2) {
    run.json = nlohmann::json::parse(run.output, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(run.json.is_discarded()) << run.output;
  }
  return run;
}

std::string Url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port) + "/"; }

DemoApp MustStartApp(std::vector<std::string> args) {
  Result<DemoApp> app = StartDemoApp(kDemoApp, std::move(args));
  EXPECT_TRUE(app.ok()) << app.status().ToString();
  if (!app.ok()) std::abort();
  return std::move(app).value();
}

// A loopback listener on a port from the OS, closed on destruction.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(LoadTest, CountsResponsesPerVersionAndExitsZero) {
  DemoApp app = MustStartApp({"--version", "v1"});
  LoadRun run = RunLoad({"--url", Url(app.port), "--requests", "300", "--connections", "4",
                         "--by-header", "X-Version"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.json["requests"], 300);
  EXPECT_EQ(run.json["responses"]["2xx"], 300);
  EXPECT_EQ(run.json["failed"], 0);
  EXPECT_EQ(run.json["statuses"], nlohmann::json({{"200", 300}}));
  EXPECT_EQ(run.json["by_header"]["name"], "X-Version");
  EXPECT_EQ(run.json["by_header"]["values"]["v1"], 300);
  EXPECT_GT(run.json["latency_ms"]["p99"].get<double>(), 0.0);
  EXPECT_GE(run.json["latency_ms"]["max"].get<double>(),
            run.json["latency_ms"]["p50"].get<double>());
}

TEST(LoadTest, ServerErrorsAreFailuresAndExitOne) {
  DemoApp app = MustStartApp({"--error-rate", "1"});
  LoadRun run = RunLoad({"--url", Url(app.port), "--requests", "50", "--connections", "2"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.json["responses"]["5xx"], 50);
  EXPECT_EQ(run.json["failed"], 50);
  EXPECT_EQ(run.json["statuses"], nlohmann::json({{"500", 50}}));
}

TEST(LoadTest, DurationBoundStopsByItself) {
  DemoApp app = MustStartApp({});
  LoadRun run =
      RunLoad({"--url", Url(app.port), "--duration", "1s", "--connections", "8", "--threads", "2"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_GT(run.json["requests"].get<int>(), 10);
  EXPECT_GE(run.json["elapsed_seconds"].get<double>(), 1.0);
  EXPECT_LT(run.wall_seconds, 10.0);
}

TEST(LoadTest, RateSpreadsRequestsEvenly) {
  DemoApp app = MustStartApp({});
  LoadRun run =
      RunLoad({"--url", Url(app.port), "--duration", "2s", "--rate", "100", "--connections", "4"});
  EXPECT_EQ(run.exit_code, 0);
  int requests = run.json["requests"].get<int>();
  EXPECT_GE(requests, 150);
  EXPECT_LE(requests, 201);
}

TEST(LoadTest, RefusedConnectionsAreErrors) {
  uint16_t port = 0;
  {
    Listener closed;
    port = closed.port();
  }
  LoadRun run = RunLoad({"--url", Url(port), "--requests", "20", "--connections", "2"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.json["errors"], 20);
  EXPECT_EQ(run.json["responses"]["2xx"], 0);
}

TEST(LoadTest, SilentServerGivesTimeouts) {
  Listener silent;  // the kernel accepts connections; nobody ever answers
  LoadRun run = RunLoad(
      {"--url", Url(silent.port()), "--requests", "4", "--connections", "2", "--timeout", "200ms"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.json["timeouts"], 4);
  EXPECT_LT(run.wall_seconds, 10.0);
}

TEST(LoadTest, ResetConnectionsAreCounted) {
  Listener resetting;
  std::atomic<bool> stop{false};
  // Accepts, reads the request, then aborts the connection with RST (SO_LINGER 0).
  std::thread server([&] {
    while (!stop.load()) {
      pollfd p{resetting.fd(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept(resetting.fd(), nullptr, nullptr);
      if (fd < 0) continue;
      pollfd r{fd, POLLIN, 0};
      if (::poll(&r, 1, 5000) > 0) {
        char buf[4096];
        (void)::recv(fd, buf, sizeof buf, 0);
      }
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
    }
  });
  LoadRun run = RunLoad({"--url", Url(resetting.port()), "--requests", "5", "--connections", "1"});
  stop.store(true);
  server.join();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.json["resets"], 5);
  EXPECT_EQ(run.json["failed"], 5);
}

TEST(LoadTest, ProgressPrintsALineEverySecond) {
  DemoApp app = MustStartApp({"--version", "v9"});
  LoadRun run = RunLoad({"--url", Url(app.port), "--duration", "2500ms", "--connections", "2",
                         "--rate", "200", "--progress", "--by-header", "X-Version"},
                        /*json=*/false);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("t=1s 2xx="), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("t=2s 2xx="), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(" fail=0 v9="), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("0 failed requests"), std::string::npos) << run.output;
}

TEST(LoadTest, SigtermStopsEarlyAndStillReports) {
  DemoApp app = MustStartApp({"--version", "v4"});
  Result<ChildProcess> p =
      ChildProcess::Start({kLoad, "--url", Url(app.port), "--duration", "60s", "--connections", "2",
                           "--rate", "100", "--progress", "--by-header", "X-Version"},
                          {}, /*stderr_too=*/true);
  ASSERT_TRUE(p.ok());
  // The first progress line shows that requests are flowing; then stop it.
  Result<std::string> line = p->ReadLine(milliseconds(10000));
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_NE(line->find("t=1s 2xx="), std::string::npos) << *line;
  Steady::time_point t0 = Steady::now();
  ASSERT_TRUE(p->Signal(SIGTERM).ok());
  Result<std::string> rest = p->ReadAll(milliseconds(10000));
  ASSERT_TRUE(rest.ok());
  Result<int> status = p->Wait(milliseconds(10000));
  ASSERT_TRUE(status.ok());
  EXPECT_LT(Steady::now() - t0, std::chrono::seconds(5));
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0) << *rest;
  EXPECT_NE(rest->find("X-Version v4="), std::string::npos) << *rest;
  EXPECT_NE(rest->find("0 failed requests"), std::string::npos) << *rest;
}

TEST(LoadTest, BadFlagsExitTwo) {
  EXPECT_EQ(RunLoad({"--connections", "4"}, false).exit_code, 2);  // no --url
  EXPECT_EQ(RunLoad({"--url", "https://127.0.0.1/"}, false).exit_code, 2);
  EXPECT_EQ(RunLoad({"--url", "http://127.0.0.1:1/", "--connections", "0"}, false).exit_code, 2);
  EXPECT_EQ(RunLoad({"--url", "http://127.0.0.1:1/", "--duration", "5"}, false).exit_code, 2);
}

}  // namespace
}  // namespace turnout::demo::testing
