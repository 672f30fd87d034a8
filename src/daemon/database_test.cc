// DatabasePhases without a database server: what is decided before any connection is made.
// (The phases against a real PostgreSQL are in daemon_test, DaemonDatabaseTest.)

#include "daemon/database.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "controller/deployment_spec.h"
#include "state/sqlite_state_store.h"

namespace turnout::daemon {
namespace {

class DatabasePhasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "/database_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    state::SqliteStateStoreOptions so;
    so.path = dir_ + "/state.db";
    auto store = state::SqliteStateStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A deployment of `platform` recorded with its spec, as the engine saves it.
  state::Deployment Recorded(const std::string& platform) {
    state::DeploymentSpec row;
    row.service = "shop";
    row.version = "v2";
    row.target_slot = "blue";
    row.started_by = "database_test";
    Result<state::Deployment> d = store_->BeginDeployment(row);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    controller::DeploymentSpec spec;
    spec.service = "shop";
    spec.version = "v2";
    spec.command = "app --port {port}";
    spec.platform = platform;
    EXPECT_TRUE(
        store_->PutSetting("controller.spec." + std::to_string(d->id), controller::EncodeSpec(spec))
            .ok());
    return *d;
  }

  // Polls `phase` until it is no longer running (bounded: 10 s).
  controller::PhaseStatus PollToEnd(DatabasePhases& phases, const state::Deployment& d,
                                    const std::string& phase) {
    controller::PhaseStatus s;
    for (int i = 0; i < 1000; ++i) {
      s = phases.Poll(controller::PhaseRequest{&d, phase});
      if (s.kind != controller::PhaseStatus::Kind::kRunning) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << phase << " still running: " << s.detail;
    return s;
  }

  std::string dir_;
  std::unique_ptr<state::SqliteStateStore> store_;
};

// `database.tool: command` runs the app's tool as a process in the version's working directory;
// with `platform.type: container` that directory is inside an image, so the tool is refused,
// saying what to do instead, before it runs (and before any connection to the database).
TEST_F(DatabasePhasesTest, TheAppsToolIsRefusedForContainersSayingWhatToDoInstead) {
  DatabaseSettings ds;
  ds.url = "postgresql://127.0.0.1:1/none";
  ds.tool_up = "./migrate up";
  ds.tool_status = "./migrate status";
  DatabasePhases phases(ds, *store_, nullptr);
  const state::Deployment d = Recorded("container");
  controller::PhaseStatus s = PollToEnd(phases, d, "after_retire");
  EXPECT_EQ(s.kind, controller::PhaseStatus::Kind::kFailed);
  EXPECT_NE(s.detail.find("with containers it is not supported yet: use the SQL migrations "
                          "(remove tool, up, status and down) or run the tool yourself before "
                          "`turnout deploy`"),
            std::string::npos)
      << s.detail;
  // Recorded as the phase's step, failed.
  auto steps = store_->Steps(d.id);
  ASSERT_TRUE(steps.ok());
  bool recorded = false;
  for (const auto& step : *steps) {
    recorded |= step.step == "database:contract" && step.outcome == state::StepOutcome::kFailed;
  }
  EXPECT_TRUE(recorded);
}

}  // namespace
}  // namespace turnout::daemon
