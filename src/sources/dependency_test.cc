// Dependency checks against real things: loopback sockets, an HTTP server, a real PostgreSQL 15
// and real commands; the checker's state with a ManualClock for "since".

#include "sources/dependency.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "db/testing/pg_server.h"
#include "router/testing/test_upstream.h"

namespace turnout::sources {
namespace {

using router::testing::Behavior;
using router::testing::RefusingAddress;
using router::testing::TestUpstream;
using router::testing::WaitUntil;

auto* const kPg = ::testing::AddGlobalTestEnvironment(new turnout::db::testsupport::PgEnvironment);

CommandCheck Cmd(std::vector<std::string> argv, Millis timeout = Millis(10000)) {
  CommandCheck c;
  c.argv = std::move(argv);
  c.timeout = timeout;
  return c;
}

std::unique_ptr<TestUpstream> Server() {
  auto up = TestUpstream::Start("dep");
  EXPECT_TRUE(up.ok()) << up.status().ToString();
  return up.ok() ? std::move(up).value() : nullptr;
}

TEST(DependencyCheckTest, TcpUpAndRefused) {
  auto server = Server();
  ASSERT_TRUE(server);
  CheckResult up = RunCheck(TcpCheck{server->address(), Millis(2000)});
  EXPECT_TRUE(up.up) << up.detail;
  EXPECT_LT(up.latency, Millis(2000));
  EXPECT_TRUE(server->WaitFor([&] { return server->accepted_connections() == 1; }, Millis(5000)));

  CheckResult down = RunCheck(TcpCheck{RefusingAddress(), Millis(2000)});
  EXPECT_FALSE(down.up);
  EXPECT_NE(down.detail.find("Connection refused"), std::string::npos) << down.detail;

  CheckResult bad = RunCheck(TcpCheck{"no-port-here", Millis(100)});
  EXPECT_FALSE(bad.up);
  EXPECT_NE(bad.detail.find("not host:port"), std::string::npos) << bad.detail;
}

TEST(DependencyCheckTest, HttpStatusRange) {
  auto server = Server();
  ASSERT_TRUE(server);
  std::string url = "http://" + server->address() + "/health";
  server->SetBehavior(Behavior::Respond(204, ""));
  CheckResult ok = RunCheck(HttpCheck{url, 200, 299, Millis(2000)});
  EXPECT_TRUE(ok.up) << ok.detail;
  EXPECT_EQ(ok.detail, "GET " + url + ": status 204");

  server->SetBehavior(Behavior::Respond(503, "down"));
  CheckResult down = RunCheck(HttpCheck{url, 200, 399, Millis(2000)});
  EXPECT_FALSE(down.up);
  EXPECT_EQ(down.detail, "GET " + url + ": status 503 (expected 200..399)");
  // A wider range accepts it.
  EXPECT_TRUE(RunCheck(HttpCheck{url, 200, 599, Millis(2000)}).up);

  server->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  CheckResult hang = RunCheck(HttpCheck{url, 200, 399, Millis(300)});
  EXPECT_FALSE(hang.up);
  EXPECT_GE(hang.latency, Millis(250));
  EXPECT_NE(hang.detail.find("deadline exceeded"), std::string::npos) << hang.detail;

  CheckResult refused = RunCheck(HttpCheck{"http://" + RefusingAddress() + "/", 200, 399});
  EXPECT_FALSE(refused.up);
  EXPECT_NE(refused.detail.find("unavailable"), std::string::npos) << refused.detail;
}

TEST(DependencyCheckTest, PostgresSelectOne) {
  auto url = db::testsupport::PgEnvironment::server().CreateDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  CheckResult up = RunCheck(PostgresCheck{*url, Millis(2000), Millis(2000)});
  EXPECT_TRUE(up.up) << up.detail;
  EXPECT_EQ(up.detail, "SELECT 1 ok");

  // The key=value form works too.
  int port = db::testsupport::PgEnvironment::server().port();
  std::string kv = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres";
  EXPECT_TRUE(RunCheck(PostgresCheck{kv, Millis(2000), Millis(2000)}).up);

  std::string refused = "postgresql://postgres@" + RefusingAddress() + "/postgres";
  CheckResult down = RunCheck(PostgresCheck{refused, Millis(2000), Millis(2000)});
  EXPECT_FALSE(down.up);
  EXPECT_NE(down.detail.find("unavailable"), std::string::npos) << down.detail;

  CheckResult no_db = RunCheck(
      PostgresCheck{"postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/no_such_db",
                    Millis(2000), Millis(2000)});
  EXPECT_FALSE(no_db.up);
  EXPECT_NE(no_db.detail.find("no_such_db"), std::string::npos) << no_db.detail;
}

TEST(DependencyCheckTest, Commands) {
  CheckResult ok = RunCheck(Cmd({"sh", "-c", "exit 0"}, Millis(5000)));
  EXPECT_TRUE(ok.up) << ok.detail;

  CheckResult fail = RunCheck(Cmd({"sh", "-c", "echo broken link >&2; exit 3"}));
  EXPECT_FALSE(fail.up);
  EXPECT_NE(fail.detail.find("3"), std::string::npos) << fail.detail;
  EXPECT_NE(fail.detail.find("broken link"), std::string::npos) << fail.detail;

  CheckResult slow = RunCheck(Cmd({"sleep", "30"}, Millis(200)));
  EXPECT_FALSE(slow.up);
  EXPECT_LT(slow.latency, Millis(10000));
  EXPECT_NE(slow.detail.find("timed out"), std::string::npos) << slow.detail;

  CheckResult missing = RunCheck(Cmd({"/nonexistent/turnout-check"}));
  EXPECT_FALSE(missing.up);
  EXPECT_NE(missing.detail.find("turnout-check"), std::string::npos) << missing.detail;
}

TEST(DependencyCheckerTest, TracksStateAndSinceOnTheInjectedClock) {
  auto server = Server();
  ASSERT_TRUE(server);
  ManualClock clock;
  std::atomic<bool> healthy{true};
  server->SetHandler([&](const router::testing::ReceivedRequest&) {
    return Behavior::Respond(healthy ? 200 : 503, "");
  });
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> changes;
  std::atomic<int> results{0};
  DependencyChecker checker(
      {{"api", HttpCheck{"http://" + server->address() + "/", 200, 299, Millis(2000)}, Millis(20)},
       {"db-port", TcpCheck{RefusingAddress(), Millis(500)}, Millis(20)}},
      clock, [&](const std::string& name, const DependencyState& s, bool changed) {
        if (changed) {
          std::lock_guard<std::mutex> lock(mu);
          changes.emplace_back(name, s.up);
        }
        ++results;
      });
  EXPECT_FALSE(checker.Get("api").has_value());
  Clock::TimePoint t0 = clock.Now();
  ASSERT_TRUE(checker.Start().ok());
  EXPECT_EQ(checker.Start().code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(WaitUntil([&] { return checker.Snapshot().size() == 2; }));
  EXPECT_TRUE(checker.Get("api")->up);
  EXPECT_EQ(checker.Get("api")->since, t0);
  EXPECT_FALSE(checker.Get("db-port")->up);
  EXPECT_EQ(checker.Get("db-port")->since, t0);
  EXPECT_FALSE(checker.Get("nope").has_value());

  // Runs keep coming at the interval; "since" stays while nothing changes.
  clock.Advance(std::chrono::seconds(5));
  int seen = results.load();
  ASSERT_TRUE(WaitUntil([&] { return results.load() >= seen + 4; }));
  EXPECT_EQ(checker.Get("api")->since, t0);
  EXPECT_GE(checker.Get("db-port")->consecutive_failures, 2);

  healthy = false;
  ASSERT_TRUE(WaitUntil([&] { return !checker.Get("api")->up; }));
  auto api = *checker.Get("api");
  EXPECT_EQ(api.since, t0 + std::chrono::seconds(5));
  EXPECT_NE(api.last.detail.find("503"), std::string::npos);

  auto stop_start = std::chrono::steady_clock::now();
  checker.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, Millis(2000));
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::pair<std::string, bool>> api_changes;
  for (const auto& c : changes) {
    if (c.first == "api") api_changes.push_back(c);
  }
  EXPECT_EQ(api_changes,
            (std::vector<std::pair<std::string, bool>>{{"api", true}, {"api", false}}));
}

TEST(DependencyCheckerTest, StopsPromptlyWithLongIntervals) {
  DependencyChecker checker({{"cmd", Cmd({"true"}), std::chrono::hours(1)}});
  ASSERT_TRUE(checker.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return checker.Get("cmd").has_value(); }));
  EXPECT_TRUE(checker.Get("cmd")->up);
  auto start = std::chrono::steady_clock::now();
  checker.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, Millis(1000));
}

TEST(DependencyCheckerTest, RejectsBadDefinitions) {
  DependencyChecker dup({{"a", TcpCheck{"127.0.0.1:1"}}, {"a", TcpCheck{"127.0.0.1:2"}}});
  EXPECT_EQ(dup.Start().code(), StatusCode::kInvalidArgument);
  DependencyChecker zero({{"a", TcpCheck{"127.0.0.1:1"}, Millis(0)}});
  EXPECT_EQ(zero.Start().code(), StatusCode::kInvalidArgument);
  DependencyChecker unnamed({{"", TcpCheck{"127.0.0.1:1"}}});
  EXPECT_EQ(unnamed.Start().code(), StatusCode::kInvalidArgument);
}

TEST(DependencyCheckerTest, CheckAllNowRecordsSynchronously) {
  ManualClock clock;
  DependencyChecker checker({{"ok", Cmd({"true"})}, {"bad", Cmd({"false"})}}, clock);
  checker.CheckAllNow();
  EXPECT_TRUE(checker.Get("ok")->up);
  EXPECT_FALSE(checker.Get("bad")->up);
  EXPECT_EQ(checker.Get("bad")->consecutive_failures, 1);
  EXPECT_EQ(CheckKindName(CheckSpec{PostgresCheck{}}), "postgres");
}

}  // namespace
}  // namespace turnout::sources
