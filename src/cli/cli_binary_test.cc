// Runs the built `turnout` binary as a user would: help everywhere, usage errors, exit codes, and
// a real router started with `turnout router` and driven by the other `turnout router` commands.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "router/admin_client.h"
#include "router/admin_server.h"
#include "router/testing/raw_client.h"
#include "service/service_config.h"

#ifndef TURNOUT_BINARY
#error "TURNOUT_BINARY must name the turnout executable"
#endif

namespace turnout::cli {
namespace {

using Deadline = std::chrono::steady_clock::time_point;
Deadline In(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

// A child process with its stdout and stderr on pipes. Ended only by pid, only if started here.
class Child {
 public:
  explicit Child(std::vector<std::string> args, std::string binary = TURNOUT_BINARY) {
    int out[2], err[2];
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      std::vector<char*> argv;
      argv.push_back(binary.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  // Reads both pipes until `stdout_contains` shows up (or until both close when empty). False on
  // timeout.
  bool ReadUntil(const std::string& stdout_contains, Deadline deadline) {
    for (;;) {
      if (!stdout_contains.empty() && out.find(stdout_contains) != std::string::npos) return true;
      if (out_eof_ && err_eof_) return stdout_contains.empty();
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fds[2] = {{out_eof_ ? -1 : out_, POLLIN, 0}, {err_eof_ ? -1 : err_, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
      Drain(fds[0], out_, &out, &out_eof_);
      Drain(fds[1], err_, &err, &err_eof_);
    }
  }

  // Waits for the exit code (reading output meanwhile); -1 on timeout.
  int Wait(Deadline deadline) {
    if (!ReadUntil("", deadline)) return -1;
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      // The pipes are closed, so the process is exiting; poll its status briefly.
      pollfd none{-1, 0, 0};
      poll(&none, 0, 5);
    }
  }

  void Signal(int sig) { kill(pid_, sig); }

  std::string out;
  std::string err;

 private:
  static void Drain(const pollfd& p, int fd, std::string* into, bool* eof) {
    if (p.fd < 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      *eof = true;
    } else {
      into->append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool out_eof_ = false;
  bool err_eof_ = false;
  bool exited_ = false;
};

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Turnout(std::vector<std::string> args) {
  Child c(std::move(args));
  int code = c.Wait(In(std::chrono::seconds(30)));
  return {code, c.out, c.err};
}

// An address where nothing listens: bound once by the OS, then released.
std::string ClosedAddress() {
  // The admin server binds port 0 and reports the port; stopping it frees the port.
  class Null : public router::RouterControl {
    Result<router::RouterStatus> GetStatus() override { return Internal("unused"); }
    Result<router::RoutingPolicy> GetPolicy() override { return Internal("unused"); }
    Result<uint64_t> SetPolicy(const router::RoutingPolicy&) override { return Internal("unused"); }
    Result<uint64_t> SetPolicyIf(const router::RoutingPolicy&, uint64_t) override {
      return Internal("unused");
    }
    Result<uint64_t> SetSlotInstances(const std::string&,
                                      const std::vector<std::string>&) override {
      return Internal("unused");
    }
    Result<router::SlotStatus> GetSlotStatus(const std::string&) override {
      return Internal("unused");
    }
    Result<std::vector<router::SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds) override {
      return Internal("unused");
    }
  } null;
  router::AdminServer::Options options;
  options.address = "127.0.0.1:0";
  options.token = "unused";  // a TCP admin API needs one
  router::AdminServer server(options, null, nullptr);
  EXPECT_TRUE(server.Start().ok());
  std::string address = server.address();
  server.Stop();
  return address;
}

TEST(TurnoutBinary, HelpEverywhereExitsZero) {
  Outcome top = Turnout({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("usage: turnout COMMAND"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("router"), std::string::npos);
  EXPECT_EQ(Turnout({"help"}).code, 0);
  Outcome help_router = Turnout({"help", "router"});
  EXPECT_EQ(help_router.code, 0);
  EXPECT_NE(help_router.out.find("usage: turnout router"), std::string::npos);
  Outcome router = Turnout({"router", "--help"});
  EXPECT_EQ(router.code, 0);
  EXPECT_NE(router.out.find("--listen ADDR"), std::string::npos) << router.out;
  for (const char* sub : {"switch", "weight", "status", "policy", "drain", "metrics"}) {
    Outcome r = Turnout({"router", sub, "--help"});
    EXPECT_EQ(r.code, 0) << sub << ": " << r.err;
    EXPECT_NE(r.out.find(std::string("usage: turnout router ") + sub), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--admin ADDR"), std::string::npos) << r.out;
  }
}

TEST(TurnoutBinary, InitWritesAValidExampleAndNeverOverwritesIt) {
  char dir_template[] = "/tmp/turnout-init-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/turnout.yaml";

  EXPECT_EQ(Turnout({"init", "--help"}).code, 0);
  EXPECT_EQ(Turnout({"migrate", "--help"}).code, 0);
  Outcome first = Turnout({"init", "--file", path});
  ASSERT_EQ(first.code, 0) << first.err;
  Result<service::ServiceConfig> config = service::LoadServiceConfig(path);
  EXPECT_TRUE(config.ok()) << config.status().ToString();

  std::ofstream(path, std::ios::app) << "# my edits\n";
  Outcome again = Turnout({"init", "--file", path});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists already; pass --force"), std::string::npos) << again.err;
  std::ifstream kept(path);
  std::string text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("# my edits"), std::string::npos);

  EXPECT_EQ(Turnout({"init", "--file", path, "--force"}).code, 0);
  EXPECT_EQ(Turnout({"init", "stray"}).code, 2);
  std::system(("rm -rf '" + dir + "'").c_str());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(TurnoutBinary, InitFromComposeWritesTheServiceAndSaysWhatItLeftOut) {
  char dir_template[] = "/tmp/turnout-compose-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string compose = dir + "/docker-compose.yml";
  const std::string path = dir + "/turnout.yaml";
  std::ofstream(compose)
      << "services:\n"
         "  db:\n"
         "    image: postgres:15\n"
         "  api:\n"
         "    image: registry.example/architect-api:3.2.0\n"
         "    ports: [\"127.0.0.1:8000:8000\"]\n"
         "    depends_on: [db]\n"
         "    healthcheck:\n"
         "      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n";

  Outcome help = Turnout({"init", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--from-compose FILE"), std::string::npos) << help.out;

  Outcome written =
      Turnout({"init", "--from-compose", compose, "--service", "api", "--file", path});
  ASSERT_EQ(written.code, 0) << written.err;
  EXPECT_NE(written.out.find("wrote " + path), std::string::npos) << written.out;
  EXPECT_NE(
      written.err.find("warning: " + compose + ":7: services.api.depends_on: not carried over"),
      std::string::npos)
      << written.err;
  const std::string text = ReadAll(path);
  EXPECT_NE(text.find("image: \"registry.example/architect-api:{version}\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("listen: 127.0.0.1:8000"), std::string::npos) << text;
  EXPECT_NE(text.find("path: /health"), std::string::npos) << text;
  // It carries the service's environment, which often holds credentials: only its owner reads it.
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Never overwrites without --force; --force does.
  std::ofstream(path, std::ios::app) << "# my edits\n";
  Outcome again = Turnout({"init", "--from-compose", compose, "--service", "api", "--file", path});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists already; pass --force"), std::string::npos) << again.err;
  EXPECT_NE(ReadAll(path).find("# my edits"), std::string::npos);
  Outcome forced = Turnout(
      {"init", "--from-compose", compose, "--service", "api", "--file", path, "--force", "--json"});
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(ReadAll(path).find("# my edits"), std::string::npos);
  EXPECT_NE(forced.out.find("\"ok\": true"), std::string::npos) << forced.out;
  EXPECT_NE(forced.out.find("services.api.depends_on"), std::string::npos) << forced.out;

  // An unknown service names the ones there are; nothing is written.
  const std::string other = dir + "/other.yaml";
  Outcome unknown =
      Turnout({"init", "--from-compose", compose, "--service", "web", "--file", other});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("no service web; its services: db, api"), std::string::npos)
      << unknown.err;
  EXPECT_NE(::stat(other.c_str(), &st), 0);

  // A broken compose file: the line, and nothing written.
  std::ofstream(compose) << "services:\n  api:\n    image: [unclosed\n";
  Outcome broken =
      Turnout({"init", "--from-compose", compose, "--service", "api", "--file", other});
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.err.find(compose + ":4: not valid YAML"), std::string::npos) << broken.err;
  EXPECT_NE(::stat(other.c_str(), &st), 0);
  Outcome missing = Turnout(
      {"init", "--from-compose", dir + "/none.yml", "--service", "api", "--file", other, "--json"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("cannot read compose file"), std::string::npos) << missing.out;

  // The two flags go together.
  EXPECT_EQ(Turnout({"init", "--from-compose", compose, "--file", other}).code, 2);
  EXPECT_EQ(Turnout({"init", "--service", "api", "--file", other}).code, 2);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(TurnoutBinary, UsageErrorsExitTwo) {
  Outcome unknown = Turnout({"deploy-everything"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'deploy-everything'"), std::string::npos);
  EXPECT_NE(unknown.err.find("usage: turnout COMMAND"), std::string::npos);
  EXPECT_EQ(Turnout({}).code, 2);
  EXPECT_EQ(Turnout({"router", "frobnicate"}).code, 2);
  EXPECT_EQ(Turnout({"router", "switch"}).code, 2);             // missing SLOT
  EXPECT_EQ(Turnout({"router", "status", "--bogus"}).code, 2);  // unknown flag
  Outcome weight = Turnout({"router", "weight", "green", "100.01"});
  EXPECT_EQ(weight.code, 2);
  EXPECT_NE(weight.err.find("100.01"), std::string::npos) << weight.err;
  Outcome no_slots = Turnout({"router", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(no_slots.code, 2);
  EXPECT_NE(no_slots.err.find("--slot is required"), std::string::npos) << no_slots.err;
}

// Every sub-command parses its flags with the one shared parser: same words, same rule for a
// flag given twice (migrate used to keep the last one silently).
TEST(TurnoutBinary, EverySubcommandRefusesFlagsWithTheSameWords) {
  const std::vector<std::vector<std::string>> twice = {
      {"router", "status", "--admin", "127.0.0.1:1", "--admin=127.0.0.1:2"},
      {"migrate", "lint", "--dir", "a", "--dir", "b"},
      {"backup", "list", "--dir", "a", "--dir", "b"},
      {"rehearse", "--migrations", "a", "--migrations", "b"},
  };
  for (const auto& args : twice) {
    Outcome o = Turnout(args);
    EXPECT_EQ(o.code, 2) << args[0] << ": " << o.err;
    EXPECT_NE(o.err.find(" given twice"), std::string::npos) << args[0] << ": " << o.err;
  }
  for (std::string command : {"router", "migrate", "backup", "rehearse"}) {
    std::vector<std::string> args = {command};
    if (command == "router") args.push_back("status");
    if (command == "migrate") args.push_back("lint");
    if (command == "backup") args.push_back("list");
    args.push_back("--bogus");
    Outcome o = Turnout(args);
    EXPECT_EQ(o.code, 2) << command << ": " << o.err;
    EXPECT_NE(o.err.find("unknown flag --bogus"), std::string::npos) << command << ": " << o.err;
  }
}

TEST(TurnoutBinary, UnreachableRouterExitsThree) {
  const std::string closed = ClosedAddress();
  Outcome r = Turnout({"router", "status", "--admin", closed});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot reach the router's admin API at " + closed + ": GET http://" +
                       closed + "/v1/status: connection refused"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("is `turnout router` running? pass --admin"), std::string::npos);
  setenv("TURNOUT_ADMIN", closed.c_str(), 1);  // the environment is honoured too
  EXPECT_EQ(Turnout({"router", "switch", "green"}).code, 3);
  unsetenv("TURNOUT_ADMIN");
}

// Without --admin the router listens on a Unix socket of this user, and the commands that drive
// it find it there; a TCP admin API without a token does not start.
TEST(TurnoutBinary, TheDefaultAdminApiIsAUnixSocketTheCommandsFind) {
  char dir[] = "/tmp/turnout_cli_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  setenv("XDG_RUNTIME_DIR", dir, 1);
  unsetenv("TURNOUT_ADMIN");
  unsetenv("TURNOUT_ADMIN_TOKEN");
  const std::string socket = std::string(dir) + "/turnout/admin.sock";
  {
    Child router({"router", "--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9", "--slot",
                  "green=127.0.0.1:9", "--active", "blue", "--no-health-checks", "--workers", "1"});
    ASSERT_TRUE(router.ReadUntil("stop with Ctrl-C", In(std::chrono::seconds(20))))
        << router.out << router.err;
    EXPECT_NE(router.out.find("admin API on unix:" + socket + "\n"), std::string::npos)
        << router.out;
    struct stat st {};
    ASSERT_EQ(::stat(socket.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((std::string(dir) + "/turnout").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);

    Outcome sw = Turnout({"router", "switch", "green"});
    EXPECT_EQ(sw.code, 0) << sw.err;
    Outcome status = Turnout({"router", "status"});
    EXPECT_EQ(status.code, 0) << status.err;
    EXPECT_NE(status.out.find("policy: active green 100 %"), std::string::npos) << status.out;
  }
  Outcome tcp = Turnout({"router", "--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9",
                         "--admin", "127.0.0.1:0"});
  EXPECT_EQ(tcp.code, 2);
  EXPECT_NE(tcp.err.find("--admin-token: required because the admin API listens on TCP"),
            std::string::npos)
      << tcp.err;
  unsetenv("XDG_RUNTIME_DIR");
  std::filesystem::remove_all(dir);
}

TEST(TurnoutBinary, RunsARouterAndDrivesIt) {
  Child router({"router", "--listen", "127.0.0.1:0", "--slot", "blue=127.0.0.1:9", "--slot",
                "green=127.0.0.1:9", "--active", "blue", "--admin", "127.0.0.1:0", "--admin-token",
                "tkn", "--no-health-checks", "--workers", "1"});
  ASSERT_TRUE(router.ReadUntil("stop with Ctrl-C", In(std::chrono::seconds(20))))
      << router.out << router.err;
  const std::string marker = "admin API on ";
  size_t at = router.out.find(marker);
  ASSERT_NE(at, std::string::npos) << router.out;
  std::string admin = router.out.substr(at + marker.size());
  admin = admin.substr(0, admin.find_first_of(" \n"));
  const std::vector<std::string> remote = {"--admin", admin, "--token", "tkn"};
  auto cmd = [&](std::vector<std::string> args) {
    args.insert(args.end(), remote.begin(), remote.end());
    return Turnout(std::move(args));
  };

  Outcome status = cmd({"router", "status"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("policy: active blue 100 %"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("green  0 %"), std::string::npos) << status.out;

  Outcome no_token = Turnout({"router", "status", "--admin", admin});
  EXPECT_EQ(no_token.code, 1);
  EXPECT_NE(no_token.err.find("401"), std::string::npos) << no_token.err;

  Outcome weight = cmd({"router", "weight", "green", "12.5%"});
  ASSERT_EQ(weight.code, 0) << weight.err;
  EXPECT_NE(weight.out.find("canary: green now receives 12.5 %, blue 87.5 %"), std::string::npos)
      << weight.out;

  Outcome sw = cmd({"router", "switch", "green"});
  ASSERT_EQ(sw.code, 0) << sw.err;
  EXPECT_NE(sw.out.find("switched: green now receives 100 % (generation "), std::string::npos)
      << sw.out;

  Outcome json_status = cmd({"router", "status", "--json"});
  ASSERT_EQ(json_status.code, 0);
  auto j = nlohmann::json::parse(json_status.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json_status.out;
  EXPECT_EQ(j["policy"]["active"], "green");
  EXPECT_TRUE(j["policy"]["canary"].is_null());

  Outcome unknown_slot = cmd({"router", "switch", "red"});
  EXPECT_EQ(unknown_slot.code, 1);
  EXPECT_NE(unknown_slot.err.find("red"), std::string::npos) << unknown_slot.err;

  Outcome drain = cmd({"router", "drain", "blue", "--wait", "--timeout", "10s"});
  EXPECT_EQ(drain.code, 0) << drain.err;
  EXPECT_NE(drain.out.find("blue: drained"), std::string::npos) << drain.out;
  Outcome not_drained = cmd({"router", "drain", "green"});
  EXPECT_EQ(not_drained.code, 1);
  EXPECT_NE(not_drained.err.find("still receives traffic"), std::string::npos);

  Outcome metrics = cmd({"router", "metrics", "--window", "10"});
  EXPECT_EQ(metrics.code, 0) << metrics.err;
  EXPECT_NE(metrics.out.find("last 10 s"), std::string::npos) << metrics.out;

  char dir[] = "/tmp/turnout_cli_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/policy.json";
  std::ofstream(file) << R"({"active":"blue","canary":{"slot":"green","weight":"100.5"}})";
  Outcome bad_policy = cmd({"router", "policy", "--set", file});
  EXPECT_EQ(bad_policy.code, 1);
  EXPECT_NE(bad_policy.err.find("policy.canary.weight"), std::string::npos) << bad_policy.err;
  std::ofstream(file) << R"({"active":"blue"})";
  Outcome good_policy = cmd({"router", "policy", "--set", file});
  EXPECT_EQ(good_policy.code, 0) << good_policy.err;
  EXPECT_NE(good_policy.out.find("policy set: active blue 100 %"), std::string::npos);
  Outcome show = cmd({"router", "policy"});
  EXPECT_EQ(show.code, 0);
  EXPECT_NE(show.out.find("\"active\": \"blue\""), std::string::npos) << show.out;
  std::remove(file.c_str());
  rmdir(dir);

  router.Signal(SIGTERM);
  EXPECT_EQ(router.Wait(In(std::chrono::seconds(20))), 0) << router.err;
  EXPECT_NE(router.out.find("SIGTERM received, stopping"), std::string::npos) << router.out;
  EXPECT_NE(router.out.find("turnout router: stopped"), std::string::npos);
}

// ---- the commands that talk to turnoutd ----------------------------------------------------

TEST(TurnoutBinary, DaemonCommandsHaveHelp) {
  for (const char* cmd :
       {"up", "down", "deploy", "status", "health-check", "switch", "rollback", "approve", "abort",
        "prune", "history", "logs", "audit", "events", "restart", "scale", "set"}) {
    Outcome r = Turnout({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find(std::string("usage: turnout ") + cmd), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes"), std::string::npos) << r.out;
  }
  EXPECT_NE(Turnout({"prune", "--help"}).out.find("--dry-run"), std::string::npos);
  EXPECT_NE(Turnout({"--help"}).out.find("  prune "), std::string::npos);
}

TEST(TurnoutBinary, DaemonCommandsSayWhatToDoWithoutADaemon) {
  char tmpl[] = "/tmp/turnout-cli-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  Outcome none = Turnout({"status", "--config", dir + "/turnout.yaml"});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("turnout init"), std::string::npos) << none.err;
  Outcome down = Turnout({"status", "--socket", dir + "/nothing.sock"});
  EXPECT_EQ(down.code, 3);
  EXPECT_NE(down.err.find("turnout up"), std::string::npos) << down.err;
  EXPECT_EQ(Turnout({"deploy", "--socket", dir + "/x.sock"}).code, 2);  // no VERSION
  EXPECT_EQ(Turnout({"rollback", "--to", "zero", "--socket", dir + "/x.sock"}).code, 2);
  EXPECT_EQ(Turnout({"scale", "--socket", dir + "/x.sock"}).code, 2);  // no N
  EXPECT_EQ(Turnout({"scale", "65", "--socket", dir + "/x.sock"}).code, 2);
  EXPECT_EQ(Turnout({"scale", "0", "--socket", dir + "/x.sock"}).code, 2);
  EXPECT_EQ(Turnout({"restart", "now", "--socket", dir + "/x.sock"}).code, 2);
  EXPECT_EQ(Turnout({"set", "env", "--socket", dir + "/x.sock"}).code, 2);  // nothing to change
  EXPECT_EQ(Turnout({"set", "replicas", "A=1", "--socket", dir + "/x.sock"}).code, 2);
  Outcome no_eq = Turnout({"set", "env", "TOKEN", "--socket", dir + "/x.sock"});
  EXPECT_EQ(no_eq.code, 2);
  EXPECT_NE(no_eq.err.find("NAME=VALUE"), std::string::npos) << no_eq.err;
  rmdir(dir.c_str());
}

// A new directory with a turnout.yaml for the demo app ("shop", no router admin API); returns
// the config's path.
std::string WriteShopConfig() {
  char tmpl[] = "/tmp/turnout-cli-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl), nullptr);
  const std::string cfg = std::string(tmpl) + "/turnout.yaml";
  std::ofstream(cfg) << "name: shop\nlisten: 127.0.0.1:0\nplatform:\n  command: "
                     << TURNOUT_DEMO_APP_BINARY
                     << " --listen 127.0.0.1:{port} --version {version}\n  ports: auto\n"
                     << "health:\n  readiness: {interval: 100ms, timeout: 100ms, "
                        "healthy_threshold: 1}\n  ready_deadline: 3s\n"
                     << "bake_time: 500ms\nscale_down_delay: 500ms\nrouter:\n  admin: \"\"\n";
  return cfg;
}

TEST(TurnoutBinary, UpDeployStatusHistoryAuditDown) {
  const std::string cfg = WriteShopConfig();
  const std::string dir = cfg.substr(0, cfg.rfind('/'));
  Outcome up = Turnout({"up", "--config", cfg});
  ASSERT_EQ(up.code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("turnoutd started for shop"), std::string::npos) << up.out;
  EXPECT_NE(Turnout({"up", "--config", cfg}).out.find("already running"), std::string::npos);

  Outcome v1 = Turnout({"deploy", "v1", "--wait", "--config", cfg});
  EXPECT_EQ(v1.code, 0) << v1.out << v1.err;
  EXPECT_NE(v1.out.find("waiting_ready"), std::string::npos) << v1.out;
  EXPECT_NE(v1.out.find("deployed v1 on blue (revision 1)"), std::string::npos) << v1.out;

  Outcome status = Turnout({"status", "--json", "--config", cfg});
  ASSERT_EQ(status.code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(s.is_discarded()) << status.out;
  EXPECT_EQ(s["active"]["version"], "v1");
  EXPECT_EQ(s["active"]["slot"], "blue");

  Outcome bad = Turnout({"deploy", "v2+fail-ready", "--wait", "--config", cfg});
  EXPECT_EQ(bad.code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("rolled_back"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("users stay on blue"), std::string::npos) << bad.out;

  Outcome history = Turnout({"history", "--config", cfg});
  EXPECT_EQ(history.code, 0);
  EXPECT_NE(history.out.find("v2+fail-ready"), std::string::npos) << history.out;
  Outcome one = Turnout({"history", "2", "--config", cfg});
  EXPECT_EQ(one.code, 0);
  EXPECT_TRUE(std::regex_search(one.out, std::regex("waiting_ready {2,}-> rolling_back")))
      << one.out;

  EXPECT_EQ(Turnout({"health-check", "--config", cfg}).code, 0);
  Outcome logs = Turnout({"logs", "blue", "--config", cfg});
  EXPECT_EQ(logs.code, 0);
  EXPECT_NE(logs.out.find("==> blue-0 (v1"), std::string::npos) << logs.out;
  Outcome audit = Turnout({"audit", "verify", "--config", cfg});
  EXPECT_EQ(audit.code, 0) << audit.out;
  EXPECT_NE(audit.out.find("audit log OK"), std::string::npos) << audit.out;
  EXPECT_EQ(Turnout({"events", "--limit", "3", "--config", cfg}).code, 0);
  // Runbook steps: each a revision of the serving version, in history by kind.
  Outcome restart = Turnout({"restart", "--wait", "--reason", "rotated", "--config", cfg});
  EXPECT_EQ(restart.code, 0) << restart.out << restart.err;
  EXPECT_NE(restart.out.find("restart of v1"), std::string::npos) << restart.out;
  Outcome scale = Turnout({"scale", "2", "--wait", "--config", cfg});
  EXPECT_EQ(scale.code, 0) << scale.out << scale.err;
  Outcome env = Turnout({"set", "env", "POOL=s3cr3t-value", "--wait", "--config", cfg});
  EXPECT_EQ(env.code, 0) << env.out << env.err;
  EXPECT_EQ(env.out.find("s3cr3t-value"), std::string::npos) << env.out;
  Outcome kinds = Turnout({"history", "--config", cfg});
  EXPECT_TRUE(std::regex_search(kinds.out, std::regex(" restart +v1 "))) << kinds.out;
  EXPECT_TRUE(std::regex_search(kinds.out, std::regex(" scale 1->2 +v1 "))) << kinds.out;
  EXPECT_TRUE(std::regex_search(kinds.out, std::regex(" env set POOL +v1 "))) << kinds.out;
  EXPECT_EQ(kinds.out.find("s3cr3t-value"), std::string::npos) << kinds.out;
  Outcome scale_json = Turnout({"scale", "2", "--json", "--config", cfg});
  EXPECT_EQ(scale_json.code, 1) << "already 2: " << scale_json.out << scale_json.err;

  Outcome approve = Turnout({"approve", "--config", cfg});
  EXPECT_EQ(approve.code, 1);
  EXPECT_NE(approve.err.find("no deployment is in progress"), std::string::npos) << approve.err;

  Outcome down = Turnout({"down", "--stop-instances", "--config", cfg});
  EXPECT_EQ(down.code, 0) << down.err;
  // The two of `scale 2` (the env change kept them).
  EXPECT_NE(down.out.find("stopped 2 app instance(s)"), std::string::npos) << down.out;
  EXPECT_EQ(Turnout({"status", "--config", cfg}).code, 3);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// ---- turnout check ---------------------------------------------------------------------------

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/turnout-cli-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

TEST(TurnoutBinary, CheckValidatesWithoutStartingAnything) {
  TempDir dir;
  const std::string cfg = dir.path + "/turnout.yaml";
  std::ofstream(cfg)
      << "name: shop\nlisten: 127.0.0.1:0\nplatform:\n  command: ./app --port {port}\n"
      << "  ports: auto\nrules:\n  - when: error_rate > 5% for 5s\n";
  Outcome ok = Turnout({"check", cfg});
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find(cfg + ": OK, service shop (blue_green, 1 rule(s), 0 hook(s))"),
            std::string::npos)
      << ok.out;
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/.turnout"));  // nothing was started
  EXPECT_EQ(Turnout({"check", "--config", cfg}).code, 0);

  // Every error, each with its line; exit 2.
  std::ofstream(cfg) << "name: shop\nplatform:\n  command: ./app --port {port}\n"
                     << "  grace_period: soon\nbake_time: 1s\nrules:\n"
                     << "  - when: error_rate > 5% for 500ms\nsurprise: 1\n";
  Outcome bad = Turnout({"check", cfg});
  EXPECT_EQ(bad.code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find(cfg + ":4: platform.grace_period"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find(cfg + ":7: "), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("is shorter than the evaluation interval 1s"), std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find(cfg + ":8: "), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("3 error(s); nothing was started"), std::string::npos) << bad.err;

  Outcome json_out = Turnout({"check", cfg, "--json"});
  EXPECT_EQ(json_out.code, 2);
  nlohmann::json j = nlohmann::json::parse(json_out.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json_out.out;
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["errors"].size(), 3u) << j.dump();
  EXPECT_EQ(j["errors"][0]["line"], 4);
  EXPECT_EQ(j["errors"][1]["line"], 7);
  EXPECT_EQ(j["errors"][2]["line"], 8);

  Outcome missing = Turnout({"check", dir.path + "/nothing.yaml"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("turnout init"), std::string::npos) << missing.err;
  Outcome help = Turnout({"check", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("usage: turnout check [FILE]"), std::string::npos) << help.out;
}

TEST(TurnoutBinary, CheckWarnsWhenPortsOverlapTheKernelsEphemeralRange) {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 0, last = 0;
  ASSERT_TRUE(range >> first >> last);
  TempDir dir;
  const std::string cfg = dir.path + "/turnout.yaml";
  std::ofstream(cfg) << "name: shop\nplatform:\n  command: ./app --port {port}\n  ports: " << first
                     << "-" << first + 99 << "\n";
  Outcome r = Turnout({"check", cfg});
  EXPECT_EQ(r.code, 0) << r.err;  // a warning, not an error
  EXPECT_NE(r.err.find("warning: platform.ports " + std::to_string(first) + "-" +
                       std::to_string(first + 99) + " overlaps the kernel's ephemeral port range"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("1 warning(s)"), std::string::npos) << r.out;
  Outcome j = Turnout({"check", cfg, "--json"});
  nlohmann::json parsed = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << j.out;
  EXPECT_EQ(parsed["ok"], true);
  EXPECT_EQ(parsed["warnings"].size(), 1u);
}

// ---- turnout status: the router's admin API ---------------------------------------------------

TEST(TurnoutBinary, StatusReportsTheRoutersAdminAddress) {
  // The reported fault: `"router": {"admin": ""}` while router.admin was set and answering.
  // The ports lie in the kernel's ephemeral range (nothing is deployed here): `up` and
  // turnoutd's log warn about it.
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int first = 0, last = 0;
  ASSERT_TRUE(range >> first >> last);
  TempDir dir;
  const std::string cfg = dir.path + "/turnout.yaml";
  std::ofstream(cfg) << "name: shop\nlisten: 127.0.0.1:0\nplatform:\n  command: "
                     << TURNOUT_DEMO_APP_BINARY
                     << " --listen 127.0.0.1:{port} --version {version}\n  ports: " << first << "-"
                     << first + 99 << "\nrouter:\n  admin: 127.0.0.1:0\n";
  Outcome up = Turnout({"up", "--config", cfg});
  ASSERT_EQ(up.code, 0) << up.out << up.err;
  EXPECT_NE(up.err.find("turnout up: warning: platform.ports"), std::string::npos) << up.err;
  std::ifstream log(dir.path + "/.turnout/turnoutd.log");
  const std::string log_text((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
  EXPECT_NE(log_text.find("warning: platform.ports"), std::string::npos) << log_text;
  Outcome status = Turnout({"status", "--json", "--config", cfg});
  ASSERT_EQ(status.code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(s.is_discarded()) << status.out;
  const std::string admin = s["router"].value("admin", "");
  EXPECT_EQ(admin.rfind("127.0.0.1:", 0), 0u) << status.out;
  EXPECT_NE(admin, "127.0.0.1:0");
  if (!admin.empty()) {
    // It answers there, with the token turnoutd generated for it.
    std::ifstream token_file(dir.path + "/.turnout/router-admin.token");
    std::string token;
    std::getline(token_file, token);
    Result<std::unique_ptr<router::AdminClient>> client =
        router::AdminClient::Create(admin, token, std::chrono::milliseconds(5000));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    EXPECT_TRUE((*client)->GetStatus().ok());
  }
  Outcome human = Turnout({"status", "--config", cfg});
  EXPECT_NE(human.out.find("admin API " + admin), std::string::npos) << human.out;
  // The router process outlives turnoutd unless it is stopped with the instances.
  EXPECT_EQ(Turnout({"down", "--stop-instances", "--config", cfg}).code, 0);
}

// The authorization matrix of turnoutd's TCP API: a real daemon with --api and a token, every
// endpoint of its API (daemon.cc routes them in code, so they are listed here) times six kinds
// of request. The refused cells must be refused with their status and change nothing; the
// right-token cells must get past the checks to the handler (whose own answer, e.g. 400 for a
// deploy without a version, is not the matrix's business).
TEST(TurnoutBinary, DaemonApiAuthorizationMatrix) {
  const std::string cfg = WriteShopConfig();
  const std::string dir = cfg.substr(0, cfg.rfind('/'));
  Child daemon({"--config", cfg, "--api", "127.0.0.1:0", "--token", "d-tkn"}, TURNOUTD_BINARY);
  // stderr carries the log; the ready line names the TCP address.
  const std::string marker = " and 127.0.0.1:";
  for (int i = 0; i < 200 && daemon.err.find(marker) == std::string::npos; ++i) {
    daemon.ReadUntil("\x01", In(std::chrono::milliseconds(100)));
  }
  const size_t at = daemon.err.find(marker);
  ASSERT_NE(at, std::string::npos) << daemon.err;
  std::string api = daemon.err.substr(at + 5);
  api = api.substr(0, api.find_first_of(" \n"));
  const std::string foreign_host = "rebind.evil.example" + api.substr(api.rfind(':'));

  struct Endpoint {
    const char* method;
    const char* target;
  };
  const Endpoint endpoints[] = {
      {"GET", "/healthz"},
      {"GET", "/v1/status"},
      {"GET", "/v1/deployments"},
      {"GET", "/v1/deployments/1"},
      {"GET", "/v1/health"},
      {"GET", "/v1/slo"},
      {"GET", "/v1/logs"},
      {"GET", "/v1/audit"},
      {"GET", "/v1/audit/verify"},
      {"GET", "/v1/events"},
      {"POST", "/v1/deploy"},
      {"POST", "/v1/rollback"},
      {"POST", "/v1/switch"},
      {"POST", "/v1/approve"},
      {"POST", "/v1/abort"},
      {"POST", "/v1/stop-instances"},
      {"POST", "/v1/pause"},
      {"POST", "/v1/resume"},
      {"POST", "/v1/promote"},
      {"POST", "/v1/audit/acknowledge"},
      {"GET", "/v1/secrets"},
      {"POST", "/v1/secrets/rotate"},
      {"POST", "/v1/secrets/drop-previous"},
  };
  enum Kind {
    kNoCredentials,
    kWrongToken,
    kRightToken,
    kCrossSiteOrigin,
    kForeignHost,
    kTextPlain
  };
  const char* kKindNames[] = {"no credentials",
                              "wrong token",
                              "right token",
                              "right token + cross-site Origin",
                              "right token + foreign Host",
                              "right token + text/plain"};
  auto send = [&](const Endpoint& e, Kind kind) {
    const bool post = std::string_view(e.method) == "POST";
    const std::string body = post ? "{}" : "";
    std::string req = std::string(e.method) + " " + e.target +
                      " HTTP/1.1\r\nHost: " + (kind == kForeignHost ? foreign_host : api) +
                      "\r\nConnection: close\r\n";
    if (kind == kWrongToken) req += "Authorization: Bearer guess\r\n";
    if (kind >= kRightToken) req += "Authorization: Bearer d-tkn\r\n";
    if (kind == kCrossSiteOrigin) req += "Origin: http://evil.example\r\n";
    req +=
        kind == kTextPlain ? "Content-Type: text/plain\r\n" : "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return router::testing::FetchOnce(api, req, e.method);
  };
  // The status each refused cell must get; 0 = the checks let it through to the handler.
  auto expected = [](const Endpoint& e, Kind kind) {
    switch (kind) {
      case kNoCredentials:
      case kWrongToken:
        return 401;
      case kCrossSiteOrigin:
        return 403;
      case kForeignHost:
        return 421;
      case kTextPlain:
        return std::string_view(e.method) == "POST" ? 415 : 0;
      case kRightToken:
        return 0;
    }
    return -1;
  };
  const std::set<int> kCheckStatuses = {401, 403, 415, 421};

  auto status_json = [&] {
    router::testing::RawResponse r = send({"GET", "/v1/status"}, kRightToken);
    EXPECT_EQ(r.status, 200) << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_discarded() ? std::string() : j.dump();
  };
  const std::string before = status_json();
  int cells = 0;
  int unexpected_allows = 0;
  auto run = [&](Kind kind) {
    for (const Endpoint& e : endpoints) {
      router::testing::RawResponse r = send(e, kind);
      ++cells;
      const int want = expected(e, kind);
      if (want != 0) {
        EXPECT_EQ(r.status, want) << e.method << " " << e.target << " with " << kKindNames[kind]
                                  << ": " << r.body;
        if (r.status >= 200 && r.status < 300) ++unexpected_allows;
      } else {
        EXPECT_TRUE(r.status >= 200 && r.status < 500 && kCheckStatuses.count(r.status) == 0)
            << e.method << " " << e.target << " with " << kKindNames[kind] << ": " << r.status
            << " " << r.body;
      }
    }
  };
  for (Kind kind : {kNoCredentials, kWrongToken, kCrossSiteOrigin, kForeignHost, kTextPlain}) {
    run(kind);
  }
  EXPECT_EQ(status_json(), before);  // nothing refused changed anything
  run(kRightToken);
  EXPECT_EQ(cells, 6 * static_cast<int>(std::size(endpoints)));
  EXPECT_EQ(unexpected_allows, 0);

  // The router process turnoutd runs outlives a SIGTERM of turnoutd: stop it first.
  const std::string stop_body = R"({"router":true})";
  router::testing::RawResponse stopped =
      router::testing::FetchOnce(api,
                                 "POST /v1/stop-instances HTTP/1.1\r\nHost: " + api +
                                     "\r\nConnection: close\r\nAuthorization: Bearer d-tkn\r\n"
                                     "Content-Type: application/json\r\nContent-Length: " +
                                     std::to_string(stop_body.size()) + "\r\n\r\n" + stop_body,
                                 "POST");
  EXPECT_EQ(stopped.status, 200) << stopped.body;
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(In(std::chrono::seconds(20))), 0) << daemon.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace turnout::cli
