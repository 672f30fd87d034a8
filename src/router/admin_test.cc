// AdminServer and AdminClient over real loopback sockets, against an in-memory RouterControl.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http/api_support.h"
#include "router/admin_client.h"
#include "router/admin_json.h"
#include "router/admin_server.h"
#include "router/testing/in_memory_router.h"
#include "router/testing/raw_client.h"

namespace turnout::router {
namespace {

using nlohmann::json;
using testing::InMemoryRouter;
using testing::RawClient;
using testing::RawResponse;

class AdminTest : public ::testing::Test {
 protected:
  // A TCP admin API needs a token; every test's server has one.
  static constexpr std::string_view kToken = "t0ken";

  void StartServer(std::string token = std::string(kToken), size_t max_body = 1 << 20) {
    AdminServer::Options options;
    options.address = "127.0.0.1:0";
    options.token = token;
    options.max_body_bytes = max_body;
    options.max_head_bytes = 4096;
    server_ = std::make_unique<AdminServer>(options, router_, [] {
      return std::string("# TYPE turnout_requests_total counter\nturnout_requests_total 5\n");
    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->address(), "127.0.0.1:0");
  }
  std::unique_ptr<AdminClient> Client(std::string token = std::string(kToken)) {
    auto c = AdminClient::Create(server_->address(), token, Millis(5000));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  RawResponse Raw(std::string_view request) {
    RawClient raw;
    EXPECT_TRUE(raw.Connect(server_->address()).ok());
    return raw.RoundTrip(request, "GET");
  }
  // A request as a well-behaved client sends it (Host: the server's address, the token, and
  // Content-Type: application/json on a method that changes something), plus `extra` lines.
  std::string Request(std::string_view method, std::string_view target, std::string_view body,
                      std::string_view extra = "", bool with_token = true) const {
    std::string r = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: " + server_->address() + "\r\n" + std::string(extra);
    if (with_token) r += "Authorization: Bearer " + std::string(kToken) + "\r\n";
    if (http::IsMutatingMethod(method)) r += "Content-Type: application/json\r\n";
    if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + std::string(body);
  }

  InMemoryRouter router_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminTest, StatusRoundTripsThroughTheClient) {
  StartServer();
  auto status = Client()->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  auto expected = router_.GetStatus();
  EXPECT_EQ(status->generation, expected->generation);
  EXPECT_EQ(status->policy, expected->policy);
  EXPECT_EQ(status->listen, expected->listen);
  EXPECT_EQ(status->admin, expected->admin);
  ASSERT_EQ(status->slots.size(), 2u);
  EXPECT_EQ(status->slots[0].name, "blue");
  EXPECT_TRUE(status->slots[0].receives_traffic);
  EXPECT_EQ(status->slots[0].in_flight, 3);
  EXPECT_EQ(status->slots[0].tunnels, 1);
  ASSERT_EQ(status->slots[0].instances.size(), 2u);
  EXPECT_EQ(status->slots[0].instances[1].address, "127.0.0.1:9003");
  EXPECT_TRUE(status->slots[0].instances[1].ejected);
  EXPECT_EQ(status->slots[0].instances[1].in_flight, 2);
  EXPECT_TRUE(status->slots[1].drained);
}

TEST_F(AdminTest, PolicyGetAndPut) {
  StartServer();
  auto client = Client();
  RoutingPolicy p = *client->GetPolicy();
  EXPECT_EQ(p.active, "blue");
  p.canary = CanaryPolicy{.slot = "green", .weight_bp = 1234, .seed = 0};
  p.override_header.secret = "hush";
  const uint64_t before = router_.generation();
  auto g = client->SetPolicy(p);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, before + 1);
  RoutingPolicy stored = router_.policy();
  EXPECT_EQ(stored.canary->weight_bp, 1234u);
  EXPECT_NE(stored.canary->seed, 0u) << "a new canary gets a seed";
  EXPECT_EQ(stored.override_header.secret, "hush");

  // GET never shows the secret; PUTting the GET result back keeps it.
  RawResponse got = Raw(Request("GET", "/v1/policy", ""));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body.find("hush"), std::string::npos);
  RawResponse put = Raw(Request("PUT", "/v1/policy", got.body));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(router_.policy().override_header.secret, "hush");
  EXPECT_EQ(router_.policy().canary->seed, stored.canary->seed);
  json reply = json::parse(put.body);
  EXPECT_EQ(reply["generation"], before + 2);
  EXPECT_EQ(reply["policy"]["active"], "blue");
}

TEST_F(AdminTest, SwitchAndWeight) {
  StartServer();
  auto client = Client();
  auto g1 = client->SetCanaryWeight("green", 2500);
  ASSERT_TRUE(g1.ok()) << g1.status().ToString();
  RoutingPolicy p = router_.policy();
  ASSERT_TRUE(p.canary);
  EXPECT_EQ(p.canary->slot, "green");
  EXPECT_EQ(p.canary->weight_bp, 2500u);
  const uint64_t seed = p.canary->seed;
  EXPECT_NE(seed, 0u);

  ASSERT_TRUE(client->SetCanaryWeight("green", 1).ok());  // 0.01 % is exact
  EXPECT_EQ(router_.policy().canary->weight_bp, 1u);
  EXPECT_EQ(router_.policy().canary->seed, seed) << "changing only the weight keeps the seed";

  auto g2 = client->Switch("green");
  ASSERT_TRUE(g2.ok());
  EXPECT_GT(*g2, *g1);
  EXPECT_EQ(router_.policy().active, "green");
  EXPECT_FALSE(router_.policy().canary.has_value());

  RawResponse r = Raw(Request("POST", "/v1/weight", R"({"slot":"blue","weight":12.5})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(router_.policy().canary->weight_bp, 1250u);
  EXPECT_EQ(json::parse(r.body)["policy"]["canary"]["weight"], 12.5);
}

TEST_F(AdminTest, BadWeightIsRefusedAndThePolicyStays) {
  StartServer();
  ASSERT_TRUE(Client()->SetCanaryWeight("green", 500).ok());
  const RoutingPolicy before = router_.policy();
  const uint64_t generation = router_.generation();
  for (const char* body : {R"({"slot":"green","weight":100.01})", R"({"slot":"green","weight":-1})",
                           R"({"slot":"green","weight":"1.234"})", R"({"slot":"green"})",
                           R"({"weight":5})", R"({"slot":"blue","weight":5})", "[]", "nope"}) {
    RawResponse r = Raw(Request("POST", "/v1/weight", body));
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  auto direct = Client()->SetCanaryWeight("green", 10001);
  EXPECT_EQ(direct.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router_.policy(), before);
  EXPECT_EQ(router_.generation(), generation);
}

TEST_F(AdminTest, BadPolicyJsonIsRefused) {
  StartServer();
  const RoutingPolicy before = router_.policy();
  RawResponse r = Raw(Request("PUT", "/v1/policy", "{\"active\":"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid JSON"), std::string::npos) << r.body;
  r = Raw(
      Request("PUT", "/v1/policy", R"({"active":"blue","canary":{"slot":"green","weight":"x"}})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("policy.canary.weight"), std::string::npos) << r.body;
  r = Raw(Request("PUT", "/v1/policy", R"({"active":"blue","colour":"red"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(router_.policy(), before);
}

TEST_F(AdminTest, UnknownSlotIs404) {
  StartServer();
  auto client = Client();
  auto s = client->GetSlotStatus("red");
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("red"), std::string::npos);
  auto sw = client->Switch("red");
  EXPECT_EQ(sw.status().code(), StatusCode::kNotFound);
  EXPECT_NE(sw.status().message().find("known slots: blue, green"), std::string::npos)
      << sw.status().message();
  EXPECT_EQ(router_.policy().active, "blue");
  EXPECT_EQ(client->SetSlotInstances("red", {"127.0.0.1:1"}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Raw(Request("GET", "/v1/slots/a%2Fb", "")).status, 404);
  EXPECT_EQ(Raw(Request("GET", "/v2/nothing", "")).status, 404);
}

TEST_F(AdminTest, SlotStatusAndInstances) {
  StartServer();
  auto client = Client();
  auto green = client->GetSlotStatus("green");
  ASSERT_TRUE(green.ok());
  EXPECT_EQ(green->name, "green");
  EXPECT_TRUE(green->drained);
  const uint64_t before = router_.generation();
  auto g = client->SetSlotInstances("green", {"127.0.0.1:9100", "127.0.0.1:9101"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, before + 1);
  EXPECT_EQ(router_.instances("green"),
            (std::vector<std::string>{"127.0.0.1:9100", "127.0.0.1:9101"}));
  RawResponse r = Raw(Request("PUT", "/v1/slots/green/instances", R"({"instances":["nope"]})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(router_.instances("green").size(), 2u);
}

TEST_F(AdminTest, WindowMetricsArriveExactly) {
  StartServer();
  auto client = Client();
  auto m = client->GetWindowMetrics(std::chrono::seconds(30));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(router_.last_window(), std::chrono::seconds(30));
  auto expected = *router_.GetWindowMetrics(std::chrono::seconds(30));
  ASSERT_EQ(m->size(), 1u);
  const auto& got = (*m)[0];
  EXPECT_EQ(got.slot, "blue");
  EXPECT_EQ(got.window.counters.requests, 5u);
  EXPECT_EQ(got.window.counters.by_class, expected[0].window.counters.by_class);
  EXPECT_EQ(got.window.counters.router_errors, expected[0].window.counters.router_errors);
  EXPECT_EQ(got.window.counters.bytes_out, 2000u);
  EXPECT_EQ(got.window.total_latency.count, 5u);
  EXPECT_EQ(got.window.total_latency.buckets, expected[0].window.total_latency.buckets);
  EXPECT_DOUBLE_EQ(got.window.total_latency.PercentileUs(99),
                   expected[0].window.total_latency.PercentileUs(99));

  RawResponse r = Raw(Request("GET", "/v1/metrics?window=60", ""));
  ASSERT_EQ(r.status, 200);
  json j = json::parse(r.body);
  EXPECT_EQ(j["window_seconds"], 60);
  EXPECT_EQ(j["slots"][0]["responses"]["5xx"], 1);
  EXPECT_EQ(j["slots"][0]["router_errors"]["upstream_timeout"], 1) << r.body;
  EXPECT_DOUBLE_EQ(j["slots"][0]["error_rate"].get<double>(), 0.2);
  EXPECT_NEAR(j["slots"][0]["latency_ms"]["max"].get<double>(), 50.0, 0.5);
  // window=0 asks for the totals since start, which this control refuses.
  EXPECT_EQ(Raw(Request("GET", "/v1/metrics?window=0", "")).status, 409);
  EXPECT_EQ(Raw(Request("GET", "/v1/metrics?window=-1", "")).status, 400);
  EXPECT_EQ(Raw(Request("GET", "/v1/metrics?window=abc", "")).status, 400);
}

TEST_F(AdminTest, PrometheusHealthzAndMethods) {
  StartServer();
  RawResponse prom = Raw(Request("GET", "/metrics", ""));
  ASSERT_EQ(prom.status, 200);
  EXPECT_EQ(prom.Header("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(prom.body.find("turnout_requests_total 5"), std::string::npos);
  RawResponse health = Raw(Request("GET", "/healthz", ""));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  RawResponse wrong = Raw(Request("DELETE", "/v1/policy", ""));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("Allow"), "GET, PUT");
  EXPECT_EQ(Raw(Request("GET", "/v1/switch", "")).status, 405);
}

// A reply to HEAD keeps its Content-Length and has no body (RFC 9110 §9.3.2).
TEST_F(AdminTest, AReplyToHeadHasNoBody) {
  StartServer();
  RawClient raw;
  ASSERT_TRUE(raw.Connect(server_->address()).ok());
  RawResponse r = raw.RoundTrip(Request("HEAD", "/v1/status", ""), "HEAD");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "GET");
  EXPECT_NE(r.Header("Content-Length"), "0");
  EXPECT_EQ(r.body, "");
  // The connection is still in step: the next request gets its own reply.
  EXPECT_EQ(raw.RoundTrip(Request("GET", "/healthz", "")).status, 200);
}

TEST_F(AdminTest, TokenIsRequiredExceptForHealthz) {
  StartServer("s3cret-token");
  auto anonymous = Client("");
  auto s = anonymous->GetStatus();
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("token"), std::string::npos) << s.status().message();
  auto wrong = Client("guess")->Switch("green");
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(router_.policy().active, "blue");
  RawResponse r = Raw(Request("GET", "/v1/status", "", "", /*with_token=*/false));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Raw(Request("GET", "/metrics", "", "", false)).status, 401);
  EXPECT_EQ(Raw(Request("GET", "/healthz", "", "", false)).status, 200);
  EXPECT_EQ(router_.policy().active, "blue");
  auto good = Client("s3cret-token")->Switch("green");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(router_.policy().active, "green");
}

TEST(AdminClientTest, AMisdirectedRequestIsRefusedAndTheClientSaysWhy) {
  InMemoryRouter router;
  AdminServer::Options options;
  options.address = "0.0.0.0:0";  // reachable on every loopback address
  options.token = "t";
  AdminServer server(options, router, nullptr);
  ASSERT_TRUE(server.Start().ok());
  const std::string port = server.address().substr(server.address().rfind(':'));
  // 127.0.0.2 reaches it, but is not a name it answers to (it is not one of its own).
  auto client = AdminClient::Create("127.0.0.2" + port, "t", Millis(5000));
  ASSERT_TRUE(client.ok());
  auto refused = (*client)->Switch("green");
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("answers only to Host"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(router.policy().active, "blue");
  auto ok = AdminClient::Create("127.0.0.1" + port, "t", Millis(5000));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE((*ok)->Switch("green").ok());
}

TEST_F(AdminTest, ConfiguredHostNamesAndTheirOriginsAreTheAdminsOwn) {
  AdminServer::Options options;
  options.address = "127.0.0.1:0";
  options.token = std::string(kToken);
  options.allowed_hosts = {"Router.Internal"};
  server_ = std::make_unique<AdminServer>(options, router_, nullptr);
  ASSERT_TRUE(server_->Start().ok());
  const std::string port = server_->address().substr(server_->address().rfind(':') + 1);
  auto get = [&](std::string_view host, std::string_view origin) {
    std::string r = "GET /v1/status HTTP/1.1\r\nHost: " + std::string(host) +
                    "\r\nAuthorization: Bearer " + std::string(kToken) + "\r\n";
    if (!origin.empty()) r += "Origin: " + std::string(origin) + "\r\n";
    return Raw(r + "\r\n").status;
  };
  EXPECT_EQ(get("router.internal:" + port, ""), 200);
  EXPECT_EQ(get("localhost:" + port, "http://router.internal:" + port), 200);
  EXPECT_EQ(get("[::1]:" + port, ""), 200);
  EXPECT_EQ(get("router.internal.evil.example:" + port, ""), 421);
  EXPECT_EQ(get("localhost:" + port, "http://evil.example"), 403);
  // /healthz passes no check at all.
  EXPECT_EQ(Raw("GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n").status, 200);
}

TEST_F(AdminTest, OversizeBodyAndHeadAreRefused) {
  StartServer(std::string(kToken), /*max_body=*/1024);
  RawClient raw;
  ASSERT_TRUE(raw.Connect(server_->address()).ok());
  // The server answers from the head alone, without waiting for the 2 MiB.
  RawResponse big =
      raw.RoundTrip("PUT /v1/policy HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\n\r\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(raw.WaitForClose(Millis(5000)), testing::CloseKind::kClosed);

  std::string huge_head =
      "GET /v1/status HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(8000, 'p') + "\r\n\r\n";
  EXPECT_EQ(Raw(huge_head).status, 431);
  EXPECT_EQ(Raw(Request("PUT", "/v1/policy", "", "Transfer-Encoding: chunked\r\n")).status, 411);
}

TEST_F(AdminTest, GarbageGets400AndTheServerKeepsServing) {
  StartServer();
  for (std::string_view junk :
       {std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
        std::string_view("GET / HTTP/1.1\nHost: a\n\n"),
        std::string_view("POST /v1/switch HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                         "Content-Length: 2\r\n\r\nab"),
        std::string_view("NOT A REQUEST\r\n\r\n")}) {
    RawClient raw;
    ASSERT_TRUE(raw.Connect(server_->address()).ok());
    RawResponse r = raw.RoundTrip(junk);
    EXPECT_EQ(r.status, 400) << testing::OutcomeName(r.outcome) << " " << r.error;
    EXPECT_EQ(raw.WaitForClose(Millis(5000)), testing::CloseKind::kClosed);
  }
  auto status = Client()->GetStatus();
  EXPECT_TRUE(status.ok()) << status.status().ToString();
}

TEST_F(AdminTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  RawClient raw;
  ASSERT_TRUE(raw.Connect(server_->address()).ok());
  for (int i = 0; i < 3; ++i) {
    RawResponse r = raw.RoundTrip(Request("GET", "/v1/policy", ""));
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_TRUE(r.keep_alive);
  }
  // Two pipelined requests, answered in order.
  ASSERT_TRUE(raw.Send(Request("POST", "/v1/switch", R"({"slot":"green"})") +
                       Request("GET", "/v1/slots/green", "", "Connection: close\r\n"))
                  .ok());
  RawResponse first = raw.ReadResponse();
  RawResponse second = raw.ReadResponse();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(second.status, 200);
  EXPECT_NE(second.body.find("\"receives_traffic\":true"), std::string::npos) << second.body;
  EXPECT_EQ(raw.WaitForClose(Millis(5000)), testing::CloseKind::kClosed);
}

TEST_F(AdminTest, StopClosesIdleConnectionsPromptly) {
  StartServer();
  RawClient idle;
  ASSERT_TRUE(idle.Connect(server_->address()).ok());
  ASSERT_EQ(idle.RoundTrip(Request("GET", "/healthz", "")).status, 200);
  auto started = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(idle.WaitForClose(Millis(5000)), testing::CloseKind::kClosed);
  server_->Stop();  // idempotent
}

TEST_F(AdminTest, ConcurrentClientsAreAllServed) {
  StartServer();
  const uint64_t before = router_.generation();
  constexpr int kThreads = 6;
  constexpr int kChangesPerThread = 20;
  auto client = Client();  // one client shared by every thread: its calls are independent
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kChangesPerThread; ++i) {
        auto g = client->SetCanaryWeight("green", static_cast<uint32_t>(t * 100 + i));
        auto s = client->GetStatus();
        if (!g.ok() || !s.ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(router_.generation(), before + kThreads * kChangesPerThread);
}

TEST(AdminClientTest, UnreachableRouterSaysWhatToDo) {
  // A port that was just free: bind, read it, close.
  std::string address;
  {
    AdminServer::Options options;
    options.address = "127.0.0.1:0";
    options.token = "t";
    InMemoryRouter router;
    AdminServer server(options, router, nullptr);
    ASSERT_TRUE(server.Start().ok());
    address = server.address();
  }
  auto client = AdminClient::Create(address, "", Millis(3000));
  ASSERT_TRUE(client.ok());
  auto s = (*client)->GetStatus();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("cannot reach the router's admin API at " + address +
                                      ": GET http://" + address + "/v1/status: connection refused"),
            std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("--admin"), std::string::npos);
  EXPECT_FALSE(AdminClient::Create("nonsense", "", Millis(1000)).ok());
}

// Handle serves other transports too, which may hand it any bytes: a path that is not UTF-8 got a
// 500 (the JSON writer threw on the path echoed in the 404 message) instead of the 404.
TEST(AdminServerTest, PathThatIsNotUtf8IsA404NotA500) {
  InMemoryRouter router;
  // On a Unix socket (never started here) the checks read no Host, so the path is reached.
  AdminServer server(AdminServer::Options{.address = "unix:/nonexistent/admin.sock"}, router,
                     nullptr);
  for (std::string_view path : {"/v1/wei\xcaght", "/v1/slots/\xff", "/\xc3"}) {
    const AdminServer::Reply reply = server.Handle({.method = "GET", .target = path});
    EXPECT_EQ(reply.status, 404) << reply.body;
    const json j = json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << reply.body;
    EXPECT_FALSE(j.value("error", "").empty()) << reply.body;
  }
}

TEST(AdminServerTest, RefusesAnAddressInUse) {
  InMemoryRouter router;
  AdminServer::Options options;
  options.address = "127.0.0.1:0";
  options.token = "t";
  AdminServer first(options, router, nullptr);
  ASSERT_TRUE(first.Start().ok());
  options.address = first.address();
  AdminServer second(options, router, nullptr);
  Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find(first.address()), std::string::npos) << s.message();
}

TEST(AdminServerTest, TcpWithoutATokenDoesNotStartAndSaysWhatToDo) {
  InMemoryRouter router;
  AdminServer::Options options;
  options.address = "127.0.0.1:0";
  AdminServer server(options, router, nullptr);
  Status s = server.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--admin-token"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unix:"), std::string::npos) << s.message();
}

// ---- The admin API on a Unix socket ----------------------------------------------------------

class AdminUnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/turnout-admin-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string SocketPath() const { return dir_ + "/admin.sock"; }
  std::unique_ptr<AdminServer> Server() {
    AdminServer::Options options;
    options.address = "unix:" + SocketPath();
    return std::make_unique<AdminServer>(options, router_, [] { return std::string("m 1\n"); });
  }
  static std::unique_ptr<AdminClient> ClientFor(const std::string& address) {
    auto c = AdminClient::Create(address, "", Millis(5000));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  // A socket file with nothing listening on it, as a crashed process leaves behind.
  void LeaveStaleSocket() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", SocketPath().c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }

  std::string dir_;
  InMemoryRouter router_;
};

TEST_F(AdminUnixSocketTest, ServesTheApiWithModeOwnerOnlyAndRemovesTheFileOnStop) {
  auto server = Server();
  ASSERT_TRUE(server->Start().ok());
  EXPECT_EQ(server->address(), "unix:" + SocketPath());
  struct stat st {};
  ASSERT_EQ(::lstat(SocketPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  auto client = ClientFor(server->address());
  auto g = client->Switch("green");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(router_.policy().active, "green");
  auto status = client->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->policy.active, "green");
  auto text = client->PrometheusText();
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "m 1\n");

  server->Stop();
  EXPECT_FALSE(std::filesystem::exists(SocketPath()));
  auto gone = client->GetStatus();
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(gone.status().message().find("unix:" + SocketPath()), std::string::npos)
      << gone.status().message();
}

TEST_F(AdminUnixSocketTest, AStaleSocketFileIsReplaced) {
  LeaveStaleSocket();
  ASSERT_TRUE(std::filesystem::exists(SocketPath()));
  auto server = Server();
  Status s = server->Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(ClientFor(server->address())->GetStatus().ok());
}

TEST_F(AdminUnixSocketTest, ALiveSocketIsNotTakenOver) {
  auto first = Server();
  ASSERT_TRUE(first->Start().ok());
  auto second = Server();
  Status s = second->Start();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("is in use"), std::string::npos) << s.message();
  second->Stop();
  // The refused server neither removed nor broke the first one's socket.
  EXPECT_TRUE(ClientFor(first->address())->GetStatus().ok());
}

TEST_F(AdminUnixSocketTest, AFileThatIsNotASocketIsNeverReplaced) {
  { std::ofstream(SocketPath()) << "keep me"; }
  auto server = Server();
  EXPECT_EQ(server->Start().code(), StatusCode::kAlreadyExists);
  std::ifstream in(SocketPath());
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(AdminUnixSocketTest, NoRouterThereSaysWhatToDo) {
  auto s = ClientFor("unix:" + SocketPath())->GetStatus();
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("--admin"), std::string::npos) << s.status().message();
  EXPECT_FALSE(AdminClient::Create("unix:", "", Millis(1000)).ok());
}

}  // namespace
}  // namespace turnout::router
