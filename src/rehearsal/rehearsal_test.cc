// Rehearsals against a real PostgreSQL 15 (db/testing/pg_server.h) with real pg_dump/pg_restore.

#include "rehearsal/rehearsal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backup/backup.h"
#include "db/migrator.h"
#include "db/pg.h"
#include "db/testing/pg_server.h"
#include "rehearsal/rehearse_cli.h"

namespace turnout::rehearsal {
namespace {

namespace fs = std::filesystem;
using db::PgConnection;
using db::testsupport::PgEnvironment;
using json = nlohmann::json;

[[maybe_unused]] auto* const kPgEnv =
    ::testing::AddGlobalTestEnvironment(new db::testsupport::PgEnvironment);

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

class RehearsalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = PgEnvironment::server().CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    admin_url_ = PgEnvironment::server().Url("postgres");
    char tmpl[] = "/tmp/turnout_rehearsal_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    env_.backups_dir = (tmp_ / "backups").string();
    // slow_id() sleeps 2 ms per call, so an index on it takes a known time whatever the CPU.
    Exec(url_, R"sql(
CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL);
INSERT INTO orders SELECT g, g % 100 FROM generate_series(1, 3000) g;
CREATE TABLE items (id int PRIMARY KEY);
INSERT INTO items SELECT g FROM generate_series(1, 200) g;
CREATE FUNCTION slow_id(i int) RETURNS int IMMUTABLE LANGUAGE plpgsql
  AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN i; END $$;
)sql");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  void Exec(const std::string& url, const std::string& sql) {
    auto c = PgConnection::Connect(url, "test");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto r = c->Exec(sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << sql;
  }

  int64_t ScratchDatabases() {
    auto c = PgConnection::Connect(admin_url_, "test");
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return -1;
    auto r =
        c->Exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'turnout\\_rehearsal\\_%'");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::stoll(r->text(0, 0)) : -1;
  }

  // A backup of the seeded database, verified at level 1 unless told otherwise.
  std::string Backup(bool verify = true) {
    backup::CreateOptions o;
    o.conninfo = url_;
    auto m = backup::CreateBackup(env_, o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return "";
    if (verify) {
      backup::VerifyOptions v;
      v.level = 1;
      auto r = backup::VerifyBackup(env_, m->id, v);
      EXPECT_TRUE(r.ok() && r->ok);
    }
    return m->id;
  }

  // A migrations directory with the given files (name -> content).
  std::string Migrations(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path dir = tmp_ / name;
    fs::create_directories(dir);
    for (const auto& [file, content] : files) WriteFile(dir / file, content);
    return dir.string();
  }

  RehearsalOptions Options(const std::string& id, const std::string& dir) {
    RehearsalOptions o;
    o.backup_id = id;
    o.migrations_dir = dir;
    o.server = admin_url_;
    return o;
  }

  RehearsalReport MustRehearse(const RehearsalOptions& o) {
    auto r = Rehearse(env_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RehearsalReport{};
  }

  int Cli(std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.end(), {"--backups", env_.backups_dir, "--url", admin_url_});
    std::ostringstream o, e;
    int code = RunRehearseCommand(args, o, e);
    *out = o.str();
    *err = e.str();
    return code;
  }

  static std::vector<std::string> Kinds(const RehearsalReport& r) {
    std::vector<std::string> out;
    for (const Finding& f : r.findings) out.push_back(f.kind);
    return out;
  }

  static const LockHeld* FindLock(const StatementRun& s, const std::string& relation) {
    for (const LockHeld& l : s.locks) {
      if (l.relation == relation) return &l;
    }
    return nullptr;
  }

  std::string url_;
  std::string admin_url_;
  fs::path tmp_;
  backup::BackupEnv env_;
};

TEST_F(RehearsalTest, VolatileDefaultRewritesTheTableAndIsFlagged) {
  std::string id = Backup();
  std::string dir = Migrations(
      "m", {{"0001_token.up.sql", "ALTER TABLE orders ADD COLUMN token float8 DEFAULT random();\n"},
            {"0001_token.down.sql", "ALTER TABLE orders DROP COLUMN token;\n"}});
  RehearsalReport r = MustRehearse(Options(id, dir));
  ASSERT_EQ(r.migrations.size(), 1u);
  const MigrationRun& m = r.migrations[0];
  ASSERT_TRUE(m.up.ok) << m.up.error;
  ASSERT_EQ(m.statements.size(), 1u);
  EXPECT_EQ(m.statements[0].rewritten, std::vector<std::string>{"public.orders"});
  const LockHeld* lock = FindLock(m.statements[0], "public.orders");
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(lock->mode, "AccessExclusiveLock");
  EXPECT_TRUE(lock->blocks_reads);
  EXPECT_TRUE(lock->until_commit);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(Kinds(r), std::vector<std::string>{"rewrite"});
  EXPECT_NE(r.findings[0].message.find("public.orders"), std::string::npos);
  EXPECT_FALSE(r.findings[0].advice.empty());
  // The down file is right: down and up again prove it.
  EXPECT_TRUE(m.down.ok && m.down.schema_diff.empty());
  EXPECT_TRUE(m.reup.ok && m.reup.schema_diff.empty());
  EXPECT_EQ(ScratchDatabases(), 0);

  // Adding a column with a constant default only touches the catalog: no rewrite.
  std::string dir2 =
      Migrations("m2", {{"0001_flag.up.sql", "ALTER TABLE orders ADD COLUMN flag int DEFAULT 7;\n"},
                        {"0001_flag.down.sql", "ALTER TABLE orders DROP COLUMN flag;\n"}});
  RehearsalReport r2 = MustRehearse(Options(id, dir2));
  ASSERT_EQ(r2.migrations.size(), 1u);
  EXPECT_TRUE(r2.migrations[0].statements.at(0).rewritten.empty());
  EXPECT_TRUE(r2.ok()) << FormatReport(r2);
}

TEST_F(RehearsalTest, CreateIndexHoldsShareLockForItsDurationAndConcurrentlyDoesNot) {
  std::string id = Backup();
  std::string dir =
      Migrations("m", {{"0001_idx.up.sql", "CREATE INDEX items_slow_idx ON items (slow_id(id));\n"},
                       {"0001_idx.down.sql", "DROP INDEX items_slow_idx;\n"},
                       {"0002_cidx.up.sql",
                        "-- turnout:no-transaction\n"
                        "CREATE INDEX CONCURRENTLY items_slow_c_idx ON items (slow_id(id));\n"
                        "CREATE INDEX CONCURRENTLY items_slow_c2_idx ON items (slow_id(id));\n"},
                       {"0002_cidx.down.sql",
                        "-- turnout:no-transaction\nDROP INDEX CONCURRENTLY items_slow_c_idx;\n"
                        "DROP INDEX CONCURRENTLY items_slow_c2_idx;\n"}});
  RehearsalOptions o = Options(id, dir);
  o.lock_budget = std::chrono::milliseconds(100);
  RehearsalReport r = MustRehearse(o);
  ASSERT_EQ(r.migrations.size(), 2u);

  // 200 rows x 2 ms: the build takes at least 400 ms, all of it under SHARE.
  const StatementRun& build = r.migrations[0].statements.at(0);
  EXPECT_GE(build.duration_ms, 400);
  const LockHeld* share = FindLock(build, "public.items");
  ASSERT_NE(share, nullptr) << FormatReport(r);
  EXPECT_EQ(share->mode, "ShareLock");
  EXPECT_TRUE(share->observed);
  EXPECT_TRUE(share->blocks_writes);
  EXPECT_FALSE(share->blocks_reads);
  // First seen by the monitor early in the build, held until the COMMIT after it.
  EXPECT_GE(share->held_ms, build.duration_ms / 2);
  EXPECT_LE(share->held_ms, r.migrations[0].up.duration_ms);

  // The concurrent build is seen by the monitor too (autocommit: only the poll can see it), with
  // a lock that lets writes through.
  const StatementRun& cbuild = r.migrations[1].statements.at(0);
  EXPECT_GE(cbuild.duration_ms, 400);
  const LockHeld* sue = FindLock(cbuild, "public.items");
  ASSERT_NE(sue, nullptr) << FormatReport(r);
  EXPECT_EQ(sue->mode, "ShareUpdateExclusiveLock");
  EXPECT_TRUE(sue->observed);
  EXPECT_FALSE(sue->blocks_writes);
  EXPECT_FALSE(sue->until_commit);
  EXPECT_GE(sue->held_ms, cbuild.duration_ms / 2);
  // In autocommit the lock ended with the first statement: the second takes it again.
  const StatementRun& cbuild2 = r.migrations[1].statements.at(1);
  const LockHeld* sue2 = FindLock(cbuild2, "public.items");
  ASSERT_NE(sue2, nullptr) << FormatReport(r);
  EXPECT_EQ(sue2->mode, "ShareUpdateExclusiveLock");

  // Only the non-concurrent build is over the budget, with the concurrent way as the advice.
  ASSERT_EQ(Kinds(r), std::vector<std::string>{"lock-budget"}) << FormatReport(r);
  EXPECT_EQ(r.findings[0].version, 1);
  EXPECT_EQ(r.findings[0].statement, 1);
  EXPECT_NE(r.findings[0].message.find("ShareLock on public.items"), std::string::npos);
  EXPECT_NE(r.findings[0].advice.find("CONCURRENTLY"), std::string::npos);
  EXPECT_TRUE(r.migrations[1].down.ok);
  EXPECT_TRUE(r.migrations[0].down.ok);

  // With a budget above the hold time nothing is flagged.
  o.lock_budget = std::chrono::seconds(60);
  RehearsalReport relaxed = MustRehearse(o);
  EXPECT_TRUE(relaxed.ok()) << FormatReport(relaxed);
}

TEST_F(RehearsalTest, DownFileProblemsAreReported) {
  std::string id = Backup();
  // A down file that leaves the table behind: the schema after down is not the backup's.
  std::string wrong = Migrations(
      "wrong", {{"0001_tags.up.sql", "CREATE TABLE tags (id int PRIMARY KEY, name text);\n"},
                {"0001_tags.down.sql", "ALTER TABLE tags DROP COLUMN name;\n"}});
  RehearsalReport r = MustRehearse(Options(id, wrong));
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].kind, "down-mismatch");
  EXPECT_EQ(r.findings[0].version, 1);
  EXPECT_NE(r.findings[0].message.find("+ table public.tags"), std::string::npos)
      << r.findings[0].message;
  EXPECT_NE(r.migrations[0].down.schema_diff.size(), 0u);
  // Applying the up file again trips over what the down file left.
  EXPECT_EQ(Kinds(r), (std::vector<std::string>{"down-mismatch", "reup-failed"}));

  // A missing down file, on top of a good migration: nothing below it is rolled back.
  std::string missing = Migrations("missing", {{"0001_a.up.sql", "CREATE TABLE a (id int);\n"},
                                               {"0001_a.down.sql", "DROP TABLE a;\n"},
                                               {"0002_b.up.sql", "CREATE TABLE b (id int);\n"}});
  RehearsalReport r2 = MustRehearse(Options(id, missing));
  EXPECT_EQ(Kinds(r2), std::vector<std::string>{"down-missing"});
  EXPECT_EQ(r2.findings.at(0).version, 2);
  EXPECT_FALSE(r2.migrations.at(0).down.ran);

  // A down file that fails.
  std::string failing = Migrations("failing", {{"0001_c.up.sql", "CREATE TABLE c (id int);\n"},
                                               {"0001_c.down.sql", "DROP TABLE no_such_table;\n"}});
  RehearsalReport r3 = MustRehearse(Options(id, failing));
  EXPECT_EQ(Kinds(r3), std::vector<std::string>{"down-failed"});
  EXPECT_NE(r3.findings.at(0).message.find("no_such_table"), std::string::npos);
  EXPECT_EQ(ScratchDatabases(), 0);
}

TEST_F(RehearsalTest, CleanMigrationPassesWithExitZeroAndIsRecorded) {
  std::string dir = Migrations(
      "m",
      {{"0001_audit.up.sql", "CREATE TABLE audit (id int);\n"},
       {"0002_note.up.sql", "SET lock_timeout = '5s';\nALTER TABLE orders ADD COLUMN note text;\n"},
       {"0002_note.down.sql", "ALTER TABLE orders DROP COLUMN note;\n"}});
  // 0001 is applied before the backup (the manifest records version 1): only 0002 is pending.
  db::MigratorOptions mo;
  mo.database = url_;
  mo.dir = dir;
  auto applied = db::Migrator(mo).Up(1);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  std::string id = Backup();
  std::string out, err;
  int code = Cli({id, "--migrations", dir, "--json"}, &out, &err);
  ASSERT_EQ(code, 0) << out << err;
  json j = json::parse(out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["backup_id"], id);
  EXPECT_EQ(j["from_version"], 1);
  EXPECT_EQ(j["to_version"], 2);
  ASSERT_EQ(j["migrations"].size(), 1u);
  EXPECT_EQ(j["migrations"][0]["name"], "0002_note");
  EXPECT_NE(j["fingerprint_after_up"], j["fingerprint_start"]);
  const json& st = j["migrations"][0]["statements"][1];
  EXPECT_EQ(st["rewrite"], false);
  ASSERT_EQ(st["locks"].size(), 1u) << st.dump();
  EXPECT_EQ(st["locks"][0]["mode"], "AccessExclusiveLock");
  EXPECT_EQ(j["migrations"][0]["down"]["ok"], true);
  EXPECT_EQ(j["migrations"][0]["reup"]["ok"], true);
  EXPECT_EQ(ScratchDatabases(), 0);

  // Recorded next to the backup, and the backup still verifies (rehearsal.json is bookkeeping).
  fs::path recorded = fs::path(env_.backups_dir) / id / std::string(kRehearsalFile);
  json rec = json::parse(ReadFile(recorded));
  EXPECT_EQ(rec["ok"], true);
  EXPECT_EQ(rec["migrations"][0]["up_sha256"], j["migrations"][0]["up_sha256"]);
  backup::VerifyOptions v;
  v.level = 1;
  auto verified = backup::VerifyBackup(env_, id, v);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok) << (verified->problems.empty() ? "" : verified->problems[0]);

  // The human report, and a second rehearsal on the same backup.
  code = Cli({id, "--migrations", dir}, &out, &err);
  EXPECT_EQ(code, 0) << out << err;
  EXPECT_NE(out.find("nothing flagged"), std::string::npos) << out;
  EXPECT_NE(out.find("0002_note"), std::string::npos) << out;
  EXPECT_NE(err.find("[restore]"), std::string::npos) << err;
}

TEST_F(RehearsalTest, ScratchDatabaseIsDroppedWhenAMigrationFailsAndKeptOnlyWhenAsked) {
  std::string id = Backup();
  std::string dir =
      Migrations("m", {{"0001_bad.up.sql", "ALTER TABLE orders ADD COLUMN x int;\nSELECT 1 / 0;\n"},
                       {"0001_bad.down.sql", "ALTER TABLE orders DROP COLUMN x;\n"}});
  std::string out, err;
  EXPECT_EQ(Cli({id, "--migrations", dir}, &out, &err), 1);
  EXPECT_NE(out.find("[up-failed]"), std::string::npos) << out;
  EXPECT_NE(out.find("division by zero"), std::string::npos) << out;
  EXPECT_EQ(ScratchDatabases(), 0);

  RehearsalOptions o = Options(id, dir);
  o.keep_scratch = true;
  RehearsalReport r = MustRehearse(o);
  EXPECT_EQ(Kinds(r), std::vector<std::string>{"up-failed"});
  EXPECT_EQ(r.findings[0].statement, 2);
  EXPECT_TRUE(r.scratch_kept);
  EXPECT_EQ(ScratchDatabases(), 1);
  Exec(admin_url_, "DROP DATABASE " + r.scratch_database + " WITH (FORCE)");
}

TEST_F(RehearsalTest, RefusesUnverifiedFailedAndDamagedBackups) {
  std::string dir = Migrations("m", {{"0001_a.up.sql", "CREATE TABLE a (id int);\n"}});
  std::string id = Backup(/*verify=*/false);
  auto r = Rehearse(env_, Options(id, dir));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("never verified"), std::string::npos);
  std::string out, err;
  EXPECT_EQ(Cli({id, "--migrations", dir, "--json"}, &out, &err), 1);
  EXPECT_EQ(json::parse(out)["ok"], false);

  // --verify runs the verification first; then the rehearsal goes on.
  RehearsalOptions o = Options(id, dir);
  o.verify_level = 2;
  RehearsalReport ok = MustRehearse(o);
  EXPECT_EQ(ok.migrations.size(), 1u);

  // Damaged after its verification: the restore checks the hashes first and refuses.
  fs::path data;
  for (const auto& e : fs::directory_iterator(fs::path(env_.backups_dir) / id / "dump")) {
    if (e.path().filename() != "toc.dat" && e.file_size() > 0) data = e.path();
  }
  ASSERT_FALSE(data.empty());
  fs::resize_file(data, fs::file_size(data) / 2);
  r = Rehearse(env_, Options(id, dir));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("damaged"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(ScratchDatabases(), 0);

  // A failed verification is on record now: refused without touching the server.
  o.verify_level = 1;
  r = Rehearse(env_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("failed verification"), std::string::npos);
  r = Rehearse(env_, Options(id, dir));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("failed its last verification"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(ScratchDatabases(), 0);
}

TEST_F(RehearsalTest, UsageErrorsExitTwo) {
  std::string out, err;
  EXPECT_EQ(Cli({"--lock-budget", "soon"}, &out, &err), 2);
  EXPECT_NE(err.find("lock-budget"), std::string::npos) << err;
  EXPECT_EQ(Cli({"--frobnicate"}, &out, &err), 2);
  EXPECT_EQ(Cli({"a", "b"}, &out, &err), 2);
  EXPECT_EQ(Cli({"--verify", "4"}, &out, &err), 2);
  EXPECT_EQ(Cli({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("--lock-budget"), std::string::npos);
}

}  // namespace
}  // namespace turnout::rehearsal
