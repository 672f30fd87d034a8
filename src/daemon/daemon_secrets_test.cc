// turnout.yaml's secrets through the real turnoutd, CLI, router and demo app (docs/daemon.md,
// "Secrets and their rotation"; docs/SECURITY.md, "Secrets"): every kind of source, a rotation
// with its overlap, drop-previous by hand and by the overlap's end after a kill -9 of turnoutd,
// a rollback; the values must reach the instances and nothing else. Each value is a unique
// canary string searched for in every output: the CLI's (human and --json), every API reply,
// history, the audit log, the events, webhook payloads, turnoutd's log, and every file of the
// state directory outside secrets/ (the state store's bytes, the router's and instances' logs).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/secret.h"
#include "daemon/daemon_test_fixture.h"
#include "router/testing/test_upstream.h"

namespace turnout::daemon {
namespace {

std::string ReadAllOf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class DaemonSecretsTest : public DaemonTest {
 protected:
  // Everything the test saw come out of turnout, with where it came from.
  std::vector<std::pair<std::string, std::string>> outputs_;

  std::pair<int, json> Api(const std::string& method, const std::string& target,
                           const json& body = nullptr) {
    auto [status, reply] = Call(method, target, body);
    outputs_.emplace_back(method + " " + target, reply.dump());
    return {status, reply};
  }

  // Runs `turnout ARGS --config ...`; returns its exit code, records stdout and stderr.
  int Cli(std::vector<std::string> args, std::string* out = nullptr) {
    std::vector<std::string> argv = {TURNOUT_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--config");
    argv.push_back(dir_ + "/turnout.yaml");
    auto p = ChildProcess::Start(argv, {}, /*stderr_too=*/true);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return -1;
    Result<std::string> text = p->ReadAll(milliseconds(90000));
    Result<int> status = p->Wait(milliseconds(10000));
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    outputs_.emplace_back("turnout" + joined, text.ok() ? *text : "");
    if (out) *out = text.ok() ? *text : "";
    return status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  // The serving slot's single instance's pid.
  int64_t ServingPid() {
    auto [s, st] = Call("GET", "/v1/status");
    std::vector<int64_t> pids = RunningPids(st["active"].value("slot", ""));
    EXPECT_EQ(pids.size(), 1u) << st.dump();
    return pids.empty() ? 0 : pids[0];
  }

  std::optional<std::string> ServingEnv(const std::string& name) {
    const int64_t pid = ServingPid();
    if (pid == 0) return std::nullopt;
    return EnvOf(pid, name);
  }

  // The newest deployment's id.
  int64_t Newest() {
    auto [s, list] = Call("GET", "/v1/deployments?limit=1");
    if (!list["deployments"].is_array() || list["deployments"].empty()) return 0;
    return list["deployments"][0].value("id", int64_t{0});
  }
};

TEST_F(DaemonSecretsTest, ValuesReachTheInstancesAndNoOutputEverContainsThem) {
  auto receiver = router::testing::TestUpstream::Start("hooks");
  ASSERT_TRUE(receiver.ok()) << receiver.status().ToString();
  // Canaries: unique values for every kind of source.
  const std::string tag =
      std::to_string(::getpid()) + "x" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::string from_file = "canary-file-" + tag;
  const std::string from_env = "canary-env-" + tag;
  const std::string rotated = "canary-rotated-" + tag;
  std::ofstream(dir_ + "/db.password") << from_file << "\n";
  ::chmod((dir_ + "/db.password").c_str(), 0600);
  std::ofstream(dir_ + "/new.jwt") << rotated << "\n";
  ::chmod((dir_ + "/new.jwt").c_str(), 0600);
  WriteConfig(
      "secrets:\n"
      "  DB_PASSWORD: {from_file: db.password, as: file}\n"
      "  STRIPE_KEY: {from_env: TEST_STRIPE_KEY}\n"
      "  JWT_KEY: {generate: hex32}\n"
      "hooks:\n"
      "  - on: \"*\"\n"
      "    webhook: {url: \"http://" +
      (*receiver)->address() + "/hook\", retries: 0, timeout: 2s}\n");
  const std::vector<std::string> env = {"TEST_STRIPE_KEY=" + from_env};
  std::string daemon_log;
  StartDaemon(env, /*capture_log=*/true);

  // 1. Deploy: every source's value arrives.
  json v1 = WaitFinished(Deploy("v1"));
  ASSERT_EQ(State(v1), "succeeded") << v1.dump();
  EXPECT_EQ(ServingEnv("STRIPE_KEY"), from_env);
  EXPECT_EQ(ServingEnv("DB_PASSWORD"), std::nullopt) << "as: file: only the path is given";
  const std::optional<std::string> path = ServingEnv("DB_PASSWORD_FILE");
  ASSERT_TRUE(path);
  EXPECT_EQ(ReadAllOf(*path), from_file);
  struct stat st {};
  ASSERT_EQ(::stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  const std::optional<std::string> generated = ServingEnv("JWT_KEY");
  ASSERT_TRUE(generated);
  EXPECT_EQ(generated->size(), 64u) << "generate: hex32";
  EXPECT_EQ(ServingEnv("JWT_KEY_PREVIOUS"), std::nullopt);

  // An instance that dies is relaunched by the supervisor with its secrets read again.
  const int64_t crashed = ServingPid();
  ASSERT_GT(crashed, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(crashed), SIGKILL), 0);
  int64_t relaunched = 0;
  for (auto until = std::chrono::steady_clock::now() + seconds(20);
       std::chrono::steady_clock::now() < until;) {
    auto [s, st] = Call("GET", "/v1/status");
    std::vector<int64_t> pids = RunningPids(st["active"].value("slot", ""));
    if (pids.size() == 1 && pids[0] != crashed) {
      relaunched = pids[0];
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_GT(relaunched, 0) << "the serving instance was not relaunched";
  EXPECT_EQ(EnvOf(relaunched, "JWT_KEY"), *generated);
  EXPECT_EQ(EnvOf(relaunched, "STRIPE_KEY"), from_env);

  // 2. Rotate JWT_KEY with a value from a file: the new one in JWT_KEY, the old in
  // JWT_KEY_PREVIOUS for the overlap.
  std::string out;
  ASSERT_EQ(Cli({"secrets", "rotate", "JWT_KEY", "--value-from-file", dir_ + "/new.jwt",
                 "--overlap", "1h", "--wait", "--reason", "90-day rotation"},
                &out),
            0)
      << out;
  EXPECT_EQ(ServingEnv("JWT_KEY"), rotated);
  EXPECT_EQ(ServingEnv("JWT_KEY_PREVIOUS"), *generated);
  EXPECT_EQ(ServingEnv("STRIPE_KEY"), from_env) << "the other secrets stay";
  const int64_t rotation = Newest();
  auto [hs, rotation_record] = Api("GET", "/v1/deployments/" + std::to_string(rotation));
  const json change = rotation_record["deployment"]["change"];
  EXPECT_EQ(change.value("kind", ""), "secrets") << rotation_record.dump();
  EXPECT_EQ(change.value("secret", ""), "JWT_KEY");
  EXPECT_EQ(change.value("fingerprint", "").rfind("hmac-sha256:", 0), 0u) << change.dump();
  EXPECT_NE(change.value("fingerprint", ""), change.value("previous_fingerprint", ""));
  EXPECT_NE(rotation_record["deployment"]["config_hash"], v1["deployment"]["config_hash"]);
  ASSERT_EQ(Cli({"secrets", "list"}, &out), 0) << out;
  EXPECT_NE(out.find("JWT_KEY"), std::string::npos) << out;
  EXPECT_NE(out.find(change.value("fingerprint", "?")), std::string::npos) << out;
  EXPECT_NE(out.find("live until"), std::string::npos) << out;
  ASSERT_EQ(Cli({"secrets", "list", "--json"}, &out), 0) << out;
  json listed = json::parse(out, nullptr, false);
  ASSERT_TRUE(listed.is_object()) << out;
  for (const auto& s : listed["secrets"]) {
    if (s["name"] == "JWT_KEY") {
      EXPECT_EQ(s["generation"], 2);
      EXPECT_TRUE(s["previous"].is_object()) << s.dump();
    }
    if (s["name"] == "DB_PASSWORD") {
      EXPECT_EQ(s["source"], "file");
    }
  }
  // A second rotation while JWT_KEY_PREVIOUS is live would drop a key tokens still use.
  auto [again_status, again] = Api("POST", "/v1/secrets/rotate", {{"name", "JWT_KEY"}});
  EXPECT_EQ(again_status, 409) << again.dump();

  // `set env` does not reach a secret's variables, nor echo the value it was given.
  auto [es, env_change] = Api("POST", "/v1/env", {{"set", {{"JWT_KEY_PREVIOUS", rotated}}}});
  EXPECT_EQ(es, 409) << env_change.dump();
  EXPECT_NE(env_change.dump().find("secrets rotate JWT_KEY"), std::string::npos)
      << env_change.dump();

  // 3. Drop the previous value by hand.
  ASSERT_EQ(Cli({"secrets", "drop-previous", "JWT_KEY", "--wait"}, &out), 0) << out;
  EXPECT_EQ(ServingEnv("JWT_KEY"), rotated);
  EXPECT_EQ(ServingEnv("JWT_KEY_PREVIOUS"), std::nullopt);
  // Rotating to the value it has changes nothing: refused, without the value in the answer.
  auto [ss, same] = Api("POST", "/v1/secrets/rotate", {{"name", "JWT_KEY"}, {"value", rotated}});
  EXPECT_EQ(ss, 409) << same.dump();

  // 4. A rollback to the revision before the rotation restores the value before it (once the
  // drop's old slot was stopped: `--wait` returns when traffic moved).
  ASSERT_EQ(State(WaitFinished(Newest())), "succeeded");
  ASSERT_EQ(Cli({"rollback", "--to", "1", "--wait"}, &out), 0) << out;
  EXPECT_EQ(ServingEnv("JWT_KEY"), *generated);
  EXPECT_EQ(ServingEnv("JWT_KEY_PREVIOUS"), std::nullopt);

  // 5. A generated rotation with a short overlap, then kill -9 of turnoutd: the restarted one
  // still drops STRIPE_KEY_PREVIOUS once the overlap ends.
  ASSERT_EQ(State(WaitFinished(Newest())), "succeeded");
  auto [rs, rotate] =
      Api("POST", "/v1/secrets/rotate", {{"name", "STRIPE_KEY"}, {"overlap_ms", 4000}});
  ASSERT_EQ(rs, 201) << rotate.dump();
  ASSERT_EQ(State(WaitFinished(rotate["deployment"].value("id", int64_t{0}))), "succeeded");
  const std::optional<std::string> stripe_new = ServingEnv("STRIPE_KEY");
  ASSERT_TRUE(stripe_new);
  EXPECT_NE(*stripe_new, from_env);
  EXPECT_EQ(ServingEnv("STRIPE_KEY_PREVIOUS"), from_env);
  const int64_t stripe_rotation = Newest();
  daemon_log += DaemonOutput();
  KillDaemon();
  StartDaemon(env, /*capture_log=*/true);
  int64_t dropped = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(40);
  while (std::chrono::steady_clock::now() < deadline) {
    const int64_t newest = Newest();
    if (newest > stripe_rotation) {
      dropped = newest;
      break;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_GT(dropped, 0) << "no revision dropped STRIPE_KEY_PREVIOUS after the overlap";
  json drop = WaitFinished(dropped, milliseconds(60000));
  ASSERT_EQ(State(drop), "succeeded") << drop.dump();
  EXPECT_EQ(drop["deployment"]["change"].value("action", ""), "drop_previous") << drop.dump();
  EXPECT_EQ(drop["deployment"].value("started_by", ""), "turnoutd") << drop.dump();
  EXPECT_EQ(ServingEnv("STRIPE_KEY"), *stripe_new);
  EXPECT_EQ(ServingEnv("STRIPE_KEY_PREVIOUS"), std::nullopt);

  // 6. A source readable by others is refused, naming the file, never the value.
  ::chmod((dir_ + "/db.password").c_str(), 0644);
  auto [ws, wide] = Api("POST", "/v1/deploy", {{"version", "v2"}});
  EXPECT_EQ(ws, 409) << wide.dump();
  EXPECT_NE(wide.dump().find("db.password"), std::string::npos) << wide.dump();
  EXPECT_NE(wide.dump().find("chmod 600"), std::string::npos) << wide.dump();

  // Every output turnout made, searched for every value.
  for (const char* target : {"/v1/status", "/v1/deployments?limit=100", "/v1/audit?limit=100000",
                             "/v1/events?limit=100000", "/v1/secrets", "/v1/logs", "/v1/health"}) {
    Api("GET", target);
  }
  for (int64_t id = 1; id <= dropped; ++id) Api("GET", "/v1/deployments/" + std::to_string(id));
  for (const char* cmd : {"history", "status", "audit", "events"}) {
    Cli({cmd});
    Cli({cmd, "--json"});
  }
  Cli({"history", std::to_string(rotation)});
  Cli({"secrets", "list"});
  Cli({"secrets", "list", "--json"});
  const auto audit_entries = AuditEntries("secret.rotated");
  EXPECT_EQ(audit_entries.size(), 2u);
  EXPECT_EQ(AuditEntries("secret.previous_dropped").size(), 2u) << "by hand, then by turnoutd";
  ASSERT_TRUE(
      (*receiver)->WaitFor([&] { return (*receiver)->request_count() > 0; }, milliseconds(10000)));
  for (const auto& r : (*receiver)->RecordedRequests()) {
    outputs_.emplace_back("webhook " + r.target, r.raw_head + r.body);
  }
  daemon_log += DaemonOutput();
  outputs_.emplace_back("turnoutd's log", daemon_log);
  EXPECT_NE(daemon_log.find("JWT_KEY"), std::string::npos) << "the log names the secret";
  // Every file of the state directory but the secrets' own.
  const std::string state = dir_ + "/.turnout";
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(state)) {
    if (!entry.is_regular_file()) continue;
    const std::string p = entry.path().string();
    if (p.rfind(state + "/secrets/", 0) == 0) continue;
    outputs_.emplace_back(p, ReadAllOf(p));
    ++files;
  }
  EXPECT_GE(files, 3u) << "state.db, the router's and the instances' logs at least";
  outputs_.emplace_back("turnout.yaml", ReadAllOf(dir_ + "/turnout.yaml"));
  const std::map<std::string, std::string> canaries = {{"from_file", from_file},
                                                       {"from_env", from_env},
                                                       {"generated", *generated},
                                                       {"rotated", rotated},
                                                       {"generated by rotate", *stripe_new}};
  for (const auto& [kind, value] : canaries) {
    for (const auto& [where, text] : outputs_) {
      EXPECT_EQ(text.find(value), std::string::npos)
          << "the " << kind << " secret appears in " << where;
    }
  }
  // The values do live in the secrets' own 0600 files.
  struct stat sd {};
  ASSERT_EQ(::stat((state + "/secrets").c_str(), &sd), 0);
  EXPECT_EQ(sd.st_mode & 0777, 0700u);
  for (const auto& entry : fs::directory_iterator(state + "/secrets")) {
    if (!entry.is_regular_file()) continue;
    struct stat sf {};
    ASSERT_EQ(::stat(entry.path().c_str(), &sf), 0);
    EXPECT_EQ(sf.st_mode & 0777, 0600u) << entry.path();
  }
}

}  // namespace
}  // namespace turnout::daemon
