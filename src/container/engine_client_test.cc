// EngineClient against a scripted engine on a Unix socket (router::testing::TestUpstream): the
// request shapes it sends and how it reads the engine's answers and errors. The same calls
// against a real Podman service are in engine_podman_test.cc.

#include "container/engine_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "container/registry_auth.h"
#include "platform/testing/test_util.h"
#include "router/testing/test_upstream.h"

namespace turnout::container {
namespace {

using router::testing::Behavior;
using router::testing::ReceivedRequest;
using router::testing::TestUpstream;

std::string Frame(uint8_t stream, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  f[7] = static_cast<char>(payload.size());  // small payloads only
  return f + std::string(payload);
}

struct FakeEngine {
  platform::testing::TempDir dir;
  std::unique_ptr<TestUpstream> up;
  FakeEngine() {
    auto started = TestUpstream::StartUnix("engine", dir.path() + "/engine.sock");
    if (started.ok())
      up = std::move(started).value();
    else
      ADD_FAILURE() << started.status().ToString();
  }
  EngineClient Client() const { return EngineClient(up->unix_path(), Millis(5000)); }
};

TEST(EngineAddressTest, ExplicitThenDockerHostThenDefaults) {
  auto explicit_one = ResolveEngineSockets("unix:///srv/podman.sock", "unix:///ignored.sock");
  ASSERT_TRUE(explicit_one.ok());
  EXPECT_EQ(*explicit_one, std::vector<std::string>{"/srv/podman.sock"});
  auto bare = ResolveEngineSockets("/srv/d.sock", "");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, std::vector<std::string>{"/srv/d.sock"});
  auto env = ResolveEngineSockets("", "unix:///run/user/1000/docker.sock");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(*env, std::vector<std::string>{"/run/user/1000/docker.sock"});
  auto defaults = ResolveEngineSockets("", "");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(*defaults,
            (std::vector<std::string>{"/var/run/docker.sock", "/run/podman/podman.sock"}));
}

TEST(EngineAddressTest, TcpIsRefusedSayingSo) {
  auto tcp = ResolveEngineSockets("", "tcp://10.0.0.5:2375");
  ASSERT_FALSE(tcp.ok());
  EXPECT_EQ(tcp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tcp.status().message().find("DOCKER_HOST"), std::string::npos);
  EXPECT_NE(tcp.status().message().find("tcp:// and ssh:// engines are not"), std::string::npos)
      << tcp.status().ToString();
  EXPECT_FALSE(ResolveEngineSockets("ssh://host", "").ok());
  EXPECT_FALSE(ResolveEngineSockets("unix://", "").ok());
  EXPECT_FALSE(ResolveEngineSockets("relative.sock", "").ok());
}

TEST(EngineClientTest, UnreachableEngineNamesTheSocketTried) {
  platform::testing::TempDir dir;
  std::string missing = dir.path() + "/docker.sock";
  auto client = EngineClient::Connect({.address = "unix://" + missing});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(client.status().message().find(missing + " (no such file)"), std::string::npos)
      << client.status().ToString();
  EXPECT_NE(client.status().message().find("podman system service"), std::string::npos);

  // A socket file with nothing behind it (a dead engine).
  std::string dead;
  {
    FakeEngine engine;
    ASSERT_TRUE(engine.up);
    dead = engine.up->unix_path();
    // Keep the file: a stopped engine leaves its socket behind.
    engine.up->SetBehavior(Behavior::Of(Behavior::Kind::kCloseBeforeResponse));
    auto answer = EngineClient(dead).Ping();
    EXPECT_EQ(answer.code(), StatusCode::kUnavailable);
    EXPECT_NE(answer.message().find(dead), std::string::npos) << answer.ToString();
  }
}

TEST(EngineClientTest, ConnectPingsAndCallsCarryTheApiVersion) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  engine.up->SetHandler([](const ReceivedRequest& r) {
    if (r.target == "/_ping") return Behavior::Respond(200, "OK");
    return Behavior::Respond(200, R"({"Version":"4.3.1","ApiVersion":"1.41","Os":"linux",
      "Arch":"amd64","Components":[{"Name":"Podman Engine","Version":"4.3.1"}]})");
  });
  auto client = EngineClient::Connect({.address = engine.up->unix_path()});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto v = client->Version();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->api_version, "1.41");
  EXPECT_TRUE(v->podman);
  auto seen = engine.up->RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/_ping");
  EXPECT_EQ(seen[1].target, "/v1.41/version");
}

TEST(EngineClientTest, CreateSendsTheWholeSpec) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  engine.up->SetBehavior(Behavior::Respond(201, R"({"Id":"c0ffee","Warnings":[]})"));
  ContainerSpec spec;
  spec.name = "web-blue";
  spec.image = "localhost/app:v1";
  spec.cmd = {"/app", "serve"};
  spec.entrypoint = {"/init"};
  spec.env = {"PORT=8080"};
  spec.labels = {{"turnout.service", "web"}};
  spec.user = "1000:1000";
  spec.working_dir = "/srv";
  spec.ports = {{.container_port = 8080, .host_port = 18080}};
  spec.memory_bytes = 64 << 20;
  spec.nano_cpus = 500000000;
  spec.binds = {"/data:/data:ro"};
  spec.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
  spec.stop_signal = "SIGINT";
  spec.stop_timeout_s = 7;
  auto id = engine.Client().ContainerCreate(spec);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "c0ffee");
  auto seen = engine.up->RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1.41/containers/create?name=web-blue");
  EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
  nlohmann::json body = nlohmann::json::parse(seen[0].body);
  EXPECT_EQ(body["Image"], "localhost/app:v1");
  EXPECT_EQ(body["Cmd"], nlohmann::json({"/app", "serve"}));
  EXPECT_EQ(body["Entrypoint"], nlohmann::json({"/init"}));
  EXPECT_EQ(body["Env"], nlohmann::json({"PORT=8080"}));
  EXPECT_EQ(body["Labels"]["turnout.service"], "web");
  EXPECT_EQ(body["User"], "1000:1000");
  EXPECT_EQ(body["WorkingDir"], "/srv");
  EXPECT_EQ(body["StopSignal"], "SIGINT");
  EXPECT_EQ(body["StopTimeout"], 7);
  EXPECT_TRUE(body["ExposedPorts"].contains("8080/tcp"));
  const auto& host = body["HostConfig"];
  EXPECT_EQ(host["PortBindings"]["8080/tcp"][0]["HostIp"], "127.0.0.1");
  EXPECT_EQ(host["PortBindings"]["8080/tcp"][0]["HostPort"], "18080");
  EXPECT_EQ(host["Memory"], 64 << 20);
  EXPECT_EQ(host["NanoCpus"], 500000000);
  EXPECT_EQ(host["Binds"], nlohmann::json({"/data:/data:ro"}));
  ASSERT_EQ(host["Ulimits"].size(), 2u);
  EXPECT_EQ(host["Ulimits"][1]["Name"], "nproc");
  EXPECT_EQ(host["Ulimits"][1]["Hard"], 4096);
}

TEST(EngineClientTest, EngineErrorsKeepTheirMessageAndMeaning) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  engine.up->SetHandler([](const ReceivedRequest& r) {
    if (r.target.find("/containers/create") != std::string::npos) {
      // (The handler sees the head only: the name tells the two cases apart.)
      if (r.target.find("name=web") == std::string::npos) {
        return Behavior::Respond(404, R"({"message":"No such image: missing:v9"})");
      }
      return Behavior::Respond(
          409, R"({"message":"Conflict. The container name \"/web\" is already in use"})");
    }
    if (r.target.find("/start") != std::string::npos) {
      return Behavior::Respond(
          500, R"({"message":"listen tcp4 127.0.0.1:8080: bind: address already in use"})");
    }
    if (r.method == "DELETE") {
      return Behavior::Respond(409, R"({"message":"cannot remove a running container"})");
    }
    return Behavior::Respond(
        404,
        R"({"cause":"no such container","message":"no container with name or ID \"x\" found: no such container","response":404})");
  });
  EngineClient client = engine.Client();
  ContainerSpec spec;
  spec.image = "missing:v9";
  auto missing = client.ContainerCreate(spec);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("No such image: missing:v9"), std::string::npos);
  EXPECT_NE(missing.status().message().find("pull or load the image"), std::string::npos);
  spec.name = "web";
  spec.image = "app";
  auto taken = client.ContainerCreate(spec);
  EXPECT_EQ(taken.status().code(), StatusCode::kAlreadyExists) << taken.status().ToString();
  Status port = client.ContainerStart("web");
  EXPECT_EQ(port.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(port.message().find("port is already in use"), std::string::npos) << port.ToString();
  Status running = client.ContainerRemove("web");
  EXPECT_EQ(running.code(), StatusCode::kFailedPrecondition);
  engine.up->SetBehavior(Behavior::Respond(400, R"({"message":"invalid reference format"})"));
  EXPECT_EQ(client.ContainerStart("web").code(), StatusCode::kInvalidArgument);
  engine.up->SetBehavior(Behavior::Respond(500, R"({"message":"OCI runtime create failed"})"));
  Status oci = client.ContainerStart("web");
  EXPECT_EQ(oci.code(), StatusCode::kIoError);
  EXPECT_NE(oci.message().find("500 OCI runtime create failed"), std::string::npos)
      << oci.ToString();
  engine.up->SetBehavior(Behavior::Respond(
      404,
      R"({"cause":"no such container","message":"no container with name or ID \"x\" found: no such container","response":404})"));
  auto gone = client.ContainerInspect("x");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("no container with name or ID"), std::string::npos);
  EXPECT_EQ(client.ContainerInspect("x; rm -rf /").status().code(), StatusCode::kInvalidArgument);
}

TEST(EngineClientTest, PullReportsProgressAndAnErrorInTheStream) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  Behavior b =
      Behavior::Respond(200,
                        "{\"status\":\"Pulling from acme/web\",\"id\":\"v2\"}\n"
                        "{\"status\":\"Pulling fs layer\",\"id\":\"a1\"}\n"
                        "{\"errorDetail\":{\"message\":\"pull access denied for acme/web\"},"
                        "\"error\":\"pull access denied for acme/web\"}\n");
  b.chunked = true;
  engine.up->SetBehavior(b);
  std::vector<std::string> statuses;
  Status s = engine.Client().ImagePull(
      "acme/web:v2", [&](const PullProgress& p) { statuses.push_back(p.status); });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("pull access denied"), std::string::npos);
  EXPECT_EQ(statuses, (std::vector<std::string>{"Pulling from acme/web", "Pulling fs layer"}));
  auto seen = engine.up->RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/v1.41/images/create?fromImage=acme%2Fweb&tag=v2");

  engine.up->SetBehavior(Behavior::Respond(
      200, "{\"error\":\"manifest unknown: manifest unknown\",\"errorDetail\":{}}\n"));
  EXPECT_EQ(engine.Client().ImagePull("acme/web:nope").code(), StatusCode::kNotFound);

  engine.up->SetBehavior(Behavior::Respond(200, "{\"status\":\"Downloaded newer image\"}\n"));
  EXPECT_TRUE(engine.Client().ImagePull("acme/web").ok());
  EXPECT_EQ(engine.up->RecordedRequests().back().target,
            "/v1.41/images/create?fromImage=acme%2Fweb&tag=latest");
}

TEST(EngineClientTest, PullSendsTheRegistryCredentials) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  engine.up->SetBehavior(Behavior::Respond(200, "{\"status\":\"Pulled\"}\n"));
  platform::testing::TempDir config;
  ASSERT_TRUE(
      WriteFileAtomically(config.path() + "/config.json",
                          R"({"auths":{"registry.example.com":{"auth":"Ym90OnMzY3JldA=="}}})")
          .ok());
  ::setenv("DOCKER_CONFIG", config.path().c_str(), 1);
  Status pulled = engine.Client().ImagePull("registry.example.com/acme/web:v3");
  Status other = engine.Client().ImagePull("quay.io/acme/web:v3");
  ::unsetenv("DOCKER_CONFIG");
  ASSERT_TRUE(pulled.ok()) << pulled.ToString();
  ASSERT_TRUE(other.ok()) << other.ToString();
  auto seen = engine.up->RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  auto raw = DecodeBase64(seen[0].Header("X-Registry-Auth"));
  ASSERT_TRUE(raw.has_value());
  nlohmann::json auth = nlohmann::json::parse(*raw);
  EXPECT_EQ(auth["username"], "bot");
  EXPECT_EQ(auth["password"], "s3cret");
  EXPECT_EQ(auth["serveraddress"], "registry.example.com");
  EXPECT_FALSE(seen[1].HasHeader("X-Registry-Auth")) << "no credentials for quay.io";
}

TEST(EngineClientTest, LogsAreDemultiplexed) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  Behavior b = Behavior::Respond(
      200, Frame(1, "line 1\n") + Frame(2, "warn 1\n") + Frame(1, "line 2\nline 3\n"));
  b.chunked = true;
  engine.up->SetBehavior(b);
  LogOptions options;
  options.tail = 3;
  auto logs = engine.Client().ContainerLogs("web", options);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->out, "line 1\nline 2\nline 3\n");
  EXPECT_EQ(logs->err, "warn 1\n");
  EXPECT_EQ(engine.up->RecordedRequests().at(0).target,
            "/v1.41/containers/web/logs?stdout=true&stderr=true&follow=false&tail=3");
}

TEST(EngineClientTest, FollowCancelledBeforeTheEngineAnswersIsAStopNotAnError) {
  FakeEngine engine;
  ASSERT_TRUE(engine.up);
  engine.up->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    engine.up->WaitFor([&] { return engine.up->request_count() == 1; }, Millis(10000));
    cancel.store(true);
  });
  LogOptions options;
  options.follow = true;
  options.cancel = &cancel;
  auto logs = engine.Client().ContainerLogs("web", options);
  canceller.join();
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_TRUE(logs->stopped);
  EXPECT_EQ(logs->out, "");
}

TEST(EngineClientTest, LastLines) {
  EXPECT_EQ(LastLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\n", 5), "a\nb");
  EXPECT_EQ(LastLines("", 3), "");
  EXPECT_EQ(LastLines("x\n", 0), "");
}

}  // namespace
}  // namespace turnout::container
