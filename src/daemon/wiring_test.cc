#include "daemon/wiring.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>

namespace turnout::daemon {
namespace {

service::ServiceConfig Parse(std::string_view yaml) {
  Result<service::ServiceConfig> c = service::ParseServiceConfig(yaml, "turnout.yaml");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : service::ServiceConfig{};
}

TEST(WiringTest, PathsLiveUnderTheStateDirResolvedAgainstTheConfigDir) {
  service::ServiceConfig c = Parse("name: shop\nplatform:\n  command: ./app --port {port}\n");
  StatePaths p = PathsFor(c, "/srv/shop");
  EXPECT_EQ(p.dir, "/srv/shop/.turnout");
  EXPECT_EQ(p.database, "/srv/shop/.turnout/state.db");
  EXPECT_EQ(p.socket, "/srv/shop/.turnout/turnoutd.sock");
  EXPECT_EQ(p.logs, "/srv/shop/.turnout/logs");
  c.state_dir = "/var/lib/turnout/shop/";
  EXPECT_EQ(PathsFor(c, "/srv/shop").dir, "/var/lib/turnout/shop");
}

TEST(WiringTest, SpecCarriesEveryDeploymentSetting) {
  service::ServiceConfig c = Parse(R"(name: shop
slots: [left, right]
platform:
  command: ./app --port {port} --version {version}
  working_dir: bin
  env: {MODE: prod}
  replicas: 2
  stop_signal: SIGINT
  grace_period: 3s
  ports: 30000-30100
health:
  readiness: {path: /healthz, interval: 2s, timeout: 1s, unhealthy_threshold: 4}
  liveness: {path: /alive, interval: 3s, timeout: 2s, unhealthy_threshold: 2}
  ready_deadline: 20s
smoke_tests:
  - name: home
    path: /
    headers: {X-Test: "1"}
    expect: {status: 200, body_contains: "{version}"}
  - name: script
    command: ./smoke {url}
pre_deploy:
  - name: disk
    command: ./check-disk
verify:
  - {name: e2e, run: './e2e {url}', timeout: 20s}
  - name: latency
    performance:
      requests: 300
      concurrency: 3
      paths: [{path: /, weight: 2}, {path: /api, method: POST}]
      tolerance: {p99: 40%, min_ms: 3ms}
manual_approval: true
bake_time: 30s
scale_down_delay: 2m
)");
  StatePaths paths = PathsFor(c, "/srv/shop");
  Result<controller::DeploymentSpec> s = SpecFromConfig(c, "/srv/shop", paths, "2.0.1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->service, "shop");
  EXPECT_EQ(s->version, "2.0.1");
  EXPECT_EQ(s->config_hash, service::ConfigHash(c));
  EXPECT_EQ(s->slots, (std::vector<std::string>{"left", "right"}));
  EXPECT_EQ(s->working_dir, "/srv/shop/bin");
  EXPECT_EQ(s->log_dir, "/srv/shop/.turnout/logs");
  EXPECT_EQ(s->replicas, 2);
  EXPECT_EQ(s->stop_signal, SIGINT);
  EXPECT_EQ(s->grace, std::chrono::seconds(3));
  EXPECT_EQ(s->base_port, 30000);
  EXPECT_EQ(s->readiness_path, "/healthz");
  EXPECT_EQ(s->probe_interval, std::chrono::seconds(2));
  EXPECT_EQ(s->bake_failure_threshold, 4);
  // The bake watches the configured liveness check (turnout-yaml.md, bake_time).
  EXPECT_EQ(s->liveness_path, "/alive");
  EXPECT_EQ(s->liveness_interval, std::chrono::seconds(3));
  EXPECT_EQ(s->liveness_timeout, std::chrono::seconds(2));
  EXPECT_EQ(s->liveness_failure_threshold, 2);
  EXPECT_EQ(s->ready_deadline, std::chrono::seconds(20));
  ASSERT_EQ(s->smoke_checks.size(), 2u);
  EXPECT_EQ(s->smoke_checks[0].name, "home");
  EXPECT_EQ(s->smoke_checks[0].expect_body_contains, "{version}");
  EXPECT_EQ(s->smoke_checks[0].headers.size(), 1u);
  EXPECT_EQ(s->smoke_checks[1].kind, controller::SmokeCheck::Kind::kCommand);
  ASSERT_EQ(s->pre_deploy.size(), 1u);
  EXPECT_EQ(s->pre_deploy[0].command, "./check-disk");
  ASSERT_EQ(s->verify.size(), 2u);
  EXPECT_EQ(s->verify[0].kind, controller::VerifyCheck::Kind::kCommand);
  EXPECT_EQ(s->verify[0].command, "./e2e {url}");
  EXPECT_EQ(s->verify[0].timeout, std::chrono::seconds(20));
  const controller::VerifyCheck& perf = s->verify[1];
  EXPECT_EQ(perf.kind, controller::VerifyCheck::Kind::kPerformance);
  EXPECT_EQ(perf.requests, 300);
  EXPECT_EQ(perf.concurrency, 3);
  ASSERT_EQ(perf.paths.size(), 2u);
  EXPECT_EQ(perf.paths[0].weight, 2);
  EXPECT_EQ(perf.paths[1].method, "POST");
  EXPECT_EQ(perf.tolerance_p95, 0.25);
  EXPECT_EQ(perf.tolerance_p99, 0.40);
  EXPECT_EQ(perf.tolerance_min, std::chrono::milliseconds(3));
  EXPECT_TRUE(s->manual_approval);
  EXPECT_EQ(s->bake_time, std::chrono::seconds(30));
  EXPECT_EQ(s->scale_down_delay, std::chrono::minutes(2));
  EXPECT_FALSE(SpecFromConfig(c, "/srv/shop", paths, "bad version!").ok());
}

TEST(WiringTest, PortsAutoLetsTheOsChoose) {
  service::ServiceConfig c =
      Parse("name: shop\nplatform:\n  command: ./app --port {port}\n  ports: auto\n");
  Result<controller::DeploymentSpec> s = SpecFromConfig(c, "/x", PathsFor(c, "/x"), "v1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->base_port, 0);
}

TEST(WiringTest, WarnsWhenThePortRangeOverlapsTheKernelsEphemeralRange) {
  char tmpl[] = "/tmp/turnout-wiring-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(tmpl) << "32768\t60999\n";
  service::ServiceConfig inside =
      Parse("name: shop\nplatform:\n  command: ./app --port {port}\n  ports: 40000-40999\n");
  std::vector<std::string> w = ConfigWarnings(inside, tmpl);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("platform.ports 40000-40999 overlaps the kernel's ephemeral port range "
                       "32768-60999",
                       0),
            0u)
      << w[0];
  service::ServiceConfig below =
      Parse("name: shop\nplatform:\n  command: ./app --port {port}\n  ports: 20000-20999\n");
  EXPECT_TRUE(ConfigWarnings(below, tmpl).empty());
  service::ServiceConfig automatic =
      Parse("name: shop\nplatform:\n  command: ./app --port {port}\n  ports: auto\n");
  EXPECT_TRUE(ConfigWarnings(automatic, tmpl).empty());
  ::unlink(tmpl);
  EXPECT_TRUE(ConfigWarnings(inside, tmpl).empty());  // unreadable: no guess
}

TEST(WiringTest, RouterGetsSlotsHealthPolicyAndRunningInstances) {
  service::ServiceConfig c = Parse(R"(name: shop
listen: 127.0.0.1:0
platform:
  command: ./app --port {port}
router:
  admin: ""
)");
  std::vector<state::InstanceRecord> live(3);
  live[0].slot = "green";
  live[0].port = 20001;
  live[0].state = state::InstanceState::kRunning;
  live[1].slot = "green";
  live[1].port = 20002;
  live[1].state = state::InstanceState::kStarting;  // never confirmed: not routed
  live[2].slot = "blue";
  live[2].port = 20000;
  live[2].state = state::InstanceState::kRunning;
  router::RouterConfig r =
      RouterConfigFromService(c, PathsFor(c, "/x"), "green", live, {"t0ken", "s3cret"});
  EXPECT_TRUE(router::ValidateRouterConfig(r).ok());
  ASSERT_EQ(r.slots.size(), 2u);
  EXPECT_EQ(r.slots[0].name, "blue");
  EXPECT_EQ(r.slots[0].instances, (std::vector<std::string>{"127.0.0.1:20000"}));
  EXPECT_EQ(r.slots[1].instances, (std::vector<std::string>{"127.0.0.1:20001"}));
  EXPECT_EQ(r.policy.active, "green");
  EXPECT_EQ(r.policy.override_header.secret, "s3cret");
  EXPECT_EQ(r.state_file, "/x/.turnout/router-policy.json");
  EXPECT_EQ(r.health.path, "/ready");
  EXPECT_EQ(r.admin, "unix:/x/.turnout/router.sock");  // no TCP admin listener
  EXPECT_EQ(r.admin_token, "t0ken");
  c.router.admin = "127.0.0.1:9901";
  EXPECT_EQ(RouterConfigFromService(c, PathsFor(c, "/x"), "", {}, {}).admin, "127.0.0.1:9901");
  EXPECT_EQ(RouterConfigFromService(c, PathsFor(c, "/x"), "", {}, {}).policy.active, "blue");
}

// The router reaches an instance where its platform put it; rows of older versions (no address
// in the handle, or no handle) are on 127.0.0.1.
TEST(WiringTest, AnInstanceIsReachedAtTheAddressInItsHandle) {
  state::InstanceRecord r;
  r.port = 8001;
  EXPECT_EQ(RecordAddress(r), "127.0.0.1:8001");
  r.platform_handle =
      R"({"kind":"container","id":"4f1c2a9b","address":"127.0.0.1:32768","spec_hash":"00",)"
      R"("stop_signal":15,"grace_ms":1000})";
  EXPECT_EQ(RecordAddress(r), "127.0.0.1:32768");
  r.platform_handle =
      R"({"id":"demo-blue-0-42","pid":42,"start_time_ticks":1,"boot_id":"b","port":8001,)"
      R"("spec_hash":"00","stop_signal":15,"grace_ms":1000})";
  EXPECT_EQ(RecordAddress(r), "127.0.0.1:8001");
}

TEST(WiringTest, TheRouterYamlReadsBackAsTheSameConfig) {
  service::ServiceConfig c = Parse(R"(name: shop
listen: [127.0.0.1:0, "[::1]:0"]
platform:
  command: ./app --port {port}
health:
  readiness: {path: /healthz, interval: 250ms, timeout: 100ms, healthy_threshold: 1}
router:
  workers: 3
  override_header: X-Slot
)");
  std::vector<state::InstanceRecord> live(1);
  live[0].slot = "green";
  live[0].port = 20001;
  live[0].state = state::InstanceState::kRunning;
  router::RouterConfig r = RouterConfigFromService(c, PathsFor(c, "/x y/\"quoted\""), "green", live,
                                                   {"t0ken", "s3cret:\"#quotes'"});
  Result<router::RouterConfig> back =
      router::ParseRouterConfigYaml(RouterConfigYaml(r), "router.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << RouterConfigYaml(r);
  EXPECT_EQ(back->listen, r.listen);
  EXPECT_EQ(back->workers, 3);
  EXPECT_EQ(back->admin, "unix:/x y/\"quoted\"/.turnout/router.sock");
  EXPECT_EQ(back->admin_token, "t0ken");
  ASSERT_EQ(back->slots.size(), 2u);
  EXPECT_EQ(back->slots[0].name, "blue");
  EXPECT_TRUE(back->slots[0].instances.empty());
  EXPECT_EQ(back->slots[1].instances, (std::vector<std::string>{"127.0.0.1:20001"}));
  EXPECT_EQ(back->policy, r.policy);
  EXPECT_EQ(back->state_file, r.state_file);
  EXPECT_EQ(back->health.path, "/healthz");
  EXPECT_EQ(back->health.interval, std::chrono::milliseconds(250));
  EXPECT_EQ(back->health.timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(back->health.rise, 1);
  EXPECT_EQ(back->health.fall, r.health.fall);
}

TEST(WiringTest, ContainerOptionsMapEveryKeyAndTheSpecCarriesTheRest) {
  service::ServiceConfig c = Parse(R"(name: shop
platform:
  type: container
  engine: unix:///run/podman/podman.sock
  image: registry.example/shop:{version}
  port: 8080
  network: bridge
  command: [/app/server]
  args: [--verbose]
  env: {LOG_LEVEL: info, DB_PASSWORD: hunter2}
  mounts: ["./data:/data:ro", "/srv/cache:/cache"]
  memory: 512m
  cpus: 1.5
  user: "1000:1000"
  pull: always
  ulimits: {nofile: "512:1024", nproc: 4096}
  stop_signal: SIGINT
  grace_period: 4s
  replicas: 2
)");
  platform::ContainerPlatformOptions o = ContainerOptionsFromConfig(c, "/srv/shop");
  EXPECT_EQ(o.engine, "unix:///run/podman/podman.sock");
  EXPECT_EQ(o.image, "registry.example/shop:{version}");
  EXPECT_EQ(o.port, 8080);
  EXPECT_EQ(o.network, platform::ContainerNetwork::kBridge);
  EXPECT_EQ(o.command, std::vector<std::string>{"/app/server"});
  EXPECT_EQ(o.args, std::vector<std::string>{"--verbose"});
  ASSERT_EQ(o.mounts.size(), 2u);
  EXPECT_EQ(o.mounts[0].source, "/srv/shop/data");
  EXPECT_EQ(o.mounts[0].target, "/data");
  EXPECT_TRUE(o.mounts[0].read_only);
  EXPECT_EQ(o.mounts[1].source, "/srv/cache");
  EXPECT_FALSE(o.mounts[1].read_only);
  EXPECT_EQ(o.memory_bytes, 512LL << 20);
  EXPECT_DOUBLE_EQ(o.cpus, 1.5);
  EXPECT_EQ(o.user, "1000:1000");
  EXPECT_EQ(o.pull, platform::PullPolicy::kAlways);
  ASSERT_TRUE(o.nofile && o.nproc);
  EXPECT_EQ(o.nofile->soft, 512);
  EXPECT_EQ(o.nofile->hard, 1024);
  EXPECT_EQ(o.nproc->soft, 4096);
  EXPECT_EQ(o.nproc->hard, 4096);
  // The environment travels with the deployment's spec, not in the platform's options.
  EXPECT_TRUE(o.env.empty());
  EXPECT_TRUE(platform::ValidateContainerOptions(o).ok());

  StatePaths paths = PathsFor(c, "/srv/shop");
  Result<controller::DeploymentSpec> s = SpecFromConfig(c, "/srv/shop", paths, "v1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->platform, "container");
  EXPECT_EQ(s->command, "");
  EXPECT_EQ(s->image, "");  // resolved in PreChecks
  EXPECT_EQ(s->platform_hash, ContainerOptionsHash(o));
  EXPECT_EQ(s->env, (std::vector<std::pair<std::string, std::string>>{{"LOG_LEVEL", "info"},
                                                                      {"DB_PASSWORD", "hunter2"}}));
  EXPECT_EQ(s->stop_signal, SIGINT);
  EXPECT_EQ(s->grace, std::chrono::seconds(4));
  EXPECT_EQ(s->replicas, 2);
  EXPECT_EQ(s->base_port, 0);

  // Defaults: host networking, pull if_not_present.
  platform::ContainerPlatformOptions d = ContainerOptionsFromConfig(
      Parse("name: shop\nplatform: {type: container, image: 'shop:{version}'}\n"), "/srv");
  EXPECT_EQ(d.network, platform::ContainerNetwork::kHost);
  EXPECT_EQ(d.pull, platform::PullPolicy::kIfNotPresent);
  EXPECT_EQ(d.engine, "");
  EXPECT_FALSE(d.nofile || d.nproc);  // the engine's defaults
}

TEST(WiringTest, TheContainerOptionsHashChangesWithEveryOption) {
  platform::ContainerPlatformOptions base;
  base.image = "shop:{version}";
  const std::string h = ContainerOptionsHash(base);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(ContainerOptionsHash(base), h);
  std::vector<std::function<void(platform::ContainerPlatformOptions&)>> changes = {
      [](auto& o) { o.engine = "/x.sock"; },
      [](auto& o) { o.image = "shop2:{version}"; },
      [](auto& o) { o.port = 80; },
      [](auto& o) { o.network = platform::ContainerNetwork::kBridge; },
      [](auto& o) { o.command = {"/s"}; },
      [](auto& o) { o.args = {"-v"}; },
      [](auto& o) {
        o.env = {{"A", "b"}};
      },
      [](auto& o) {
        o.mounts = {{"/a", "/b", false}};
      },
      [](auto& o) { o.memory_bytes = 1 << 20; },
      [](auto& o) { o.cpus = 0.5; },
      [](auto& o) { o.user = "app"; },
      [](auto& o) { o.pull = platform::PullPolicy::kNever; },
      [](auto& o) {
        o.nofile = platform::ContainerLimit{1024, 1024};
        o.nproc = platform::ContainerLimit{64, 64};
      },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    platform::ContainerPlatformOptions o = base;
    changes[i](o);
    EXPECT_NE(ContainerOptionsHash(o), h) << "change " << i;
  }
}

// turnout.yaml's router.access_log and router.trace reach the router process's config file.
TEST(WiringTest, TheAccessLogAndTraceOptionsReachTheRouter) {
  service::ServiceConfig c = Parse(R"(name: shop
listen: 127.0.0.1:0
platform:
  command: ./app --port {port}
router:
  access_log: {path: /var/log/shop/access.log, format: logfmt, sample: 10%, include_query: true,
               max_size: 10m, keep: 3}
  trace: {generate: true}
)");
  router::RouterConfig r = RouterConfigFromService(c, PathsFor(c, "/x"), "", {}, {"t", "s"});
  Result<router::RouterConfig> back =
      router::ParseRouterConfigYaml(RouterConfigYaml(r), "router.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << RouterConfigYaml(r);
  EXPECT_EQ(back->access_log.path, "/var/log/shop/access.log");
  EXPECT_EQ(back->access_log.format, router::AccessLogConfig::Format::kLogfmt);
  EXPECT_DOUBLE_EQ(back->access_log.sample, 0.1);
  EXPECT_TRUE(back->access_log.include_query);
  EXPECT_EQ(back->access_log.max_size, 10u << 20);
  EXPECT_EQ(back->access_log.keep, 3);
  EXPECT_TRUE(back->trace.generate);

  service::ServiceConfig plain =
      Parse("name: shop\nlisten: 127.0.0.1:0\nplatform:\n  command: ./app --port {port}\n");
  r = RouterConfigFromService(plain, PathsFor(plain, "/x"), "", {}, {"t", "s"});
  back = router::ParseRouterConfigYaml(RouterConfigYaml(r), "router.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->access_log.path.empty());  // off unless asked for
  EXPECT_FALSE(back->trace.generate);
}

}  // namespace
}  // namespace turnout::daemon
