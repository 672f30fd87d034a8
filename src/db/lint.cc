#include "db/lint.h"

#include <set>

namespace turnout::db {
namespace {

constexpr std::string_view kAltDropTable =
    "contract in steps: release an app version that no longer reads or writes the table, and "
    "drop it in a later contract migration once no live version uses it";
constexpr std::string_view kAltDropColumn =
    "contract in steps: release an app version that no longer reads or writes the column (in an "
    "ORM, mark it ignored), and drop it in a later contract migration once the old version is "
    "retired";
constexpr std::string_view kAltRenameTable =
    "expand/contract: create the new table (or a view with the new name over the old table), "
    "write to both, backfill, move reads, then drop the old name in a contract migration";
constexpr std::string_view kAltRenameColumn =
    "expand/contract: add the new column, write to both from the app (or a trigger), backfill in "
    "batches, move reads to the new column, then drop the old one in a contract migration";
constexpr std::string_view kAltAddColumnNotNull =
    "add the column nullable (or with a constant DEFAULT, which does not rewrite the table), "
    "backfill in batches, add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL";
constexpr std::string_view kAltSetNotNull =
    "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; then VALIDATE CONSTRAINT c (no "
    "exclusive lock); then SET NOT NULL uses the constraint and skips the scan; run it as a "
    "contract once no live version writes NULL";
constexpr std::string_view kAltAlterColumnType =
    "expand/contract: add a column of the new type, write to both, backfill in batches, move "
    "reads, then drop the old column in a contract migration (varchar length increases and "
    "some binary-compatible changes do not rewrite; check before allowing)";
constexpr std::string_view kAltCreateIndex =
    "CREATE INDEX CONCURRENTLY in a migration with `-- turnout:no-transaction`, one index per "
    "statement (turnout drops an INVALID index left by a failed build before retrying)";
constexpr std::string_view kAltConstraintNotValid =
    "ADD CONSTRAINT ... NOT VALID (checks new rows only, short lock), then VALIDATE CONSTRAINT "
    "in a later migration (scans without blocking writes)";
constexpr std::string_view kAltVolatileDefault =
    "add the column without a default (or with a constant one), then ALTER COLUMN ... SET "
    "DEFAULT for new rows, and backfill existing rows in batches";
constexpr std::string_view kAltLockTimeout =
    "start the file with SET lock_timeout = '5s' (SET LOCAL inside a transaction) so a blocked "
    "DDL fails fast instead of queueing all traffic behind it; turnout applies --lock-timeout "
    "anyway, but other tools running this file do not";

const std::set<std::string> kVolatileFunctions = {"RANDOM",
                                                  "CLOCK_TIMESTAMP",
                                                  "GEN_RANDOM_UUID",
                                                  "UUID_GENERATE_V1",
                                                  "UUID_GENERATE_V1MC",
                                                  "UUID_GENERATE_V4",
                                                  "TIMEOFDAY",
                                                  "NEXTVAL",
                                                  "TXID_CURRENT",
                                                  "RANDOM_NORMAL"};

// A statement's tokens without comments, with helpers to look at words.
struct Tokens {
  std::vector<SqlToken> t;
  std::string Word(size_t i) const {
    if (i >= t.size() || t[i].kind != SqlTokenKind::kWord) return std::string();
    return UpperAscii(t[i].text);
  }
  bool Is(size_t i, std::string_view w) const { return Word(i) == w; }
  bool IsPunct(size_t i, std::string_view p) const {
    return i < t.size() && t[i].kind == SqlTokenKind::kPunct && t[i].text == p;
  }
};

// Name of an identifier token, folded as PostgreSQL does (unquoted -> lower case).
std::string FoldName(const SqlToken& tok) {
  if (tok.kind == SqlTokenKind::kQuotedIdent) {
    std::string_view v = tok.text.substr(1, tok.text.size() - 2);
    return std::string(v);
  }
  std::string out(tok.text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Reads a possibly schema-qualified name at i; returns its last component, moves i past it.
std::string ReadName(const Tokens& s, size_t& i) {
  std::string name;
  while (i < s.t.size() &&
         (s.t[i].kind == SqlTokenKind::kWord || s.t[i].kind == SqlTokenKind::kQuotedIdent)) {
    name = FoldName(s.t[i]);
    ++i;
    if (s.IsPunct(i, ".")) {
      ++i;
    } else {
      break;
    }
  }
  return name;
}

class Linter {
 public:
  explicit Linter(const MigrationFile& file) : file_(file) {}

  LintReport Run() {
    LintReport report;
    report.path = file_.path;
    std::set<std::string> allowed;
    bool force_contract = false, force_expand = false;
    for (const std::string& d : file_.directives) {
      if (d == "contract") force_contract = true;
      if (d == "expand") force_expand = true;
      if (d.starts_with("allow ")) {
        std::string list = d.substr(6);
        size_t pos = 0;
        while (pos <= list.size()) {
          size_t comma = list.find(',', pos);
          std::string item =
              list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
          while (!item.empty() && item.front() == ' ') item.erase(item.begin());
          while (!item.empty() && item.back() == ' ') item.pop_back();
          if (!item.empty()) allowed.insert(item);
          if (comma == std::string::npos) break;
          pos = comma + 1;
        }
      }
    }
    for (size_t i = 0; i < file_.statements.size(); ++i) {
      statement_ = static_cast<int>(i) + 1;
      line_ = file_.statements[i].line;
      auto lexed = LexSql(file_.statements[i].text);
      if (!lexed.ok()) continue;  // the file was split already; cannot happen
      Tokens s;
      for (const SqlToken& t : *lexed) {
        if (t.kind != SqlTokenKind::kComment) s.t.push_back(t);
      }
      LintStatement(s);
    }
    if (locking_ddl_line_ > 0 && !sets_lock_timeout_) {
      Add(kRuleLockTimeout, false, 0, locking_ddl_line_,
          "the migration takes locks that block traffic (first at line " +
              std::to_string(locking_ddl_line_) +
              ") but never sets lock_timeout: while it waits for its lock, every query on the "
              "table queues behind it",
          kAltLockTimeout);
    }
    bool contract = false;
    for (LintFinding& f : findings_) {
      f.allowed = allowed.count(f.rule) > 0;
      contract = contract || f.contract;
    }
    if (force_contract) contract = true;
    if (force_expand) contract = false;
    report.classification = contract ? MigrationClass::kContract : MigrationClass::kExpand;
    report.findings = std::move(findings_);
    return report;
  }

 private:
  void Add(std::string_view rule, bool contract, int statement, int line, std::string message,
           std::string_view alternative) {
    LintFinding f;
    f.rule = std::string(rule);
    f.statement = statement;
    f.line = line;
    f.contract = contract;
    f.message = std::move(message);
    f.alternative = std::string(alternative);
    findings_.push_back(std::move(f));
  }
  void Add(std::string_view rule, bool contract, std::string message,
           std::string_view alternative) {
    Add(rule, contract, statement_, line_, std::move(message), alternative);
  }
  void Locking() {
    if (locking_ddl_line_ == 0) locking_ddl_line_ = line_;
  }
  bool IsNew(const std::string& table) const { return created_.count(table) > 0; }

  void LintStatement(const Tokens& s) {
    size_t i = 0;
    std::string w0 = s.Word(0);
    if (w0 == "SET") {
      i = 1;
      if (s.Is(i, "SESSION") || s.Is(i, "LOCAL")) ++i;
      if (s.Is(i, "LOCK_TIMEOUT")) sets_lock_timeout_ = true;
      return;
    }
    if (w0 == "SELECT" && s.Is(1, "SET_CONFIG") && s.t.size() > 3 &&
        s.t[3].kind == SqlTokenKind::kString && s.t[3].text == "'lock_timeout'") {
      sets_lock_timeout_ = true;
      return;
    }
    if (w0 == "CREATE") {
      i = 1;
      while (s.Is(i, "UNLOGGED") || s.Is(i, "TEMP") || s.Is(i, "TEMPORARY") || s.Is(i, "GLOBAL") ||
             s.Is(i, "LOCAL")) {
        ++i;
      }
      if (s.Is(i, "TABLE")) {
        ++i;
        if (s.Is(i, "IF")) i += 3;
        created_.insert(ReadName(s, i));
        return;
      }
      if (s.Is(1, "UNIQUE")) i = 2;
      if (!s.Is(i, "INDEX")) {
        if (s.Is(i, "TRIGGER") || (s.Is(i, "OR") && s.Is(i + 2, "TRIGGER"))) Locking();
        return;
      }
      ++i;
      bool concurrent = s.Is(i, "CONCURRENTLY");
      size_t on = i;
      while (on < s.t.size() && !s.Is(on, "ON")) ++on;
      ++on;
      if (s.Is(on, "ONLY")) ++on;
      std::string table = ReadName(s, on);
      if (concurrent || IsNew(table)) return;
      Locking();
      Add(kRuleCreateIndex, false,
          "CREATE INDEX without CONCURRENTLY blocks every write to " + table +
              " for the whole build",
          kAltCreateIndex);
      return;
    }
    if (w0 == "DROP") {
      if (s.Is(1, "TABLE")) {
        i = 2;
        if (s.Is(i, "IF")) i += 2;
        std::string table = ReadName(s, i);
        if (IsNew(table)) return;
        Locking();
        Add(kRuleDropTable, true,
            "DROP TABLE " + table + " breaks every running app version that still uses it",
            kAltDropTable);
        findings_.back().table = table;
      } else if (s.Is(1, "INDEX") && !s.Is(2, "CONCURRENTLY")) {
        Locking();
      }
      return;
    }
    if (w0 == "TRUNCATE" || w0 == "LOCK") {
      Locking();
      return;
    }
    if (w0 != "ALTER" || !s.Is(1, "TABLE")) return;
    i = 2;
    if (s.Is(i, "IF")) i += 2;
    if (s.Is(i, "ONLY")) ++i;
    std::string table = ReadName(s, i);
    if (IsNew(table)) return;
    Locking();
    // Sub-commands are separated by commas at parenthesis depth 0.
    while (i < s.t.size()) {
      size_t end = i;
      int depth = 0;
      while (end < s.t.size()) {
        if (s.IsPunct(end, "(")) ++depth;
        if (s.IsPunct(end, ")")) --depth;
        if (depth == 0 && s.IsPunct(end, ",")) break;
        ++end;
      }
      LintAlterAction(s, i, end, table);
      i = end + 1;
    }
  }

  bool Has(const Tokens& s, size_t from, size_t to, std::string_view word) const {
    for (size_t k = from; k < to; ++k) {
      if (s.Is(k, word)) return true;
    }
    return false;
  }
  bool HasPair(const Tokens& s, size_t from, size_t to, std::string_view a,
               std::string_view b) const {
    for (size_t k = from; k + 1 < to; ++k) {
      if (s.Is(k, a) && s.Is(k + 1, b)) return true;
    }
    return false;
  }

  void LintAlterAction(const Tokens& s, size_t i, size_t end, const std::string& table) {
    std::string verb = s.Word(i);
    if (verb == "DROP") {
      size_t k = i + 1;
      std::string what = s.Word(k);
      if (what == "CONSTRAINT" || what == "DEFAULT" || what == "NOT" || what == "IDENTITY" ||
          what == "EXPRESSION") {
        return;
      }
      if (what == "COLUMN") ++k;
      if (s.Is(k, "IF")) k += 2;
      std::string column = k < end ? FoldName(s.t[k]) : std::string();
      Add(kRuleDropColumn, true,
          "dropping column " + table + "." + column +
              " breaks the running app version that still reads or writes it",
          kAltDropColumn);
      findings_.back().table = table;
      findings_.back().column = column;
      return;
    }
    if (verb == "RENAME") {
      if (s.Is(i + 1, "TO")) {
        Add(kRuleRenameTable, true,
            "renaming table " + table + " breaks the running app version that uses the old name",
            kAltRenameTable);
        findings_.back().table = table;
      } else if (!s.Is(i + 1, "CONSTRAINT")) {
        size_t k = i + 1;
        if (s.Is(k, "COLUMN")) ++k;
        std::string column = k < end ? FoldName(s.t[k]) : std::string();
        Add(kRuleRenameColumn, true,
            "renaming column " + table + "." + column +
                " breaks the running app version that uses the old name",
            kAltRenameColumn);
        findings_.back().table = table;
        findings_.back().column = column;
      }
      return;
    }
    if (verb == "ALTER") {
      size_t k = i + 1;
      if (s.Is(k, "COLUMN")) ++k;
      std::string column = k < end ? FoldName(s.t[k]) : std::string();
      ++k;
      if (s.Is(k, "TYPE") || (s.Is(k, "SET") && s.Is(k + 1, "DATA") && s.Is(k + 2, "TYPE"))) {
        Add(kRuleAlterColumnType, true,
            "changing the type of " + table + "." + column +
                " rewrites the table under an exclusive lock and can break the running app "
                "version",
            kAltAlterColumnType);
      } else if (s.Is(k, "SET") && s.Is(k + 1, "NOT") && s.Is(k + 2, "NULL")) {
        Add(kRuleSetNotNull, true,
            "SET NOT NULL on " + table + "." + column +
                " scans the table under an exclusive lock, and the running app version may "
                "still write NULL",
            kAltSetNotNull);
      }
      return;
    }
    if (verb == "VALIDATE") return;
    if (verb != "ADD") return;
    size_t k = i + 1;
    std::string what = s.Word(k);
    if (what == "CONSTRAINT") {
      k += 2;
      what = s.Word(k);
    }
    if (what == "FOREIGN" || what == "CHECK") {
      if (!HasPair(s, k, end, "NOT", "VALID")) {
        Add(kRuleConstraintNotValid, false,
            "adding a " + std::string(what == "CHECK" ? "CHECK" : "FOREIGN KEY") +
                " constraint on " + table +
                " without NOT VALID checks every existing row while holding a lock that "
                "blocks writes",
            kAltConstraintNotValid);
      }
      return;
    }
    if (what == "PRIMARY" || what == "UNIQUE" || what == "EXCLUDE") return;
    // ADD [COLUMN] [IF NOT EXISTS] name type [constraints...]
    if (what == "COLUMN") ++k;
    if (s.Is(k, "IF")) k += 3;
    std::string column = k < end ? FoldName(s.t[k]) : std::string();
    ++k;
    std::string type = s.Word(k);
    bool has_default = Has(s, k, end, "DEFAULT");
    bool not_null = HasPair(s, k, end, "NOT", "NULL");
    if (not_null && !has_default) {
      Add(kRuleAddColumnNotNull, true,
          "adding " + table + "." + column +
              " NOT NULL without a DEFAULT fails on a non-empty table, and the running app "
              "version does not write the column",
          kAltAddColumnNotNull);
    }
    bool volatile_default = type == "SERIAL" || type == "BIGSERIAL" || type == "SMALLSERIAL";
    for (size_t d = k; d + 1 < end && !volatile_default; ++d) {
      if (!s.Is(d, "DEFAULT")) continue;
      // The default expression runs until the next column-constraint keyword.
      for (size_t e = d + 1; e < end; ++e) {
        std::string w = s.Word(e);
        if (w == "NOT" || w == "NULL" || w == "CHECK" || w == "REFERENCES" || w == "UNIQUE" ||
            w == "PRIMARY" || w == "CONSTRAINT" || w == "GENERATED" || w == "COLLATE") {
          break;
        }
        if (kVolatileFunctions.count(w) && s.IsPunct(e + 1, "(")) volatile_default = true;
      }
    }
    if (volatile_default) {
      Add(kRuleVolatileDefault, false,
          "adding " + table + "." + column +
              " with a volatile default rewrites the whole table under an exclusive lock (a "
              "constant default does not)",
          kAltVolatileDefault);
    }
    if ((Has(s, k, end, "REFERENCES") || Has(s, k, end, "CHECK"))) {
      Add(kRuleConstraintNotValid, false,
          "a REFERENCES or CHECK constraint inside ADD COLUMN " + table + "." + column +
              " is validated against every row at once under the ALTER's lock",
          kAltConstraintNotValid);
    }
  }

  const MigrationFile& file_;
  std::vector<LintFinding> findings_;
  std::set<std::string> created_;
  int statement_ = 0;
  int line_ = 0;
  int locking_ddl_line_ = 0;
  bool sets_lock_timeout_ = false;
};

}  // namespace

std::string_view MigrationClassName(MigrationClass c) {
  return c == MigrationClass::kContract ? "contract" : "expand";
}

bool LintReport::failed() const {
  for (const LintFinding& f : findings) {
    if (!f.allowed) return true;
  }
  return false;
}

LintReport LintMigrationFile(const MigrationFile& file) { return Linter(file).Run(); }

LintReport LintMigration(const Migration& migration) {
  LintReport r = LintMigrationFile(migration.up);
  r.version = migration.version;
  r.name = migration.name;
  return r;
}

}  // namespace turnout::db
