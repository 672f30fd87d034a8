#include "router/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace turnout::router {
namespace {

constexpr std::string_view kFull = R"(# a complete router config
listen:
  - 127.0.0.1:8080
  - "[::1]:8080"
workers: 2
admin:
  address: 127.0.0.1:9901
  token: t0ken
slots:
  blue: [127.0.0.1:9001, 127.0.0.1:9003]
  green:
    - 127.0.0.1:9002
policy:
  active: blue
  canary: {slot: green, weight: 12.5%}
  sticky: {header: X-User, max_age: 1h}
  override: {header: X-Slot, secret: abc, secret_file: /run/secret, on_bad_secret: reject}
state_file: router-state.json
trusted_proxies: [10.0.0.0/8, "::1"]
request_id_header: X-Req
health:
  enabled: false
  path: /healthz
  interval: 2s
  timeout: 250ms
  rise: 1
  fall: 5
  eject_after_connect_failures: 2
  eject_for: 1m
timeouts:
  head: 5s
  upstream_response: 1m
  tunnel_drain: 10s
limits:
  max_connections: 100
  max_headers: 50
)";

TEST(RouterConfigYaml, ReadsEveryKey) {
  auto r = ParseRouterConfigYaml(kFull, "router.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RouterConfig& c = *r;
  EXPECT_EQ(c.listen, (std::vector<std::string>{"127.0.0.1:8080", "[::1]:8080"}));
  EXPECT_EQ(c.workers, 2);
  EXPECT_EQ(c.admin, "127.0.0.1:9901");
  EXPECT_EQ(c.admin_token, "t0ken");
  ASSERT_EQ(c.slots.size(), 2u);
  EXPECT_EQ(c.slots[0].name, "blue");
  EXPECT_EQ(c.slots[0].instances, (std::vector<std::string>{"127.0.0.1:9001", "127.0.0.1:9003"}));
  EXPECT_EQ(c.slots[1].name, "green");
  EXPECT_EQ(c.policy.active, "blue");
  ASSERT_TRUE(c.policy.canary.has_value());
  EXPECT_EQ(c.policy.canary->slot, "green");
  EXPECT_EQ(c.policy.canary->weight_bp, 1250u);
  EXPECT_EQ(c.policy.sticky.source, StickinessPolicy::Source::kHeader);
  EXPECT_EQ(c.policy.sticky.name, "X-User");
  EXPECT_EQ(c.policy.sticky.cookie_max_age_seconds, 3600u);
  EXPECT_EQ(c.policy.override_header.header, "X-Slot");
  EXPECT_EQ(c.policy.override_header.secret, "abc");
  EXPECT_TRUE(c.policy.override_header.reject_bad_secret);
  EXPECT_EQ(c.override_secret_file, "/run/secret");
  EXPECT_EQ(OverrideSecretFilePath(c), "/run/secret");
  EXPECT_EQ(c.state_file, "router-state.json");
  EXPECT_EQ(c.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.request_id_header, "X-Req");
  EXPECT_FALSE(c.health.enabled);
  EXPECT_EQ(c.health.path, "/healthz");
  EXPECT_EQ(c.health.interval, Millis(2000));
  EXPECT_EQ(c.health.timeout, Millis(250));
  EXPECT_EQ(c.health.rise, 1);
  EXPECT_EQ(c.health.fall, 5);
  EXPECT_EQ(c.health.eject_after_connect_failures, 2);
  EXPECT_EQ(c.health.eject_for, Millis(60000));
  EXPECT_EQ(c.timeouts.head, Millis(5000));
  EXPECT_EQ(c.timeouts.upstream_response, Millis(60000));
  EXPECT_EQ(c.timeouts.tunnel_drain, Millis(10000));
  EXPECT_EQ(c.timeouts.client_idle, TimeoutConfig{}.client_idle);  // default kept
  EXPECT_EQ(c.limits.max_connections, 100u);
  EXPECT_EQ(c.limits.max_headers, 50u);
}

TEST(RouterConfigYaml, MinimalConfigUsesDefaults) {
  auto r =
      ParseRouterConfigYaml("listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\n", "min.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->listen, std::vector<std::string>{"0.0.0.0:8080"});
  EXPECT_EQ(r->policy.active, "blue");         // the only slot
  EXPECT_EQ(r->admin, DefaultAdminAddress());  // a Unix socket: no token needed
  EXPECT_TRUE(r->admin.starts_with("unix:/")) << r->admin;
  EXPECT_TRUE(r->health.enabled);
  EXPECT_EQ(r->health.path, "/ready");
}

TEST(RouterConfigYaml, AccessLogAndTrace) {
  const std::string head = "listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\n";
  auto r = ParseRouterConfigYaml(head +
                                     "access_log: {path: /var/log/a.log, format: logfmt, sample: "
                                     "10%, include_query: true, max_size: 1m, keep: 2}\n"
                                     "trace: {generate: true}\n",
                                 "r.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->access_log.path, "/var/log/a.log");
  EXPECT_EQ(r->access_log.format, AccessLogConfig::Format::kLogfmt);
  EXPECT_DOUBLE_EQ(r->access_log.sample, 0.1);
  EXPECT_TRUE(r->access_log.include_query);
  EXPECT_EQ(r->access_log.max_size, 1u << 20);
  EXPECT_EQ(r->access_log.keep, 2);
  EXPECT_TRUE(r->trace.generate);

  auto d = ParseRouterConfigYaml(head, "r.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->access_log.path.empty());  // no access log by default
  EXPECT_EQ(d->access_log.format, AccessLogConfig::Format::kJson);
  EXPECT_DOUBLE_EQ(d->access_log.sample, 1.0);
  EXPECT_FALSE(d->access_log.include_query);
  EXPECT_EQ(d->access_log.max_size, 100u << 20);
  EXPECT_EQ(d->access_log.keep, 5);
  EXPECT_FALSE(d->trace.generate);

  auto zero =
      ParseRouterConfigYaml(head + "access_log: {path: '-', max_size: 0, sample: 0}\n", "r");
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(zero->access_log.max_size, 0u);
  EXPECT_DOUBLE_EQ(zero->access_log.sample, 0.0);

  for (const auto& [yaml, message] : std::vector<std::pair<std::string, std::string>>{
           {"access_log: {path: /a, format: xml}\n",
            "r.yaml:4: access_log.format: expected json or logfmt, got 'xml'"},
           {"access_log: {path: /a, sample: 2}\n",
            "r.yaml:4: access_log.sample: expected a fraction from 0 to 1, e.g. 0.1 or 10%, got "
            "'2'"},
           {"access_log: {path: /a, keep: 0}\n",
            "r.yaml:4: access_log.keep: expected a number of rotated files 1..100, got '0'"},
           {"access_log: {path: /a, max_size: big}\n",
            "r.yaml:4: access_log.max_size: expected a size like 100m or 1g (0 = never rotate), "
            "got 'big'"},
           {"trace: {generate: maybe}\n",
            "r.yaml:4: trace.generate: expected true or false, got "
            "'maybe'"},
       }) {
    auto bad = ParseRouterConfigYaml(head + yaml, "r.yaml");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_EQ(bad.status().message(), message);
  }
}

TEST(RouterConfig, DefaultAdminAddressIsAUnixSocketOfThisUser) {
  const char* saved = std::getenv("XDG_RUNTIME_DIR");
  const std::string restore = saved ? saved : "";
  setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  EXPECT_EQ(DefaultAdminAddress(), "unix:/run/user/1234/turnout/admin.sock");
  EXPECT_EQ(RouterConfig{}.admin, "unix:/run/user/1234/turnout/admin.sock");
  unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(DefaultAdminAddress(),
            ::geteuid() == 0 ? std::string("unix:/run/turnout/admin.sock")
                             : "unix:/tmp/turnout-" + std::to_string(::geteuid()) + "/admin.sock");
  setenv("XDG_RUNTIME_DIR", "relative/dir", 1);  // not absolute: ignored
  EXPECT_FALSE(DefaultAdminAddress().starts_with("unix:relative")) << DefaultAdminAddress();
  if (saved) {
    setenv("XDG_RUNTIME_DIR", restore.c_str(), 1);
  } else {
    unsetenv("XDG_RUNTIME_DIR");
  }
}

TEST(RouterConfigYaml, AdminHosts) {
  auto r = ParseRouterConfigYaml(
      "listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\nadmin:\n  address: "
      "0.0.0.0:9901\n  token: t\n  hosts: [router.internal, 10.0.0.5:9901]\n",
      "hosts.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->admin_hosts, (std::vector<std::string>{"router.internal", "10.0.0.5:9901"}));
}

TEST(RouterConfigYaml, AdminOnAUnixSocket) {
  auto r = ParseRouterConfigYaml(
      "listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\nadmin:\n  address: "
      "unix:/run/turnout/admin.sock\n",
      "unix.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->admin, "unix:/run/turnout/admin.sock");
  EXPECT_EQ(UnixSocketPathOf(r->admin), "/run/turnout/admin.sock");
  EXPECT_EQ(UnixSocketPathOf("127.0.0.1:9901"), "");
}

// One run names every mistake in the file, as turnout.yaml's reader does (yaml::Reader).
TEST(RouterConfigYaml, EveryProblemOfTheFileIsReported) {
  auto r = ParseRouterConfigYaml(
      "listen: 127.0.0.1:8080\nslots:\n  blue: [127.0.0.1:9001]\nworkers: many\n"
      "health:\n  rise: two\n  fal: 3\ntimeouts:\n  head: 0\n",
      "router.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "router.yaml:4: workers: expected a number of threads 0..256 (0 = one per core), got "
            "'many'\n"
            "router.yaml:6: health.rise: expected a positive integer, got 'two'\n"
            "router.yaml:7: health.fal: unknown key (known keys of health: enabled, path, "
            "interval, timeout, rise, fall, eject_after_connect_failures, eject_for)\n"
            "router.yaml:9: timeouts.head: expected a duration above zero, got '0'");
}

TEST(RouterConfigYaml, Maintenance) {
  auto r = ParseRouterConfigYaml(
      "listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\npolicy:\n  maintenance:\n"
      "    enabled: true\n    retry_after: 2m\n    page: back soon\n"
      "    content_type: text/plain\n",
      "m.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->policy.maintenance.enabled);
  EXPECT_EQ(r->policy.maintenance.retry_after_seconds, 120u);
  EXPECT_EQ(r->policy.maintenance.page, "back soon");
  EXPECT_EQ(r->policy.maintenance.content_type, "text/plain");
  auto bad = ParseRouterConfigYaml(
      "listen: 0.0.0.0:8080\nslots:\n  blue: [127.0.0.1:9001]\npolicy:\n  maintenance:\n"
      "    retry_after: 500ms\n",
      "m.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "m.yaml:6: policy.maintenance.retry_after: expected a duration from 1s to 24h, got "
            "'500ms'");
}

struct BadCase {
  std::string yaml;
  std::string message;  // the exact error message
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.message; }

class RouterConfigYamlErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(RouterConfigYamlErrors, SayWhereAndWhat) {
  auto r = ParseRouterConfigYaml(GetParam().yaml, "router.yaml");
  ASSERT_FALSE(r.ok()) << GetParam().yaml;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), GetParam().message);
}

const std::string kHead =
    "listen: 127.0.0.1:8080\nslots:\n  blue: [127.0.0.1:9001]\n"
    "  green: [127.0.0.1:9002]\n";  // lines 1-4

INSTANTIATE_TEST_SUITE_P(
    Bad, RouterConfigYamlErrors,
    ::testing::Values(
        BadCase{kHead + "policy: {active: blue}\nhealth:\n  rise: two\n",
                "router.yaml:7: health.rise: expected a positive integer, got 'two'"},
        BadCase{kHead + "policy: {active: blue}\nlisen: 1\n",
                "router.yaml:6: lisen: unknown key (known keys: listen, workers, admin, slots, "
                "policy, state_file, trusted_proxies, request_id_header, health, timeouts, "
                "limits, access_log, trace)"},
        BadCase{kHead + "policy:\n  active: blue\n  canary: {slot: green, weight: 100.01}\n",
                "router.yaml:7: policy.canary.weight: expected a percentage 0..100 with at most "
                "two decimals, such as 25 or 0.5%, got '100.01'"},
        BadCase{kHead + "policy:\n  active: red\n",
                "router.yaml:6: policy.active: unknown slot 'red'; known slots: blue, green"},
        BadCase{kHead + "policy: {active: blue}\ntimeouts:\n  head: 5\n",
                "router.yaml:7: timeouts.head: expected a duration like 500ms or 2s, got "
                "'5'"},
        BadCase{kHead + "policy: {active: blue}\nworkers: [1]\n",
                "router.yaml:6: workers: expected a number of threads 0..256 (0 = one per core), "
                "got a list"},
        BadCase{kHead + "policy: {active: blue}\nhealth:\n  enabled: yes\n",
                "router.yaml:7: health.enabled: expected true or false, got 'yes'"},
        BadCase{kHead + "policy: {active: blue}\nadmin:\n  address: 0.0.0.0:9901\n",
                "router.yaml:7: admin.token: required because the admin API listens on TCP "
                "(0.0.0.0:9901); give a token (--admin-token, --admin-token-file FILE or "
                "$TURNOUT_ADMIN_TOKEN; admin.token in YAML) or listen on a Unix socket "
                "(unix:/path/to/admin.sock)"},
        BadCase{"listen: 127.0.0.1:8080\nslots:\n  blue: [127.0.0.1]\n",
                "router.yaml:3: slots.blue: expected host:port of an instance such as "
                "127.0.0.1:9001, got '127.0.0.1'"},
        BadCase{"listen: [127.0.0.1:8080, nope]\nslots: {blue: [127.0.0.1:1]}\n",
                "router.yaml:1: listen: expected host:port such as 0.0.0.0:8080 or [::]:8080, "
                "got 'nope'"},
        BadCase{"listen: 127.0.0.1:8080\n",
                "router.yaml:1: slots: missing; list the slots and "
                "their instances"},
        BadCase{kHead + "policy: {active: blue}\nlimits: {max_headers: 500}\n",
                "router.yaml:6: limits.max_headers: at most 100, got 500"},
        BadCase{kHead + "policy: {active: blue}\ntrusted_proxies: [10.0.0.0/33]\n",
                "router.yaml:6: trusted_proxies: expected an IP address or CIDR such as "
                "10.0.0.0/8, got '10.0.0.0/33'"},
        BadCase{kHead + "policy:\n  active: blue\n  sticky: {cookie: a, header: b}\n",
                "router.yaml:7: policy.sticky: give either cookie or header, not both"},
        BadCase{kHead + "policy: {active: blue}\npolicy: {active: green}\n",
                "router.yaml:6: policy: key appears twice"},
        BadCase{kHead + "policy: {active: blue\n",
                "router.yaml:6: not valid YAML: end of map flow not found"},
        BadCase{"",
                "router.yaml: (top level): expected a mapping of router settings, got "
                "nothing"}));

TEST(RouterConfigFile, LoadsFromDiskAndNamesTheFile) {
  char dir_template[] = "/tmp/turnout_config_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/router.yaml";
  {
    std::ofstream out(path);
    out << "listen: 127.0.0.1:0\nslots:\n  blue: [127.0.0.1:9001]\nworkers: -1\n";
  }
  auto r = LoadRouterConfigFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            path + ":4: workers: expected a number of threads 0..256 (0 = one per core), got '-1'");
  auto missing = LoadRouterConfigFile(path + ".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos);
  std::remove(path.c_str());
  rmdir(dir_template);
}

TEST(ParseHostPort, SplitsHostAndPort) {
  auto a = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  auto c = ParseHostPort("app-1.internal:65535");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "app-1.internal");
  for (const char* bad : {"", "8080", ":8080", "host:", "host:65536", "host:-1", "::1:80", "[::1]",
                          "[nope]:80", "host:80x", "a b:80"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

RouterConfig Valid() {
  RouterConfig c;
  c.listen = {"127.0.0.1:0"};
  c.slots = {{"blue", {"127.0.0.1:9001"}}, {"green", {}}};
  c.policy.active = "blue";
  return c;
}

TEST(ValidateRouterConfig, ChecksAcrossFields) {
  EXPECT_TRUE(ValidateRouterConfig(Valid()).ok());
  auto c = Valid();
  // TCP needs a token, on loopback too: every local process and every web page can reach it.
  for (const char* tcp : {"[::1]:9901", "127.0.0.1:9901", "localhost:0", "10.1.2.3:9901"}) {
    c.admin = tcp;
    c.admin_token.clear();
    EXPECT_NE(ValidateRouterConfig(c).message().find("admin.token: required"), std::string::npos)
        << tcp;
    c.admin_token = "x";
    EXPECT_TRUE(ValidateRouterConfig(c).ok()) << tcp;
  }
  c = Valid();
  c.admin = "unix:/run/turnout/admin.sock";  // the file mode is the access check
  EXPECT_TRUE(ValidateRouterConfig(c).ok());
  c.admin = "unix:";
  EXPECT_NE(ValidateRouterConfig(c).message().find("names no socket file"), std::string::npos);
  c = Valid();
  c.slots.push_back({"blue", {}});
  EXPECT_NE(ValidateRouterConfig(c).message().find("slot named twice"), std::string::npos);
  c = Valid();
  c.slots[0].instances.push_back("127.0.0.1:9001");
  EXPECT_NE(ValidateRouterConfig(c).message().find("listed twice"), std::string::npos);
  c = Valid();
  c.listen.clear();
  EXPECT_FALSE(ValidateRouterConfig(c).ok());
  c = Valid();
  c.health.rise = 0;
  EXPECT_EQ(ValidateRouterConfig(c).message(), "health.rise: must be at least 1, got 0");
  c = Valid();
  c.timeouts.upstream_connect = Millis(0);
  EXPECT_FALSE(ValidateRouterConfig(c).ok());
  c = Valid();
  c.slots[0].name = "blue/1";
  EXPECT_FALSE(ValidateRouterConfig(c).ok());
  c = Valid();
  c.request_id_header = "X Req";
  EXPECT_FALSE(ValidateRouterConfig(c).ok());
}

}  // namespace
}  // namespace turnout::router
