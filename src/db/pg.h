// A small RAII layer over libpq: one connection, results as owned values, errors as Status.
//
// Why libpq and not libpqxx: the migration engine needs the SQLSTATE of every failure (55P03
// lock_not_available drives retries), full control over when a transaction starts (no-transaction
// migrations run CREATE INDEX CONCURRENTLY outside any block) and no exceptions across module
// boundaries. libpq gives all three directly; libpqxx would need a try/catch around every call.
//
// Thread-safety: a PgConnection is used by one thread at a time. Different connections are
// independent.

#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::db {

// SQLSTATE codes the engine reacts to.
inline constexpr std::string_view kSqlStateLockNotAvailable = "55P03";
inline constexpr std::string_view kSqlStateQueryCanceled = "57014";

// The rows of one successful statement. Values are text; a NULL is std::nullopt.
class PgRows {
 public:
  PgRows() = default;
  PgRows(std::vector<std::string> columns,
         std::vector<std::vector<std::optional<std::string>>> rows, int64_t affected)
      : columns_(std::move(columns)), rows_(std::move(rows)), affected_(affected) {}

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const std::vector<std::string>& columns() const { return columns_; }
  // Cell (row, column). Asserts on an out-of-range index (a caller bug).
  const std::optional<std::string>& at(size_t row, size_t column) const;
  // The cell as text, "" for NULL.
  std::string text(size_t row, size_t column) const;
  // Rows changed by INSERT/UPDATE/DELETE (-1 when the command reports none).
  int64_t affected() const { return affected_; }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
  int64_t affected_ = -1;
};

// One libpq connection. Movable, not copyable; closes on destruction.
class PgConnection {
 public:
  // Opens a connection. `conninfo` is a URL (postgresql://...) or a key=value string; an empty
  // string means libpq's PG* environment variables. `application_name` is set for every session
  // so that other operators can see who holds locks (pg_stat_activity).
  // Fails with Unavailable when the server cannot be reached or refuses the login.
  static Result<PgConnection> Connect(const std::string& conninfo,
                                      const std::string& application_name);

  PgConnection() = default;
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  bool connected() const { return conn_ != nullptr; }

  // Runs one statement (no parameters; the text may hold only one statement when params are
  // given). On failure the Status message carries the server's message and, in
  // last_sqlstate(), its SQLSTATE ("" when the failure was not the server's, e.g. a lost link).
  Result<PgRows> Exec(std::string_view sql);
  Result<PgRows> ExecParams(const std::string& sql,
                            const std::vector<std::optional<std::string>>& params);

  // SQLSTATE of the last failed Exec/ExecParams, "" when the last call succeeded.
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // Server process id of this session (pg_backend_pid()).
  int backend_pid() const;

  // Quotes an identifier or literal for this connection's encoding.
  std::string QuoteIdentifier(std::string_view name) const;
  std::string QuoteLiteral(std::string_view value) const;

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Result<PgRows> TakeResult(PGresult* res);

  PGconn* conn_ = nullptr;
  std::string last_sqlstate_;
};

}  // namespace turnout::db
