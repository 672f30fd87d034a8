#include "backup/manifest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "backup/catalog.h"
#include "backup/conninfo.h"
#include "common/sha256.h"

namespace turnout::backup {
namespace {

using json = nlohmann::json;

Manifest Sample() {
  Manifest m;
  m.id = "20261122T072254.123Z";
  m.database = "shop";
  m.server_version = "15.6";
  m.encoding = "UTF8";
  m.format = DumpFormat::kDirectory;
  m.dump_path = "dump";
  m.jobs = 2;
  m.created_at = "2026-11-22T07:22:54.123Z";
  m.duration_ms = 1500;
  m.snapshot = "00000003-0000001B-1";
  m.files = {{"dump/3001.dat.gz", 10, std::string(64, 'a')},
             {"dump/toc.dat", 5, std::string(64, 'b')},
             {"schema.txt", 7, std::string(64, 'c')}};
  m.size_bytes = 22;
  m.row_counts = {{"public.orders", 7}, {"public.users", 0}};
  m.schema_fingerprint = std::string(64, 'd');
  m.migration_version = 12;
  m.pg_dump_version = "pg_dump (PostgreSQL) 15.6";
  m.labels = {{"deployment_id", "d-42"}};
  return m;
}

// The manifest text with one change applied to its JSON.
std::string Mutated(const std::function<void(json&)>& change) {
  json j = json::parse(ManifestToJson(Sample()));
  change(j);
  return j.dump();
}

TEST(ManifestTest, RoundTripsEveryField) {
  Manifest m = Sample();
  auto back = ParseManifest(ManifestToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->database, "shop");
  EXPECT_EQ(back->encoding, "UTF8");
  EXPECT_EQ(back->format, DumpFormat::kDirectory);
  EXPECT_EQ(back->jobs, 2);
  EXPECT_EQ(back->snapshot, m.snapshot);
  ASSERT_EQ(back->files.size(), 3u);
  EXPECT_EQ(back->files[1].path, "dump/toc.dat");
  EXPECT_EQ(back->files[1].size, 5u);
  EXPECT_EQ(back->row_counts, m.row_counts);
  EXPECT_EQ(back->migration_version, 12);
  EXPECT_EQ(back->labels, m.labels);
  EXPECT_EQ(ManifestToJson(*back), ManifestToJson(m));
}

TEST(ManifestTest, NullMigrationVersionAndUnknownKeysAreAccepted) {
  auto m = ParseManifest(Mutated([](json& j) {
    j["migration_version"] = nullptr;
    j["added_by_a_newer_turnout"] = 1;
  }));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->migration_version.has_value());
}

struct BadCase {
  std::string name;
  std::function<void(json&)> change;
  std::string expected;  // part of the error message
};

TEST(ManifestTest, RejectsMalformedManifestsWithClearErrors) {
  std::vector<BadCase> cases = {
      {"missing id", [](json& j) { j.erase("id"); }, "missing \"id\""},
      {"id type", [](json& j) { j["id"] = 5; }, "\"id\" must be a string"},
      {"id path", [](json& j) { j["id"] = "../x"; }, "\"id\""},
      {"version", [](json& j) { j["manifest_version"] = 2; }, "not supported"},
      {"format", [](json& j) { j["format"] = "tar"; }, "unknown dump format"},
      {"created_at", [](json& j) { j["created_at"] = "yesterday"; }, "created_at"},
      {"fingerprint", [](json& j) { j["schema_fingerprint"] = "abc"; }, "schema_fingerprint"},
      {"files type", [](json& j) { j["files"] = "x"; }, "\"files\" must be a non-empty array"},
      {"files empty", [](json& j) { j["files"] = json::array(); }, "non-empty"},
      {"file entry", [](json& j) { j["files"][0] = 3; }, "files[0] must be an object"},
      {"file size type", [](json& j) { j["files"][0]["size"] = "10"; }, "files[0]"},
      {"negative size", [](json& j) { j["files"][0]["size"] = -1; }, "at least 0"},
      {"traversal", [](json& j) { j["files"][0]["path"] = "../../etc/passwd"; }, "relative path"},
      {"absolute", [](json& j) { j["files"][0]["path"] = "/etc/passwd"; }, "relative path"},
      {"reserved", [](json& j) { j["files"][0]["path"] = "manifest.json"; }, "reserved"},
      {"sha", [](json& j) { j["files"][0]["sha256"] = std::string(64, 'G'); }, "sha256"},
      {"unsorted", [](json& j) { std::swap(j["files"][0], j["files"][1]); }, "sorted and unique"},
      {"size sum", [](json& j) { j["size_bytes"] = 23; }, "sum of the file sizes"},
      {"counts type", [](json& j) { j["row_counts"] = json::array(); }, "row_counts"},
      {"negative count", [](json& j) { j["row_counts"]["public.users"] = -3; }, "non-negative"},
      {"huge count", [](json& j) { j["row_counts"]["public.users"] = 18446744073709551615ull; },
       "non-negative"},
      {"label type", [](json& j) { j["labels"]["x"] = 1; }, "labels"},
      {"dump path", [](json& j) { j["dump_path"] = "../dump"; }, "dump_path"},
      {"migration type", [](json& j) { j["migration_version"] = "12"; }, "migration_version"},
      {"jobs", [](json& j) { j["jobs"] = 0; }, "jobs"},
  };
  for (const BadCase& c : cases) {
    auto m = ParseManifest(Mutated(c.change));
    ASSERT_FALSE(m.ok()) << c.name;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(m.status().message().find(c.expected), std::string::npos)
        << c.name << ": " << m.status().message();
  }
}

TEST(ManifestTest, RejectsTextThatIsNotAnObject) {
  for (std::string text : {"", "{", "[]", "null", "42", "\"x\"", "{\"a\":}", "\xff\xfe"}) {
    auto m = ParseManifest(text);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("manifest"), std::string::npos);
  }
}

TEST(ManifestTest, EveryTruncationOfAValidManifestIsRejectedWithoutCrashing) {
  std::string text = ManifestToJson(Sample());
  // Only the closing newline may go; everything shorter is malformed.
  for (size_t n = 0; n + 1 < text.size(); ++n) {
    EXPECT_FALSE(ParseManifest(text.substr(0, n)).ok()) << n;
  }
}

TEST(VerifyRecordTest, RoundTripsAndRejectsContradictions) {
  VerifyRecord r;
  r.backup_id = "20261122T072254.123Z";
  r.level_requested = 3;
  r.level_reached = 2;
  r.ok = false;
  r.verified_at = "2026-11-22T08:00:00.000Z";
  r.level_duration_ms = {{1, 10}, {2, 20}, {3, 30}};
  r.problems = {"restored table public.t has 1 rows, the manifest says 2"};
  auto back = ParseVerifyRecord(VerifyRecordToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->level_reached, 2);
  EXPECT_EQ(back->level_duration_ms, r.level_duration_ms);
  EXPECT_EQ(back->problems, r.problems);

  json j = json::parse(VerifyRecordToJson(r));
  j["ok"] = true;  // ok although level 2 of 3
  EXPECT_FALSE(ParseVerifyRecord(j.dump()).ok());
  j = json::parse(VerifyRecordToJson(r));
  j["level_reached"] = 4;
  EXPECT_FALSE(ParseVerifyRecord(j.dump()).ok());
  j = json::parse(VerifyRecordToJson(r));
  j["level_duration_ms"]["9"] = 1;
  EXPECT_FALSE(ParseVerifyRecord(j.dump()).ok());
  EXPECT_FALSE(ParseVerifyRecord("[1]").ok());
}

TEST(BackupIdTest, IdsSortByTimeAndRejectPaths) {
  std::string a = FormatBackupId(1'700'000'000'000);
  std::string b = FormatBackupId(1'700'000'000'001);
  std::string c = FormatBackupId(1'700'000'060'000);
  EXPECT_EQ(a, "20231114T221320.000Z");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_TRUE(IsValidBackupId(a));
  EXPECT_FALSE(IsValidBackupId(".."));
  EXPECT_FALSE(IsValidBackupId("a/b"));
  EXPECT_FALSE(IsValidBackupId(""));
  EXPECT_FALSE(IsValidBackupId(".hidden"));
}

TEST(Rfc3339Test, FormatsAndParsesBack) {
  EXPECT_EQ(FormatRfc3339(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123Z").value(), 1'700'000'000'123);
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20Z").value(), 1'700'000'000'000);
  EXPECT_FALSE(ParseRfc3339("2023-11-14 22:13:20Z").ok());
  EXPECT_FALSE(ParseRfc3339("2023-13-14T22:13:20Z").ok());
  EXPECT_FALSE(ParseRfc3339("2023-11-14T22:13:20.1Z").ok());
  EXPECT_FALSE(ParseRfc3339("2023-11-14T22:13:20+01:00").ok());
}

TEST(SchemaFingerprintTest, IsIndependentOfCatalogOrder) {
  std::vector<std::string> lines = {"table public.t r", "column public.t #1 id integer not-null",
                                    "index public.t CREATE UNIQUE INDEX t_pkey ON public.t"};
  SchemaFingerprint a = FingerprintOf(lines);
  std::reverse(lines.begin(), lines.end());
  SchemaFingerprint b = FingerprintOf(lines);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.sha256, Sha256Hex(CanonicalSchemaText(a.lines)));
  lines.push_back("column public.t #2 name text null");
  EXPECT_NE(FingerprintOf(lines).sha256, a.sha256);
}

TEST(SchemaFingerprintTest, SchemaTextParsesBackOnlyWhenCanonical) {
  SchemaFingerprint f = FingerprintOf({"b x", "a y"});
  auto lines = ParseSchemaText(CanonicalSchemaText(f.lines));
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(*lines, f.lines);
  EXPECT_TRUE(ParseSchemaText("").ok());
  EXPECT_FALSE(ParseSchemaText("a y\nb x").ok());      // no final newline
  EXPECT_FALSE(ParseSchemaText("b x\na y\n").ok());    // unsorted
  EXPECT_FALSE(ParseSchemaText("a y\n\nb x\n").ok());  // empty line
  EXPECT_FALSE(ParseSchemaText(std::string("a\0y\n", 4)).ok());
}

TEST(SchemaFingerprintTest, DiffNamesMissingAndExtraLines) {
  auto d = DiffSchemaLines({"a", "b", "c"}, {"a", "c", "d"});
  EXPECT_EQ(d, (std::vector<std::string>{"- b", "+ d"}));
  std::vector<std::string> many;
  for (int i = 0; i < 30; ++i) many.push_back("x" + std::to_string(i));
  auto limited = DiffSchemaLines(many, {}, 10);
  ASSERT_EQ(limited.size(), 11u);
  EXPECT_EQ(limited.back(), "... and 20 more");
}

TEST(ConninfoTest, MovesThePasswordOutOfTheCommandLine) {
  auto c = ForCommand("postgresql://app:s3cr%27t@db.example:5433/shop?sslmode=require");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->conninfo.find("s3cr"), std::string::npos);
  ASSERT_EQ(c->env.size(), 1u);
  EXPECT_EQ(c->env[0], (std::pair<std::string, std::string>{"PGPASSWORD", "s3cr't"}));
  auto parsed = ParseConninfo(c->conninfo);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->at("host"), "db.example");
  EXPECT_EQ(parsed->at("port"), "5433");
  EXPECT_EQ(parsed->at("dbname"), "shop");
  EXPECT_EQ(parsed->at("sslmode"), "require");
  EXPECT_EQ(parsed->count("password"), 0u);
}

TEST(ConninfoTest, ReplacesTheDatabaseAndQuotesValues) {
  auto s = WithDatabase("host=h dbname=prod user='o\\'k'", "turnout_verify_1");
  ASSERT_TRUE(s.ok());
  auto parsed = ParseConninfo(*s);
  ASSERT_TRUE(parsed.ok()) << *s;
  EXPECT_EQ(parsed->at("dbname"), "turnout_verify_1");
  EXPECT_EQ(parsed->at("user"), "o'k");
  EXPECT_TRUE(ForCommand("").ok());
  EXPECT_TRUE(ForCommand("")->conninfo.empty());
  EXPECT_FALSE(ParseConninfo("host=").ok() && ParseConninfo("nonsense").ok());
  EXPECT_EQ(RedactConninfo("postgresql://u:pw@h/d").find("pw"), std::string::npos);
}

}  // namespace
}  // namespace turnout::backup
