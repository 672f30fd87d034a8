// ContainerPlatform against the real Podman API service of the container tests
// (container/testing/engine_service.h) with the statically linked test app imported as an image.
// Traffic goes to host-networked containers on loopback ports the OS hands out.

#include "container_platform/container_platform.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/clock.h"
#include "container/engine_client.h"
#include "container/testing/engine_service.h"
#include "demo/test_support.h"
#include "httpc/client.h"
#include "platform/supervisor.h"
#include "platform/testing/platform_contract.h"
#include "platform/testing/test_util.h"
#include "router/testing/test_upstream.h"

namespace turnout::platform {
namespace {

using SteadyClock = std::chrono::steady_clock;
using container::EngineClient;
using container::testing::EngineKind;
using container::testing::EngineService;
using container::testing::kTestImage;
using container::testing::SharedEngine;

int64_t MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

// GET http://<address>/ until 200 (at most 10 s): the body, or "" when it never answered.
std::string FirstOkBody(const std::string& address) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (SteadyClock::now() < deadline) {
    httpc::Request req;
    req.url = "http://" + address + "/";
    req.timeout = std::chrono::milliseconds(1000);
    auto resp = httpc::Fetch(req);
    if (resp.ok() && resp->status == 200) return resp->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return "";
}

class ContainerPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    engine_ = SharedEngine(EngineKind::kPodman, &why);
    // Podman is what scripts/install-deps.sh installs: without it these tests fail.
    if (engine_ == nullptr)
      FAIL() << "no podman here (scripts/install-deps.sh installs it): " << why;
    client_.emplace(engine_->socket(), std::chrono::milliseconds(20000));
    // A service name of this test only: lists and clean-up never see another test's containers.
    service_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    platform_ = MakePlatform(Options());
  }
  void TearDown() override {
    if (!client_) return;
    auto mine = client_->ContainerList({"turnout.service=" + service_});
    if (mine.ok()) {
      for (const auto& c : *mine) (void)client_->ContainerRemove(c.id, /*force=*/true);
    }
    for (const auto& id : foreign_) (void)client_->ContainerRemove(id, /*force=*/true);
  }

  ContainerPlatformOptions Options() const {
    ContainerPlatformOptions o;
    o.engine = "unix://" + engine_->socket();
    o.image = kTestImage;
    o.network = ContainerNetwork::kHost;
    o.pull = PullPolicy::kNever;  // the test image is imported, never pulled
    o.nofile = ContainerLimit{1024, 1024};
    o.nproc = ContainerLimit{4096, 4096};
    return o;
  }

  static std::unique_ptr<ContainerPlatform> MakePlatform(ContainerPlatformOptions o) {
    auto p = ContainerPlatform::Create(std::move(o));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  InstanceSpec Spec(int instance = 0) {
    InstanceSpec spec;
    spec.service = service_;
    spec.version = "v1";
    spec.slot = "blue";
    spec.instance = instance;
    AddressRequest request;
    request.service = service_;
    request.slot = "blue";
    request.instance = instance;
    auto address = platform_->AllocateAddress(request);
    EXPECT_TRUE(address.ok()) << address.status().ToString();
    spec.host = address.ok() ? address->host : "127.0.0.1";
    spec.port = address.ok() ? address->port : 0;
    spec.grace = std::chrono::seconds(2);
    return spec;
  }

  struct Ended {
    std::unique_ptr<ContainerPlatform> platform;
    InstanceHandle handle;
    InstanceStatus status;
  };
  // Launches an instance on a platform with options `o` and waits (at most 20 s) for its end.
  Result<Ended> RunToEnd(ContainerPlatformOptions o) {
    Ended e;
    TURNOUT_ASSIGN_OR_RETURN(e.platform, ContainerPlatform::Create(std::move(o)));
    TURNOUT_ASSIGN_OR_RETURN(e.handle, e.platform->Launch(Spec()));
    TURNOUT_ASSIGN_OR_RETURN(e.status, e.platform->Wait(e.handle, std::chrono::seconds(20)));
    EXPECT_EQ(e.status.state, InstanceState::kExited) << e.status.ToString();
    return e;
  }

  EngineService* engine_ = nullptr;
  std::optional<EngineClient> client_;
  std::string service_;
  std::unique_ptr<ContainerPlatform> platform_;
  std::vector<std::string> foreign_;  // containers created without turnout's labels
};

TEST_F(ContainerPlatformTest, LaunchAnswersOnTheHandlesAddressAndStopRemovesIt) {
  InstanceSpec spec = Spec();
  auto start = SteadyClock::now();
  auto handle = platform_->Launch(spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(handle->kind, "container");
  EXPECT_EQ(handle->address, "127.0.0.1:" + std::to_string(spec.port));
  EXPECT_EQ(handle->port, spec.port);
  EXPECT_EQ(handle->pid, 0);
  EXPECT_EQ(handle->spec_hash, SpecHash(spec));
  EXPECT_EQ(handle->grace, std::chrono::seconds(2));
  EXPECT_EQ(FirstOkBody(handle->address), "v1 /\n");
  std::printf("[measure] allocate+launch -> first 200: %lld ms\n",
              static_cast<long long>(MillisSince(start)));

  auto info = client_->ContainerInspect(handle->id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name.rfind("turnout-" + service_ + "-blue-0-", 0), 0u) << info->name;
  EXPECT_EQ(info->labels["turnout.managed"], "true");
  EXPECT_EQ(info->labels["turnout.service"], service_);
  EXPECT_EQ(info->labels["turnout.slot"], "blue");
  EXPECT_EQ(info->labels["turnout.revision"], "v1");
  EXPECT_EQ(info->labels["turnout.instance"], "0");
  EXPECT_EQ(info->labels["turnout.spec-hash"], SpecHash(spec));

  auto status = platform_->Inspect(*handle);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(status->running());

  auto stop_start = SteadyClock::now();
  ASSERT_TRUE(platform_->Stop(*handle).ok());
  std::printf("[measure] stop+remove: %lld ms\n", static_cast<long long>(MillisSince(stop_start)));
  EXPECT_EQ(client_->ContainerInspect(handle->id).status().code(), StatusCode::kNotFound);
  // Idempotent: a gone container is stopped.
  EXPECT_TRUE(platform_->Stop(*handle).ok());
  auto gone = platform_->Inspect(*handle);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->state, InstanceState::kGone);
}

TEST_F(ContainerPlatformTest, BridgePublishesTheAppsPortOnLoopbackAtTheAllocatedPort) {
  ASSERT_TRUE(engine_->has_bridge());
  ContainerPlatformOptions o = Options();
  o.network = ContainerNetwork::kBridge;
  o.port = 8080;  // the app listens on PORT, which the platform sets to this port
  o.env = {{"BIND_ALL", "1"}, {"APP_VERSION", "from-options"}};
  auto p = MakePlatform(o);
  ASSERT_NE(p, nullptr);
  InstanceSpec spec = Spec();
  spec.env = {{"APP_VERSION", "from-spec"}};  // the spec's environment wins
  auto handle = p->Launch(spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(handle->address, "127.0.0.1:" + std::to_string(spec.port));
  EXPECT_EQ(FirstOkBody(handle->address), "from-spec /\n");
  EXPECT_TRUE(p->Stop(*handle).ok());
}

// The container as the engine recorded it: every option reaches the create call.
TEST_F(ContainerPlatformTest, TheContainerCarriesTheOptionsAndTheSpec) {
  const std::string data = engine_->dir() + "/mount-" + service_;
  ASSERT_TRUE(std::filesystem::create_directories(data));
  ContainerPlatformOptions o = Options();
  o.command = {"/app"};
  o.args = {"serve"};
  o.user = "65534:65534";
  o.cpus = 0.5;
  o.memory_bytes = 64 << 20;
  o.mounts = {{data, "/data", /*read_only=*/true}};
  o.env = {{"FROM_OPTIONS", "1"}};
  auto p = MakePlatform(o);
  ASSERT_NE(p, nullptr);
  InstanceSpec spec = Spec(2);
  spec.stop_signal = SIGINT;
  spec.grace = std::chrono::milliseconds(1500);
  spec.env = {{"FROM_SPEC", "2"}};
  auto handle = p->Launch(spec);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(handle->stop_signal, SIGINT);
  EXPECT_EQ(handle->grace, std::chrono::milliseconds(1500));
  EXPECT_EQ(FirstOkBody(handle->address), "v1 /\n");

  httpc::Request req;
  req.unix_socket = engine_->socket();
  req.url = "http://engine/v1.41/containers/" + handle->id + "/json";
  auto resp = httpc::Fetch(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  ASSERT_EQ(resp->status, 200) << resp->body;
  auto j = nlohmann::json::parse(resp->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << resp->body;
  const auto& config = j["Config"];
  const auto& host = j["HostConfig"];
  EXPECT_EQ(config["Entrypoint"], nlohmann::json::array({"/app"})) << config.dump();
  EXPECT_EQ(config["Cmd"], nlohmann::json::array({"serve"}));
  EXPECT_EQ(config["User"], "65534:65534");
  EXPECT_EQ(config["StopTimeout"], 2) << "whole seconds, never less than the grace";
  std::set<std::string> env;
  for (const auto& e : config["Env"]) env.insert(e.get<std::string>());
  const std::string port = std::to_string(spec.port);
  const std::vector<std::string> wanted = {
      "FROM_OPTIONS=1",     "FROM_SPEC=2",          "TURNOUT_VERSION=v1", "TURNOUT_SLOT=blue",
      "TURNOUT_INSTANCE=2", "TURNOUT_PORT=" + port, "PORT=" + port};
  for (const std::string& want : wanted) {
    EXPECT_EQ(env.count(want), 1u) << want << " in " << config["Env"].dump();
  }
  EXPECT_EQ(host["Memory"], 64 << 20);
  EXPECT_EQ(host["NanoCpus"], 500000000);
  EXPECT_EQ(host["NetworkMode"], "host");
  ASSERT_EQ(host["Binds"].size(), 1u);
  // Podman appends its own options (",rprivate,rbind").
  EXPECT_EQ(host["Binds"][0].get<std::string>().rfind(data + ":/data:ro", 0), 0u)
      << host["Binds"].dump();
  std::set<std::string> ulimits;
  for (const auto& u : host["Ulimits"]) {
    ulimits.insert(u["Name"].get<std::string>() + "=" + std::to_string(u["Soft"].get<int64_t>()) +
                   ":" + std::to_string(u["Hard"].get<int64_t>()));
  }
  EXPECT_EQ(ulimits.count("RLIMIT_NOFILE=1024:1024") + ulimits.count("nofile=1024:1024"), 1u)
      << host["Ulimits"].dump();
  EXPECT_EQ(ulimits.count("RLIMIT_NPROC=4096:4096") + ulimits.count("nproc=4096:4096"), 1u)
      << host["Ulimits"].dump();
  // dockerd records the name, Podman the number.
  EXPECT_TRUE(config["StopSignal"] == "SIGINT" || config["StopSignal"] == "2")
      << config["StopSignal"].dump();
  ASSERT_TRUE(p->Stop(*handle).ok());
  EXPECT_EQ(client_->ContainerInspect(handle->id).status().code(), StatusCode::kNotFound);
}

TEST_F(ContainerPlatformTest, InstanceThatExitsAtOnceGivesItsCodeAndLastLogLines) {
  ContainerPlatformOptions o = Options();
  o.args = {"/app", "exit", "3"};
  o.env = {{"MESSAGE", "no database url"}};
  auto ended = RunToEnd(o);
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(ended->status.exit_code, 3);
  EXPECT_EQ(ended->status.ToString(), "exited with code 3");
  ContainerPlatform& p = *ended->platform;
  // Inspect after the exit still gives the code.
  auto again = p.Inspect(ended->handle);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, 3);
  std::string tail = p.LogTail(ended->handle, 10, 4096);
  EXPECT_NE(tail.find("starting"), std::string::npos) << tail;
  EXPECT_NE(tail.find("fatal: no database url"), std::string::npos) << tail;
  EXPECT_EQ(p.LogTail(ended->handle, 1, 4096), "fatal: no database url") << "the last line only";
  EXPECT_EQ(p.LogTail(ended->handle, 10, 30), "fatal: no database url") << "at most 30 bytes";
}

TEST_F(ContainerPlatformTest, AppAllocatingPastItsMemoryLimitIsKilled) {
  ContainerPlatformOptions o = Options();
  o.args = {"/app", "hog"};
  o.memory_bytes = 32 << 20;
  auto ended = RunToEnd(o);
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  const InstanceStatus* status = &ended->status;
  // Podman 4.3 with runc on cgroup v1 reports 137 without OOMKilled: killed by SIGKILL.
  EXPECT_EQ(status->term_signal, SIGKILL) << status->ToString();
  if (!status->oom_killed) {
    std::printf("[note] the engine reported exit code 137 without OOMKilled\n");
    // The status cannot tell; the log tail (which the deployment's reason quotes) says that
    // the memory limit may be the cause.
    EXPECT_NE(ended->platform->LogTail(ended->handle, 10, 4096)
                  .find("exit code 137 with a memory limit of 32 MiB: probably killed at it"),
              std::string::npos)
        << ended->platform->LogTail(ended->handle, 10, 4096);
  } else {
    EXPECT_EQ(status->ToString(), "killed: out of memory");
  }
  // A container killed without a memory limit is only a kill.
  ContainerPlatformOptions unlimited = Options();
  unlimited.args = {"/app", "serve"};
  auto p = ContainerPlatform::Create(unlimited);
  ASSERT_TRUE(p.ok());
  auto h = (*p)->Launch(Spec(1));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(client_->ContainerKill(h->id, "SIGKILL").ok());
  ASSERT_TRUE((*p)->Wait(*h, std::chrono::seconds(20)).ok());
  EXPECT_EQ((*p)->LogTail(*h, 10, 4096).find("memory"), std::string::npos)
      << (*p)->LogTail(*h, 10, 4096);
  (void)(*p)->Stop(*h);
}

TEST_F(ContainerPlatformTest, SecondPlatformAdoptsByHandleAndListManagedFindsExactlyOurs) {
  auto a = platform_->Launch(Spec(0));
  auto b = platform_->Launch(Spec(1));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  // Another service's container and an unlabelled one: never listed.
  container::ContainerSpec plain;
  plain.image = kTestImage;
  plain.cmd = {"/app", "exit", "0"};
  plain.labels = {{"turnout.service", service_}};  // no turnout.managed
  auto foreign = client_->ContainerCreate(plain);
  ASSERT_TRUE(foreign.ok()) << foreign.status().ToString();
  foreign_.push_back(*foreign);

  // As after a restart of turnoutd: a new object, the handle decoded from the store.
  auto restarted = MakePlatform(Options());
  ASSERT_NE(restarted, nullptr);
  auto decoded = DecodeHandle(EncodeHandle(*a));
  ASSERT_TRUE(decoded.ok());
  auto adopt_start = SteadyClock::now();
  auto adopted = restarted->Adopt(*decoded);
  std::printf("[measure] adopt: %lld ms\n", static_cast<long long>(MillisSince(adopt_start)));
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_TRUE(adopted->running());

  auto listed = restarted->ListManaged(service_);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  std::set<std::string> ids;
  for (const auto& m : *listed) {
    ids.insert(m.handle.id);
    const InstanceHandle& want = m.handle.id == a->id ? *a : *b;
    // The handle rebuilt from the labels is the one Launch returned.
    EXPECT_EQ(m.handle, want);
    EXPECT_EQ(m.slot, "blue");
    EXPECT_EQ(m.revision, "v1");
    EXPECT_EQ(m.state, "running");
  }
  EXPECT_EQ(ids, (std::set<std::string>{a->id, b->id}));
  auto other = restarted->ListManaged(service_ + "-other");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  // The adopted instance stops through the new object.
  EXPECT_TRUE(restarted->Stop(*decoded).ok());
  EXPECT_EQ(client_->ContainerInspect(a->id).status().code(), StatusCode::kNotFound);
}

// Two owners (two state directories) with one service name: each lists, adopts and stops only
// its own containers; one without an owner (made before the label existed) is adopted by its
// handle but listed by no owner.
TEST_F(ContainerPlatformTest, AnOwnerListsAdoptsAndStopsOnlyItsOwnContainers) {
  ContainerPlatformOptions oa = Options();
  oa.owner = "aaaa";
  ContainerPlatformOptions ob = Options();
  ob.owner = "bbbb";
  auto pa = MakePlatform(oa);
  auto pb = MakePlatform(ob);
  ASSERT_NE(pa, nullptr);
  ASSERT_NE(pb, nullptr);
  auto a = pa->Launch(Spec(0));
  auto b = pb->Launch(Spec(1));
  auto none = platform_->Launch(Spec(2));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  auto ids = [](const Result<std::vector<ManagedContainer>>& list) {
    std::set<std::string> out;
    if (list.ok()) {
      for (const auto& m : *list) out.insert(m.handle.id + "/" + m.owner);
    }
    return out;
  };
  EXPECT_EQ(ids(pa->ListManaged(service_)), (std::set<std::string>{a->id + "/aaaa"}));
  EXPECT_EQ(ids(pb->ListManaged(service_)), (std::set<std::string>{b->id + "/bbbb"}));
  EXPECT_EQ(ids(platform_->ListManaged(service_)),
            (std::set<std::string>{a->id + "/aaaa", b->id + "/bbbb", none->id + "/"}));
  // The other owner's container is refused, named, and left running.
  auto adopted = pa->Adopt(*b);
  EXPECT_EQ(adopted.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(adopted.status().message().find("another state directory"), std::string::npos)
      << adopted.status().message();
  EXPECT_EQ(pa->Stop(*b).code(), StatusCode::kFailedPrecondition);
  auto info = client_->ContainerInspect(b->id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->state.running);
  EXPECT_EQ(info->labels["turnout.owner"], "bbbb");
  // Without an owner label: adopted by its handle.
  auto legacy = pa->Adopt(*none);
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString();
  EXPECT_TRUE(legacy->running());
  EXPECT_TRUE(pa->Stop(*a).ok());
  EXPECT_TRUE(pb->Stop(*b).ok());
  EXPECT_TRUE(pa->Stop(*none).ok());
  EXPECT_TRUE(ids(platform_->ListManaged(service_)).empty());
}

// The supervisor restarts a crashed container with backoff, as it does a process; the container
// that ended is removed when its replacement is launched, so no exited container is left behind.
TEST_F(ContainerPlatformTest, SupervisorRestartsACrashedContainerAndRemovesTheEndedOne) {
  ContainerPlatformOptions o = Options();
  o.args = {"/app", "exit", "3"};
  auto p = MakePlatform(o);
  ASSERT_NE(p, nullptr);
  ManualClock clock;
  std::vector<SupervisorEvent> events;
  SupervisorOptions so;
  so.log_rotation.reset();
  Supervisor supervisor(*p, so, [&](const SupervisorEvent& e) { events.push_back(e); });
  InstanceSpec spec = Spec();
  auto first = p->Launch(spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  supervisor.Watch("web/blue/0", spec, *first, clock.Now());
  ASSERT_TRUE(p->Wait(*first, std::chrono::seconds(20)).ok());

  supervisor.Tick(clock.Now());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, SupervisorEvent::Type::kExited);
  EXPECT_EQ(events[0].status.exit_code, 3);
  // The ended container is still there during the backoff: its logs can be read.
  EXPECT_NE(p->LogTail(events[0].handle, 5, 4096).find("fatal"), std::string::npos);
  ASSERT_EQ(events[1].type, SupervisorEvent::Type::kRestartScheduled);
  EXPECT_EQ(events[1].delay, std::chrono::seconds(1));
  events.clear();
  clock.Advance(std::chrono::seconds(1));
  supervisor.Tick(clock.Now());
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].type, SupervisorEvent::Type::kRestarted) << events[0].error.ToString();
  EXPECT_NE(events[0].handle.id, first->id);

  auto listed = p->ListManaged(service_);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u) << "the ended container is removed";
  EXPECT_EQ(listed->front().handle.id, events[0].handle.id);
  EXPECT_EQ(client_->ContainerInspect(first->id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(supervisor.Unwatch("web/blue/0").ok());
}

// kill -9 of the daemon that launched a container: the container runs on (the engine owns it),
// and the restarted daemon finds exactly it by label, with the handle it had printed, adopts it
// running and stops it.
TEST_F(ContainerPlatformTest, AfterTheLaunchingDaemonIsKilledItsContainerIsFoundAndAdopted) {
  uint16_t port = Spec().port;
  auto launcher = demo::testing::ChildProcess::Start({TURNOUT_CONTAINER_PLATFORM_LAUNCH_HELPER,
                                                      engine_->socket(), kTestImage, service_,
                                                      std::to_string(port)});
  ASSERT_TRUE(launcher.ok()) << launcher.status().ToString();
  auto line = launcher->ReadLine(std::chrono::seconds(20));
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  auto printed = DecodeHandle(*line);
  ASSERT_TRUE(printed.ok()) << printed.status().ToString() << " in " << *line;
  ASSERT_TRUE(launcher->Signal(SIGKILL).ok());
  auto ended = launcher->Wait(std::chrono::seconds(20));
  ASSERT_TRUE(ended.ok());
  ASSERT_TRUE(WIFSIGNALED(*ended));

  auto listed = platform_->ListManaged(service_);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().handle, *printed);
  auto adopted = platform_->Adopt(listed->front().handle);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_TRUE(adopted->running());
  EXPECT_EQ(FirstOkBody(printed->address), "v1 /\n");
  EXPECT_TRUE(platform_->Stop(*printed).ok());
  auto after = platform_->ListManaged(service_);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TEST_F(ContainerPlatformTest, ContainerWithoutTurnoutsLabelsIsRefusedAndNeverStopped) {
  uint16_t port = Spec().port;
  container::ContainerSpec plain;
  plain.image = kTestImage;
  plain.network_mode = "host";
  plain.env = {"PORT=" + std::to_string(port)};
  plain.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
  auto id = client_->ContainerCreate(plain);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  foreign_.push_back(*id);
  ASSERT_TRUE(client_->ContainerStart(*id).ok());

  InstanceHandle handle;
  handle.kind = "container";
  handle.id = *id;
  handle.address = "127.0.0.1:" + std::to_string(port);
  handle.port = port;
  auto adopted = platform_->Adopt(handle);
  EXPECT_EQ(adopted.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(adopted.status().message().find("turnout.managed=true"), std::string::npos)
      << adopted.status().message();
  Status stopped = platform_->Stop(handle);
  EXPECT_EQ(stopped.code(), StatusCode::kFailedPrecondition) << stopped.ToString();
  auto info = client_->ContainerInspect(*id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->state.running) << "the unlabelled container must still run";
}

TEST_F(ContainerPlatformTest, HandleOfAnotherKindIsRefused) {
  InstanceHandle process;
  process.kind = "process";
  process.id = "svc-blue-0-123";
  process.pid = 123;
  for (Status st : {platform_->Stop(process), platform_->Inspect(process).status(),
                    platform_->Adopt(process).status(),
                    platform_->Wait(process, std::chrono::milliseconds(10)).status()}) {
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  }
  EXPECT_EQ(platform_->LogTail(process, 5, 100), "");
}

TEST_F(ContainerPlatformTest, UnreachableEngineNamesTheSocket) {
  ContainerPlatformOptions o = Options();
  o.engine = "unix://" + engine_->dir() + "/nobody-listens.sock";
  auto p = ContainerPlatform::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(p.status().message().find(engine_->dir() + "/nobody-listens.sock"), std::string::npos)
      << p.status().message();
}

TEST_F(ContainerPlatformTest, MissingImageIsNotFoundBeforeAnythingIsCreated) {
  ContainerPlatformOptions o = Options();
  o.image = "localhost/turnout-no-such-image:{version}";
  auto p = MakePlatform(o);
  ASSERT_NE(p, nullptr);
  auto resolved = p->ResolveImage("v9");
  EXPECT_EQ(resolved.status().code(), StatusCode::kNotFound);
  EXPECT_NE(resolved.status().message().find("localhost/turnout-no-such-image:v9"),
            std::string::npos)
      << resolved.status().message();
  auto launched = p->Launch(Spec());
  EXPECT_EQ(launched.status().code(), StatusCode::kNotFound) << launched.status().ToString();
  auto listed = p->ListManaged(service_);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(ContainerPlatformTest, PullPolicies) {
  // if_not_present: the image is there, so nothing is pulled (there is no registry to pull from).
  ContainerPlatformOptions o = Options();
  o.pull = PullPolicy::kIfNotPresent;
  auto present = MakePlatform(o);
  ASSERT_NE(present, nullptr);
  auto id = present->ResolveImage("v1");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->rfind("sha256:", 0), 0u);

  // always: the pull is tried, fails (no registry here) and nothing is launched.
  o.pull = PullPolicy::kAlways;
  auto always = MakePlatform(o);
  ASSERT_NE(always, nullptr);
  auto pulled = always->ResolveImage("v1");
  ASSERT_FALSE(pulled.ok());
  std::printf("[engine] pull always: %s\n", pulled.status().ToString().c_str());
  EXPECT_NE(pulled.status().message().find(kTestImage), std::string::npos)
      << pulled.status().message();
  auto launched = always->Launch(Spec());
  EXPECT_FALSE(launched.ok());

  // if_not_present with a missing image: the pull fails, saying which image.
  o.pull = PullPolicy::kIfNotPresent;
  o.image = "localhost/turnout-no-such-image:{version}";
  auto missing = MakePlatform(o);
  ASSERT_NE(missing, nullptr);
  auto resolved = missing->ResolveImage("v2");
  ASSERT_FALSE(resolved.ok());
  std::printf("[engine] pull missing: %s\n", resolved.status().ToString().c_str());
  EXPECT_NE(resolved.status().message().find("localhost/turnout-no-such-image:v2"),
            std::string::npos)
      << resolved.status().message();
  auto listed = always->ListManaged(service_);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(ContainerPlatformTest, PortAlreadyInUseIsRefusedNamingIt) {
  InstanceSpec spec = Spec();
  auto first = platform_->Launch(spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_FALSE(FirstOkBody(first->address).empty());
  spec.instance = 1;
  auto second = platform_->Launch(spec);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(std::to_string(spec.port)), std::string::npos)
      << second.status().message();
  auto listed = platform_->ListManaged(service_);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(ContainerPlatformTest, LaunchByResolvedIdRunsThatImageAfterTheTagMoved) {
  const std::string moving = "localhost/turnout-test-app:moving";
  const std::string root = engine_->dir() + "/image-root";
  ASSERT_TRUE(
      engine_->ImportImage(root, moving, {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=first"})
          .ok());
  ContainerPlatformOptions o = Options();
  o.image = "localhost/turnout-test-app:{version}";
  auto p = MakePlatform(o);
  ASSERT_NE(p, nullptr);
  auto id = p->ResolveImage("moving");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->rfind("sha256:", 0), 0u) << *id;

  // The tag now names another image (other ENV).
  ASSERT_TRUE(
      engine_->ImportImage(root, moving, {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=second"})
          .ok());
  auto moved = p->ResolveImage("moving");
  ASSERT_TRUE(moved.ok());
  EXPECT_NE(*moved, *id);

  InstanceSpec pinned = Spec(0);
  pinned.version = "moving";
  pinned.image = *id;
  auto a = p->Launch(pinned);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(FirstOkBody(a->address), "first /\n");

  InstanceSpec by_tag = Spec(1);
  by_tag.version = "moving";
  auto b = p->Launch(by_tag);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(FirstOkBody(b->address), "second /\n");
}

// Instance 0 of web's blue slot, version v1, on `port`: for the scripted engines.
InstanceSpec ScriptedSpec(uint16_t port) {
  InstanceSpec spec;
  spec.service = "web";
  spec.version = "v1";
  spec.slot = "blue";
  spec.port = port;
  return spec;
}

// An engine that finds the port taken only at start (after Launch's own check passed): the same
// FailedPrecondition naming the port, and the container it created is removed. Scripted, since a
// real engine cannot be made to lose that race on purpose.
TEST(ContainerPlatformScriptedTest, PortTakenAtStartIsNamedAndTheContainerRemoved) {
  platform::testing::TempDir dir;
  auto engine = router::testing::TestUpstream::StartUnix("engine", dir.path() + "/engine.sock");
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  (*engine)->SetHandler([](const router::testing::ReceivedRequest& r) {
    using router::testing::Behavior;
    if (r.target.find("/_ping") != std::string::npos) return Behavior::Respond(200, "OK");
    if (r.target.find("/containers/create") != std::string::npos) {
      return Behavior::Respond(201, R"({"Id":"c0ffee","Warnings":[]})");
    }
    if (r.target.find("/start") != std::string::npos) {
      return Behavior::Respond(
          500, R"({"message":"listen tcp4 127.0.0.1:9: bind: address already in use"})");
    }
    if (r.method == "DELETE") return Behavior::Respond(204);
    return Behavior::Respond(404, R"({"message":"no such thing"})");
  });
  ContainerPlatformOptions o;
  o.engine = (*engine)->unix_path();
  o.image = "app:{version}";
  auto p = ContainerPlatform::Create(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto port = platform::testing::FreePort();
  ASSERT_TRUE(port.ok());
  InstanceSpec spec = ScriptedSpec(*port);
  spec.image = "sha256:0123";
  auto launched = (*p)->Launch(spec);
  EXPECT_EQ(launched.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      launched.status().message().find("port " + std::to_string(*port) + " is already in use"),
      std::string::npos)
      << launched.status().message();
  bool removed = false;
  for (const auto& r : (*engine)->RecordedRequests()) {
    if (r.method == "DELETE" && r.target.find("/containers/c0ffee") != std::string::npos) {
      removed = true;
    }
  }
  EXPECT_TRUE(removed) << "the container that could not start is removed";
}

// An engine that stops answering after the platform connected: every call says which socket.
TEST(ContainerPlatformScriptedTest, EngineGoneLaterIsNamedByEveryCall) {
  platform::testing::TempDir dir;
  const std::string socket = dir.path() + "/engine.sock";
  auto engine = router::testing::TestUpstream::StartUnix("engine", socket);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  (*engine)->SetBehavior(router::testing::Behavior::Respond(200, "OK"));
  ContainerPlatformOptions o;
  o.engine = socket;
  o.image = "app:{version}";
  auto p = ContainerPlatform::Create(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*engine)->Stop();

  InstanceHandle handle;
  handle.kind = "container";
  handle.id = "c0ffee";
  auto port = platform::testing::FreePort();
  ASSERT_TRUE(port.ok());
  InstanceSpec spec = ScriptedSpec(*port);
  for (const Status& st : {(*p)->Inspect(handle).status(), (*p)->Stop(handle),
                           (*p)->Adopt(handle).status(), (*p)->ResolveImage("v1").status(),
                           (*p)->Launch(spec).status(), (*p)->ListManaged("web").status()}) {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_NE(st.message().find(socket), std::string::npos) << st.ToString();
  }
  EXPECT_EQ((*p)->LogTail(handle, 5, 1024), "");
  // Resolving an image is what a deployment's pre-checks do first: the answer says what is
  // wrong in words, not only in the transport's ("connect to localhost port 80").
  Status resolve = (*p)->ResolveImage("v1").status();
  EXPECT_NE(resolve.message().find("the container engine at " + socket + " does not answer"),
            std::string::npos)
      << resolve.ToString();
  EXPECT_NE(resolve.message().find("set platform.engine"), std::string::npos) << resolve.ToString();
}

TEST(ContainerOptionsTest, RefusesWhatCannotWork) {
  ContainerPlatformOptions o;
  o.image = "app:{version}";
  EXPECT_TRUE(ValidateContainerOptions(o).ok());
  auto refused = [&](auto change, std::string_view names) {
    ContainerPlatformOptions b = o;
    change(b);
    Status st = ValidateContainerOptions(b);
    return st.code() == StatusCode::kInvalidArgument &&
           st.message().find(names) != std::string::npos;
  };
  EXPECT_TRUE(refused([](auto& b) { b.image = ""; }, "platform.image"));
  EXPECT_TRUE(refused([](auto& b) { b.network = ContainerNetwork::kBridge; }, "platform.port"));
  EXPECT_TRUE(refused([](auto& b) { b.nofile = ContainerLimit{1024, 1024}; }, "nproc"));
  EXPECT_TRUE(refused([](auto& b) { b.memory_bytes = -1; }, "platform.memory"));
  EXPECT_TRUE(refused([](auto& b) { b.mounts = {{"/a", ""}}; }, "platform.mounts"));
}

// The Platform contract (platform/testing/platform_contract.h) against the shared Podman service:
// the test app serving with host networking, or exiting with the code.
std::unique_ptr<Platform> ContractPlatform(int exit_code) {
  std::string why;
  EngineService* engine = SharedEngine(EngineKind::kPodman, &why);
  if (engine == nullptr) {
    ADD_FAILURE() << "no podman here (scripts/install-deps.sh installs it): " << why;
    return nullptr;
  }
  ContainerPlatformOptions o;
  o.engine = "unix://" + engine->socket();
  o.image = kTestImage;
  o.pull = PullPolicy::kNever;
  o.nofile = ContainerLimit{1024, 1024};
  o.nproc = ContainerLimit{4096, 4096};
  if (exit_code >= 0) o.args = {"/app", "exit", std::to_string(exit_code)};
  auto p = ContainerPlatform::Create(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

using testing::PlatformContractTest;
INSTANTIATE_TEST_SUITE_P(Container, PlatformContractTest,
                         ::testing::Values(testing::PlatformContract{.name = "ContainerPlatform",
                                                                     .make = ContractPlatform,
                                                                     .complete = {}}),
                         testing::ContractName);

}  // namespace
}  // namespace turnout::platform
