#include "db/migration.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace turnout::db {
namespace {

namespace fs = std::filesystem;

class MigrationFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "turnout-migration-files-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& file, const std::string& text) {
    std::ofstream(dir_ + "/" + file) << text;
  }
  std::string dir_;
};

TEST_F(MigrationFilesTest, LoadsSortedByNumericVersionWithDownFilesAndDirectives) {
  Write("10_later.up.sql", "SELECT 10;");
  Write("0002_b.up.sql", "-- turnout:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);");
  Write("0002_b.down.sql", "DROP INDEX i;");
  Write("0001_a.up.sql", "SELECT 1; SELECT 2;");
  Write("README.md", "not a migration");
  auto m = LoadMigrations(dir_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].version, 1);
  EXPECT_EQ((*m)[0].up.statements.size(), 2u);
  EXPECT_FALSE((*m)[0].down.has_value());
  EXPECT_EQ((*m)[1].name, "b");
  EXPECT_TRUE((*m)[1].up.no_transaction);
  ASSERT_TRUE((*m)[1].down.has_value());
  EXPECT_FALSE((*m)[1].down->no_transaction);
  EXPECT_EQ((*m)[2].version, 10);
  EXPECT_EQ((*m)[0].up.sha256, Sha256Hex("SELECT 1; SELECT 2;"));
}

TEST_F(MigrationFilesTest, RefusesWhatWouldSilentlySkipOrConfuseAMigration) {
  Write("0001_a.up.sql", "SELECT 1;");
  Write("0001_a.sql", "SELECT 1;");
  EXPECT_EQ(LoadMigrations(dir_).status().code(), StatusCode::kInvalidArgument);
  fs::remove(dir_ + "/0001_a.sql");
  Write("0001_other.up.sql", "SELECT 1;");
  auto dup = LoadMigrations(dir_);
  EXPECT_NE(dup.status().message().find("two up files for version 1"), std::string::npos);
  fs::remove(dir_ + "/0001_other.up.sql");
  Write("0002_b.down.sql", "SELECT 1;");
  EXPECT_NE(LoadMigrations(dir_).status().message().find("down file without an up file"),
            std::string::npos);
  fs::remove(dir_ + "/0002_b.down.sql");
  Write("0003_c.up.sql", "SELECT 'unterminated;");
  auto bad = LoadMigrations(dir_);
  EXPECT_NE(bad.status().message().find("0003_c.up.sql: line 1: unterminated"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(LoadMigrations(dir_ + "/missing").status().code(), StatusCode::kNotFound);
}

TEST(MigrationHashes, Sha256AndChain) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ChainSha256("", "abc"), Sha256Hex("abc"));
  EXPECT_EQ(ChainSha256("x", "abc"), Sha256Hex("xabc"));
  EXPECT_EQ(MigrationLabel(7, "add_email"), "0007_add_email");
  EXPECT_EQ(MigrationLabel(20240101, "x"), "20240101_x");
}

}  // namespace
}  // namespace turnout::db
