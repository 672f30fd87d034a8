// What a backup records about the database, read through one connection (inside the exported
// snapshot's transaction at backup time, in the restored database at verify/restore time):
// exact row counts, the schema fingerprint and the turnout migration version.
//
// The schema fingerprint is the SHA-256 of a canonical text: one line per catalog item of every
// user schema (everything except pg_catalog, information_schema, pg_toast and temporary schemas,
// and objects that belong to an extension), sorted bytewise:
//   table <schema>.<name> <relkind>
//   column <schema>.<table> #<position> <name> <type> null|not-null default=<expr> <identity>
//     <generated>                              (position = order among the live columns)
//   index <schema>.<table> <pg_get_indexdef>
//   constraint <schema>.<table> <name> <pg_get_constraintdef>
//   sequence <schema>.<name> <type> start= increment= min= max= cache= cycle|no-cycle
// It excludes what a restore legitimately changes: OIDs, attribute numbers of dropped columns,
// owners, statistics, sequence positions and data.
//
// Thread-safety: free functions; the connection is used by one thread at a time.
// Errors: the server's error (with the failing table named for counts).

#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "db/pg.h"

namespace turnout::backup {

struct SchemaFingerprint {
  std::vector<std::string> lines;  // sorted canonical lines
  std::string sha256;              // of Join(lines)
};

// Joins the lines with '\n' (each line terminated), the exact bytes that are hashed.
std::string CanonicalSchemaText(const std::vector<std::string>& lines);
// Sorts `lines` and hashes them. Pure; used for what the catalog query returns and for schema.txt.
SchemaFingerprint FingerprintOf(std::vector<std::string> lines);
// Parses schema.txt back into lines; InvalidArgument when it is not canonical (unsorted, a line
// with a control character, missing final newline).
Result<std::vector<std::string>> ParseSchemaText(std::string_view text);

// Lines in `expected` but not in `actual` ("- ...") and the other way round ("+ ..."), at most
// `limit` in all (then "... and N more").
std::vector<std::string> DiffSchemaLines(const std::vector<std::string>& expected,
                                         const std::vector<std::string>& actual, size_t limit = 10);

// What changed between two fingerprints (their lines), judged by whether a version written for
// `before` still works on `after`:
//   destructive (a contract): a table, column or sequence gone (dropped or renamed), a column's
//     type changed, a column made NOT NULL, a NOT NULL column added without a default;
//   additive (an expand): new tables, nullable or defaulted columns, indexes, constraints and
//     sequences; indexes and constraints dropped, defaults changed, NOT NULL dropped.
// Pure. Column names with spaces are judged by their first word.
struct SchemaChange {
  std::vector<std::string> tables;       // "schema.table" of every table a changed line is about
  std::vector<std::string> destructive;  // one reason each ("column public.items.note is gone")
  std::vector<std::string> additive;     // one line each ("column public.items.note added")
  bool changed() const { return !tables.empty(); }
  bool is_destructive() const { return !destructive.empty(); }
};
SchemaChange ClassifySchemaChange(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after);

Result<SchemaFingerprint> ReadSchemaFingerprint(db::PgConnection& conn);

// Exact count(*) of every user table ("schema.table", unquoted) including partitioned parents.
Result<std::map<std::string, int64_t>> ReadRowCounts(db::PgConnection& conn);

// The newest applied version in turnout_schema_history (derived as `turnout migrate` does: the
// latest row of each version decides), nullopt without a history table or applied version.
Result<std::optional<int64_t>> ReadMigrationVersion(db::PgConnection& conn);

}  // namespace turnout::backup
