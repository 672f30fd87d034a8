// A thin RAII layer over the SQLite3 C API: a connection, prepared statements and transactions,
// with every failure as a Status (SQLite's message and extended error code included).
//
// Why the C API and not a C++ wrapper: the store needs exact control of transaction kinds
// (BEGIN IMMEDIATE, so that two writers never deadlock upgrading a read lock), pragmas and
// error codes, and no exceptions; the layer below is small enough to own.
//
// Thread-safety: a Database (and its statements) is used by one thread at a time; the caller
// serializes. Different Database objects on one file are independent (SQLite locks the file).

#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::state::sqlite {

class Statement;

class Database {
 public:
  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Opens (creating when `create`) the file. Extended error codes are on; busy_timeout_ms makes
  // a locked database wait that long before failing with Unavailable.
  static Result<Database> Open(const std::string& path, bool create, int busy_timeout_ms);

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // The value of a single-integer query such as "PRAGMA user_version".
  Result<int64_t> QueryInt(std::string_view sql);

  int64_t LastInsertRowId() const;
  int Changes() const;
  sqlite3* raw() { return db_; }

  // A Status for the connection's current error: Unavailable for SQLITE_BUSY/LOCKED,
  // AlreadyExists for constraint violations, IoError for I/O and full disks, Internal for
  // corruption and the rest.
  Status Error(std::string_view what, int rc) const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// A prepared statement. Bind indexes are 1-based (SQLite's), column indexes 0-based.
class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }
  Statement& Bind(int index, std::optional<int64_t> value);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done.
  Result<bool> Step();
  // Steps a statement that returns no rows to completion.
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status bind_status_;  // the first bind failure, reported by Step
};

// Steps `stmt` to the end and returns read(stmt) for each row (read returns Result<T>); the
// first error stops.
template <typename T, typename ReadRow>
Result<std::vector<T>> CollectRows(Statement& stmt, ReadRow read) {
  std::vector<T> out;
  while (true) {
    TURNOUT_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    TURNOUT_ASSIGN_OR_RETURN(T value, read(stmt));
    out.push_back(std::move(value));
  }
}

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
// IMMEDIATE takes the write lock at the start, so a transaction that reads then writes never
// fails halfway with SQLITE_BUSY (the busy timeout applies to BEGIN instead).
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;

  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_ = nullptr;
};

}  // namespace turnout::state::sqlite
