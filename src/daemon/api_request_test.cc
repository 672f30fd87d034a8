#include "daemon/api_request.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace turnout::daemon {
namespace {

api::Request Post(std::string path, std::string body, std::string peer = "unix") {
  api::Request r;
  r.method = "POST";
  r.target = path;
  r.path = std::move(path);
  r.body = std::move(body);
  r.peer = std::move(peer);
  return r;
}

TEST(ParseApiCommandTest, ReadsTheFieldsOfEachEndpoint) {
  Result<ApiCommand> deploy =
      ParseApiCommand(Post("/v1/deploy", R"({"version":"1.2.3","reason":"fix","actor":"ann"})"));
  ASSERT_TRUE(deploy.ok()) << deploy.status().ToString();
  EXPECT_EQ(deploy->version, "1.2.3");
  EXPECT_EQ(deploy->reason, "fix");
  EXPECT_EQ(deploy->actor, "ann");

  Result<ApiCommand> rollback = ParseApiCommand(Post("/v1/rollback", R"({"to_revision":4})"));
  ASSERT_TRUE(rollback.ok());
  EXPECT_EQ(rollback->to_revision, 4);
  Result<ApiCommand> previous = ParseApiCommand(Post("/v1/rollback", R"({"to_revision":null})"));
  ASSERT_TRUE(previous.ok());
  EXPECT_FALSE(previous->to_revision.has_value());
  EXPECT_FALSE(previous->confirm_data_loss);
  EXPECT_FALSE(previous->confirm_unsupported_schema);
  Result<ApiCommand> confirmed = ParseApiCommand(
      Post("/v1/rollback", R"({"confirm_data_loss":true,"confirm_unsupported_schema":true})"));
  ASSERT_TRUE(confirmed.ok());
  EXPECT_TRUE(confirmed->confirm_data_loss);
  EXPECT_TRUE(confirmed->confirm_unsupported_schema);
  EXPECT_FALSE(ParseApiCommand(Post("/v1/rollback", R"({"confirm_data_loss":"yes"})")).ok());

  Result<ApiCommand> sw = ParseApiCommand(Post("/v1/switch", R"({"slot":"green"})"));
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(sw->slot, "green");

  Result<ApiCommand> promote = ParseApiCommand(Post("/v1/promote", R"({"full":true})"));
  ASSERT_TRUE(promote.ok());
  EXPECT_TRUE(promote->full);
}

TEST(ParseApiCommandTest, RestartScaleAndEnvReadTheirFields) {
  Result<ApiCommand> restart =
      ParseApiCommand(Post("/v1/restart", R"({"reason":"secret rotated"})"));
  ASSERT_TRUE(restart.ok()) << restart.status().ToString();
  EXPECT_EQ(restart->reason, "secret rotated");

  Result<ApiCommand> scale = ParseApiCommand(Post("/v1/scale", R"({"replicas":5,"reason":"p95"})"));
  ASSERT_TRUE(scale.ok()) << scale.status().ToString();
  EXPECT_EQ(scale->replicas, 5);
  EXPECT_EQ(scale->reason, "p95");
  EXPECT_TRUE(ParseApiCommand(Post("/v1/scale", R"({"replicas":1})")).ok());
  EXPECT_TRUE(ParseApiCommand(Post("/v1/scale", R"({"replicas":64})")).ok());
  for (const char* bad : {R"({})", R"({"replicas":0})", R"({"replicas":65})", R"({"replicas":"3"})",
                          R"({"replicas":2.5})", R"({"replicas":null})"}) {
    Result<ApiCommand> r = ParseApiCommand(Post("/v1/scale", bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("\"replicas\""), std::string::npos) << r.status().message();
  }

  Result<ApiCommand> env = ParseApiCommand(
      Post("/v1/env", R"({"set":{"POOL":"20","B_2":""},"unset":["OLD"],"reason":"pool"})"));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->env_set,
            (std::vector<std::pair<std::string, std::string>>{{"B_2", ""}, {"POOL", "20"}}));
  EXPECT_EQ(env->env_unset, std::vector<std::string>{"OLD"});
  EXPECT_EQ(env->reason, "pool");
  EXPECT_TRUE(ParseApiCommand(Post("/v1/env", R"({"unset":["A"]})")).ok());
  for (const char* bad :
       {R"({})", R"({"set":{}})", R"({"set":[]})", R"({"set":{"A":1}})", R"({"set":{"1A":"x"}})",
        R"({"set":{"A-B":"x"}})", R"({"set":{"":"x"}})", R"({"unset":"A"})", R"({"unset":[1]})",
        R"({"unset":["A=B"]})", R"({"set":{"A":"x"},"unset":["A"]})"}) {
    EXPECT_FALSE(ParseApiCommand(Post("/v1/env", bad)).ok()) << bad;
  }
  // A value is never echoed in an error (it may be a secret).
  Result<ApiCommand> clash =
      ParseApiCommand(Post("/v1/env", R"({"set":{"TOKEN":"s3cr3t"},"unset":["TOKEN"]})"));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().message().find("s3cr3t"), std::string::npos);
  EXPECT_NE(clash.status().message().find("TOKEN"), std::string::npos);
}

TEST(ParseApiCommandTest, ActorDefaultsByPeerAndEmptyBodyIsAnEmptyObject) {
  Result<ApiCommand> unix_peer = ParseApiCommand(Post("/v1/stop-instances", ""));
  ASSERT_TRUE(unix_peer.ok());
  EXPECT_EQ(unix_peer->actor, "cli");
  Result<ApiCommand> tcp_peer =
      ParseApiCommand(Post("/v1/stop-instances", R"({"actor":7})", "127.0.0.1:5555"));
  ASSERT_TRUE(tcp_peer.ok());
  EXPECT_EQ(tcp_peer->actor, "api") << "a non-string actor counts as absent";
  Result<ApiCommand> promote = ParseApiCommand(Post("/v1/promote", ""));
  ASSERT_TRUE(promote.ok());
  EXPECT_FALSE(promote->full);
}

TEST(ParseApiCommandTest, RefusesBodiesThatAreNotObjectsAndMissingOrWrongFields) {
  for (const char* body : {"[1]", "\"x\"", "{", "nul", "{\"a\":1}x"}) {
    Result<ApiCommand> c = ParseApiCommand(Post("/v1/abort", body));
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(c.status().message(), "the request body must be a JSON object") << body;
  }
  EXPECT_EQ(ParseApiCommand(Post("/v1/deploy", R"({"version":""})")).status().message(),
            "\"version\" is required");
  EXPECT_EQ(ParseApiCommand(Post("/v1/deploy", R"({"version":12})")).status().message(),
            "\"version\" is required");
  EXPECT_EQ(ParseApiCommand(Post("/v1/switch", "{}")).status().message(), "\"slot\" is required");
  for (const char* body : {R"({"to_revision":0})", R"({"to_revision":"3"})",
                           R"({"to_revision":2.5})", R"({"to_revision":18446744073709551615})"}) {
    Result<ApiCommand> c = ParseApiCommand(Post("/v1/rollback", body));
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << body;
  }
}

// {"full":"yes"} made nlohmann's value() throw type_error out of the daemon's handler, which the
// API server turned into a 500 instead of telling the caller what to send.
TEST(ParseApiCommandTest, NonBooleanFullIsAnInvalidArgumentNotAnException) {
  for (const char* body : {R"({"full":"yes"})", R"({"full":1})", R"({"full":[true]})"}) {
    Result<ApiCommand> c = ParseApiCommand(Post("/v1/promote", body));
    ASSERT_FALSE(c.ok()) << body;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(c.status().message(), "\"full\" must be true or false") << body;
  }
  Result<ApiCommand> null_full = ParseApiCommand(Post("/v1/promote", R"({"full":null})"));
  ASSERT_TRUE(null_full.ok()) << "null is the default, as for to_revision";
  EXPECT_FALSE(null_full->full);
  // Endpoints that do not use "full" ignore it.
  EXPECT_TRUE(ParseApiCommand(Post("/v1/pause", R"({"full":"yes"})")).ok());
}

TEST(ParseApiCommandTest, StopInstancesReadsWhetherToStopTheRouter) {
  api::Request r;
  r.method = "POST";
  r.path = "/v1/stop-instances";
  r.body = R"({"router": true})";
  Result<ApiCommand> c = ParseApiCommand(r);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->router);
  r.body = R"({"router": "yes"})";
  EXPECT_EQ(ParseApiCommand(r).status().code(), StatusCode::kInvalidArgument);
  r.body = "{}";
  ASSERT_TRUE(ParseApiCommand(r).ok());
  EXPECT_FALSE(ParseApiCommand(r)->router);
}

TEST(ParseApiCommandTest, MaintenanceNeedsEnabledTrueOrFalse) {
  Result<ApiCommand> on =
      ParseApiCommand(Post("/v1/maintenance", R"({"enabled":true,"reason":"schema change"})"));
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->enabled);
  EXPECT_EQ(on->reason, "schema change");
  Result<ApiCommand> off = ParseApiCommand(Post("/v1/maintenance", R"({"enabled":false})"));
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled);
  for (const char* body : {"{}", R"({"enabled":"on"})", R"({"enabled":null})"}) {
    Result<ApiCommand> bad = ParseApiCommand(Post("/v1/maintenance", body));
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_EQ(bad.status().message(),
              "\"enabled\" is required: true (maintenance on) or false (off)");
  }
}

TEST(ParseApiCommandTest, AnAuditAcknowledgementNeedsAReason) {
  api::Request r;
  r.method = "POST";
  r.path = "/v1/audit/acknowledge";
  r.body = "{}";
  EXPECT_EQ(ParseApiCommand(r).status().code(), StatusCode::kInvalidArgument);
  r.body = R"({"reason": "restored from backup"})";
  Result<ApiCommand> c = ParseApiCommand(r);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->reason, "restored from backup");
}

}  // namespace
TEST(ParseApiCommandTest, PruneReadsDryRun) {
  Result<ApiCommand> dry = ParseApiCommand(Post("/v1/prune", R"({"dry_run":true})"));
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_TRUE(dry->dry_run);
  Result<ApiCommand> real = ParseApiCommand(Post("/v1/prune", ""));
  ASSERT_TRUE(real.ok());
  EXPECT_FALSE(real->dry_run) << "an empty body prunes";
  Result<ApiCommand> bad = ParseApiCommand(Post("/v1/prune", R"({"dry_run":"yes"})"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "\"dry_run\" must be true or false");
}

TEST(ParseApiCommandTest, SecretsRotateAndDropPreviousReadTheirFieldsNeverEchoingAValue) {
  Result<ApiCommand> given = ParseApiCommand(
      Post("/v1/secrets/rotate",
           R"({"name":"JWT_KEY","value":"n3w-s3cret","overlap_ms":3600000,"reason":"90 days"})"));
  ASSERT_TRUE(given.ok()) << given.status().ToString();
  EXPECT_EQ(given->secret_name, "JWT_KEY");
  EXPECT_EQ(given->secret_value, "n3w-s3cret");
  EXPECT_EQ(given->overlap_ms, 3600000);
  EXPECT_EQ(given->reason, "90 days");
  Result<ApiCommand> made = ParseApiCommand(Post("/v1/secrets/rotate", R"({"name":"JWT_KEY"})"));
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(made->secret_value.empty()) << "no value: turnoutd generates one";
  EXPECT_EQ(made->overlap_ms, kDefaultSecretOverlapMs);
  for (const char* bad :
       {R"({})", R"({"name":"TURNOUT_X"})", R"({"name":"A","value":5})",
        R"({"name":"A","value":""})", R"({"name":"A","value":"n3w-s3cret","generate":true})",
        R"({"name":"A","overlap_ms":-1})", R"({"name":"A","overlap_ms":"1h"})"}) {
    Result<ApiCommand> c = ParseApiCommand(Post("/v1/secrets/rotate", bad));
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().message().find("n3w-s3cret"), std::string::npos) << bad;
  }
  Result<ApiCommand> drop =
      ParseApiCommand(Post("/v1/secrets/drop-previous", R"({"name":"JWT_KEY"})"));
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(drop->secret_name, "JWT_KEY");
  EXPECT_FALSE(ParseApiCommand(Post("/v1/secrets/drop-previous", "{}")).ok());
}

}  // namespace turnout::daemon
