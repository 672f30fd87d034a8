#include "db/sql_splitter.h"

#include <gtest/gtest.h>

namespace turnout::db {
namespace {

std::vector<std::string> Texts(std::string_view sql) {
  auto r = SplitSqlText(sql);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::string> out;
  if (!r.ok()) return out;
  for (const auto& s : r->statements) out.push_back(s.text);
  return out;
}

TEST(SqlSplitter, SplitsOnSemicolonsAndDropsEmptyStatements) {
  EXPECT_EQ(Texts("CREATE TABLE a (id int);\n\n;;SELECT 1;  SELECT 2"),
            (std::vector<std::string>{"CREATE TABLE a (id int)", "SELECT 1", "SELECT 2"}));
}

TEST(SqlSplitter, SemicolonsInsideStringsAndIdentifiersDoNotSplit) {
  EXPECT_EQ(Texts("INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT \"we;ird\"\"x\" FROM t;"),
            (std::vector<std::string>{"INSERT INTO t VALUES ('a;b', 'it''s; fine')",
                                      "SELECT \"we;ird\"\"x\" FROM t"}));
}

TEST(SqlSplitter, EscapeStringsHonourBackslashes) {
  // In E'' a backslash escapes the quote; in a plain string it does not.
  EXPECT_EQ(Texts("SELECT E'a\\';b';SELECT 'c\\';SELECT 3"),
            (std::vector<std::string>{"SELECT E'a\\';b'", "SELECT 'c\\'", "SELECT 3"}));
}

TEST(SqlSplitter, DollarQuotesWithAndWithoutTags) {
  std::string fn = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$";
  std::string tagged =
      "CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN '$$;'; END "
      "$body$";
  EXPECT_EQ(Texts(fn + ";\n" + tagged + ";\nSELECT 1;"),
            (std::vector<std::string>{fn, tagged, "SELECT 1"}));
}

TEST(SqlSplitter, PositionalParametersAndDollarInIdentifiersAreNotQuotes) {
  EXPECT_EQ(Texts("PREPARE p AS SELECT $1;SELECT a$b FROM t;"),
            (std::vector<std::string>{"PREPARE p AS SELECT $1", "SELECT a$b FROM t"}));
}

TEST(SqlSplitter, CommentsIncludingNestedBlockComments) {
  auto texts = Texts(
      "-- leading; comment\nSELECT 1 /* a; /* nested; */ still; comment */ + 1;\n"
      "/* only a comment; */\n-- and another;\n");
  EXPECT_EQ(texts,
            (std::vector<std::string>{"SELECT 1 /* a; /* nested; */ still; comment */ + 1"}));
}

TEST(SqlSplitter, BeginAtomicBodiesKeepTheirSemicolons) {
  std::string fn =
      "CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 "
      "THEN 1 ELSE 0 END; SELECT 2; END";
  EXPECT_EQ(Texts(fn + ";SELECT 3;"), (std::vector<std::string>{fn, "SELECT 3"}));
}

TEST(SqlSplitter, RecordsLinesAndDirectives) {
  auto r = SplitSqlText(
      "-- turnout:no-transaction\n-- turnout:allow drop-column, rename-table\n"
      "\nCREATE INDEX CONCURRENTLY i ON t (a);\n\nDROP INDEX x;");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->statements.size(), 2u);
  EXPECT_EQ(r->statements[0].line, 4);
  EXPECT_EQ(r->statements[1].line, 6);
  EXPECT_EQ(r->directives,
            (std::vector<std::string>{"no-transaction", "allow drop-column, rename-table"}));
}

TEST(SqlSplitter, UnterminatedConstructsFailWithTheirLine) {
  for (const char* bad : {"SELECT 1;\nSELECT 'abc", "SELECT 1;\nSELECT \"abc", "\nSELECT $x$ abc",
                          "SELECT 1;\n/* open /* nested */", "SELECT 1;\nSELECT E'\\'"}) {
    auto r = SplitSqlText(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("line 2"), std::string::npos)
        << bad << ": " << r.status().message();
  }
}

TEST(SqlSplitter, NormalizeIgnoresWhitespaceAndCommentsButNotStrings) {
  auto a = NormalizeSql("CREATE TABLE t (id int);\n-- comment\nSELECT 'x  y';");
  auto b = NormalizeSql("/* hello */ CREATE   TABLE t\n(\n  id int\n) ;SELECT 'x  y';  ");
  auto c = NormalizeSql("CREATE TABLE t (id int);SELECT 'x y';");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
}

}  // namespace
}  // namespace turnout::db
