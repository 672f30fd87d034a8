// Integration tests of `turnout backup` against a real PostgreSQL 15 (db/testing/pg_server.h),
// with the real pg_dump and pg_restore.

#include "backup/backup.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "backup/backup_cli.h"
#include "backup/catalog.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "db/migrate_cli.h"
#include "db/pg.h"
#include "db/testing/pg_server.h"

namespace turnout::backup {
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

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = PgEnvironment::server().CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    admin_url_ = PgEnvironment::server().Url("postgres");
    std::string tmpl = ::testing::TempDir() + "turnout_backup_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    env_.backups_dir = (tmp_ / "backups").string();
    Seed();
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

  int64_t Count(const std::string& url, const std::string& table) {
    auto c = PgConnection::Connect(url, "test");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return -1;
    auto r = c->Exec("SELECT count(*) FROM " + table);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::stoll(r->text(0, 0)) : -1;
  }

  std::map<std::string, int64_t> Counts(const std::string& url) {
    auto c = PgConnection::Connect(url, "test");
    EXPECT_TRUE(c.ok());
    auto counts = ReadRowCounts(*c);
    EXPECT_TRUE(counts.ok()) << counts.status().ToString();
    return counts.ok() ? *counts : std::map<std::string, int64_t>{};
  }

  std::string Fingerprint(const std::string& url) {
    auto c = PgConnection::Connect(url, "test");
    EXPECT_TRUE(c.ok());
    auto f = ReadSchemaFingerprint(*c);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? f->sha256 : "";
  }

  int64_t ScratchDatabases() {
    auto c = PgConnection::Connect(admin_url_, "test");
    EXPECT_TRUE(c.ok());
    auto r = c->Exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'turnout_verify_%'");
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::stoll(r->text(0, 0)) : -1;
  }

  // A schema with what the fingerprint covers: identity, serial, defaults, a foreign key, a
  // check, unique and partial indexes, a sequence, an empty table and a partitioned table.
  void Seed() {
    Exec(url_, R"sql(
CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (
  id serial PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id),
  amount numeric(10, 2) CHECK (amount >= 0),
  note text);
CREATE INDEX orders_user_idx ON orders (user_id) WHERE note IS NULL;
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 5;
CREATE TABLE audit (id bigint, at timestamptz);
CREATE SCHEMA billing;
CREATE TABLE billing.events (id bigint NOT NULL, day date NOT NULL) PARTITION BY RANGE (day);
CREATE TABLE billing.events_2026 PARTITION OF billing.events
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 2000) g;
INSERT INTO orders (user_id, amount, note)
  SELECT 1 + g % 2000, g % 100, CASE WHEN g % 3 = 0 THEN 'n' END FROM generate_series(1, 5000) g;
INSERT INTO billing.events SELECT g, DATE '2026-03-01' + g % 200 FROM generate_series(1, 700) g;
)sql");
  }

  Manifest MustCreate(DumpFormat format, int jobs = 1) {
    CreateOptions o;
    o.conninfo = url_;
    o.format = format;
    o.jobs = jobs;
    auto m = CreateBackup(env_, o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : Manifest{};
  }

  VerifyReport MustVerify(const std::string& id, int level) {
    VerifyOptions o;
    o.level = level;
    o.conninfo = admin_url_;
    o.jobs = 2;
    auto r = VerifyBackup(env_, id, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  fs::path BackupDir(const std::string& id) { return fs::path(env_.backups_dir) / id; }

  // The largest table data file of a directory-format dump.
  fs::path LargestDataFile(const std::string& id) {
    fs::path best;
    uintmax_t best_size = 0;
    for (const auto& e : fs::directory_iterator(BackupDir(id) / "dump")) {
      if (e.path().filename() == "toc.dat") continue;
      if (e.file_size() > best_size) {
        best_size = e.file_size();
        best = e.path();
      }
    }
    return best;
  }

  // What an attacker or a broken sync tool could do: make the manifest match damaged files.
  void RewriteManifestHashes(const std::string& id) {
    fs::path dir = BackupDir(id);
    json j = json::parse(ReadFile(dir / "manifest.json"));
    uint64_t total = 0;
    for (json& f : j["files"]) {
      std::string content = ReadFile(dir / f["path"].get<std::string>());
      f["size"] = content.size();
      f["sha256"] = Sha256Hex(content);
      total += content.size();
    }
    j["size_bytes"] = total;
    WriteFile(dir / "manifest.json", j.dump(2));
    ASSERT_TRUE(ParseManifest(ReadFile(dir / "manifest.json")).ok());
  }

  int Cli(std::vector<std::string> args, std::string* out, std::string* err = nullptr) {
    args.push_back("--dir");
    args.push_back(env_.backups_dir);
    std::ostringstream o, e;
    int code = RunBackupCommand(args, o, e);
    *out = o.str();
    if (err != nullptr) *err = e.str();
    return code;
  }

  std::string url_;
  std::string admin_url_;
  fs::path tmp_;
  BackupEnv env_;
};

TEST_F(BackupTest, CreateRecordsSnapshotCountsFingerprintAndMigrationVersion) {
  fs::path migrations = tmp_ / "migrations";
  fs::create_directories(migrations);
  WriteFile(migrations / "0001_extra.up.sql", "CREATE TABLE extra (id int);\n");
  WriteFile(migrations / "0002_more.up.sql", "ALTER TABLE extra ADD COLUMN n int;\n");
  std::ostringstream mo, me;
  ASSERT_EQ(db::RunMigrateCommand({"up", "--dir", migrations.string(), "--database", url_}, mo, me),
            0)
      << me.str();

  std::vector<std::string> phases;
  env_.on_progress = [&](const Progress& p) { phases.push_back(p.phase); };
  CreateOptions o;
  o.conninfo = url_;
  o.jobs = 2;
  o.labels = {{"deployment_id", "d-1"}};
  auto m = CreateBackup(env_, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();

  EXPECT_EQ(m->row_counts.at("public.users"), 2000);
  EXPECT_EQ(m->row_counts.at("public.orders"), 5000);
  EXPECT_EQ(m->row_counts.at("public.audit"), 0);
  EXPECT_EQ(m->row_counts.at("billing.events"), 700);
  EXPECT_EQ(m->row_counts.at("billing.events_2026"), 700);
  EXPECT_EQ(m->row_counts, Counts(url_));
  EXPECT_EQ(m->schema_fingerprint, Fingerprint(url_));
  EXPECT_EQ(m->migration_version, 2);
  EXPECT_FALSE(m->snapshot.empty());
  EXPECT_EQ(m->labels.at("deployment_id"), "d-1");
  EXPECT_NE(m->pg_dump_version.find("pg_dump"), std::string::npos);
  EXPECT_EQ(m->server_version.substr(0, 2), "15");
  EXPECT_EQ(m->database, url_.substr(url_.rfind('/') + 1));

  // The manifest on disk is what was returned, and every file is in it.
  fs::path dir = BackupDir(m->id);
  auto disk = ParseManifest(ReadFile(dir / "manifest.json"));
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  EXPECT_EQ(ManifestToJson(*disk), ManifestToJson(*m));
  EXPECT_FALSE(fs::exists(dir / ".in-progress"));
  EXPECT_TRUE(fs::exists(dir / "dump" / "toc.dat"));
  bool has_toc = false, has_schema = false;
  for (const FileEntry& f : m->files) {
    has_toc = has_toc || f.path == "dump/toc.dat";
    has_schema = has_schema || f.path == "schema.txt";
    EXPECT_EQ(f.sha256, Sha256Hex(ReadFile(dir / f.path))) << f.path;
  }
  EXPECT_TRUE(has_toc);
  EXPECT_TRUE(has_schema);
  for (std::string phase : {"snapshot", "dump", "counts", "hash", "done"}) {
    EXPECT_NE(std::find(phases.begin(), phases.end(), phase), phases.end()) << phase;
  }
}

TEST_F(BackupTest, BothFormatsPassAllThreeVerifyLevels) {
  for (DumpFormat format : {DumpFormat::kDirectory, DumpFormat::kCustom}) {
    SCOPED_TRACE(std::string(DumpFormatName(format)));
    Manifest m = MustCreate(format, format == DumpFormat::kDirectory ? 2 : 1);
    for (int level = 1; level <= 3; ++level) {
      VerifyReport r = MustVerify(m.id, level);
      EXPECT_TRUE(r.ok) << level << ": " << ::testing::PrintToString(r.problems);
      EXPECT_EQ(r.level_reached, level);
      EXPECT_EQ(r.level_duration_ms.size(), static_cast<size_t>(level));
    }
    auto info = FindBackup(env_, m.id);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(info->verify.has_value());
    EXPECT_EQ(info->verified_level(), 3);
    EXPECT_TRUE(info->verify->ok);
  }
  EXPECT_EQ(ScratchDatabases(), 0);
}

TEST_F(BackupTest, TruncatedFileIsCaughtAtLevelOne) {
  Manifest m = MustCreate(DumpFormat::kDirectory);
  fs::path victim = LargestDataFile(m.id);
  uintmax_t size = fs::file_size(victim);
  fs::resize_file(victim, size / 2);
  VerifyReport r = MustVerify(m.id, 3);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.level_reached, 0);
  ASSERT_EQ(r.problems.size(), 1u) << ::testing::PrintToString(r.problems);
  EXPECT_NE(r.problems[0].find("dump/" + victim.filename().string()), std::string::npos);
  EXPECT_NE(r.problems[0].find("truncated"), std::string::npos);
  EXPECT_NE(r.next_step.find("do not restore"), std::string::npos);
  EXPECT_EQ(r.level_duration_ms.count(2), 0u);  // stopped at level 1
  // The outcome is recorded.
  auto info = FindBackup(env_, m.id);
  ASSERT_TRUE(info.ok() && info->verify.has_value());
  EXPECT_EQ(info->verify->level_reached, 0);
  EXPECT_FALSE(info->verify->ok);
  // What turnout prints is what docs/backups.md shows: the level that failed.
  std::string out, err;
  EXPECT_EQ(Cli({"verify", m.id, "--level", "1"}, &out, &err), 1);
  EXPECT_NE(out.find("level 1: FAILED"), std::string::npos) << out;
  EXPECT_NE(out.find(": FAILED at level 1 (no level passed; level 1 requested)"), std::string::npos)
      << out;
  ASSERT_EQ(Cli({"list"}, &out), 0);
  EXPECT_NE(out.find("failed at 1"), std::string::npos) << out;
  EXPECT_EQ(out.find("level 0"), std::string::npos) << out;
}

TEST_F(BackupTest, FlippedByteMissingAndExtraFilesAreNamedAtLevelOne) {
  Manifest m = MustCreate(DumpFormat::kCustom);
  fs::path dump = BackupDir(m.id) / "dump.pgdump";
  std::string content = ReadFile(dump);
  content[content.size() / 2] ^= 0x01;
  WriteFile(dump, content);
  VerifyReport r = MustVerify(m.id, 1);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].find("changed file: dump.pgdump has SHA-256"), std::string::npos);

  Manifest d = MustCreate(DumpFormat::kDirectory);
  fs::remove(BackupDir(d.id) / "schema.txt");
  WriteFile(BackupDir(d.id) / "dump" / "stray.dat", "x");
  r = MustVerify(d.id, 2);
  EXPECT_FALSE(r.ok);
  std::string all = ::testing::PrintToString(r.problems);
  EXPECT_NE(all.find("missing file: schema.txt"), std::string::npos) << all;
  EXPECT_NE(all.find("extra file: dump/stray.dat"), std::string::npos) << all;
}

TEST_F(BackupTest, TruncatedDumpWithRewrittenManifestIsCaughtByDecodeOrRestore) {
  for (DumpFormat format : {DumpFormat::kDirectory, DumpFormat::kCustom}) {
    SCOPED_TRACE(std::string(DumpFormatName(format)));
    Manifest m = MustCreate(format);
    fs::path victim =
        format == DumpFormat::kDirectory ? LargestDataFile(m.id) : BackupDir(m.id) / "dump.pgdump";
    fs::resize_file(victim, fs::file_size(victim) * 2 / 3);
    RewriteManifestHashes(m.id);
    EXPECT_TRUE(MustVerify(m.id, 1).ok);  // the hashes were made to match
    VerifyReport r = MustVerify(m.id, 3);
    EXPECT_FALSE(r.ok);
    EXPECT_GE(r.level_reached, 1);
    EXPECT_LT(r.level_reached, 3);
    EXPECT_FALSE(r.problems.empty());
    EXPECT_FALSE(r.next_step.empty());
    std::cout << "[" << DumpFormatName(format) << "] caught after level " << r.level_reached << ": "
              << r.problems[0].substr(0, 200) << "\n";
  }
  EXPECT_EQ(ScratchDatabases(), 0);
}

TEST_F(BackupTest, RestoreRoundTripEqualsTheManifest) {
  for (DumpFormat format : {DumpFormat::kCustom, DumpFormat::kDirectory}) {
    SCOPED_TRACE(std::string(DumpFormatName(format)));
    Manifest m = MustCreate(format, format == DumpFormat::kDirectory ? 2 : 1);
    auto target = PgEnvironment::server().CreateDatabase();
    ASSERT_TRUE(target.ok());
    RestoreOptions o;
    o.target = *target;
    o.confirm_data_loss = true;
    o.jobs = format == DumpFormat::kDirectory ? 2 : 1;
    auto r = RestoreBackup(env_, m.id, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->restored);
    EXPECT_TRUE(r->mismatches.empty()) << ::testing::PrintToString(r->mismatches);
    EXPECT_TRUE(r->fingerprint_matches) << ::testing::PrintToString(r->schema_diff);
    EXPECT_EQ(Counts(*target), m.row_counts);
    EXPECT_EQ(Fingerprint(*target), m.schema_fingerprint);
    EXPECT_NE(r->method.find(format == DumpFormat::kCustom ? "--single-transaction" : "-j2"),
              std::string::npos);
  }
}

TEST_F(BackupTest, RestoreWithoutConfirmationRefusesAndReportsTheDeltas) {
  Manifest m = MustCreate(DumpFormat::kCustom);
  Exec(url_,
       "INSERT INTO users (email) VALUES ('late1@x'), ('late2@x'), ('late3@x');"
       "DELETE FROM orders WHERE id <= 2;"
       "CREATE TABLE newer (id int); INSERT INTO newer VALUES (1);");

  RestoreOptions o;
  o.target = url_;
  auto r = RestoreBackup(env_, m.id, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->refused);
  EXPECT_FALSE(r->restored);
  EXPECT_EQ(r->rows_lost_at_least, 3);
  EXPECT_EQ(r->rows_back_at_least, 2);
  ASSERT_EQ(r->deltas.size(), 2u);
  EXPECT_EQ(r->deltas[0].table, "public.orders");
  EXPECT_EQ(r->deltas[0].target_rows, 4998);
  EXPECT_EQ(r->deltas[1].table, "public.users");
  EXPECT_EQ(r->deltas[1].backup_rows, 2000);
  EXPECT_EQ(r->deltas[1].target_rows, 2003);
  EXPECT_EQ(r->kept_tables, std::vector<std::string>{"public.newer"});
  EXPECT_EQ(Count(url_, "users"), 2003);  // nothing changed

  // The CLI: exit 1, and the message names what would be lost and how to go on.
  std::string out, err;
  EXPECT_EQ(Cli({"restore", m.id, "--to", url_}, &out, &err), 1);
  EXPECT_NE(err.find("public.users: target has 2003 rows, the backup 2000: at least 3 rows "
                     "written since the backup will be lost"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("public.orders: target has 4998 rows, the backup 5000: at least 2 rows "
                     "deleted since the backup come back"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("refused: at least 3 rows written since " + m.created_at), std::string::npos)
      << err;
  EXPECT_NE(err.find("--confirm-data-loss"), std::string::npos);
  EXPECT_EQ(Count(url_, "users"), 2003);

  // Confirmed: the target is back to the manifest; the newer table is left alone.
  EXPECT_EQ(Cli({"restore", m.id, "--to", url_, "--confirm-data-loss"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("row counts equal the manifest"), std::string::npos) << out;
  EXPECT_EQ(Count(url_, "users"), 2000);
  EXPECT_EQ(Count(url_, "orders"), 5000);
  EXPECT_EQ(Count(url_, "newer"), 1);
}

TEST_F(BackupTest, RestoreRefusesADamagedBackupAndChangesNothing) {
  Manifest m = MustCreate(DumpFormat::kCustom);
  fs::path dump = BackupDir(m.id) / "dump.pgdump";
  fs::resize_file(dump, fs::file_size(dump) - 10);
  Exec(url_, "INSERT INTO users (email) VALUES ('kept@x')");
  RestoreOptions o;
  o.target = url_;
  o.confirm_data_loss = true;
  auto r = RestoreBackup(env_, m.id, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
  EXPECT_EQ(Count(url_, "users"), 2001);
}

TEST_F(BackupTest, RestoreBlockedByAnApplicationFailsWithinTheLockTimeoutAndChangesNothing) {
  Manifest m = MustCreate(DumpFormat::kCustom);
  Exec(url_, "INSERT INTO users (email) VALUES ('late@x')");
  // An application session still reading users: DROP TABLE must wait for it.
  auto app = PgConnection::Connect(url_, "app");
  ASSERT_TRUE(app.ok());
  ASSERT_TRUE(app->Exec("BEGIN").ok());
  ASSERT_TRUE(app->Exec("LOCK TABLE users IN ACCESS SHARE MODE").ok());
  RestoreOptions o;
  o.target = url_;
  o.confirm_data_loss = true;
  o.lock_timeout = std::chrono::milliseconds(300);
  auto r = RestoreBackup(env_, m.id, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("waited more than 300ms for a table lock held by pid " +
                                      std::to_string(app->backend_pid()) + " (app, "),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("rolled back; the target is unchanged"), std::string::npos);
  ASSERT_TRUE(app->Exec("COMMIT").ok());
  EXPECT_EQ(Count(url_, "users"), 2001);
  EXPECT_EQ(Count(url_, "orders"), 5000);
}

TEST_F(BackupTest, PruneKeepsTheNewestVerifiedBackup) {
  Manifest oldest = MustCreate(DumpFormat::kCustom);
  ASSERT_TRUE(MustVerify(oldest.id, 3).ok);
  Manifest middle = MustCreate(DumpFormat::kCustom);
  Manifest newest = MustCreate(DumpFormat::kCustom);
  // A create that died long ago: no manifest, its lock no longer held, nothing written for 2 h.
  fs::path dead = fs::path(env_.backups_dir) / "20000101T000000.000Z";
  fs::create_directories(dead / "dump");
  WriteFile(dead / "dump" / "toc.dat", "partial");
  auto two_hours_ago = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (const fs::path& p : {dead / "dump" / "toc.dat", dead / "dump", dead}) {
    fs::last_write_time(p, two_hours_ago);
  }
  // One that died a minute ago: its pg_dump may still be writing, so it stays.
  fs::path recent = fs::path(env_.backups_dir) / "20000101T000001.000Z";
  fs::create_directories(recent / "dump");

  PruneOptions o;
  o.keep = 1;
  o.dry_run = true;
  auto dry = PruneBackups(env_, o);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->deleted, (std::vector<std::string>{middle.id, "20000101T000000.000Z"}));
  bool recent_kept = false;
  for (const auto& [id, why] : dry->kept) {
    recent_kept =
        recent_kept || (id == "20000101T000001.000Z" && why.find("may still") != std::string::npos);
  }
  EXPECT_TRUE(recent_kept) << ::testing::PrintToString(dry->kept);
  EXPECT_TRUE(fs::exists(BackupDir(middle.id)));

  std::string out;
  ASSERT_EQ(Cli({"prune", "--keep", "1", "--json"}, &out), 0);
  json j = json::parse(out);
  EXPECT_EQ(j["deleted"].size(), 2u) << out;
  EXPECT_FALSE(fs::exists(BackupDir(middle.id)));
  EXPECT_TRUE(fs::exists(BackupDir(oldest.id)));
  EXPECT_TRUE(fs::exists(BackupDir(newest.id)));
  auto all = ListBackups(env_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "20000101T000001.000Z");
  EXPECT_FALSE((*all)[0].manifest.has_value());
  EXPECT_EQ((*all)[1].id, oldest.id);
  fs::remove_all(recent);

  // --keep-verified keeps every verified one; without it only the newest verified survives.
  ASSERT_TRUE(MustVerify(newest.id, 3).ok);
  Manifest latest = MustCreate(DumpFormat::kCustom);
  o.dry_run = false;
  o.keep_verified = true;
  auto kept = PruneBackups(env_, o);
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->deleted.empty());
  o.keep_verified = false;
  auto pruned = PruneBackups(env_, o);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->deleted, std::vector<std::string>{oldest.id});
  EXPECT_TRUE(fs::exists(BackupDir(newest.id)));
  EXPECT_TRUE(fs::exists(BackupDir(latest.id)));
}

TEST_F(BackupTest, ConcurrentWritesDuringCreateDoNotChangeTheManifestCounts) {
  Exec(url_,
       "CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL);"
       "INSERT INTO events (payload) SELECT repeat('p', 200) FROM generate_series(1, 50000)");
  std::atomic<bool> stop{false};
  std::atomic<int64_t> inserted{0};
  std::promise<void> first_batch;
  std::thread writer([&] {
    auto c = PgConnection::Connect(url_, "writer");
    ASSERT_TRUE(c.ok());
    bool signalled = false;
    // Bounded: at most 4000 statements, stops as soon as the backup is done.
    for (int i = 0; i < 4000 && !stop.load(); ++i) {
      auto r = c->Exec(
          "INSERT INTO events (payload) SELECT 'w' FROM generate_series(1, 25);"
          "INSERT INTO users (email) VALUES ('w" +
          std::to_string(i) + "@x')");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      inserted += 25;
      if (!signalled) {
        first_batch.set_value();
        signalled = true;
      }
    }
    if (!signalled) first_batch.set_value();
  });
  first_batch.get_future().wait();
  CreateOptions o;
  o.conninfo = url_;
  o.jobs = 2;
  auto m = CreateBackup(env_, o);
  stop = true;
  writer.join();
  ASSERT_TRUE(m.ok()) << m.status().ToString();

  int64_t in_manifest = m->row_counts.at("public.events");
  int64_t now = Count(url_, "events");
  std::cout << "events: 50000 before, " << in_manifest << " in the snapshot, " << now
            << " at the end\n";
  EXPECT_GT(in_manifest, 50000);  // writes before the snapshot are in it
  EXPECT_GT(now, in_manifest);    // writes went on while pg_dump ran
  VerifyReport r = MustVerify(m->id, 3);
  EXPECT_TRUE(r.ok) << ::testing::PrintToString(r.problems);
}

TEST_F(BackupTest, CliCreateListVerifyJsonAndUsageErrors) {
  std::string out, err;
  ASSERT_EQ(Cli({"create", "--url", url_, "--format", "custom", "--label", "team=core", "--json"},
                &out, &err),
            0)
      << err;
  json created = json::parse(out);
  EXPECT_TRUE(created["ok"].get<bool>());
  std::string id = created["backup"]["id"];
  EXPECT_EQ(created["backup"]["labels"]["team"], "core");
  EXPECT_TRUE(err.empty()) << err;  // no progress lines with --json

  ASSERT_EQ(Cli({"verify", "--level", "2", "--url", admin_url_}, &out, &err), 0) << out << err;
  EXPECT_NE(out.find("ok at level 2"), std::string::npos);

  ASSERT_EQ(Cli({"list", "--json"}, &out), 0);
  json list = json::parse(out);
  ASSERT_EQ(list["backups"].size(), 1u);
  EXPECT_EQ(list["backups"][0]["id"], id);
  EXPECT_EQ(list["backups"][0]["verified_level"], 2);
  EXPECT_EQ(list["backups"][0]["tables"], 5);
  ASSERT_EQ(Cli({"list"}, &out), 0);
  EXPECT_NE(out.find(id), std::string::npos);
  EXPECT_NE(out.find("level 2"), std::string::npos);

  // Human create prints live progress on stderr.
  ASSERT_EQ(Cli({"create", "--url", url_}, &out, &err), 0) << err;
  EXPECT_NE(err.find("[dump] pg_dump"), std::string::npos) << err;

  EXPECT_EQ(Cli({"verify", "--level", "4"}, &out, &err), 2);
  EXPECT_EQ(Cli({"create", "--jobs", "2", "--format", "custom"}, &out, &err), 2);
  EXPECT_EQ(Cli({"prune"}, &out, &err), 2);
  EXPECT_EQ(Cli({"restore", id}, &out, &err), 2);
  EXPECT_NE(err.find("--to"), std::string::npos);
  EXPECT_EQ(Cli({"frobnicate"}, &out, &err), 2);
  EXPECT_EQ(Cli({"list", "--bogus"}, &out, &err), 2);
  EXPECT_EQ(Cli({"verify", "nope"}, &out, &err), 1);
  EXPECT_NE(err.find("no backup nope"), std::string::npos) << err;
  EXPECT_EQ(Cli({"verify", "../etc"}, &out, &err), 1);
  EXPECT_NE(err.find("is not a backup id"), std::string::npos) << err;
}

TEST_F(BackupTest, FailedCreateLeavesNothingBehind) {
  CreateOptions o;
  o.conninfo = PgEnvironment::server().Url("no_such_database");
  auto m = CreateBackup(env_, o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  auto all = ListBackups(env_);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());

  // pg_dump itself failing (a table it may not read) also removes the partial directory.
  Exec(url_,
       "CREATE ROLE limited LOGIN; CREATE TABLE secret (x int);"
       "REVOKE ALL ON secret FROM PUBLIC; GRANT SELECT ON users, orders TO limited");
  std::string limited = url_;
  limited.replace(limited.find("postgres@"), 9, "limited@");
  o.conninfo = limited;
  m = CreateBackup(env_, o);
  ASSERT_FALSE(m.ok());
  all = ListBackups(env_);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty()) << m.status().ToString();
}

}  // namespace
}  // namespace turnout::backup
