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

TEST(Text, TrimRemovesSpacesTabsAndLineEnds) {
  EXPECT_EQ(Trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(Trim("\t\n"), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("x"), "x");
  EXPECT_EQ(Trim(" \r\nversion 15.4\n"), "version 15.4");
}

}  // namespace
}  // namespace turnout
