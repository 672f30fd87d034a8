#include "db/lint.h"

#include <gtest/gtest.h>

namespace turnout::db {
namespace {

MigrationFile File(std::string_view sql) {
  MigrationFile f;
  f.path = "0001_x.up.sql";
  f.content = std::string(sql);
  auto split = SplitSqlText(sql);
  EXPECT_TRUE(split.ok());
  f.statements = split->statements;
  f.directives = split->directives;
  return f;
}

std::vector<std::string> Rules(std::string_view sql) {
  std::vector<std::string> out;
  for (const LintFinding& f : LintMigrationFile(File(sql)).findings) out.push_back(f.rule);
  return out;
}

bool Has(std::string_view sql, std::string_view rule) {
  for (const std::string& r : Rules(sql)) {
    if (r == rule) return true;
  }
  return false;
}

// Every test file sets lock_timeout unless it tests that rule, so that findings stay focused.
constexpr std::string_view kLt = "SET lock_timeout = '5s';\n";

struct Case {
  std::string_view rule;
  std::string positive;
  std::string negative;
};

class LintRuleTest : public ::testing::TestWithParam<Case> {};

TEST_P(LintRuleTest, PositiveAndNegative) {
  const Case& c = GetParam();
  std::string pos = std::string(kLt) + c.positive;
  std::string neg = std::string(kLt) + c.negative;
  EXPECT_TRUE(Has(pos, c.rule)) << pos;
  EXPECT_FALSE(Has(neg, c.rule)) << neg;
  for (const LintFinding& f : LintMigrationFile(File(pos)).findings) {
    EXPECT_FALSE(f.alternative.empty()) << f.rule;
    EXPECT_FALSE(f.message.empty()) << f.rule;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, LintRuleTest,
    ::testing::Values(
        Case{kRuleDropTable, "DROP TABLE users;", "CREATE TABLE tmp (id int);DROP TABLE tmp;"},
        Case{kRuleDropColumn, "ALTER TABLE users DROP COLUMN email;",
             "ALTER TABLE users DROP CONSTRAINT users_email_key, ALTER email DROP DEFAULT;"},
        Case{kRuleDropColumn, "ALTER TABLE public.users ADD COLUMN a int, DROP b;",
             "ALTER TABLE users ALTER COLUMN b DROP NOT NULL;"},
        Case{kRuleRenameColumn, "ALTER TABLE users RENAME COLUMN name TO full_name;",
             "ALTER TABLE users RENAME CONSTRAINT c1 TO c2;"},
        Case{kRuleRenameTable, "ALTER TABLE users RENAME TO accounts;",
             "ALTER TABLE users RENAME name TO full_name;"},
        Case{kRuleAddColumnNotNull, "ALTER TABLE users ADD COLUMN age int NOT NULL;",
             "ALTER TABLE users ADD COLUMN age int NOT NULL DEFAULT 0;"},
        Case{kRuleSetNotNull, "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
             "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;"},
        Case{kRuleAlterColumnType, "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
             "ALTER TABLE users ALTER COLUMN id SET DEFAULT 0;"},
        Case{kRuleAlterColumnType, "ALTER TABLE users ALTER id SET DATA TYPE bigint;",
             "ALTER TABLE users ADD COLUMN id2 bigint;"},
        Case{kRuleCreateIndex, "CREATE INDEX users_email_idx ON users (email);",
             "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"},
        Case{kRuleCreateIndex, "CREATE UNIQUE INDEX u ON ONLY users (email);",
             "CREATE TABLE t2 (a int);CREATE INDEX t2_a ON t2 (a);"},
        Case{kRuleConstraintNotValid,
             "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
             "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) "
             "NOT VALID;"},
        Case{kRuleConstraintNotValid, "ALTER TABLE orders ADD CHECK (total >= 0);",
             "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;"},
        Case{kRuleVolatileDefault,
             "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
             "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();"},
        Case{kRuleVolatileDefault,
             "ALTER TABLE users ADD COLUMN r float8 NOT NULL DEFAULT random();",
             "ALTER TABLE users ADD COLUMN r float8 DEFAULT 0.5;"}));

TEST(Lint, MissingLockTimeoutOnlyWithLockingDdl) {
  EXPECT_TRUE(Has("ALTER TABLE users ADD COLUMN a int;", kRuleLockTimeout));
  EXPECT_FALSE(
      Has("SET lock_timeout = '2s';ALTER TABLE users ADD COLUMN a int;", kRuleLockTimeout));
  EXPECT_FALSE(
      Has("SET LOCAL lock_timeout TO '2s';ALTER TABLE users ADD COLUMN a int;", kRuleLockTimeout));
  EXPECT_FALSE(Has("CREATE TABLE t (id int);INSERT INTO t VALUES (1);", kRuleLockTimeout));
  EXPECT_FALSE(Has("CREATE INDEX CONCURRENTLY i ON users (a);", kRuleLockTimeout));
}

TEST(Lint, ClassifiesExpandAndContract) {
  EXPECT_EQ(LintMigrationFile(File("SET lock_timeout='1s';ALTER TABLE u ADD COLUMN a int;"))
                .classification,
            MigrationClass::kExpand);
  EXPECT_EQ(LintMigrationFile(File("CREATE INDEX i ON u (a);")).classification,
            MigrationClass::kExpand);  // a locking hazard, but the old version keeps working
  EXPECT_EQ(LintMigrationFile(File("ALTER TABLE u DROP COLUMN a;")).classification,
            MigrationClass::kContract);
  EXPECT_EQ(LintMigrationFile(File("-- turnout:contract\nUPDATE u SET a = 1;")).classification,
            MigrationClass::kContract);
}

TEST(Lint, DropAndRenameFindingsNameTheirObject) {
  LintReport r =
      LintMigrationFile(File("ALTER TABLE public.Users DROP COLUMN \"Email\", RENAME COLUMN a TO "
                             "b;DROP TABLE IF EXISTS t;"));
  std::vector<std::pair<std::string, std::string>> objects;
  for (const auto& f : r.findings) {
    if (f.rule == kRuleDropColumn || f.rule == kRuleRenameColumn || f.rule == kRuleDropTable) {
      objects.emplace_back(f.table, f.column);
    }
  }
  EXPECT_EQ(objects, (std::vector<std::pair<std::string, std::string>>{
                         {"users", "Email"}, {"users", "a"}, {"t", ""}}));
}

TEST(Lint, AllowDirectiveAcknowledgesWithoutHidingTheFinding) {
  LintReport r = LintMigrationFile(
      File("-- turnout:allow drop-column, missing-lock-timeout\nALTER TABLE u DROP COLUMN a;"));
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_TRUE(r.findings[0].allowed);
  EXPECT_FALSE(r.failed());
  EXPECT_EQ(r.classification, MigrationClass::kContract);
  EXPECT_TRUE(LintMigrationFile(File("ALTER TABLE u DROP COLUMN a;")).failed());
}

TEST(Lint, KeywordsInsideStringsAndCommentsAreNotFindings) {
  EXPECT_TRUE(Rules("SET lock_timeout='1s';\n-- DROP TABLE users;\n"
                    "INSERT INTO notes VALUES ('ALTER TABLE users DROP COLUMN email');")
                  .empty());
}

TEST(Lint, FindingPointsAtStatementAndLine) {
  LintReport r = LintMigrationFile(File("SET lock_timeout='1s';\n\nDROP TABLE users;"));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].statement, 2);
  EXPECT_EQ(r.findings[0].line, 3);
  EXPECT_TRUE(r.findings[0].contract);
}

}  // namespace
}  // namespace turnout::db
