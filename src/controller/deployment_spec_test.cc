#include "controller/deployment_spec.h"

#include <gtest/gtest.h>

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
  s.bake_time = Millis(1234);
  s.scale_down_delay = Millis(5678);
  s.started_by = "alice";
  s.reason = "because \"quoted\"";
  Result<DeploymentSpec> back = DecodeSpec(EncodeSpec(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeSpec(*back), EncodeSpec(s));
  EXPECT_EQ(back->env, s.env);
  EXPECT_EQ(back->smoke_checks.size(), 2u);
  EXPECT_EQ(back->smoke_checks[0].expected_status, 201);
  EXPECT_EQ(back->scale_down_delay, Millis(5678));
}

TEST(DeploymentSpecTest, DecodeRefusesMalformedJsonWithoutThrowing) {
  EXPECT_EQ(DecodeSpec("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSpec("{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSpec("[1,2]").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnout::controller
