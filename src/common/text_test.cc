#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace turnout {
namespace {

TEST(Text, TokensAreRfc9110Tchars) {
  EXPECT_TRUE(IsToken("GET"));
  EXPECT_TRUE(IsToken("X-Turnout-Slot"));
  EXPECT_TRUE(IsToken("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(IsToken(""));
  EXPECT_FALSE(IsToken("a b"));
  EXPECT_FALSE(IsToken("a:b"));
  EXPECT_FALSE(IsToken("a\"b"));
  EXPECT_FALSE(IsToken(std::string_view("a\0b", 3)));
  EXPECT_FALSE(IsToken("caf\xc3\xa9"));
  EXPECT_FALSE(IsTokenChar('('));
  EXPECT_FALSE(IsTokenChar('\x7f'));
}

TEST(Text, EnvNamesAreShellVariableNames) {
  EXPECT_TRUE(IsEnvName("PATH"));
  EXPECT_TRUE(IsEnvName("_x1"));
  EXPECT_FALSE(IsEnvName(""));
  EXPECT_FALSE(IsEnvName("1X"));
  EXPECT_FALSE(IsEnvName("A-B"));
  EXPECT_FALSE(IsEnvName("A B"));
  EXPECT_FALSE(IsEnvName("\xc3\xa9"));
  EXPECT_TRUE(IsUserEnvName("POOL_SIZE"));
  EXPECT_FALSE(IsUserEnvName("TURNOUT_PORT")) << "turnout sets these itself";
  EXPECT_FALSE(IsUserEnvName("1X"));
}

TEST(Text, TrimRemovesSpacesTabsAndLineEnds) {
  EXPECT_EQ(Trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(Trim("\t\n"), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("x"), "x");
  EXPECT_EQ(Trim(" \r\nversion 15.4\n"), "version 15.4");
}

TEST(Text, EscapeControlKeepsTextOnItsLine) {
  EXPECT_EQ(EscapeControl("plain text, caf\xc3\xa9"), "plain text, caf\xc3\xa9");
  EXPECT_EQ(EscapeControl("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(EscapeControl(std::string_view("\x1b[31m\x7f\0", 7)), "\\x1b[31m\\x7f\\x00");
}

TEST(ParseWholeNumberTest, DigitsWithinTheRangeOnly) {
  EXPECT_EQ(*ParseWholeNumber("0", 0, 10), 0);
  EXPECT_EQ(*ParseWholeNumber("10", 0, 10), 10);
  EXPECT_EQ(*ParseWholeNumber("-5", -10, 10), -5);
  for (const char* bad :
       {"", "abc", "9x", "1e3", "+1", " 1", "1 ", "1.0", "11", "-1", "99999999999999999999"}) {
    Result<int64_t> r = ParseWholeNumber(bad, 0, 10);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("expected a whole number from 0 to 10, got '") + bad + "'");
  }
}

TEST(EqualsIgnoreCase, ComparesAsciiLettersWithoutCaseAndOtherBytesExactly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_FALSE(EqualsIgnoreCase("Content-Length", "content-lengt"));
  EXPECT_FALSE(EqualsIgnoreCase("a[", "A{"));  // '[' and '{' differ by the case bit
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\xa9", "\xc3\x89"));
  EXPECT_TRUE(StartsWithIgnoreCase("Bearer abc", "bearer "));
  EXPECT_FALSE(StartsWithIgnoreCase("Bear", "bearer "));
}

}  // namespace
TEST(Text, HumanBytesUsesUnitsOf1024) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{3} << 20), "3.0 MiB");
}

}  // namespace turnout
