#include "platform/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace turnout::platform {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Split(std::string_view s) {
  Result<std::vector<std::string>> r = SplitCommand(s);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::string>{};
}

TEST(SplitCommandTest, SplitsOnBlanks) {
  EXPECT_THAT(Split("  ./app   --port\t8080\n"), ElementsAre("./app", "--port", "8080"));
}

TEST(SplitCommandTest, Quotes) {
  EXPECT_THAT(Split(R"(sh -c 'trap "" TERM; sleep 60')"),
              ElementsAre("sh", "-c", R"(trap "" TERM; sleep 60)"));
  EXPECT_THAT(Split(R"(echo "a \"b\" \\ \n" 'it''s' x"y"z '' "")"),
              ElementsAre("echo", R"(a "b" \ \n)", "its", "xyz", "", ""));
  EXPECT_THAT(Split(R"(a\ b \'c)"), ElementsAre("a b", "'c"));
}

TEST(SplitCommandTest, RefusesBrokenQuoting) {
  EXPECT_EQ(SplitCommand("sh -c 'oops").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitCommand("echo \"oops").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitCommand("echo oops\\").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitCommand("   ").status().code(), StatusCode::kInvalidArgument);
}

TEST(ExpandCommandTest, SubstitutesInsideWordsWithoutSplitting) {
  InstanceSpec spec;
  spec.version = "v2";
  spec.slot = "green";
  spec.instance = 3;
  spec.port = 9001;
  spec.command =
      "app --listen=127.0.0.1:{port} '{version} {slot}' {instance}{instance} {other} ${HOME} {";
  Result<std::vector<std::string>> argv = ExpandCommand(spec);
  ASSERT_TRUE(argv.ok());
  EXPECT_THAT(*argv, ElementsAre("app", "--listen=127.0.0.1:9001", "v2 green", "33", "{other}",
                                 "${HOME}", "{"));
}

}  // namespace
}  // namespace turnout::platform
