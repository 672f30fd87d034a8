#include "cli/router_flags.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace turnout::cli {
namespace {

Result<router::RouterConfig> FromFlags(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, RouterRunFlags());
  if (!args.ok()) return args.status();
  return RouterConfigFromArgs(*args);
}

TEST(RouterFlags, BuildAConfig) {
  auto c = FromFlags({"--listen",        "127.0.0.1:8080",
                      "--listen",        "[::1]:8080",
                      "--slot",          "blue=127.0.0.1:9001,127.0.0.1:9003",
                      "--slot",          "green=127.0.0.1:9002",
                      "--active",        "green",
                      "--admin",         "0.0.0.0:9901",
                      "--admin-token",   "tok",
                      "--workers",       "3",
                      "--state-file",    "state.json",
                      "--health-path",   "/up",
                      "--trusted-proxy", "10.0.0.0/8"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, (std::vector<std::string>{"127.0.0.1:8080", "[::1]:8080"}));
  ASSERT_EQ(c->slots.size(), 2u);
  EXPECT_EQ(c->slots[0].name, "blue");
  EXPECT_EQ(c->slots[0].instances, (std::vector<std::string>{"127.0.0.1:9001", "127.0.0.1:9003"}));
  EXPECT_EQ(c->policy.active, "green");
  EXPECT_EQ(c->admin, "0.0.0.0:9901");
  EXPECT_EQ(c->admin_token, "tok");
  EXPECT_EQ(c->workers, 3);
  EXPECT_EQ(c->state_file, "state.json");
  EXPECT_EQ(c->health.path, "/up");
  EXPECT_TRUE(c->health.enabled);
  EXPECT_EQ(c->trusted_proxies, std::vector<std::string>{"10.0.0.0/8"});
}

TEST(RouterFlags, DefaultsAndShortcuts) {
  auto c = FromFlags({"--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9001",
                      "--no-health-checks", "--slot", "green="});
  ASSERT_FALSE(c.ok());  // two slots need --active
  EXPECT_EQ(c.status().message(),
            "--active is required with several slots: which one gets traffic?");
  c = FromFlags({"--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9001", "--no-health-checks"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->policy.active, "blue");
  EXPECT_FALSE(c->health.enabled);
  EXPECT_EQ(c->admin, router::DefaultAdminAddress());
  EXPECT_TRUE(c->admin.starts_with("unix:/")) << c->admin;
  c = FromFlags({"--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9001", "--admin="});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->admin, "");  // disabled
}

TEST(RouterFlags, ErrorsNameTheFlag) {
  const std::string listen = "--listen";
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  } cases[] = {
      {{"--slot", "blue=127.0.0.1:1"},
       "--listen is required (e.g. --listen 0.0.0.0:8080), or use --config"},
      {{listen, "127.0.0.1:0"},
       "--slot is required (e.g. --slot blue=127.0.0.1:9001), or use --config"},
      {{listen, "127.0.0.1:0", "--slot", "blue"},
       "--slot blue: expected NAME=HOST:PORT[,HOST:PORT...]"},
      {{listen, "127.0.0.1:0", "--slot", "blue=127.0.0.1:1", "--active", "red"},
       "--active: unknown slot 'red'; known slots: blue"},
      {{listen, "127.0.0.1:0", "--slot", "blue=127.0.0.1:1", "--workers", "many"},
       "--workers: expected 0..256 (0 = one per core), got 'many'"},
      {{listen, "127.0.0.1:0", "--slot", "blue=127.0.0.1:1", "--admin", "0.0.0.0:9901"},
       "--admin-token: required because the admin API listens on TCP (0.0.0.0:9901); give a "
       "token (--admin-token, --admin-token-file FILE or $TURNOUT_ADMIN_TOKEN; admin.token in "
       "YAML) or listen on a Unix socket (unix:/path/to/admin.sock)"},
      // Loopback is no exception: web pages and every local user reach it.
      {{listen, "127.0.0.1:0", "--slot", "blue=127.0.0.1:1", "--admin", "127.0.0.1:9901"},
       "--admin-token: required because the admin API listens on TCP (127.0.0.1:9901); give a "
       "token (--admin-token, --admin-token-file FILE or $TURNOUT_ADMIN_TOKEN; admin.token in "
       "YAML) or listen on a Unix socket (unix:/path/to/admin.sock)"},
      {{listen, "127.0.0.1:0", "--slot", "blue=127.0.0.1:1", "--admin-token", "a",
        "--admin-token-file", "f"},
       "--admin-token and --admin-token-file: give one of them"},
      {{listen, "127.0.0.1:0", "--slot", "blue=nohost"},
       "--slot blue: 'nohost' is not host:port (missing :port); e.g. 127.0.0.1:8080, [::1]:8080 "
       "or localhost:8080"},
      {{"--config", "x.yaml", listen, "127.0.0.1:0"},
       "--listen cannot be combined with --config; put it in the file instead"},
  };
  for (const auto& c : cases) {
    auto r = FromFlags(c.argv);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().message(), c.message);
  }
}

TEST(RouterFlags, AccessLogAndTrace) {
  auto c = FromFlags({"--listen", "127.0.0.1:8080", "--slot", "blue=127.0.0.1:9001", "--access-log",
                      "/var/log/turnout/access.log", "--access-log-format", "logfmt",
                      "--access-log-sample", "10%", "--trace-generate"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_log.path, "/var/log/turnout/access.log");
  EXPECT_EQ(c->access_log.format, router::AccessLogConfig::Format::kLogfmt);
  EXPECT_DOUBLE_EQ(c->access_log.sample, 0.1);
  EXPECT_TRUE(c->trace.generate);

  c = FromFlags({"--listen", "127.0.0.1:8080", "--slot", "blue=127.0.0.1:9001"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->access_log.path.empty());  // off by default
  EXPECT_FALSE(c->trace.generate);
  EXPECT_DOUBLE_EQ(c->access_log.sample, 1.0);

  const std::vector<std::string> base = {"--listen", "127.0.0.1:8080", "--slot",
                                         "blue=127.0.0.1:9001"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return FromFlags(argv);
  };
  EXPECT_NE(with({"--access-log", "-", "--access-log-format", "xml"})
                .status()
                .message()
                .find("--access-log-format: expected json or logfmt, got 'xml'"),
            std::string::npos);
  EXPECT_NE(with({"--access-log", "-", "--access-log-sample", "1.5"})
                .status()
                .message()
                .find("--access-log-sample: expected a fraction from 0 to 1"),
            std::string::npos);
  EXPECT_NE(with({"--access-log-sample", "0.5"})
                .status()
                .message()
                .find("--access-log-sample needs --access-log FILE"),
            std::string::npos);
}

TEST(RouterFlags, AdminTokenFromAFileOrTheEnvironment) {
  char dir[] = "/tmp/turnout_flags_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/token";
  { std::ofstream(file) << "s3cret\n"; }
  const std::vector<std::string> base = {"--listen",         "127.0.0.1:0", "--slot",
                                         "blue=127.0.0.1:1", "--admin",     "127.0.0.1:0",
                                         "--admin-host",     "r.internal"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return FromFlags(argv);
  };
  auto c = with({"--admin-token-file", file});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->admin_token, "s3cret");  // without the newline
  EXPECT_EQ(c->admin_hosts, std::vector<std::string>{"r.internal"});
  { std::ofstream(file) << "\n"; }
  EXPECT_NE(with({"--admin-token-file", file}).status().message().find("is empty"),
            std::string::npos);
  EXPECT_NE(with({"--admin-token-file", file + ".missing"})
                .status()
                .message()
                .find("cannot read token file of --admin-token-file"),
            std::string::npos);

  setenv("TURNOUT_ADMIN_TOKEN", "from-env", 1);
  c = with({});
  unsetenv("TURNOUT_ADMIN_TOKEN");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->admin_token, "from-env");
  EXPECT_FALSE(with({}).ok());  // TCP and no token anywhere
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace turnout::cli
