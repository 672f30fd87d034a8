// A lexer and statement splitter for PostgreSQL migration files.
//
// Not a parser: it knows exactly enough of PostgreSQL's lexical rules to find the statement
// boundaries and to let the linter look at keywords:
//   - single-quoted strings ('' doubles a quote), E'' strings (backslash escapes);
//   - double-quoted identifiers ("" doubles a quote);
//   - dollar quotes ($$...$$ and $tag$...$tag$), as used by function bodies;
//   - -- line comments and /* */ block comments, which nest in PostgreSQL;
//   - BEGIN ATOMIC ... END function bodies (PostgreSQL 14+), whose inner semicolons do not end
//     the statement.
// `-- turnout:<word> [args]` line comments are directives (e.g. `-- turnout:no-transaction`).
//
// Pure functions; thread-safe. Unterminated quotes and comments fail with InvalidArgument naming
// the line where they start.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::db {

enum class SqlTokenKind {
  kWord,          // keyword or unquoted identifier (may contain $ after the first char)
  kQuotedIdent,   // "..."
  kString,        // '...', E'...', B'...', X'...', U&'...'
  kDollarString,  // $tag$...$tag$
  kNumber,
  kParam,    // $1
  kPunct,    // one character: ; ( ) , . etc.; operators come as single characters too
  kComment,  // -- ... or /* ... */
};

struct SqlToken {
  SqlTokenKind kind;
  std::string_view text;  // a view into the lexed source
  int line = 1;           // 1-based line of the first character
  size_t offset = 0;      // byte offset in the source
};

// Lexes `sql` into tokens, whitespace dropped, comments kept. The views point into `sql`.
Result<std::vector<SqlToken>> LexSql(std::string_view sql);

struct SqlStatement {
  std::string text;  // from its first token to its last, without the ';' and leading comments
  int line = 1;      // line of the first token
};

struct SplitSql {
  std::vector<SqlStatement> statements;
  // Directives in order, as written after "turnout:" (e.g. "no-transaction", "allow drop-column").
  std::vector<std::string> directives;
};

// Splits a file into statements. Empty statements (";;") are dropped.
Result<SplitSql> SplitSqlText(std::string_view sql);

// The file with comments removed and every run of whitespace between tokens made one space; two
// files with equal normalized text differ only in whitespace or comments.
Result<std::string> NormalizeSql(std::string_view sql);

// ASCII upper-case copy (for keyword comparison).
std::string UpperAscii(std::string_view s);

}  // namespace turnout::db
