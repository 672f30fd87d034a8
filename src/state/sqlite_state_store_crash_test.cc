// kill -9 at a random moment: a child process writes deployments, transitions and audit entries
// in a loop and acknowledges each returned write on a pipe; the parent kills it after a random
// number of acknowledgements (so the child is usually in the middle of the next write), then
// reopens the store and checks that everything acknowledged is there, that the chain verifies,
// and that no write is half-applied (deployment state, transition row and audit entry agree).

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "common/clock.h"
#include "state/sqlite_state_store.h"
#include "state/test_util.h"

namespace turnout::state {
namespace {

using testing::TempDir;

constexpr char kAckBegin = 'B';
constexpr char kAckTransition = 'T';
constexpr char kAckAudit = 'A';
constexpr int kChildMaxOps = 100000;  // the child stops by itself if never killed

const std::vector<DeploymentState> kPath = {
    DeploymentState::kPending,      DeploymentState::kPreChecks,    DeploymentState::kLaunching,
    DeploymentState::kWaitingReady, DeploymentState::kSmokeTesting, DeploymentState::kSwitching,
    DeploymentState::kBaking,       DeploymentState::kScalingDown,  DeploymentState::kSucceeded,
};

void Ack(int fd, char what) {
  while (::write(fd, &what, 1) < 0 && errno == EINTR) {
  }
}

// The child's loop. Never returns.
[[noreturn]] void ChildMain(const std::string& path, int ack_fd) {
  ManualClock clock;
  SqliteStateStoreOptions options;
  options.path = path;
  options.clock = &clock;
  auto opened = SqliteStateStore::Open(options);
  if (!opened.ok()) ::_exit(2);
  std::unique_ptr<SqliteStateStore> store = std::move(opened).value();
  // Resume like a restarted controller: an interrupted deployment is rolled back.
  auto active = store->ActiveDeployment("web");
  if (!active.ok()) ::_exit(3);
  if (active->has_value()) {
    if (!store->FinishDeployment((*active)->id, DeploymentState::kRolledBack, "resumed").ok()) {
      ::_exit(4);
    }
    Ack(ack_fd, kAckTransition);
  }
  int ops = 0;
  for (int n = 0; ops < kChildMaxOps; ++n) {
    DeploymentSpec spec;
    spec.service = "web";
    spec.version = "v" + std::to_string(n);
    spec.target_slot = n % 2 == 0 ? "green" : "blue";
    spec.started_by = "crash-test pid " + std::to_string(::getpid());
    auto dep = store->BeginDeployment(spec);
    if (!dep.ok()) ::_exit(5);
    Ack(ack_fd, kAckBegin);
    for (size_t i = 1; i < kPath.size(); ++i, ++ops) {
      clock.Advance(std::chrono::milliseconds(10));
      if (!store->RecordTransition(dep->id, kPath[i - 1], kPath[i], "step").ok()) ::_exit(6);
      Ack(ack_fd, kAckTransition);
      if (!store->AppendAudit({"crash-test", "test.event", "web", R"({"n":1})"}).ok()) {
        ::_exit(7);
      }
      Ack(ack_fd, kAckAudit);
    }
  }
  ::_exit(0);
}

struct Acked {
  int begins = 0;
  int transitions = 0;
  int audits = 0;
};

// Reads `count` acknowledgements (or fewer if the child exits), bounded by a deadline.
void ReadAcks(int fd, int count, Acked* acked) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int got = 0;
  while (got < count && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    char buf[64];
    ssize_t n = ::read(fd, buf, std::min<size_t>(sizeof(buf), static_cast<size_t>(count - got)));
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == kAckBegin) ++acked->begins;
      if (buf[i] == kAckTransition) ++acked->transitions;
      if (buf[i] == kAckAudit) ++acked->audits;
    }
    got += static_cast<int>(n);
  }
}

TEST(StateCrashTest, KillNineAtRandomMomentsLeavesWholeWritesOnly) {
  TempDir dir;
  const std::string path = dir.File("turnout.db");
  std::random_device rd;
  const unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> acks_before_kill(1, 40);

  Acked total;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ChildMain(path, fds[1]);
    }
    ::close(fds[1]);
    ReadAcks(fds[0], acks_before_kill(rng), &total);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ::close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "child exited by itself with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
        << " in round " << round;

    SqliteStateStoreOptions options;
    options.path = path;
    auto opened = SqliteStateStore::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto& store = *opened;

    auto report = store->VerifyAudit();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(report->ok()) << report->ToString() << " (round " << round << ")";
    EXPECT_LE(report->head_lag, 1);

    auto history = store->History("web", 0);
    ASSERT_TRUE(history.ok());
    auto audit = store->ReadAudit(0, 0);
    ASSERT_TRUE(audit.ok());
    int transitions = 0;
    int active = 0;
    for (const Deployment& d : *history) {
      auto ts = store->Transitions(d.id);
      ASSERT_TRUE(ts.ok());
      transitions += static_cast<int>(ts->size());
      DeploymentState last = ts->empty() ? DeploymentState::kPending : ts->back().to;
      EXPECT_EQ(d.state, last) << "deployment " << d.id;
      EXPECT_EQ(d.finished_at.has_value(), IsTerminal(d.state)) << "deployment " << d.id;
      if (!IsTerminal(d.state)) ++active;
      for (const Transition& t : *ts) {
        ASSERT_GE(t.audit_seq, 1);
        ASSERT_LE(t.audit_seq, static_cast<int64_t>(audit->size()));
        auto detail = nlohmann::json::parse((*audit)[t.audit_seq - 1].detail_json, nullptr, false);
        ASSERT_FALSE(detail.is_discarded());
        EXPECT_EQ(detail.value("deployment", int64_t{0}), d.id);
        EXPECT_EQ(detail.value("to", std::string()), DeploymentStateName(t.to));
      }
    }
    EXPECT_LE(active, 1);
    int free_audits = 0;
    for (const AuditEntry& e : *audit) free_audits += e.action == "test.event" ? 1 : 0;
    // Everything acknowledged is durable; at most the one write in flight went further.
    EXPECT_GE(static_cast<int>(history->size()), total.begins);
    EXPECT_LE(static_cast<int>(history->size()), total.begins + 1);
    EXPECT_GE(transitions, total.transitions);
    EXPECT_LE(transitions, total.transitions + 1);
    EXPECT_GE(free_audits, total.audits);
    EXPECT_LE(free_audits, total.audits + 1);
    // Count what actually committed, so the next round's bounds start from the truth.
    total.begins = static_cast<int>(history->size());
    total.transitions = transitions;
    total.audits = free_audits;
  }
}

}  // namespace
}  // namespace turnout::state
