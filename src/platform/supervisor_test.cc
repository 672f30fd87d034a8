#include "platform/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "platform/process_platform.h"
#include "platform/testing/test_util.h"

namespace turnout::platform {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::InstanceCleaner;
using testing::TempDir;
using testing::WaitForFileContains;
using Type = SupervisorEvent::Type;

constexpr milliseconds kWait = seconds(20);

// Real processes, time from a ManualClock: the supervisor's decisions depend only on the times
// given to Tick, the processes' ends are real events waited for with Platform::Wait.
class SupervisorTest : public ::testing::Test {
 protected:
  InstanceSpec Spec(const std::string& script) {
    InstanceSpec spec;
    spec.service = "svc";
    spec.version = "v1";
    spec.slot = "blue";
    spec.command = "sh -c '" + script + "'";
    spec.working_dir = dir_.path();
    spec.log_dir = dir_.path();
    spec.grace = milliseconds(0);
    return spec;
  }

  // Launches `spec` and starts supervising it as "svc".
  void Start(const InstanceSpec& spec, SupervisorOptions options = {}) {
    supervisor_ = std::make_unique<Supervisor>(platform_, options, [this](const auto& e) {
      events_.push_back(e);
      if (e.type == Type::kRestarted) cleaner_.Add(e.handle);
    });
    Result<InstanceHandle> h = platform_.Launch(spec);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    cleaner_.Add(*h);
    supervisor_->Watch("svc", spec, *h, clock_.Now());
  }

  // Waits until the current instance really ended.
  void WaitForCurrentToEnd() {
    Result<InstanceHandle> h = supervisor_->Current("svc");
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    Result<InstanceStatus> s = platform_.Wait(*h, kWait);
    ASSERT_TRUE(s.ok());
    ASSERT_FALSE(s->running());
  }

  std::vector<SupervisorEvent> TakeEvents() { return std::exchange(events_, {}); }
  void Tick() { supervisor_->Tick(clock_.Now()); }

  TempDir dir_;
  ManualClock clock_;
  ProcessPlatform platform_;
  InstanceCleaner cleaner_{platform_};
  std::unique_ptr<Supervisor> supervisor_;
  std::vector<SupervisorEvent> events_;
};

TEST(SupervisorBackoffTest, DoublesUpToTheCap) {
  ProcessPlatform platform;
  Supervisor s(platform, {}, nullptr);
  std::vector<int64_t> got;
  for (int i = 0; i < 9; ++i) {
    got.push_back(std::chrono::duration_cast<seconds>(s.BackoffFor(i)).count());
  }
  EXPECT_EQ(got, (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 60, 60, 60}));
}

TEST_F(SupervisorTest, RestartsCrashedInstanceWithExponentialBackoff) {
  Start(Spec("echo started; exit 3"));
  const std::vector<Clock::Duration> expected = {seconds(1),  seconds(2),  seconds(4),
                                                 seconds(8),  seconds(16), seconds(32),
                                                 seconds(60), seconds(60)};
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("crash " + std::to_string(i + 1));
    WaitForCurrentToEnd();
    Tick();
    std::vector<SupervisorEvent> events = TakeEvents();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, Type::kExited);
    EXPECT_EQ(events[0].status, (InstanceStatus{InstanceState::kExited, 3, std::nullopt}));
    EXPECT_EQ(events[1].type, Type::kRestartScheduled);
    EXPECT_EQ(events[1].delay, expected[i]);
    EXPECT_EQ(events[1].attempt, static_cast<int>(i + 1));
    EXPECT_EQ(supervisor_->Current("svc").status().code(), StatusCode::kFailedPrecondition);

    clock_.Advance(expected[i] - milliseconds(1));
    Tick();
    EXPECT_TRUE(TakeEvents().empty()) << "restarted before its delay";
    clock_.Advance(milliseconds(1));
    Tick();
    events = TakeEvents();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, Type::kRestarted);
    EXPECT_EQ(*supervisor_->Current("svc"), events[0].handle);
  }
}

TEST_F(SupervisorTest, BackoffResetsAfterStayingUp) {
  // Crashes until the file "stay" exists, then runs.
  Start(Spec("if [ -e stay ]; then echo up; exec sleep 60; fi; exit 1"));
  for (Clock::Duration delay : {seconds(1), seconds(2), seconds(4)}) {
    WaitForCurrentToEnd();
    Tick();
    ASSERT_EQ(TakeEvents().back().delay, delay);
    clock_.Advance(delay);
    if (delay == seconds(4)) std::ofstream(dir_.path() + "/stay") << "";
    Tick();
    ASSERT_EQ(TakeEvents().back().type, Type::kRestarted);
  }
  Result<InstanceHandle> up = supervisor_->Current("svc");
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(WaitForFileContains(up->log_path, "up", kWait).ok());
  clock_.Advance(seconds(29));
  Tick();
  EXPECT_TRUE(TakeEvents().empty());
  clock_.Advance(seconds(1));  // up for reset_after (30s)
  Tick();
  EXPECT_TRUE(TakeEvents().empty());

  // It crashes (we started it; signalling its verified pid is ours to do).
  ASSERT_EQ(::kill(up->pid, SIGKILL), 0);
  WaitForCurrentToEnd();
  Tick();
  std::vector<SupervisorEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].status, (InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL}));
  EXPECT_EQ(events[1].delay, seconds(1));
  EXPECT_EQ(events[1].attempt, 1);
}

TEST_F(SupervisorTest, QuickCrashAfterRestartKeepsGrowing) {
  // The failure count only resets after reset_after of uptime: a crash 29s after start still
  // counts as a crash loop.
  Start(Spec("exit 1"));
  WaitForCurrentToEnd();
  Tick();
  ASSERT_EQ(TakeEvents().back().delay, seconds(1));
  clock_.Advance(seconds(1));
  Tick();
  ASSERT_EQ(TakeEvents().back().type, Type::kRestarted);
  WaitForCurrentToEnd();
  clock_.Advance(seconds(29));
  Tick();
  EXPECT_EQ(TakeEvents().back().delay, seconds(2));
}

TEST_F(SupervisorTest, UnwatchedInstanceIsNotRestarted) {
  Start(Spec("exit 1"));
  ASSERT_TRUE(supervisor_->Unwatch("svc").ok());
  EXPECT_EQ(supervisor_->Unwatch("svc").code(), StatusCode::kNotFound);
  clock_.Advance(seconds(120));
  Tick();
  EXPECT_TRUE(TakeEvents().empty());
  EXPECT_EQ(supervisor_->Current("svc").status().code(), StatusCode::kNotFound);
}

TEST_F(SupervisorTest, FailedRelaunchIsRetriedWithLongerDelays) {
  std::string work = dir_.path() + "/work";
  std::filesystem::create_directory(work);
  InstanceSpec spec = Spec("exit 1");
  spec.working_dir = work;
  Start(spec);
  WaitForCurrentToEnd();
  std::filesystem::remove(work);  // the next launches cannot chdir
  Tick();
  ASSERT_EQ(TakeEvents().back().delay, seconds(1));
  clock_.Advance(seconds(1));
  Tick();
  std::vector<SupervisorEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kRestartFailed);
  EXPECT_FALSE(events[0].error.ok());
  EXPECT_EQ(events[0].delay, seconds(2));
  clock_.Advance(seconds(2));
  Tick();
  events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].delay, seconds(4));

  std::filesystem::create_directory(work);
  clock_.Advance(seconds(4));
  Tick();
  ASSERT_EQ(TakeEvents().back().type, Type::kRestarted);
}

TEST_F(SupervisorTest, RestartsRealDemoAppThatCrashed) {
  Result<uint16_t> port = testing::FreePort();
  ASSERT_TRUE(port.ok());
  InstanceSpec spec;
  spec.service = "web";
  spec.version = "v1";
  spec.slot = "green";
  spec.port = *port;
  spec.command = std::string(TURNOUT_DEMO_APP_BINARY) +
                 " --listen 127.0.0.1:{port} --version {version} --crash-after 300ms";
  spec.log_dir = dir_.path();
  Start(spec);

  WaitForCurrentToEnd();  // --crash-after: it SIGKILLs itself
  Tick();
  std::vector<SupervisorEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].status, (InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL}));
  ASSERT_TRUE(testing::ReadFile(events[0].handle.log_path).find("listening on") !=
              std::string::npos);
  std::filesystem::resize_file(events[0].handle.log_path, 0);
  clock_.Advance(events[1].delay);
  Tick();
  events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].type, Type::kRestarted);
  EXPECT_NE(events[0].handle.pid, 0);
  // The relaunched process listens on the same port again (the log was emptied before the
  // restart, so this line is the new process's).
  ASSERT_TRUE(WaitForFileContains(events[0].handle.log_path,
                                  "listening on 127.0.0.1:" + std::to_string(*port), kWait)
                  .ok());
}

TEST_F(SupervisorTest, RotatesLogsOfRunningInstances) {
  SupervisorOptions options;
  options.log_rotation = LogRotationOptions{.max_bytes = 100, .keep = 2};
  Start(Spec("i=0; while [ $i -lt 50 ]; do echo line-$i; i=$((i+1)); done; echo done; "
             "exec sleep 60"),
        options);
  Result<InstanceHandle> h = supervisor_->Current("svc");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(WaitForFileContains(h->log_path, "done", kWait).ok());
  Tick();
  std::vector<SupervisorEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kLogRotated);
  EXPECT_EQ(std::filesystem::file_size(h->log_path), 0u);
  std::string rotated = testing::ReadFile(h->log_path + ".1");
  EXPECT_NE(rotated.find("line-0\n"), std::string::npos);
  EXPECT_NE(rotated.find("done\n"), std::string::npos);
  Tick();
  EXPECT_TRUE(TakeEvents().empty());
}

}  // namespace
}  // namespace turnout::platform
