#include "controller/deployment_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controller/json_path.h"
#include "controller/verify.h"

namespace turnout::controller {
namespace {

SmokeCheck HttpCheck(std::string method, std::string path, int status) {
  SmokeCheck c;
  c.method = std::move(method);
  c.path = std::move(path);
  c.expected_status = status;
  return c;
}

DeploymentSpec Valid() {
  DeploymentSpec s;
  s.service = "shop";
  s.version = "v1.2";
  s.command = "./app --port {port}";
  return s;
}

TEST(DeploymentSpecTest, DefaultsWithNamesAndCommandAreValid) {
  EXPECT_TRUE(ValidateDeploymentSpec(Valid()).ok());
}

TEST(DeploymentSpecTest, RefusesBadFieldsNamingThem) {
  struct Case {
    void (*mutate)(DeploymentSpec&);
    const char* field;
  };
  const Case cases[] = {
      {[](DeploymentSpec& s) { s.service = "a b"; }, "service"},
      {[](DeploymentSpec& s) { s.version = ""; }, "version"},
      {[](DeploymentSpec& s) {
         s.slots = {"blue", "blue"};
       },
       "slots"},
      {[](DeploymentSpec& s) { s.slots = {"blue"}; }, "slots"},
      {[](DeploymentSpec& s) { s.command = ""; }, "command"},
      {[](DeploymentSpec& s) { s.replicas = 0; }, "replicas"},
      {[](DeploymentSpec& s) {
         s.base_port = 65530;
         s.replicas = 4;
       },
       "base_port"},
      {[](DeploymentSpec& s) { s.readiness_path = "ready"; }, "readiness_path"},
      {[](DeploymentSpec& s) { s.smoke_checks = {HttpCheck("GET", "/", 99)}; }, "smoke_checks"},
      {[](DeploymentSpec& s) { s.ready_deadline = Millis(0); }, "ready_deadline"},
      {[](DeploymentSpec& s) { s.bake_time = Millis(-1); }, "bake_time"},
      {[](DeploymentSpec& s) { s.bake_failure_threshold = 0; }, "bake_failure_threshold"},
      {[](DeploymentSpec& s) { s.liveness_path = "live"; }, "liveness_path"},
      {[](DeploymentSpec& s) { s.liveness_interval = Millis(0); }, "liveness_interval"},
      {[](DeploymentSpec& s) { s.liveness_failure_threshold = 0; }, "liveness_failure_threshold"},
  };
  for (const Case& c : cases) {
    DeploymentSpec s = Valid();
    c.mutate(s);
    Status st = ValidateDeploymentSpec(s);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(st.message().rfind(c.field, 0), 0u) << st.message();
  }
}

TEST(DeploymentSpecTest, JsonRoundTripKeepsEveryField) {
  DeploymentSpec s = Valid();
  s.config_hash = "abc";
  s.slots = {"left", "right"};
  s.working_dir = "app";
  s.env = {{"A", "1"}, {"B", "two words"}};
  s.stop_signal = 2;
  s.grace = Millis(1500);
  s.log_dir = "logs";
  s.replicas = 3;
  s.base_port = 9000;
  s.host = "127.0.0.2";
  s.readiness_path = "/health";
  s.ready_deadline = Millis(7000);
  s.smoke_checks = {HttpCheck("POST", "/x", 201), SmokeCheck{}};
  s.bake_failure_threshold = 5;
  s.liveness_path = "/alive";
  s.liveness_interval = Millis(2500);
  s.liveness_timeout = Millis(700);
  s.liveness_failure_threshold = 4;
  s.bake_time = Millis(1234);
  s.scale_down_delay = Millis(5678);
  s.started_by = "alice";
  s.reason = "because \"quoted\"";
  s.keep_instances = true;
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  EXPECT_TRUE(back->keep_instances);
  EXPECT_EQ(back->env, s.env);
  EXPECT_EQ(back->smoke_checks.size(), 2u);
  EXPECT_EQ(back->smoke_checks[0].expected_status, 201);
  EXPECT_EQ(back->scale_down_delay, Millis(5678));
  EXPECT_EQ(back->liveness_path, "/alive");
  EXPECT_EQ(back->liveness_interval, Millis(2500));
  EXPECT_EQ(back->liveness_timeout, Millis(700));
  EXPECT_EQ(back->liveness_failure_threshold, 4);
}

TEST(DeploymentSpecTest, SecretsTravelAsReferencesToEachInstanceNeverAsValues) {
  DeploymentSpec s = Valid();
  s.secrets = {
      platform::SecretRef{"JWT_KEY", "env", 3, "hmac-sha256:00112233aabbccdd", 2,
                          "hmac-sha256:99887766aabbccdd"},
      platform::SecretRef{"DB_PASSWORD", "file", 1, "hmac-sha256:0a0b0c0d0e0f0102", 0, ""}};
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->secrets, s.secrets);
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  const platform::InstanceSpec i = InstanceSpecFor(s, "blue", 0, 8080);
  EXPECT_EQ(i.secrets, s.secrets);
  EXPECT_TRUE(i.secret_env.empty()) << "resolved by turnoutd at launch, not here";
  // A spec without secrets keeps the text it had before the field existed.
  EXPECT_EQ(EncodeSpec(Valid()).find("secrets"), std::string::npos);
  DeploymentSpec bad = Valid();
  bad.secrets = {platform::SecretRef{"TURNOUT_X", "env", 1, "f", 0, ""}};
  EXPECT_EQ(ValidateDeploymentSpec(bad).code(), StatusCode::kInvalidArgument);
  bad.secrets = {platform::SecretRef{"X", "stdin", 1, "f", 0, ""}};
  EXPECT_EQ(ValidateDeploymentSpec(bad).code(), StatusCode::kInvalidArgument);
}

TEST(DeploymentSpecTest, JsonRoundTripKeepsTheNewFields) {
  DeploymentSpec s = Valid();
  SmokeCheck http = HttpCheck("POST", "/api/items?x=1", 201);
  http.name = "create item";
  http.headers = {{"Content-Type", "application/json"}, {"X-Trace", "smoke"}};
  http.body = R"({"name":"smoke"})";
  http.expect_body_contains = "{version}";
  http.expect_json = {{"data.items[0].id", "7"}, {"ok", "true"}};
  http.timeout = Millis(2500);
  SmokeCheck cmd;
  cmd.kind = SmokeCheck::Kind::kCommand;
  cmd.command = "curl -fsS -H 'X-Turnout-Slot: {slot}' {url}/health";
  s.smoke_checks = {http, cmd};
  s.pre_deploy = {PreDeployCheck{"migrations", "./migrate --dry-run {version}", Millis(90000)},
                  PreDeployCheck{"disk", "df -h", Millis(1000)}};
  s.manual_approval = true;
  s.probe_interval = Millis(2000);
  ASSERT_TRUE(ValidateDeploymentSpec(s).ok()) << ValidateDeploymentSpec(s).ToString();
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  ASSERT_EQ(back->smoke_checks.size(), 2u);
  const SmokeCheck& h = back->smoke_checks[0];
  EXPECT_EQ(h.name, "create item");
  EXPECT_EQ(h.kind, SmokeCheck::Kind::kHttp);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.path, "/api/items?x=1");
  EXPECT_EQ(h.headers, http.headers);
  EXPECT_EQ(h.body, http.body);
  EXPECT_EQ(h.expected_status, 201);
  EXPECT_EQ(h.expect_body_contains, "{version}");
  EXPECT_EQ(h.expect_json, http.expect_json);
  EXPECT_EQ(h.timeout, Millis(2500));
  EXPECT_EQ(back->smoke_checks[1].kind, SmokeCheck::Kind::kCommand);
  EXPECT_EQ(back->smoke_checks[1].command, cmd.command);
  ASSERT_EQ(back->pre_deploy.size(), 2u);
  EXPECT_EQ(back->pre_deploy[0].name, "migrations");
  EXPECT_EQ(back->pre_deploy[0].command, "./migrate --dry-run {version}");
  EXPECT_EQ(back->pre_deploy[0].timeout, Millis(90000));
  EXPECT_TRUE(back->manual_approval);
  EXPECT_EQ(back->probe_interval, Millis(2000));
}

TEST(DeploymentSpecTest, DecodesSpecsPersistedBeforeTheNewFieldsWithDefaults) {
  // Exactly what the controller persisted before pre-deploy checks, approval, probe_interval and
  // the richer smoke checks existed.
  const char* old_json = R"({"base_port":0,"bake_failure_threshold":3,"bake_time_ms":60000,
    "command":"./app --port {port}","config_hash":"h","env":[["A","1"]],"grace_ms":10000,
    "host":"127.0.0.1","log_dir":"","ready_deadline_ms":30000,"readiness_path":"/ready",
    "reason":"","replicas":1,"scale_down_delay_ms":300000,"service":"shop",
    "slots":["blue","green"],"smoke_checks":[{"method":"HEAD","path":"/x","status":204}],
    "started_by":"turnout","stop_signal":15,"version":"v1","working_dir":""})";
  Result<DeploymentSpec> s = DecodeSpec(old_json);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->service, "shop");
  ASSERT_EQ(s->smoke_checks.size(), 1u);
  const SmokeCheck& c = s->smoke_checks[0];
  EXPECT_EQ(c.kind, SmokeCheck::Kind::kHttp);
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.method, "HEAD");
  EXPECT_EQ(c.path, "/x");
  EXPECT_EQ(c.expected_status, 204);
  EXPECT_TRUE(c.headers.empty());
  EXPECT_TRUE(c.expect_json.empty());
  EXPECT_EQ(c.timeout, SmokeCheck{}.timeout);
  EXPECT_TRUE(s->pre_deploy.empty());
  EXPECT_FALSE(s->manual_approval);
  EXPECT_EQ(s->probe_interval, Millis(0));
  EXPECT_TRUE(ValidateDeploymentSpec(*s).ok());
}

TEST(DeploymentSpecTest, DecodeRefusesBadNewFields) {
  DeploymentSpec s = Valid();
  s.smoke_checks = {SmokeCheck{}};
  nlohmann::json j = nlohmann::json::parse(EncodeSpec(s));
  j["smoke_checks"][0]["kind"] = "carrier-pigeon";
  EXPECT_EQ(DecodeSpec(j.dump()).status().code(), StatusCode::kInvalidArgument);
  j["smoke_checks"][0] = 5;
  EXPECT_EQ(DecodeSpec(j.dump()).status().code(), StatusCode::kInvalidArgument);
  j = nlohmann::json::parse(EncodeSpec(s));
  j["pre_deploy"] = nlohmann::json::array({{{"command", "true"}}});  // no name
  EXPECT_EQ(DecodeSpec(j.dump()).status().code(), StatusCode::kInvalidArgument);
  j = nlohmann::json::parse(EncodeSpec(s));
  j["smoke_checks"][0]["headers"] = nlohmann::json::array({{"only-a-name"}});
  EXPECT_EQ(DecodeSpec(j.dump()).status().code(), StatusCode::kInvalidArgument);
}

TEST(DeploymentSpecTest, ValidatesTheNewFieldsNamingThem) {
  struct Case {
    void (*mutate)(DeploymentSpec&);
    const char* field;
  };
  const Case cases[] = {
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"", "true"}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"a b", "true"}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"x", "true"}, PreDeployCheck{"x", "true"}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"x", "sh -c 'oops"}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"x", "   "}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) {
         s.pre_deploy = {PreDeployCheck{"x", "true", Millis(0)}};
       },
       "pre_deploy"},
      {[](DeploymentSpec& s) { s.probe_interval = Millis(-1); }, "probe_interval"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.headers = {{"Bad Name", "v"}};
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.headers = {{"X-A", "line\r\nInjected: 1"}};
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.headers = {{"content-length", "5"}};
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.method = "GE T";
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.path = "/a b";
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.expect_json = {{"a..b", "1"}};
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.timeout = Millis(0);
         s.smoke_checks = {c};
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) {
         SmokeCheck c;
         c.kind = SmokeCheck::Kind::kCommand;
         s.smoke_checks = {c};  // no command
       },
       "smoke_checks"},
      {[](DeploymentSpec& s) { s.strategy = "rolling-thunder"; }, "strategy"},
      {[](DeploymentSpec& s) {
         s.strategy = "rolling";
         s.base_port = 9000;
       },
       "strategy"},
      {[](DeploymentSpec& s) { s.strategy = "canary"; }, "canary_steps"},
      {[](DeploymentSpec& s) {
         s.strategy = "canary";
         s.canary_steps = {CanaryStep{0, Millis(1000)}};
       },
       "canary_steps[0]"},
      {[](DeploymentSpec& s) {
         s.strategy = "canary";
         s.canary_steps = {CanaryStep{10000, Millis(1000)}};
       },
       "canary_steps[0]"},
      {[](DeploymentSpec& s) {
         s.strategy = "canary";
         s.canary_steps = {CanaryStep{2500, Millis(1000)}, CanaryStep{2500, Millis(1000)}};
       },
       "canary_steps[1]"},
      {[](DeploymentSpec& s) {
         s.strategy = "canary";
         s.canary_steps = {CanaryStep{500, Millis(0)}};
       },
       "canary_steps[0]"},
      {[](DeploymentSpec& s) { s.analysis_interval = Millis(-1); }, "analysis_interval"},
  };
  for (const Case& c : cases) {
    DeploymentSpec s = Valid();
    c.mutate(s);
    Status st = ValidateDeploymentSpec(s);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(st.message().rfind(c.field, 0), 0u) << st.message();
  }
  // A command check needs no path, method or status of its own.
  DeploymentSpec s = Valid();
  SmokeCheck cmd;
  cmd.kind = SmokeCheck::Kind::kCommand;
  cmd.command = "curl -fsS {url}/";
  cmd.path = "";
  s.smoke_checks = {cmd};
  EXPECT_TRUE(ValidateDeploymentSpec(s).ok()) << ValidateDeploymentSpec(s).ToString();
}

TEST(JsonPathTest, LooksUpDottedKeysAndIndexes) {
  nlohmann::json doc = nlohmann::json::parse(
      R"({"data":{"items":[{"id":7},{"id":"x","tags":["a","b"]}],"ok":true,"none":null},
          "version":"v2","n":1.5})");
  auto text = [&](std::string_view path) -> std::string {
    std::optional<nlohmann::json> v = LookupJsonPath(doc, path);
    return v ? JsonValueText(*v) : "<missing>";
  };
  EXPECT_EQ(text("version"), "v2");
  EXPECT_EQ(text("data.items[0].id"), "7");
  EXPECT_EQ(text("data.items[1].id"), "x");
  EXPECT_EQ(text("data.items[1].tags[1]"), "b");
  EXPECT_EQ(text("data.ok"), "true");
  EXPECT_EQ(text("data.none"), "null");
  EXPECT_EQ(text("n"), "1.5");
  EXPECT_EQ(text("data.items[2].id"), "<missing>");
  EXPECT_EQ(text("data.missing"), "<missing>");
  EXPECT_EQ(text("version.x"), "<missing>");
  EXPECT_EQ(text("data[0]"), "<missing>");
  nlohmann::json array = nlohmann::json::parse(R"([{"name":"first"}])");
  std::optional<nlohmann::json> first = LookupJsonPath(array, "[0].name");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(JsonValueText(*first), "first");
  for (std::string_view bad : {"", ".a", "a.", "a..b", "a[", "a[]", "a[x]", "a[0]b", "a]"}) {
    EXPECT_FALSE(ValidateJsonPath(bad).ok()) << bad;
    EXPECT_FALSE(LookupJsonPath(doc, bad).has_value()) << bad;
  }
  EXPECT_TRUE(ValidateJsonPath("data.items[0].id").ok());
}

TEST(DeploymentSpecTest, DecodeRefusesMalformedJsonWithoutThrowing) {
  EXPECT_EQ(DecodeSpec("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSpec("{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSpec("[1,2]").status().code(), StatusCode::kInvalidArgument);
}

TEST(DeploymentSpecTest, CanaryFieldsRoundTripAndOldSpecsAreBlueGreen) {
  DeploymentSpec s = Valid();
  s.strategy = "canary";
  s.canary_steps = {CanaryStep{500, Millis(300000)}, CanaryStep{2500, Millis(600000)}};
  s.analysis_interval = Millis(250);
  ASSERT_TRUE(ValidateDeploymentSpec(s).ok()) << ValidateDeploymentSpec(s).ToString();
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  EXPECT_EQ(back->strategy, "canary");
  ASSERT_EQ(back->canary_steps.size(), 2u);
  EXPECT_EQ(back->canary_steps[1].weight_bp, 2500u);
  EXPECT_EQ(back->canary_steps[1].duration, Millis(600000));
  EXPECT_EQ(back->analysis_interval, Millis(250));

  // A spec saved before the canary existed is a blue/green one.
  nlohmann::json old = nlohmann::json::parse(EncodeSpec(Valid()));
  old.erase("strategy");
  old.erase("canary_steps");
  old.erase("analysis_interval_ms");
  Result<DeploymentSpec> decoded = DecodeSpec(old.dump());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->strategy, "blue_green");
  EXPECT_TRUE(decoded->canary_steps.empty());
  EXPECT_EQ(decoded->analysis_interval, Millis(1000));

  nlohmann::json bad = nlohmann::json::parse(EncodeSpec(s));
  bad["canary_steps"][0] = {{"weight_bp", "five"}};
  EXPECT_EQ(DecodeSpec(bad.dump()).status().code(), StatusCode::kInvalidArgument);
}

TEST(InstanceSpecForTest, CarriesHowTheInstanceRunsAndWhere) {
  DeploymentSpec d;
  d.service = "shop";
  d.version = "2.0";
  d.command = "./app --port {port}";
  d.working_dir = "/srv/shop";
  d.env = {{"MODE", "prod"}};
  d.stop_signal = SIGINT;
  d.grace = std::chrono::seconds(3);
  d.log_dir = "/srv/shop/logs";
  platform::InstanceSpec s = InstanceSpecFor(d, "green", 1, 20001);
  EXPECT_EQ(s.service, "shop");
  EXPECT_EQ(s.version, "2.0");
  EXPECT_EQ(s.slot, "green");
  EXPECT_EQ(s.instance, 1);
  EXPECT_EQ(s.port, 20001);
  EXPECT_EQ(s.command, d.command);
  EXPECT_EQ(s.working_dir, d.working_dir);
  EXPECT_EQ(s.env, d.env);
  EXPECT_EQ(s.stop_signal, SIGINT);
  EXPECT_EQ(s.grace, std::chrono::seconds(3));
  EXPECT_EQ(s.log_dir, d.log_dir);
  EXPECT_TRUE(platform::ValidateSpec(s).ok());
}

TEST(DeploymentSpecTest, ContainerSpecsNeedNoCommandAndKeepTheirImage) {
  DeploymentSpec d;
  d.service = "shop";
  d.version = "2.0";
  d.platform = "container";
  d.image = "sha256:abcd";
  d.platform_hash = "00ff";
  d.command = "";
  EXPECT_TRUE(ValidateDeploymentSpec(d).ok());
  d.platform = "process";
  EXPECT_EQ(ValidateDeploymentSpec(d).message(), "command: must not be empty");
  d.platform = "vm";
  EXPECT_EQ(ValidateDeploymentSpec(d).code(), StatusCode::kInvalidArgument);
  d.platform = "container";
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(d));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->platform, "container");
  EXPECT_EQ(back->image, "sha256:abcd");
  EXPECT_EQ(back->platform_hash, "00ff");
  platform::InstanceSpec s = InstanceSpecFor(*back, "blue", 0, 20001);
  EXPECT_EQ(s.image, "sha256:abcd");
  EXPECT_EQ(s.platform_hash, "00ff");
  // The platform's options are part of the spec hash; a process spec's text has none of them.
  platform::InstanceSpec other = s;
  other.platform_hash = "00fe";
  EXPECT_NE(platform::SpecHash(s), platform::SpecHash(other));
  DeploymentSpec process;
  process.service = "shop";
  process.version = "1";
  process.command = "./app {port}";
  EXPECT_EQ(EncodeSpec(process).find("image"), std::string::npos);
  EXPECT_EQ(EncodeSpec(process).find("platform"), std::string::npos);
}

}  // namespace
}  // namespace turnout::controller

namespace turnout::controller {
namespace {

TEST(DeploymentSpecTest, VerifyChecksRoundTripAndAreValidated) {
  DeploymentSpec s;
  s.service = "shop";
  s.version = "v1";
  s.command = "./server {port}";
  VerifyCheck command;
  command.name = "functional";
  command.kind = VerifyCheck::Kind::kCommand;
  command.command = "./e2e {url}";
  command.timeout = Millis(30000);
  VerifyCheck perf;
  perf.name = "latency";
  perf.kind = VerifyCheck::Kind::kPerformance;
  perf.requests = 1000;
  perf.concurrency = 8;
  perf.paths = {{"GET", "/", 3}, {"POST", "/api", 1}};
  perf.tolerance_p95 = 0.1;
  perf.tolerance_min = Millis(2);
  s.verify = {command, perf};
  ASSERT_TRUE(ValidateDeploymentSpec(s).ok());
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  ASSERT_EQ(back->verify.size(), 2u);
  EXPECT_EQ(back->verify[0].command, "./e2e {url}");
  EXPECT_EQ(back->verify[0].timeout, Millis(30000));
  EXPECT_EQ(back->verify[1].paths[1].method, "POST");
  EXPECT_EQ(back->verify[1].tolerance_p95, 0.1);
  EXPECT_EQ(back->verify[1].tolerance_min, Millis(2));
  EXPECT_EQ(MixHash(back->verify[1]), MixHash(perf));

  DeploymentSpec bad = s;
  bad.verify[1].concurrency = 65;
  EXPECT_EQ(ValidateDeploymentSpec(bad).message(), "verify: 'latency': concurrency must be 1..64");
  bad = s;
  bad.verify[1].paths.clear();
  EXPECT_EQ(ValidateDeploymentSpec(bad).message(), "verify: 'latency': needs at least one path");
  bad = s;
  bad.verify[1].name = "functional";
  EXPECT_EQ(ValidateDeploymentSpec(bad).message(), "verify: the name 'functional' is used twice");
}

TEST(VerifyTest, TheMixIsInterleavedByWeightAndTheSameEveryTime) {
  const std::vector<VerifyPath> paths = {{"GET", "/a", 3}, {"GET", "/b", 1}};
  std::string order;
  for (int i = 0; i < 8; ++i) order += paths[PathForRequest(paths, i)].path.substr(1);
  EXPECT_EQ(order,
            "aaba"
            "aaba");
  EXPECT_EQ(PathForRequest({{"GET", "/", 1}}, 12345), 0u);
}

TEST(VerifyTest, MixHashNamesWhatIsMeasuredNotHowItIsJudged) {
  VerifyCheck a;
  a.kind = VerifyCheck::Kind::kPerformance;
  a.paths = {{"GET", "/", 1}};
  VerifyCheck b = a;
  b.tolerance_p95 = 0.9;
  b.timeout = Millis(1);
  b.name = "other";
  EXPECT_EQ(MixHash(a), MixHash(b));
  b.concurrency = 5;
  EXPECT_NE(MixHash(a), MixHash(b));
  b = a;
  b.paths[0].method = "HEAD";
  EXPECT_NE(MixHash(a), MixHash(b));
}

TEST(VerifyTest, PercentilesAreNearestRank) {
  std::vector<double> ms;
  for (int i = 1; i <= 100; ++i) ms.push_back(i);
  EXPECT_EQ(Percentile(ms, 50), 50);
  EXPECT_EQ(Percentile(ms, 95), 95);
  EXPECT_EQ(Percentile(ms, 99), 99);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(VerifyTest, APercentileFailsOnlyAboveBothItsToleranceAndTheMinimum) {
  VerifyCheck c;  // tolerances 20 %, 25 %, 50 %, min 5 ms
  PerformanceResult base;
  base.count = 100;
  base.p50_ms = 2;
  base.p95_ms = 20.1;
  base.p99_ms = 30;
  const Baseline baseline{4, base};
  PerformanceResult now = base;
  EXPECT_EQ(JudgePerformance(c, now, baseline), std::nullopt);
  now.p50_ms = 6.9;  // +245 %, but only 4.9 ms slower: noise
  EXPECT_EQ(JudgePerformance(c, now, baseline), std::nullopt);
  now.p95_ms = 41;
  EXPECT_EQ(JudgePerformance(c, now, baseline), "p95 41.0 ms > baseline 20.1 ms +25% (revision 4)");
  now.p50_ms = 7.5;
  EXPECT_EQ(JudgePerformance(c, now, baseline), "p50 7.5 ms > baseline 2.0 ms +20% (revision 4)");
  // Without a baseline only errors and timeouts fail.
  EXPECT_EQ(JudgePerformance(c, now, std::nullopt), std::nullopt);
  now.timed_out = true;
  now.count = 40;
  EXPECT_EQ(JudgePerformance(c, now, std::nullopt), "timed out after 40 of 500 requests");
  now.errors = 2;
  now.first_error = "Unavailable: refused";
  EXPECT_EQ(JudgePerformance(c, now, std::nullopt),
            "2 of 40 requests failed (first: Unavailable: refused)");
}

TEST(VerifyTest, TheResultRoundTripsThroughItsJson) {
  PerformanceResult r;
  r.count = 500;
  r.errors = 1;
  r.p50_ms = 1.5;
  r.p95_ms = 2.5;
  r.p99_ms = 9.25;
  r.duration = Millis(1234);
  r.first_error = "503";
  std::optional<PerformanceResult> back = PerformanceFromJson(PerformanceToJson(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(PerformanceToJson(*back), PerformanceToJson(r));
  EXPECT_FALSE(PerformanceFromJson(nlohmann::json::object()).has_value());
  EXPECT_FALSE(PerformanceFromJson(nlohmann::json("text")).has_value());
}

}  // namespace
}  // namespace turnout::controller
