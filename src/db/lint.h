// The migration linter: flags operations that are unsafe while two app versions share the
// database, and classifies each migration as expand or contract.
//
// Expand: the old app version keeps working on the new schema (add a nullable column, create an
// index concurrently). Contract: the old version breaks (a column it reads is dropped, renamed or
// retyped; a column it does not write becomes NOT NULL). Deployments run expand migrations before
// the new version starts and contract migrations only after the old version is retired.
//
// A token-level scan over the split statements, not a SQL parser. Known limits (see
// docs/migrations.md): it does not follow DO blocks or function bodies, does not know table
// sizes (a rewrite of an empty table is harmless), and recognizes only the volatile functions in
// its list. Operations on a table created earlier in the same migration are not flagged.
//
// Directives in a file: `-- turnout:allow <rule>[,<rule>...]` acknowledges findings (still
// listed, marked allowed, lint passes); `-- turnout:contract` / `-- turnout:expand` override the
// classification.
//
// Pure functions; thread-safe.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "db/migration.h"

namespace turnout::db {

enum class MigrationClass { kExpand, kContract };
std::string_view MigrationClassName(MigrationClass c);  // "expand" / "contract"

// Rule ids (stable; used in `turnout:allow` and in --json output).
inline constexpr std::string_view kRuleDropTable = "drop-table";
inline constexpr std::string_view kRuleDropColumn = "drop-column";
inline constexpr std::string_view kRuleRenameTable = "rename-table";
inline constexpr std::string_view kRuleRenameColumn = "rename-column";
inline constexpr std::string_view kRuleAddColumnNotNull = "add-column-not-null";
inline constexpr std::string_view kRuleSetNotNull = "set-not-null";
inline constexpr std::string_view kRuleAlterColumnType = "alter-column-type";
inline constexpr std::string_view kRuleCreateIndex = "create-index-not-concurrent";
inline constexpr std::string_view kRuleConstraintNotValid = "constraint-without-not-valid";
inline constexpr std::string_view kRuleVolatileDefault = "volatile-default";
inline constexpr std::string_view kRuleLockTimeout = "missing-lock-timeout";

struct LintFinding {
  std::string rule;
  int statement = 0;        // 1-based index in the file; 0 for a finding about the whole file
  int line = 0;             // line in the file
  bool contract = false;    // breaks the old app version (makes the migration a contract)
  bool allowed = false;     // acknowledged by `-- turnout:allow`
  std::string message;      // what is wrong and why
  std::string alternative;  // the safe expand/contract way to do it
  // The object a drop-table, drop-column, rename-table or rename-column finding is about,
  // folded as PostgreSQL folds names; the table without its schema ("public.Items" -> "items"),
  // the column "" for a table. Both "" for the other rules.
  std::string table;
  std::string column;
};

struct LintReport {
  int64_t version = 0;
  std::string name;
  std::string path;
  MigrationClass classification = MigrationClass::kExpand;
  std::vector<LintFinding> findings;
  // True when a finding is not acknowledged.
  bool failed() const;
};

// Lints one file (an up file; down files are contracts of the forward change by nature).
LintReport LintMigrationFile(const MigrationFile& file);
LintReport LintMigration(const Migration& migration);

}  // namespace turnout::db
