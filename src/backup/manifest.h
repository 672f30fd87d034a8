// The manifest of one backup (<backups dir>/<id>/manifest.json) and the record of its last
// verification (<id>/verify.json).
//
// The manifest is written last, atomically: a backup directory without one is incomplete and is
// never restored or counted as a backup. Everything a later check compares against is in it: the
// SHA-256 and size of every file, the exact row count of every table and the schema fingerprint,
// all read in the same exported snapshot that pg_dump used.
//
// Parsing is strict: unknown top-level keys are allowed (a newer turnout may add some), but every
// known key must have the right type and every required key must be present; a malformed file
// gives InvalidArgument naming the key, never a crash or a half-filled struct.
//
// Thread-safety: plain values and pure functions.

#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::backup {

inline constexpr int kManifestVersion = 1;
inline constexpr std::string_view kManifestFile = "manifest.json";
inline constexpr std::string_view kVerifyFile = "verify.json";
// Canonical schema text (one line per catalog item); its SHA-256 is the fingerprint.
inline constexpr std::string_view kSchemaFile = "schema.txt";

enum class DumpFormat { kDirectory, kCustom };
std::string_view DumpFormatName(DumpFormat format);  // "directory" / "custom"
Result<DumpFormat> ParseDumpFormat(std::string_view name);

struct FileEntry {
  std::string path;  // relative to the backup directory, '/'-separated
  uint64_t size = 0;
  std::string sha256;  // 64 lowercase hex digits
};

struct Manifest {
  int manifest_version = kManifestVersion;
  std::string id;              // sortable: "20261122T072254.123Z"
  std::string database;        // current_database() at backup time
  std::string server_version;  // SHOW server_version
  std::string encoding;        // the database's encoding (the scratch database gets the same)
  DumpFormat format = DumpFormat::kDirectory;
  std::string dump_path;   // the dump inside the backup directory: "dump" (dir) or "dump.pgdump"
  int jobs = 1;            // pg_dump -j
  std::string created_at;  // RFC 3339 UTC, when the snapshot was taken
  int64_t duration_ms = 0;
  std::string snapshot;                       // the exported snapshot id pg_dump used
  uint64_t size_bytes = 0;                    // sum of files[].size
  std::vector<FileEntry> files;               // sorted by path
  std::map<std::string, int64_t> row_counts;  // "schema.table" -> exact count(*)
  std::string schema_fingerprint;             // SHA-256 of schema.txt's canonical text
  std::optional<int64_t> migration_version;   // newest applied turnout migration, if any
  std::string pg_dump_version;                // `pg_dump --version`
  std::map<std::string, std::string> labels;  // e.g. deployment_id
};

std::string ManifestToJson(const Manifest& m);
Result<Manifest> ParseManifest(std::string_view text);

// The outcome of the last `verify` of a backup.
struct VerifyRecord {
  std::string backup_id;
  int level_requested = 0;
  int level_reached = 0;                     // highest level whose checks all passed (0: none)
  bool ok = false;                           // level_reached == level_requested
  std::string verified_at;                   // RFC 3339 UTC
  std::map<int, int64_t> level_duration_ms;  // per level that ran
  std::vector<std::string> problems;
};

std::string VerifyRecordToJson(const VerifyRecord& r);
Result<VerifyRecord> ParseVerifyRecord(std::string_view text);

// Whether `id` has the shape CreateBackup gives ids (also keeps ".." and '/' out of paths).
bool IsValidBackupId(std::string_view id);

// "2026-11-22T07:22:54.123Z" and the id form "20261122T072254.123Z" of a wall-clock time given as
// milliseconds since the Unix epoch.
std::string FormatRfc3339(int64_t unix_ms);
std::string FormatBackupId(int64_t unix_ms);
// Reads FormatRfc3339's form back (milliseconds optional); InvalidArgument otherwise.
Result<int64_t> ParseRfc3339(std::string_view text);

}  // namespace turnout::backup
