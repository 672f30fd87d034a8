// The admin API in front of the real data plane: AdminServer over an in-process Router, driven
// by AdminClient, with real upstreams on loopback, checking where requests actually go.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "http/api_support.h"
#include "router/admin_client.h"
#include "router/admin_server.h"
#include "router/policy.h"
#include "router/router.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

class AdminRouterTest : public testing::RouterTest {
 protected:
  void SetUp() override {
    blue_ = &AddUpstream("blue");
    green_ = &AddUpstream("green");
    ASSERT_TRUE(StartRouter(testing::MakeTestRouterConfig(
        {{"blue", {blue_->address()}}, {"green", {green_->address()}}}, "blue")));
    AdminServer::Options options;
    options.address = "127.0.0.1:0";
    options.token = "tkn";
    Router* r = &router();
    admin_ = std::make_unique<AdminServer>(options, router(), [r] { return r->PrometheusText(); });
    ASSERT_TRUE(admin_->Start().ok());
    auto client = AdminClient::Create(admin_->address(), "tkn", Millis(5000));
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
  }
  void TearDown() override {
    admin_->Stop();  // before the router it serves
    if (unix_admin_) unix_admin_->Stop();
    if (!socket_dir_.empty()) std::filesystem::remove_all(socket_dir_);
    testing::RouterTest::TearDown();
  }

  // A second admin server for the same router on a Unix socket (no token: the file mode is the
  // access check); returns its address.
  std::string StartUnixAdmin() {
    std::string pattern = "/tmp/turnout-admin-XXXXXX";
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    socket_dir_ = pattern;
    AdminServer::Options options;
    options.address = "unix:" + socket_dir_ + "/admin.sock";
    unix_admin_ = std::make_unique<AdminServer>(options, router(), nullptr);
    Status s = unix_admin_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return unix_admin_->address();
  }

  // Sends `request` as is on a new connection to `address` and returns the reply.
  static testing::RawResponse Send(const std::string& address, const std::string& request) {
    testing::RawClient raw;
    Status s = raw.Connect(address);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return raw.RoundTrip(request, "POST");
  }

  // A request as curl sends it: `curl -X METHOD [-H ...] -d BODY http://HOST/TARGET`.
  static std::string CurlRequest(std::string_view method, std::string_view target,
                                 std::string_view host, std::string_view headers,
                                 std::string_view body) {
    return std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: " + std::string(host) +
           "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" + std::string(headers) +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  }

  std::vector<std::string> BlueInstances() {
    auto s = client_->GetSlotStatus("blue");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    std::vector<std::string> out;
    if (s.ok()) {
      for (const auto& i : s->instances) out.push_back(i.address);
    }
    return out;
  }

  std::string UpstreamOf(std::string_view extra_headers = "") {
    testing::RawResponse r = Get("/", extra_headers);
    EXPECT_EQ(r.status, 200) << r.error;
    return r.Header("X-Upstream");
  }

  testing::TestUpstream* blue_ = nullptr;
  testing::TestUpstream* green_ = nullptr;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<AdminClient> client_;
  std::unique_ptr<AdminServer> unix_admin_;
  std::string socket_dir_;
};

// The probe's first finding: a cross-site "simple" POST (text/plain, so a web page sends it
// without a CORS preflight) moved every user to green.
TEST_F(AdminRouterTest, CrossSiteSimpleSwitchIsRefused) {
  const std::string unix_admin = StartUnixAdmin();
  constexpr std::string_view kBody = R"({"slot":"green"})";
  constexpr std::string_view kCrossSite =
      "Content-Type: text/plain\r\nOrigin: http://evil.example\r\n";
  // Byte for byte the probe's request, on the socket that needs no token.
  testing::RawResponse on_socket =
      Send(unix_admin, CurlRequest("POST", "/v1/switch", "localhost", kCrossSite, kBody));
  EXPECT_EQ(on_socket.status, 403) << on_socket.body;
  EXPECT_NE(on_socket.body.find("cross-site"), std::string::npos) << on_socket.body;
  // On TCP, without the token (refused as cross-site before the token is looked at), and even
  // with it.
  EXPECT_EQ(Send(admin_->address(),
                 CurlRequest("POST", "/v1/switch", admin_->address(), kCrossSite, kBody))
                .status,
            403);
  testing::RawResponse with_token =
      Send(admin_->address(),
           CurlRequest("POST", "/v1/switch", admin_->address(),
                       std::string(kCrossSite) + "Authorization: Bearer tkn\r\n", kBody));
  EXPECT_EQ(with_token.status, 403) << with_token.body;
  // A same-origin request with text/plain is refused too: only JSON changes anything.
  testing::RawResponse plain =
      Send(admin_->address(),
           CurlRequest("POST", "/v1/switch", admin_->address(),
                       "Content-Type: text/plain\r\nAuthorization: Bearer tkn\r\n", kBody));
  EXPECT_EQ(plain.status, 415) << plain.body;
  EXPECT_NE(plain.body.find("Content-Type: application/json"), std::string::npos) << plain.body;

  auto policy = client_->GetPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->active, "blue");
  EXPECT_EQ(UpstreamOf(), "blue");
}

// The probe's second finding: a page on a DNS-rebound name (rebind.evil.example resolving to
// 127.0.0.1) replaced the instances of the active slot.
TEST_F(AdminRouterTest, DnsReboundHostIsRefused) {
  const std::string unix_admin = StartUnixAdmin();
  const std::vector<std::string> before = BlueInstances();
  ASSERT_EQ(before.size(), 1u);
  constexpr std::string_view kBody = R"({"instances":["127.0.0.1:6666"]})";
  // curl -d sends application/x-www-form-urlencoded.
  constexpr std::string_view kForm = "Content-Type: application/x-www-form-urlencoded\r\n";
  const std::string port = admin_->address().substr(admin_->address().rfind(':') + 1);
  const std::string rebound = "rebind.evil.example:" + port;
  testing::RawResponse probe = Send(
      admin_->address(), CurlRequest("PUT", "/v1/slots/blue/instances", rebound, kForm, kBody));
  EXPECT_EQ(probe.status, 421) << probe.body;
  EXPECT_NE(probe.body.find("Host"), std::string::npos) << probe.body;
  // Even a page that had the token and sent JSON.
  testing::RawResponse with_token =
      Send(admin_->address(),
           CurlRequest("PUT", "/v1/slots/blue/instances", rebound,
                       "Content-Type: application/json\r\nAuthorization: Bearer tkn\r\n", kBody));
  EXPECT_EQ(with_token.status, 421) << with_token.body;
  // No browser reaches the socket file, so its Host is not checked, but the form body is refused.
  testing::RawResponse on_socket =
      Send(unix_admin, CurlRequest("PUT", "/v1/slots/blue/instances", rebound, kForm, kBody));
  EXPECT_EQ(on_socket.status, 415) << on_socket.body;

  EXPECT_EQ(BlueInstances(), before);
  EXPECT_EQ(UpstreamOf(), "blue");
}

TEST_F(AdminRouterTest, SwitchAndCanaryMoveRealTraffic) {
  EXPECT_EQ(UpstreamOf(), "blue");

  auto g1 = client_->Switch("green");
  ASSERT_TRUE(g1.ok()) << g1.status().ToString();
  // The contract of SetPolicy: every request that starts after it returned uses the new policy.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(UpstreamOf(), "green");

  auto g2 = client_->SetCanaryWeight("blue", 10000);
  ASSERT_TRUE(g2.ok()) << g2.status().ToString();
  EXPECT_GT(*g2, *g1);
  EXPECT_EQ(UpstreamOf("Cookie: turnout_sticky=client-1\r\n"), "blue");
  ASSERT_TRUE(client_->SetCanaryWeight("blue", 0).ok());
  EXPECT_EQ(UpstreamOf("Cookie: turnout_sticky=client-1\r\n"), "green");

  // Refused changes leave routing alone.
  EXPECT_EQ(client_->Switch("red").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(client_->SetCanaryWeight("green", 500).ok());  // green is the active slot
  EXPECT_EQ(UpstreamOf(), "green");

  auto status = client_->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->policy.active, "green");
  ASSERT_EQ(status->slots.size(), 2u);
  for (const auto& s : status->slots) {
    EXPECT_EQ(s.receives_traffic, s.name == "green") << s.name;
    ASSERT_EQ(s.instances.size(), 1u);
  }
  EXPECT_EQ(status->listen.size(), 1u);
}

TEST_F(AdminRouterTest, InstancesDrainAndMetrics) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(UpstreamOf(), "blue");
  // Point blue at green's upstream: the next requests reach it.
  ASSERT_TRUE(client_->SetSlotInstances("blue", {green_->address()}).ok());
  EXPECT_EQ(UpstreamOf(), "green");
  auto bad = client_->SetSlotInstances("blue", {"not-an-address"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);

  auto green = client_->GetSlotStatus("green");
  ASSERT_TRUE(green.ok());
  EXPECT_FALSE(green->receives_traffic);
  EXPECT_TRUE(green->drained);
  EXPECT_EQ(client_->GetSlotStatus("red").status().code(), StatusCode::kNotFound);

  // A request is recorded when it ends, which may be just after its client saw the response.
  auto blue_requests = [&]() -> uint64_t {
    auto m = client_->GetWindowMetrics(std::chrono::seconds(60));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return 0;
    for (const auto& s : *m) {
      if (s.slot == "blue") return s.window.counters.requests;
    }
    return 0;
  };
  EXPECT_TRUE(testing::WaitUntil([&] { return blue_requests() == 4; }, Millis(5000)))
      << blue_requests();
  // The totals since start arrive through the same API (window=0) and match the window's.
  auto totals = client_->GetCumulativeMetrics();
  ASSERT_TRUE(totals.ok()) << totals.status().ToString();
  for (const auto& s : *totals) {
    EXPECT_EQ(s.window.window.count(), 0);
    if (s.slot == "blue") {
      EXPECT_EQ(s.window.counters.requests, 4u);
      EXPECT_EQ(s.window.total_latency.count, 4u);
    }
  }
  auto prom = client_->PrometheusText();
  ASSERT_TRUE(prom.ok());
  EXPECT_NE(prom->find("turnout_requests_total{slot=\"blue\"} 4"), std::string::npos) << *prom;
}

// The authorization matrix: every endpoint of the admin API (from AdminServer::Endpoints) on TCP
// with a token, times six kinds of request, each with the status it must get. The refused cells
// run first, and then nothing may have changed; the allowed cells run last.
TEST_F(AdminRouterTest, AuthorizationMatrix) {
  enum Kind {
    kNoCredentials,
    kWrongToken,
    kRightToken,
    kCrossSiteOrigin,
    kForeignHost,
    kTextPlain
  };
  constexpr const char* kKindNames[] = {"no credentials",
                                        "wrong token",
                                        "right token",
                                        "right token + cross-site Origin",
                                        "right token + foreign Host",
                                        "right token + text/plain"};
  // A valid body per endpoint that takes one, leaving routing as it is when applied.
  const std::map<std::string, std::string> bodies = {
      {"PUT /v1/policy", R"({"active":"blue"})"},
      {"POST /v1/switch", R"({"slot":"blue"})"},
      {"POST /v1/weight", R"({"slot":"green","weight":0})"},
      {"PUT /v1/slots/{name}/instances", R"({"instances":[")" + blue_->address() + R"("]})"},
  };
  auto expected = [](const AdminServer::Endpoint& e, Kind kind) {
    if (e.path == "/healthz") return 200;  // open to all: it says "ok" and nothing else
    switch (kind) {
      case kNoCredentials:
      case kWrongToken:
        return 401;
      case kRightToken:
        return 200;
      case kCrossSiteOrigin:
        return 403;
      case kForeignHost:
        return 421;
      case kTextPlain:
        return http::IsMutatingMethod(e.method) ? 415 : 200;
    }
    return 0;
  };
  auto request = [&](const AdminServer::Endpoint& e, Kind kind) {
    std::string target(e.path);
    if (auto at = target.find("{name}"); at != std::string::npos) target.replace(at, 6, "blue");
    const std::string key = std::string(e.method) + " " + std::string(e.path);
    const std::string body = bodies.count(key) ? bodies.at(key) : "";
    std::string headers;
    if (kind == kWrongToken) headers += "Authorization: Bearer guess\r\n";
    if (kind >= kRightToken) headers += "Authorization: Bearer tkn\r\n";
    if (kind == kCrossSiteOrigin) headers += "Origin: http://evil.example\r\n";
    headers +=
        kind == kTextPlain ? "Content-Type: text/plain\r\n" : "Content-Type: application/json\r\n";
    const std::string host =
        kind == kForeignHost
            ? "rebind.evil.example" + admin_->address().substr(admin_->address().rfind(':'))
            : admin_->address();
    return CurlRequest(e.method, target, host, headers, body);
  };

  ASSERT_GE(AdminServer::Endpoints().size(), 10u);
  for (const auto& e : AdminServer::Endpoints()) {
    if (http::IsMutatingMethod(e.method)) {
      EXPECT_TRUE(bodies.count(std::string(e.method) + " " + std::string(e.path)))
          << "give the matrix a body for " << e.method << " " << e.path;
    }
  }
  auto before = client_->GetStatus();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const std::vector<std::string> instances_before = BlueInstances();

  int cells = 0;
  int unexpected_allows = 0;
  auto run = [&](Kind kind) {
    for (const auto& e : AdminServer::Endpoints()) {
      testing::RawResponse r = Send(admin_->address(), request(e, kind));
      const int want = expected(e, kind);
      ++cells;
      EXPECT_EQ(r.status, want) << e.method << " " << e.path << " with " << kKindNames[kind] << ": "
                                << r.body;
      if (want >= 400 && r.status >= 200 && r.status < 300) ++unexpected_allows;
    }
  };
  for (Kind kind : {kNoCredentials, kWrongToken, kCrossSiteOrigin, kForeignHost, kTextPlain}) {
    run(kind);
  }
  // Nothing that was refused changed anything.
  auto after = client_->GetStatus();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->generation, before->generation);
  EXPECT_EQ(PolicyToJson(after->policy), PolicyToJson(before->policy));
  EXPECT_EQ(BlueInstances(), instances_before);
  run(kRightToken);
  EXPECT_EQ(cells, 6 * static_cast<int>(AdminServer::Endpoints().size()));
  EXPECT_EQ(unexpected_allows, 0);
  EXPECT_EQ(UpstreamOf(), "blue");
}

}  // namespace
}  // namespace turnout::router
