#include "cli/daemon_output.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string_view>

#include "cli/table.h"

namespace turnout::cli {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// True when one line of `text` holds `cells` in this order, each at least two spaces from the
// next (however wide the columns are).
bool Apart(const std::string& text, const std::vector<std::string>& cells) {
  std::string pattern;
  for (const std::string& c : cells) {
    if (!pattern.empty()) pattern += " {2,}";
    for (char ch : c) {
      if (std::string_view("\\^$.|?*+()[]{}").find(ch) != std::string_view::npos) pattern += '\\';
      pattern += ch;
    }
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, std::regex(pattern))) return true;
  }
  return false;
}

TEST(Table, ColumnsStayApartWhateverTheirWidth) {
  EXPECT_EQ(Column("ok", 5), "ok     ");
  EXPECT_EQ(Column("a-very-long-cell", 5), "a-very-long-cell  ");
  EXPECT_EQ(FormatTable({{"A", "B", "C"}, {"longer cell", "x", ""}}),
            "A            B  C\n"
            "longer cell  x\n");
}

TEST(DaemonOutput, HistoryStepsDoNotRunIntoTheirOutcome) {
  // The reported fault: "smoke_test:answers with the versionok 3.0 ms".
  json reply = {
      {"deployment",
       {{"revision", 3},
        {"version", "v3"},
        {"target_slot", "green"},
        {"state", "succeeded"},
        {"id", 3},
        {"created_at", "2026-11-22T08:01:02.123Z"},
        {"started_by", "ann@host pid 1"},
        {"config_hash", "0123456789abcdef"},
        {"reason", ""}}},
      {"transitions", json::array({{{"at", "2026-11-22T08:01:02.123Z"},
                                    {"from", "smoke_testing_long_state"},
                                    {"to", "switching_a_long_state_too"},
                                    {"reason", "all smoke tests passed"}}})},
      {"steps", json::array({{{"step", "smoke_test:answers with the version"},
                              {"outcome", "ok"},
                              {"duration_ms", 3}},
                             {{"step", "launch"}, {"outcome", "ok"}, {"duration_ms", 14}}})}};
  const std::string text = FormatDeploymentDetail(reply);
  EXPECT_TRUE(Apart(text, {"smoke_test:answers with the version", "ok", "3.0 ms"})) << text;
  EXPECT_TRUE(Apart(text, {"launch", "ok", "14 ms"})) << text;
  EXPECT_TRUE(
      Apart(text, {"smoke_testing_long_state", "-> switching_a_long_state_too", "all smoke"}))
      << text;
}

TEST(DaemonOutput, HistoryShowsVerifyResultsBesideTheirBaseline) {
  const json result = {
      {"count", 500}, {"errors", 0}, {"p50_ms", 1.24}, {"p95_ms", 41.0}, {"p99_ms", 52.6}};
  json perf = {{"step", "verify:latency"},
               {"outcome", "failed"},
               {"duration_ms", 900},
               {"detail",
                {{"kind", "performance"},
                 {"result", result},
                 {"baseline",
                  {{"revision", 3},
                   {"count", 500},
                   {"errors", 0},
                   {"p50_ms", 1.0},
                   {"p95_ms", 20.1},
                   {"p99_ms", 30.0}}},
                 {"failure", "p95 41.0 ms > baseline 20.1 ms +25% (revision 3)"}}}};
  EXPECT_EQ(FormatVerifyStep(perf),
            "p50 1.2 ms, p95 41 ms, p99 53 ms (500 requests, 0 errors); baseline revision 3: "
            "p50 1.0 ms, p95 20 ms, p99 30 ms; p95 41.0 ms > baseline 20.1 ms +25% (revision 3)");
  json first = perf;
  first["outcome"] = "ok";
  first["detail"]["baseline"] = nullptr;
  first["detail"].erase("failure");
  EXPECT_EQ(FormatVerifyStep(first),
            "p50 1.2 ms, p95 41 ms, p99 53 ms (500 requests, 0 errors); no baseline: recorded");
  json command = {{"step", "verify:e2e"},
                  {"outcome", "failed"},
                  {"detail", {{"kind", "command"}, {"result", "exited with code 2"}}}};
  EXPECT_EQ(FormatVerifyStep(command), "exited with code 2");
  json reply = {{"deployment", {{"revision", 4}, {"version", "v4"}}},
                {"transitions", json::array()},
                {"steps", json::array({perf, command})}};
  const std::string text = FormatDeploymentDetail(reply);
  EXPECT_TRUE(Apart(text, {"verify:latency", "failed", "900 ms", "p50 1.2 ms"})) << text;
  EXPECT_NE(text.find("baseline revision 3: p50 1.0 ms, p95 20 ms"), std::string::npos) << text;
  EXPECT_TRUE(Apart(text, {"verify:e2e", "failed", "exited with code 2"})) << text;
}

TEST(DaemonOutput, AuditActionsAndDetailsStayApart) {
  // The reported fault: `service.instances_stopped{"stopped":1}`.
  json entry = {{"seq", 42},
                {"time", "2026-11-22T08:01:02.123Z"},
                {"action", "service.instances_stopped"},
                {"actor", "ann@host pid 7"},
                {"detail", {{"stopped", 1}, {"slot", "blue"}}}};
  const std::string line = FormatAuditEntry(entry);
  EXPECT_EQ(line,
            "   42  2026-11-22 08:01:02  service.instances_stopped  slot=blue stopped=1  "
            "(ann@host pid 7)\n");
  json transition = {
      {"seq", 7},
      {"time", "2026-11-22T08:01:02.123Z"},
      {"action", "deployment.transition"},
      {"actor", "turnoutd"},
      {"detail", {{"from", "baking"}, {"to", "scaling_down"}, {"reason", "bake passed"}}}};
  EXPECT_TRUE(Apart(FormatAuditEntry(transition),
                    {"deployment.transition", "baking -> scaling_down: bake passed", "(turnoutd)"}))
      << FormatAuditEntry(transition);
}

TEST(DaemonOutput, HistoryListKeepsLongVersionsApartFromTheSlot) {
  json list = json::array({{{"revision", 12},
                            {"version", "2026.11.22-rc1+build.7"},
                            {"target_slot", "green"},
                            {"state", "rolled_back"},
                            {"created_at", "2026-11-22T08:01:02.123Z"},
                            {"duration_ms", 5017},
                            {"serving", false},
                            {"reason", "not ready within 5 s"}},
                           {{"revision", 11},
                            {"version", "v1"},
                            {"target_slot", "blue"},
                            {"state", "succeeded"},
                            {"created_at", "2026-11-22T07:01:02.123Z"},
                            {"duration_ms", 900},
                            {"serving", true},
                            {"reason", ""}}});
  const std::string text = FormatDeploymentList(list);
  EXPECT_TRUE(Apart(text, {"2026.11.22-rc1+build.7", "green", "rolled_back"})) << text;
  EXPECT_TRUE(Apart(text, {"5.0 s", "not ready within 5 s"})) << text;
  EXPECT_TRUE(Contains(text, "900 ms *")) << text;
  EXPECT_TRUE(Contains(text, "(* serving now")) << text;
  EXPECT_EQ(FormatDeploymentList(json::array()), "no deployments yet\n");
}

TEST(DaemonOutput, SecretsShowNamesSourcesAndFingerprintsOnly) {
  EXPECT_EQ(FormatChange({{"kind", "secrets"},
                          {"secret", "JWT_KEY"},
                          {"action", "rotate"},
                          {"fingerprint", "hmac-sha256:0011223344556677"}}),
            "secrets rotate JWT_KEY");
  EXPECT_EQ(FormatChange({{"kind", "secrets"}, {"secret", "JWT_KEY"}, {"action", "drop_previous"}}),
            "secrets drop-previous JWT_KEY");
  json list = json::array({{{"name", "JWT_KEY"},
                            {"source", "generated"},
                            {"as", "env"},
                            {"generation", 2},
                            {"fingerprint", "hmac-sha256:0011223344556677"},
                            {"rotated_at", "2026-11-22T08:01:02.123Z"},
                            {"previous",
                             {{"generation", 1},
                              {"fingerprint", "hmac-sha256:8899aabbccddeeff"},
                              {"until", "2026-11-23T08:01:02.123Z"}}}},
                           {{"name", "DB_PASSWORD"},
                            {"source", "file"},
                            {"as", "file"},
                            {"generation", nullptr},
                            {"fingerprint", nullptr},
                            {"rotated_at", nullptr},
                            {"previous", nullptr}}});
  const std::string text = FormatSecretList(list);
  EXPECT_TRUE(Apart(text, {"NAME", "SOURCE", "AS", "GEN", "FINGERPRINT", "ROTATED", "PREVIOUS"}))
      << text;
  EXPECT_TRUE(Apart(text, {"JWT_KEY", "generated", "env", "2", "hmac-sha256:0011223344556677",
                           "2026-11-22T08:01:02.123Z", "live until 2026-11-23T08:01:02.123Z"}))
      << text;
  EXPECT_TRUE(Apart(text, {"DB_PASSWORD", "file", "file", "-", "-", "-", "-"})) << text;
  EXPECT_EQ(FormatSecretList(json::array()), "no secrets in turnout.yaml\n");
}

TEST(DaemonOutput, HistorySaysWhatEachRevisionChangedByNameOnly) {
  EXPECT_EQ(FormatChange(nullptr), "deploy");
  EXPECT_EQ(FormatChange({{"kind", "restart"}, {"of_revision", 3}}), "restart");
  EXPECT_EQ(FormatChange({{"kind", "scale"}, {"replicas_before", 1}, {"replicas", 3}}),
            "scale 1->3");
  EXPECT_EQ(FormatChange({{"kind", "env"}, {"set", {"A", "B"}}, {"unset", {"C"}}}),
            "env set A,B unset C");
  EXPECT_EQ(FormatChange({{"kind", "env"}, {"set", json::array()}, {"unset", {"C"}}}),
            "env unset C");
  json list =
      json::array({{{"revision", 4},
                    {"version", "v1"},
                    {"target_slot", "blue"},
                    {"state", "succeeded"},
                    {"created_at", "2026-11-22T08:01:02.123Z"},
                    {"duration_ms", 900},
                    {"change", {{"kind", "scale"}, {"replicas_before", 1}, {"replicas", 3}}},
                    {"reason", "p95"}}});
  const std::string text = FormatDeploymentList(list);
  EXPECT_TRUE(Apart(text, {"v1", "blue", "succeeded"})) << text;
  EXPECT_TRUE(Apart(text, {"4", "scale 1->3", "v1"})) << text;
  EXPECT_TRUE(Contains(text, "KIND")) << text;
}

TEST(DaemonOutput, StatusAndHealthKeepColumnsApart) {
  json status = {
      {"service", "shop"},
      {"daemon", {{"pid", 10}, {"started_at", "2026-11-22T08:01:02.123Z"}}},
      {"active", nullptr},
      {"deployment", nullptr},
      {"router",
       {{"mode", "embedded"},
        {"listen", {"127.0.0.1:8080"}},
        {"admin", "127.0.0.1:9901"},
        {"slots", json::array({{{"name", "production-blue"},
                                {"receives_traffic", true},
                                {"instances", json::array({{{"address", "127.0.0.1:20000"},
                                                            {"version", "2026.11.22-rc1+build.7"},
                                                            {"state", "running"},
                                                            {"healthy", true},
                                                            {"pid", 99}}})}}})}}}};
  const std::string text = FormatDaemonStatus(status);
  EXPECT_TRUE(Apart(text, {"production-blue", "TRAFFIC"})) << text;
  EXPECT_TRUE(
      Apart(text, {"127.0.0.1:20000", "2026.11.22-rc1+build.7", "running", "healthy, pid 99"}))
      << text;
  EXPECT_TRUE(Contains(text, "admin API 127.0.0.1:9901")) << text;

  // The router process turnoutd runs: its pid, whether turnoutd is attached to it, restarts.
  status["router"]["mode"] = "process";
  status["router"]["admin"] = "unix:/srv/shop/.turnout/router.sock";
  status["router"]["process"] = {{"pid", 77},
                                 {"admin", "unix:/srv/shop/.turnout/router.sock"},
                                 {"log", "/srv/shop/.turnout/logs/shop-router-0.log"},
                                 {"attached_at_start", true},
                                 {"restarts", 2},
                                 {"stopped", false}};
  const std::string process = FormatDaemonStatus(status);
  EXPECT_TRUE(Contains(process,
                       "router (process): 127.0.0.1:8080, admin API "
                       "unix:/srv/shop/.turnout/router.sock"))
      << process;
  EXPECT_TRUE(Contains(process, "process: pid 77, attached (found running at start), restarted 2x"))
      << process;
  status["router"]["process"]["stopped"] = true;
  EXPECT_TRUE(Contains(FormatDaemonStatus(status), "process: stopped"));
  EXPECT_FALSE(Contains(FormatDaemonStatus(status), "MAINTENANCE"));
  status["router"]["policy"] = {{"maintenance", {{"enabled", true}, {"retry_after", 45}}}};
  EXPECT_TRUE(Contains(FormatDaemonStatus(status),
                       "MAINTENANCE: users get 503 with Retry-After 45 s and the maintenance page"))
      << FormatDaemonStatus(status);

  json health = {
      {"slots",
       json::array(
           {{{"name", "blue"},
             {"receives_traffic", true},
             {"instances",
              json::array(
                  {{{"address", "127.0.0.1:20000"},
                    {"version", "2026.11.22-rc1+build.7"},
                    {"process", "running"},
                    {"readiness",
                     {{"path", "/healthz/ready/deep"}, {"ok", true}, {"status", 200}, {"ms", 1.5}}},
                    {"liveness",
                     {{"path", "/healthz"}, {"ok", true}, {"status", 200}, {"ms", 1.0}}}}})}}})}};
  const std::string h = FormatHealth(health);
  EXPECT_TRUE(Apart(h, {"127.0.0.1:20000", "2026.11.22-rc1+build.7", "running"})) << h;
  EXPECT_TRUE(Apart(h, {"readiness", "/healthz/ready/deep", "ok (200, 1.5 ms)"})) << h;
}

TEST(DaemonOutput, DeployProgressLines) {
  EXPECT_EQ(FormatStateLine("waiting_ready", 5000, "FAILED: not ready"),
            "  waiting_ready         5.0 s  FAILED: not ready\n");
  EXPECT_TRUE(Apart(FormatStateLine("a_state_name_longer_than_the_column", 14, "ok"),
                    {"a_state_name_longer_than_the_column", "14 ms", "ok"}));
}

}  // namespace
TEST(FormatPrune, SaysWhatItFreesWhatItKeepsAndTheTotal) {
  json reply = json::parse(R"({
    "platform": "container", "dry_run": false, "on_disk": 2, "kept_revisions": [3, 2],
    "freed_bytes": 1572864,
    "images": [
      {"id": "sha256:3f2a9c1d2e4b5a6978685746352413f2a9c1d2e4b5a697868574635241", "tags": ["localhost/shop:v1"],
       "revisions": [{"revision": 1, "version": "v1"}], "bytes": 1572864, "removed": true},
      {"id": "sha256:9a8b7c6d5e4f", "tags": [], "revisions": [{"revision": 0, "version": "v0"}],
       "bytes": 10, "removed": false, "kept_because": "used by container other"}],
    "containers": [{"id": "c1", "name": "turnout-shop-blue-0-ab12cd34", "version": "v1",
                    "state": "exited", "removed": true}]})");
  const std::string text = FormatPrune(reply);
  EXPECT_TRUE(
      Contains(text, "removed image 3f2a9c1d2e4b (localhost/shop:v1; revision 1 v1)  1.5 MiB\n"))
      << text;
  EXPECT_TRUE(Contains(text, "kept image 9a8b7c6d5e4f (revision 0 v0): used by container other\n"))
      << text;
  EXPECT_TRUE(
      Contains(text, "removed stopped container turnout-shop-blue-0-ab12cd34 (v1, exited)\n"))
      << text;
  EXPECT_TRUE(Contains(text,
                       "freed 1.5 MiB (1 image(s), 1 stopped container(s)); revisions 3, 2 "
                       "keep their images (revisions.on_disk: 2"))
      << text;
  reply["dry_run"] = true;
  const std::string dry = FormatPrune(reply);
  EXPECT_TRUE(Contains(dry, "would remove image 3f2a9c1d2e4b")) << dry;
  EXPECT_TRUE(Contains(dry, "would free 1.5 MiB")) << dry;
  EXPECT_TRUE(Contains(dry, "run `turnout prune` to remove them")) << dry;
  EXPECT_FALSE(Contains(dry, "removed ")) << dry;
}

TEST(FormatPrune, NothingToPruneAndProcesses) {
  json none = {{"platform", "container"},  {"dry_run", false},        {"on_disk", 10},
               {"kept_revisions", {2, 1}}, {"images", json::array()}, {"containers", json::array()},
               {"freed_bytes", 0}};
  EXPECT_EQ(FormatPrune(none),
            "nothing to prune: revisions 2, 1 keep their images (revisions.on_disk: 10, plus the "
            "serving revision and any with a running instance)\n");
  json process = {{"platform", "process"},
                  {"message", "nothing to prune: process revisions keep nothing on disk"}};
  EXPECT_EQ(FormatPrune(process), "nothing to prune: process revisions keep nothing on disk\n");
}

}  // namespace turnout::cli
