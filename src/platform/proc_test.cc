#include "platform/proc.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace turnout::platform {
namespace {

TEST(ProcStatTest, ParsesCommandNamesWithSpacesAndParens) {
  std::string text =
      "4242 (my app) (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3\n";
  Result<ProcStat> stat = ParseProcStat(text);
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->parent, 1);
  EXPECT_EQ(stat->start_time_ticks, 987654u);
  EXPECT_FALSE(stat->zombie());
}

TEST(ProcStatTest, RefusesShortOrBrokenText) {
  EXPECT_FALSE(ParseProcStat("").ok());
  EXPECT_FALSE(ParseProcStat("1 (a) S 1 2 3").ok());
  EXPECT_FALSE(ParseProcStat("1 (a) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 5").ok());
}

TEST(ProcStatTest, ReadsOwnProcessAndMissingOnes) {
  Result<ProcStat> self = ReadProcStat(::getpid());
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(self->parent, ::getppid());
  EXPECT_GT(self->start_time_ticks, 0u);
  // Start time is fixed for the life of the process.
  EXPECT_EQ(ReadProcStat(::getpid())->start_time_ticks, self->start_time_ticks);
  // Above the kernel's pid_max limit: never a process.
  EXPECT_EQ(ReadProcStat(1 << 23).status().code(), StatusCode::kNotFound);
  Result<std::string> boot = BootId();
  ASSERT_TRUE(boot.ok());
  EXPECT_EQ(boot->size(), 36u);
}

}  // namespace
}  // namespace turnout::platform
