// Test helpers for the state module: a private temporary directory and raw SQLite access for
// tampering with a store's file behind its back.

#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/clock.h"
#include "state/sqlite_state_store.h"

namespace turnout::state::testing {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "turnout-state-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Opens a store on `path` with `clock`; nullptr (and a test failure) when it cannot.
inline std::unique_ptr<SqliteStateStore> OpenTestStore(const std::string& path, const Clock* clock,
                                                       int busy_timeout_ms = 5000) {
  SqliteStateStoreOptions options;
  options.path = path;
  options.clock = clock;
  options.busy_timeout_ms = busy_timeout_ms;
  auto store = SqliteStateStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Runs `sql` on the file with a connection of its own (as an attacker with file access would);
// returns SQLite's result code and its message in `error`.
inline int RawTry(const std::string& db_path, const std::string& sql, std::string* error) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc == SQLITE_OK) {
    char* err = nullptr;
    rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    if (error != nullptr) *error = err != nullptr ? err : "";
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return rc;
}

inline void RawExec(const std::string& db_path, const std::string& sql) {
  std::string error;
  ASSERT_EQ(RawTry(db_path, sql, &error), SQLITE_OK) << error << " in: " << sql;
}

}  // namespace turnout::state::testing
