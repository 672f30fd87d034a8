// PrometheusSource against a real Prometheus (Debian's `prometheus` package) that scrapes a real
// in-process router's admin /metrics every second. The test starts Prometheus itself on a free
// loopback port with a throwaway TSDB directory, and stops it (by pid) at the end.
//
// Without the prometheus binary the test is skipped, except in CI (CI set), where it fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "httpc/client.h"
#include "platform/testing/test_util.h"
#include "router/admin_server.h"
#include "router/router.h"
#include "router/testing/router_harness.h"
#include "sources/prometheus.h"

namespace turnout::sources {
namespace {

using router::testing::WaitUntil;

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// One Prometheus process; killed (SIGTERM, then SIGKILL after a bounded wait) by its pid.
class PrometheusProcess {
 public:
  ~PrometheusProcess() { Stop(); }

  // Scrapes `scrape` (host:port) with `Authorization: Bearer <token>`.
  Status Start(const std::string& binary, const std::string& dir, const std::string& scrape,
               const std::string& token) {
    std::string config = dir + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: turnout\n"
                             "    authorization:\n"
                             "      type: Bearer\n"
                             "      credentials: "
                          << token << "\n"
                          << "    static_configs:\n"
                             "      - targets: ['"
                          << scrape << "']\n";
    log_ = dir + "/prometheus.log";
    auto port = platform::testing::FreePort();
    if (!port.ok()) return port.status();
    address_ = "127.0.0.1:" + std::to_string(*port);
    std::vector<std::string> args = {binary, "--config.file=" + config,
                                     "--storage.tsdb.path=" + dir + "/tsdb",
                                     "--web.listen-address=" + address_, "--log.level=warn"};
    auto pid = platform::testing::SpawnService(args, log_);
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    return Status::Ok();
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!platform::testing::WaitPidGone(pid_, Millis(10000))) ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool Exited() {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_ && (pid_ = -1, true);
  }

  const std::string& address() const { return address_; }
  std::string Log() const { return platform::testing::ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  std::string address_;
  std::string log_;
};

class PrometheusServerTest : public router::testing::RouterTest {};

TEST_F(PrometheusServerTest, QueriesARealPrometheusScrapingTheRouter) {
  std::string binary = FindOnPath("prometheus");
  if (binary.empty()) {
    if (std::getenv("CI") != nullptr) FAIL() << "prometheus is not installed (CI must run this)";
    GTEST_SKIP() << "prometheus is not installed (apt-get install prometheus)";
  }

  auto& blue = AddUpstream("blue");
  auto& green = AddUpstream("green");
  ASSERT_TRUE(StartRouter(router::testing::MakeTestRouterConfig(
      {{"blue", {blue.address()}}, {"green", {green.address()}}}, "blue")));
  router::AdminServer::Options admin_options;
  admin_options.address = "127.0.0.1:0";
  admin_options.token = "scrape-token-41d2";  // a TCP admin API needs one; Prometheus sends it
  router::Router* r = &router();
  router::AdminServer admin(admin_options, router(), [r] { return r->PrometheusText(); });
  ASSERT_TRUE(admin.Start().ok());

  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(Get("/").status, 200);

  platform::testing::TempDir dir;
  PrometheusProcess prometheus;
  ASSERT_TRUE(prometheus.Start(binary, dir.path(), admin.address(), admin_options.token).ok());

  PrometheusOptions options;
  options.base_url = "http://" + prometheus.address();
  options.timeout = Millis(5000);
  options.retries = 0;
  auto source = PrometheusSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();

  // The per-slot series; Prometheus renames the router's own `instance` label of per-instance
  // series to exported_instance, so the slot total is the one without it.
  const std::string query = R"(turnout_requests_total{slot="blue",exported_instance=""})";
  Result<QueryResult> result = Unavailable("not queried yet");
  bool has_data = WaitUntil(
      [&] {
        if (prometheus.Exited()) return true;
        result = source->Query(query);
        return result.ok() && !result->empty() && result->series[0].samples[0].value == kRequests;
      },
      Millis(60000));
  ASSERT_TRUE(has_data) << (result.ok() ? "no data yet" : result.status().ToString()) << "\n"
                        << prometheus.Log();
  ASSERT_TRUE(result.ok()) << "prometheus exited:\n" << prometheus.Log();
  EXPECT_EQ(result->type, QueryResult::Type::kVector);
  ASSERT_EQ(result->series.size(), 1u);
  EXPECT_EQ(result->series[0].labels.at("__name__"), "turnout_requests_total");
  EXPECT_EQ(result->series[0].labels.at("job"), "turnout");
  EXPECT_EQ(result->series[0].labels.at("instance"), admin.address());
  EXPECT_DOUBLE_EQ(result->series[0].samples[0].value, kRequests);

  // Scalars, including the special values Prometheus spells as strings.
  auto scalar =
      source->Query(R"(scalar(sum(turnout_requests_total{slot="blue",exported_instance=""})) * 2)");
  ASSERT_TRUE(scalar.ok()) << scalar.status().ToString();
  EXPECT_EQ(scalar->type, QueryResult::Type::kScalar);
  EXPECT_DOUBLE_EQ(scalar->series.at(0).samples.at(0).value, 2 * kRequests);
  auto inf = source->Query("1/0");
  ASSERT_TRUE(inf.ok()) << inf.status().ToString();
  EXPECT_TRUE(std::isinf(inf->series.at(0).samples.at(0).value));
  auto nan = source->Query("0/0");
  ASSERT_TRUE(nan.ok()) << nan.status().ToString();
  EXPECT_TRUE(std::isnan(nan->series.at(0).samples.at(0).value));

  // Green got nothing routed: its series exists with 0; an unknown metric is "no data".
  auto none = source->Query("turnout_no_such_metric_total");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());

  // Range query over the last 30 s: a matrix whose latest sample is the total and which never
  // decreases (a counter).
  Clock::WallTime now = SystemClock::Get().WallNow();
  auto range = source->QueryRange(query, now - std::chrono::seconds(30), now, Millis(1000));
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_EQ(range->type, QueryResult::Type::kMatrix);
  ASSERT_EQ(range->series.size(), 1u);
  const auto& samples = range->series[0].samples;
  ASSERT_FALSE(samples.empty());
  EXPECT_DOUBLE_EQ(samples.back().value, kRequests);
  for (size_t i = 1; i < samples.size(); ++i) {
    EXPECT_GE(samples[i].value, samples[i - 1].value);
    EXPECT_DOUBLE_EQ(samples[i].timestamp - samples[i - 1].timestamp, 1.0);
  }
  auto rate =
      source->QueryRange(R"(rate(turnout_requests_total{slot="blue",exported_instance=""}[10s]))",
                         now - std::chrono::seconds(10), now, Millis(2000));
  ASSERT_TRUE(rate.ok()) << rate.status().ToString();
  EXPECT_EQ(rate->type, QueryResult::Type::kMatrix);

  // Bad PromQL: InvalidArgument with Prometheus' own message, and no retry.
  auto bad = source->Query("sum(turnout_requests_total");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("bad_data"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("parse error"), std::string::npos)
      << bad.status().message();
  auto bad_range = source->QueryRange("up", now - std::chrono::hours(24 * 400), now, Millis(1));
  EXPECT_EQ(bad_range.status().code(), StatusCode::kInvalidArgument)
      << bad_range.status().ToString();

  admin.Stop();
}

}  // namespace
}  // namespace turnout::sources
