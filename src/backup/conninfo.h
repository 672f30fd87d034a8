// Connection strings for the PostgreSQL client programs a backup runs (pg_dump, pg_restore).
//
// A URL or key=value conninfo is expanded by libpq itself (PQconninfoParse), so every form libpq
// accepts works. The password is taken out of the string and handed to the program in the
// PGPASSWORD environment variable instead: a command line is visible to every local user (ps).
//
// Thread-safety: pure functions.

#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::backup {

// keyword -> value of the options set in `conninfo` ("" gives an empty map: libpq's PG* variables
// apply). InvalidArgument with libpq's message when it does not parse.
Result<std::map<std::string, std::string>> ParseConninfo(const std::string& conninfo);

// key='value' pairs, quoted for libpq, in keyword order.
std::string BuildConninfo(const std::map<std::string, std::string>& options);

// `conninfo` with its database replaced by `dbname`.
Result<std::string> WithDatabase(const std::string& conninfo, const std::string& dbname);

struct CommandConnection {
  std::string conninfo;  // without the password; "" when nothing is set
  std::vector<std::pair<std::string, std::string>> env;  // PGPASSWORD when there was one
};
Result<CommandConnection> ForCommand(const std::string& conninfo);

// A conninfo for messages: the password replaced by "***".
std::string RedactConninfo(const std::string& conninfo);

}  // namespace turnout::backup
