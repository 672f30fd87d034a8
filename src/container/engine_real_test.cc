// EngineClient against real engines started by the tests (testing/engine_service.h) on a socket
// in a temporary directory: Podman's API service (required) and dockerd (where installed), each
// test once per engine, with the statically linked test app imported as an image. Containers use
// host networking or a port published on 127.0.0.1 only.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "container/engine_client.h"
#include "container/testing/engine_service.h"
#include "httpc/client.h"
#include "platform/testing/test_util.h"

namespace turnout::container {
namespace {

using Clock = std::chrono::steady_clock;
using testing::EngineKind;
using testing::EngineName;
using testing::EngineService;
using testing::kTestImage;
using testing::SharedEngine;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

class RealEngineTest : public ::testing::TestWithParam<EngineKind> {
 protected:
  void SetUp() override {
    std::string why;
    engine_ = SharedEngine(GetParam(), &why);
    // Podman is what scripts/install-deps.sh installs: without it these tests fail rather than
    // pass silently. dockerd is optional (install-deps.sh --dockerd).
    if (engine_ == nullptr && GetParam() == EngineKind::kPodman) {
      FAIL() << "no podman here (scripts/install-deps.sh installs it): " << why;
    }
    if (engine_ == nullptr) GTEST_SKIP() << "no " << EngineName(GetParam()) << " here: " << why;
    client_.emplace(engine_->socket(), Millis(20000));
    // A label value of this test only: lists and clean-up never see another test's containers.
    run_label_ = "turnout.test=" +
                 std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (!client_) return;
    auto mine = client_->ContainerList({run_label_});
    if (!mine.ok()) return;
    for (const auto& c : *mine) (void)client_->ContainerRemove(c.id, /*force=*/true);
  }

  ContainerSpec Spec(std::string name) const {
    ContainerSpec spec;
    spec.name = std::move(name);
    spec.image = kTestImage;
    size_t eq = run_label_.find('=');
    spec.labels = {{run_label_.substr(0, eq), run_label_.substr(eq + 1)}};
    spec.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
    return spec;
  }

  // The test app serving with host networking on a loopback port the OS handed out (`*port`).
  ContainerSpec HostSpec(std::string name, uint16_t* port) const {
    auto free = platform::testing::FreePort();
    EXPECT_TRUE(free.ok()) << free.status().ToString();
    *port = free.value_or(0);
    ContainerSpec spec = Spec(std::move(name));
    spec.network_mode = "host";
    spec.env = {"PORT=" + std::to_string(*port)};
    return spec;
  }

  // Polls the app until it answers 200; the time it took, or -1.
  static int64_t FirstOk(const std::string& url, Clock::time_point since) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      httpc::Request req;
      req.url = url;
      req.timeout = Millis(1000);
      auto resp = httpc::Fetch(req);
      if (resp.ok() && resp->status == 200) return MillisSince(since);
      std::this_thread::yield();
    }
    return -1;
  }

  // Creates and starts `spec`, waits for its exit; the container's id in `*id`.
  Result<WaitResult> RunToExit(const ContainerSpec& spec, std::string* id) {
    TURNOUT_ASSIGN_OR_RETURN(*id, client_->ContainerCreate(spec));
    TURNOUT_RETURN_IF_ERROR(client_->ContainerStart(*id));
    return client_->ContainerWait(*id, Millis(20000));
  }

  std::string NoBridge() const {
    return EngineName(GetParam()) + " runs here without a bridge (--bridge=none " +
           "--iptables=false: it would leave docker0 and iptables chains behind)";
  }

  EngineService* engine_ = nullptr;
  std::optional<EngineClient> client_;
  std::string run_label_;
};

TEST_P(RealEngineTest, PingAndVersion) {
  auto client = EngineClient::Connect({.address = "unix://" + engine_->socket()});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto v = client->Version();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->api_version, "1.41");
  EXPECT_EQ(v->podman, GetParam() == EngineKind::kPodman);
}

TEST_P(RealEngineTest, ImageInspectAndList) {
  auto image = client_->ImageInspect(kTestImage);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->id.rfind("sha256:", 0), 0u) << image->id;
  auto images = client_->ImageList();
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  bool found = false;
  for (const auto& i : *images) found = found || i.id == image->id;
  EXPECT_TRUE(found);
}

TEST_P(RealEngineTest, HostNetworkLifecycle) {
  uint16_t port = 0;
  ContainerSpec spec = HostSpec("tt-host-life", &port);
  spec.stop_timeout_s = 5;

  auto t0 = Clock::now();
  auto id = client_->ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  int64_t create_ms = MillisSince(t0);
  ASSERT_TRUE(client_->ContainerStart(*id).ok());
  int64_t start_ms = MillisSince(t0);
  EXPECT_TRUE(client_->ContainerStart(*id).ok()) << "starting a running container is no error";
  int64_t first_ok_ms = FirstOk("http://127.0.0.1:" + std::to_string(port) + "/hi", t0);
  ASSERT_GE(first_ok_ms, 0) << "the app never answered on 127.0.0.1:" << port;
  httpc::Request req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/hi";
  auto resp = httpc::Fetch(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->body, "v1 /hi\n");

  auto info = client_->ContainerInspect(*id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name, "tt-host-life");
  EXPECT_TRUE(info->state.running);
  EXPECT_EQ(info->state.status, "running");
  EXPECT_GT(info->state.pid, 0);
  EXPECT_FALSE(info->state.started_at.empty());
  EXPECT_EQ(info->labels.count("turnout.test"), 1u);
  EXPECT_TRUE(client_->ExplainExit(*id).ok()) << "a running container needs no explanation";

  auto logs = client_->ContainerLogs(*id);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->out, "listening on port " + std::to_string(port) + "\n");
  EXPECT_EQ(logs->err, "serving version v1\n");

  auto stop_start = Clock::now();
  ASSERT_TRUE(client_->ContainerStop(*id, std::chrono::seconds(5)).ok());
  int64_t stop_ms = MillisSince(stop_start);
  EXPECT_TRUE(client_->ContainerStop(*id, std::chrono::seconds(5)).ok())
      << "stopping a stopped container is no error";
  auto waited = client_->ContainerWait(*id, Millis(10000));
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_EQ(waited->exit_code, 0) << "SIGTERM within the grace: a clean exit";
  auto after = client_->ContainerLogs(*id);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->out.find("stopping"), std::string::npos) << after->out;
  auto stopped = client_->ContainerInspect(*id);
  ASSERT_TRUE(stopped.ok());
  EXPECT_FALSE(stopped->state.running);
  EXPECT_EQ(stopped->state.status, "exited");
  EXPECT_FALSE(stopped->state.finished_at.empty());

  auto rm_start = Clock::now();
  ASSERT_TRUE(client_->ContainerRemove(*id).ok());
  int64_t remove_ms = MillisSince(rm_start);
  EXPECT_EQ(client_->ContainerInspect(*id).status().code(), StatusCode::kNotFound);
  std::printf(
      "[timing] create %lld ms, create->started %lld ms, create->first HTTP 200 %lld ms, "
      "stop (SIGTERM) %lld ms, remove %lld ms\n",
      static_cast<long long>(create_ms), static_cast<long long>(start_ms),
      static_cast<long long>(first_ok_ms), static_cast<long long>(stop_ms),
      static_cast<long long>(remove_ms));
}

TEST_P(RealEngineTest, LogsFollowStreamsUntilCancelled) {
  uint16_t port = 0;
  ContainerSpec spec = HostSpec("tt-follow", &port);
  auto id = client_->ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(client_->ContainerStart(*id).ok());
  std::atomic<bool> cancel{false};
  std::string seen;
  LogOptions options;
  options.follow = true;
  options.cancel = &cancel;
  options.on_output = [&](LogStream, std::string_view piece) {
    seen.append(piece);
    if (seen.find("serving version") != std::string::npos) cancel.store(true);
    return true;
  };
  auto start = Clock::now();
  auto logs = client_->ContainerLogs(*id, options);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_TRUE(logs->stopped);
  EXPECT_NE(seen.find("listening on port"), std::string::npos) << seen;
  EXPECT_LT(MillisSince(start), 10000);
  auto info = client_->ContainerInspect(*id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->state.running) << "following logs never stops the container";
}

TEST_P(RealEngineTest, KillEndsItWithTheSignal) {
  uint16_t port = 0;
  ContainerSpec spec = HostSpec("tt-kill", &port);
  auto id = client_->ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(client_->ContainerStart(*id).ok());
  ASSERT_TRUE(client_->ContainerKill(*id, "SIGKILL").ok());
  auto waited = client_->ContainerWait(*id, Millis(10000));
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_EQ(waited->exit_code, 137);
  EXPECT_FALSE(client_->ContainerKill(*id, "SIGKILL").ok()) << "it no longer runs";
}

TEST_P(RealEngineTest, ContainerThatExitsAtOnceIsExplained) {
  ContainerSpec spec = Spec("tt-exit");
  spec.network_mode = "host";
  spec.cmd = {"/app", "exit", "3"};
  spec.env = {"MESSAGE=DATABASE_URL is not set"};
  std::string id;
  auto waited = RunToExit(spec, &id);
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_EQ(waited->exit_code, 3);
  Status why = client_->ExplainExit(id);
  EXPECT_EQ(why.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(why.message().find("container tt-exit exited with code 3"), std::string::npos)
      << why.ToString();
  EXPECT_NE(why.message().find("starting\nfatal: DATABASE_URL is not set"), std::string::npos)
      << why.ToString();
}

TEST_P(RealEngineTest, MemoryHogIsKilledAtItsLimit) {
  ContainerSpec spec = Spec("tt-oom");
  spec.network_mode = "host";
  spec.cmd = {"/app", "hog"};
  spec.memory_bytes = 32 << 20;
  // conmon writes a file "oom" into the service's working directory: never into the test's.
  bool oom_file_before = std::filesystem::exists("oom");
  std::string id;
  auto waited = RunToExit(spec, &id);
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_EQ(waited->exit_code, 137);
  EXPECT_TRUE(oom_file_before || !std::filesystem::exists("oom"))
      << "the engine wrote into the test's working directory";
  auto info = client_->ContainerInspect(id);
  ASSERT_TRUE(info.ok());
  Status why = client_->ExplainExit(id);
  EXPECT_NE(why.message().find("exited with code 137"), std::string::npos) << why.ToString();
  if (info->state.oom_killed) {
    EXPECT_NE(why.message().find("OOMKilled"), std::string::npos) << why.ToString();
  } else {
    EXPECT_EQ(GetParam(), EngineKind::kPodman) << "dockerd reports OOMKilled";
    // Podman 4.3 with runc on cgroup v1 does not set OOMKilled (the kernel's OOM killer did
    // the kill); the message still says what a 137 means.
    EXPECT_NE(why.message().find("its memory limit"), std::string::npos) << why.ToString();
    std::printf("[note] the engine did not report OOMKilled for the killed hog\n");
  }
  EXPECT_NE(why.message().find("allocating"), std::string::npos) << why.ToString();
}

TEST_P(RealEngineTest, ListByLabelFindsExactlyOurs) {
  std::set<std::string> ours;
  for (const char* name : {"tt-list-a", "tt-list-b"}) {
    auto id = client_->ContainerCreate(Spec(name));
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ours.insert(*id);
  }
  ContainerSpec other = Spec("tt-list-other");
  other.labels = {{"turnout.test", "someone-else"}};
  auto other_id = client_->ContainerCreate(other);
  ASSERT_TRUE(other_id.ok()) << other_id.status().ToString();

  auto listed = client_->ContainerList({run_label_});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::set<std::string> found;
  for (const auto& c : *listed) {
    found.insert(c.id);
    EXPECT_EQ(c.state, "created");  // all=true: never started ones too
  }
  EXPECT_EQ(found, ours);
  EXPECT_TRUE(client_->ContainerRemove(*other_id, true).ok());
  EXPECT_EQ(client_->ContainerRemove(*other_id, true).code(), StatusCode::kNotFound);
}

TEST_P(RealEngineTest, MissingImageIsNotFoundBeforeAnythingIsCreated) {
  auto inspect = client_->ImageInspect("localhost/turnout-no-such-image:v0");
  EXPECT_EQ(inspect.status().code(), StatusCode::kNotFound) << inspect.status().ToString();
  ContainerSpec spec = Spec("tt-missing");
  spec.image = "localhost/turnout-no-such-image:v0";
  auto id = client_->ContainerCreate(spec);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kNotFound) << id.status().ToString();
  EXPECT_NE(id.status().message().find("pull or load the image"), std::string::npos);
  auto listed = client_->ContainerList({run_label_});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_P(RealEngineTest, PullOfAnUnresolvableNameIsAClearError) {
  auto start = Clock::now();
  Status pulled = client_->ImagePull("registry.invalid/turnout/app:v1", {}, Millis(20000));
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.code(), StatusCode::kUnavailable) << pulled.ToString();
  EXPECT_NE(pulled.message().find("pull of registry.invalid/turnout/app:v1 failed"),
            std::string::npos)
      << pulled.ToString();
  EXPECT_NE(pulled.message().find("cannot be reached"), std::string::npos) << pulled.ToString();
  EXPECT_LT(MillisSince(start), 20000);
}

TEST_P(RealEngineTest, PublishedPortOnLoopback) {
  if (!engine_->has_bridge()) GTEST_SKIP() << NoBridge();
  auto port = platform::testing::FreePort();
  ASSERT_TRUE(port.ok());
  ContainerSpec spec = Spec("tt-bridge");
  spec.env = {"PORT=8080", "BIND_ALL=1"};  // inside its own network namespace
  spec.ports = {{.container_port = 8080, .host_port = *port}};
  auto t0 = Clock::now();
  auto id = client_->ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(client_->ContainerStart(*id).ok());
  std::string base = "http://127.0.0.1:" + std::to_string(*port);
  int64_t first_ok_ms = FirstOk(base + "/", t0);
  ASSERT_GE(first_ok_ms, 0);
  int good = 0;
  for (int i = 0; i < 10; ++i) {
    httpc::Request req;
    req.url = base + "/r" + std::to_string(i);
    auto resp = httpc::Fetch(req);
    if (resp.ok() && resp->status == 200 && resp->body == "v1 /r" + std::to_string(i) + "\n")
      ++good;
  }
  EXPECT_EQ(good, 10);
  std::printf("[timing] bridge: create->first HTTP 200 %lld ms\n",
              static_cast<long long>(first_ok_ms));
  EXPECT_TRUE(client_->ContainerRemove(*id, /*force=*/true).ok());
}

TEST_P(RealEngineTest, PortAlreadyInUseIsSaid) {
  if (!engine_->has_bridge()) GTEST_SKIP() << NoBridge();
  platform::testing::HeldPort held;
  ASSERT_NE(held.port(), 0);
  ContainerSpec spec = Spec("tt-port-taken");
  spec.env = {"PORT=8080", "BIND_ALL=1"};
  spec.ports = {{.container_port = 8080, .host_port = held.port()}};
  auto id = client_->ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  Status started = client_->ContainerStart(*id);
  ASSERT_FALSE(started.ok()) << "the engine started a container on a port in use";
  EXPECT_EQ(started.code(), StatusCode::kAlreadyExists) << started.ToString();
  EXPECT_NE(started.message().find("port is already in use"), std::string::npos)
      << started.ToString();
}

TEST_P(RealEngineTest, ImageRemove) {
  std::string root = engine_->dir() + "/image-root";
  ASSERT_TRUE(engine_->ImportImage(root, "localhost/turnout-test-app:to-remove", {}).ok());
  ASSERT_TRUE(client_->ImageInspect("localhost/turnout-test-app:to-remove").ok());
  EXPECT_TRUE(client_->ImageRemove("localhost/turnout-test-app:to-remove").ok());
  EXPECT_EQ(client_->ImageInspect("localhost/turnout-test-app:to-remove").status().code(),
            StatusCode::kNotFound);
}

// The fixture's own promise: an engine it started leaves nothing behind, even with a container
// still running when it stops.
class EngineServiceTest : public ::testing::TestWithParam<EngineKind> {};

TEST_P(EngineServiceTest, StopLeavesNothingBehind) {
  auto started = EngineService::Start(GetParam());
  if (!started.ok() && started.status().code() == StatusCode::kFailedPrecondition &&
      GetParam() == EngineKind::kDockerd) {
    GTEST_SKIP() << started.status().ToString();
  }
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<EngineService> engine = std::move(started).value();
  std::string dir = engine->dir();
  std::string root = dir + "/rootfs";
  ASSERT_TRUE(std::filesystem::create_directories(root));
  std::filesystem::copy_file(TURNOUT_CONTAINER_TEST_APP, root + "/app");
  ASSERT_TRUE(engine->ImportImage(root, "localhost/turnout-left:v1", {R"(CMD ["/app"])"}).ok());
  EngineClient client(engine->socket());
  ContainerSpec spec;
  spec.image = "localhost/turnout-left:v1";
  spec.network_mode = "host";
  spec.env = {"PORT=0"};
  spec.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
  auto id = client.ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(client.ContainerStart(*id).ok());

  engine->Stop();
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) EXPECT_EQ(line.find(dir), std::string::npos) << line;
  EXPECT_FALSE(std::filesystem::exists("/sys/class/net/docker0")) << "a bridge was left behind";
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineServiceTest,
                         ::testing::Values(EngineKind::kPodman, EngineKind::kDockerd),
                         [](const ::testing::TestParamInfo<EngineKind>& info) {
                           return EngineName(info.param);
                         });

INSTANTIATE_TEST_SUITE_P(Engines, RealEngineTest,
                         ::testing::Values(EngineKind::kPodman, EngineKind::kDockerd),
                         [](const ::testing::TestParamInfo<EngineKind>& info) {
                           return EngineName(info.param);
                         });

}  // namespace
}  // namespace turnout::container
