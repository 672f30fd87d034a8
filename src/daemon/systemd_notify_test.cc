// turnoutd and `turnout router` under a service manager: the real binaries as children with
// NOTIFY_SOCKET pointing at the test's own datagram socket (packaging/systemd, docs/operating.md).

#include <netinet/in.h>
#include <sys/socket.h>

#include "daemon/daemon_test_fixture.h"
#include "systemd/testing/notify_socket.h"

namespace turnout::daemon {
namespace {

using systemd::testing::HasLine;
using systemd::testing::NotifySocket;
using systemd::testing::ValueOf;

class SystemdNotifyTest : public DaemonTest {
 protected:
  // Reads datagrams until one holds `line`; every message seen is appended to `seen`.
  std::optional<std::string> WaitFor(NotifySocket& s, const std::string& line,
                                     std::vector<std::string>& seen,
                                     milliseconds timeout = milliseconds(20000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = s.Receive(milliseconds(100));
      if (!m) continue;
      seen.push_back(*m);
      if (HasLine(*m, line)) return m;
    }
    return std::nullopt;
  }

  static bool ApiAnswers(const std::string& socket) {
    api::Client client({"unix:" + socket, "", milliseconds(2000)});
    Result<api::Reply> r = client.Call("GET", "/healthz");
    return r.ok() && r->status == 200;
  }

  static bool Connects(const std::string& host_port) {
    const size_t colon = host_port.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
    ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }
};

TEST_F(SystemdNotifyTest, TurnoutdIsReadyOnlyOnceTheApiAnswersThenPingsAndSaysStopping) {
  WriteConfig();
  NotifySocket notify(dir_ + "/notify.sock");
  auto p = ChildProcess::Start({TURNOUTD_BINARY, "--config", dir_ + "/turnout.yaml"},
                               {notify.Env(), "WATCHDOG_USEC=400000"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  daemon_.emplace(std::move(p).value());

  std::vector<std::string> seen;
  auto ready = WaitFor(notify, "READY=1", seen);
  ASSERT_TRUE(ready) << "no READY=1; got " << seen.size() << " message(s)";
  // The moment READY=1 arrives, the API already answers.
  EXPECT_TRUE(ApiAnswers(Socket()));
  EXPECT_NE(ValueOf(*ready, "STATUS").find(Socket()), std::string::npos) << *ready;
  for (size_t i = 0; i + 1 < seen.size(); ++i) {
    EXPECT_FALSE(HasLine(seen[i], "WATCHDOG=1")) << "a ping before READY=1";
    EXPECT_FALSE(HasLine(seen[i], "READY=1"));
  }
  EXPECT_NE(ValueOf(seen.front(), "STATUS").find("starting"), std::string::npos) << seen.front();

  // WATCHDOG_USEC=400000: a ping every 200 ms while the API answers.
  int pings = 0;
  const auto window = std::chrono::steady_clock::now() + milliseconds(1500);
  while (std::chrono::steady_clock::now() < window) {
    auto m = notify.Receive(milliseconds(100));
    if (m && HasLine(*m, "WATCHDOG=1")) ++pings;
    EXPECT_FALSE(m && HasLine(*m, "READY=1")) << "READY=1 twice";
  }
  EXPECT_GE(pings, 3);
  EXPECT_LE(pings, 9);

  ASSERT_TRUE(daemon_->Signal(SIGTERM).ok());
  auto stopping = WaitFor(notify, "STOPPING=1", seen, milliseconds(10000));
  ASSERT_TRUE(stopping);
  EXPECT_NE(ValueOf(*stopping, "STATUS").find("SIGTERM"), std::string::npos) << *stopping;
  Result<int> status = daemon_->Wait(milliseconds(20000));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  daemon_.reset();
}

TEST_F(SystemdNotifyTest, TurnoutdWithoutWatchdogUsecNeverPings) {
  WriteConfig();
  NotifySocket notify(dir_ + "/notify.sock");
  auto p =
      ChildProcess::Start({TURNOUTD_BINARY, "--config", dir_ + "/turnout.yaml"}, {notify.Env()});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  daemon_.emplace(std::move(p).value());
  std::vector<std::string> seen;
  ASSERT_TRUE(WaitFor(notify, "READY=1", seen));
  EXPECT_FALSE(WaitFor(notify, "WATCHDOG=1", seen, milliseconds(600)));
}

TEST_F(SystemdNotifyTest, TurnoutdThatCannotStartNeverSaysReady) {
  std::ofstream(dir_ + "/turnout.yaml") << "name: demo\nplatform: {}\n";  // invalid
  NotifySocket notify(dir_ + "/notify.sock");
  auto p = ChildProcess::Start({TURNOUTD_BINARY, "--config", dir_ + "/turnout.yaml"},
                               {notify.Env(), "WATCHDOG_USEC=400000"});
  ASSERT_TRUE(p.ok());
  Result<int> status = p->Wait(milliseconds(20000));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  std::vector<std::string> seen;
  EXPECT_FALSE(WaitFor(notify, "READY=1", seen, milliseconds(200)));
  ASSERT_FALSE(seen.empty());
  EXPECT_NE(ValueOf(seen.back(), "STATUS").find("could not start"), std::string::npos)
      << seen.back();
}

TEST_F(SystemdNotifyTest, StandaloneRouterIsReadyOnceItAcceptsThenPingsAndSaysStopping) {
  std::ofstream(dir_ + "/router.yaml")
      << "listen: 127.0.0.1:0\nslots:\n  blue: []\n  green: []\npolicy:\n  active: blue\n";
  NotifySocket notify(dir_ + "/notify.sock");
  auto p = ChildProcess::Start({TURNOUT_BINARY, "router", "--config", dir_ + "/router.yaml"},
                               {notify.Env(), "WATCHDOG_USEC=400000"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  router_.emplace(std::move(p).value());
  std::vector<std::string> seen;
  auto ready = WaitFor(notify, "READY=1", seen);
  ASSERT_TRUE(ready);
  const std::string status = ValueOf(*ready, "STATUS");  // "serving on 127.0.0.1:PORT"
  const std::string prefix = "serving on ";
  ASSERT_EQ(status.rfind(prefix, 0), 0u) << status;
  EXPECT_TRUE(Connects(status.substr(prefix.size())));
  EXPECT_TRUE(WaitFor(notify, "WATCHDOG=1", seen, milliseconds(2000)));

  ASSERT_TRUE(router_->Signal(SIGTERM).ok());
  EXPECT_TRUE(WaitFor(notify, "STOPPING=1", seen, milliseconds(10000)));
  Result<int> exit = router_->Wait(milliseconds(20000));
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0);
  router_.reset();
}

// `turnout up --foreground`, for a supervisor or a container: the process the supervisor started
// is turnoutd itself (no fork: the pid file names it), it reports to the service manager, logs to
// stderr, stops on SIGTERM with status 0, and exits non-zero when it cannot start.
TEST_F(SystemdNotifyTest, TurnoutUpForegroundIsTurnoutdItselfForASupervisor) {
  WriteConfig();
  NotifySocket notify(dir_ + "/notify.sock");
  auto p = ChildProcess::Start(
      {TURNOUT_BINARY, "up", "--foreground", "--config", dir_ + "/turnout.yaml"},
      {notify.Env(), "WATCHDOG_USEC=400000", std::string("TURNOUTD=") + TURNOUTD_BINARY},
      /*stderr_too=*/true);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  daemon_.emplace(std::move(p).value());
  std::vector<std::string> seen;
  ASSERT_TRUE(WaitFor(notify, "READY=1", seen));
  EXPECT_TRUE(ApiAnswers(Socket()));
  std::ifstream pid_file(dir_ + "/.turnout/turnoutd.pid");
  pid_t pid = 0;
  pid_file >> pid;
  EXPECT_EQ(pid, daemon_->pid()) << "turnout up --foreground forked";
  EXPECT_TRUE(WaitFor(notify, "WATCHDOG=1", seen, milliseconds(2000)));
  const std::string log = DaemonOutput();
  EXPECT_NE(log.find("turnoutd: ready: service demo"), std::string::npos) << log;

  ASSERT_TRUE(daemon_->Signal(SIGTERM).ok());
  EXPECT_TRUE(WaitFor(notify, "STOPPING=1", seen, milliseconds(10000)));
  Result<int> status = daemon_->Wait(milliseconds(20000));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  daemon_.reset();

  // A definition turnoutd cannot run: a non-zero exit, nothing left running.
  std::ofstream(dir_ + "/turnout.yaml") << "name: demo\nplatform: {}\n";
  auto bad = ChildProcess::Start(
      {TURNOUT_BINARY, "up", "--foreground", "--config", dir_ + "/turnout.yaml"},
      {std::string("TURNOUTD=") + TURNOUTD_BINARY}, /*stderr_too=*/true);
  ASSERT_TRUE(bad.ok());
  Result<int> bad_status = bad->Wait(milliseconds(20000));
  ASSERT_TRUE(bad_status.ok());
  EXPECT_TRUE(WIFEXITED(*bad_status) && WEXITSTATUS(*bad_status) != 0);
}

}  // namespace
}  // namespace turnout::daemon
