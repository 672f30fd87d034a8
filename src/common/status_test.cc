#include "common/status.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgument("must be positive");
  return v;
}

Result<int> Doubled(int v) {
  TURNOUT_ASSIGN_OR_RETURN(int parsed, ParsePositive(v));
  return parsed * 2;
}

Status Check(int v) {
  TURNOUT_RETURN_IF_ERROR(ParsePositive(v).status());
  return Status::Ok();
}

TEST(StatusTest, PropagatesErrorsAndValues) {
  EXPECT_EQ(*Doubled(4), 8);
  Result<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().ToString(), "invalid argument: must be positive");
  EXPECT_TRUE(Check(1).ok());
  EXPECT_FALSE(Check(0).ok());
}

TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = NotFound("slot green").WithContext("switch");
  EXPECT_EQ(s.message(), "switch: slot green");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

}  // namespace
}  // namespace turnout
