#include "db/pg.h"

#include <cassert>
#include <cstdlib>

namespace turnout::db {
namespace {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string TrimTrailingNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

const std::optional<std::string>& PgRows::at(size_t row, size_t column) const {
  assert(row < rows_.size() && column < columns_.size());
  return rows_[row][column];
}

std::string PgRows::text(size_t row, size_t column) const {
  const auto& v = at(row, column);
  return v ? *v : std::string();
}

Result<PgConnection> PgConnection::Connect(const std::string& conninfo,
                                           const std::string& application_name) {
  // Expand the caller's conninfo first so that application_name is added on top of it whatever
  // form (URL or key=value) it came in.
  const char* keys[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {conninfo.c_str(), application_name.c_str(), "10", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Unavailable("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = TrimTrailingNewlines(PQerrorMessage(conn));
    PQfinish(conn);
    return Unavailable("cannot connect to PostgreSQL: " + message);
  }
  PgConnection out(conn);
  // Quiet NOTICEs (e.g. "relation already exists, skipping") instead of writing them to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return out;
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(other.conn_), last_sqlstate_(std::move(other.last_sqlstate_)) {
  other.conn_ = nullptr;
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = other.conn_;
    last_sqlstate_ = std::move(other.last_sqlstate_);
    other.conn_ = nullptr;
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<PgRows> PgConnection::TakeResult(PGresult* raw) {
  ResultPtr res(raw);
  last_sqlstate_.clear();
  if (!res) {
    return Unavailable("PostgreSQL connection failed: " +
                       TrimTrailingNewlines(PQerrorMessage(conn_)));
  }
  ExecStatusType st = PQresultStatus(res.get());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    std::vector<std::string> columns;
    int ncols = PQnfields(res.get());
    for (int c = 0; c < ncols; ++c) columns.emplace_back(PQfname(res.get(), c));
    std::vector<std::vector<std::optional<std::string>>> rows;
    int nrows = PQntuples(res.get());
    rows.reserve(nrows);
    for (int r = 0; r < nrows; ++r) {
      std::vector<std::optional<std::string>> row;
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c)));
        }
      }
      rows.push_back(std::move(row));
    }
    int64_t affected = -1;
    const char* tuples = PQcmdTuples(res.get());
    if (tuples != nullptr && *tuples != '\0') affected = std::strtoll(tuples, nullptr, 10);
    return PgRows(std::move(columns), std::move(rows), affected);
  }
  const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
  last_sqlstate_ = state != nullptr ? state : "";
  std::string message = TrimTrailingNewlines(PQresultErrorMessage(res.get()));
  if (message.empty()) message = TrimTrailingNewlines(PQerrorMessage(conn_));
  if (!last_sqlstate_.empty()) message += " (SQLSTATE " + last_sqlstate_ + ")";
  if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(message);
  return FailedPrecondition(message);
}

Result<PgRows> PgConnection::Exec(std::string_view sql) {
  if (conn_ == nullptr) return FailedPrecondition("not connected to PostgreSQL");
  std::string text(sql);
  return TakeResult(PQexec(conn_, text.c_str()));
}

Result<PgRows> PgConnection::ExecParams(const std::string& sql,
                                        const std::vector<std::optional<std::string>>& params) {
  if (conn_ == nullptr) return FailedPrecondition("not connected to PostgreSQL");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return TakeResult(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0));
}

int PgConnection::backend_pid() const { return conn_ != nullptr ? PQbackendPID(conn_) : 0; }

std::string PgConnection::QuoteIdentifier(std::string_view name) const {
  char* q = PQescapeIdentifier(conn_, name.data(), name.size());
  if (q == nullptr) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string PgConnection::QuoteLiteral(std::string_view value) const {
  char* q = PQescapeLiteral(conn_, value.data(), value.size());
  if (q == nullptr) return "''";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace turnout::db
