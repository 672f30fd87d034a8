// `turnout migrate` flags: parsed by the shared parser (common/flags.h), so they are refused with
// the same words as every other command. No database is needed: these stop at the flags.

#include "db/migrate_cli.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace turnout::db {
namespace {

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Migrate(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = RunMigrateCommand(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(MigrateCli, ARepeatedFlagIsRefusedNotSilentlyTheLastOne) {
  Outcome o = Migrate({"lint", "--dir", "first", "--dir", "second"});
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_NE(o.err.find("--dir given twice"), std::string::npos) << o.err;
  Outcome url = Migrate({"status", "--database=a", "--database=b"});
  EXPECT_EQ(url.code, 2);
  EXPECT_NE(url.err.find("--database given twice"), std::string::npos) << url.err;
}

TEST(MigrateCli, UnknownFlagsUseTheSharedWords) {
  Outcome o = Migrate({"lint", "--bogus"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("unknown flag --bogus (see --help)"), std::string::npos) << o.err;
  // A flag of another migrate command is refused for this one.
  Outcome wrong = Migrate({"lint", "--to", "3"});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.err.find("unknown flag --to for `migrate lint`"), std::string::npos) << wrong.err;
  Outcome value = Migrate({"status", "--dir"});
  EXPECT_EQ(value.code, 2);
  EXPECT_NE(value.err.find("--dir needs a value"), std::string::npos) << value.err;
}

TEST(MigrateCli, HelpKeepsItsContent) {
  Outcome top = Migrate({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("usage: turnout migrate <command> [flags]"), std::string::npos);
  Outcome up = Migrate({"up", "--help"});
  EXPECT_EQ(up.code, 0);
  EXPECT_NE(up.out.find("--lock-retries 3"), std::string::npos) << up.out;
}

}  // namespace
}  // namespace turnout::db
