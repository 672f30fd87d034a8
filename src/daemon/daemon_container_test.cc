// turnoutd end to end with `platform.type: container`: the real turnoutd binary, its router
// process, turnout-load as live traffic, and a real Podman service started for this test binary
// (container::testing::SharedEngine, on a socket and storage of its own) running the static test
// app's image. Host networking; every wait is for a real event with a deadline.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "container/engine_client.h"
#include "container/testing/engine_service.h"
#include "container_platform/container_platform.h"
#include "daemon/daemon_test_fixture.h"
#include "router/testing/test_upstream.h"

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
    ASSERT_TRUE(
        engine_->ImportImage(root, Image("v2"), {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=v2"})
            .ok());
    ASSERT_TRUE(engine_->ImportImage(root, Image("crash"), {R"(CMD ["/app", "exit", "3"])"}).ok());
    ASSERT_TRUE(engine_->ImportImage(root, Image("hog"), {R"(CMD ["/app", "hog"])"}).ok());
    ASSERT_TRUE(engine_
                    ->ImportImage(
                        root, Image("unready"),
                        {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=unready", "ENV FAIL_READY=1"})
                    .ok());
    // Ready and healthy, but 1 in 10 of its answers is a 500.
    ASSERT_TRUE(engine_
                    ->ImportImage(root, Image("errors10"),
                                  {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=errors10",
                                   "ENV ERROR_PERCENT=10"})
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

  // `platform_extra`: more keys of the platform section ("  memory: 32m\n"); `extra`: more
  // top-level keys; `smoke_home`: the smoke test on `/` (a canary's faults there are the
  // analysis's to catch).
  void WriteContainerConfig(const std::string& socket = "", const std::string& platform_extra = "",
                            const std::string& extra = "", bool smoke_home = true) {
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
      << platform_extra << "health:\n"
      << "  readiness: {interval: 100ms, timeout: 100ms, healthy_threshold: 1, "
         "unhealthy_threshold: 2}\n"
      << "  liveness: {path: /live, interval: 100ms, timeout: 100ms, unhealthy_threshold: 3}\n"
      << "  ready_deadline: 10s\n"
      << "smoke_tests:\n"
      << "  - name: " << (smoke_home ? "home" : "live") << "\n"
      << "    path: " << (smoke_home ? "/" : "/live") << "\n"
      << "    expect: {body_contains: \"{version} /\"}\n"
      << "bake_time: 1s\n"
      << "scale_down_delay: 1s\n"
      << "router:\n"
      << "  admin: \"\"\n"
      << extra;
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

  // A container of `version` in the green slot, labelled for the service, that no record of
  // turnoutd names (as if turnoutd died between a launch and its record).
  Result<platform::InstanceHandle> LaunchStray(const std::string& version) {
    platform::InstanceSpec stray;
    stray.service = kService;
    stray.version = version;
    stray.slot = "green";
    stray.command = "-";
    TURNOUT_ASSIGN_OR_RETURN(platform::InstanceAddress address, platform_->AllocateAddress({}));
    stray.port = address.port;
    // Labelled for this state directory, as its turnoutd labels what it launches.
    std::unique_ptr<platform::ContainerPlatform> as_turnoutd = OwnPlatform();
    if (as_turnoutd == nullptr) return Internal("no platform for this state directory");
    return as_turnoutd->Launch(stray);
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

  // Replaces the first `from` in turnout.yaml with `to`.
  void EditConfig(const std::string& from, const std::string& to) {
    std::ifstream in(dir_ + "/turnout.yaml");
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
    std::ofstream(dir_ + "/turnout.yaml") << yaml;
  }

  // A scripted engine on a socket in dir_: it answers /_ping, an empty container list, no
  // image, and `pull` for a pull; turnout.yaml points at it with `pull: if_not_present`.
  std::unique_ptr<router::testing::TestUpstream> ScriptedEngine(router::testing::Behavior pull) {
    auto started = router::testing::TestUpstream::StartUnix("engine", dir_ + "/engine.sock");
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    if (!started.ok()) return nullptr;
    (*started)->SetHandler([pull](const router::testing::ReceivedRequest& r) {
      using router::testing::Behavior;
      if (r.target.find("/_ping") != std::string::npos) return Behavior::Respond(200, "OK");
      if (r.target.find("/containers/json") != std::string::npos) {
        return Behavior::Respond(200, "[]");
      }
      if (r.target.find("/images/create") != std::string::npos) return pull;
      return Behavior::Respond(404, R"({"message":"no such image"})");
    });
    WriteContainerConfig((*started)->unix_path());
    EditConfig("pull: never", "pull: if_not_present");
    return std::move(started).value();
  }

  // The identity of dir_'s state directory, as its turnoutd stored it ("" before its first start).
  std::string StateId() {
    state::SqliteStateStoreOptions o;
    o.path = dir_ + "/.turnout/state.db";
    auto store = state::SqliteStateStore::Open(o);
    if (!store.ok()) return "";
    auto id = (*store)->GetSetting("turnoutd.state-id");
    return id.ok() && id->has_value() ? **id : "";
  }

  // A platform that works as dir_'s turnoutd does: on its containers only.
  std::unique_ptr<platform::ContainerPlatform> OwnPlatform() {
    platform::ContainerPlatformOptions o = Options();
    o.owner = StateId();
    EXPECT_FALSE(o.owner.empty());
    auto p = platform::ContainerPlatform::Create(o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  // Every container of the service on the engine, running or not, as "<revision>:<state>".
  std::vector<std::string> AllContainers() {
    auto all = platform_->ListManaged(kService);
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    std::vector<std::string> out;
    if (all.ok()) {
      for (const auto& c : *all) out.push_back(c.revision + ":" + c.state);
    }
    std::sort(out.begin(), out.end());
    return out;
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

// A secret reaches the container through the engine's environment (as: env); a rotation with
// no overlap is a new revision whose container has the new value; no API reply, history or
// audit entry holds either value. The test app answers "<APP_VERSION> <path>", so a secret
// named APP_VERSION shows what the container got (each value ends with " v1" for the smoke
// test, which expects "v1 /").
TEST_F(DaemonContainerTest, ASecretReachesTheContainerAsEnvAndARotationReplacesIt) {
  const std::string first = "canary-container-env-" + std::to_string(::getpid()) + " v1";
  const std::string rotated = "canary-container-rotated-" + std::to_string(::getpid()) + " v1";
  WriteContainerConfig("", "", "secrets:\n  APP_VERSION: {from_env: TEST_APP_SECRET}\n",
                       /*smoke_home=*/false);
  StartDaemon({"TEST_APP_SECRET=" + first});
  json v1 = WaitFinished(Deploy("v1"));
  ASSERT_EQ(State(v1), "succeeded") << v1.dump();
  const std::string address = PublicAddress();
  EXPECT_EQ(Body(address), first + " /\n");
  auto [rs, rotate] = Call("POST", "/v1/secrets/rotate",
                           {{"name", "APP_VERSION"}, {"value", rotated}, {"overlap_ms", 0}});
  ASSERT_EQ(rs, 201) << rotate.dump();
  json done = WaitFinished(rotate["deployment"].value("id", int64_t{0}), milliseconds(60000));
  ASSERT_EQ(State(done), "succeeded") << done.dump();
  EXPECT_EQ(Body(address), rotated + " /\n");
  std::vector<std::string> replies = {rotate.dump(), done.dump(), v1.dump()};
  for (const char* target : {"/v1/status", "/v1/deployments", "/v1/audit?limit=100000",
                             "/v1/events?limit=1000", "/v1/secrets"}) {
    replies.push_back(Call("GET", target).second.dump());
  }
  for (const std::string& text : replies) {
    EXPECT_EQ(text.find(first), std::string::npos) << text;
    EXPECT_EQ(text.find(rotated), std::string::npos) << text;
  }
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
  EditConfig("ready_deadline: 10s", "ready_deadline: 2s");  // keeps the test short
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
  Result<platform::InstanceHandle> stray_handle = LaunchStray("v1");
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
  ASSERT_TRUE(
      engine_->ImportImage(root, Image("v1"), {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=moved"})
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

// `turnout prune` with revisions.on_disk 1 after three revisions: revision 1's image goes;
// revision 2's stays because a container turnout did not create uses it; revision 3's (serving),
// an image no revision recorded and the image of a stray container stay; the stopped labelled
// container no record names goes. The dry run before it removes nothing.
TEST_F(DaemonContainerTest, PruneRemovesOnlyTheImagesOfRevisionsOnDiskNoLongerKeeps) {
  const std::string root = engine_->dir() + "/image-root";
  for (const std::string v : {"prune-a", "prune-b", "prune-c"}) {
    ASSERT_TRUE(
        engine_->ImportImage(root, Image(v), {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=" + v})
            .ok());
  }
  const std::string foreign_image = "localhost/not-turnouts:1";
  ASSERT_TRUE(engine_
                  ->ImportImage(root, foreign_image,
                                {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=foreign"})
                  .ok());
  WriteContainerConfig();
  std::ofstream(dir_ + "/turnout.yaml", std::ios::app) << "revisions: {warm: 1, on_disk: 1}\n";
  StartDaemon();
  for (const std::string v : {"prune-a", "prune-b", "prune-c"}) {
    ASSERT_EQ(State(WaitFinished(Deploy(v))), "succeeded") << v;
  }
  const std::string a = ImageIdOf("prune-a"), b = ImageIdOf("prune-b"), c = ImageIdOf("prune-c");
  const std::string crash = ImageIdOf("crash");
  // A container turnout did not create, on revision 2's image (stopped).
  auto foreign = engine_->Cli({"run", "--name", "not-turnouts-b", "--network", "host", "-e",
                               "PORT=1", Image("prune-b"), "/app", "exit", "0"});
  ASSERT_TRUE(foreign.ok());
  // A stopped container labelled for the service that no record names.
  Result<platform::InstanceHandle> stray_handle = LaunchStray("crash");
  ASSERT_TRUE(stray_handle.ok()) << stray_handle.status().ToString();
  ASSERT_TRUE(platform_->Wait(*stray_handle, milliseconds(10000)).ok());

  auto client = container::EngineClient::Connect({engine_->socket()});
  ASSERT_TRUE(client.ok());
  auto present = [&](const std::string& image) { return client->ImageInspect(image).ok(); };
  auto removed_ids = [](const json& reply) {
    std::vector<std::string> ids;
    for (const auto& i : reply["images"]) {
      if (i.value("removed", false)) ids.push_back(i.value("id", ""));
    }
    return ids;
  };

  auto [ds, dry] = Call("POST", "/v1/prune", {{"actor", "test"}, {"dry_run", true}});
  ASSERT_EQ(ds, 200) << dry.dump();
  EXPECT_TRUE(dry.value("dry_run", false));
  EXPECT_EQ(removed_ids(dry), std::vector<std::string>{a}) << dry.dump();
  ASSERT_EQ(dry["containers"].size(), 1u) << dry.dump();
  EXPECT_EQ(dry["containers"][0].value("id", ""), stray_handle->id);
  EXPECT_GT(dry.value("freed_bytes", int64_t{0}), 0) << dry.dump();
  // Nothing was removed.
  EXPECT_TRUE(present(a));
  EXPECT_TRUE(client->ContainerInspect(stray_handle->id).ok());

  auto [ps, pruned] = Call("POST", "/v1/prune", {{"actor", "test"}});
  ASSERT_EQ(ps, 200) << pruned.dump();
  EXPECT_EQ(removed_ids(pruned), std::vector<std::string>{a}) << pruned.dump();
  EXPECT_EQ(pruned.value("freed_bytes", int64_t{0}), dry.value("freed_bytes", int64_t{0}));
  const json& first = pruned["images"][0];
  EXPECT_EQ(first["tags"], json::array({Image("prune-a")})) << pruned.dump();
  EXPECT_EQ(first["revisions"], json::parse(R"([{"revision":1,"version":"prune-a"}])"));
  bool b_kept = false;
  for (const auto& i : pruned["images"]) {
    if (i.value("id", "") == b) {
      b_kept = !i.value("removed", true) &&
               i.value("kept_because", "").find("not-turnouts-b") != std::string::npos;
    }
  }
  EXPECT_TRUE(b_kept) << pruned.dump();
  EXPECT_FALSE(present(a));
  EXPECT_FALSE(present(Image("prune-a")));
  EXPECT_TRUE(present(b));
  EXPECT_TRUE(present(c));
  EXPECT_TRUE(present(foreign_image));
  EXPECT_TRUE(present(crash)) << "the stray container's image was never recorded";
  EXPECT_FALSE(client->ContainerInspect(stray_handle->id).ok()) << "the stray container is gone";
  EXPECT_TRUE(client->ContainerInspect("not-turnouts-b").ok()) << "the foreign one stays";
  EXPECT_EQ(Body(PublicAddress()), "prune-c /\n");
  EXPECT_EQ(Running().size(), 1u);

  // Without the foreign container, but with a tag turnout did not record, revision 2's image
  // stays too.
  ASSERT_TRUE(engine_->Cli({"rm", "-f", "not-turnouts-b"}).ok());
  ASSERT_TRUE(engine_->Cli({"tag", Image("prune-b"), "localhost/not-turnouts:b-alias"}).ok());
  auto [ts, tagged] = Call("POST", "/v1/prune", {{"actor", "test"}});
  ASSERT_EQ(ts, 200) << tagged.dump();
  EXPECT_TRUE(removed_ids(tagged).empty()) << tagged.dump();
  EXPECT_NE(tagged.dump().find("also tagged localhost/not-turnouts:b-alias, which turnout did not "
                               "record"),
            std::string::npos)
      << tagged.dump();
  EXPECT_TRUE(present(b));

  // Untagged again, the CLI removes it and says so; its next run finds nothing to prune.
  ASSERT_TRUE(engine_->Cli({"untag", b, "localhost/not-turnouts:b-alias"}).ok());
  auto prune_cli = [&]() {
    auto cli = ChildProcess::Start({TURNOUT_BINARY, "prune", "--config", dir_ + "/turnout.yaml"});
    EXPECT_TRUE(cli.ok());
    if (!cli.ok()) return std::string();
    Result<std::string> text = cli->ReadAll(milliseconds(30000));
    EXPECT_TRUE(text.ok());
    return text.ok() ? *text : std::string();
  };
  const std::string text = prune_cli();
  EXPECT_NE(text.find("removed image " + b.substr(7, 12) + " (" + Image("prune-b") +
                      "; revision 2 prune-b)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("freed "), std::string::npos) << text;
  EXPECT_FALSE(present(b));
  EXPECT_TRUE(present(c));
  EXPECT_NE(prune_cli().find("nothing to prune: revisions 3 keep their images"), std::string::npos);
  (void)engine_->Cli({"rmi", foreign_image});
}

// Processes keep nothing per revision: prune says so and touches nothing.
TEST_F(DaemonTest, PruneOfProcessesSaysThereIsNothingToPrune) {
  WriteConfig();
  StartDaemon();
  auto [status, body] = Call("POST", "/v1/prune", {{"actor", "test"}});
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body.value("platform", ""), "process");
  EXPECT_EQ(body["images"].size(), 0u);
  EXPECT_NE(body.value("message", "").find("nothing to prune"), std::string::npos) << body.dump();
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

// `turnout logs --follow`: the tail of the serving container's log, then its new lines as the
// engine streams them; when the client goes away, turnoutd's stream ends.
TEST_F(DaemonContainerTest, LogsFollowStreamsNewLinesUntilTheClientGoesAway) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string address = PublicAddress();
  auto follows = [&] {
    auto [s, status] = Call("GET", "/v1/status");
    return status["daemon"].value("log_follows", -1);
  };
  ASSERT_EQ(follows(), 0);
  auto cli =
      ChildProcess::Start({TURNOUT_BINARY, "logs", "--follow", "--config", dir_ + "/turnout.yaml"});
  ASSERT_TRUE(cli.ok()) << cli.status().ToString();
  // Reads lines until one holds `want` (10 s at most).
  auto wait_for_line = [&](const std::string& want) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    std::string seen;
    while (std::chrono::steady_clock::now() < deadline) {
      Result<std::string> line = cli->ReadLine(milliseconds(1000));
      if (!line.ok()) continue;
      seen += *line + "\n";
      if (line->find(want) != std::string::npos) return true;
    }
    ADD_FAILURE() << "no line with '" << want << "' in:\n" << seen;
    return false;
  };
  ASSERT_TRUE(wait_for_line("serving version v1"));  // the tail
  EXPECT_EQ(follows(), 1);
  const uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  {
    // A slot where no container has run; then more streams than allowed at once.
    api::Client client({"unix:" + Socket(), "", milliseconds(5000)});
    auto none =
        client.Stream("/v1/logs?slot=green&follow=1", [](std::string_view) { return true; });
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->status, 404) << none->body;
    std::atomic<bool> second_started{false};
    std::atomic<bool> stop_second{false};
    std::thread second([&] {
      api::Client c({"unix:" + Socket(), "", milliseconds(5000)});
      (void)c.Stream("/v1/logs?follow=1", [&](std::string_view) {
        second_started = true;
        return !stop_second.load();
      });
    });
    const auto until = std::chrono::steady_clock::now() + seconds(10);
    while (!second_started && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    // Two run (this test's CLI and the second): a third is refused.
    auto third = client.Stream("/v1/logs?follow=1", [](std::string_view) { return false; });
    // The second goes away at its next line.
    stop_second = true;
    (void)demo::testing::Get(port, "/log/ends-the-second");
    second.join();
    ASSERT_TRUE(third.ok());
    EXPECT_EQ(third->status, 503) << third->body;
    EXPECT_NE(third->body.find("stop one of them first"), std::string::npos) << third->body;
  }
  // A line the app writes now arrives through the stream.
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(demo::testing::Get(port, "/log/while-followed").ok());
  ASSERT_TRUE(wait_for_line("request /log/while-followed"));
  const double line_ms = MillisSince(t0);
  // The client goes away (as with Ctrl-C): turnoutd's stream from the engine ends.
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(cli->Signal(SIGINT).ok());
  ASSERT_TRUE(cli->Wait(milliseconds(5000)).ok());
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (follows() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(follows(), 0) << "the stream outlived its client";
  const double end_ms = MillisSince(t0);
  std::cout << "containers: logs --follow: a new line after " << line_ms << " ms, the stream ended "
            << end_ms << " ms after the client\n";
}

// A process service has no engine to follow logs from: refused, saying what to do instead.
TEST_F(DaemonContainerTest, LogsFollowOfAProcessServiceIsRefusedSayingWhatToDo) {
  WriteConfig();  // the process platform
  StartDaemon();
  auto [status, body] = Call("GET", "/v1/logs?follow=1");
  EXPECT_EQ(status, 400) << body.dump();
  EXPECT_NE(body.value("error", "").find("tail -f"), std::string::npos) << body.dump();
}

// ---- fault scenarios ---------------------------------------------------------------------

// A canary whose containers answer 1 in 10 requests with a 500 (ready, healthy, and passing a
// smoke test) is rolled back under load by the analysis (the canary judge's error test, or the
// rule `error_rate > 5% for 1s`); the users stay on v1 and only
// v1's container is left.
TEST_F(DaemonContainerTest, ACanaryAnsweringTenPercentErrorsIsRolledBackByTheAnalysis) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  WriteContainerConfig("", "",
                       "strategy: canary\n"
                       "canary:\n"
                       "  steps:\n"
                       "    - {weight: 20%, for: 3s}\n"
                       "    - {weight: 50%, for: 3s}\n"
                       "  min_requests: 50\n"
                       "  latency: false\n"
                       "rules:\n"
                       "  - name: errors\n"
                       "    when: error_rate > 5% for 1s\n"
                       "    min_samples: 20\n"
                       "analysis_interval: 200ms\n",
                       /*smoke_home=*/false);
  const std::string address = PublicAddress();
  load_.Start(address, 4);
  auto t0 = std::chrono::steady_clock::now();
  json done = WaitFinished(Deploy("errors10"), milliseconds(60000));
  const double ms = MillisSince(t0);
  json load = load_.Finish();
  EXPECT_EQ(State(done), "rolled_back") << done.dump();
  EXPECT_TRUE(Entered(done, "canary")) << done.dump();
  EXPECT_FALSE(Entered(done, "switching")) << done.dump();
  const std::string reason = done["deployment"].value("reason", "");
  // The canary judge's error test or the rule, whichever sees it first.
  EXPECT_TRUE(reason.find("error rate") != std::string::npos ||
              reason.find("error_rate > 5%") != std::string::npos)
      << reason;
  EXPECT_EQ(Body(address), "v1 /\n");
  // Some users saw the canary's errors (that is what was judged); far fewer than 10 %.
  EXPECT_GT(Failed(load), 0u) << load.dump();
  EXPECT_LT(Failed(load) * 20, load.value("requests", uint64_t{0})) << load.dump();
  EXPECT_EQ(AllContainers(), (std::vector<std::string>{"v1:running"}));
  std::cout << "containers: canary with 10 % errors rolled back in " << ms << " ms, "
            << load.value("requests", uint64_t{0}) << " requests, " << Failed(load) << " failed ("
            << reason << ")\n";
}

// An image the engine does not have (pull: never) fails the deployment in its pre-checks,
// saying what to do, with nothing launched: the containers by label are v1's one.
TEST_F(DaemonContainerTest, AMissingImageFailsInThePreChecksWithNothingLaunched) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::vector<platform::ManagedContainer> before = Running();
  ASSERT_EQ(before.size(), 1u);
  auto t0 = std::chrono::steady_clock::now();
  json d = WaitFinished(Deploy("no-such-version"));
  const double ms = MillisSince(t0);
  EXPECT_NE(State(d), "succeeded");
  const std::string reason = d["deployment"].value("reason", "");
  EXPECT_EQ(reason.rfind("pre-check failed: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("image localhost/turnout-test-app:no-such-version is not on the "
                        "container engine at " +
                        engine_->socket()),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("pull it there, or set platform.pull to if_not_present"), std::string::npos)
      << reason;
  EXPECT_EQ(Step(d, "resolve_image").value("outcome", ""), "failed") << d.dump();
  EXPECT_FALSE(Entered(d, "launching")) << d.dump();
  EXPECT_EQ(AllContainers(), (std::vector<std::string>{"v1:running"}));
  EXPECT_EQ(Running()[0].handle.id, before[0].handle.id);
  EXPECT_EQ(Body(PublicAddress()), "v1 /\n");
  std::cout << "containers: missing image refused in the pre-checks in " << ms << " ms\n";
}

// A registry that denies the pull (as the engine reports it: an error line in the pull's
// stream) fails the deployment in its pre-checks, saying to check the credentials, with no
// container created. The engine is scripted here: no registry can be reached from this machine.
TEST_F(DaemonContainerTest, ADeniedPullFailsInThePreChecksWithNothingLaunched) {
  auto engine = ScriptedEngine(router::testing::Behavior::Respond(
      200,
      "{\"status\":\"Trying to pull localhost/turnout-test-app:v1...\"}\n"
      "{\"errorDetail\":{\"message\":\"denied: requested access to the resource is "
      "denied\"},\"error\":\"denied: requested access to the resource is denied\"}\n"));
  ASSERT_NE(engine, nullptr);
  StartDaemon();
  json d = WaitFinished(Deploy("v1"));
  EXPECT_NE(State(d), "succeeded");
  const std::string reason = d["deployment"].value("reason", "");
  EXPECT_EQ(reason.rfind("pre-check failed: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("denied"), std::string::npos) << reason;
  EXPECT_NE(reason.find("check the registry credentials"), std::string::npos) << reason;
  EXPECT_FALSE(Entered(d, "launching")) << d.dump();
  for (const auto& r : engine->RecordedRequests()) {
    EXPECT_EQ(r.target.find("/containers/create"), std::string::npos) << r.target;
  }
}

// A pull that takes long (a big image, a slow registry) runs in the pre-checks on the
// controller thread: `turnout status` still answers at once, and `turnout abort` is taken at
// once, ending the pull. The engine is scripted: its pull answers only after 20 s.
TEST_F(DaemonContainerTest, AbortDuringALongImagePullIsTakenAtOnce) {
  router::testing::Behavior slow = router::testing::Behavior::Respond(
      200, "{\"errorDetail\":{\"message\":\"timeout\"},\"error\":\"timeout\"}\n");
  slow.delay = milliseconds(20000);
  auto engine = ScriptedEngine(slow);
  ASSERT_NE(engine, nullptr);
  StartDaemon();
  const int64_t id = Deploy("v1");
  auto pulling = [&] {
    for (const auto& r : engine->RecordedRequests()) {
      if (r.target.find("/images/create") != std::string::npos) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (!pulling() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(pulling());
  auto t0 = std::chrono::steady_clock::now();
  auto [ss, status] = Call("GET", "/v1/status");
  const double status_ms = MillisSince(t0);
  EXPECT_EQ(ss, 200);
  EXPECT_LT(status_ms, 1000);
  t0 = std::chrono::steady_clock::now();
  auto [as, aborted] = Call("POST", "/v1/abort", {{"actor", "test"}});
  const double abort_ms = MillisSince(t0);
  EXPECT_EQ(as, 200) << aborted.dump();
  EXPECT_LT(abort_ms, 3000) << "the abort waited for the pull";
  json d = WaitFinished(id, milliseconds(5000));
  EXPECT_NE(State(d), "succeeded");
  EXPECT_NE(d["deployment"].value("reason", "").find("aborted by test"), std::string::npos)
      << d.dump();
  EXPECT_FALSE(Entered(d, "launching")) << d.dump();
  std::cout << "containers: during a 20 s pull, status answered in " << status_ms
            << " ms, abort in " << abort_ms << " ms\n";
}

// The supervisor restarts a container that was killed, with the backoff of processes: 1 s
// after the first crash, 2 s after the second; the ended container is removed each time and
// the router serves the replacement.
TEST_F(DaemonContainerTest, ACrashedContainerIsRestartedWithBackoff) {
  WriteContainerConfig();
  StartDaemon();
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string address = PublicAddress();
  std::vector<double> gaps;
  std::string id = Running().at(0).handle.id;
  for (int crash = 0; crash < 2; ++crash) {
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(engine_->Cli({"kill", "--signal", "KILL", id}).ok());
    std::string replacement;
    const auto deadline = t0 + seconds(20);
    while (replacement.empty() && std::chrono::steady_clock::now() < deadline) {
      for (const auto& c : Running()) {
        if (c.handle.id != id) replacement = c.handle.id;
      }
      if (replacement.empty()) std::this_thread::sleep_for(milliseconds(50));
    }
    ASSERT_FALSE(replacement.empty()) << "no replacement for the killed container";
    gaps.push_back(MillisSince(t0));
    id = replacement;
    // The router serves the replacement (its readiness probe passes), on v1.
    std::string body;
    while (std::chrono::steady_clock::now() < deadline && (body = Body(address)) != "v1 /\n") {
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(body, "v1 /\n");
    // The killed container was removed when its replacement was launched.
    EXPECT_EQ(AllContainers(), (std::vector<std::string>{"v1:running"}));
  }
  EXPECT_GE(gaps[0], 1000) << "restarted before the first backoff (1 s)";
  EXPECT_GE(gaps[1], 2000) << "the second restart did not back off longer (2 s)";
  EXPECT_EQ(AuditEntries("instance.exited").size(), 2u);
  std::cout << "containers: killed container replaced after " << gaps[0] << " ms, then " << gaps[1]
            << " ms\n";
}

// kill -9 of turnoutd at each step of a deployment of v2 after v1, with a container service
// under load: the restarted turnoutd re-adopts what runs, resumes or rolls back by the rule
// of processes, and ends with exactly one container of the service (the serving version's):
// no duplicate, no orphan, by label.
struct ContainerCrashCase {
  const char* at;       // TURNOUTD_TEST_CRASH's state, or "mid-bake" (killed 500 ms into it)
  const char* outcome;  // the deployment's final state
  const char* serving;  // the version serving at the end
};

class DaemonContainerCrashTest : public DaemonContainerTest,
                                 public ::testing::WithParamInterface<ContainerCrashCase> {};

TEST_P(DaemonContainerCrashTest, ReadoptsAndEndsWithOneContainerOfTheServingVersion) {
  const ContainerCrashCase c = GetParam();
  const bool mid_bake = std::string(c.at) == "mid-bake";
  WriteContainerConfig();
  EditConfig("bake_time: 1s", "bake_time: 3s");  // time to kill turnoutd in the middle of it
  auto t0 = std::chrono::steady_clock::now();
  if (mid_bake) {
    StartDaemon();
  } else {
    StartDaemon({"TURNOUTD_TEST_CRASH=v2:" + std::string(c.at)});
  }
  ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
  const std::string address = PublicAddress();
  load_.Start(address, 4);
  const int64_t id = Deploy("v2");
  if (mid_bake) {
    ASSERT_EQ(WaitForState(id, "baking"), "baking");
    std::this_thread::sleep_for(milliseconds(500));
    KillDaemon();
  } else {
    ExpectDaemonDies();
  }
  EXPECT_EQ(Body(address).substr(0, 1), "v");  // the router process serves on
  StartDaemon();
  json done = WaitFinished(id);
  EXPECT_EQ(State(done), c.outcome) << done.dump();
  EXPECT_EQ(Body(address), std::string(c.serving) + " /\n");
  json load = load_.Finish();
  EXPECT_EQ(Failed(load), 0u) << load.dump();
  // The transitions chain, across the restart.
  std::string at = "pending";
  for (const auto& t : done["transitions"]) {
    EXPECT_EQ(t["from"], at) << done.dump();
    at = t["to"];
  }
  // One container of the service is left, the serving version's, running; no other.
  EXPECT_EQ(AllContainers(), (std::vector<std::string>{std::string(c.serving) + ":running"}));
  // And what the state store holds as live is that one container.
  auto [ss, status] = Call("GET", "/v1/status");
  size_t live = 0;
  for (const auto& slot : status["router"]["slots"]) {
    for (const auto& i : slot["instances"]) live += i.value("state", "") == "running";
  }
  EXPECT_EQ(live, 1u) << status.dump();
  std::cout << "containers: kill -9 at " << c.at << ": " << State(done) << ", whole test "
            << MillisSince(t0) << " ms\n";
}

INSTANTIATE_TEST_SUITE_P(
    CrashPoints, DaemonContainerCrashTest,
    ::testing::Values(ContainerCrashCase{"launching", "rolled_back", "v1"},      // after pre-checks
                      ContainerCrashCase{"waiting_ready", "rolled_back", "v1"},  // after launch
                      ContainerCrashCase{"switching", "succeeded", "v2"},
                      ContainerCrashCase{"baking", "succeeded", "v2"},  // after the switch
                      ContainerCrashCase{"mid-bake", "succeeded", "v2"},
                      ContainerCrashCase{"scaling_down", "succeeded", "v2"}),
    [](const ::testing::TestParamInfo<ContainerCrashCase>& info) {
      std::string name = info.param.at;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

}  // namespace
}  // namespace turnout::daemon
