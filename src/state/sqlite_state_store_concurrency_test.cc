// Concurrent writers: threads sharing one store, and threads with a store (connection) each on
// the same file. The chain must stay valid, seqs contiguous, and the per-service lock exclusive.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "state/sqlite_state_store.h"
#include "state/test_util.h"

namespace turnout::state {
namespace {

using testing::TempDir;

constexpr int kThreads = 2;
constexpr int kPerThread = 60;

std::unique_ptr<SqliteStateStore> OpenAt(const std::string& path, const Clock* clock) {
  return testing::OpenTestStore(path, clock, /*busy_timeout_ms=*/30000);
}

// Each thread runs whole deployments on its own service and appends free-form audit entries.
void Work(StateStore* store, int thread, std::atomic<int>* failures) {
  const std::string service = "svc" + std::to_string(thread);
  for (int i = 0; i < kPerThread; ++i) {
    if (!store->AppendAudit({"t" + std::to_string(thread), "test.event", service, "{}"}).ok()) {
      ++*failures;
    }
    if (i % 10 != 0) continue;
    DeploymentSpec spec;
    spec.service = service;
    spec.version = "v" + std::to_string(i);
    spec.target_slot = "green";
    spec.started_by = "thread " + std::to_string(thread);
    auto dep = store->BeginDeployment(spec);
    if (!dep.ok()) {
      ++*failures;
      continue;
    }
    if (!store
             ->RecordTransition(dep->id, DeploymentState::kPending, DeploymentState::kLaunching, "")
             .ok() ||
        !store->FinishDeployment(dep->id, DeploymentState::kSucceeded, "").ok()) {
      ++*failures;
    }
  }
}

void ExpectChainValid(StateStore& store, int64_t expected_entries) {
  auto report = store.VerifyAudit();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_EQ(report->entries, expected_entries);
  EXPECT_EQ(report->last_seq, expected_entries);
}

// Audit entries per thread: kPerThread free ones + 3 for each of the kPerThread/10 deployments.
constexpr int64_t kEntriesPerThread = kPerThread + 3 * (kPerThread / 10);

TEST(StateConcurrencyTest, ThreadsSharingOneStoreKeepTheChainValid) {
  TempDir dir;
  ManualClock clock;
  auto store = OpenAt(dir.File("turnout.db"), &clock);
  ASSERT_NE(store, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(Work, store.get(), t, &failures);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectChainValid(*store, kThreads * kEntriesPerThread);
}

TEST(StateConcurrencyTest, SeparateConnectionsOnOneFileKeepTheChainValid) {
  TempDir dir;
  ManualClock clock;
  const std::string path = dir.File("turnout.db");
  std::vector<std::unique_ptr<SqliteStateStore>> stores;
  for (int t = 0; t < kThreads; ++t) {
    stores.push_back(OpenAt(path, &clock));
    ASSERT_NE(stores.back(), nullptr);
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(Work, stores[t].get(), t, &failures);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectChainValid(*stores[0], kThreads * kEntriesPerThread);
  // Whichever connection anchored last, the anchor never went past the table.
  auto report = stores[1]->VerifyAudit();
  ASSERT_TRUE(report.ok());
  EXPECT_LE(report->head_seq, report->last_seq);
}

TEST(StateConcurrencyTest, RacingBeginsOnOneServiceAdmitExactlyOne) {
  TempDir dir;
  ManualClock clock;
  const std::string path = dir.File("turnout.db");
  constexpr int kRounds = 20;
  std::vector<std::unique_ptr<SqliteStateStore>> stores;
  for (int t = 0; t < kThreads; ++t) {
    stores.push_back(OpenAt(path, &clock));
    ASSERT_NE(stores.back(), nullptr);
  }
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> admitted{0};
    std::atomic<int> refused{0};
    std::atomic<int64_t> winner{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        DeploymentSpec spec;
        spec.service = "web";
        spec.version = "r" + std::to_string(round) + "t" + std::to_string(t);
        spec.target_slot = "green";
        spec.started_by = "thread " + std::to_string(t);
        auto dep = stores[t]->BeginDeployment(spec);
        if (dep.ok()) {
          ++admitted;
          winner = dep->id;
        } else if (dep.status().code() == StatusCode::kAlreadyExists) {
          ++refused;
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(admitted.load(), 1) << "round " << round;
    ASSERT_EQ(refused.load(), kThreads - 1) << "round " << round;
    ASSERT_TRUE(stores[0]->FinishDeployment(winner, DeploymentState::kSucceeded, "").ok());
  }
  auto history = stores[0]->History("web", 0);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), static_cast<size_t>(kRounds));
  std::set<int64_t> revisions;
  for (const Deployment& d : *history) revisions.insert(d.revision);
  EXPECT_EQ(revisions.size(), static_cast<size_t>(kRounds));
  EXPECT_EQ(*revisions.begin(), 1);
  EXPECT_EQ(*revisions.rbegin(), kRounds);
}

}  // namespace
}  // namespace turnout::state
