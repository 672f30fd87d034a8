// The report formats and the lock mode order, without a database.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rehearsal/rehearsal.h"

namespace turnout::rehearsal {
namespace {

using json = nlohmann::json;

RehearsalReport Sample() {
  RehearsalReport r;
  r.backup_id = "20261122T072254.123Z";
  r.from_version = 12;
  r.to_version = 13;
  r.scratch_database = "turnout_rehearsal_0123456789ab";
  r.lock_budget_ms = 1000;
  MigrationRun m;
  m.version = 13;
  m.name = "0013_orders_token";
  m.up = {true, true, "", 0, 2410, {}};
  StatementRun s;
  s.index = 1;
  s.line = 1;
  s.text = "ALTER TABLE orders\n  ADD COLUMN token float8 DEFAULT random()";
  s.duration_ms = 2405;
  s.rewritten = {"public.orders"};
  s.locks.push_back({"public.orders", "AccessExclusiveLock", 2409, true, true, true, true});
  m.statements.push_back(s);
  m.down = {true, true, "", 0, 12, {}};
  m.reup = {true, false, "relation \"x\" already exists", 1, 5, {}};
  r.migrations.push_back(m);
  r.findings.push_back({"rewrite", 13, 1, "rewrote public.orders", "backfill in batches"});
  r.phase_ms = {{"restore", 5120}, {"up", 2450}};
  r.total_ms = 10060;
  return r;
}

TEST(LockModeRankTest, OrdersPostgresTableLockModesAndRejectsOthers) {
  EXPECT_EQ(LockModeRank("AccessShareLock"), 1);
  EXPECT_LT(LockModeRank("RowExclusiveLock"), LockModeRank("ShareUpdateExclusiveLock"));
  EXPECT_LT(LockModeRank("ShareUpdateExclusiveLock"), LockModeRank("ShareLock"));
  EXPECT_LT(LockModeRank("ShareRowExclusiveLock"), LockModeRank("ExclusiveLock"));
  EXPECT_EQ(LockModeRank("AccessExclusiveLock"), 8);
  EXPECT_EQ(LockModeRank("accessexclusivelock"), 0);
  EXPECT_EQ(LockModeRank(""), 0);
}

TEST(FormatMsTest, MillisecondsThenSeconds) {
  EXPECT_EQ(FormatMs(0), "0 ms");
  EXPECT_EQ(FormatMs(999), "999 ms");
  EXPECT_EQ(FormatMs(1250), "1.25 s");
  EXPECT_EQ(FormatMs(12500), "12.5 s");
}

TEST(ReportTest, JsonCarriesEveryMeasurement) {
  json j = json::parse(ReportToJson(Sample()));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["from_version"], 12);
  EXPECT_EQ(j["to_version"], 13);
  const json& st = j["migrations"][0]["statements"][0];
  EXPECT_EQ(st["rewrite"], true);
  EXPECT_EQ(st["rewritten"][0], "public.orders");
  EXPECT_EQ(st["locks"][0]["mode"], "AccessExclusiveLock");
  EXPECT_EQ(st["locks"][0]["held_ms"], 2409);
  EXPECT_EQ(st["locks"][0]["until_commit"], true);
  EXPECT_EQ(j["migrations"][0]["reup"]["ok"], false);
  EXPECT_EQ(j["migrations"][0]["reup"]["failed_statement"], 1);
  EXPECT_EQ(j["findings"][0]["kind"], "rewrite");
  EXPECT_EQ(j["phase_ms"]["restore"], 5120);

  RehearsalReport none;
  json k = json::parse(ReportToJson(none));
  EXPECT_EQ(k["ok"], true);
  EXPECT_TRUE(k["from_version"].is_null());
}

TEST(ReportTest, InvalidUtf8InAStatementDoesNotBreakTheJson) {
  RehearsalReport r = Sample();
  r.migrations[0].statements[0].text = "SELECT '\xff\xfe'";
  json j = json::parse(ReportToJson(r));
  EXPECT_FALSE(j["migrations"][0]["statements"][0]["text"].get<std::string>().empty());
}

TEST(ReportTest, HumanReportShowsTheTableFindingsAndTotals) {
  std::string text = FormatReport(Sample());
  EXPECT_NE(text.find("0013_orders_token"), std::string::npos) << text;
  EXPECT_NE(text.find("AccessExclusiveLock public.orders 2.41 s"), std::string::npos) << text;
  EXPECT_NE(text.find("YES"), std::string::npos) << text;
  // The statement is shown on one line.
  EXPECT_NE(text.find("ALTER TABLE orders ADD COLUMN token"), std::string::npos) << text;
  EXPECT_NE(text.find("up again: FAILED"), std::string::npos) << text;
  EXPECT_NE(text.find("FLAGGED (1)"), std::string::npos) << text;
  EXPECT_NE(text.find("what to do: backfill in batches"), std::string::npos) << text;
  EXPECT_NE(text.find("total 10.1 s (restore 5.12 s, up 2.45 s)"), std::string::npos) << text;

  RehearsalReport clean;
  clean.lock_budget_ms = 1000;
  EXPECT_NE(FormatReport(clean).find("nothing flagged"), std::string::npos);
  EXPECT_NE(FormatReport(clean).find("no pending migrations"), std::string::npos);
}

}  // namespace
}  // namespace turnout::rehearsal
