// turnoutd end to end with `platform.type: container`: the real turnoutd binary, its router
// process, turnout-load as live traffic, and a real Podman service started for this test binary
// (container::testing::SharedEngine, on a socket and storage of its own) running the static test
// app's image. Host networking; every wait is for a real event with a deadline.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "container/engine_client.h"
#include "container/testing/engine_service.h"
#include "container_platform/container_platform.h"
#include "daemon/daemon_test_fixture.h"

namespace turnout::daemon {
namespace {

using container::testing::EngineKind;
using container::testing::EngineService;
using container::testing::kTestImage;

constexpr char kImageTemplate[] = "localhost/turnout-test-app:{version}";
// What the app of the version `crash` writes before it exits: an environment value, which
// must never reach the deployment's reason, the API or the history.
constexpr char kSecret[] = "s3cret-db-host";

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

class DaemonContainerTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    std::string why;
    engine_ = container::testing::SharedEngine(EngineKind::kPodman, &why);
    if (engine_ == nullptr) GTEST_SKIP() << why;
    // v1 is the shared test image; v2 the same app saying v2; `crash` exits with code 3 at once.
    const std::string root = engine_->dir() + "/image-root";
    ASSERT_TRUE(engine_->ImportImage(root, Image("v2"), {R"(CMD ["/app", "serve"])",
                                                         "ENV APP_VERSION=v2"})
                    .ok());
    ASSERT_TRUE(
        engine_->ImportImage(root, Image("crash"), {R"(CMD ["/app", "exit", "3"])"}).ok());
    ASSERT_TRUE(engine_->ImportImage(root, Image("hog"), {R"(CMD ["/app", "hog"])"}).ok());
    ASSERT_TRUE(engine_->ImportImage(root, Image("unready"), {R"(CMD ["/app", "serve"])",
                                                              "ENV APP_VERSION=unready",
                                                              "ENV FAIL_READY=1"})
                    .ok());
    auto p = platform::ContainerPlatform::Create(Options());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    platform_ = std::move(*p);
  }

  void TearDown() override {
    if (!other_dir_.empty()) {
      // The second directory's turnoutd and router process, then the first's (DaemonTest).
      SwitchToOtherDirectory();
      DaemonTest::TearDown();
      dir_ = other_dir_;
      daemon_.reset();
      if (other_daemon_) daemon_.emplace(std::move(*other_daemon_));
    }
    DaemonTest::TearDown();
    if (platform_) {
      // Every container of the service this test made, whatever state it is in.
      auto all = platform_->ListManaged(kService);
      if (all.ok()) {
        for (auto& c : *all) {
          c.handle.grace = std::chrono::milliseconds(0);
          (void)platform_->Stop(c.handle);
        }
      }
    }
  }

  static std::string Image(const std::string& version) {
    std::string image = kImageTemplate;
    return image.replace(image.find("{version}"), 9, version);
  }

  platform::ContainerPlatformOptions Options() const {
    platform::ContainerPlatformOptions o;
    o.engine = engine_->socket();
    o.image = kImageTemplate;
    o.pull = platform::PullPolicy::kNever;
    return o;
  }

  // `platform_extra`: more keys of the platform section ("  memory: 32m\n").
  void WriteContainerConfig(const std::string& socket = "", const std::string& platform_extra = "") {
    std::ofstream f(dir_ + "/turnout.yaml");
    f << "name: " << kService << "\n"
      << "listen: 127.0.0.1:0\n"
      << "platform:\n"
      << "  type: container\n"
      << "  engine: unix://" << (socket.empty() ? engine_->socket() : socket) << "\n"
      << "  image: " << kImageTemplate << "\n"
      << "  network: host\n"
      << "  pull: never\n"
      << "  env: {MESSAGE: " << kSecret << "}\n"
      << "  grace_period: 3s\n"
      << platform_extra
      << "health:\n"
      << "  readiness: {interval: 100ms, timeout: 100ms, healthy_threshold: 1, "
         "unhealthy_threshold: 2}\n"
      << "  liveness: {path: /live, interval: 100ms, timeout: 100ms, unhealthy_threshold: 3}\n"
      << "  ready_deadline: 10s\n"
      << "smoke_tests:\n"
      << "  - name: home\n"
      << "    path: /\n"
      << "    expect: {body_contains: \"{version} /\"}\n"
      << "bake_time: 1s\n"
      << "scale_down_delay: 1s\n"
      << "router:\n"
      << "  admin: \"\"\n";
  }

  // The body of GET / through the router: "<APP_VERSION> /\n".
  std::string Body(const std::string& address) {
    const uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    auto reply = demo::testing::Get(port, "/");
    return reply.ok() ? reply->body : reply.status().ToString();
  }

  // The service's labelled containers that run, as the engine lists them.
  std::vector<platform::ManagedContainer> Running() {
    auto all = platform_->ListManaged(kService);
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    std::vector<platform::ManagedContainer> out;
    if (!all.ok()) return out;
    for (auto& c : *all) {
      if (c.state == "running") out.push_back(c);
    }
    return out;
  }

  // The image ID the container runs, as the engine recorded it.
  std::string ImageOf(const std::string& container_id) {
    auto client = container::EngineClient::Connect({engine_->socket()});
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return "";
    auto info = client->ContainerInspect(container_id);
    EXPECT_TRUE(info.ok());
    return info.ok() ? info->image : "";
  }

  // The image ID the tag names now.
  std::string ImageIdOf(const std::string& version) {
    auto client = container::EngineClient::Connect({engine_->socket()});
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return "";
    auto info = client->ImageInspect(Image(version));
    EXPECT_TRUE(info.ok());
    return info.ok() ? info->id : "";
  }

  // The detail of step `name` in a deployment's JSON (null when there is none).
  static json Step(const json& deployment, const std::string& name) {
    for (const auto& s : deployment["steps"]) {
      if (s.value("step", "") == name) return s;
    }
    return json();
  }

  // v1 serving, then `version`, which must be rolled back before any switch with v1 serving on
  // (one container running: v1's). Returns the bad deployment's JSON.
  json DeployBadVersionAfterV1(const std::string& version) {
    StartDaemon();
    EXPECT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
    const std::string address = PublicAddress();
    json bad = WaitFinished(Deploy(version));
    EXPECT_EQ(State(bad), "rolled_back") << bad.dump();
    for (const auto& tr : bad["transitions"]) EXPECT_NE(tr.value("to", ""), "switching");
    EXPECT_EQ(Body(address), "v1 /\n");
    std::vector<platform::ManagedContainer> running = Running();
    EXPECT_EQ(running.size(), 1u);
    if (!running.empty()) EXPECT_EQ(running[0].revision, "v1");
    return bad;
  }

  // Swaps dir_ and daemon_ (which the fixture's helpers use) with a second directory and its
  // turnoutd, made on first use with nothing started: a second state directory.
  void SwitchToOtherDirectory() {
    if (other_dir_.empty()) other_dir_ = MakeTempDir();
    std::swap(dir_, other_dir_);
    std::optional<ChildProcess> d;
    if (daemon_) d.emplace(std::move(*daemon_));
    daemon_.reset();
    if (other_daemon_) daemon_.emplace(std::move(*other_daemon_));
    other_daemon_.reset();
    if (d) other_daemon_.emplace(std::move(*d));
  }

  EngineService* engine_ = nullptr;
  std::unique_ptr<platform::ContainerPlatform> platform_;
  std::string other_dir_;
  std::optional<ChildProcess> other_daemon_;
};

TEST_F(DaemonContainerTest, DeploysV1ThenV2UnderLoadWithoutAFailedRequest) {
  WriteContainerConfig();
  StartDaemon();
  auto t0 = std::chrono::steady_clock::now();
  json first = WaitFinished(Deploy("v1"));
  const double v1_ms = MillisSince(t0);
  ASSERT_EQ(State(first), "succeeded") << first.dump();
  const std::string address = PublicAddress();
  EXPECT_EQ(Body(address), "v1 /\n");
  // The image was resolved in the pre-checks and recorded.
  json resolved = Step(first, "resolve_image");
  ASSERT_TRUE(resolved.is_object()) << first.dump();
  EXPECT_NE(resolved.dump().find(ImageIdOf("v1")), std::string::npos) << resolved.dump();

  load_.Start(address, 4);
  t0 = std::chrono::steady_clock::now();
  json second = WaitFinished(Deploy("v2"));
  const double v2_ms = MillisSince(t0);
  EXPECT_EQ(State(second), "succeeded") << second.dump();
  EXPECT_EQ(Body(address), "v2 /\n");
  json result = load_.Finish();
  EXPECT_EQ(Failed(result), 0u) << result.dump();
  EXPECT_GT(result.value("requests", uint64_t{0}), 50u);
  // v1's container was stopped and removed after the scale-down delay; v2's runs.
  std::vector<platform::ManagedContainer> running = Running();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].revision, "v2");
  EXPECT_EQ(ImageOf(running[0].handle.id), ImageIdOf("v2"));
  // `turnout logs` reads the container's log from the engine.
  auto [ls, logs] = Call("GET", "/v1/logs?lines=20");
  ASSERT_EQ(ls, 200) << logs.dump();
  EXPECT_NE(logs.dump().find("serving version v2"), std::string::npos) << logs.dump();
  std::cout << "containers: deploy v1 " << v1_ms << " ms, v1 -> v2 under load " << v2_ms
            << " ms (bake 1s, scale-down delay 1s), " << result.value("requests", uint64_t{0})
            << " requests, " << Failed(result) << " failed\n";
}

TEST_F(DaemonContainerTest, AContainerThatExitsAtOnceIsNeverSwitchedTo) {
  WriteContainerConfig();
  json bad = DeployBadVersionAfterV1("crash");
  const std::string reason = bad["deployment"].value("reason", "");
  EXPECT_NE(reason.find("exited with code 3"), std::string::npos) << reason;
  EXPECT_NE(reason.find("starting"), std::string::npos) << reason;  // its last log lines
  // The environment's values are hidden from the reason, the API and the history.
  EXPECT_EQ(bad.dump().find(kSecret), std::string::npos) << bad.dump();
}

TEST_F(DaemonContainerTest, AContainerThatNeverGetsReadyIsNeverSwitchedTo) {
  WriteContainerConfig();
  {
    // A short readiness deadline keeps the test short.
    std::ifstream in(dir_ + "/turnout.yaml");
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    yaml.replace(yaml.find("ready_deadline: 10s"), 19, "ready_deadline: 2s");
    std::ofstream(dir_ + "/turnout.yaml") << yaml;
  }
  json bad = DeployBadVersionAfterV1("unready");
  const std::string reason = bad["deployment"].value("reason", "");
  EXPECT_NE(reason.find("not ready within 2 s"), std::string::npos) << reason;
}

TEST_F(DaemonContainerTest, AContainerKilledAtItsMemoryLimitIsNeverSwitchedTo) {
  WriteContainerConfig("", "  memory: 32m\n");
  json bad = DeployBadVersionAfterV1("hog");
  const std::string reason = bad["deployment"].value("reason", "");
  // dockerd reports OOMKilled; Podman with runc on cgroup v1 only the exit code 137.
  EXPECT_TRUE(reason.find("out of memory") != std::string::npos ||
              reason.find("killed by signal 9") != std::string::npos)
      << reason;
  EXPECT_NE(reason.find("memory limit"), std::string::npos) << reason;
}

TEST_F(DaemonContainerTest, Kill9OfTurnoutdReadoptsItsContainersWithoutDuplicatesOrOrphans) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string address = PublicAddress();
  std::vector<platform::ManagedContainer> before = Running();
  ASSERT_EQ(before.size(), 1u);
  KillDaemon();
  EXPECT_EQ(Body(address), "v1 /\n");  // the router process serves on
  // A labelled container no record names (as if turnoutd died between launch and record), and
  // a container turnout did not label.
  platform::InstanceSpec stray;
  stray.service = kService;
  stray.version = "v1";
  stray.slot = "green";
  stray.command = "-";
  auto address_of_stray = platform_->AllocateAddress({});
  ASSERT_TRUE(address_of_stray.ok());
  stray.port = address_of_stray->port;
  auto stray_handle = platform_->Launch(stray);
  ASSERT_TRUE(stray_handle.ok()) << stray_handle.status().ToString();
  auto foreign = engine_->Cli({"run", "-d", "--name", "not-turnouts", "--network", "host", "-e",
                               "PORT=1", kTestImage, "/app", "exit", "0"});
  ASSERT_TRUE(foreign.ok());

  auto t0 = std::chrono::steady_clock::now();
  StartDaemon();
  const double restart_ms = MillisSince(t0);
  std::vector<platform::ManagedContainer> after = Running();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].handle.id, before[0].handle.id);  // adopted, not started again
  EXPECT_EQ(Body(address), "v1 /\n");
  auto all = platform_->ListManaged(kService);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);  // the stray one was removed
  // The unlabelled container is still there, untouched.
  auto ps = engine_->Cli({"ps", "-a", "--filter", "name=not-turnouts", "--format", "{{.Names}}"});
  ASSERT_TRUE(ps.ok());
  EXPECT_NE(ps->output.find("not-turnouts"), std::string::npos) << ps->output;
  (void)engine_->Cli({"rm", "-f", "not-turnouts"});
  // And the next deployment goes on as usual.
  ASSERT_EQ(State(WaitFinished(Deploy("v2"))), "succeeded");
  EXPECT_EQ(Running().size(), 1u);
  std::cout << "containers: turnoutd restart with adoption " << restart_ms << " ms\n";
}

// Two turnoutd on two state directories, one service name, one engine: the restart of one
// removes only the containers of its own state directory that it has no record of, and
// never the other's (which it has no record of either).
TEST_F(DaemonContainerTest, TwoStateDirectoriesOfOneServiceLeaveEachOthersContainersAlone) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string address_a = PublicAddress();
  SwitchToOtherDirectory();  // a second turnoutd, in a directory of its own
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v2"))), "succeeded");
  ASSERT_EQ(Running().size(), 2u);

  // The second one restarts after a kill -9, and so does the first: each adopts its own.
  KillDaemon();
  StartDaemon();
  auto revisions = [&] {
    std::vector<std::string> r;
    for (const auto& c : Running()) r.push_back(c.revision);
    std::sort(r.begin(), r.end());
    return r;
  };
  EXPECT_EQ(revisions(), (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(Body(address_a), "v1 /\n");
  EXPECT_EQ(Body(PublicAddress()), "v2 /\n");
  SwitchToOtherDirectory();
  KillDaemon();
  StartDaemon();
  EXPECT_EQ(revisions(), (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(Body(address_a), "v1 /\n");
  SwitchToOtherDirectory();
  EXPECT_EQ(Body(PublicAddress()), "v2 /\n");
  // Each state directory's containers carry its own identity.
  auto all = platform_->ListManaged(kService);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_NE((*all)[0].owner, (*all)[1].owner);
}

TEST_F(DaemonContainerTest, RollbackToOneAfterTheTagMovedRunsTheOriginalImage) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string v1_image = ImageIdOf("v1");
  ASSERT_EQ(State(WaitFinished(Deploy("v2"))), "succeeded");
  // The tag v1 now names another image.
  const std::string root = engine_->dir() + "/image-root";
  ASSERT_TRUE(engine_->ImportImage(root, Image("v1"), {R"(CMD ["/app", "serve"])",
                                                       "ENV APP_VERSION=moved"})
                  .ok());
  ASSERT_NE(ImageIdOf("v1"), v1_image);
  auto [status, body] = Call("POST", "/v1/rollback", {{"actor", "test"}, {"to_revision", 1}});
  ASSERT_EQ(status, 200) << body.dump();
  json back = WaitFinished(body["deployment"]["id"].get<int64_t>());
  // Put the tag back for the other tests of this binary.
  const bool restored =
      engine_->ImportImage(root, Image("v1"), {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=v1"})
          .ok();
  EXPECT_TRUE(restored);
  ASSERT_EQ(State(back), "succeeded") << back.dump();
  EXPECT_EQ(Body(PublicAddress()), "v1 /\n");
  std::vector<platform::ManagedContainer> running = Running();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(ImageOf(running[0].handle.id), v1_image);
  EXPECT_TRUE(Step(back, "resolve_image").is_null()) << "the recorded image is not resolved again";
}

TEST_F(DaemonContainerTest, AnUnreachableEngineIsNamedAtStart) {
  WriteContainerConfig();
  std::string yaml;
  {
    std::ifstream in(dir_ + "/turnout.yaml");
    yaml.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string missing = dir_ + "/no-engine.sock";
  yaml.replace(yaml.find("unix://" + engine_->socket()), 7 + engine_->socket().size(),
               "unix://" + missing);
  std::ofstream(dir_ + "/turnout.yaml") << yaml;
  auto p = ChildProcess::Start({TURNOUTD_BINARY, "--config", dir_ + "/turnout.yaml"}, {},
                               /*stderr_too=*/true);
  ASSERT_TRUE(p.ok());
  Result<std::string> out = p->ReadAll(milliseconds(20000));
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find(missing), std::string::npos) << *out;
  Result<int> code = p->Wait(milliseconds(5000));
  ASSERT_TRUE(code.ok());
  EXPECT_NE(*code, 0);
}

TEST_F(DaemonContainerTest, AnEngineGoneAfterStartFailsTheDeploymentInItsPreChecks) {
  // An engine of this test's own, stopped once turnoutd is up.
  auto own = EngineService::Start(EngineKind::kPodman);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  const std::string socket = (*own)->socket();
  WriteContainerConfig(socket);
  StartDaemon();
  (*own)->Stop();
  json d = WaitFinished(Deploy("v1"));
  const std::string reason = d["deployment"].value("reason", "");
  EXPECT_EQ(reason.rfind("pre-check failed: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("the container engine at " + socket + " does not answer"),
            std::string::npos)
      << reason;
  json step = Step(d, "resolve_image");
  EXPECT_EQ(step.value("outcome", ""), "failed") << d.dump();
  for (const auto& t : d["transitions"]) EXPECT_NE(t.value("to", ""), "launching");
  auto [status, body] = Call("GET", "/v1/status");
  EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace turnout::daemon
