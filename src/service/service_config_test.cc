#include "service/service_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <variant>

namespace turnout::service {
namespace {

using ::testing::HasSubstr;

constexpr const char* kMinimal =
    "name: shop\n"
    "platform:\n"
    "  command: ./server --port {port}\n";

// The whole error message for `yaml`, which must be refused.
std::string ErrorOf(const std::string& yaml) {
  auto result = ParseServiceConfig(yaml, "turnout.yaml");
  EXPECT_FALSE(result.ok()) << "accepted:\n" << yaml;
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  return result.status().message();
}

ServiceConfig Parse(const std::string& yaml) {
  auto result = ParseServiceConfig(yaml, "turnout.yaml");
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : ServiceConfig{};
}

TEST(ServiceConfigTest, ExampleParsesAndValidates) {
  auto result = ParseServiceConfig(ExampleServiceConfig(), "turnout.yaml");
  ASSERT_TRUE(result.ok()) << result.status().message();
  const ServiceConfig& c = *result;
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.platform.command,
            "turnout-demo-app --listen 127.0.0.1:{port} --version {version} --slot {slot}");
  EXPECT_EQ(c.slots, (std::vector<std::string>{"blue", "green"}));
  ASSERT_EQ(c.smoke_tests.size(), 3u);
  EXPECT_EQ(c.smoke_tests[0].expect_body_contains, "demo");
  EXPECT_EQ(c.smoke_tests[1].timeout, Millis(5000));
  EXPECT_EQ(c.smoke_tests[2].kind, SmokeTest::Kind::kCommand);
  ASSERT_EQ(c.pre_deploy.size(), 1u);
  ASSERT_EQ(c.hooks.size(), 1u);
  EXPECT_EQ(c.hooks[0].on, (std::vector<std::string>{"succeeded", "rolled_back", "failed"}));
  // The example spells out the defaults, so it means the same as the minimal file of that
  // service with only its own choices added.
  const ServiceConfig defaults;
  EXPECT_EQ(c.health.readiness, defaults.health.readiness);
  EXPECT_EQ(c.health.liveness, defaults.health.liveness);
  // The runbooks' triggers, as rules.
  EXPECT_EQ(c.strategy, "blue_green");
  ASSERT_EQ(c.rules.size(), 4u);
  EXPECT_EQ(c.rules[0].expr, "error_rate > 5% for 2m");
  EXPECT_EQ(c.rules[0].severity, judge::Severity::kCritical);
  EXPECT_EQ(c.rules[1].expr, "p95 > 2s for 5m");
  EXPECT_EQ(c.rules[2].expr, "p99 > baseline * 1.5 for 1m");
  EXPECT_EQ(c.rules[2].severity, judge::Severity::kWarning);
  EXPECT_EQ(c.rules[3].expr, "health failing for 30s");
  EXPECT_EQ(c.analysis_interval, Millis(1000));
  ASSERT_EQ(c.slo.objectives.size(), 2u);
  EXPECT_DOUBLE_EQ(c.slo.objectives[0].target, 0.9995);
  EXPECT_TRUE(c.dependencies.empty());
  EXPECT_TRUE(c.prometheus.url.empty());
}

// The example with its commented-out blocks (canary, dependencies, prometheus, the extra rules
// and the webhook) switched on: what a user gets by deleting the '#'s.
std::string ExampleWithCommentedBlocksOn() {
  std::istringstream in(ExampleServiceConfig());
  std::string out;
  bool in_block = false, in_item = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "# canary:" || line == "# dependencies:" || line == "# prometheus:" ||
        line == "# verify:" || line == "# secrets:") {
      in_block = true;
      line = line.substr(2);
    } else if (in_block && line.rfind("#  ", 0) == 0) {
      line = line.substr(2);
    } else if (line.rfind("  # - ", 0) == 0 || (in_item && line.rfind("  #   ", 0) == 0)) {
      in_item = true;
      line = "  " + line.substr(4);
    } else {
      in_block = in_item = false;
    }
    if (line == "strategy: blue_green") line = "strategy: canary";
    out += line + "\n";
  }
  return out;
}

TEST(ServiceConfigTest, ExampleCommentedBlocksParseWhenSwitchedOn) {
  const std::string yaml = ExampleWithCommentedBlocksOn();
  auto result = ParseServiceConfig(yaml, "turnout.yaml");
  ASSERT_TRUE(result.ok()) << result.status().message() << "\n" << yaml;
  const ServiceConfig& c = *result;
  EXPECT_EQ(c.strategy, "canary");
  EXPECT_EQ(c.canary.steps, DefaultCanarySteps());  // the example spells out the defaults
  const judge::CanaryJudgeConfig defaults;
  EXPECT_EQ(c.canary.judge.alpha, defaults.alpha);
  EXPECT_EQ(c.canary.judge.error_margin, defaults.error_margin);
  EXPECT_EQ(c.canary.judge.latency_margin, defaults.latency_margin);
  EXPECT_EQ(c.canary.judge.max_duration, defaults.max_duration);
  ASSERT_EQ(c.rules.size(), 6u);
  EXPECT_EQ(c.rules[4].expr, "dependency postgres unavailable for 10s");
  EXPECT_EQ(c.rules[5].expr, "metric db_connections > 90 for 1m");
  ASSERT_EQ(c.dependencies.size(), 4u);
  EXPECT_TRUE(std::holds_alternative<sources::PostgresCheck>(c.dependencies[0].check));
  EXPECT_EQ(c.prometheus.url, "http://127.0.0.1:9090");
  ASSERT_EQ(c.prometheus.queries.size(), 1u);
  EXPECT_EQ(c.hooks.size(), 2u);
  ASSERT_EQ(c.verify.size(), 2u);
  EXPECT_EQ(c.verify[0].kind, VerifyCheck::Kind::kCommand);
  EXPECT_EQ(c.verify[1].performance.tolerance, VerifyTolerance{});  // the defaults spelled out
  EXPECT_EQ(c.verify[1].performance.requests, VerifyPerformance{}.requests);
  ASSERT_EQ(c.secrets.size(), 3u);
  EXPECT_EQ(c.secrets[1].as, "file");
}

TEST(ServiceConfigTest, ExampleExplainsEveryKeyWithAComment) {
  // Every key line of the example is either commented itself or follows a comment line.
  std::istringstream in(ExampleServiceConfig());
  std::string line, previous;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const size_t start = line.find_first_not_of(' ');
    const bool is_key = start != std::string::npos && line[start] != '#' &&
                        line.find(':') != std::string::npos && line[start] != '-';
    const size_t previous_start = previous.find_first_not_of(' ');
    const bool explained = line.find(" # ") != std::string::npos ||
                           (previous_start != std::string::npos && previous[previous_start] == '#');
    // Section headers and list items' fields are explained by the comment above the section.
    if (is_key && line.back() != ':' && start <= 2) {
      EXPECT_TRUE(explained) << "line " << n << " has no comment: " << line;
    }
    previous = line;
  }
}

// The keys the parser knows in `section`, read from its "unknown key" message so that this test
// follows the parser when a key is added.
std::vector<std::string> KnownKeys(const std::string& yaml_with_unknown_key) {
  const std::string all = ErrorOf(yaml_with_unknown_key);
  const size_t start = all.rfind('\n', all.find("(known keys")) + 1;  // npos + 1 == 0
  const std::string message = all.substr(start, all.find('\n', start) - start);
  const size_t colon = message.find(": ", message.find("(known keys"));
  std::vector<std::string> keys;
  std::istringstream in(message.substr(colon + 2, message.rfind(')') - colon - 2));
  for (std::string key; std::getline(in, key, ',');) keys.push_back(key.substr(key[0] == ' '));
  return keys;
}

struct Section {
  std::vector<std::string> path;  // in the YAML tree
  std::string yaml;               // a file with an unknown key in that section
};

std::vector<Section> Sections() {
  const std::string m = kMinimal;
  return {
      {{}, m + "zzz: 1\n"},
      {{"platform"}, m + "  zzz: 1\n"},
      {{"health"}, m + "health: {zzz: 1}\n"},
      {{"health", "readiness"}, m + "health: {readiness: {zzz: 1}}\n"},
      {{"health", "liveness"}, m + "health: {liveness: {zzz: 1}}\n"},
      {{"revisions"}, m + "revisions: {zzz: 1}\n"},
      {{"router"}, m + "router: {zzz: 1}\n"},
      {{"smoke_tests", "0"}, m + "smoke_tests: [{zzz: 1}]\n"},
      {{"smoke_tests", "0", "expect"}, m + "smoke_tests: [{expect: {zzz: 1}}]\n"},
      {{"pre_deploy", "0"}, m + "pre_deploy: [{zzz: 1}]\n"},
      {{"verify", "0"}, m + "verify: [{zzz: 1}]\n"},
      {{"verify", "0", "performance"}, m + "verify: [{performance: {zzz: 1}}]\n"},
      {{"verify", "0", "performance", "paths", "0"},
       m + "verify: [{performance: {paths: [{zzz: 1}]}}]\n"},
      {{"verify", "0", "performance", "tolerance"},
       m + "verify: [{performance: {tolerance: {zzz: 1}}}]\n"},
      {{"hooks", "0"}, m + "hooks: [{zzz: 1}]\n"},
      {{"canary"}, m + "strategy: canary\ncanary: {zzz: 1}\n"},
      {{"canary", "steps", "0"}, m + "strategy: canary\ncanary: {steps: [{zzz: 1}]}\n"},
      {{"rules", "0"}, m + "rules: [{zzz: 1}]\n"},
      {{"dependencies", "0"}, m + "dependencies: [{zzz: 1}]\n"},
      {{"prometheus"}, m + "prometheus: {zzz: 1}\n"},
      {{"slo"}, m + "slo: {zzz: 1}\n"},
      {{"slo", "latency"}, m + "slo: {latency: {zzz: 1}}\n"},
      {{"database"}, m + "database: {zzz: 1}\n"},
      {{"maintenance"}, m + "maintenance: {zzz: 1}\n"},
      {{"secrets", "API_KEY"}, m + "secrets: {API_KEY: {generate: hex32, zzz: 1}}\n"},
  };
}

TEST(ServiceConfigTest, ExampleShowsEveryKeyOfEverySection) {
  // Shown as a setting or, for the alternatives it cannot set at once (a webhook beside a
  // command hook, canary beside blue_green, sources that need a server), in a comment.
  const std::string example = ExampleServiceConfig();
  for (const Section& section : Sections()) {
    for (const std::string& key : KnownKeys(section.yaml)) {
      const bool shown = section.path.empty()
                             ? example.find("\n" + key + ":") != std::string::npos ||
                                   example.find("\n# " + key + ":") != std::string::npos
                             : example.find(" " + key + ":") != std::string::npos ||
                                   example.find("{" + key + ":") != std::string::npos;
      EXPECT_TRUE(shown) << "the example does not show " << testing::PrintToString(section.path)
                         << " " << key;
    }
  }
}

TEST(ServiceConfigTest, ReferenceDocumentsEveryKey) {
  std::ifstream in(std::string(TURNOUT_SOURCE_DIR) + "/docs/turnout-yaml.md");
  ASSERT_TRUE(in) << "docs/turnout-yaml.md not found";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const Section& section : Sections()) {
    for (const std::string& key : KnownKeys(section.yaml)) {
      // Keys appear in the tables as `key` (or `expect.key` / `webhook.key`).
      EXPECT_TRUE(doc.find("`" + key + "`") != std::string::npos ||
                  doc.find("." + key + "`") != std::string::npos)
          << "docs/turnout-yaml.md does not describe " << key;
    }
  }
  for (std::string_view event : kHookEvents) {
    EXPECT_NE(doc.find("`" + std::string(event) + "`"), std::string::npos) << event;
  }
}

TEST(ServiceConfigTest, MinimalConfigGetsEveryDefault) {
  ServiceConfig c = Parse(kMinimal);
  EXPECT_EQ(c.name, "shop");
  EXPECT_EQ(c.listen, (std::vector<std::string>{"127.0.0.1:8080"}));
  EXPECT_EQ(c.slots, (std::vector<std::string>{"blue", "green"}));
  EXPECT_EQ(c.platform.type, "process");
  EXPECT_EQ(c.platform.command, "./server --port {port}");
  EXPECT_EQ(c.platform.working_dir, "");
  EXPECT_TRUE(c.platform.env.empty());
  EXPECT_EQ(c.platform.replicas, 1);
  EXPECT_EQ(c.platform.stop_signal, "SIGTERM");
  EXPECT_EQ(c.platform.stop_signal_number, SIGTERM);
  EXPECT_EQ(c.platform.grace_period, Millis(10000));
  EXPECT_EQ(c.platform.ports, (PortRange{20000, 20999}));
  EXPECT_EQ(c.health.readiness, (ProbeConfig{"/ready", Millis(1000), Millis(500), 2, 3}));
  EXPECT_EQ(c.health.liveness, (ProbeConfig{"/live", Millis(5000), Millis(1000), 1, 3}));
  EXPECT_EQ(c.health.ready_deadline, Millis(60000));
  EXPECT_TRUE(c.smoke_tests.empty());
  EXPECT_EQ(c.smoke_test_timeout, Millis(10000));
  EXPECT_TRUE(c.pre_deploy.empty());
  EXPECT_FALSE(c.manual_approval);
  EXPECT_EQ(c.bake_time, Millis(60000));
  EXPECT_EQ(c.scale_down_delay, Millis(300000));
  EXPECT_EQ(c.revisions.warm, 1);
  EXPECT_EQ(c.revisions.on_disk, 10);
  EXPECT_TRUE(c.hooks.empty());
  EXPECT_EQ(c.router.admin, "");  // no TCP admin listener unless asked for
  EXPECT_EQ(c.router.admin_token, "");
  EXPECT_EQ(c.router.override_header, "X-Turnout-Slot");
  EXPECT_EQ(c.router.override_secret, "");
  EXPECT_EQ(c.router.workers, 0);
  EXPECT_EQ(c.state_dir, ".turnout");
}

TEST(ServiceConfigTest, ReadsEveryField) {
  ServiceConfig c = Parse(R"(name: shop
listen: [0.0.0.0:80, "[::1]:8080"]
slots: [a, b, c]
platform:
  command: ./server --port {port} --i {instance}
  working_dir: /srv/shop
  env: {B: "2", A: "1"}
  replicas: 3
  stop_signal: int
  grace_period: 2m
  ports: 30000
health:
  readiness: {path: /healthz, interval: 2s, timeout: 2s, healthy_threshold: 1, unhealthy_threshold: 5}
  liveness: {path: /alive}
  ready_deadline: 1h
smoke_test_timeout: 3s
smoke_tests:
  - name: post
    method: POST
    path: /orders?dry=1
    headers: {Content-Type: application/json}
    body: '{"x": 1}'
    expect: {status: 201, body_contains: ok, json: {"order.items[0].id": "7", status: "{version}"}}
  - {name: script, command: './check {url}', timeout: 1m}
pre_deploy:
  - {name: lint, command: './lint {version}'}
manual_approval: true
bake_time: 0s
scale_down_delay: 30s
revisions: {warm: 2, on_disk: 2}
hooks:
  - {on: "*", webhook: {url: "https://hooks.example.com/x?y=1", retries: 0, timeout: 1s}}
  - {on: [failed], command: 'page {service} {event}', timeout: 5s}
router: {admin: "", override_header: X-Slot, override_secret: s3cret, workers: 4}
state_dir: /var/lib/turnout/shop
)");
  EXPECT_EQ(c.listen, (std::vector<std::string>{"0.0.0.0:80", "[::1]:8080"}));
  EXPECT_EQ(c.slots, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.platform.working_dir, "/srv/shop");
  // File order is kept: later entries win when the platform applies them.
  EXPECT_EQ(c.platform.env,
            (std::vector<std::pair<std::string, std::string>>{{"B", "2"}, {"A", "1"}}));
  EXPECT_EQ(c.platform.replicas, 3);
  EXPECT_EQ(c.platform.stop_signal, "SIGINT");
  EXPECT_EQ(c.platform.stop_signal_number, SIGINT);
  EXPECT_EQ(c.platform.grace_period, Millis(120000));
  EXPECT_EQ(c.platform.ports, (PortRange{30000, 30999}));
  EXPECT_EQ(c.health.readiness, (ProbeConfig{"/healthz", Millis(2000), Millis(2000), 1, 5}));
  EXPECT_EQ(c.health.liveness.path, "/alive");
  EXPECT_EQ(c.health.liveness.interval, Millis(5000));
  EXPECT_EQ(c.health.ready_deadline, Millis(3600000));
  ASSERT_EQ(c.smoke_tests.size(), 2u);
  const SmokeTest& post = c.smoke_tests[0];
  EXPECT_EQ(post.kind, SmokeTest::Kind::kHttp);
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.path, "/orders?dry=1");
  EXPECT_EQ(post.headers.at(0),
            (std::pair<std::string, std::string>{"Content-Type", "application/json"}));
  EXPECT_EQ(post.body, "{\"x\": 1}");
  EXPECT_EQ(post.expect_status, 201);
  EXPECT_EQ(post.expect_body_contains, "ok");
  EXPECT_EQ(post.expect_json, (std::vector<std::pair<std::string, std::string>>{
                                  {"order.items[0].id", "7"}, {"status", "{version}"}}));
  EXPECT_EQ(post.timeout, Millis(3000));  // smoke_test_timeout, although it came later
  EXPECT_EQ(c.smoke_tests[1].kind, SmokeTest::Kind::kCommand);
  EXPECT_EQ(c.smoke_tests[1].command, "./check {url}");
  EXPECT_EQ(c.smoke_tests[1].timeout, Millis(60000));
  ASSERT_EQ(c.pre_deploy.size(), 1u);
  EXPECT_EQ(c.pre_deploy[0].timeout, Millis(60000));
  EXPECT_TRUE(c.manual_approval);
  EXPECT_EQ(c.bake_time, Millis(0));
  EXPECT_EQ(c.scale_down_delay, Millis(30000));
  EXPECT_EQ(c.revisions.warm, 2);
  EXPECT_EQ(c.revisions.on_disk, 2);
  ASSERT_EQ(c.hooks.size(), 2u);
  EXPECT_TRUE(c.hooks[0].has_webhook);
  EXPECT_EQ(c.hooks[0].on, (std::vector<std::string>{"*"}));
  EXPECT_EQ(c.hooks[0].webhook.url, "https://hooks.example.com/x?y=1");
  EXPECT_EQ(c.hooks[0].webhook.retries, 0);
  EXPECT_EQ(c.hooks[0].webhook.timeout, Millis(1000));
  EXPECT_FALSE(c.hooks[1].has_webhook);
  EXPECT_EQ(c.hooks[1].command, "page {service} {event}");
  EXPECT_EQ(c.hooks[1].timeout, Millis(5000));
  EXPECT_EQ(c.router.admin, "");
  EXPECT_EQ(c.router.override_header, "X-Slot");
  EXPECT_EQ(c.router.override_secret, "s3cret");
  EXPECT_EQ(c.router.workers, 4);
  EXPECT_EQ(c.state_dir, "/var/lib/turnout/shop");
}

// ---- one test per class of error, with the exact message ----------------------------------

TEST(ServiceConfigTest, SecretsNameTheirSourceAndDeliveryNeverAValue) {
  ServiceConfig c = Parse(std::string(kMinimal) + R"(secrets:
  JWT_KEY: {generate: hex32}
  DB_PASSWORD: {from_file: secrets/db.password, as: file}
  STRIPE_KEY: {from_env: STRIPE_KEY_PROD}
  REFRESH_KEY: {from_file: /etc/shop/refresh.key, generate: hex32}
)");
  ASSERT_EQ(c.secrets.size(), 4u);
  EXPECT_EQ(c.secrets[0].name, "JWT_KEY");
  EXPECT_EQ(c.secrets[0].source(), "generated");
  EXPECT_EQ(c.secrets[0].as, "env");
  EXPECT_EQ(c.secrets[1].name, "DB_PASSWORD");
  EXPECT_EQ(c.secrets[1].from_file, "secrets/db.password") << "resolved by turnoutd, not here";
  EXPECT_EQ(c.secrets[1].as, "file");
  EXPECT_EQ(c.secrets[1].source(), "file");
  EXPECT_EQ(c.secrets[2].from_env, "STRIPE_KEY_PROD");
  EXPECT_EQ(c.secrets[2].source(), "env");
  EXPECT_EQ(c.secrets[3].generate, "hex32");
  EXPECT_EQ(c.secrets[3].source(), "file");
  // The section changes the config hash (a new secret is a new definition).
  EXPECT_NE(ConfigHash(c), ConfigHash(Parse(kMinimal)));
  // A file without secrets keeps the hash it had before the section existed.
  EXPECT_EQ(CanonicalServiceConfig(Parse(kMinimal)).find("secrets"), std::string::npos);
}

TEST(ServiceConfigErrorTest, Secrets) {
  const std::string m = kMinimal;
  EXPECT_THAT(ErrorOf(m + "secrets: {TURNOUT_KEY: {generate: hex32}}\n"),
              HasSubstr("turnout.yaml:4: secrets: TURNOUT_KEY is not a variable name"));
  EXPECT_THAT(ErrorOf(m + "secrets: {1KEY: {generate: hex32}}\n"),
              HasSubstr("1KEY is not a variable name"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {}}\n"),
              HasSubstr("secrets.KEY: give from_file or from_env (or generate: hex32)"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {from_file: a, from_env: B}}\n"),
              HasSubstr("secrets.KEY: give from_file or from_env, not both"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {from_env: B, as: stdin}}\n"),
              HasSubstr("secrets.KEY.as: expected env or file"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {generate: base64}}\n"),
              HasSubstr("secrets.KEY.generate: expected hex32"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {from_env: 'A B'}}\n"),
              HasSubstr("secrets.KEY.from_env: expected a variable name"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: hunter2}\n"),
              HasSubstr("secrets.KEY: expected a mapping (from_file, from_env, as, generate)"));
  // The names turnout gives the app must not clash with the environment or each other.
  EXPECT_THAT(ErrorOf(m + "  env: {KEY: x}\nsecrets: {KEY: {generate: hex32}}\n"),
              HasSubstr("secrets.KEY: KEY is also set by platform.env"));
  EXPECT_THAT(ErrorOf(m + "  env: {KEY_PREVIOUS: x}\nsecrets: {KEY: {generate: hex32}}\n"),
              HasSubstr("KEY_PREVIOUS is also set by platform.env"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {generate: hex32}, KEY_PREVIOUS: {generate: hex32}}\n"),
              HasSubstr("secrets.KEY_PREVIOUS: KEY_PREVIOUS is also a name turnout sets for KEY"));
  EXPECT_THAT(ErrorOf(m + "secrets: {KEY: {generate: hex32, as: file}, KEY_FILE: {from_env: "
                          "X}}\n"),
              HasSubstr("secrets.KEY_FILE: KEY_FILE is also a name turnout sets for KEY"));
  EXPECT_THAT(ErrorOf("name: shop\nplatform: {type: container, image: 'shop:{version}'}\n"
                      "secrets: {KEY: {generate: hex32, as: file}}\n"),
              HasSubstr("secrets.KEY.as: containers get secrets as env"));
}

TEST(ServiceConfigErrorTest, BadDuration) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "health:\n"
                                            "  readiness:\n"
                                            "    interval: soon\n"),
            "turnout.yaml:6: health.readiness.interval: expected a duration like 500ms or 2s, "
            "got 'soon'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bake_time: 5\n"),
            "turnout.yaml:4: bake_time: expected a duration like 500ms or 2s, got '5'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "smoke_test_timeout: 0s\n"),
            "turnout.yaml:4: smoke_test_timeout: expected a duration above zero, got '0s'");
}

TEST(ServiceConfigErrorTest, UnknownKey) {
  EXPECT_EQ(
      ErrorOf(std::string(kMinimal) + "bake: 5m\n"),
      "turnout.yaml:4: bake: unknown key (known keys: name, listen, slots, platform, "
      "health, smoke_tests, smoke_test_timeout, pre_deploy, verify, manual_approval, bake_time, "
      "scale_down_delay, revisions, hooks, router, state_dir, strategy, canary, rules, "
      "analysis_interval, dependencies, prometheus, slo, database, maintenance, secrets)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "health:\n  readyness: {path: /r}\n"),
            "turnout.yaml:5: health.readyness: unknown key (known keys of health: readiness, "
            "liveness, ready_deadline)");
}

TEST(ServiceConfigErrorTest, KeyTwice) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bake_time: 1m\nbake_time: 2m\n"),
            "turnout.yaml:5: bake_time: key appears twice");
}

TEST(ServiceConfigErrorTest, MissingRequiredKeys) {
  EXPECT_EQ(ErrorOf("listen: 127.0.0.1:80\n"),
            "turnout.yaml:1: name: missing; e.g. name: shop\n"
            "turnout.yaml:1: platform: missing; platform.command says how to start the service");
  EXPECT_EQ(ErrorOf("name: shop\nplatform:\n  replicas: 2\n"),
            "turnout.yaml:3: platform.command: missing; e.g. command: ./server --port {port}");
  EXPECT_EQ(ErrorOf(""),
            "turnout.yaml: (top level): the file is empty; `turnout init` writes an example");
}

TEST(ServiceConfigErrorTest, WrongKindOfValue) {
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "turnout.yaml:1: (top level): expected a mapping, got a list");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "health: fine\n"),
            "turnout.yaml:4: health: expected a mapping, got 'fine'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "manual_approval: yes\n"),
            "turnout.yaml:4: manual_approval: expected true or false, got 'yes'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "state_dir:\n"),
            "turnout.yaml:4: state_dir: expected a directory, got nothing");
}

TEST(ServiceConfigErrorTest, InvalidYaml) {
  EXPECT_THAT(ErrorOf("name: shop\nplatform: [\n"),
              testing::StartsWith("turnout.yaml:3: not valid YAML: "));
}

TEST(ServiceConfigErrorTest, BadName) {
  EXPECT_EQ(ErrorOf("name: My Shop\nplatform:\n  command: x {port}\n"),
            "turnout.yaml:1: name: expected a service name of lowercase letters, digits, '.', "
            "'_' and '-' (at most 63, starting with a letter or digit), got 'My Shop'");
}

TEST(ServiceConfigErrorTest, CommandWithoutPort) {
  EXPECT_EQ(ErrorOf("name: shop\nplatform:\n  command: ./server --version {version}\n"),
            "turnout.yaml:3: platform.command: must contain {port}: each instance has to listen "
            "on the port it is given, e.g. --listen 127.0.0.1:{port}");
}

TEST(ServiceConfigErrorTest, UnknownPlaceholder) {
  EXPECT_EQ(ErrorOf("name: shop\nplatform:\n  command: ./server {port} {verison}\n"),
            "turnout.yaml:3: platform.command: unknown placeholder {verison} (known: {version}, "
            "{port}, {slot}, {instance})");
  // Shell variables and JSON are not placeholders.
  Parse(R"(name: shop
platform:
  command: >-
    sh -c 'exec ./s ${PORT_X} {port} {"a": 1}'
)");
}

TEST(ServiceConfigErrorTest, ReplicasOutOfRange) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  replicas: 0\n"),
            "turnout.yaml:4: platform.replicas: expected an integer from 1 to 64, got '0'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  replicas: -2\n"),
            "turnout.yaml:4: platform.replicas: expected an integer from 1 to 64, got '-2'");
}

TEST(ServiceConfigErrorTest, Slots) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "slots: [blue, blue]\n"),
            "turnout.yaml:4: slots: 'blue' is listed twice; slot names are unique");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "slots: [blue]\n"),
            "turnout.yaml:4: slots: needs at least two slots (one serves while the other is "
            "deployed)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "slots: [blue, 'gr een']\n"),
            "turnout.yaml:4: slots: expected a slot name (letters, digits, '.', '_', '-'), got "
            "'gr een'");
}

TEST(ServiceConfigErrorTest, ListenAddress) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "listen: [127.0.0.1:80, localhost]\n"),
            "turnout.yaml:4: listen: expected host:port such as 0.0.0.0:8080 or [::1]:8080, got "
            "'localhost'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "listen: 127.0.0.1:99999\n"),
            "turnout.yaml:4: listen: expected host:port such as 0.0.0.0:8080 or [::1]:8080, got "
            "'127.0.0.1:99999'");
}

TEST(ServiceConfigErrorTest, StopSignal) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  stop_signal: SIGSTOP\n"),
            "turnout.yaml:4: platform.stop_signal: expected a signal name (SIGTERM, SIGINT, "
            "SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH), got 'SIGSTOP'");
}

TEST(ServiceConfigErrorTest, EnvAndPorts) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  env: {1BAD: x}\n"),
            "turnout.yaml:4: platform.env: expected environment variable names "
            "([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*, which turnout sets), got '1BAD'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  env: {TURNOUT_PORT: '1'}\n"),
            "turnout.yaml:4: platform.env: expected environment variable names "
            "([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*, which turnout sets), got 'TURNOUT_PORT'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  ports: 9000-8000\n"),
            "turnout.yaml:4: platform.ports: expected a port range like 20000-20999, a base "
            "port like 20000, or auto, got '9000-8000'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  replicas: 2\n  ports: 9000-9002\n"),
            "turnout.yaml:5: platform.ports: has 3 ports but 2 slots x 2 replicas need 4");
}

TEST(ServiceConfigErrorTest, PortsClash) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  ports: 8000-8999\n"),
            "turnout.yaml:4: platform.ports: 8000-8999 includes the router's port 8080 "
            "(127.0.0.1:8080)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  ports: 9901\nrouter:\n  admin: 127.0.0.1:9901\n"),
            "turnout.yaml:4: platform.ports: 9901-10900 includes the router's port 9901 "
            "(127.0.0.1:9901)");
  EXPECT_EQ(
      ErrorOf(std::string(kMinimal) + "listen: 0.0.0.0:9000\nrouter:\n  admin: 127.0.0.1:9000\n"),
      "turnout.yaml:6: router.admin: uses port 9000, which listen uses too");
  // Port 0 (any free port) clashes with nothing; no admin API, no admin port.
  Parse(std::string(kMinimal) + "listen: 127.0.0.1:0\nrouter: {admin: '127.0.0.1:0'}\n");
  Parse(std::string(kMinimal) + "  ports: 9000-9999\nrouter: {admin: ''}\n");
}

TEST(ServiceConfigErrorTest, RouterAccessLog) {
  const std::string m = std::string(kMinimal) + "router:\n  access_log:\n";
  EXPECT_NE(ErrorOf(m + "    path: logs/access.log\n")
                .find("router.access_log.path: expected an absolute file path, or - for stdout"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "    {path: -, format: xml}\n").find("expected json or logfmt"),
            std::string::npos)
      << ErrorOf(m + "    {path: -, format: xml}\n");
  EXPECT_NE(ErrorOf(m + "    path: /a\n    sample: 1.5\n")
                .find("router.access_log.sample: expected a fraction from 0 to 1"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "    path: /a\n    keep: 0\n").find("router.access_log.keep"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "    path: /a\n    max_size: lots\n").find("router.access_log.max_size"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "    path: /a\n    level: 1\n").find("unknown key"), std::string::npos);
  ServiceConfig c = Parse(m + "    {path: -, sample: 0.25, max_size: 0}\n");
  EXPECT_EQ(c.router.access_log.path, "-");
  EXPECT_DOUBLE_EQ(c.router.access_log.sample, 0.25);
  EXPECT_EQ(c.router.access_log.max_size, 0);
  EXPECT_FALSE(c.router.trace_generate);
}

TEST(ServiceConfigErrorTest, ProbeChecks) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) +
                    "health:\n  readiness: {path: /r, interval: 1s, timeout: 2s}\n"),
            "turnout.yaml:5: health.readiness.timeout: must not exceed health.readiness.interval "
            "(1000ms)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "health:\n  liveness: {path: live}\n"),
            "turnout.yaml:5: health.liveness.path: expected a path starting with '/', got "
            "'live'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "health:\n  ready_deadline: 1s\n"),
            "turnout.yaml:5: health.ready_deadline: must be at least readiness.interval x "
            "readiness.healthy_threshold (2000ms), or no instance can ever become ready");
  EXPECT_EQ(
      ErrorOf(std::string(kMinimal) + "health:\n  readiness:\n    healthy_threshold: many\n"),
      "turnout.yaml:6: health.readiness.healthy_threshold: expected an integer from 1 to 100, "
      "got 'many'");
}

TEST(ServiceConfigErrorTest, SmokeTestExpectations) {
  const std::string base = std::string(kMinimal) + "smoke_tests:\n";
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {status: 42}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.status: expected an integer from 100 to 599, "
            "got '42'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {json: {'a..b': x}}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.json: expected JSON field paths like "
            "data.items[0].id, got 'a..b'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {json: {'a[x]': x}}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.json: expected JSON field paths like "
            "data.items[0].id, got 'a[x]'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {json: {a: [1]}}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.json.a: expected a string, got a list");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {body_contains: ''}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.body_contains: expected a non-empty string, "
            "got ''");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, expect: {code: 200}}\n"),
            "turnout.yaml:5: smoke_tests[0].expect.code: unknown key (known keys of "
            "smoke_tests[0].expect: status, body_contains, json)");
}

TEST(ServiceConfigErrorTest, SmokeTestShape) {
  const std::string base = std::string(kMinimal) + "smoke_tests:\n";
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, command: './x {url}'}\n"),
            "turnout.yaml:5: smoke_tests[0]: has both command and HTTP keys (method, path, "
            "headers, body, expect); a smoke test is one or the other");
  EXPECT_EQ(ErrorOf(base + "  - {name: a}\n"),
            "turnout.yaml:5: smoke_tests[0]: needs either path (an HTTP check) or command");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, method: POST}\n"),
            "turnout.yaml:5: smoke_tests[0].path: missing; an HTTP check needs a path such as "
            "/health");
  EXPECT_EQ(ErrorOf(base + "  - {path: /}\n"),
            "turnout.yaml:5: smoke_tests[0].name: missing; every smoke test needs a name");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /}\n  - {name: a, path: /b}\n"),
            "turnout.yaml:6: smoke_tests[1].name: 'a' names two smoke tests");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, method: get, path: /}\n"),
            "turnout.yaml:5: smoke_tests[0].method: expected an HTTP method like GET or POST, "
            "got 'get'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: 'no slash'}\n"),
            "turnout.yaml:5: smoke_tests[0].path: expected a path starting with '/' (no spaces), "
            "got 'no slash'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, path: /, headers: {'Bad Name': x}}\n"),
            "turnout.yaml:5: smoke_tests[0].headers: expected HTTP header names, got 'Bad Name'");
  EXPECT_EQ(ErrorOf(base + "  - {name: a, command: './x {host}'}\n"),
            "turnout.yaml:5: smoke_tests[0].command: unknown placeholder {host} (known: {url}, "
            "{version}, {slot})");
}

TEST(ServiceConfigErrorTest, PreDeployChecks) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "pre_deploy:\n  - {name: lint}\n"),
            "turnout.yaml:5: pre_deploy[0].command: missing; a check is a command that must "
            "exit 0");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "pre_deploy: ./lint\n"),
            "turnout.yaml:4: pre_deploy: expected a list of checks, got './lint'");
}

TEST(ServiceConfigTest, VerifyChecks) {
  const ServiceConfig c = Parse(std::string(kMinimal) +
                                "verify:\n"
                                "  - {name: functional, run: './e2e --base {url} {version}'}\n"
                                "  - name: latency\n"
                                "    timeout: 30s\n"
                                "    performance:\n"
                                "      requests: 1000\n"
                                "      concurrency: 8\n"
                                "      paths: [{path: /, weight: 3}, {path: /api, method: POST}]\n"
                                "      tolerance: {p95: 10%, min_ms: 2ms}\n");
  ASSERT_EQ(c.verify.size(), 2u);
  EXPECT_EQ(c.verify[0].kind, VerifyCheck::Kind::kCommand);
  EXPECT_EQ(c.verify[0].command, "./e2e --base {url} {version}");
  EXPECT_EQ(c.verify[0].timeout, Millis(60000));
  const VerifyCheck& perf = c.verify[1];
  EXPECT_EQ(perf.kind, VerifyCheck::Kind::kPerformance);
  EXPECT_EQ(perf.timeout, Millis(30000));
  EXPECT_EQ(perf.performance.requests, 1000);
  EXPECT_EQ(perf.performance.concurrency, 8);
  EXPECT_EQ(perf.performance.paths,
            (std::vector<VerifyPath>{{"/", "GET", 3}, {"/api", "POST", 1}}));
  EXPECT_DOUBLE_EQ(perf.performance.tolerance.p50, 0.20);  // the default
  EXPECT_DOUBLE_EQ(perf.performance.tolerance.p95, 0.10);
  EXPECT_DOUBLE_EQ(perf.performance.tolerance.p99, 0.50);
  EXPECT_EQ(perf.performance.tolerance.min, Millis(2));
  // The checks are part of the service definition: another mix is another config hash.
  ServiceConfig other = c;
  other.verify[1].performance.paths[0].weight = 2;
  EXPECT_NE(ConfigHash(c), ConfigHash(other));
}

TEST(ServiceConfigErrorTest, VerifyChecksAreBoundedAndStrict) {
  const std::string base = std::string(kMinimal) + "verify:\n";
  // Every problem at once, each with its line.
  EXPECT_EQ(ErrorOf(base + "  - {name: a, run: './x {slot}'}\n"
                           "  - {name: a, run: ./y}\n"
                           "  - {name: b}\n"
                           "  - {name: c, run: ./x, performance: {paths: [{path: /}]}}\n"
                           "  - {run: ./x, timeout: 2h}\n"),
            "turnout.yaml:5: verify[0].run: unknown placeholder {slot} (known: {url}, "
            "{version})\n"
            "turnout.yaml:6: verify[1].name: 'a' names two verify checks\n"
            "turnout.yaml:7: verify[2]: needs either run (a command) or performance (a request "
            "mix)\n"
            "turnout.yaml:8: verify[3]: has both run and performance; a verify check is one or "
            "the other\n"
            "turnout.yaml:9: verify[4].timeout: expected a duration up to 1h, got '2h'\n"
            "turnout.yaml:9: verify[4].name: missing; every verify check needs a name");
  EXPECT_EQ(ErrorOf(base + "  - name: p\n"
                           "    performance:\n"
                           "      requests: 100001\n"
                           "      concurrency: 65\n"
                           "      paths: [{path: x, method: get, weight: 0}, {weight: 2}]\n"
                           "      tolerance: {p95: fast, p99: 1001%, min_ms: 5}\n"),
            "turnout.yaml:7: verify[0].performance.requests: expected an integer from 1 to "
            "100000, got '100001'\n"
            "turnout.yaml:8: verify[0].performance.concurrency: expected an integer from 1 to "
            "64, got '65'\n"
            "turnout.yaml:9: verify[0].performance.paths[0].path: expected a path starting with "
            "'/' (no spaces), got 'x'\n"
            "turnout.yaml:9: verify[0].performance.paths[0].method: expected an HTTP method like "
            "GET or POST, got 'get'\n"
            "turnout.yaml:9: verify[0].performance.paths[0].weight: expected an integer from 1 "
            "to 1000, got '0'\n"
            "turnout.yaml:9: verify[0].performance.paths[1].path: missing; e.g. path: /\n"
            "turnout.yaml:10: verify[0].performance.tolerance.p95: expected a percentage like 5% "
            "or 0.5%, got 'fast'\n"
            "turnout.yaml:10: verify[0].performance.tolerance.p99: expected a percentage like 5% "
            "or 0.5% from 0% to 1000%, got '1001%'\n"
            "turnout.yaml:10: verify[0].performance.tolerance.min_ms: expected a duration like "
            "500ms or 2s, got '5'");
  EXPECT_EQ(ErrorOf(base + "  - {name: p, performance: {requests: 10}}\n"),
            "turnout.yaml:5: verify[0].performance.paths: missing; e.g. paths: [{path: /, "
            "weight: 3}]");
  EXPECT_EQ(ErrorOf(base + "  - {name: p, performance: {paths: []}}\n"),
            "turnout.yaml:5: verify[0].performance.paths: needs at least one request like "
            "{path: /}");
}

TEST(ServiceConfigErrorTest, Hooks) {
  const std::string base = std::string(kMinimal) + "hooks:\n";
  EXPECT_EQ(ErrorOf(base + "  - {on: [finished], command: ./x}\n"),
            "turnout.yaml:5: hooks[0].on: expected an event (*, deploy_started, "
            "pre_checks_passed, awaiting_approval, ready, smoke_passed, switched, succeeded, "
            "rolled_back, failed, aborted, canary_step_passed, paused, resumed, promoted, "
            "warning, audit_broken), got 'finished'");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed, webhook: {url: 'ftp://example.com/x'}}\n"),
            "turnout.yaml:5: hooks[0].webhook.url: expected an http:// or https:// URL, got "
            "'ftp://example.com/x'");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed, webhook: {url: 'https://'}}\n"),
            "turnout.yaml:5: hooks[0].webhook.url: expected an http:// or https:// URL, got "
            "'https://'");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed, webhook: {retries: 3}}\n"),
            "turnout.yaml:5: hooks[0].webhook.url: missing; where to POST events");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed, webhook: {url: 'http://h/', retries: 11}}\n"),
            "turnout.yaml:5: hooks[0].webhook.retries: expected an integer from 0 to 10, got "
            "'11'");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed}\n"),
            "turnout.yaml:5: hooks[0]: needs a command or a webhook");
  EXPECT_EQ(ErrorOf(base + "  - {on: failed, command: x, webhook: {url: 'http://h/'}}\n"),
            "turnout.yaml:5: hooks[0]: has both command and webhook; make them two hooks");
}

TEST(ServiceConfigErrorTest, RouterAndRevisions) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "router: {override_header: 'X Slot'}\n"),
            "turnout.yaml:4: router.override_header: expected an HTTP header name, got 'X Slot'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "router: {admin: nowhere}\n"),
            "turnout.yaml:4: router.admin: expected host:port such as 127.0.0.1:9901, or \"\", "
            "got 'nowhere'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "revisions:\n  warm: 3\n  on_disk: 2\n"),
            "turnout.yaml:6: revisions.on_disk: must be at least revisions.warm (3)");
}

TEST(ServiceConfigErrorTest, ReportsEveryErrorTogetherOnePerLine) {
  const std::string message = ErrorOf(R"(name: shop
platform:
  command: ./server
  replicas: 0
health:
  readiness:
    interval: soon
colour: blue
slots: [blue, blue]
hooks:
  - {on: [finished], command: ./x}
)");
  EXPECT_EQ(
      message,
      "turnout.yaml:3: platform.command: must contain {port}: each instance has to listen "
      "on the port it is given, e.g. --listen 127.0.0.1:{port}\n"
      "turnout.yaml:4: platform.replicas: expected an integer from 1 to 64, got '0'\n"
      "turnout.yaml:7: health.readiness.interval: expected a duration like 500ms or 2s, "
      "got 'soon'\n"
      "turnout.yaml:8: colour: unknown key (known keys: name, listen, slots, platform, "
      "health, smoke_tests, smoke_test_timeout, pre_deploy, verify, manual_approval, bake_time, "
      "scale_down_delay, revisions, hooks, router, state_dir, strategy, canary, rules, "
      "analysis_interval, dependencies, prometheus, slo, database, maintenance, secrets)\n"
      "turnout.yaml:9: slots: 'blue' is listed twice; slot names are unique\n"
      "turnout.yaml:11: hooks[0].on: expected an event (*, deploy_started, "
      "pre_checks_passed, awaiting_approval, ready, smoke_passed, switched, succeeded, "
      "rolled_back, failed, aborted, canary_step_passed, paused, resumed, promoted, "
      "warning, audit_broken), got 'finished'");
}

TEST(ServiceConfigErrorTest, ManyErrorsAreCapped) {
  std::string yaml = kMinimal;
  for (int i = 0; i < 60; ++i) yaml += "unknown" + std::to_string(i) + ": 1\n";
  const std::string message = ErrorOf(yaml);
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 50);
  EXPECT_THAT(message, testing::EndsWith("(10 more problems not shown)"));
}

TEST(ServiceConfigErrorTest, DamagedExamplesGiveLocatedMessagesNeverCrash) {
  // Every line of the example removed, or its value replaced by nonsense: each result is either
  // a valid config or a list of "turnout.yaml:<line>: ..." messages (no line only for a file
  // cut off before its first key).
  std::vector<std::string> lines;
  std::istringstream in(ExampleServiceConfig());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  int refused = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    for (int variant = 0; variant < 3; ++variant) {
      std::string yaml;
      for (size_t j = 0; j < lines.size(); ++j) {
        std::string line = lines[j];
        if (j == i) {
          const size_t colon = line.find(": ");
          if (variant == 0) continue;             // the line removed
          if (colon == std::string::npos) break;  // the rest of the file cut off
          line = line.substr(0, colon + 2) + (variant == 1 ? "[oops" : "{a: [1, 2]}");
        }
        yaml += line + "\n";
      }
      auto result = ParseServiceConfig(yaml, "turnout.yaml");
      // A value of the wrong kind on any setting line is noticed.
      const size_t first = lines[i].find_first_not_of(' ');
      const size_t colon = lines[i].find(": ");
      std::string key = first == std::string::npos || colon == std::string::npos
                            ? ""
                            : lines[i].substr(first, colon - first);
      if (key.rfind("- ", 0) == 0) key = key.substr(2);
      const bool setting = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      });
      EXPECT_FALSE(setting && variant > 0 && result.ok())
          << "line " << i + 1 << " variant " << variant << " accepted: " << lines[i];
      if (result.ok()) continue;
      ++refused;
      std::istringstream messages(result.status().message());
      for (std::string m; std::getline(messages, m);) {
        if (m.find("the file is empty") != std::string::npos) continue;
        EXPECT_THAT(m, testing::MatchesRegex("turnout\\.yaml:[0-9]+: .+")) << "line " << i + 1;
      }
    }
  }
  // Comment lines are most of the example; every setting line was refused twice above.
  EXPECT_GT(refused, static_cast<int>(lines.size()) / 2);
}

TEST(ServiceConfigTest, LoadReadsFileAndNamesItInErrors) {
  char dir_template[] = "/tmp/turnout_service_testXXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string good = dir + "/turnout.yaml";
  const std::string bad = dir + "/bad.yaml";
  std::ofstream(good) << kMinimal;
  std::ofstream(bad) << kMinimal << "bake_time: never\n";
  auto loaded = LoadServiceConfig(good);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->name, "shop");
  auto refused = LoadServiceConfig(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            bad + ":4: bake_time: expected a duration like 500ms or 2s, got 'never'");
  auto missing = LoadServiceConfig(dir + "/none.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_THAT(missing.status().message(), HasSubstr("none.yaml"));
  std::remove(good.c_str());
  std::remove(bad.c_str());
  rmdir(dir.c_str());
}

// ---- platform.type: container --------------------------------------------------------------

constexpr const char* kContainerMinimal =
    "name: shop\n"
    "platform:\n"
    "  type: container\n"
    "  image: registry.example/shop:{version}\n";

// A temporary directory removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/turnout_service_testXXXXXX";
    path_ = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

TEST(ServiceConfigContainerTest, ReadsEveryKeyAndTheEnvFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write(".env",
            "# the database\n"
            "\n"
            "DB_PASSWORD=s3cret=x\n"
            "export REGION = \"eu-west\"\n"
            "LOG_LEVEL=debug\n");
  const std::string file = dir.Write("turnout.yaml",
                                     "name: shop\n"
                                     "platform:\n"
                                     "  type: container\n"
                                     "  engine: unix:///run/podman/podman.sock\n"
                                     "  image: registry.example/shop:{version}\n"
                                     "  port: 8080\n"
                                     "  network: bridge\n"
                                     "  command: [/app/server]\n"
                                     "  args: [--verbose, -x]\n"
                                     "  env: {LOG_LEVEL: info}\n"
                                     "  env_file: .env\n"
                                     "  mounts: [\"./data:/data:ro\", \"/srv/cache:/cache\"]\n"
                                     "  memory: 512m\n"
                                     "  cpus: 1.5\n"
                                     "  user: \"1000:1000\"\n"
                                     "  pull: never\n"
                                     "  ulimits: {nofile: 1024, nproc: \"64:4096\"}\n"
                                     "  stop_signal: SIGINT\n"
                                     "  grace_period: 3s\n"
                                     "  replicas: 2\n");
  Result<ServiceConfig> c = LoadServiceConfig(file);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const PlatformConfig& p = c->platform;
  EXPECT_TRUE(p.is_container());
  EXPECT_EQ(p.container.engine, "unix:///run/podman/podman.sock");
  EXPECT_EQ(p.container.image, "registry.example/shop:{version}");
  EXPECT_EQ(p.container.port, 8080);
  EXPECT_EQ(p.container.network, "bridge");
  EXPECT_EQ(p.container.command, std::vector<std::string>{"/app/server"});
  EXPECT_EQ(p.container.args, (std::vector<std::string>{"--verbose", "-x"}));
  EXPECT_EQ(p.container.env_file, ".env");
  // The file's lines first, then the map, which wins (later entries win).
  EXPECT_EQ(p.env, (std::vector<std::pair<std::string, std::string>>{{"DB_PASSWORD", "s3cret=x"},
                                                                     {"REGION", "eu-west"},
                                                                     {"LOG_LEVEL", "debug"},
                                                                     {"LOG_LEVEL", "info"}}));
  EXPECT_EQ(p.container.mounts, (std::vector<ContainerMountConfig>{
                                    {"./data", "/data", true}, {"/srv/cache", "/cache", false}}));
  EXPECT_EQ(p.container.memory_bytes, 512LL * 1024 * 1024);
  EXPECT_DOUBLE_EQ(p.container.cpus, 1.5);
  EXPECT_EQ(p.container.user, "1000:1000");
  EXPECT_EQ(p.container.pull, "never");
  EXPECT_EQ(p.container.nofile_soft, 1024);
  EXPECT_EQ(p.container.nofile_hard, 1024);
  EXPECT_EQ(p.container.nproc_soft, 64);
  EXPECT_EQ(p.container.nproc_hard, 4096);
  EXPECT_EQ(p.stop_signal_number, SIGINT);
  EXPECT_EQ(p.grace_period, Millis(3000));
  EXPECT_EQ(p.replicas, 2);
  EXPECT_EQ(p.ports, (PortRange{0, 0}));  // containers always get a free loopback port
}

TEST(ServiceConfigContainerTest, Defaults) {
  ServiceConfig c = Parse(kContainerMinimal);
  const ContainerConfig& ct = c.platform.container;
  EXPECT_EQ(c.platform.type, "container");
  EXPECT_EQ(ct.engine, "");
  EXPECT_EQ(ct.port, 0);
  EXPECT_EQ(ct.network, "host");
  EXPECT_TRUE(ct.command.empty());
  EXPECT_TRUE(ct.args.empty());
  EXPECT_TRUE(ct.mounts.empty());
  EXPECT_EQ(ct.memory_bytes, 0);
  EXPECT_EQ(ct.cpus, 0);
  EXPECT_EQ(ct.user, "");
  EXPECT_EQ(ct.pull, "if_not_present");
  EXPECT_EQ(c.platform.stop_signal, "SIGTERM");
  EXPECT_EQ(c.platform.grace_period, Millis(10000));
  // A string command is split like a shell would.
  EXPECT_EQ(Parse(std::string(kContainerMinimal) + "  command: \"/app/server --x 'a b'\"\n")
                .platform.container.command,
            (std::vector<std::string>{"/app/server", "--x", "a b"}));
  EXPECT_EQ(
      Parse(std::string(kContainerMinimal) + "  memory: 2g\n").platform.container.memory_bytes,
      2LL << 30);
  EXPECT_EQ(
      Parse(std::string(kContainerMinimal) + "  memory: 65536k\n").platform.container.memory_bytes,
      65536LL * 1024);
  EXPECT_EQ(
      Parse(std::string(kContainerMinimal) + "  memory: 1000\n").platform.container.memory_bytes,
      1000);
  EXPECT_EQ(Parse(std::string(kContainerMinimal) + "  engine: /run/docker.sock\n")
                .platform.container.engine,
            "/run/docker.sock");
}

TEST(ServiceConfigContainerTest, EachBadValueIsNamed) {
  const std::string m = kContainerMinimal;
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"name: shop\nplatform:\n  type: container\n",
       "turnout.yaml:3: platform.image: missing; e.g. image: registry.example/shop:{version}"},
      {"name: shop\nplatform:\n  type: kubernetes\n  command: ./s {port}\n",
       "turnout.yaml:3: platform.type: expected process or container, got 'kubernetes'"},
      {m + "  engine: tcp://10.0.0.1:2375\n",
       "turnout.yaml:5: platform.engine: expected a Unix socket: unix:///run/podman/podman.sock "
       "or an absolute path (tcp:// and ssh:// engines are not supported), got "
       "'tcp://10.0.0.1:2375'"},
      {m + "  image: \"\"\n", "platform.image: key appears twice"},
      {"name: shop\nplatform:\n  type: container\n  image: shop:{tag}\n",
       "turnout.yaml:4: platform.image: unknown placeholder {tag} (known: {version})"},
      {m + "  port: 70000\n",
       "turnout.yaml:5: platform.port: expected an integer from 1 to 65535, got '70000'"},
      {m + "  network: overlay\n",
       "turnout.yaml:5: platform.network: expected host or bridge, got 'overlay'"},
      {m + "  network: bridge\n",
       "turnout.yaml:3: platform.port: missing; network: bridge publishes the port the app "
       "listens on inside the container, e.g. port: 8080"},
      {m + "  command: []\n",
       "turnout.yaml:5: platform.command: expected a list of words like [/app/server, "
       "--verbose], got a list"},
      {m + "  args: --verbose\n",
       "turnout.yaml:5: platform.args: expected a list of words like [--verbose], got "
       "'--verbose'"},
      {m + "  env: {TURNOUT_PORT: '1'}\n", "turnout.yaml:5: platform.env: expected environment"},
      {m + "  mounts: [\"./data\"]\n",
       "turnout.yaml:5: platform.mounts[0]: expected source:target or source:target:ro, like "
       "./data:/data:ro, got './data'"},
      {m + "  mounts: [\"./data:data\"]\n",
       "turnout.yaml:5: platform.mounts[0]: expected source:target or source:target:ro, like "
       "./data:/data:ro (the target an absolute path), got './data:data'"},
      {m + "  mounts: [\"./a:/a:rx\"]\n", "platform.mounts[0]: expected source:target"},
      {m + "  memory: lots\n",
       "turnout.yaml:5: platform.memory: expected a size like 512m or 2g (k, m, g: KiB, MiB, "
       "GiB), got 'lots'"},
      {m + "  memory: 0m\n", "platform.memory: expected a size"},
      {m + "  cpus: 0\n",
       "turnout.yaml:5: platform.cpus: expected a number of CPUs above 0, like 1.5, got '0'"},
      {m + "  cpus: many\n", "platform.cpus: expected a number of CPUs above 0"},
      {m + "  user: \"\"\n", "platform.user: expected a user: uid[:gid] or a name"},
      {m + "  pull: sometimes\n",
       "turnout.yaml:5: platform.pull: expected always, if_not_present or never, got "
       "'sometimes'"},
      {m + "  ulimits: {nofile: 1024}\n",
       "turnout.yaml:5: platform.ulimits: give nofile and nproc together: an explicit list "
       "replaces all of the engine's defaults"},
      {m + "  ulimits: {nofile: \"2048:1024\", nproc: 64}\n",
       "turnout.yaml:5: platform.ulimits.nofile: expected a limit like 1024 or \"1024:4096\" "
       "(soft:hard, 1 <= soft <= hard), got '2048:1024'"},
      {m + "  ulimits: {nofile: 0, nproc: 64}\n", "platform.ulimits.nofile: expected a limit"},
      {m + "  ulimits: {nofile: 8, nproc: many}\n", "platform.ulimits.nproc: expected a limit"},
      {m + "  ulimits: {nofile: 8, nproc: 8, core: 0}\n",
       "platform.ulimits.core: unknown key (known keys of platform.ulimits: nofile, nproc)"},
      {m + "  ulimits: 1024\n", "platform.ulimits: expected a mapping"},
      {m + "  stop_signal: SIGSTOP\n", "platform.stop_signal: expected a signal name"},
      {m + "  grace_period: soon\n", "platform.grace_period: expected a duration"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ErrorOf(c.yaml), HasSubstr(c.message)) << c.yaml;
  }
}

TEST(ServiceConfigContainerTest, KeysOfTheOtherTypeAreRefusedWithTheOtherErrors) {
  // Under type: process (the default), container keys.
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "  image: shop:{version}\n  pull: never\n" +
                    "bake_time: never\n"),
            "turnout.yaml:4: platform.image: only used with type: container (type is process)\n"
            "turnout.yaml:5: platform.pull: only used with type: container (type is process)\n"
            "turnout.yaml:6: bake_time: expected a duration like 500ms or 2s, got 'never'");
  // Under type: container, whatever the key order, process keys.
  EXPECT_EQ(ErrorOf("name: shop\n"
                    "platform:\n"
                    "  working_dir: /srv\n"
                    "  ports: auto\n"
                    "  image: shop:{version}\n"
                    "  type: container\n"),
            "turnout.yaml:3: platform.working_dir: only used with type: process (type is "
            "container)\n"
            "turnout.yaml:4: platform.ports: only used with type: process (type is container)");
  // A process command is a string with {port}; a container needs none.
  EXPECT_EQ(Parse(std::string(kContainerMinimal) + "  command: [/app/server, --port, '8080']\n")
                .platform.container.command.size(),
            3u);
}

TEST(ServiceConfigTest, MaintenancePageIsAFileBesideTurnoutYaml) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("down.html", "<h1>back at 14:00</h1>");
  const std::string head = "name: shop\nplatform:\n  command: ./app --port {port}\n";
  const std::string file =
      dir.Write("turnout.yaml", head + "maintenance:\n  retry_after: 2m\n  page: down.html\n");
  Result<ServiceConfig> c = LoadServiceConfig(file);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->maintenance.retry_after, std::chrono::minutes(2));
  EXPECT_EQ(c->maintenance.page, dir.path() + "/down.html");
  EXPECT_EQ(c->maintenance.content_type, "text/html; charset=utf-8");
  Result<ServiceConfig> plain = LoadServiceConfig(dir.Write("plain.yaml", head));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ConfigHash(*c), ConfigHash(*plain)) << "maintenance is not part of the config hash";

  dir.Write("big.html", std::string(kMaxMaintenancePage + 1, 'x'));
  const std::string bad =
      dir.Write("bad.yaml", head +
                                "maintenance:\n  retry_after: 500ms\n  page: big.html\n"
                                "  content_type: \"text/html\\r\\nX: y\"\n");
  Result<ServiceConfig> b = LoadServiceConfig(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(),
            bad + ":5: maintenance.retry_after: expected a duration from 1s to 24h, got '500ms'\n" +
                bad + ":6: maintenance.page: the maintenance page " + dir.path() +
                "/big.html is larger than 65536 bytes\n" + bad +
                ":7: maintenance.content_type: expected a media type such as text/html, got "
                "'text/html\\r\\nX: y'");
}

TEST(ServiceConfigContainerTest, EnvFileProblemsNameTheLineNeverTheValue) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("bad.env", "GOOD=1\nnot a variable hunter2\nTURNOUT_PORT=9\n");
  const std::string file =
      dir.Write("turnout.yaml", std::string(kContainerMinimal) + "  env_file: bad.env\n");
  Result<ServiceConfig> c = LoadServiceConfig(file);
  ASSERT_FALSE(c.ok());
  const std::string expected_name =
      ": expected NAME=VALUE with a variable name ([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*)";
  EXPECT_EQ(c.status().message(), file + ":5: platform.env_file: bad.env:2" + expected_name + "\n" +
                                      file + ":5: platform.env_file: bad.env:3" + expected_name);
  EXPECT_THAT(c.status().message(), ::testing::Not(HasSubstr("hunter2")));

  // Never a device or a pipe, which could be read forever; at most 1 MiB.
  Result<ServiceConfig> device = LoadServiceConfig(
      dir.Write("device.yaml", std::string(kContainerMinimal) + "  env_file: /dev/zero\n"));
  ASSERT_FALSE(device.ok());
  EXPECT_THAT(device.status().message(),
              HasSubstr("platform.env_file: /dev/zero is not a regular file"));
  dir.Write("big.env", "A=" + std::string(1 << 20, 'x') + "\n");
  Result<ServiceConfig> big = LoadServiceConfig(
      dir.Write("big.yaml", std::string(kContainerMinimal) + "  env_file: big.env\n"));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("big.env is larger than 1 MiB"));

  const std::string missing =
      dir.Write("missing.yaml", std::string(kContainerMinimal) + "  env_file: none.env\n");
  Result<ServiceConfig> m = LoadServiceConfig(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), missing + ":5: platform.env_file: cannot read " + dir.path() +
                                      "/none.env: No such file or directory");
}

TEST(ServiceConfigContainerTest, CanonicalTextCoversContainerKeysOnly) {
  // Process configs keep the text (and hash) they had before containers existed.
  EXPECT_THAT(CanonicalServiceConfig(Parse(kMinimal)), ::testing::Not(HasSubstr("platform.image")));
  const std::string base = ConfigHash(Parse(kContainerMinimal));
  for (const std::string extra :
       {"  memory: 1g\n", "  cpus: 2\n", "  mounts: ['/a:/b']\n", "  args: [-v]\n", "  user: app\n",
        "  pull: always\n", "  network: bridge\n  port: 80\n", "  engine: /x.sock\n",
        "  command: [/s]\n", "  env: {A: b}\n"}) {
    EXPECT_NE(ConfigHash(Parse(std::string(kContainerMinimal) + extra)), base) << extra;
  }
}

// ---- judgement from data: strategy, canary, rules, dependencies, prometheus, slo ------------

TEST(ServiceConfigJudgementTest, MinimalConfigUsesNone) {
  ServiceConfig c = Parse(kMinimal);
  EXPECT_EQ(c.strategy, "blue_green");
  EXPECT_TRUE(c.canary.steps.empty());
  EXPECT_TRUE(c.rules.empty());
  EXPECT_EQ(c.analysis_interval, Millis(1000));
  EXPECT_TRUE(c.dependencies.empty());
  EXPECT_EQ(c.prometheus.url, "");
  EXPECT_EQ(c.prometheus.timeout, Millis(5000));
  EXPECT_EQ(c.prometheus.retries, 2);
  EXPECT_TRUE(c.slo.objectives.empty());
}

TEST(ServiceConfigJudgementTest, CanaryWithoutStepsGetsTheDefaultSteps) {
  ServiceConfig c = Parse(std::string(kMinimal) + "strategy: canary\n");
  EXPECT_EQ(c.strategy, "canary");
  EXPECT_EQ(c.canary.steps,
            (std::vector<CanaryStepConfig>{
                {500, Millis(300000)}, {2500, Millis(600000)}, {5000, Millis(600000)}}));
  EXPECT_EQ(c.canary.judge.alpha, 0.05);
  EXPECT_EQ(c.canary.judge.min_samples, 100u);
  EXPECT_EQ(c.canary.judge.end_policy, judge::EndPolicy::kPromote);
  // Only the judge's keys given: the steps are still the defaults.
  c = Parse(std::string(kMinimal) + "strategy: canary\ncanary: {alpha: 0.01}\n");
  EXPECT_EQ(c.canary.steps, DefaultCanarySteps());
  EXPECT_EQ(c.canary.judge.alpha, 0.01);
}

TEST(ServiceConfigJudgementTest, ReadsEveryKey) {
  ServiceConfig c = Parse(std::string(kMinimal) + R"(strategy: canary
canary:
  steps:
    - {weight: 0.5%, for: 1m}
    - weight: 10%
      for: 2m
    - {weight: 99.99%, for: 30s}
  alpha: 0.01
  error_margin: 0.5%
  error_relative_margin: 20%
  latency: false
  latency_percentile: 99.9
  latency_margin: 2%
  latency_relative_margin: 10%
  min_requests: 500
  max_step_time: 20m
  end_policy: rollback
rules:
  - error_rate > 5% for 2m
  - name: latency
    when: p95>2s for 5m
    severity: warning
    min_samples: 10
    on_insufficient_data: fail
    window: 45s
  - {when: dependency db unavailable for 10s, on_insufficient_data: pass}
  - {when: metric conns > 90}
analysis_interval: 250ms
dependencies:
  - {name: db, postgres: 'host=127.0.0.1 dbname=shop', interval: 10s, timeout: 3s}
  - {name: api, http: 'http://127.0.0.1:9000/health'}
  - {name: cache, tcp: '127.0.0.1:6379', timeout: 500ms}
  - {name: disk, command: "sh -c 'test -w /tmp'", interval: 1m, timeout: 1m}
prometheus:
  url: http://127.0.0.1:9090/prom
  timeout: 1s
  retries: 0
  queries:
    conns: sum(pg_stat_activity_count)
slo:
  availability: 99.9%
  latency: {threshold: 250ms, target: 99%}
  period: 7d
)");
  EXPECT_EQ(c.strategy, "canary");
  EXPECT_EQ(c.canary.steps,
            (std::vector<CanaryStepConfig>{
                {50, Millis(60000)}, {1000, Millis(120000)}, {9999, Millis(30000)}}));
  const judge::CanaryJudgeConfig& j = c.canary.judge;
  EXPECT_DOUBLE_EQ(j.alpha, 0.01);
  EXPECT_DOUBLE_EQ(j.error_margin, 0.005);
  EXPECT_DOUBLE_EQ(j.error_relative_margin, 0.2);
  EXPECT_FALSE(j.judge_latency);
  EXPECT_DOUBLE_EQ(j.latency_percentile, 99.9);
  EXPECT_DOUBLE_EQ(j.latency_margin, 0.02);
  EXPECT_DOUBLE_EQ(j.latency_relative_margin, 0.1);
  EXPECT_EQ(j.min_samples, 500u);
  EXPECT_EQ(j.max_duration, std::chrono::minutes(20));
  EXPECT_EQ(j.end_policy, judge::EndPolicy::kRollback);

  ASSERT_EQ(c.rules.size(), 4u);
  EXPECT_EQ(c.rules[0].expr, "error_rate > 5% for 2m");
  EXPECT_EQ(c.rules[0].name, "");
  EXPECT_EQ(c.rules[0].severity, judge::Severity::kCritical);
  EXPECT_FALSE(c.rules[0].min_samples.has_value());
  EXPECT_FALSE(c.rules[0].window.has_value());
  EXPECT_EQ(c.rules[1].name, "latency");
  EXPECT_EQ(c.rules[1].expr, "p95>2s for 5m");
  EXPECT_EQ(c.rules[1].severity, judge::Severity::kWarning);
  EXPECT_EQ(c.rules[1].min_samples, 10u);
  EXPECT_EQ(c.rules[1].on_insufficient_data, judge::InsufficientDataPolicy::kFail);
  EXPECT_EQ(c.rules[1].window, Millis(45000));
  EXPECT_EQ(c.rules[2].on_insufficient_data, judge::InsufficientDataPolicy::kPass);
  // Every rule the parser accepts is one the judge builds.
  for (const auto& rc : c.rules) EXPECT_TRUE(judge::MakeRule(rc).ok()) << rc.expr;
  auto made = judge::MakeRule(c.rules[1]);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->expr.statistic, judge::Statistic::kP95);
  EXPECT_EQ(made->window, std::chrono::seconds(45));

  EXPECT_EQ(c.analysis_interval, Millis(250));

  ASSERT_EQ(c.dependencies.size(), 4u);
  EXPECT_EQ(c.dependencies[0].name, "db");
  EXPECT_EQ(c.dependencies[0].interval, Millis(10000));
  EXPECT_EQ(c.dependencies[0].timeout, Millis(3000));
  const auto* pg = std::get_if<sources::PostgresCheck>(&c.dependencies[0].check);
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->conninfo, "host=127.0.0.1 dbname=shop");
  EXPECT_EQ(pg->connect_timeout, Millis(3000));
  EXPECT_EQ(pg->statement_timeout, Millis(3000));
  const auto* http = std::get_if<sources::HttpCheck>(&c.dependencies[1].check);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->url, "http://127.0.0.1:9000/health");
  EXPECT_EQ(http->timeout, Millis(2000));
  EXPECT_EQ(c.dependencies[1].interval, Millis(5000));
  const auto* tcp = std::get_if<sources::TcpCheck>(&c.dependencies[2].check);
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->address, "127.0.0.1:6379");
  EXPECT_EQ(tcp->timeout, Millis(500));
  const auto* command = std::get_if<sources::CommandCheck>(&c.dependencies[3].check);
  ASSERT_NE(command, nullptr);
  EXPECT_EQ(command->argv, (std::vector<std::string>{"sh", "-c", "test -w /tmp"}));
  EXPECT_EQ(command->timeout, Millis(60000));

  EXPECT_EQ(c.prometheus.url, "http://127.0.0.1:9090/prom");
  EXPECT_EQ(c.prometheus.timeout, Millis(1000));
  EXPECT_EQ(c.prometheus.retries, 0);
  EXPECT_EQ(
      c.prometheus.queries,
      (std::vector<std::pair<std::string, std::string>>{{"conns", "sum(pg_stat_activity_count)"}}));

  ASSERT_EQ(c.slo.objectives.size(), 2u);
  const judge::SloObjective& a = c.slo.objectives[0];
  EXPECT_EQ(a.name, "availability");
  EXPECT_EQ(a.kind, judge::SloObjective::Kind::kAvailability);
  EXPECT_DOUBLE_EQ(a.target, 0.999);
  EXPECT_EQ(a.period, std::chrono::hours(24 * 7));
  const judge::SloObjective& l = c.slo.objectives[1];
  EXPECT_EQ(l.name, "latency");
  EXPECT_EQ(l.kind, judge::SloObjective::Kind::kLatency);
  EXPECT_DOUBLE_EQ(l.target, 0.99);
  EXPECT_DOUBLE_EQ(l.latency_threshold_us, 250000);
  EXPECT_EQ(l.period, std::chrono::hours(24 * 7));
  for (const auto& o : c.slo.objectives) EXPECT_TRUE(judge::ValidateSloObjective(o).ok());
  EXPECT_TRUE(judge::ValidateCanaryJudgeConfig(j).ok());
}

TEST(ServiceConfigJudgementTest, SloPeriodDefaultsToThirtyDays) {
  ServiceConfig c = Parse(std::string(kMinimal) + "slo: {availability: 99.95%}\n");
  ASSERT_EQ(c.slo.objectives.size(), 1u);
  EXPECT_DOUBLE_EQ(c.slo.objectives[0].target, 0.9995);
  EXPECT_EQ(c.slo.objectives[0].period, std::chrono::hours(24 * 30));
  c = Parse(std::string(kMinimal) + "slo: {availability: 99%, period: 12h}\n");
  EXPECT_EQ(c.slo.objectives[0].period, std::chrono::hours(12));
}

TEST(ServiceConfigJudgementErrorTest, Strategy) {
  const std::string m = kMinimal;
  EXPECT_EQ(
      ErrorOf(m + "strategy: big_bang\n"),
      "turnout.yaml:4: strategy: expected blue_green, canary, rolling or recreate, got 'big_bang'");
  EXPECT_EQ(ErrorOf(m + "canary:\n  steps: [{weight: 5%, for: 1m}]\n"),
            "turnout.yaml:5: canary: only used with strategy: canary (strategy is blue_green)");
}

TEST(ServiceConfigJudgementErrorTest, CanarySteps) {
  const std::string base = std::string(kMinimal) + "strategy: canary\ncanary:\n  steps:\n";
  EXPECT_EQ(ErrorOf(base + "    - {weight: 25%, for: 1m}\n    - {weight: 5%, for: 1m}\n"),
            "turnout.yaml:8: canary.steps[1].weight: must be more than the step before "
            "(25.00%); weights grow step by step");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 5%, for: 1m}\n    - {weight: 5%, for: 1m}\n"),
            "turnout.yaml:8: canary.steps[1].weight: must be more than the step before "
            "(5.00%); weights grow step by step");
  const std::string weight_expected =
      "expected a share of traffic above 0% and below 100%, like 5% or 0.5% (after the last "
      "step the canary gets 100%), got ";
  EXPECT_EQ(ErrorOf(base + "    - {weight: 100%, for: 1m}\n"),
            "turnout.yaml:7: canary.steps[0].weight: " + weight_expected + "'100%'");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 0%, for: 1m}\n"),
            "turnout.yaml:7: canary.steps[0].weight: " + weight_expected + "'0%'");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 5, for: 1m}\n"),
            "turnout.yaml:7: canary.steps[0].weight: " + weight_expected + "'5'");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 0.125%, for: 1m}\n"),
            "turnout.yaml:7: canary.steps[0].weight: " + weight_expected + "'0.125%'");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 5%, for: 0s}\n"),
            "turnout.yaml:7: canary.steps[0].for: expected a duration above zero, got '0s'");
  EXPECT_EQ(ErrorOf(base + "    - {weight: 5%}\n"),
            "turnout.yaml:7: canary.steps[0].for: missing; e.g. for: 5m");
  EXPECT_EQ(ErrorOf(base + "    - {for: 5m}\n"),
            "turnout.yaml:7: canary.steps[0].weight: missing; e.g. weight: 5%");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "strategy: canary\ncanary: {steps: []}\n"),
            "turnout.yaml:5: canary.steps: expected a list of steps like - {weight: 5%, for: "
            "5m}, got a list");
}

TEST(ServiceConfigJudgementErrorTest, CanaryJudge) {
  const std::string base = std::string(kMinimal) + "strategy: canary\ncanary:\n";
  EXPECT_EQ(ErrorOf(base + "  alpha: 0.6\n"),
            "turnout.yaml:6: canary.alpha: expected a probability above 0 and at most 0.5, like "
            "0.05, got '0.6'");
  EXPECT_EQ(ErrorOf(base + "  alpha: 5%\n"),
            "turnout.yaml:6: canary.alpha: expected a probability above 0 and at most 0.5, like "
            "0.05, got '5%'");
  EXPECT_EQ(ErrorOf(base + "  error_margin: 1\n"),
            "turnout.yaml:6: canary.error_margin: expected a percentage like 5% or 0.5%, got '1'");
  EXPECT_EQ(ErrorOf(base + "  error_relative_margin: 100%\n"),
            "turnout.yaml:6: canary.error_relative_margin: expected a percentage like 5% or 0.5% "
            "from 0% to 100% (excluded), got '100%'");
  EXPECT_EQ(ErrorOf(base + "  latency: maybe\n"),
            "turnout.yaml:6: canary.latency: expected true or false, got 'maybe'");
  EXPECT_EQ(ErrorOf(base + "  latency_percentile: 100\n"),
            "turnout.yaml:6: canary.latency_percentile: expected a percentile above 0 and below "
            "100, like 95 or 99.9, got '100'");
  EXPECT_EQ(ErrorOf(base + "  min_requests: 0\n"),
            "turnout.yaml:6: canary.min_requests: expected an integer from 1 to 1000000000, got "
            "'0'");
  EXPECT_EQ(ErrorOf(base + "  max_step_time: forever\n"),
            "turnout.yaml:6: canary.max_step_time: expected a duration like 500ms or 2s, got "
            "'forever'");
  EXPECT_EQ(ErrorOf(base + "  end_policy: shrug\n"),
            "turnout.yaml:6: canary.end_policy: expected promote or rollback, got 'shrug'");
}

TEST(ServiceConfigJudgementErrorTest, RuleExpressionsAreParsedAtLoad) {
  const std::string base = std::string(kMinimal) + "rules:\n";
  // A typo in the expression: the judge's own message, at the line of the rule.
  EXPECT_EQ(ErrorOf(base + "  - name: errors\n    when: eror_rate > 5% for 2m\n"),
            "turnout.yaml:6: rules[0].when: " +
                judge::ParseExpression("eror_rate > 5% for 2m").status().message());
  EXPECT_EQ(ErrorOf(base + "  - error_rate > 5% for 2 minutes\n"),
            "turnout.yaml:5: rules[0]: " +
                judge::ParseExpression("error_rate > 5% for 2 minutes").status().message());
  EXPECT_THAT(ErrorOf(base + "  - p95 > 5%\n"), HasSubstr("turnout.yaml:5: rules[0]: "));
  EXPECT_EQ(ErrorOf(base + "  - {when: ''}\n"),
            "turnout.yaml:5: rules[0].when: expected a rule like error_rate > 5% for 2m, got ''");
  EXPECT_EQ(ErrorOf(base + "  - {name: x}\n"),
            "turnout.yaml:5: rules[0].when: missing; e.g. when: error_rate > 5% for 2m");
}

TEST(ServiceConfigJudgementErrorTest, RuleFields) {
  const std::string base = std::string(kMinimal) + "rules:\n";
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, severity: fatal}\n"),
            "turnout.yaml:5: rules[0].severity: expected warning (notify) or critical (roll "
            "back), got 'fatal'");
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, on_insufficient_data: skip}\n"),
            "turnout.yaml:5: rules[0].on_insufficient_data: expected wait, pass or fail, got "
            "'skip'");
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, min_samples: 0}\n"),
            "turnout.yaml:5: rules[0].min_samples: expected an integer from 1 to 1000000000, got "
            "'0'");
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, window: 3m}\n"),
            "turnout.yaml:5: rules[0].window: expected whole seconds from 1s to 2m (what the "
            "router's metrics keep), got '3m'");
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, window: 1500ms}\n"),
            "turnout.yaml:5: rules[0].window: expected whole seconds from 1s to 2m (what the "
            "router's metrics keep), got '1500ms'");
  EXPECT_EQ(ErrorOf(base + "  - {when: health failing, zzz: 1}\n"),
            "turnout.yaml:5: rules[0].zzz: unknown key (known keys of rules[0]: name, when, "
            "severity, min_samples, on_insufficient_data, window)");
  EXPECT_EQ(ErrorOf(base + "  - health failing\n  - {name: x, when: p95 > 1s}\n"
                           "  - {name: x, when: p99 > 2s}\n"),
            "turnout.yaml:7: rules[2]: a second rule named 'x'; give one of them another name");
  EXPECT_EQ(ErrorOf(base + "  - health failing\n  - health failing\n"),
            "turnout.yaml:6: rules[1]: a second rule named 'health failing'; give one of them "
            "another name");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "rules: {a: 1}\n"),
            "turnout.yaml:4: rules: expected a list of rules, got a mapping");
}

TEST(ServiceConfigJudgementErrorTest, RulesNameDeclaredSources) {
  const std::string m = kMinimal;
  EXPECT_EQ(ErrorOf(m + "rules:\n  - dependency postgres unavailable for 10s\n"),
            "turnout.yaml:5: rules[0]: names dependency 'postgres', which is not declared under "
            "dependencies (none are)");
  EXPECT_EQ(ErrorOf(m + "dependencies: [{name: db, tcp: '127.0.0.1:5432'}]\n"
                        "rules:\n  - {when: dependency pg down}\n"),
            "turnout.yaml:6: rules[0].when: names dependency 'pg', which is not declared under "
            "dependencies (declared: db)");
  EXPECT_EQ(ErrorOf(m + "rules:\n  - metric conns > 90 for 1m\n"),
            "turnout.yaml:5: rules[0]: names metric 'conns', which is not a query under "
            "prometheus.queries (there are none)");
  EXPECT_EQ(ErrorOf(m + "rules:\n  - metric conns > 90 for 1m\n"
                        "prometheus: {url: 'http://p:9090', queries: {cpu: x, mem: y}}\n"),
            "turnout.yaml:5: rules[0]: names metric 'conns', which is not a query under "
            "prometheus.queries (queries: cpu, mem)");
  // A dependency refused for its own mistake is still declared: only its mistake is reported.
  EXPECT_EQ(ErrorOf(m + "dependencies: [{name: db, tcp: nowhere}]\nrules: [dependency db down]\n"),
            "turnout.yaml:4: dependencies[0].tcp: expected host:port such as 127.0.0.1:5432, got "
            "'nowhere'");
  // Declared after the rules in the file: order does not matter.
  ServiceConfig c = Parse(m +
                          "rules:\n  - dependency db down\n  - metric cpu > 1\n"
                          "dependencies: [{name: db, tcp: '127.0.0.1:5432'}]\n"
                          "prometheus: {url: 'http://p:9090', queries: {cpu: x}}\n");
  EXPECT_EQ(c.rules.size(), 2u);
}

TEST(ServiceConfigJudgementErrorTest, AnalysisInterval) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "analysis_interval: 50ms\n"),
            "turnout.yaml:4: analysis_interval: expected a duration from 100ms to 1m, got '50ms'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "analysis_interval: 0s\n"),
            "turnout.yaml:4: analysis_interval: expected a duration above zero, got '0s'");
}

TEST(ServiceConfigJudgementErrorTest, Dependencies) {
  const std::string base = std::string(kMinimal) + "dependencies:\n";
  EXPECT_EQ(ErrorOf(base + "  - {name: db}\n"),
            "turnout.yaml:5: dependencies[0]: needs one check: tcp, http, postgres or command");
  EXPECT_EQ(ErrorOf(base + "  - {name: db, tcp: 'h:1', http: 'http://h/'}\n"),
            "turnout.yaml:5: dependencies[0]: has more than one check (tcp, http, postgres, "
            "command); make them separate dependencies");
  EXPECT_EQ(ErrorOf(base + "  - {name: db, tcp: localhost}\n"),
            "turnout.yaml:5: dependencies[0].tcp: expected host:port such as 127.0.0.1:5432, got "
            "'localhost'");
  EXPECT_EQ(ErrorOf(base + "  - {name: api, http: 'ftp://h/'}\n"),
            "turnout.yaml:5: dependencies[0].http: expected an http:// or https:// URL, got "
            "'ftp://h/'");
  EXPECT_EQ(ErrorOf(base + "  - {name: db, postgres: ''}\n"),
            "turnout.yaml:5: dependencies[0].postgres: expected a PostgreSQL connection string "
            "(postgresql://... or host=... dbname=...), got ''");
  EXPECT_THAT(ErrorOf(base + "  - {name: x, command: \"sh -c 'oops\"}\n"),
              testing::StartsWith("turnout.yaml:5: dependencies[0].command: "));
  EXPECT_EQ(ErrorOf(base + "  - {name: db, tcp: 'h:1'}\n  - {name: db, tcp: 'h:2'}\n"),
            "turnout.yaml:6: dependencies[1].name: 'db' names two dependencies");
  EXPECT_EQ(ErrorOf(base + "  - {name: 1db, tcp: 'h:1'}\n"),
            "turnout.yaml:5: dependencies[0].name: expected a name rules can use: a letter or "
            "'_', then letters, digits, '_', '.', ':' or '-', got '1db'");
  EXPECT_EQ(ErrorOf(base + "  - {tcp: 'h:1'}\n"),
            "turnout.yaml:5: dependencies[0].name: missing; rules name it: dependency NAME "
            "unavailable");
  EXPECT_EQ(ErrorOf(base + "  - name: db\n    tcp: 'h:1'\n    interval: 1s\n    timeout: 2s\n"),
            "turnout.yaml:8: dependencies[0].timeout: must not exceed dependencies[0].interval "
            "(1s)");
}

TEST(ServiceConfigJudgementErrorTest, Prometheus) {
  const std::string m = kMinimal;
  EXPECT_EQ(ErrorOf(m + "prometheus:\n  queries: {cpu: x}\n"),
            "turnout.yaml:5: prometheus.url: missing; e.g. url: http://127.0.0.1:9090");
  EXPECT_EQ(ErrorOf(m + "prometheus: {url: '127.0.0.1:9090'}\n"),
            "turnout.yaml:4: prometheus.url: expected the server's http:// or https:// base URL, "
            "got '127.0.0.1:9090'");
  EXPECT_EQ(ErrorOf(m + "prometheus: {url: 'http://p/', retries: 11}\n"),
            "turnout.yaml:4: prometheus.retries: expected an integer from 0 to 10, got '11'");
  EXPECT_EQ(ErrorOf(m + "prometheus: {url: 'http://p/', timeout: 0s}\n"),
            "turnout.yaml:4: prometheus.timeout: expected a duration above zero, got '0s'");
  EXPECT_EQ(ErrorOf(m + "prometheus: {url: 'http://p/', queries: {cpu: ' '}}\n"),
            "turnout.yaml:4: prometheus.queries.cpu: expected a PromQL query, got ' '");
  EXPECT_EQ(ErrorOf(m + "prometheus: {url: 'http://p/', queries: {'a b': x}}\n"),
            "turnout.yaml:4: prometheus.queries: expected query names rules can use (a letter or "
            "'_', then letters, digits, '_', '.', ':' or '-'), got 'a b'");
}

TEST(ServiceConfigJudgementErrorTest, Slo) {
  const std::string m = kMinimal;
  EXPECT_EQ(ErrorOf(m + "slo: {availability: 100%}\n"),
            "turnout.yaml:4: slo.availability: expected a percentage like 5% or 0.5% from 0% "
            "(excluded) to 100% (excluded), got '100%'");
  EXPECT_EQ(ErrorOf(m + "slo: {availability: 99.95}\n"),
            "turnout.yaml:4: slo.availability: expected a percentage like 5% or 0.5%, got "
            "'99.95'");
  EXPECT_EQ(ErrorOf(m + "slo:\n  latency: {threshold: 100ms}\n"),
            "turnout.yaml:5: slo.latency.target: missing; e.g. target: 95%");
  EXPECT_EQ(ErrorOf(m + "slo:\n  latency: {target: 95%}\n"),
            "turnout.yaml:5: slo.latency.threshold: missing; e.g. threshold: 100ms");
  EXPECT_EQ(ErrorOf(m + "slo:\n  latency: {threshold: 0s, target: 95%}\n"),
            "turnout.yaml:5: slo.latency.threshold: expected a duration above zero, got '0s'");
  EXPECT_EQ(ErrorOf(m + "slo:\n  availability: 99%\n  period: 1mo\n"),
            "turnout.yaml:6: slo.period: expected whole seconds or more, like 30d, 7d or 24h, got "
            "'1mo'");
  EXPECT_EQ(ErrorOf(m + "slo:\n  period: 30d\n"),
            "turnout.yaml:5: slo: needs an objective: availability: 99.95% and/or latency: {...}");
}

// ---- ConfigHash -------------------------------------------------------------------------------

TEST(ConfigHashTest, StableAcrossSpellingsOfTheSameContent) {
  const std::string hash = ConfigHash(Parse(kMinimal));
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(ConfigHash(Parse(kMinimal)), hash);
  // Key order, comments, flow style and defaults spelled out do not change the content.
  EXPECT_EQ(ConfigHash(Parse("# the shop\n"
                             "platform: {command: './server --port {port}', replicas: 1}\n"
                             "slots: [blue, green]\n"
                             "name: shop\n"
                             "bake_time: 1m\n")),
            hash);
  // A pinned value: the hash is recorded with revisions, so it must not drift between builds.
  // If a field is added to ServiceConfig on purpose, update this (old revisions then differ).
  ServiceConfig built;
  built.name = "shop";
  built.platform.command = "./server --port {port}";
  EXPECT_EQ(ConfigHash(built), hash);
  // (Changed when router.admin_token and router.external were added, and when router.admin's
  // default became "": no TCP admin listener.)
  EXPECT_EQ(hash, "096c83f40b1f1cacbc40fcce2d3a317b16c4365bdad84ae63d37334d50cf138f");
  EXPECT_EQ(CanonicalServiceConfig(built).find("strategy"), std::string::npos);
  // The judgement keys spelled out at their defaults leave the hash as it was before they
  // existed, so revisions recorded then still match.
  EXPECT_EQ(ConfigHash(Parse(std::string(kMinimal) +
                             "strategy: blue_green\nanalysis_interval: 1000ms\nrules: []\n"
                             "dependencies: []\n")),
            hash);
  EXPECT_EQ(ConfigHash(Parse(std::string(kMinimal) + "verify: []\n")), hash);
}

TEST(ConfigHashTest, JudgementDefaultsSpelledOutOrNotHashTheSame) {
  const std::string m = kMinimal;
  EXPECT_EQ(ConfigHash(Parse(m + "strategy: canary\n")),
            ConfigHash(Parse(m + "strategy: canary\ncanary:\n  steps:\n"
                                 "    - {weight: 5%, for: 5m}\n"
                                 "    - {weight: 25%, for: 10m}\n"
                                 "    - {weight: 50.00%, for: 600s}\n"
                                 "  alpha: 0.050\n  error_margin: 1%\n  end_policy: promote\n")));
  // A rule's defaults: name = its text, min_samples 50, window max(for, interval), critical,
  // wait.
  EXPECT_EQ(ConfigHash(Parse(m + "rules: ['error_rate > 5% for 2m']\n")),
            ConfigHash(Parse(m + "rules:\n  - name: error_rate > 5% for 2m\n"
                                 "    when: error_rate > 5% for 2m\n    severity: critical\n"
                                 "    min_samples: 50\n    on_insufficient_data: wait\n"
                                 "    window: 120s\n")));
  EXPECT_EQ(ConfigHash(Parse(m + "slo: {availability: 99.95%}\n")),
            ConfigHash(Parse(m + "slo: {availability: 99.950%, period: 720h}\n")));
}

TEST(ConfigHashTest, SensitiveToEveryKindOfChange) {
  const std::string base = ConfigHash(Parse(kMinimal));
  const char* changes[] = {
      "listen: 127.0.0.1:8081\n",
      "slots: [green, blue]\n",
      "bake_time: 61s\n",
      "manual_approval: true\n",
      "state_dir: other\n",
      "router: {workers: 1}\n",
      "revisions: {on_disk: 11}\n",
      "health: {readiness: {path: /readyz}}\n",
      "smoke_tests: [{name: a, path: /}]\n",
      "pre_deploy: [{name: a, command: x}]\n",
      "hooks: [{on: failed, command: x}]\n",
      "strategy: canary\n",
      "analysis_interval: 2s\n",
      "rules: [health failing]\n",
      "rules: [{when: health failing, severity: warning}]\n",
      "rules: [{when: health failing, window: 10s}]\n",
      "rules: [{when: p95 > 1s, min_samples: 10}]\n",
      "rules: [{when: p95 > 1s, on_insufficient_data: fail}]\n",
      "rules: [{when: p95 > 1s, name: slow}]\n",
      "dependencies: [{name: db, tcp: '127.0.0.1:5432'}]\n",
      "dependencies: [{name: db, tcp: '127.0.0.1:5433'}]\n",
      "dependencies: [{name: db, command: 'check 1'}]\n",
      "dependencies: [{name: db, command: 'check 2'}]\n",
      "dependencies: [{name: db, tcp: '127.0.0.1:5432', timeout: 1s}]\n",
      "prometheus: {url: 'http://p:9090'}\n",
      "prometheus: {url: 'http://p:9090', queries: {a: up}}\n",
      "prometheus: {url: 'http://p:9090', retries: 1}\n",
      "slo: {availability: 99.9%}\n",
      "slo: {availability: 99.95%}\n",
      "slo: {availability: 99.95%, period: 7d}\n",
      "slo: {latency: {threshold: 100ms, target: 95%}}\n",
      "slo: {latency: {threshold: 101ms, target: 95%}}\n",
  };
  std::set<std::string> seen{base};
  for (const char* change : changes) {
    const std::string hash = ConfigHash(Parse(std::string(kMinimal) + change));
    EXPECT_TRUE(seen.insert(hash).second) << "no change in hash for: " << change;
  }
  for (const char* canary :
       {"{steps: [{weight: 5%, for: 1m}]}", "{steps: [{weight: 6%, for: 1m}]}",
        "{steps: [{weight: 5%, for: 2m}]}", "{alpha: 0.01}", "{error_margin: 2%}",
        "{error_relative_margin: 10%}", "{latency: false}", "{latency_percentile: 99}",
        "{latency_margin: 1%}", "{latency_relative_margin: 1%}", "{min_requests: 10}",
        "{max_step_time: 1m}", "{end_policy: rollback}"}) {
    const std::string hash =
        ConfigHash(Parse(std::string(kMinimal) + "strategy: canary\ncanary: " + canary + "\n"));
    EXPECT_TRUE(seen.insert(hash).second) << "no change in hash for canary: " << canary;
  }
  ServiceConfig c = Parse(kMinimal);
  c.platform.env = {{"A", "1"}};
  EXPECT_TRUE(seen.insert(ConfigHash(c)).second);
  // Values that run together differently must not collide.
  ServiceConfig a = Parse(kMinimal), b = Parse(kMinimal);
  a.platform.env = {{"AB", "C"}};
  b.platform.env = {{"A", "BC"}};
  EXPECT_NE(ConfigHash(a), ConfigHash(b));
}

}  // namespace
}  // namespace turnout::service

namespace turnout::service {
namespace {

TEST(ServiceConfigDatabaseTest, ReadsTheDatabaseSection) {
  Result<ServiceConfig> c = ParseServiceConfig(
      "name: shop\nplatform:\n  command: ./x --port {port}\ndatabase:\n"
      "  url_env: SHOP_DB\n  migrations: db/migrations\n  verify_level: 3\n"
      "  format: custom\n  jobs: 4\n  lock_timeout: 2s\n",
      "turnout.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->database.enabled());
  EXPECT_EQ(c->database.url_env, "SHOP_DB");
  EXPECT_EQ(c->database.migrations, "db/migrations");
  EXPECT_EQ(c->database.verify_level, 3);
  EXPECT_EQ(c->database.format, "custom");
  EXPECT_EQ(c->database.jobs, 4);
  EXPECT_EQ(c->database.lock_timeout, std::chrono::seconds(2));
  Result<ServiceConfig> none =
      ParseServiceConfig("name: shop\nplatform:\n  command: ./x --port {port}\n", "t.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->database.enabled());
  EXPECT_NE(ConfigHash(*c), ConfigHash(*none));
}

TEST(ServiceConfigDatabaseTest, ReadsTheAppsOwnToolAndRefusesItHalfGiven) {
  const std::string m =
      "name: shop\nplatform:\n  command: ./x --port {port}\ndatabase:\n"
      "  url_env: SHOP_DB\n";
  Result<ServiceConfig> c = ParseServiceConfig(
      m + "  tool: command\n  up: ./bin/migrate up\n  status: ./bin/migrate version\n"
          "  down: \"./bin/migrate down --to {to}\"\n  tool_timeout: 2m\n",
      "turnout.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->database.command_tool());
  EXPECT_EQ(c->database.up, "./bin/migrate up");
  EXPECT_EQ(c->database.status, "./bin/migrate version");
  EXPECT_EQ(c->database.down, "./bin/migrate down --to {to}");
  EXPECT_EQ(c->database.tool_timeout, std::chrono::minutes(2));
  Result<ServiceConfig> sql = ParseServiceConfig(m, "turnout.yaml");
  ASSERT_TRUE(sql.ok());
  EXPECT_FALSE(sql->database.command_tool());
  EXPECT_NE(ConfigHash(*c), ConfigHash(*sql));
  auto error = [&](const std::string& extra) {
    Result<ServiceConfig> r = ParseServiceConfig(m + extra, "turnout.yaml");
    return r.ok() ? std::string("(accepted)") : r.status().message();
  };
  EXPECT_NE(error("  tool: command\n  up: ./m up\n").find("needs `up`"), std::string::npos);
  EXPECT_NE(error("  up: ./m up\n").find("add it"), std::string::npos);
  EXPECT_NE(error("  tool: flyway\n").find("sql or command"), std::string::npos);
}

TEST(ServiceConfigDatabaseTest, RefusesMistakesWithTheirLine) {
  const std::string m = "name: shop\nplatform:\n  command: ./x --port {port}\n";
  auto error = [&](const std::string& extra) {
    Result<ServiceConfig> c = ParseServiceConfig(m + extra, "turnout.yaml");
    return c.ok() ? std::string("(accepted)") : c.status().message();
  };
  EXPECT_EQ(error("database: {migrations: m}\n"),
            "turnout.yaml:4: database.url: missing; give url (a PostgreSQL URL) or url_env (the "
            "variable holding it)");
  EXPECT_EQ(error("database: {url: x, url_env: Y}\n"),
            "turnout.yaml:4: database: give url or url_env, not both");
  EXPECT_EQ(error("database:\n  url: x\n  verify_level: 4\n"),
            "turnout.yaml:6: database.verify_level: expected an integer from 1 to 3, got '4'");
  EXPECT_EQ(error("database:\n  url: x\n  format: tar\n"),
            "turnout.yaml:6: database.format: expected directory or custom, got 'tar'");
  EXPECT_EQ(error("database:\n  url_env: DATABASE-URL\n"),
            "turnout.yaml:5: database.url_env: expected an environment variable name like "
            "DATABASE_URL, got 'DATABASE-URL'");
}

}  // namespace
}  // namespace turnout::service

namespace turnout::service {
namespace {

TEST(ServiceConfigRollingTest, RollingNeedsPortsAuto) {
  const std::string m = "name: shop\nplatform:\n  command: ./x --port {port}\n";
  Result<ServiceConfig> ok =
      ParseServiceConfig(m + "  ports: auto\nstrategy: rolling\n", "turnout.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->strategy, "rolling");
  Result<ServiceConfig> bad = ParseServiceConfig(m + "strategy: rolling\n", "turnout.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "turnout.yaml:4: strategy: rolling replaces instances beside the running ones, on new "
            "ports: set platform.ports: auto");
}

TEST(ServiceConfigRecreateTest, RecreateIsAStrategy) {
  Result<ServiceConfig> ok = ParseServiceConfig(
      "name: shop\nplatform:\n  command: ./x --port {port}\nstrategy: recreate\n", "turnout.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->strategy, "recreate");
}

// Values and yaml-cpp's own messages are quoted in errors; a control character in them (a
// newline from a quoted "\n", an ESC) broke the one-problem-per-line format and reached the
// terminal as is. They are written as escapes.
TEST(ServiceConfigTest, ControlCharactersInErrorsAreEscaped) {
  const std::string message = ErrorOf(std::string(kMinimal) + "bake_time: \"a\\nb\\e[31m\"\n");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  EXPECT_THAT(message, HasSubstr("turnout.yaml:4: bake_time: expected a duration"));
  EXPECT_THAT(message, HasSubstr("'a\\nb\\x1b[31m'"));

  // yaml-cpp quotes the character it refuses.
  const std::string syntax = ErrorOf(std::string("name: \"x\\\x01\"\n"));
  EXPECT_EQ(syntax.find('\x01'), std::string::npos) << syntax;
  EXPECT_THAT(syntax, HasSubstr("turnout.yaml:1: not valid YAML: unknown escape character: \\x01"));
}

}  // namespace
}  // namespace turnout::service
