#include "platform/ports.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "platform/testing/test_util.h"

namespace turnout::platform {
namespace {

TEST(Ports, APortAListenerHoldsIsNotFreeAndTheMessageNamesIt) {
  testing::HeldPort held;
  Status s = CheckPortFree(held.port());
  ASSERT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("port " + std::to_string(held.port()) + " is already in use"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Address already in use"), std::string::npos);
  EXPECT_NE(s.message().find("platform.ports"), std::string::npos);
  held.Close();
  EXPECT_TRUE(CheckPortFree(held.port()).ok());
}

TEST(Ports, ReadsTheKernelsEphemeralRange) {
  char tmpl[] = "/tmp/turnout-ports-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(tmpl) << "32768\t60999\n";
  Result<PortSpan> r = ReadEphemeralPortRange(tmpl);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first, 32768);
  EXPECT_EQ(r->last, 60999);
  std::ofstream(tmpl) << "garbage\n";
  EXPECT_EQ(ReadEphemeralPortRange(tmpl).status().code(), StatusCode::kInvalidArgument);
  ::unlink(tmpl);
  EXPECT_EQ(ReadEphemeralPortRange(tmpl).status().code(), StatusCode::kIoError);
  // The machine's own file reads (every Linux has it).
  EXPECT_TRUE(ReadEphemeralPortRange().ok());
}

TEST(Ports, WarnsWhenTheConfiguredRangeOverlapsTheEphemeralOne) {
  const PortSpan ephemeral{32768, 60999};
  std::optional<std::string> w = EphemeralOverlapWarning({40000, 40999}, ephemeral);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w,
            "platform.ports 40000-40999 overlaps the kernel's ephemeral port range 32768-60999 "
            "(net.ipv4.ip_local_port_range): an outgoing connection of any process may take an "
            "instance's port, which then fails to start with \"Address already in use\"; choose "
            "ports below 32768, or use `ports: auto`");
  EXPECT_TRUE(EphemeralOverlapWarning({32000, 32768}, ephemeral).has_value());  // one port
  EXPECT_TRUE(EphemeralOverlapWarning({60999, 61100}, ephemeral).has_value());
  EXPECT_FALSE(EphemeralOverlapWarning({20000, 20999}, ephemeral).has_value());
  EXPECT_FALSE(EphemeralOverlapWarning({61000, 61100}, ephemeral).has_value());
  EXPECT_FALSE(EphemeralOverlapWarning({0, 0}, ephemeral).has_value());  // ports: auto
}

}  // namespace
}  // namespace turnout::platform
