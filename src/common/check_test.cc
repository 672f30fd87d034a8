#include "common/check.h"

#include <gtest/gtest.h>

#include <string>

#include "common/status.h"

namespace turnout {
namespace {

TEST(CheckDeathTest, CheckAbortsWithTheConditionAndTheMessage) {
  int slots = 2;
  EXPECT_DEATH(TURNOUT_CHECK(slots > 3, "need more slots"),
               "CHECK failed at .*check_test.cc:[0-9]+: slots > 3: need more slots");
}

TEST(CheckDeathTest, CheckThatHoldsDoesNothing) {
  int evaluated = 0;
  TURNOUT_CHECK(++evaluated == 1, "evaluated once");
  EXPECT_EQ(evaluated, 1);
}

TEST(CheckDeathTest, DcheckAbortsOnlyInBuildsWithoutNdebug) {
#ifdef NDEBUG
  int evaluated = 0;
  TURNOUT_DCHECK(++evaluated == 5, "not evaluated in release builds");
  EXPECT_EQ(evaluated, 0);
#else
  EXPECT_DEATH(TURNOUT_DCHECK(1 + 1 == 3, "arithmetic"), "CHECK failed.*1 \\+ 1 == 3: arithmetic");
#endif
}

TEST(ResultDeathTest, ValueOfAnErrorAbortsNamingTheStatus) {
  Result<int> r = NotFound("no slot named 'teal'");
  EXPECT_DEATH(static_cast<void>(r.value()),
               "value\\(\\) of a Result that holds an error: not found: no slot named 'teal'");
  const Result<std::string> c = InvalidArgument("bad weight");
  EXPECT_DEATH(static_cast<void>(c->size()), "invalid argument: bad weight");
  EXPECT_DEATH(static_cast<void>(*Result<int>(Aborted("stale"))), "aborted: stale");
}

TEST(ResultDeathTest, ValueOfAValueIsTheValue) {
  Result<std::string> r = std::string("green");
  EXPECT_EQ(r.value(), "green");
  EXPECT_EQ(*r, "green");
  EXPECT_EQ(std::move(r).value(), "green");
}

}  // namespace
}  // namespace turnout
