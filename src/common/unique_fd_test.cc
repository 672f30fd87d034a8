#include "common/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>

namespace turnout {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesWhatItOwnsWhenItGoesOutOfScope) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    UniqueFd owner(fd);
    EXPECT_TRUE(IsOpen(fd));
  }
  EXPECT_FALSE(IsOpen(fd));
}

TEST(UniqueFd, MovingHandsOverOwnershipAndReleaseGivesItUp) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  UniqueFd a(fd);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), fd);
  int released = b.release();
  EXPECT_EQ(released, fd);
  EXPECT_FALSE(b.valid());
  EXPECT_TRUE(IsOpen(fd));
  ::close(fd);
}

TEST(UniqueFd, ResetClosesTheOldDescriptor) {
  int first = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(first, 0);
  UniqueFd owner(first);
  owner.reset();
  EXPECT_FALSE(IsOpen(first));
  EXPECT_FALSE(owner.valid());
}

}  // namespace
}  // namespace turnout
