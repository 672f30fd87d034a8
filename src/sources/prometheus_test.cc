// PrometheusSource: parsing of every result type and error shape, and the retry/timeout policy
// against scripted HTTP servers on 127.0.0.1. The real Prometheus is in
// prometheus_server_test.cc.

#include "sources/prometheus.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <vector>

#include "router/testing/test_upstream.h"

namespace turnout::sources {
namespace {

using router::testing::Behavior;
using router::testing::TestUpstream;

TEST(PrometheusParseTest, Vector) {
  auto r = ParsePrometheusResponse(200, R"({"status":"success","data":{"resultType":"vector",
    "result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.5,"1"]},
              {"metric":{"job":"b"},"value":[1700000000.5,"0.25"]}]}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, QueryResult::Type::kVector);
  EXPECT_FALSE(r->empty());
  ASSERT_EQ(r->series.size(), 2u);
  EXPECT_EQ(r->series[0].labels.at("__name__"), "up");
  EXPECT_EQ(r->series[0].labels.at("job"), "a");
  ASSERT_EQ(r->series[0].samples.size(), 1u);
  EXPECT_DOUBLE_EQ(r->series[0].samples[0].timestamp, 1700000000.5);
  EXPECT_DOUBLE_EQ(r->series[0].samples[0].value, 1.0);
  EXPECT_DOUBLE_EQ(r->series[1].samples[0].value, 0.25);
}

TEST(PrometheusParseTest, SpecialValuesAreDoubles) {
  auto r = ParsePrometheusResponse(200, R"({"status":"success","data":{"resultType":"matrix",
    "result":[{"metric":{},"values":[[1,"NaN"],[2,"+Inf"],[3,"-Inf"],[4,"1e3"],[5,"-2.5"]]}]}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, QueryResult::Type::kMatrix);
  ASSERT_EQ(r->series.size(), 1u);
  const auto& s = r->series[0].samples;
  ASSERT_EQ(s.size(), 5u);
  EXPECT_TRUE(std::isnan(s[0].value));
  EXPECT_TRUE(std::isinf(s[1].value) && s[1].value > 0);
  EXPECT_TRUE(std::isinf(s[2].value) && s[2].value < 0);
  EXPECT_DOUBLE_EQ(s[3].value, 1000);
  EXPECT_DOUBLE_EQ(s[4].value, -2.5);
  EXPECT_DOUBLE_EQ(s[4].timestamp, 5);
}

TEST(PrometheusParseTest, ScalarStringAndWarnings) {
  auto scalar = ParsePrometheusResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[17,"42"]},
               "warnings":["careful"]})");
  ASSERT_TRUE(scalar.ok()) << scalar.status().ToString();
  EXPECT_EQ(scalar->type, QueryResult::Type::kScalar);
  EXPECT_FALSE(scalar->empty());
  ASSERT_EQ(scalar->series.size(), 1u);
  EXPECT_TRUE(scalar->series[0].labels.empty());
  EXPECT_DOUBLE_EQ(scalar->series[0].samples.at(0).value, 42);
  EXPECT_EQ(scalar->warnings, std::vector<std::string>{"careful"});

  auto text = ParsePrometheusResponse(
      200, R"({"status":"success","data":{"resultType":"string","result":[17,"hi"]}})");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->type, QueryResult::Type::kString);
  EXPECT_EQ(text->text, "hi");
}

TEST(PrometheusParseTest, NoDataIsEmptyNotAnError) {
  auto r = ParsePrometheusResponse(
      200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
  auto m = ParsePrometheusResponse(
      200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->empty());
}

TEST(PrometheusParseTest, Errors) {
  auto bad = ParsePrometheusResponse(
      400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 4"})");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "prometheus: bad_data: parse error at char 4");

  auto timeout = ParsePrometheusResponse(
      503, R"({"status":"error","errorType":"timeout","error":"query timed out"})");
  EXPECT_EQ(timeout.status().code(), StatusCode::kDeadlineExceeded);

  auto exec = ParsePrometheusResponse(
      422, R"({"status":"error","errorType":"execution","error":"too many samples"})");
  EXPECT_EQ(exec.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(exec.status().message().find("too many samples"), std::string::npos);

  EXPECT_EQ(ParsePrometheusResponse(502, "<html>bad gateway</html>").status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(ParsePrometheusResponse(200, "not json").status().code(),
            StatusCode::kFailedPrecondition);
  // Malformed shapes are errors, never exceptions.
  for (const char* body :
       {R"({"status":"success"})", R"({"status":"success","data":{"resultType":"vector"}})",
        R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}})",
        R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}})",
        R"({"status":"success","data":{"resultType":"scalar","result":"1"}})",
        R"({"status":"success","data":{"resultType":"matrix",)"
        R"("result":[{"metric":{"a":1},"values":[]}]}})",
        R"({"status":"success","data":{"resultType":"weird","result":[]}})", R"([1,2])",
        R"({"status":7})"}) {
    auto r = ParsePrometheusResponse(200, body);
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << body;
  }
}

class PrometheusRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto up = TestUpstream::Start("prom");
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    server_ = std::move(up).value();
  }

  PrometheusSource Source(int retries, Millis timeout = Millis(2000)) {
    PrometheusOptions o;
    o.base_url = "http://" + server_->address() + "/prefix/";
    o.retries = retries;
    o.timeout = timeout;
    o.backoff_initial = Millis(100);
    o.backoff_max = Millis(250);
    o.headers = {{"Authorization", "Bearer t"}};
    o.sleep = [this](Millis d) {
      std::lock_guard<std::mutex> lock(mu_);
      sleeps_.push_back(d);
    };
    auto s = PrometheusSource::Create(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  std::vector<Millis> Sleeps() {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

  std::unique_ptr<TestUpstream> server_;
  std::mutex mu_;
  std::vector<Millis> sleeps_;
};

constexpr char kOneSample[] = R"({"status":"success","data":{"resultType":"vector",)"
                              R"("result":[{"metric":{},"value":[1,"7"]}]}})";

TEST_F(PrometheusRetryTest, RetriesServerErrorsThenSucceeds) {
  std::atomic<int> calls{0};
  server_->SetHandler([&](const router::testing::ReceivedRequest&) {
    int n = ++calls;
    if (n == 1) return Behavior::Respond(503, "overloaded");
    if (n == 2) return Behavior::Respond(429, "slow down");
    return Behavior::Respond(200, kOneSample);
  });
  auto r = Source(3).Query("sum(rate(x[1m]))");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempts, 3);
  EXPECT_DOUBLE_EQ(r->series.at(0).samples.at(0).value, 7);
  EXPECT_EQ(Sleeps(), (std::vector<Millis>{Millis(100), Millis(200)}));

  auto requests = server_->RecordedRequests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/prefix/api/v1/query");
  EXPECT_EQ(requests[0].Header("Authorization"), "Bearer t");
  EXPECT_EQ(requests[0].Header("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(requests[0].body, "query=sum%28rate%28x%5B1m%5D%29%29&timeout=2.000");
}

TEST_F(PrometheusRetryTest, GivesUpAfterRetriesWithBoundedBackoff) {
  server_->SetBehavior(Behavior::Respond(500, "broken"));
  auto r = Source(3).Query("up");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("after 4 attempts"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(server_->request_count(), 4u);
  EXPECT_EQ(Sleeps(), (std::vector<Millis>{Millis(100), Millis(200), Millis(250)}));
}

TEST_F(PrometheusRetryTest, BadQueryIsNotRetried) {
  server_->SetBehavior(Behavior::Respond(
      400, R"({"status":"error","errorType":"bad_data","error":"1:5: parse error"})"));
  auto r = Source(3).Query("up{{");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "prometheus: bad_data: 1:5: parse error");
  EXPECT_EQ(server_->request_count(), 1u);
  EXPECT_TRUE(Sleeps().empty());
}

TEST_F(PrometheusRetryTest, ServerThatNeverAnswersTimesOutEveryAttempt) {
  server_->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  auto start = std::chrono::steady_clock::now();
  auto r = Source(1, Millis(300)).Query("up");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_TRUE(server_->WaitFor([&] { return server_->request_count() == 2; }, Millis(5000)));
  EXPECT_GE(took, Millis(550));
  EXPECT_LT(took, Millis(5000));
}

TEST_F(PrometheusRetryTest, UnreachableServerIsUnavailable) {
  PrometheusOptions o;
  o.base_url = "http://" + router::testing::RefusingAddress();
  o.retries = 2;
  int sleeps = 0;
  o.sleep = [&](Millis) { ++sleeps; };
  auto s = PrometheusSource::Create(o);
  ASSERT_TRUE(s.ok());
  auto r = s->Query("up");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(sleeps, 2);
}

TEST_F(PrometheusRetryTest, RangeQueryForm) {
  server_->SetBehavior(Behavior::Respond(200, R"({"status":"success","data":{
    "resultType":"matrix","result":[{"metric":{"slot":"blue"},"values":[[10,"1"],[20,"2"]]}]}})"));
  Clock::WallTime start{std::chrono::seconds(1700000000)};
  auto r = Source(0).QueryRange("x", start, start + std::chrono::seconds(60), Millis(1500));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->series.size(), 1u);
  EXPECT_EQ(r->series[0].labels.at("slot"), "blue");
  EXPECT_EQ(r->series[0].samples.size(), 2u);
  auto requests = server_->RecordedRequests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/prefix/api/v1/query_range");
  EXPECT_EQ(requests[0].body,
            "query=x&start=1700000000.000&end=1700000060.000&step=1.500&timeout=2.000");

  EXPECT_EQ(Source(0).QueryRange("x", start, start, Millis(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Source(0)
                .QueryRange("x", start + std::chrono::seconds(1), start, Millis(1000))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(PrometheusSourceTest, CreateValidates) {
  PrometheusOptions o;
  o.base_url = "localhost:9090";
  EXPECT_EQ(PrometheusSource::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.base_url = "http://localhost:9090";
  o.retries = -1;
  EXPECT_EQ(PrometheusSource::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.retries = 1;
  o.backoff_initial = Millis(5000);
  o.backoff_max = Millis(10);
  EXPECT_EQ(PrometheusSource::Create(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnout::sources
