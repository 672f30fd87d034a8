// The fixture of turnoutd's end-to-end tests (daemon_test, daemon_container_test): the real
// turnoutd binary as a child process, the API over its Unix socket, turnout-load as live traffic,
// the router process it runs (or a standalone one), and helpers that wait for real events with
// deadlines. Each test gets its own directory with its turnout.yaml and state directory.

#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api/api.h"
#include "demo/test_support.h"
#include "platform/process_platform.h"
#include "state/sqlite_state_store.h"
#include "state/test_util.h"

namespace turnout::daemon {

namespace fs = std::filesystem;
using demo::testing::ChildProcess;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline constexpr const char* kService = "demo";
inline constexpr const char* kStandaloneSecret = "standalone-s3cret";
// The standalone router's admin token (its TCP admin API needs one), repeated in turnout.yaml.
inline constexpr char kStandaloneToken[] = "standalone-admin-token-7c1e";

inline std::string MakeTempDir() {
  std::string tmpl = (fs::temp_directory_path() / "turnoutd-test-XXXXXX").string();
  char* made = ::mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr);
  return tmpl;
}

// The value of `name` in the environment of process `pid` (nullopt: not set).
inline std::optional<std::string> EnvOf(int64_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  }
  return std::nullopt;
}

// Live traffic through the router for the length of a test step.
struct Load {
  std::optional<ChildProcess> process;

  void Start(const std::string& address, int connections = 8) {
    auto p = ChildProcess::Start({TURNOUT_LOAD_BINARY, "--url", "http://" + address + "/",
                                  "--connections", std::to_string(connections), "--duration",
                                  "120s", "--by-header", "X-Version", "--json"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    process.emplace(std::move(p).value());
  }
  // Stops it (SIGINT: requests in flight finish) and returns its JSON result.
  json Finish() {
    if (!process) return json();
    EXPECT_TRUE(process->Signal(SIGINT).ok());
    Result<std::string> out = process->ReadAll(milliseconds(30000));
    EXPECT_TRUE(out.ok());
    process.reset();
    json j = json::parse(out.ok() ? *out : "", nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << (out.ok() ? *out : "");
    return j;
  }
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  void TearDown() override {
    load_.Finish();
    if (daemon_) {
      (void)daemon_->Signal(SIGKILL);
      (void)daemon_->Wait(milliseconds(10000));
      daemon_.reset();
    }
    StopInstances();
    StopRouterProcess();
    if (router_) {
      (void)router_->Signal(SIGTERM);
      (void)router_->Wait(milliseconds(10000));
      router_.reset();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The demo service with fast health checks; `extra` is appended to turnout.yaml.
  void WriteConfig(const std::string& extra = "", const std::string& external = "",
                   const std::string& bake = "1s", bool smoke_home = true) {
    std::ofstream f(dir_ + "/turnout.yaml");
    f << "name: " << kService << "\n"
      << "listen: 127.0.0.1:0\n"
      << "platform:\n"
      << "  command: " << TURNOUT_DEMO_APP_BINARY
      << " --listen 127.0.0.1:{port} --version {version} --slot {slot} --drain-timeout 2s\n"
      << "  ports: auto\n"
      << "  grace_period: 3s\n"
      << "health:\n"
      << "  readiness: {interval: 100ms, timeout: 100ms, healthy_threshold: 1, "
         "unhealthy_threshold: 2}\n"
      << "  liveness: {path: /live, interval: 100ms, timeout: 100ms, unhealthy_threshold: 3}\n"
      << "  ready_deadline: 5s\n"
      << "smoke_tests:\n"
      << (smoke_home ? "  - name: home\n    path: /\n" : "") << "  - name: version\n"
      << "    path: /version\n"
      << "    expect: {json: {version: \"{version}\"}}\n"
      << "bake_time: " << bake << "\n"
      << "scale_down_delay: 1s\n"
      << "router:\n"
      << "  admin: \"\"\n";
    if (!external.empty()) {
      f << "  external: " << external << "\n  override_secret: " << kStandaloneSecret
        << "\n  admin_token: " << kStandaloneToken << "\n";
    }
    f << extra;
  }

  // A standalone router (for the kill -9 tests: traffic must not depend on turnoutd).
  std::string StartStandaloneRouter() {
    std::ofstream f(dir_ + "/router.yaml");
    f << "listen: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\n  token: " << kStandaloneToken
      << "\n"
      << "slots:\n  blue: []\n  green: []\npolicy:\n  active: blue\n"
      << "  override: {header: X-Turnout-Slot, secret: " << kStandaloneSecret << "}\n"
      << "state_file: " << dir_ << "/router-state.json\n"
      << "health:\n  interval: 100ms\n  timeout: 100ms\n  rise: 1\n  fall: 2\n";
    f.close();
    auto p = ChildProcess::Start({TURNOUT_BINARY, "router", "--config", dir_ + "/router.yaml"});
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    router_.emplace(std::move(p).value());
    std::string admin;
    for (int i = 0; i < 10 && admin.empty(); ++i) {
      Result<std::string> line = router_->ReadLine(milliseconds(10000));
      if (!line.ok()) break;
      const std::string key = "admin API on ";
      if (auto at = line->find(key); at != std::string::npos) {
        admin = line->substr(at + key.size());
        admin = admin.substr(0, admin.find(' '));
      }
    }
    EXPECT_FALSE(admin.empty());
    return admin;
  }

  // With `capture_log`, turnoutd's log (stderr) goes to the pipe DaemonOutput() reads.
  void StartDaemon(const std::vector<std::string>& env = {}, bool capture_log = false) {
    auto p = ChildProcess::Start({TURNOUTD_BINARY, "--config", dir_ + "/turnout.yaml"}, env,
                                 capture_log);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    daemon_.emplace(std::move(p).value());
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      api::Client client({"unix:" + Socket(), "", milliseconds(1000)});
      Result<api::Reply> r = client.Call("GET", "/healthz");
      if (r.ok() && r->status == 200) return;
      if (daemon_->Wait(milliseconds(10)).ok()) break;  // it exited
    }
    FAIL() << "turnoutd did not come up";
  }

  // The lines turnoutd wrote so far (StartDaemon with capture_log), read until none comes for
  // 200 ms.
  std::string DaemonOutput() {
    std::string out;
    while (daemon_) {
      Result<std::string> line = daemon_->ReadLine(milliseconds(200));
      if (!line.ok()) break;
      out += *line + "\n";
    }
    return out;
  }

  void KillDaemon() {
    ASSERT_TRUE(daemon_);
    ASSERT_TRUE(daemon_->Signal(SIGKILL).ok());
    ASSERT_TRUE(daemon_->Wait(milliseconds(10000)).ok());
    daemon_.reset();
  }

  // Waits for the daemon to die by itself (a test crash point).
  void ExpectDaemonDies() {
    ASSERT_TRUE(daemon_);
    Result<int> status = daemon_->Wait(milliseconds(30000));
    ASSERT_TRUE(status.ok()) << "turnoutd did not reach its crash point";
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
    daemon_.reset();
  }

  std::string Socket() const { return dir_ + "/.turnout/turnoutd.sock"; }

  std::pair<int, json> Call(const std::string& method, const std::string& target,
                            const json& body = nullptr) {
    api::Client client({"unix:" + Socket(), "", milliseconds(60000)});
    Result<api::Reply> r = client.Call(method, target, body.is_null() ? "" : body.dump());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  int64_t Deploy(const std::string& version) {
    auto [status, body] = Call("POST", "/v1/deploy", {{"version", version}, {"actor", "test"}});
    EXPECT_EQ(status, 201) << body.dump();
    return body["deployment"].value("id", int64_t{0});
  }

  // Polls the deployment until it is finished; returns its final JSON (deployment + history).
  json WaitFinished(int64_t id, milliseconds timeout = milliseconds(30000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto [status, body] = Call("GET", "/v1/deployments/" + std::to_string(id));
      last = body;
      if (status == 200 && body["deployment"].value("finished", false)) return body;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "deployment " << id << " did not finish: " << last.dump();
    return last;
  }

  std::string State(const json& d) { return d["deployment"].value("state", ""); }

  // The finished deployment `done` (WaitFinished) went through `state`.
  static bool Entered(const json& done, const std::string& state) {
    for (const auto& t : done["transitions"]) {
      if (t["to"] == state) return true;
    }
    return false;
  }

  // Polls deployment `id` until it is in `state` (or 20 s passed); returns the last state seen.
  std::string WaitForState(int64_t id, const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    std::string now;
    while (std::chrono::steady_clock::now() < deadline) {
      auto [s, d] = Call("GET", "/v1/deployments/" + std::to_string(id));
      now = State(d);
      if (now == state) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return now;
  }

  // Makes the first instance of `slot` answer its readiness probe with 503 from now on (the
  // demo app's /admin/fault), as a version that lost a dependency of its own would.
  void FailReadinessOf(const std::string& slot) { SetFaultOf(slot, "fail-ready=1"); }

  // Sets a fault (the demo app's POST /admin/fault?QUERY) on the first instance of `slot`.
  void SetFaultOf(const std::string& slot, const std::string& query) {
    auto [ss, status] = Call("GET", "/v1/status");
    std::string address;
    for (const auto& s : status["router"]["slots"]) {
      if (s["name"] == slot) address = s["instances"][0]["address"];
    }
    ASSERT_FALSE(address.empty()) << status.dump();
    auto client = demo::testing::Client::Connect(
        static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client
                    ->Send("POST /admin/fault?" + query +
                           " HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 0\r\nConnection: close\r\n\r\n")
                    .ok());
    ASSERT_TRUE(client->Receive().ok());
  }

  std::string PublicAddress() {
    auto [status, body] = Call("GET", "/v1/status");
    EXPECT_EQ(status, 200);
    return body["router"]["listen"][0].get<std::string>();
  }

  // The version answering GET / through the router.
  std::string ServingVersion(const std::string& address) {
    const uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    auto client = demo::testing::Client::Connect(port);
    if (!client.ok()) return "connect failed";
    if (!client->Send("GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()) {
      return "send failed";
    }
    auto reply = client->Receive();
    if (!reply.ok()) return "no reply";
    return reply->Header("x-version");
  }

  // Stops every instance turnoutd recorded as live (it launched them for this test), with the
  // identity check of the platform.
  void StopInstances() {
    const std::string db = dir_ + "/.turnout/state.db";
    if (!fs::exists(db)) return;
    state::SqliteStateStoreOptions o;
    o.path = db;
    auto store = state::SqliteStateStore::Open(o);
    if (!store.ok()) return;
    auto live = (*store)->ListInstances(kService, true);
    if (!live.ok()) return;
    platform::ProcessPlatform platform;
    for (const auto& rec : *live) {
      auto handle = platform::DecodeHandle(rec.platform_handle);
      if (!handle.ok()) continue;
      handle->grace = milliseconds(0);
      (void)platform.Adopt(*handle);
      (void)platform.Stop(*handle);
    }
  }

  // Stops the router process turnoutd launched (it outlives turnoutd), by its recorded handle.
  void StopRouterProcess() {
    json record = RouterRecord();
    if (!record.is_object()) return;
    auto handle = platform::DecodeHandle(record.value("handle", ""));
    if (!handle.ok()) return;
    handle->grace = milliseconds(0);
    platform::ProcessPlatform platform;
    (void)platform.Adopt(*handle);
    (void)platform.Stop(*handle);
  }

  std::string StateFile(const std::string& name) const { return dir_ + "/.turnout/" + name; }

  // <state_dir>/router-process.json (null when there is none).
  json RouterRecord() const {
    std::ifstream in(StateFile("router-process.json"));
    if (!in) return json();
    return json::parse(
        std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()),
        nullptr, false);
  }

  std::string ReadStateFile(const std::string& name) const {
    std::ifstream in(StateFile(name));
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }

  // Default settings, v1 deployed and then v2 (serving on green): the public address and the
  // router process's pid.
  std::pair<std::string, int64_t> ServeV2OnGreen() {
    WriteConfig();
    StartDaemon();
    EXPECT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
    EXPECT_EQ(State(WaitFinished(Deploy("v2"))), "succeeded");
    return {PublicAddress(), RouterProcessStatus().value("pid", int64_t{0})};
  }

  // The router process as turnoutd reports it (status.router.process).
  json RouterProcessStatus() {
    auto [status, body] = Call("GET", "/v1/status");
    EXPECT_EQ(status, 200);
    return body["router"]["process"];
  }

  // Pids of the recorded live instances of a slot that are really running.
  std::vector<int64_t> RunningPids(const std::string& slot) {
    auto [status, body] = Call("GET", "/v1/status");
    std::vector<int64_t> pids;
    for (const auto& s : body["router"]["slots"]) {
      if (s["name"] != slot) continue;
      for (const auto& i : s["instances"]) {
        if (i.value("state", "") == "running" && i.contains("pid")) {
          if (::kill(static_cast<pid_t>(i["pid"].get<int64_t>()), 0) == 0) {
            pids.push_back(i["pid"].get<int64_t>());
          }
        }
      }
    }
    return pids;
  }

  // turnoutd with v1 serving and v2 in a 30 s bake (turnout.yaml is read again at each deploy:
  // the long bake keeps v1 warm); *id is v2's deployment.
  void BakeV2AfterV1(int64_t* id) {
    WriteConfig();
    StartDaemon();
    ASSERT_EQ(State(WaitFinished(Deploy("v1"))), "succeeded");
    WriteConfig("", "", "30s");
    *id = Deploy("v2");
    ASSERT_EQ(WaitForState(*id, "baking"), "baking");
  }

  // The audit entries (from the API) whose action is `action`.
  std::vector<json> AuditEntries(const std::string& action) {
    auto [status, body] = Call("GET", "/v1/audit?limit=100000");
    EXPECT_EQ(status, 200) << body.dump();
    std::vector<json> out;
    for (const auto& e : body["entries"]) {
      if (e.value("action", "") == action) out.push_back(e);
    }
    return out;
  }

  // Runs SQL on the state database with a connection of its own, as someone with access to
  // the file could (the append-only triggers dropped first).
  void TamperWithAudit(const std::string& sql) {
    state::testing::RawExec(dir_ + "/.turnout/state.db",
                            "DROP TRIGGER IF EXISTS audit_no_update; "
                            "DROP TRIGGER IF EXISTS audit_no_delete; " +
                                sql);
  }

  std::string dir_;
  std::optional<ChildProcess> daemon_;
  std::optional<ChildProcess> router_;
  Load load_;
};

// Whether `pid` runs (a zombie does not: an orphan may be reparented to this test program).
inline bool Runs(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

inline uint64_t Failed(const json& load) { return load.value("failed", uint64_t{1}); }

// The versions that answered the load, as {"v1": n, ...}.
inline json Versions(const json& load) { return load["by_header"]["values"]; }

// A bounded burst of requests; returns turnout-load's JSON.
inline json RunLoad(const std::string& address, int requests) {
  auto p = ChildProcess::Start({TURNOUT_LOAD_BINARY, "--url", "http://" + address + "/",
                                "--connections", "4", "--requests", std::to_string(requests),
                                "--duration", "30s", "--by-header", "X-Version", "--json"});
  EXPECT_TRUE(p.ok());
  if (!p.ok()) return json();
  Result<std::string> out = p->ReadAll(std::chrono::milliseconds(40000));
  EXPECT_TRUE(out.ok());
  return json::parse(out.ok() ? *out : "", nullptr, false);
}

}  // namespace turnout::daemon
