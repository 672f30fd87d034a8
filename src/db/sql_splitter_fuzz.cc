// libFuzzer target for the SQL lexer, splitter, normalizer and linter: untrusted migration files
// must never crash them, and what they return must stay consistent with the input.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "db/lint.h"
#include "db/sql_splitter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  auto tokens = turnout::db::LexSql(sql);
  auto split = turnout::db::SplitSqlText(sql);
  auto normalized = turnout::db::NormalizeSql(sql);
  // All three lex the same way: they fail together.
  if (tokens.ok() != normalized.ok()) std::abort();
  if (!tokens.ok()) return 0;
  for (const auto& t : *tokens) {
    if (t.text.empty() || t.offset + t.text.size() > sql.size()) std::abort();
  }
  if (!split.ok()) return 0;
  turnout::db::MigrationFile file;
  file.content = std::string(sql);
  for (const auto& s : split->statements) {
    if (s.text.empty() || sql.find(s.text) == std::string_view::npos) std::abort();
    // A statement re-split on its own stays one statement.
    auto again = turnout::db::SplitSqlText(s.text);
    if (!again.ok() || again->statements.size() != 1) std::abort();
  }
  file.statements = split->statements;
  file.directives = split->directives;
  (void)turnout::db::LintMigrationFile(file);
  return 0;
}
