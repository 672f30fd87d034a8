#include "common/flags.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"admin", "ADDR", "admin address"},
    {"json", "", "json output"},
    {"slot", "NAME=ADDR", "slots", true},
};

TEST(Args, ParsesFlagsAndPositionals) {
  auto a = Args::Parse({"switch", "--admin", "127.0.0.1:1", "green", "--json", "--slot=a=1",
                        "--slot", "b=2", "--", "--not-a-flag"},
                       kSpecs);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->positional(), (std::vector<std::string>{"switch", "green", "--not-a-flag"}));
  EXPECT_EQ(a->Get("admin"), "127.0.0.1:1");
  EXPECT_TRUE(a->Has("json"));
  EXPECT_EQ(a->GetAll("slot"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_FALSE(a->help());
  EXPECT_EQ(a->Get("missing", "fallback"), "fallback");
}

TEST(Args, HelpAnywhere) {
  EXPECT_TRUE(Args::Parse({"x", "--help"}, kSpecs)->help());
  EXPECT_TRUE(Args::Parse({"-h"}, kSpecs)->help());
}

TEST(Args, UsageErrorsNameTheFlag) {
  EXPECT_EQ(Args::Parse({"--bogus"}, kSpecs).status().message(),
            "unknown flag --bogus (see --help)");
  EXPECT_EQ(Args::Parse({"--admin"}, kSpecs).status().message(), "--admin needs a value (ADDR)");
  EXPECT_EQ(Args::Parse({"--admin", "a", "--admin", "b"}, kSpecs).status().message(),
            "--admin given twice");
  EXPECT_EQ(Args::Parse({"--json=yes"}, kSpecs).status().message(), "--json takes no value");
  EXPECT_EQ(Args::Parse({"-x"}, kSpecs).status().message(),
            "unknown flag '-x' (flags are spelled --name; see --help)");
  EXPECT_EQ(Args::Parse({"--slot", "a", "--slot", "b"}, kSpecs)->GetAll("slot").size(), 2u);
}

TEST(Args, ShortNamesAreTheSameFlag) {
  const std::vector<FlagSpec> specs = {{"connections", "N", "", false, 'c'}};
  auto a = Args::Parse({"-c", "8"}, specs);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->Get("connections"), "8");
  EXPECT_EQ(Args::Parse({"-c", "8", "--connections=9"}, specs).status().message(),
            "--connections given twice");
  EXPECT_FALSE(Args::Parse({"-x", "8"}, specs).ok());
}

TEST(Args, ParseFlagsOnlyRefusesPositionals) {
  const char* argv[] = {"prog", "--admin", "a", "extra"};
  auto a = Args::ParseFlagsOnly(4, const_cast<char**>(argv), kSpecs);
  EXPECT_EQ(a.status().message(), "unexpected argument 'extra' (see --help)");
  auto ok = Args::ParseFlagsOnly(3, const_cast<char**>(argv), kSpecs);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->Get("admin"), "a");
}

TEST(Args, NamesListsTheFlagsGiven) {
  auto a = Args::Parse({"--slot=a", "--json", "x"}, kSpecs);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->Names(), (std::vector<std::string>{"json", "slot"}));
}

TEST(Args, HelpListsEveryFlag) {
  std::string help = FlagsHelp(kSpecs);
  EXPECT_NE(help.find("--admin ADDR"), std::string::npos) << help;
  EXPECT_NE(help.find("--json"), std::string::npos);
  EXPECT_NE(help.find("slots (repeatable)"), std::string::npos);
}

}  // namespace
}  // namespace turnout
