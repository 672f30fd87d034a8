// The access log and W3C trace context of a real router, with real upstreams on loopback.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "router/admin_json.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Behavior;
using testing::RawResponse;
using testing::ReceivedRequest;
using testing::TestUpstream;

constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class RouterAccessLogTest : public testing::RouterTest {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "router_access_log_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    log_ = dir_ + "/access.log";
  }
  void TearDown() override {
    StopRouter();
    RouterTest::TearDown();
    for (const char* suffix : {"", ".1", ".2", ".3", ".fifo"}) ::unlink((log_ + suffix).c_str());
    ::rmdir(dir_.c_str());
  }

  RouterConfig Config(TestUpstream& up) {
    RouterConfig c = testing::MakeTestRouterConfig({{"blue", {up.address()}}}, "blue");
    c.access_log.path = log_;
    return c;
  }

  static std::vector<std::string> ReadLines(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  static std::string ReadAll(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The log's lines once there are `n` (a response reaches the client just before its line is
  // appended); fails after 5 s.
  std::vector<json> WaitForLines(size_t n) {
    std::vector<std::string> lines;
    for (auto deadline = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
      EXPECT_TRUE(router().FlushAccessLog());
      lines = ReadLines(log_);
      if (lines.size() >= n) break;
    }
    EXPECT_EQ(lines.size(), n);
    std::vector<json> out;
    for (const auto& l : lines) {
      json j = json::parse(l, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
      out.push_back(j);
    }
    return out;
  }

  // The line of the request for `path` (workers write their lines in batches, so lines of
  // requests served by different workers may be out of order).
  static json ByPath(const std::vector<json>& lines, const std::string& path) {
    for (const json& j : lines) {
      if (j.value("path", "") == path) return j;
    }
    ADD_FAILURE() << "no line for " << path;
    return json::object();
  }

  std::string dir_;
  std::string log_;
};

TEST_F(RouterAccessLogTest, OneLinePerRequestWithItsFacts) {
  TestUpstream& up = AddUpstream("blue-1");
  ASSERT_TRUE(StartRouter(Config(up)));
  RawResponse r = Get("/orders/7?q=1", "X-Request-Id: client-rid-1\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  std::vector<json> lines = WaitForLines(1);
  ASSERT_EQ(lines.size(), 1u);
  const json& j = lines[0];
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/orders/7");
  EXPECT_EQ(j["protocol"], "HTTP/1.1");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["client"], "127.0.0.1");
  EXPECT_GT(j["client_port"].get<int>(), 0);
  EXPECT_EQ(j["bytes_out"].get<uint64_t>(), r.raw_head.size() + r.body_bytes);
  EXPECT_GT(j["bytes_in"].get<uint64_t>(), 0u);
  EXPECT_GE(j["duration_ms"].get<double>(), j["upstream_ms"].get<double>());
  EXPECT_EQ(j["slot"], "blue");
  EXPECT_EQ(j["instance"], up.address());
  EXPECT_EQ(j["route"], "active");
  EXPECT_EQ(j["request_id"], "client-rid-1");
  EXPECT_FALSE(j.contains("error"));
  EXPECT_FALSE(j.contains("trace_id"));  // none sent, none generated (the default)
  EXPECT_EQ(j["time"].get<std::string>().size(), 24u);

  // A request without an id is logged with the one the router added.
  ASSERT_TRUE(Get("/x").complete());
  lines = WaitForLines(2);
  ASSERT_EQ(lines.size(), 2u);
  std::vector<ReceivedRequest> seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(ByPath(lines, "/x")["request_id"], seen[1].Header("X-Request-Id"));
}

TEST_F(RouterAccessLogTest, SecretsNeverAppearAndHostilePathsStayValidJson) {
  TestUpstream& up = AddUpstream("blue-1");
  Behavior b = Behavior::Respond(200, "ok");
  b.headers = {{"Set-Cookie", "sid=SECRET-SET-COOKIE-4"}};
  up.SetBehavior(b);
  RouterConfig c = Config(up);
  c.policy.override_header.header = "X-Turnout-Slot";
  c.policy.override_header.secret = "SECRET-OVERRIDE-3";
  c.access_log.include_query = true;
  ASSERT_TRUE(StartRouter(c));
  RawResponse r = Get("/a/%22b%5C/%00?x=\"y\\",
                      "Authorization: Bearer SECRET-AUTH-1\r\nCookie: sid=SECRET-COOKIE-2\r\n"
                      "X-Turnout-Slot: blue\r\nX-Turnout-Secret: SECRET-OVERRIDE-3\r\n");
  ASSERT_TRUE(r.complete()) << r.error;
  // Bytes the parser refuses (400) are logged too, and stay one valid line.
  std::string hostile =
      "GET /\x01\xff\"\\\n HTTP/1.1\r\nHost: h\r\nAuthorization: SECRET-AUTH-5\r\n\r\n";
  RawResponse bad = Fetch(hostile);
  std::vector<json> lines = WaitForLines(2);
  ASSERT_EQ(lines.size(), 2u);
  const json ok = ByPath(lines, "/a/%22b%5C/%00?x=\"y\\");
  EXPECT_EQ(ok["route"], "override");
  const json refused = lines[0]["status"] == 400 ? lines[0] : lines[1];
  EXPECT_EQ(refused["status"].get<int>(), bad.status);
  EXPECT_EQ(refused["status"], 400);
  EXPECT_EQ(refused["error"], "bad_request");
  std::string all = ReadAll(log_);
  EXPECT_EQ(all.find("SECRET-"), std::string::npos) << all;
}

TEST_F(RouterAccessLogTest, SampleKeepsErrorsAndDropsSuccesses) {
  TestUpstream& up = AddUpstream("blue-1");
  up.SetHandler([](const ReceivedRequest& req) {
    if (req.target == "/missing") return Behavior::Respond(404, "no");
    if (req.target == "/boom") return Behavior::Respond(500, "boom");
    return Behavior::Respond(200, "ok");
  });
  RouterConfig c = Config(up);
  c.access_log.sample = 0;
  ASSERT_TRUE(StartRouter(c));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Get("/fine").status, 200);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(Get("/missing").status, 404);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Get("/boom").status, 500);
  std::vector<json> lines = WaitForLines(7);
  int s404 = 0;
  int s500 = 0;
  for (const json& j : lines) {
    s404 += j["status"] == 404;
    s500 += j["status"] == 500;
  }
  EXPECT_EQ(s404, 4);
  EXPECT_EQ(s500, 3);
}

TEST_F(RouterAccessLogTest, ValidTraceContextIsPassedUntouchedAndLogged) {
  TestUpstream& up = AddUpstream("blue-1");
  RouterConfig c = Config(up);
  c.trace.generate = true;
  ASSERT_TRUE(StartRouter(c));
  ASSERT_TRUE(Get("/t", "traceparent: " + std::string(kTraceparent) + "\r\ntracestate: a=1,b=2\r\n")
                  .complete());
  std::vector<ReceivedRequest> seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("traceparent"), kTraceparent);
  EXPECT_EQ(seen[0].Header("tracestate"), "a=1,b=2");
  std::vector<json> lines = WaitForLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(RouterAccessLogTest, MissingOrInvalidTraceContextIsGeneratedWhenEnabled) {
  TestUpstream& up = AddUpstream("blue-1");
  RouterConfig c = Config(up);
  c.trace.generate = true;
  ASSERT_TRUE(StartRouter(c));
  ASSERT_TRUE(Get("/none").complete());
  ASSERT_TRUE(Get("/bad", "traceparent: 00-xyz\r\ntracestate: a=1\r\n").complete());
  std::vector<ReceivedRequest> seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  std::vector<json> lines = WaitForLines(2);
  ASSERT_EQ(lines.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    std::string tp = seen[i].Header("traceparent");
    ASSERT_EQ(tp.size(), 55u) << tp;
    EXPECT_EQ(tp.substr(0, 3), "00-");
    EXPECT_EQ(tp.substr(52), "-01");
    EXPECT_EQ(ByPath(lines, seen[i].target)["trace_id"], tp.substr(3, 32));
  }
  EXPECT_NE(seen[0].Header("traceparent"), seen[1].Header("traceparent"));
  EXPECT_FALSE(seen[1].HasHeader("tracestate"));  // it belonged to the invalid parent
}

TEST_F(RouterAccessLogTest, WithoutGenerationNoTraceparentIsAdded) {
  TestUpstream& up = AddUpstream("blue-1");
  ASSERT_TRUE(StartRouter(Config(up)));
  ASSERT_TRUE(Get("/bad", "traceparent: 00-xyz\r\n").complete());
  ASSERT_TRUE(Get("/none").complete());
  std::vector<ReceivedRequest> seen = up.RecordedRequests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].Header("traceparent"), "00-xyz");  // not the router's business
  EXPECT_FALSE(seen[1].HasHeader("traceparent"));
}

TEST_F(RouterAccessLogTest, FailedRequestsTraceIdsAreKeptPerSlotInTheMetrics) {
  TestUpstream& blue = AddUpstream("blue-1");
  TestUpstream& green = AddUpstream("green-1");
  green.SetBehavior(Behavior::Respond(500, "canary bug"));
  RouterConfig c = testing::MakeTestRouterConfig(
      {{"blue", {blue.address()}}, {"green", {green.address()}}}, "blue");
  c.policy.canary = CanaryPolicy{"green", 10000, 1};  // every new client: the canary
  c.trace.generate = true;
  ASSERT_TRUE(StartRouter(c));
  for (size_t i = 0; i < kRecentFailuresKept + 3; ++i) ASSERT_EQ(Get("/").status, 500);
  std::vector<ReceivedRequest> seen = green.RecordedRequests();
  ASSERT_EQ(seen.size(), kRecentFailuresKept + 3);
  Result<std::vector<SlotWindowMetrics>> m = router().GetWindowMetrics(60s);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const SlotWindowMetrics* g = nullptr;
  for (const auto& s : *m) {
    if (s.slot == "green") g = &s;
    if (s.slot == "blue") {
      EXPECT_TRUE(s.recent_failures.empty());
    }
  }
  ASSERT_NE(g, nullptr);
  // The last ones (a request's record may land just after the next one's: workers race).
  ASSERT_EQ(g->recent_failures.size(), kRecentFailuresKept);
  std::map<std::string, const ReceivedRequest*> by_trace;
  for (const auto& r : seen) by_trace[r.Header("traceparent").substr(3, 32)] = &r;
  std::set<std::string> distinct;
  for (const FailedRequest& f : g->recent_failures) {
    auto it = by_trace.find(f.trace_id);
    ASSERT_NE(it, by_trace.end()) << f.trace_id << " was not sent upstream";
    EXPECT_EQ(f.request_id, it->second->Header("X-Request-Id"));
    EXPECT_EQ(f.status, 500);
    EXPECT_EQ(f.instance, green.address());
    distinct.insert(f.trace_id);
  }
  EXPECT_EQ(distinct.size(), kRecentFailuresKept);
  EXPECT_EQ(distinct.count(seen[0].Header("traceparent").substr(3, 32)), 0u);  // the oldest went
  // The admin API's JSON carries them (and its client reads them back).
  std::string text = WindowMetricsToJson(60s, *m);
  Result<std::vector<SlotWindowMetrics>> back = ParseWindowMetricsJson(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  for (const auto& s : *back) {
    if (s.slot != "green") continue;
    ASSERT_EQ(s.recent_failures.size(), kRecentFailuresKept);
    EXPECT_EQ(s.recent_failures.back().trace_id, g->recent_failures.back().trace_id);
  }
}

TEST_F(RouterAccessLogTest, RotationUnderLoadKeepsAtMostKeepFiles) {
  TestUpstream& up = AddUpstream("blue-1");
  RouterConfig c = Config(up);
  c.access_log.max_size = 8192;
  c.access_log.keep = 2;
  ASSERT_TRUE(StartRouter(c));
  constexpr int kRequests = 300;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRequests / 3; ++i) {
        if (Get("/load").status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_EQ(ok.load(), kRequests);
  ASSERT_TRUE(router().FlushAccessLog());
  struct stat st {};
  EXPECT_EQ(::stat((log_ + ".1").c_str(), &st), 0);
  EXPECT_EQ(::stat((log_ + ".2").c_str(), &st), 0);
  EXPECT_NE(::stat((log_ + ".3").c_str(), &st), 0);
  size_t lines = 0;
  for (const char* suffix : {"", ".1", ".2"}) {
    for (const auto& l : ReadLines(log_ + suffix)) {
      EXPECT_FALSE(json::parse(l, nullptr, false).is_discarded()) << l;
      ++lines;
    }
  }
  EXPECT_LT(lines, static_cast<size_t>(kRequests));  // the oldest were rotated away
  EXPECT_GT(lines, 0u);
}

TEST_F(RouterAccessLogTest, BlockedWriterCountsDropsAndNeverStallsRequests) {
  const std::string fifo = log_ + ".fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // opened, never read
  ASSERT_GE(reader, 0);
  TestUpstream& up = AddUpstream("blue-1");
  RouterConfig c = Config(up);
  c.access_log.path = fifo;
  c.workers = 1;
  ASSERT_TRUE(StartRouter(c));
  // 7 KB paths: the pipe (64 KiB) and the worker's buffer (1 MiB) hold about 150 lines.
  const std::string path = "/" + std::string(7000, 'p');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 400; ++i) ASSERT_EQ(Get(path).status, 200) << i;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);
  std::string metrics = router().PrometheusText();
  const std::string key = "\nturnout_access_log_dropped_total ";
  size_t at = metrics.find(key);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GT(std::stoull(metrics.substr(at + key.size())), 100u) << metrics;
  const auto stop = std::chrono::steady_clock::now();
  StopRouter();  // must not hang on the writer
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 10s);
  ::close(reader);
}

}  // namespace
}  // namespace turnout::router
