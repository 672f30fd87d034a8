#include "backup/catalog.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/sha256.h"

namespace turnout::backup {
namespace {

// Schemas and objects that are not the application's: the system's, and extension members
// (pg_dump writes CREATE EXTENSION for those, not their contents).
constexpr std::string_view kUserRelation = R"sql(
  n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend dep
                  WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
                    AND dep.deptype = 'e'))sql";

std::string FingerprintQuery() {
  std::string where(kUserRelation);
  return R"sql(
SELECT 'table ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND )sql" +
         where + R"sql(
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname
       || ' #' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
       || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not-null' ELSE ' null' END
       || coalesce(' default=' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attidentity WHEN 'a' THEN ' identity-always'
                             WHEN 'd' THEN ' identity-by-default' ELSE '' END
       || CASE a.attgenerated WHEN 's' THEN ' generated-stored' ELSE '' END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND )sql" +
         where + R"sql(
UNION ALL
SELECT 'index ' || n.nspname || '.' || c.relname || ' ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE )sql" +
         where + R"sql(
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || c.relname || ' ' || co.conname || ' '
       || pg_get_constraintdef(co.oid)
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE )sql" +
         where + R"sql(
UNION ALL
SELECT 'sequence ' || n.nspname || '.' || c.relname || ' ' || format_type(s.seqtypid, NULL)
       || ' start=' || s.seqstart || ' increment=' || s.seqincrement || ' min=' || s.seqmin
       || ' max=' || s.seqmax || ' cache=' || s.seqcache
       || CASE WHEN s.seqcycle THEN ' cycle' ELSE ' no-cycle' END
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE )sql" +
         where;
}

bool IsCanonicalLine(std::string_view line) {
  if (line.empty()) return false;
  for (char c : line) {
    if (c == '\n' || c == '\r' || c == '\0') return false;
  }
  return true;
}

// Newlines inside an expression (a multi-line default or CHECK) would break the one-line form.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
  }
  return s;
}

}  // namespace

std::string CanonicalSchemaText(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

SchemaFingerprint FingerprintOf(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  SchemaFingerprint f;
  f.sha256 = Sha256Hex(CanonicalSchemaText(lines));
  f.lines = std::move(lines);
  return f;
}

Result<std::vector<std::string>> ParseSchemaText(std::string_view text) {
  std::vector<std::string> lines;
  if (text.empty()) return lines;
  if (text.back() != '\n') return InvalidArgument("schema text does not end with a newline");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end - start);
    if (!IsCanonicalLine(line)) {
      return InvalidArgument("schema text line " + std::to_string(lines.size() + 1) +
                             " is empty or holds a control character");
    }
    if (!lines.empty() && !(lines.back() <= line)) {
      return InvalidArgument("schema text line " + std::to_string(lines.size() + 1) +
                             " is out of order");
    }
    lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> DiffSchemaLines(const std::vector<std::string>& expected,
                                         const std::vector<std::string>& actual, size_t limit) {
  std::vector<std::string> a = expected, b = actual, out;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<std::string> missing, extra;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(missing));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(extra));
  size_t total = missing.size() + extra.size();
  for (const std::string& l : missing) {
    if (out.size() < limit) out.push_back("- " + l);
  }
  for (const std::string& l : extra) {
    if (out.size() < limit) out.push_back("+ " + l);
  }
  if (total > out.size()) out.push_back("... and " + std::to_string(total - out.size()) + " more");
  return out;
}

namespace {

// One fingerprint line, split: its kind, the object it is about, and for a column its name,
// type, nullability and whether it has a default (or is an identity or generated column).
struct CatalogLine {
  std::string kind;
  std::string object;
  std::string column;
  std::string type;
  bool not_null = false;
  bool filled = false;  // default=, identity or generated: inserts need not name it
};

CatalogLine ParseCatalogLine(const std::string& line) {
  CatalogLine c;
  std::istringstream in(line);
  in >> c.kind >> c.object;
  if (c.kind != "column") return c;
  std::string position;
  in >> position >> c.column;
  std::string rest;
  std::getline(in, rest);  // " <type> null|not-null[ default=...][ identity-...][ generated-...]"
  size_t at = std::string::npos;
  for (const char* word : {" not-null", " null"}) {
    for (size_t p = rest.find(word); p != std::string::npos; p = rest.find(word, p + 1)) {
      const size_t end = p + std::string_view(word).size();
      if (end == rest.size() || rest[end] == ' ') {
        if (p < at) {
          at = p;
          c.not_null = std::string_view(word) == " not-null";
        }
        break;
      }
    }
  }
  c.type = at == std::string::npos ? rest : rest.substr(0, at);
  if (!c.type.empty() && c.type[0] == ' ') c.type.erase(0, 1);
  const std::string tail = at == std::string::npos ? "" : rest.substr(at);
  c.filled = tail.find(" default=") != std::string::npos ||
             tail.find(" identity-") != std::string::npos ||
             tail.find(" generated-") != std::string::npos;
  return c;
}

}  // namespace

SchemaChange ClassifySchemaChange(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after) {
  const std::set<std::string> old_lines(before.begin(), before.end());
  const std::set<std::string> new_lines(after.begin(), after.end());
  // Columns and other objects by name, on each side.
  std::map<std::string, CatalogLine> old_columns, new_columns;
  std::set<std::string> old_objects, new_objects;  // "table x", "sequence y"
  for (const auto& l : old_lines) {
    CatalogLine c = ParseCatalogLine(l);
    if (c.kind == "column") old_columns[c.object + "." + c.column] = c;
    old_objects.insert(c.kind + " " + c.object);
  }
  for (const auto& l : new_lines) {
    CatalogLine c = ParseCatalogLine(l);
    if (c.kind == "column") new_columns[c.object + "." + c.column] = c;
    new_objects.insert(c.kind + " " + c.object);
  }
  SchemaChange out;
  std::set<std::string> tables;
  for (const auto& l : old_lines) {
    if (new_lines.count(l)) continue;
    const CatalogLine c = ParseCatalogLine(l);
    if (c.kind != "sequence") tables.insert(c.object);
    if (c.kind == "column") {
      auto now = new_columns.find(c.object + "." + c.column);
      if (now == new_columns.end()) {
        out.destructive.push_back("column " + c.object + "." + c.column + " is gone");
      } else if (now->second.type != c.type) {
        out.destructive.push_back("column " + c.object + "." + c.column + " changed type from " +
                                  c.type + " to " + now->second.type);
      } else if (now->second.not_null && !c.not_null) {
        out.destructive.push_back("column " + c.object + "." + c.column + " became NOT NULL");
      }
    } else if ((c.kind == "table" || c.kind == "sequence") &&
               !new_objects.count(c.kind + " " + c.object)) {
      out.destructive.push_back(c.kind + " " + c.object + " is gone");
    }
  }
  for (const auto& l : new_lines) {
    if (old_lines.count(l)) continue;
    const CatalogLine c = ParseCatalogLine(l);
    if (c.kind != "sequence") tables.insert(c.object);
    if (c.kind == "column") {
      if (old_columns.count(c.object + "." + c.column)) continue;  // judged above
      if (c.not_null && !c.filled) {
        out.destructive.push_back("column " + c.object + "." + c.column +
                                  " was added NOT NULL without a default");
      } else {
        out.additive.push_back("column " + c.object + "." + c.column + " added");
      }
    } else if (!old_objects.count(c.kind + " " + c.object) || c.kind != "table") {
      out.additive.push_back(c.kind + " " + c.object + " added or changed");
    }
  }
  out.tables.assign(tables.begin(), tables.end());
  return out;
}

Result<SchemaFingerprint> ReadSchemaFingerprint(db::PgConnection& conn) {
  auto rows = conn.Exec(FingerprintQuery());
  if (!rows.ok()) return rows.status().WithContext("cannot read the schema catalog");
  std::vector<std::string> lines;
  lines.reserve(rows->size());
  for (size_t i = 0; i < rows->size(); ++i) lines.push_back(OneLine(rows->text(i, 0)));
  return FingerprintOf(std::move(lines));
}

Result<std::map<std::string, int64_t>> ReadRowCounts(db::PgConnection& conn) {
  auto tables = conn.Exec(R"sql(
SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND )sql" +
                          std::string(kUserRelation) + "\nORDER BY 1, 2");
  if (!tables.ok()) return tables.status().WithContext("cannot list the tables");
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < tables->size(); ++i) {
    std::string name = tables->text(i, 0) + "." + tables->text(i, 1);
    auto n = conn.Exec("SELECT count(*) FROM " + tables->text(i, 2));
    if (!n.ok()) return n.status().WithContext("cannot count the rows of " + name);
    counts[name] = std::stoll(n->text(0, 0));
  }
  return counts;
}

Result<std::optional<int64_t>> ReadMigrationVersion(db::PgConnection& conn) {
  auto exists = conn.Exec("SELECT to_regclass('turnout_schema_history') IS NOT NULL");
  if (!exists.ok()) return exists.status();
  if (exists->text(0, 0) != "t") return std::optional<int64_t>();
  // The latest row of each version decides its state (see docs/migrations.md).
  auto rows = conn.Exec(R"sql(
SELECT max(version) FROM (
  SELECT DISTINCT ON (version) version, direction, status, statements_done
  FROM turnout_schema_history ORDER BY version, id DESC) latest
WHERE (direction = 'up' AND status = 'applied')
   OR (direction = 'down' AND status = 'failed' AND statements_done = 0))sql");
  if (!rows.ok()) return rows.status().WithContext("cannot read turnout_schema_history");
  if (!rows->at(0, 0)) return std::optional<int64_t>();
  return std::optional<int64_t>(std::stoll(*rows->at(0, 0)));
}

}  // namespace turnout::backup
