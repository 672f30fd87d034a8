// Migration files on disk: `NNNN_name.up.sql` and `NNNN_name.down.sql` in one directory.
//
// NNNN is a decimal version (any number of digits, compared as integers); name is made of
// letters, digits, '_' and '-'. Every version needs an up file; the down file is optional (a
// migration without one cannot be rolled back by turnout). Other *.sql files in the directory are
// an error (a typo must not silently skip a migration); files not ending in .sql are ignored.
//
// Pure functions over the file system; thread-safe.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"
#include "db/sql_splitter.h"

namespace turnout::db {

struct MigrationFile {
  std::string path;
  std::string content;
  std::string sha256;             // hex SHA-256 of the bytes
  std::string normalized_sha256;  // hex SHA-256 of NormalizeSql(content)
  std::vector<SqlStatement> statements;
  std::vector<std::string> directives;
  // `-- turnout:no-transaction`: statements run one by one, progress recorded after each.
  bool no_transaction = false;
};

struct Migration {
  int64_t version = 0;
  std::string name;
  MigrationFile up;
  std::optional<MigrationFile> down;
};

// Reads, hashes and splits one file. Fails with IoError (unreadable) or InvalidArgument
// ("path:line: unterminated ...").
Result<MigrationFile> LoadMigrationFile(const std::string& path);

// All migrations of `dir`, sorted by version. Fails with NotFound when `dir` does not exist and
// InvalidArgument for a bad file name, a duplicate version, or a down file without its up file.
Result<std::vector<Migration>> LoadMigrations(const std::string& dir);

// "0007_add_email": the version at least 4 digits wide, as the files are usually named.
std::string MigrationLabel(int64_t version, std::string_view name);

// The chain hash of a migration: SHA-256 over the previous chain hash ("" for the first
// migration) followed by this file's hash, so that the chain pins the whole ordered sequence.
std::string ChainSha256(std::string_view previous_chain, std::string_view file_sha256);

}  // namespace turnout::db
