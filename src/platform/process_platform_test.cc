#include "platform/process_platform.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "demo/test_support.h"
#include "platform/proc.h"
#include "platform/testing/platform_contract.h"
#include "platform/testing/test_util.h"

namespace turnout::platform {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FreePort;
using testing::InstanceCleaner;
using testing::ReadFile;
using testing::TempDir;
using testing::WaitForFileContains;
namespace demo = ::turnout::demo::testing;

constexpr milliseconds kWait = seconds(20);

class ProcessPlatformTest : public ::testing::Test {
 protected:
  InstanceSpec DemoSpec(uint16_t port) {
    InstanceSpec spec;
    spec.service = "web";
    spec.version = "v1";
    spec.slot = "blue";
    spec.port = port;
    spec.command = std::string(TURNOUT_DEMO_APP_BINARY) +
                   " --listen 127.0.0.1:{port} --version {version} --slot {slot}";
    spec.log_dir = dir_.path() + "/logs";
    return spec;
  }
  InstanceSpec ShellSpec(const std::string& script) {
    InstanceSpec spec;
    spec.service = "job";
    spec.version = "v7";
    spec.slot = "green";
    spec.instance = 2;
    spec.port = 4321;
    spec.command = "sh -c '" + script + "'";
    spec.log_dir = dir_.path();
    return spec;
  }
  // Launches and registers for cleanup.
  InstanceHandle MustLaunch(const InstanceSpec& spec) {
    Result<InstanceHandle> h = platform_.Launch(spec);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return InstanceHandle{};
    cleaner_.Add(*h);
    return *h;
  }
  InstanceState StateOf(const InstanceHandle& h) {
    Result<InstanceStatus> s = platform_.Inspect(h);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->state : InstanceState::kGone;
  }

  TempDir dir_;
  ProcessPlatform platform_;
  InstanceCleaner cleaner_{platform_};
};

TEST_F(ProcessPlatformTest, LaunchedDemoAppServesAndStopsGracefullyOnSigterm) {
  Result<uint16_t> port = FreePort();
  ASSERT_TRUE(port.ok());
  InstanceSpec spec = DemoSpec(*port);
  InstanceHandle h = MustLaunch(spec);
  ASSERT_GT(h.pid, 0);
  EXPECT_EQ(h.port, *port);
  EXPECT_EQ(h.spec_hash, SpecHash(spec));
  EXPECT_EQ(h.log_path, dir_.path() + "/logs/web-blue-0.log");
  EXPECT_EQ(h.id, "web-blue-0-" + std::to_string(h.pid));
  EXPECT_EQ(h.start_time_ticks, ReadProcStat(h.pid)->start_time_ticks);
  EXPECT_EQ(h.boot_id, *BootId());

  ASSERT_TRUE(WaitForFileContains(h.log_path, "listening on", kWait).ok());
  Result<demo::HttpReply> reply = demo::Get(*port, "/version");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_NE(reply->body.find("\"v1\""), std::string::npos) << reply->body;
  EXPECT_NE(reply->body.find("\"blue\""), std::string::npos) << reply->body;
  // Its own session and process group, so it outlives us and is stopped as a group.
  EXPECT_EQ(::getsid(h.pid), h.pid);
  EXPECT_EQ(::getpgid(h.pid), h.pid);
  EXPECT_EQ(StateOf(h), InstanceState::kRunning);

  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(platform_.Stop(h).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, spec.grace);
  Result<InstanceStatus> status = platform_.Inspect(h);
  ASSERT_TRUE(status.ok());
  // The demo app exits 0 on SIGTERM: it was not killed.
  EXPECT_EQ(*status, (InstanceStatus{InstanceState::kExited, 0, std::nullopt}))
      << status->ToString();
  EXPECT_TRUE(demo::ConnectRefused(*port));
  // Idempotent.
  EXPECT_TRUE(platform_.Stop(h).ok());
}

TEST_F(ProcessPlatformTest, EnvironmentPlaceholdersStdinAndLogs) {
  // A descriptor the daemon leaked without O_CLOEXEC must not reach the app.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  ::setenv("TURNOUT_PLATFORM_TEST_INHERITED", "inherited", 1);
  InstanceSpec spec = ShellSpec("");
  spec.command =
      "sh -c '"
      "echo \"env $TURNOUT_VERSION $TURNOUT_SLOT $TURNOUT_PORT $TURNOUT_INSTANCE $EXTRA "
      "$TURNOUT_PLATFORM_TEST_INHERITED\"; echo \"args $0 $1\"; "
      "if read line; then echo stdin-had-data; else echo stdin-empty; fi; "
      "if [ -e /proc/$$/fd/" +
      std::to_string(leaked) +
      " ]; then echo fd-leaked; fi; "
      "echo \"cwd $(pwd)\"; echo to-stderr >&2; exit 3' {version}-{slot} {instance}:{port}";
  spec.env = {{"EXTRA", "first"}, {"EXTRA", "second"}, {"TURNOUT_PORT", "overridden-by-platform"}};
  spec.working_dir = dir_.path();
  InstanceHandle h = MustLaunch(spec);
  Result<InstanceStatus> status = platform_.Wait(h, kWait);
  ::close(leaked);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, (InstanceStatus{InstanceState::kExited, 3, std::nullopt}))
      << status->ToString();
  std::string log = ReadFile(dir_.path() + "/job-green-2.log");
  EXPECT_NE(log.find("env v7 green 4321 2 second inherited\n"), std::string::npos) << log;
  EXPECT_NE(log.find("args v7-green 2:4321\n"), std::string::npos) << log;
  EXPECT_NE(log.find("stdin-empty\n"), std::string::npos) << log;
  EXPECT_EQ(log.find("fd-leaked"), std::string::npos) << log;
  std::string cwd = std::filesystem::canonical(dir_.path()).string();
  EXPECT_NE(log.find("cwd " + cwd + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("to-stderr\n"), std::string::npos) << log;

  // A second launch appends to the same file.
  InstanceHandle again = MustLaunch(spec);
  ASSERT_TRUE(platform_.Wait(again, kWait).ok());
  std::string log2 = ReadFile(dir_.path() + "/job-green-2.log");
  EXPECT_EQ(log2.substr(0, log.size()), log);
  EXPECT_GT(log2.size(), log.size());
}

TEST_F(ProcessPlatformTest, ResolvedSecretsReachTheEnvironmentAfterTheSpecsOwn) {
  InstanceSpec spec = ShellSpec("echo \"secret $API_KEY $API_KEY_PREVIOUS\"; exit 0");
  spec.env = {{"API_KEY", "from-env"}};
  spec.secrets = {SecretRef{"API_KEY", "env", 2, "hmac-sha256:00112233aabbccdd", 1,
                            "hmac-sha256:99887766aabbccdd"}};
  spec.secret_env = {{"API_KEY", "new-value"}, {"API_KEY_PREVIOUS", "old-value"}};
  InstanceHandle h = MustLaunch(spec);
  ASSERT_TRUE(platform_.Wait(h, kWait).ok());
  const std::string log = ReadFile(h.log_path);
  EXPECT_NE(log.find("secret new-value old-value\n"), std::string::npos) << log;
}

TEST_F(ProcessPlatformTest, ProcessIgnoringStopSignalIsKilledAfterGrace) {
  InstanceSpec spec = ShellSpec("trap \"\" TERM; sleep 60 & echo trapped; wait");
  spec.grace = milliseconds(300);
  InstanceHandle h = MustLaunch(spec);
  ASSERT_TRUE(WaitForFileContains(h.log_path, "trapped", kWait).ok());
  // The shell and its `sleep` form the instance's process group.
  std::vector<pid_t> group = testing::GroupMembers(h.pid);
  ASSERT_EQ(group.size(), 2u);

  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(platform_.Stop(h).ok());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, seconds(5));
  Result<InstanceStatus> status = platform_.Inspect(h);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, (InstanceStatus{InstanceState::kExited, std::nullopt, SIGKILL}))
      << status->ToString();
  for (pid_t member : group) {
    EXPECT_TRUE(testing::WaitPidGone(member, kWait)) << "pid " << member << " still runs";
  }
}

TEST_F(ProcessPlatformTest, StopSendsTheConfiguredSignal) {
  InstanceSpec spec = ShellSpec("trap \"echo got-usr1; exit 5\" USR1; sleep 60 & echo ready; wait");
  spec.stop_signal = SIGUSR1;
  InstanceHandle h = MustLaunch(spec);
  EXPECT_EQ(h.stop_signal, SIGUSR1);
  ASSERT_TRUE(WaitForFileContains(h.log_path, "ready", kWait).ok());
  ASSERT_TRUE(platform_.Stop(h).ok());
  EXPECT_EQ(*platform_.Inspect(h), (InstanceStatus{InstanceState::kExited, 5, std::nullopt}));
  EXPECT_NE(ReadFile(h.log_path).find("got-usr1"), std::string::npos);
}

TEST_F(ProcessPlatformTest, InspectReportsExitCodeAndSignal) {
  InstanceHandle h = MustLaunch(ShellSpec("exit 7"));
  Result<InstanceStatus> status = platform_.Wait(h, kWait);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, (InstanceStatus{InstanceState::kExited, 7, std::nullopt}));
  // Remembered after the reap, and Stop of an ended instance is a no-op.
  EXPECT_EQ(*platform_.Inspect(h), *status);
  EXPECT_TRUE(platform_.Stop(h).ok());

  InstanceHandle killed = MustLaunch(ShellSpec("kill -SEGV $$"));
  status = platform_.Wait(killed, kWait);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, (InstanceStatus{InstanceState::kExited, std::nullopt, SIGSEGV}));

  // Wait returns kRunning at its deadline.
  InstanceHandle running = MustLaunch(ShellSpec("exec sleep 60"));
  status = platform_.Wait(running, milliseconds(50));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, InstanceState::kRunning);
}

TEST_F(ProcessPlatformTest, ReusedPidIsNeverSignalled) {
  // `sleep` dies of SIGTERM and of SIGKILL alike: if it were signalled it would be gone.
  InstanceHandle real = MustLaunch(ShellSpec("exec sleep 60"));
  InstanceHandle reused = real;
  reused.start_time_ticks += 1;  // same pid, a different process's start time
  reused.grace = milliseconds(0);

  EXPECT_EQ(StateOf(reused), InstanceState::kPidReused);
  EXPECT_TRUE(platform_.Stop(reused).ok());
  EXPECT_EQ(platform_.Adopt(reused)->state, InstanceState::kPidReused);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(platform_.Wait(reused, seconds(5))->state, InstanceState::kPidReused);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(1));

  InstanceHandle other_boot = real;
  other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_EQ(StateOf(other_boot), InstanceState::kGone);
  EXPECT_TRUE(platform_.Stop(other_boot).ok());

  EXPECT_EQ(StateOf(real), InstanceState::kRunning);
  EXPECT_EQ(platform_.Wait(real, milliseconds(100))->state, InstanceState::kRunning);
  ASSERT_TRUE(platform_.Stop(real).ok());
  EXPECT_EQ(*platform_.Inspect(real),
            (InstanceStatus{InstanceState::kExited, std::nullopt, SIGTERM}));
}

// A handle another platform wrote is never read as a process: not even when its fields would
// name a live one.
TEST_F(ProcessPlatformTest, AHandleOfAnotherKindIsRefusedAndItsPidNeverSignalled) {
  Result<uint16_t> port = FreePort();
  ASSERT_TRUE(port.ok());
  InstanceHandle launched = MustLaunch(DemoSpec(*port));
  InstanceHandle foreign = launched;
  foreign.kind = "container";
  foreign.id = "4f1c2a9b";
  for (Status s :
       {platform_.Stop(foreign), platform_.Inspect(foreign).status(),
        platform_.Adopt(foreign).status(), platform_.Wait(foreign, milliseconds(1)).status()}) {
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_NE(s.message().find("instance 4f1c2a9b was launched by the container platform; this "
                               "turnoutd runs the process platform"),
              std::string::npos)
        << s.ToString();
  }
  EXPECT_EQ(StateOf(launched), InstanceState::kRunning);
}

TEST_F(ProcessPlatformTest, AllocatesFixedPortsOrFreeOnesAndTheHandleCarriesTheAddress) {
  AddressRequest fixed;
  fixed.service = "web";
  fixed.slot = "green";
  fixed.slot_index = 1;
  fixed.instance = 1;
  fixed.replicas = 2;
  fixed.first_port = 30000;
  Result<InstanceAddress> a = platform_.AllocateAddress(fixed);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->ToString(), "127.0.0.1:30003");
  fixed.first_port = 65534;
  EXPECT_EQ(platform_.AllocateAddress(fixed).status().code(), StatusCode::kInvalidArgument);

  AddressRequest any;
  any.service = "web";
  any.slot = "blue";
  Result<InstanceAddress> first = platform_.AllocateAddress(any);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_NE(first->port, 0);
  any.in_use = {first->ToString()};
  for (int i = 0; i < 5; ++i) {
    Result<InstanceAddress> next = platform_.AllocateAddress(any);
    ASSERT_TRUE(next.ok());
    EXPECT_NE(next->port, first->port);
  }
  any.host = "not-an-ip";
  EXPECT_EQ(platform_.AllocateAddress(any).status().code(), StatusCode::kInvalidArgument);

  InstanceHandle h = MustLaunch(DemoSpec(first->port));
  EXPECT_EQ(h.address, first->ToString());
  EXPECT_EQ(h.kind, "process");
}

TEST_F(ProcessPlatformTest, SecondPlatformAdoptsAndStops) {
  Result<uint16_t> port = FreePort();
  ASSERT_TRUE(port.ok());
  InstanceHandle launched = MustLaunch(DemoSpec(*port));
  ASSERT_TRUE(WaitForFileContains(launched.log_path, "listening on", kWait).ok());

  // The handle goes through its persisted form, as after a daemon restart.
  Result<InstanceHandle> h = DecodeHandle(EncodeHandle(launched));
  ASSERT_TRUE(h.ok());
  ProcessPlatform second;
  Result<InstanceStatus> adopted = second.Adopt(*h);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ(adopted->state, InstanceState::kRunning);
  ASSERT_TRUE(second.Stop(*h).ok());
  EXPECT_TRUE(demo::ConnectRefused(*port));
  EXPECT_FALSE(second.Inspect(*h)->running());
  EXPECT_FALSE(platform_.Inspect(launched)->running());
}

TEST_F(ProcessPlatformTest, AdoptsAndStopsOrphanOfKilledLauncher) {
  Result<uint16_t> port = FreePort();
  ASSERT_TRUE(port.ok());
  InstanceSpec spec = DemoSpec(*port);
  Result<demo::ChildProcess> launcher = demo::ChildProcess::Start(
      {TURNOUT_PLATFORM_LAUNCH_HELPER, spec.log_dir, std::to_string(*port), spec.command});
  ASSERT_TRUE(launcher.ok()) << launcher.status().ToString();
  Result<std::string> line = launcher->ReadLine(kWait);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  Result<InstanceHandle> h = DecodeHandle(*line);
  ASSERT_TRUE(h.ok()) << h.status().ToString() << " in " << *line;
  cleaner_.Add(*h);
  // The helper launched with its stdin closed, so the log file was descriptor 0 there; the
  // app's output still reaches it.
  ASSERT_TRUE(WaitForFileContains(h->log_path, "listening on", kWait).ok());

  // kill -9 of the "daemon": the instance must survive it.
  ASSERT_TRUE(launcher->Signal(SIGKILL).ok());
  Result<int> launcher_status = launcher->Wait(kWait);
  ASSERT_TRUE(launcher_status.ok());
  ASSERT_TRUE(WIFSIGNALED(*launcher_status));

  Result<InstanceStatus> adopted = platform_.Adopt(*h);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ(adopted->state, InstanceState::kRunning);
  EXPECT_NE(ReadProcStat(h->pid)->parent, launcher->pid());  // reparented: an orphan now
  Result<demo::HttpReply> reply = demo::Get(*port, "/version");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);

  ASSERT_TRUE(platform_.Stop(*h).ok());
  EXPECT_TRUE(demo::ConnectRefused(*port));
  Result<InstanceStatus> after = platform_.Inspect(*h);
  ASSERT_TRUE(after.ok());
  // Not our child: how it ended is unknown, but it did end.
  EXPECT_FALSE(after->running());
  EXPECT_NE(after->state, InstanceState::kPidReused);
}

// Stop, Wait and Inspect race on the same instances from several threads: each instance is
// reaped once, and everyone agrees how it ended.
TEST_F(ProcessPlatformTest, ConcurrentStopWaitAndInspectAgree) {
  constexpr int kInstances = 4;
  std::vector<InstanceHandle> handles;
  for (int i = 0; i < kInstances; ++i) {
    InstanceSpec spec = ShellSpec("exec sleep 60");
    spec.instance = i;
    handles.push_back(MustLaunch(spec));
  }
  std::vector<Status> stops(kInstances);
  std::vector<Result<InstanceStatus>> waits(kInstances, Result<InstanceStatus>(Internal("unset")));
  std::atomic<bool> done{false};
  std::atomic<int> inspect_errors{0};
  {
    std::vector<std::jthread> threads;
    threads.emplace_back([&] {
      while (!done.load()) {
        for (const InstanceHandle& h : handles) {
          if (!platform_.Inspect(h).ok()) inspect_errors.fetch_add(1);
        }
      }
    });
    std::vector<std::jthread> workers;
    for (int i = 0; i < kInstances; ++i) {
      workers.emplace_back([&, i] { waits[i] = platform_.Wait(handles[i], kWait); });
      workers.emplace_back([&, i] { stops[i] = platform_.Stop(handles[i]); });
    }
    workers.clear();  // joins
    done.store(true);
  }
  const InstanceStatus by_sigterm{InstanceState::kExited, std::nullopt, SIGTERM};
  for (int i = 0; i < kInstances; ++i) {
    EXPECT_TRUE(stops[i].ok()) << stops[i].ToString();
    ASSERT_TRUE(waits[i].ok()) << waits[i].status().ToString();
    EXPECT_EQ(*waits[i], by_sigterm) << waits[i]->ToString();
    EXPECT_EQ(*platform_.Inspect(handles[i]), by_sigterm);
  }
  EXPECT_EQ(inspect_errors.load(), 0);
}

TEST_F(ProcessPlatformTest, LaunchFailuresAreErrors) {
  InstanceSpec missing = ShellSpec("true");
  missing.command = "/nonexistent/turnout-no-such-program --port {port}";
  Result<InstanceHandle> h = platform_.Launch(missing);
  EXPECT_EQ(h.status().code(), StatusCode::kIoError);
  EXPECT_NE(h.status().message().find("/nonexistent/turnout-no-such-program"), std::string::npos)
      << h.status().ToString();

  InstanceSpec bad_dir = ShellSpec("true");
  bad_dir.working_dir = dir_.path() + "/no-such-dir";
  EXPECT_FALSE(platform_.Launch(bad_dir).ok());

  InstanceSpec bad_version = ShellSpec("true");
  bad_version.version = "v1;reboot";
  EXPECT_EQ(platform_.Launch(bad_version).status().code(), StatusCode::kInvalidArgument);

  InstanceSpec bad_quote = ShellSpec("true");
  bad_quote.command = "sh -c 'unterminated";
  EXPECT_EQ(platform_.Launch(bad_quote).status().code(), StatusCode::kInvalidArgument);
}

// The Platform contract (platform/testing/platform_contract.h): the demo app serving, `sh -c
// 'exit N'` exiting.
const TempDir& ContractDir() {
  static const TempDir dir;
  return dir;
}

using testing::PlatformContractTest;
INSTANTIATE_TEST_SUITE_P(Process, PlatformContractTest,
                         ::testing::Values(testing::PlatformContract{
                             .name = "ProcessPlatform",
                             .make = [](int) -> std::unique_ptr<Platform> {
                               return std::make_unique<ProcessPlatform>();
                             },
                             .complete =
                                 [](InstanceSpec& spec, int exit_code) {
                                   spec.command =
                                       exit_code < 0
                                           ? std::string(TURNOUT_DEMO_APP_BINARY) +
                                                 " --listen 127.0.0.1:{port} --version {version}"
                                           : "sh -c 'exit " + std::to_string(exit_code) + "'";
                                   spec.log_dir = ContractDir().path();
                                 }}),
                         testing::ContractName);

}  // namespace
}  // namespace turnout::platform
