#include "common/host_port.h"

#include <gtest/gtest.h>

namespace turnout {
namespace {

TEST(HostPortTest, ParsesNamesV4AndBracketedV6) {
  EXPECT_EQ(*ParseHostPort("127.0.0.1:8080"), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(*ParseHostPort("localhost:0"), (HostPort{"localhost", 0}));
  EXPECT_EQ(*ParseHostPort("db-1.internal_x:65535"), (HostPort{"db-1.internal_x", 65535}));
  EXPECT_EQ(*ParseHostPort("[::1]:9901"), (HostPort{"::1", 9901}));
  EXPECT_EQ(*ParseHostPort("[fe80::1:2]:1"), (HostPort{"fe80::1:2", 1}));
}

TEST(HostPortTest, RefusesWithOneMessageThatSaysWhy) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c :
       {Case{"nohost", "missing :port"}, Case{":80", "empty host"},
        Case{"::1:80", "IPv6 addresses need [brackets]"}, Case{"[::1:80", "missing ']'"},
        Case{"[::1]", "missing :port"}, Case{"[nope]:80", "bad IPv6 address"},
        Case{"a b:80", "bad character in host"}, Case{"h:65536", "port must be 0..65535"},
        Case{"h:", "port must be"}, Case{"h:-1", "port must be"}, Case{"h:080x", "port must be"},
        Case{"h:000001", "port must be"}}) {
    Result<HostPort> r = ParseHostPort(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind(std::string("'") + c.text + "' is not host:port (", 0), 0u)
        << r.status().message();
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("e.g. 127.0.0.1:8080"), std::string::npos);
  }
}

TEST(HostPortTest, FormatIsTheInverse) {
  EXPECT_EQ(FormatHostPort("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(FormatHostPort("::1", 9901), "[::1]:9901");
  for (const char* text : {"127.0.0.1:8080", "[::1]:0", "localhost:1"}) {
    Result<HostPort> hp = ParseHostPort(text);
    ASSERT_TRUE(hp.ok());
    EXPECT_EQ(FormatHostPort(hp->host, hp->port), text);
  }
}

}  // namespace
}  // namespace turnout
