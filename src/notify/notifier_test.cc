// Notifier against real receivers: loopback HTTP servers that fail a given number of times and
// then succeed (router::testing::TestUpstream), and real commands. Backoffs go through an
// injected recorder, so nothing here sleeps.

#include "notify/notifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "platform/testing/test_util.h"
#include "router/testing/test_upstream.h"

namespace turnout::notify {
namespace {

using json = nlohmann::json;
using router::testing::Behavior;
using router::testing::TestUpstream;
using ::testing::HasSubstr;

Event RolledBack() {
  Event e;
  e.name = "rolled_back";
  e.service = "checkout";
  e.version = "v2";
  e.slot = "green";
  e.revision = 7;
  e.deployment_id = "d-42";
  e.reason = "error rate 7.1% > 5% for 2m";
  e.evidence_json = R"({"requests":1200,"errors":85,"error_rate":0.0708})";
  e.time = Clock::WallTime(std::chrono::seconds(1700000000));
  return e;
}

Hook Webhook(const std::string& url, int retries, std::vector<std::string> on = {"*"}) {
  Hook h;
  h.name = "slack";
  h.on = std::move(on);
  h.webhook_url = url;
  h.retries = retries;
  h.timeout = Millis(2000);
  return h;
}

// Collects deliveries, warnings and backoff waits.
struct Recorder {
  std::mutex mu;
  std::vector<Delivery> deliveries;
  std::vector<std::string> warnings;
  std::vector<Millis> sleeps;

  NotifierOptions Options() {
    NotifierOptions o;
    o.backoff_initial = Millis(100);
    o.backoff_max = Millis(300);
    o.on_delivery = [this](const Delivery& d) {
      std::lock_guard<std::mutex> lock(mu);
      deliveries.push_back(d);
    };
    o.on_warning = [this](const std::string& w) {
      std::lock_guard<std::mutex> lock(mu);
      warnings.push_back(w);
    };
    o.sleep = [this](Millis d) {
      std::lock_guard<std::mutex> lock(mu);
      sleeps.push_back(d);
    };
    return o;
  }
  std::vector<Delivery> Deliveries() {
    std::lock_guard<std::mutex> lock(mu);
    return deliveries;
  }
};

std::unique_ptr<TestUpstream> Receiver() {
  auto up = TestUpstream::Start("hook");
  EXPECT_TRUE(up.ok()) << up.status().ToString();
  return up.ok() ? std::move(up).value() : nullptr;
}

TEST(SlackBodyTest, TextBlocksAndStructuredFields) {
  Event e = RolledBack();
  e.reason += " <see dashboard>";
  json body = json::parse(SlackBody(e));
  EXPECT_EQ(body["text"],
            "checkout: v2 was rolled back: error rate 7.1% > 5% for 2m <see dashboard>");
  ASSERT_TRUE(body["blocks"].is_array());
  EXPECT_EQ(body["blocks"][0]["type"], "section");
  EXPECT_EQ(body["blocks"][0]["text"]["type"], "mrkdwn");
  // mrkdwn control characters are escaped in blocks (the plain text keeps them).
  EXPECT_THAT(body["blocks"][0]["text"]["text"].get<std::string>(),
              HasSubstr("&lt;see dashboard&gt;"));
  EXPECT_THAT(body["blocks"][1]["elements"][0]["text"].get<std::string>(), HasSubstr("revision 7"));
  const json& t = body["turnout"];
  EXPECT_EQ(t["event"], "rolled_back");
  EXPECT_EQ(t["service"], "checkout");
  EXPECT_EQ(t["version"], "v2");
  EXPECT_EQ(t["slot"], "green");
  EXPECT_EQ(t["revision"], 7);
  EXPECT_EQ(t["deployment_id"], "d-42");
  EXPECT_EQ(t["time"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(t["evidence"]["errors"], 85);

  e.evidence_json = "not json {";
  EXPECT_EQ(json::parse(SlackBody(e))["turnout"]["evidence"], "not json {");
  e.evidence_json = "";
  e.reason = "bad byte \xff here";
  json replaced = json::parse(SlackBody(e));
  EXPECT_TRUE(replaced["turnout"]["evidence"].is_null());
  EXPECT_THAT(replaced["text"].get<std::string>(), HasSubstr("bad byte"));
}

TEST(SlackBodyTest, Sentences) {
  Event e;
  e.service = "api";
  e.version = "v3";
  e.revision = 4;
  e.name = "deploy_started";
  EXPECT_EQ(EventSentence(e), "api: deploying v3 (revision 4)");
  e.name = "switched";
  e.slot = "blue";
  EXPECT_EQ(EventSentence(e), "api: traffic switched to blue (v3)");
  e.name = "failed";
  e.reason = "readiness never passed";
  EXPECT_EQ(EventSentence(e), "api: deployment of v3 failed: readiness never passed");
  e.name = "something_new";
  e.reason = "";
  EXPECT_EQ(EventSentence(e), "api: something_new (v3)");
}

TEST(NotifierTest, WebhookFailsTwiceThenSucceeds) {
  auto receiver = Receiver();
  ASSERT_TRUE(receiver);
  std::atomic<int> calls{0};
  receiver->SetHandler([&](const router::testing::ReceivedRequest&) {
    int n = ++calls;
    if (n == 1) return Behavior::Respond(500, "oops");
    if (n == 2) return Behavior::Of(Behavior::Kind::kReset);
    return Behavior::Respond(200, "ok");
  });
  Recorder rec;
  auto notifier = Notifier::Create(
      {Webhook("http://" + receiver->address() + "/services/T/B/x", 3)}, rec.Options());
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));

  auto deliveries = rec.Deliveries();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_TRUE(deliveries[0].ok) << deliveries[0].detail;
  EXPECT_EQ(deliveries[0].attempts, 3);
  EXPECT_EQ(deliveries[0].hook, "slack");
  EXPECT_EQ(deliveries[0].event.name, "rolled_back");
  EXPECT_EQ(deliveries[0].detail, "status 200");
  EXPECT_EQ(rec.sleeps, (std::vector<Millis>{Millis(100), Millis(200)}));

  auto requests = receiver->RecordedRequests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/services/T/B/x");
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    EXPECT_EQ(r.body, SlackBody(RolledBack()));
  }
}

TEST(NotifierTest, ClientErrorsAreNotRetriedButTooManyRequestsIs) {
  auto receiver = Receiver();
  ASSERT_TRUE(receiver);
  receiver->SetBehavior(Behavior::Respond(404, "no_service"));
  Recorder rec;
  auto notifier =
      Notifier::Create({Webhook("http://" + receiver->address() + "/", 5)}, rec.Options());
  ASSERT_TRUE(notifier.ok());
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  ASSERT_EQ(rec.Deliveries().size(), 1u);
  EXPECT_FALSE(rec.Deliveries()[0].ok);
  EXPECT_EQ(rec.Deliveries()[0].attempts, 1);
  EXPECT_EQ(rec.Deliveries()[0].detail, "status 404: no_service");
  EXPECT_EQ(receiver->request_count(), 1u);

  std::atomic<int> calls{0};
  receiver->SetHandler([&](const router::testing::ReceivedRequest&) {
    int n = ++calls;
    if (n == 3) return Behavior::Respond(204, "");
    Behavior b = Behavior::Respond(429, "");
    b.headers = {{"Retry-After", n == 1 ? "0" : "120"}};
    return b;
  });
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  ASSERT_EQ(rec.Deliveries().size(), 2u);
  EXPECT_TRUE(rec.Deliveries()[1].ok);
  EXPECT_EQ(rec.Deliveries()[1].attempts, 3);
  // Retry-After: 0 keeps the backoff; 120 s is honoured up to backoff_max (300 ms here).
  EXPECT_EQ(rec.sleeps, (std::vector<Millis>{Millis(100), Millis(300)}));
}

TEST(NotifierTest, GivesUpAfterRetriesWithCappedBackoff) {
  auto receiver = Receiver();
  ASSERT_TRUE(receiver);
  receiver->SetBehavior(Behavior::Respond(503, "busy"));
  Recorder rec;
  auto notifier =
      Notifier::Create({Webhook("http://" + receiver->address() + "/", 4)}, rec.Options());
  ASSERT_TRUE(notifier.ok());
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  ASSERT_EQ(rec.Deliveries().size(), 1u);
  EXPECT_FALSE(rec.Deliveries()[0].ok);
  EXPECT_EQ(rec.Deliveries()[0].attempts, 5);
  EXPECT_EQ(rec.Deliveries()[0].detail, "status 503: busy (after 5 attempts)");
  EXPECT_EQ(receiver->request_count(), 5u);
  EXPECT_EQ(rec.sleeps, (std::vector<Millis>{Millis(100), Millis(200), Millis(300), Millis(300)}));
}

TEST(NotifierTest, OnlySubscribedHooksGetAnEvent) {
  auto all = Receiver();
  auto rollbacks = Receiver();
  ASSERT_TRUE(all && rollbacks);
  Recorder rec;
  Hook a = Webhook("http://" + all->address() + "/", 0, {"*"});
  a.name = "all";
  Hook b = Webhook("http://" + rollbacks->address() + "/", 0, {"rolled_back", "failed"});
  b.name = "rollbacks";
  auto notifier = Notifier::Create({a, b}, rec.Options());
  ASSERT_TRUE(notifier.ok());
  Event started = RolledBack();
  started.name = "deploy_started";
  (*notifier)->Notify(started);
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  EXPECT_EQ(all->request_count(), 2u);
  ASSERT_EQ(rollbacks->request_count(), 1u);
  EXPECT_THAT(rollbacks->RecordedRequests()[0].body, HasSubstr("\"event\":\"rolled_back\""));
  // In order, event by event.
  auto d = rec.Deliveries();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].hook + "/" + d[0].event.name, "all/deploy_started");
  EXPECT_EQ(d[1].hook + "/" + d[1].event.name, "all/rolled_back");
  EXPECT_EQ(d[2].hook + "/" + d[2].event.name, "rollbacks/rolled_back");
}

TEST(NotifierTest, CommandHookGetsPlaceholdersEnvironmentAndBody) {
  platform::testing::TempDir dir;
  Recorder rec;
  Hook h;
  h.name = "script";
  h.on = {"rolled_back"};
  h.command =
      "sh -c 'echo \"$1|$2|$3|$4|$5|$TURNOUT_EVENT|$TURNOUT_DEPLOYMENT_ID|$TURNOUT_REASON\" "
      "> \"$0/args\"; cat > \"$0/stdin\"' " +
      dir.path() + " {event} {service} {version} {slot} rev-{revision}";
  h.timeout = Millis(10000);
  auto notifier = Notifier::Create({h}, rec.Options());
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  ASSERT_EQ(rec.Deliveries().size(), 1u);
  EXPECT_TRUE(rec.Deliveries()[0].ok) << rec.Deliveries()[0].detail;
  EXPECT_EQ(platform::testing::ReadFile(dir.path() + "/args"),
            "rolled_back|checkout|v2|green|rev-7|rolled_back|d-42|error rate 7.1% > 5% for 2m\n");
  EXPECT_EQ(platform::testing::ReadFile(dir.path() + "/stdin"), SlackBody(RolledBack()));
}

TEST(NotifierTest, FailingAndSlowCommandsAreReported) {
  Recorder rec;
  Hook fail;
  fail.name = "fail";
  fail.on = {"*"};
  fail.command = "sh -c 'echo cannot reach pager >&2; exit 4'";
  Hook slow;
  slow.name = "slow";
  slow.on = {"*"};
  slow.command = "sleep 30";
  slow.timeout = Millis(200);
  auto notifier = Notifier::Create({fail, slow}, rec.Options());
  ASSERT_TRUE(notifier.ok());
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));
  auto d = rec.Deliveries();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_FALSE(d[0].ok);
  EXPECT_THAT(d[0].detail, HasSubstr("4"));
  EXPECT_THAT(d[0].detail, HasSubstr("cannot reach pager"));
  EXPECT_FALSE(d[1].ok);
  EXPECT_THAT(d[1].detail, HasSubstr("timed out"));
  EXPECT_LT(d[1].duration, Millis(10000));
}

TEST(NotifierTest, NotifyNeverBlocksAndDropsTheOldest) {
  auto receiver = Receiver();
  ASSERT_TRUE(receiver);
  receiver->SetBehavior(Behavior::Of(Behavior::Kind::kHang));
  Recorder rec;
  NotifierOptions options = rec.Options();
  options.queue_capacity = 2;
  Hook h = Webhook("http://" + receiver->address() + "/", 0);
  h.timeout = Millis(300);
  auto notifier = Notifier::Create({h}, options);
  ASSERT_TRUE(notifier.ok());

  constexpr int kEvents = 10;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i) {
    Event e = RolledBack();
    e.revision = i + 1;
    (*notifier)->Notify(e);
  }
  // Ten events against a receiver that never answers took no receiver time at all.
  EXPECT_LT(std::chrono::steady_clock::now() - start, Millis(200));
  ASSERT_TRUE((*notifier)->Flush(Millis(20000)));

  auto d = rec.Deliveries();
  uint64_t dropped = (*notifier)->dropped();
  EXPECT_GE(dropped, 7u);
  EXPECT_EQ(d.size() + dropped, static_cast<size_t>(kEvents));
  for (const auto& x : d) {
    EXPECT_FALSE(x.ok);
    EXPECT_THAT(x.detail, HasSubstr("deadline exceeded"));
  }
  // The newest events survived.
  ASSERT_GE(d.size(), 2u);
  EXPECT_EQ(d[d.size() - 1].event.revision, kEvents);
  EXPECT_EQ(d[d.size() - 2].event.revision, kEvents - 1);
  std::lock_guard<std::mutex> lock(rec.mu);
  ASSERT_FALSE(rec.warnings.empty());
  EXPECT_THAT(rec.warnings[0], HasSubstr("queue full"));
}

TEST(NotifierTest, StopAbandonsQueuedEventsAndInterruptsBackoff) {
  auto receiver = Receiver();
  ASSERT_TRUE(receiver);
  receiver->SetBehavior(Behavior::Respond(503, ""));
  NotifierOptions options;  // the real, interruptible backoff wait
  options.backoff_initial = Millis(60000);
  options.backoff_max = Millis(60000);
  std::atomic<int> delivered{0};
  options.on_delivery = [&](const Delivery&) { ++delivered; };
  auto notifier = Notifier::Create({Webhook("http://" + receiver->address() + "/", 3)}, options);
  ASSERT_TRUE(notifier.ok());
  (*notifier)->Notify(RolledBack());
  (*notifier)->Notify(RolledBack());
  ASSERT_TRUE(receiver->WaitFor([&] { return receiver->request_count() == 1; }, Millis(10000)));
  EXPECT_FALSE((*notifier)->Flush(Millis(50)));  // stuck in a 60 s backoff
  auto start = std::chrono::steady_clock::now();
  (*notifier)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, Millis(5000));
  EXPECT_EQ((*notifier)->abandoned(), 1u);
  EXPECT_EQ(delivered.load(), 1);  // the interrupted one is still reported
  (*notifier)->Notify(RolledBack());
  EXPECT_EQ((*notifier)->abandoned(), 2u);
  EXPECT_EQ(receiver->request_count(), 1u);
}

TEST(NotifierTest, CreateValidates) {
  Hook ok = Webhook("http://127.0.0.1:1/", 3);
  EXPECT_TRUE(Notifier::Create({ok}).ok());
  Hook both = ok;
  both.command = "true";
  EXPECT_EQ(Notifier::Create({both}).status().code(), StatusCode::kInvalidArgument);
  Hook neither = ok;
  neither.webhook_url = "";
  EXPECT_EQ(Notifier::Create({neither}).status().code(), StatusCode::kInvalidArgument);
  Hook ftp = ok;
  ftp.webhook_url = "ftp://x/";
  EXPECT_EQ(Notifier::Create({ftp}).status().code(), StatusCode::kInvalidArgument);
  Hook retries = ok;
  retries.retries = 11;
  EXPECT_EQ(Notifier::Create({retries}).status().code(), StatusCode::kInvalidArgument);
  Hook quote;
  quote.name = "q";
  quote.on = {"*"};
  quote.command = "echo 'unterminated";
  EXPECT_EQ(Notifier::Create({quote}).status().code(), StatusCode::kInvalidArgument);
  Hook nothing = ok;
  nothing.on.clear();
  EXPECT_EQ(Notifier::Create({nothing}).status().code(), StatusCode::kInvalidArgument);
  NotifierOptions zero;
  zero.queue_capacity = 0;
  EXPECT_EQ(Notifier::Create({ok}, zero).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turnout::notify
