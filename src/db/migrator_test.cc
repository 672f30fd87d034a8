// Integration tests of the migration engine against a real PostgreSQL 15 (no mocks): one server
// per test binary, a fresh database per test.

#include "db/migrator.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "db/migrate_cli.h"
#include "db/pg.h"
#include "db/testing/pg_server.h"

namespace turnout::db {
namespace {

namespace fs = std::filesystem;
using testsupport::PgEnvironment;
using namespace std::chrono_literals;

[[maybe_unused]] auto* const kPgEnv =
    ::testing::AddGlobalTestEnvironment(new testsupport::PgEnvironment);

// A child process running `migrate <args>`; killed (by pid) if still running at destruction.
class ToolProcess {
 public:
  explicit ToolProcess(std::vector<std::string> args) {
    out_path_ = (fs::temp_directory_path() / ("turnout-db-tool-" + std::to_string(getpid()) + "-" +
                                              std::to_string(counter_++) + ".out"))
                    .string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(out_path_.c_str(), "w", stdout);
      if (f == nullptr) _exit(126);
      dup2(fileno(stdout), STDERR_FILENO);
      std::vector<char*> argv;
      std::string tool = TURNOUT_DB_MIGRATE_TOOL;
      argv.push_back(tool.data());
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~ToolProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove(out_path_, ec);
  }
  pid_t pid() const { return pid_; }
  void Kill9() {
    kill(pid_, SIGKILL);
    Wait();
  }
  // Exit code, or -signal. Bounded: a runner still alive after `limit` (a deadlock) is killed
  // and reported as -SIGKILL.
  int Wait(std::chrono::seconds limit = std::chrono::seconds(90)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a real exit
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  std::string Output() const {
    std::ifstream in(out_path_);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string out_path_;
};

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = PgEnvironment::server().CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    std::string tmpl = (fs::temp_directory_path() / "turnout-migrations-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto conn = PgConnection::Connect(url_, "test");
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(*conn);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Write(const std::string& file, const std::string& sql) {
    std::ofstream(dir_ + "/" + file, std::ios::trunc) << sql;
  }

  MigratorOptions Options() {
    MigratorOptions o;
    o.database = url_;
    o.dir = dir_;
    o.lock_poll = 20ms;
    o.on_progress = [this](const ProgressEvent& e) { events_.push_back(e); };
    return o;
  }

  std::string Query(const std::string& sql) {
    auto rows = conn_.Exec(sql);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status().ToString();
    if (!rows.ok() || rows->empty()) return "<none>";
    return rows->text(0, 0);
  }
  bool TableExists(const std::string& name) {
    return Query("SELECT to_regclass('" + name + "') IS NOT NULL") == "t";
  }
  std::vector<HistoryRow> History() {
    auto h = Migrator(Options()).History();
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : std::vector<HistoryRow>{};
  }
  VersionStatus StatusOf(int64_t version) {
    auto st = Migrator(Options()).Status();
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    for (const VersionStatus& v : st->versions) {
      if (v.version == version) return v;
    }
    ADD_FAILURE() << "no version " << version;
    return VersionStatus{};
  }
  int CountEvents(ProgressEvent::Kind kind) const {
    int n = 0;
    for (const ProgressEvent& e : events_) n += e.kind == kind;
    return n;
  }
  // Polls until a turnout session runs a statement matching `like` (bounded).
  bool WaitForQuery(const std::string& like) {
    for (int i = 0; i < 400; ++i) {
      if (Query("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'turnout-migrate' AND state = 'active' AND query LIKE '" +
                like + "'") != "0") {
        return true;
      }
      std::this_thread::sleep_for(50ms);  // waiting for a real event, bounded at 20 s
    }
    return false;
  }

  void WriteThree() {
    Write("0001_users.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);");
    Write("0001_users.down.sql", "DROP TABLE users;");
    Write("0002_orders.up.sql",
          "SET lock_timeout = '2s';\nCREATE TABLE orders (id bigint);\n"
          "INSERT INTO orders VALUES (1), (2);");
    Write("0002_orders.down.sql", "DROP TABLE orders;");
    Write("0003_email.up.sql",
          "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN email text;");
    Write("0003_email.down.sql", "ALTER TABLE users DROP COLUMN email;");
  }

  std::string url_;
  std::string dir_;
  PgConnection conn_;
  std::vector<ProgressEvent> events_;
};

TEST_F(MigratorTest, UpAppliesInOrderDownRollsBackAndHistoryChains) {
  WriteThree();
  Migrator m(Options());
  auto up = m.Up(std::nullopt);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->done.size(), 3u);
  EXPECT_EQ(up->current, 3);
  EXPECT_EQ(Query("SELECT count(*) FROM orders"), "2");
  EXPECT_EQ(Query("SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'"),
            "1");
  auto h = History();
  ASSERT_EQ(h.size(), 3u);
  std::string chain;
  for (const HistoryRow& r : h) {
    EXPECT_EQ(r.status, "applied");
    EXPECT_EQ(r.direction, Direction::kUp);
    EXPECT_EQ(r.statements_done, r.statements_total);
    EXPECT_TRUE(r.finished_at.has_value());
    EXPECT_FALSE(r.deployment_id.has_value());
    chain = ChainSha256(chain, r.file_sha256);
    EXPECT_EQ(r.chain_sha256, chain);
  }
  EXPECT_EQ(h[0].file_sha256, Sha256Hex("CREATE TABLE users (id bigint PRIMARY KEY, name text);"));

  auto again = m.Up(std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->done.empty());

  auto down = m.Down(1);
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  ASSERT_EQ(down->done.size(), 2u);
  EXPECT_EQ(down->done[0].version, 3);  // newest first
  EXPECT_EQ(down->current, 1);
  EXPECT_FALSE(TableExists("orders"));
  EXPECT_TRUE(TableExists("users"));
  h = History();
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[3].status, "rolled_back");
  EXPECT_EQ(h[3].direction, Direction::kDown);
  EXPECT_EQ(StatusOf(2).state, VersionState::kPending);

  auto to2 = m.Up(2);
  ASSERT_TRUE(to2.ok());
  EXPECT_EQ(to2->current, 2);
  EXPECT_EQ(StatusOf(3).state, VersionState::kPending);
  EXPECT_TRUE(m.Verify()->ok);
}

TEST_F(MigratorTest, HistoryRecordsDeploymentFieldsAndIsAppendOnly) {
  WriteThree();
  MigratorOptions o = Options();
  o.deployment_id = "dep-7";
  o.app_version_to = "v2";
  ASSERT_TRUE(Migrator(o).Up(1).ok());
  auto h = History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].deployment_id, "dep-7");
  EXPECT_EQ(h[0].app_version_to, "v2");
  EXPECT_FALSE(h[0].backup_id.has_value());
  EXPECT_FALSE(conn_.Exec("UPDATE turnout_schema_history SET status = 'failed'").ok());
  EXPECT_FALSE(conn_.Exec("DELETE FROM turnout_schema_history").ok());
  EXPECT_EQ(History().size(), 1u);
}

TEST_F(MigratorTest, FailingStatementLeavesDatabaseUnchangedAndHistoryExact) {
  Write("0001_a.up.sql", "CREATE TABLE a (id int);");
  Write("0002_b.up.sql",
        "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\nINSERT INTO missing VALUES (1);\n"
        "CREATE TABLE c (id int);");
  Migrator m(Options());
  auto up = m.Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), StatusCode::kAborted);
  EXPECT_NE(up.status().message().find("0002_b.up.sql:3 (statement 3 of 4)"), std::string::npos)
      << up.status().message();
  EXPECT_NE(up.status().message().find("database is unchanged"), std::string::npos);
  EXPECT_TRUE(TableExists("a"));
  EXPECT_FALSE(TableExists("b"));
  auto h = History();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].status, "applied");
  EXPECT_EQ(h[1].version, 2);
  EXPECT_EQ(h[1].status, "failed");
  EXPECT_EQ(h[1].statements_done, 0);
  EXPECT_EQ(h[1].statements_total, 4);
  ASSERT_TRUE(h[1].error.has_value());
  EXPECT_NE(h[1].error->find("relation \"missing\" does not exist"), std::string::npos);
  EXPECT_EQ(h[1].failed_statement, "INSERT INTO missing VALUES (1)");
  EXPECT_EQ(StatusOf(2).state, VersionState::kPending);

  // Fix the cause; the same command applies it in full.
  ASSERT_TRUE(conn_.Exec("CREATE TABLE missing (id int)").ok());
  auto again = m.Up(std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(TableExists("c"));
  EXPECT_EQ(Query("SELECT count(*) FROM b"), "1");
}

TEST_F(MigratorTest, NoTransactionMigrationResumesAtTheFailedStatement) {
  Write("0001_nt.up.sql",
        "-- turnout:no-transaction\nCREATE TABLE a (id int);\nINSERT INTO later VALUES (1);\n"
        "CREATE TABLE b (id int);");
  Migrator m(Options());
  auto up = m.Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("resume at statement 2"), std::string::npos)
      << up.status().message();
  EXPECT_TRUE(TableExists("a"));  // no transaction: statement 1 stays
  auto h = History();
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back().status, "failed");
  EXPECT_EQ(h.back().statements_done, 1);
  VersionStatus v = StatusOf(1);
  EXPECT_EQ(v.state, VersionState::kPartial);
  EXPECT_EQ(v.statements_done, 1);

  ASSERT_TRUE(conn_.Exec("CREATE TABLE later (id int)").ok());
  events_.clear();
  auto again = m.Up(std::nullopt);  // CREATE TABLE a again would fail: proves the resume
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->done.size(), 1u);
  EXPECT_EQ(again->done[0].resume_from, 1);
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kStatementDone), 2);
  EXPECT_TRUE(TableExists("b"));
  EXPECT_EQ(StatusOf(1).state, VersionState::kApplied);
  EXPECT_EQ(History().back().status, "applied");
}

TEST_F(MigratorTest, KillNineDuringTransactionalMigrationLeavesNoDirtyState) {
  Write("0001_a.up.sql", "CREATE TABLE a (id int);");
  Write("0002_slow.up.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(3);");
  ToolProcess tool({"up", "--dir", dir_, "--database", url_});
  ASSERT_TRUE(WaitForQuery("SELECT pg_sleep%")) << tool.Output();
  tool.Kill9();

  // Right after the kill: version 1 applied, version 2 pending, nothing of it visible.
  EXPECT_EQ(StatusOf(1).state, VersionState::kApplied);
  EXPECT_EQ(StatusOf(2).state, VersionState::kPending);
  EXPECT_FALSE(TableExists("slow"));
  for (const HistoryRow& r : History()) EXPECT_EQ(r.version, 1);

  // A restarted runner waits for the dead runner's session to end, then applies it.
  MigratorOptions o = Options();
  o.wait_lock = 30s;
  auto up = Migrator(o).Up(std::nullopt);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_TRUE(TableExists("slow"));
  auto h = History();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].version, 2);
  EXPECT_EQ(h[1].status, "applied");
}

TEST_F(MigratorTest, KillNineDuringNoTransactionMigrationResumesAfterRestart) {
  Write("0001_nt.up.sql",
        "-- turnout:no-transaction\nCREATE TABLE a (id int);\nSELECT pg_sleep(3);\n"
        "CREATE TABLE b (id int);");
  ToolProcess tool({"up", "--dir", dir_, "--database", url_});
  ASSERT_TRUE(WaitForQuery("SELECT pg_sleep%")) << tool.Output();
  auto during = Migrator(Options()).Status();
  ASSERT_TRUE(during.ok());
  ASSERT_TRUE(during->active_runner.has_value());  // in progress, not interrupted
  EXPECT_NE(during->active_runner->find("turnout-migrate"), std::string::npos);
  tool.Kill9();

  VersionStatus v = StatusOf(1);
  EXPECT_EQ(v.state, VersionState::kPartial);
  EXPECT_EQ(v.statements_done, 1);
  EXPECT_EQ(History().back().status, "running");
  EXPECT_TRUE(TableExists("a"));
  EXPECT_FALSE(TableExists("b"));

  MigratorOptions o = Options();
  o.wait_lock = 30s;
  auto up = Migrator(o).Up(std::nullopt);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_EQ(up->done.size(), 1u);
  EXPECT_EQ(up->done[0].resume_from, 1);
  EXPECT_TRUE(TableExists("b"));
  EXPECT_EQ(StatusOf(1).state, VersionState::kApplied);
  EXPECT_FALSE(Migrator(Options()).Status()->active_runner.has_value());
}

TEST_F(MigratorTest, ConcurrentRunnersOneWaitsNoDeadlockWithCreateIndexConcurrently) {
  Write("0001_t.up.sql",
        "CREATE TABLE t (id int, v int);\n"
        "INSERT INTO t SELECT g, g % 100 FROM generate_series(1, 20000) g;");
  Write("0002_idx.up.sql",
        "-- turnout:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_idx ON t (v);\n"
        "SELECT pg_sleep(2);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id_idx ON t (id);");
  ToolProcess a({"up", "--dir", dir_, "--database", url_, "--wait-lock", "60s"});
  ToolProcess b({"up", "--dir", dir_, "--database", url_, "--wait-lock", "60s"});
  int ra = a.Wait();
  int rb = b.Wait();
  EXPECT_EQ(ra, 0) << a.Output();
  EXPECT_EQ(rb, 0) << b.Output();
  std::string both = a.Output() + b.Output();
  EXPECT_NE(both.find("waiting for the migration lock"), std::string::npos) << both;
  EXPECT_NE(both.find("nothing to do"), std::string::npos) << both;
  int applied = 0;
  for (const HistoryRow& r : History()) applied += r.status == "applied";
  EXPECT_EQ(applied, 2);
  EXPECT_EQ(Query("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                  "WHERE c.relname IN ('t_v_idx', 't_id_idx') AND i.indisvalid"),
            "2");
}

TEST_F(MigratorTest, LockTimeoutNamesTheHolder) {
  Write("0001_a.up.sql", "CREATE TABLE a (id int);");
  auto holder = PgConnection::Connect(url_, "holder-test");
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE(
      holder->Exec("SELECT pg_advisory_lock(" + std::to_string(kAdvisoryLockKey) + ")").ok());
  ManualClock clock;
  MigratorOptions o = Options();
  o.clock = &clock;
  o.wait_lock = 10s;
  o.sleep = [&clock](Clock::Duration d) { clock.Advance(d); };  // no real waiting
  auto up = Migrator(o).Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), StatusCode::kDeadlineExceeded);
  const std::string& msg = up.status().message();
  EXPECT_NE(msg.find("pid " + std::to_string(holder->backend_pid())), std::string::npos) << msg;
  EXPECT_NE(msg.find("application_name 'holder-test'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("client 127.0.0.1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("connected since"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pg_terminate_backend"), std::string::npos) << msg;
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kWaitingForLock), 1);
  EXPECT_FALSE(TableExists("a"));
}

TEST_F(MigratorTest, LockNotAvailableIsRetriedWithBackoff) {
  Write("0001_t.up.sql", "CREATE TABLE t (id int);");
  Write("0002_col.up.sql", "ALTER TABLE t ADD COLUMN c int;");
  Migrator(Options()).Up(1).value();
  auto holder = PgConnection::Connect(url_, "holder-test");
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE(holder->Exec("BEGIN").ok());
  ASSERT_TRUE(holder->Exec("LOCK TABLE t IN ACCESS EXCLUSIVE MODE").ok());

  MigratorOptions o = Options();
  o.lock_timeout = 100ms;
  o.lock_retries = 2;
  std::vector<Clock::Duration> backoffs;
  o.sleep = [&](Clock::Duration d) { backoffs.push_back(d); };
  auto up = Migrator(o).Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("55P03"), std::string::npos) << up.status().message();
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kRetry), 2);
  ASSERT_EQ(backoffs.size(), 2u);
  EXPECT_EQ(backoffs[1], 2 * backoffs[0]);
  EXPECT_EQ(History().back().status, "failed");

  // The lock goes away during the first backoff: the retry succeeds.
  events_.clear();
  o.on_progress = [this](const ProgressEvent& e) { events_.push_back(e); };
  o.sleep = [&](Clock::Duration) { (void)holder->Exec("COMMIT"); };
  auto again = Migrator(o).Up(std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kRetry), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND "
                  "column_name = 'c'"),
            "1");
}

TEST_F(MigratorTest, InvalidIndexFromAFailedConcurrentBuildIsDroppedBeforeRetry) {
  ASSERT_TRUE(conn_.Exec("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (1), (2)").ok());
  // A failed concurrent build leaves an INVALID index behind...
  ASSERT_FALSE(conn_.Exec("CREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v)").ok());
  ASSERT_EQ(Query("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass"), "f");
  ASSERT_TRUE(conn_.Exec("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE v = 1)").ok());
  // ...which IF NOT EXISTS alone would keep. turnout drops it first.
  Write("0001_idx.up.sql",
        "-- turnout:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_v_key ON t "
        "(v);");
  auto up = Migrator(Options()).Up(std::nullopt);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(Query("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass"), "t");
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kWarning), 1);

  // A build that fails in the migration does not leave its INVALID index behind either.
  ASSERT_TRUE(conn_.Exec("CREATE TABLE u (v int); INSERT INTO u VALUES (1), (1)").ok());
  Write("0002_idx.up.sql",
        "-- turnout:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY u_v_key ON u (v);");
  auto failed = Migrator(Options()).Up(std::nullopt);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(Query("SELECT to_regclass('u_v_key') IS NULL"), "t");
}

TEST_F(MigratorTest, ChangedAppliedFileIsRefusedWhitespaceOnlyChangeIsReported) {
  WriteThree();
  Migrator m(Options());
  ASSERT_TRUE(m.Up(2).ok());
  Write("0001_users.up.sql",
        "-- users of the app\nCREATE TABLE users (\n  id bigint PRIMARY KEY,\n  name text\n);\n");
  auto v = m.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  ASSERT_EQ(v->notes.size(), 1u);
  EXPECT_NE(v->notes[0].find("whitespace or comments only"), std::string::npos);
  EXPECT_EQ(StatusOf(1).checksum, ChecksumState::kCosmetic);
  events_.clear();
  ASSERT_TRUE(m.Up(std::nullopt).ok());  // a cosmetic change does not block
  EXPECT_EQ(CountEvents(ProgressEvent::Kind::kWarning), 1);

  Write("0002_orders.up.sql", "CREATE TABLE orders (id bigint, total numeric);");
  v = m.Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  ASSERT_EQ(v->problems.size(), 1u);
  EXPECT_NE(v->problems[0].find("0002_orders: the file changed"), std::string::npos)
      << v->problems[0];
  Write("0004_more.up.sql", "CREATE TABLE more (id int);");
  auto up = m.Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(up.status().message().find("changed on disk"), std::string::npos);
  EXPECT_FALSE(TableExists("more"));

  fs::remove(dir_ + "/0002_orders.up.sql");
  fs::remove(dir_ + "/0002_orders.down.sql");
  v = m.Verify();
  EXPECT_FALSE(v->ok);
  EXPECT_NE(v->problems[0].find("file is missing"), std::string::npos);
}

TEST_F(MigratorTest, VerifyDetectsAHistoryThatDoesNotChain) {
  WriteThree();
  ASSERT_TRUE(Migrator(Options()).Up(std::nullopt).ok());
  // A row appended by hand (the table refuses only updates and deletes) claiming version 2 was
  // applied on top of something else.
  ASSERT_TRUE(conn_
                  .Exec("INSERT INTO turnout_schema_history (version, name, direction, status, "
                        "file_sha256, normalized_sha256, chain_sha256, statements_done, "
                        "statements_total, started_at, run_id) SELECT version, name, "
                        "direction, status, file_sha256, normalized_sha256, repeat('0', 64), "
                        "statements_done, statements_total, now(), 'forged' FROM "
                        "turnout_schema_history WHERE version = 2")
                  .ok());
  auto v = Migrator(Options()).Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  ASSERT_FALSE(v->problems.empty());
  EXPECT_NE(v->problems[0].find("0002_orders: the recorded hash chain"), std::string::npos)
      << v->problems[0];
}

TEST_F(MigratorTest, PlanIsADryRunWithClassesAndRefusesOutOfOrderVersions) {
  WriteThree();
  Write("0004_drop.up.sql", "SET lock_timeout = '1s';\nALTER TABLE users DROP COLUMN name;");
  Migrator m(Options());
  auto plan = m.PlanUp(std::nullopt);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), 4u);
  EXPECT_EQ((*plan)[0].classification, MigrationClass::kExpand);
  EXPECT_EQ((*plan)[3].classification, MigrationClass::kContract);
  EXPECT_FALSE(TableExists("turnout_schema_history"));  // a dry run creates nothing
  ASSERT_TRUE(m.Up(3).ok());
  auto down = m.PlanDown(1);
  ASSERT_TRUE(down.ok());
  ASSERT_EQ(down->size(), 2u);
  EXPECT_EQ((*down)[0].version, 3);
  EXPECT_EQ(m.PlanDown(0).status().code(), StatusCode::kOk);
  EXPECT_EQ(m.PlanUp(1).status().code(), StatusCode::kInvalidArgument);  // below current

  fs::remove(dir_ + "/0004_drop.up.sql");
  Write("0000_early.up.sql", "SELECT 1;");
  auto late = m.PlanUp(std::nullopt);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("give it a version above 3"), std::string::npos);
}

TEST_F(MigratorTest, TimeoutsAreSetPerStatementUnlessTheFileSetsItsOwn) {
  Write("0001_default.up.sql",
        "CREATE TABLE seen AS SELECT 1 AS v, current_setting('lock_timeout') AS lt, "
        "current_setting('statement_timeout') AS st;");
  Write("0002_own.up.sql",
        "SET LOCAL lock_timeout = '1234ms';\n"
        "INSERT INTO seen SELECT 2, current_setting('lock_timeout'), "
        "current_setting('statement_timeout');");
  Write("0003_nt.up.sql",
        "-- turnout:no-transaction\nINSERT INTO seen SELECT 3, current_setting('lock_timeout'), "
        "current_setting('statement_timeout');");
  MigratorOptions o = Options();
  o.lock_timeout = 3s;
  o.statement_timeout = 1min;
  ASSERT_TRUE(Migrator(o).Up(std::nullopt).ok());
  EXPECT_EQ(Query("SELECT lt || ' ' || st FROM seen WHERE v = 1"), "3s 1min");
  EXPECT_EQ(Query("SELECT lt || ' ' || st FROM seen WHERE v = 2"), "1234ms 1min");
  EXPECT_EQ(Query("SELECT lt || ' ' || st FROM seen WHERE v = 3"), "3s 1min");
}

TEST_F(MigratorTest, ErrorsWithAKnownCauseSayWhatToDo) {
  Write("0001_t.up.sql", "CREATE TABLE t (v int);\nCREATE INDEX CONCURRENTLY t_v ON t (v);");
  auto up = Migrator(Options()).Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("turnout:no-transaction"), std::string::npos)
      << up.status().message();
  EXPECT_FALSE(TableExists("t"));

  Write("0001_t.up.sql", "SELECT pg_sleep(5);");
  MigratorOptions o = Options();
  o.statement_timeout = 100ms;
  up = Migrator(o).Up(std::nullopt);
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("--statement-timeout"), std::string::npos)
      << up.status().message();
}

TEST_F(MigratorTest, DownWithoutDownFileSaysWhatToWrite) {
  Write("0001_a.up.sql", "CREATE TABLE a (id int);");
  Migrator m(Options());
  ASSERT_TRUE(m.Up(std::nullopt).ok());
  auto down = m.Down(0);
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.status().message().find("0001_a.down.sql"), std::string::npos);
  EXPECT_TRUE(TableExists("a"));
}

// The command-line surface, end to end against the same server.
TEST_F(MigratorTest, CliCommandsAndExitCodes) {
  WriteThree();
  auto run = [&](std::vector<std::string> args, std::string* out_text = nullptr) {
    std::ostringstream out, err;
    int rc = RunMigrateCommand(args, out, err);
    if (out_text != nullptr) *out_text = out.str() + err.str();
    return rc;
  };
  std::string text;
  EXPECT_EQ(run({"up", "--dir", dir_, "--database", url_, "--to", "2"}, &text), 0) << text;
  EXPECT_NE(text.find("0002_orders up: statement 3/3 done"), std::string::npos) << text;
  EXPECT_NE(text.find("current version 2"), std::string::npos) << text;
  EXPECT_EQ(run({"status", "--dir", dir_, "--database", url_, "--json"}, &text), 0);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["current"], 2);
  EXPECT_EQ(j["pending"], 1);
  EXPECT_EQ(j["versions"][2]["state"], "pending");
  EXPECT_EQ(run({"plan", "--dir", dir_, "--database", url_}, &text), 0);
  EXPECT_NE(text.find("1. 0003_email up [expand]"), std::string::npos) << text;
  EXPECT_EQ(run({"down", "--dir", dir_, "--database", url_}, &text), 2);
  EXPECT_NE(text.find("--to"), std::string::npos);
  EXPECT_EQ(run({"down", "--dir", dir_, "--database", url_, "--steps", "1", "--json"}, &text), 0);
  j = nlohmann::json::parse(text);
  EXPECT_EQ(j["current"], 1);
  EXPECT_EQ(run({"verify", "--dir", dir_, "--database", url_}, &text), 0) << text;
  // Without --database: $TURNOUT_DATABASE_URL.
  setenv("TURNOUT_DATABASE_URL", url_.c_str(), 1);
  EXPECT_EQ(run({"status", "--dir", dir_}, &text), 0) << text;
  unsetenv("TURNOUT_DATABASE_URL");
  EXPECT_NE(text.find("current version: 1, 2 pending"), std::string::npos) << text;
  EXPECT_EQ(run({"lint", "--dir", dir_}, &text), 0) << text;
  Write("0004_drop.up.sql", "ALTER TABLE users DROP COLUMN name;");
  EXPECT_EQ(run({"lint", "--dir", dir_}, &text), 1);
  EXPECT_NE(text.find("drop-column"), std::string::npos) << text;
  EXPECT_NE(text.find("safe alternative"), std::string::npos) << text;
  EXPECT_EQ(run({"up", "--help"}, &text), 0);
  EXPECT_NE(text.find("--lock-timeout"), std::string::npos);
  EXPECT_EQ(run({"up", "--bogus"}, &text), 2);
  EXPECT_EQ(run({"up", "--dir", dir_, "--database", url_, "--lock-timeout", "5x"}, &text), 2);
  EXPECT_EQ(run({"up", "--dir", dir_ + "/nope", "--database", url_}, &text), 1);
  EXPECT_NE(text.find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace turnout::db
