#include "platform/run.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace turnout::platform {
namespace {

using namespace std::chrono_literals;

RunResult RunOk(const RunSpec& spec) {
  Result<RunResult> r = RunCommand(spec);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RunResult{};
}

RunSpec Argv(std::vector<std::string> argv) {
  RunSpec spec;
  spec.argv = std::move(argv);
  return spec;
}

RunResult Sh(const std::string& script) { return RunOk(Argv({"sh", "-c", script})); }

// True once no process has the id `pid` any more (a killed orphan is reaped by init, which takes
// a moment); false when it still exists after 5 s.
bool GoneWithin5s(pid_t pid_or_negative_group) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::kill(pid_or_negative_group, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST(RunCommandTest, ReportsTheExitCode) {
  RunResult r = Sh("exit 3");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.term_signal);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "exited with code 3");
  EXPECT_TRUE(Sh("exit 0").ok());
}

TEST(RunCommandTest, ReportsTheSignalThatEndedIt) {
  RunResult r = Sh("kill -KILL $$");
  EXPECT_FALSE(r.exit_code);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "killed by signal 9 (Killed)");
}

TEST(RunCommandTest, TimeoutKillsTheWholeProcessGroup) {
  // The background sleep is what a plain kill of the shell would leave behind.
  RunSpec spec = Argv({"sh", "-c", "sleep 100 & echo $$ $!; sleep 100"});
  spec.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  RunResult r = RunOk(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.Describe(), "timed out after 300 ms");
  std::istringstream pids(r.output);
  pid_t shell = 0, background = 0;
  pids >> shell >> background;
  ASSERT_GT(shell, 0) << r.output;
  ASSERT_GT(background, 0) << r.output;
  EXPECT_TRUE(GoneWithin5s(background));
  EXPECT_TRUE(GoneWithin5s(-shell));  // the group (sid == pgid == the shell's pid) is empty
}

TEST(RunCommandTest, TimeoutEscalatesToSigkillAfterTheGrace) {
  // SIG_IGN is inherited across exec: neither the shell nor its sleep stops on SIGTERM.
  RunSpec spec = Argv({"sh", "-c", "trap '' TERM; sleep 100 & echo $!; sleep 100"});
  spec.timeout = 200ms;
  spec.kill_grace = 300ms;
  const auto start = std::chrono::steady_clock::now();
  RunResult r = RunOk(spec);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  const pid_t background = std::atoi(r.output.c_str());
  ASSERT_GT(background, 0) << r.output;
  EXPECT_TRUE(GoneWithin5s(background));
}

TEST(RunCommandTest, CapturesStdoutAndStderrInWriteOrder) {
  RunResult r = Sh("echo one; echo two >&2; echo three");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output, "one\ntwo\nthree\n");
  EXPECT_EQ(r.output_dropped, 0u);
}

TEST(RunCommandTest, KeepsTheFirstBytesAndCountsTheRest) {
  RunSpec spec = Argv({"head", "-c", "100000", "/dev/zero"});
  spec.max_output_bytes = 1000;
  RunResult r = RunOk(spec);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output.size(), 1000u);
  EXPECT_EQ(r.output_dropped, 99000u);
}

TEST(RunCommandTest, AddsEnvironmentLaterEntriesWin) {
  ASSERT_NE(::getenv("PATH"), nullptr);
  RunSpec spec = Argv({"sh", "-c", "echo \"$TURNOUT_RUN_A|$TURNOUT_RUN_B|${PATH:+path}\""});
  spec.env = {{"TURNOUT_RUN_A", "first"}, {"TURNOUT_RUN_B", "x y"}, {"TURNOUT_RUN_A", "second"}};
  RunResult r = RunOk(spec);
  EXPECT_EQ(r.output, "second|x y|path\n");
}

TEST(RunCommandTest, RunsInTheWorkingDirectory) {
  std::string dir = ::testing::TempDir() + "/run_test_XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir.c_str(), real), nullptr);
  RunSpec spec = Argv({"pwd", "-P"});
  spec.working_dir = dir;
  RunResult r = RunOk(spec);
  EXPECT_EQ(r.output, std::string(real) + "\n");

  spec.working_dir = dir + "/nope";
  Result<RunResult> missing = RunCommand(spec);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nope"), std::string::npos);
  ::rmdir(dir.c_str());
}

TEST(RunCommandTest, WritesStdinDataThenClosesIt) {
  RunSpec spec = Argv({"cat"});
  spec.stdin_data = "hello\nworld";
  RunResult r = RunOk(spec);
  EXPECT_EQ(r.output, "hello\nworld");
  // More than any pipe buffer, written while the output is read.
  spec = Argv({"wc", "-c"});
  spec.stdin_data = std::string(3 << 20, 'x');
  RunResult big = RunOk(spec);
  EXPECT_EQ(std::atoi(big.output.c_str()), 3 << 20);
  // A command that never reads its stdin: no SIGPIPE kills the caller.
  spec.argv = {"true"};
  RunResult ignores = RunOk(spec);
  EXPECT_TRUE(ignores.ok());
  // Without stdin_data, stdin is /dev/null: cat ends at once.
  spec = Argv({"cat"});
  spec.timeout = 5s;
  EXPECT_TRUE(RunOk(spec).ok());
}

TEST(RunCommandTest, MissingOrNonExecutableProgramIsNotFound) {
  Result<RunResult> r = RunCommand(Argv({"turnout-no-such-program-here", "x"}));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("turnout-no-such-program-here"), std::string::npos);

  r = RunCommand(Argv({"./turnout/no/such/path"}));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);

  std::string file = ::testing::TempDir() + "/run_test_not_executable";
  std::ofstream(file) << "#!/bin/sh\necho hi\n";
  ::chmod(file.c_str(), 0644);
  r = RunCommand(Argv({file}));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("not executable"), std::string::npos);
  ::unlink(file.c_str());

  EXPECT_EQ(RunCommand({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RunCommandTest, ClosesTheCallersOtherDescriptors) {
  const int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(leaked, 3);
  RunResult r = Sh("ls /proc/$$/fd");
  ::close(leaked);
  EXPECT_EQ(r.output, "0\n1\n2\n");
}

TEST(RunCommandTest, ParallelCallsGetTheirOwnResultsAndLeaveOtherChildrenAlone) {
  // A child of the caller that RunCommand must not reap.
  pid_t other = 0;
  char* const sleep_argv[] = {const_cast<char*>("sleep"), const_cast<char*>("0.5"), nullptr};
  ASSERT_EQ(posix_spawnp(&other, "sleep", nullptr, nullptr, sleep_argv, environ), 0);

  constexpr int kThreads = 8;
  std::vector<RunResult> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &results] {
      RunSpec spec = Argv({"sh", "-c", "echo thread $0; exit $0", std::to_string(t)});
      spec.timeout = 10s;
      Result<RunResult> r = RunCommand(spec);
      if (r.ok()) results[t] = *r;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(results[t].exit_code, t);
    EXPECT_EQ(results[t].output, "thread " + std::to_string(t) + "\n");
  }
  int status = 0;
  ASSERT_EQ(::waitpid(other, &status, 0), other);
  EXPECT_TRUE(WIFEXITED(status));
}

TEST(RunResultTest, TailKeepsTheLastLines) {
  RunResult r;
  r.output = "a\nb\nc\n";
  EXPECT_EQ(r.Tail(2), "b\nc");
  EXPECT_EQ(r.Tail(10), "a\nb\nc");
  EXPECT_EQ(r.Tail(0), "");
  r.output = "single";
  EXPECT_EQ(r.Tail(1), "single");
  r.output = "";
  EXPECT_EQ(r.Tail(3), "");
  r.timed_out = true;
  r.timeout = 5000ms;
  EXPECT_EQ(r.Describe(), "timed out after 5 s");
}

}  // namespace
}  // namespace turnout::platform
