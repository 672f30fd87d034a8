#include "systemd/service_manager.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "systemd/testing/notify_socket.h"

namespace turnout::systemd {
namespace {

using std::chrono::milliseconds;
using testing::HasLine;
using testing::NotifySocket;

class ServiceManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/turnout-notify-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_.emplace(dir_ + "/notify.sock");
    ::setenv("NOTIFY_SOCKET", socket_->path().c_str(), 1);
    TakeNotifyEnvironment();
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    TakeNotifyEnvironment();
    socket_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The datagrams that arrive within `window`.
  int CountWatchdogPings(milliseconds window) {
    int pings = 0;
    const auto end = std::chrono::steady_clock::now() + window;
    while (std::chrono::steady_clock::now() < end) {
      auto left = std::chrono::duration_cast<milliseconds>(end - std::chrono::steady_clock::now());
      auto m = socket_->Receive(std::max(left, milliseconds(1)));
      if (m && HasLine(*m, "WATCHDOG=1")) ++pings;
    }
    return pings;
  }

  std::string dir_;
  std::optional<NotifySocket> socket_;
};

TEST_F(ServiceManagerTest, ReadyStatusAndStoppingAreSentAsProtocolLines) {
  NotifyReady("serving on\n127.0.0.1:1");
  auto ready = socket_->Receive(milliseconds(2000));
  ASSERT_TRUE(ready);
  EXPECT_TRUE(HasLine(*ready, "READY=1")) << *ready;
  EXPECT_TRUE(HasLine(*ready, "STATUS=serving on 127.0.0.1:1")) << *ready;  // one line
  NotifyStatus("draining");
  auto status = socket_->Receive(milliseconds(2000));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, "STATUS=draining");
  NotifyStopping("SIGTERM");
  auto stopping = socket_->Receive(milliseconds(2000));
  ASSERT_TRUE(stopping);
  EXPECT_TRUE(HasLine(*stopping, "STOPPING=1")) << *stopping;
}

// Children (the router process, app instances, hooks) inherit the environment: they must not
// find the service manager's socket in it and report in the parent's name.
TEST_F(ServiceManagerTest, TheVariablesAreTakenOutOfTheEnvironment) {
  ::setenv("NOTIFY_SOCKET", socket_->path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "100000", 1);
  TakeNotifyEnvironment();
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(WatchdogTimeout(), std::chrono::microseconds(100000));
  NotifyStatus("still told");  // kept for this process's own calls
  auto m = socket_->Receive(milliseconds(2000));
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, "STATUS=still told");
}

TEST_F(ServiceManagerTest, NothingHappensWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  TakeNotifyEnvironment();
  NotifyReady("x");  // must not fail or block
  EXPECT_FALSE(socket_->Receive(milliseconds(50)));
}

TEST_F(ServiceManagerTest, NoWatchdogThreadWithoutWatchdogUsec) {
  EXPECT_EQ(WatchdogTimeout().count(), 0);
  std::atomic<int> calls{0};
  {
    Watchdog w([&] { return ++calls > 0; });
    EXPECT_EQ(w.interval().count(), 0);
    EXPECT_EQ(CountWatchdogPings(milliseconds(150)), 0);
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(ServiceManagerTest, WatchdogForAnotherPidIsNotOurs) {
  ::setenv("WATCHDOG_USEC", "100000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  ::setenv("NOTIFY_SOCKET", socket_->path().c_str(), 1);
  TakeNotifyEnvironment();
  EXPECT_EQ(WatchdogTimeout().count(), 0);
}

TEST_F(ServiceManagerTest, PingsAtHalfTheTimeoutOnlyWhileAlive) {
  ::setenv("WATCHDOG_USEC", "100000", 1);  // 100 ms: a ping every 50 ms
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("NOTIFY_SOCKET", socket_->path().c_str(), 1);
  TakeNotifyEnvironment();
  std::atomic<bool> alive{true};
  Watchdog w([&] { return alive.load(); });
  EXPECT_EQ(w.interval(), std::chrono::microseconds(50000));
  // 500 ms hold about ten pings; a loaded machine may delay some.
  const int while_alive = CountWatchdogPings(milliseconds(500));
  EXPECT_GE(while_alive, 4);
  EXPECT_LE(while_alive, 11);
  alive = false;
  (void)CountWatchdogPings(milliseconds(150));  // a ping already decided may still arrive
  EXPECT_EQ(CountWatchdogPings(milliseconds(300)), 0);
  alive = true;
  EXPECT_GE(CountWatchdogPings(milliseconds(300)), 1);
}

TEST_F(ServiceManagerTest, AnAnswerSlowerThanTheIntervalDoesNotCount) {
  ::setenv("WATCHDOG_USEC", "100000", 1);
  ::setenv("NOTIFY_SOCKET", socket_->path().c_str(), 1);
  TakeNotifyEnvironment();
  std::atomic<bool> slow{true};
  Watchdog w([&] {
    if (slow) std::this_thread::sleep_for(milliseconds(80));  // > 50 ms
    return true;
  });
  EXPECT_EQ(CountWatchdogPings(milliseconds(400)), 0);
  slow = false;
  EXPECT_GE(CountWatchdogPings(milliseconds(300)), 1);
}

}  // namespace
}  // namespace turnout::systemd
