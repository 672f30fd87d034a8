#include "state/sqlite_state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "common/clock.h"
#include "state/test_util.h"

namespace turnout::state {
namespace {

using ::testing::HasSubstr;
using testing::RawExec;
using testing::RawTry;
using testing::TempDir;

class StateStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStateStore> OpenStore() { return testing::OpenTestStore(path_, &clock_); }

  DeploymentSpec Spec(std::string version, std::string slot = "green") {
    DeploymentSpec spec;
    spec.service = "web";
    spec.version = std::move(version);
    spec.config_hash = "cfg-" + spec.version;
    spec.target_slot = std::move(slot);
    spec.previous_slot = "blue";
    spec.started_by = "alice@host pid 42";
    return spec;
  }

  TempDir dir_;
  std::string path_ = dir_.File("state/turnout.db");
  ManualClock clock_;
};

int Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 0777);
}

TEST_F(StateStoreTest, CreatesPrivateFilesWithCurrentSchemaAndReopens) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutService("web", "cfg-1").ok());
  }
  EXPECT_EQ(Mode(dir_.File("state")), 0700);
  EXPECT_EQ(Mode(path_), 0600);
  EXPECT_EQ(Mode(path_ + ".audit-head"), 0600);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), SqliteStateStore::SchemaVersion());
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);

  auto reopened = OpenStore();
  ASSERT_NE(reopened, nullptr);
  auto service = reopened->GetService("web");
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  EXPECT_EQ(service->config_hash, "cfg-1");
  EXPECT_EQ(service->updated_at, clock_.WallNow());
  auto report = reopened->VerifyAudit();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_EQ(report->entries, 1);
}

TEST_F(StateStoreTest, RefusesDatabaseFromNewerTurnout) {
  { ASSERT_NE(OpenStore(), nullptr); }
  RawExec(path_, "PRAGMA user_version = " + std::to_string(SqliteStateStore::SchemaVersion() + 1));
  SqliteStateStoreOptions options;
  options.path = path_;
  options.clock = &clock_;
  auto store = SqliteStateStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("newer turnout"));
}

TEST_F(StateStoreTest, RefusesFileThatIsNotADatabase) {
  ASSERT_EQ(::mkdir(dir_.File("state").c_str(), 0700), 0);
  FILE* f = ::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ::fputs("this is not a database, just some text long enough to have a header page\n", f);
  ::fclose(f);
  SqliteStateStoreOptions options;
  options.path = path_;
  auto store = SqliteStateStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(StateStoreTest, OneActiveDeploymentPerServiceNamesTheRunningOne) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto first = store->BeginDeployment(Spec("v1"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->revision, 1);
  EXPECT_EQ(first->state, DeploymentState::kPending);
  EXPECT_EQ(first->started_by, "alice@host pid 42");

  DeploymentSpec second_spec = Spec("v2");
  second_spec.started_by = "bob@other pid 7";
  auto second = store->BeginDeployment(second_spec);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(),
              HasSubstr("deployment #" + std::to_string(first->id) +
                        " (revision 1, version v1, state pending, started by alice@host pid 42)"));

  // Another service is not blocked.
  DeploymentSpec other = Spec("v9");
  other.service = "api";
  auto other_dep = store->BeginDeployment(other);
  ASSERT_TRUE(other_dep.ok()) << other_dep.status().ToString();
  EXPECT_EQ(other_dep->revision, 1);

  ASSERT_TRUE(store->FinishDeployment(first->id, DeploymentState::kFailed, "boom").ok());
  auto third = store->BeginDeployment(second_spec);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->revision, 2);
}

TEST_F(StateStoreTest, ThePartialUniqueIndexHoldsEvenAgainstADirectInsert) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->BeginDeployment(Spec("v1")).ok());
  std::string error;
  EXPECT_NE(RawTry(path_,
                   "INSERT INTO deployments (service, revision, version, config_hash, "
                   "target_slot, previous_slot, strategy, started_by, state, reason, created_ns, "
                   "updated_ns) VALUES ('web', 99, 'x', '', 'green', '', 's', 'u', 'baking', '', "
                   "0, 0)",
                   &error),
            SQLITE_OK);
  EXPECT_THAT(error, HasSubstr("UNIQUE"));
}

TEST_F(StateStoreTest, CrashWithoutFinishingLeavesTheDeploymentToResume) {
  int64_t id = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto dep = store->BeginDeployment(Spec("v1"));
    ASSERT_TRUE(dep.ok());
    id = dep->id;
    ASSERT_TRUE(
        store->RecordTransition(id, DeploymentState::kPending, DeploymentState::kLaunching, "go")
            .ok());
    ASSERT_TRUE(store
                    ->RecordTransition(id, DeploymentState::kLaunching,
                                       DeploymentState::kWaitingReady, "2 instances started")
                    .ok());
    // The store goes away without FinishDeployment, as a killed daemon would.
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto active = store->ActiveDeployment("web");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->id, id);
  EXPECT_EQ((*active)->state, DeploymentState::kWaitingReady);
  EXPECT_EQ((*active)->reason, "2 instances started");
  auto all = store->ActiveDeployments();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, id);

  // The lock is the row: still held after the restart...
  EXPECT_EQ(store->BeginDeployment(Spec("v2")).status().code(), StatusCode::kAlreadyExists);
  // ...until the resumed controller finishes it.
  ASSERT_TRUE(store
                  ->RecordTransition(id, DeploymentState::kWaitingReady,
                                     DeploymentState::kRollingBack, "restarted mid-deploy")
                  .ok());
  ASSERT_TRUE(store->FinishDeployment(id, DeploymentState::kRolledBack, "rolled back").ok());
  auto none = store->ActiveDeployment("web");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_TRUE(store->BeginDeployment(Spec("v2")).ok());
}

TEST_F(StateStoreTest, TransitionsAreCompareAndSetAndRecordedInOrderWithAudit) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto dep = store->BeginDeployment(Spec("v1"));
  ASSERT_TRUE(dep.ok());
  const std::vector<DeploymentState> path = {
      DeploymentState::kPending,      DeploymentState::kPreChecks,    DeploymentState::kLaunching,
      DeploymentState::kWaitingReady, DeploymentState::kSmokeTesting, DeploymentState::kSwitching,
      DeploymentState::kBaking,       DeploymentState::kScalingDown,
  };
  for (size_t i = 1; i < path.size(); ++i) {
    clock_.Advance(std::chrono::seconds(1));
    auto moved =
        store->RecordTransition(dep->id, path[i - 1], path[i], "step " + std::to_string(i));
    ASSERT_TRUE(moved.ok()) << moved.status().ToString();
    EXPECT_EQ(moved->state, path[i]);
    EXPECT_FALSE(moved->finished_at.has_value());
  }
  // A stale `from` is refused and changes nothing.
  auto stale = store->RecordTransition(dep->id, DeploymentState::kBaking,
                                       DeploymentState::kRollingBack, "late");
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("state scaling_down"));
  EXPECT_EQ(store
                ->RecordTransition(dep->id, DeploymentState::kScalingDown,
                                   DeploymentState::kScalingDown, "same")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->FinishDeployment(dep->id, DeploymentState::kBaking, "x").status().code(),
            StatusCode::kInvalidArgument);

  clock_.Advance(std::chrono::seconds(1));
  auto done = store->FinishDeployment(dep->id, DeploymentState::kSucceeded, "all good");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_TRUE(done->finished_at.has_value());
  EXPECT_EQ(*done->finished_at, clock_.WallNow());
  // Finished: nothing moves it any more.
  EXPECT_EQ(store->FinishDeployment(dep->id, DeploymentState::kFailed, "again").status().code(),
            StatusCode::kFailedPrecondition);

  auto transitions = store->Transitions(dep->id);
  ASSERT_TRUE(transitions.ok());
  ASSERT_EQ(transitions->size(), path.size());
  for (size_t i = 1; i < path.size(); ++i) {
    const Transition& t = (*transitions)[i - 1];
    EXPECT_EQ(t.from, path[i - 1]);
    EXPECT_EQ(t.to, path[i]);
    EXPECT_EQ(t.reason, "step " + std::to_string(i));
  }
  EXPECT_EQ(transitions->back().to, DeploymentState::kSucceeded);

  // Each transition's audit entry is the one written with it.
  auto entries = store->ReadAudit(0, 0);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), path.size() + 1);  // begin + transitions + finish
  EXPECT_EQ((*entries)[0].action, "deployment.begin");
  EXPECT_EQ((*entries)[0].actor, "alice@host pid 42");
  for (const Transition& t : *transitions) {
    const AuditEntry& e = (*entries)[t.audit_seq - 1];
    EXPECT_EQ(e.seq, t.audit_seq);
    EXPECT_EQ(e.subject, "web");
    EXPECT_EQ(e.actor, "turnoutd");
    EXPECT_THAT(e.detail_json,
                HasSubstr("\"to\":\"" + std::string(DeploymentStateName(t.to)) + "\""));
  }
  EXPECT_EQ(entries->back().action, "deployment.finish");

  // Success makes the deployment the service's active revision.
  auto service = store->GetService("web");
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "green");
  EXPECT_EQ(service->active_revision, 1);
  EXPECT_EQ(service->config_hash, "cfg-v1");
}

TEST_F(StateStoreTest, StepsRecordTimingOutcomeAndDetail) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto dep = store->BeginDeployment(Spec("v1"));
  ASSERT_TRUE(dep.ok());
  const WallTime t0 = clock_.WallNow();
  auto s1 = store->BeginStep(dep->id, "wait_ready", R"({"instances":2})");
  ASSERT_TRUE(s1.ok());
  clock_.Advance(std::chrono::milliseconds(1500));
  auto s2 = store->BeginStep(dep->id, "smoke:GET /health", "");
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE(store->FinishStep(*s1, StepOutcome::kOk, "").ok());
  clock_.Advance(std::chrono::milliseconds(200));
  ASSERT_TRUE(store->FinishStep(*s2, StepOutcome::kFailed, R"({"status":500})").ok());

  EXPECT_EQ(store->BeginStep(dep->id, "x", "{not json").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->BeginStep(dep->id + 100, "x", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->FinishStep(*s2 + 100, StepOutcome::kOk, "").code(), StatusCode::kNotFound);
  EXPECT_EQ(store->FinishStep(*s2, StepOutcome::kRunning, "").code(), StatusCode::kInvalidArgument);

  auto steps = store->Steps(dep->id);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].step, "wait_ready");
  EXPECT_EQ((*steps)[0].started_at, t0);
  EXPECT_EQ((*steps)[0].finished_at, t0 + std::chrono::milliseconds(1500));
  EXPECT_EQ((*steps)[0].outcome, StepOutcome::kOk);
  EXPECT_EQ((*steps)[0].detail_json, R"({"instances":2})");  // kept when finish gives none
  EXPECT_EQ((*steps)[1].step, "smoke:GET /health");
  EXPECT_EQ((*steps)[1].outcome, StepOutcome::kFailed);
  EXPECT_EQ((*steps)[1].finished_at, t0 + std::chrono::milliseconds(1700));
  EXPECT_EQ((*steps)[1].detail_json, R"({"status":500})");
}

TEST_F(StateStoreTest, AStepRecordedWhenItEndedStartsWhenItStarted) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto dep = store->BeginDeployment(Spec("v1"));
  ASSERT_TRUE(dep.ok());
  const WallTime started = clock_.WallNow();
  clock_.Advance(std::chrono::milliseconds(863));
  auto s = store->BeginStepAt(dep->id, "hook:hooks[0]:switched", "{}", started);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(store->FinishStep(*s, StepOutcome::kOk, "").ok());
  auto steps = store->Steps(dep->id);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].started_at, started);
  EXPECT_EQ(*(*steps)[0].finished_at - (*steps)[0].started_at, std::chrono::milliseconds(863));
}

TEST_F(StateStoreTest, HistoryAndRevisionsNewestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 1; i <= 5; ++i) {
    auto dep = store->BeginDeployment(Spec("v" + std::to_string(i)));
    ASSERT_TRUE(dep.ok()) << dep.status().ToString();
    ASSERT_TRUE(store
                    ->FinishDeployment(
                        dep->id, i == 3 ? DeploymentState::kFailed : DeploymentState::kSucceeded,
                        i == 3 ? "readiness timed out" : "ok")
                    .ok());
  }
  auto history = store->History("web", 3);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].revision, 5);
  EXPECT_EQ((*history)[2].revision, 3);
  EXPECT_EQ((*history)[2].state, DeploymentState::kFailed);
  EXPECT_EQ((*history)[2].reason, "readiness timed out");
  auto all = store->History("web", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 5u);

  auto rev2 = store->GetRevision("web", 2);
  ASSERT_TRUE(rev2.ok());
  EXPECT_EQ(rev2->version, "v2");
  EXPECT_EQ(rev2->config_hash, "cfg-v2");
  EXPECT_EQ(store->GetRevision("web", 9).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetDeployment(12345).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(store->SetActive("web", "blue", 2, "manual rollback").ok());
  auto service = store->GetService("web");
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service->active_slot, "blue");
  EXPECT_EQ(service->active_revision, 2);
  EXPECT_EQ(store->SetActive("nope", "blue", 1, "").code(), StatusCode::kNotFound);
  auto services = store->ListServices();
  ASSERT_TRUE(services.ok());
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ((*services)[0].name, "web");
}

TEST_F(StateStoreTest, InstancesAreUpsertedAndListedForReadoption) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto dep = store->BeginDeployment(Spec("v1"));
  ASSERT_TRUE(dep.ok());
  InstanceRecord a;
  a.deployment_id = dep->id;
  a.service = "web";
  a.slot = "green";
  a.instance_index = 0;
  a.pid = 1111;
  a.process_start_time = 987654;
  a.port = 40001;
  a.version = "v1";
  a.state = InstanceState::kRunning;
  auto id_a = store->UpsertInstance(a);
  ASSERT_TRUE(id_a.ok()) << id_a.status().ToString();
  InstanceRecord b = a;
  b.instance_index = 1;
  b.pid = 2222;
  b.port = 40002;
  auto id_b = store->UpsertInstance(b);
  ASSERT_TRUE(id_b.ok());
  EXPECT_NE(*id_a, *id_b);

  // A restarted instance keeps its row, with the new pid and start time.
  a.pid = 3333;
  a.process_start_time = 999999;
  auto again = store->UpsertInstance(a);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *id_a);
  ASSERT_TRUE(store->SetInstanceState(*id_b, InstanceState::kStopped).ok());
  EXPECT_EQ(store->SetInstanceState(*id_b + 100, InstanceState::kStopped).code(),
            StatusCode::kNotFound);
  InstanceRecord orphan = a;
  orphan.deployment_id = dep->id + 100;
  EXPECT_EQ(store->UpsertInstance(orphan).status().code(), StatusCode::kNotFound);

  auto live = store->ListInstances("web", true);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].id, *id_a);
  EXPECT_EQ((*live)[0].pid, 3333);
  EXPECT_EQ((*live)[0].process_start_time, 999999);
  EXPECT_EQ((*live)[0].port, 40001);
  EXPECT_EQ((*live)[0].state, InstanceState::kRunning);
  auto all = store->ListInstances("", false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto other = store->ListInstances("api", false);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_F(StateStoreTest, InstancePlatformHandleRoundTripsAndIsReplacedByUpsert) {
  const std::string handle = R"({"boot_id":"b-1","pid":4242,"start_time_ticks":77})";
  int64_t id = 0;
  int64_t other_id = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto dep = store->BeginDeployment(Spec("v1"));
    ASSERT_TRUE(dep.ok());
    InstanceRecord rec;
    rec.deployment_id = dep->id;
    rec.service = "web";
    rec.slot = "green";
    rec.port = 40001;
    rec.version = "v1";
    auto starting = store->UpsertInstance(rec);  // the intent: no handle yet
    ASSERT_TRUE(starting.ok()) << starting.status().ToString();
    id = *starting;
    auto listed = store->ListInstances("web", false);
    ASSERT_TRUE(listed.ok());
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].platform_handle, "");

    rec.pid = 4242;
    rec.state = InstanceState::kRunning;
    rec.platform_handle = handle;
    auto running = store->UpsertInstance(rec);
    ASSERT_TRUE(running.ok());
    EXPECT_EQ(*running, id);

    InstanceRecord other = rec;
    other.instance_index = 1;
    other.platform_handle = "";
    auto other_rec = store->UpsertInstance(other);
    ASSERT_TRUE(other_rec.ok());
    other_id = *other_rec;
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto listed = store->ListInstances("web", true);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, id);
  EXPECT_EQ((*listed)[0].platform_handle, handle);
  EXPECT_EQ((*listed)[0].pid, 4242);
  EXPECT_EQ((*listed)[1].id, other_id);
  EXPECT_EQ((*listed)[1].platform_handle, "");

  // An upsert replaces the handle like any other field, also with none.
  InstanceRecord again = (*listed)[0];
  again.platform_handle = "";
  again.state = InstanceState::kStarting;
  ASSERT_TRUE(store->UpsertInstance(again).ok());
  auto after = store->ListInstances("web", false);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].platform_handle, "");
  EXPECT_EQ((*after)[0].state, InstanceState::kStarting);
}

// The tables of schema version 1 the migration and this test touch, exactly as turnout created
// them before version 2 (a frozen copy: the store's own migrations must not be used to build it).
constexpr const char* kVersion1Tables = R"sql(
CREATE TABLE services (
  name            TEXT PRIMARY KEY,
  config_hash     TEXT NOT NULL DEFAULT '',
  active_slot     TEXT NOT NULL DEFAULT '',
  active_revision INTEGER NOT NULL DEFAULT 0,
  updated_ns      INTEGER NOT NULL
);
CREATE TABLE deployments (
  id            INTEGER PRIMARY KEY,
  service       TEXT NOT NULL REFERENCES services(name),
  revision      INTEGER NOT NULL,
  version       TEXT NOT NULL,
  config_hash   TEXT NOT NULL,
  target_slot   TEXT NOT NULL,
  previous_slot TEXT NOT NULL,
  strategy      TEXT NOT NULL,
  started_by    TEXT NOT NULL,
  state         TEXT NOT NULL,
  reason        TEXT NOT NULL,
  created_ns    INTEGER NOT NULL,
  updated_ns    INTEGER NOT NULL,
  finished_ns   INTEGER,
  UNIQUE (service, revision)
);
CREATE TABLE instances (
  id                 INTEGER PRIMARY KEY,
  deployment_id      INTEGER NOT NULL REFERENCES deployments(id),
  service            TEXT NOT NULL,
  slot               TEXT NOT NULL,
  instance_index     INTEGER NOT NULL,
  pid                INTEGER NOT NULL,
  process_start_time INTEGER NOT NULL,
  port               INTEGER NOT NULL,
  version            TEXT NOT NULL,
  state              TEXT NOT NULL,
  updated_ns         INTEGER NOT NULL,
  UNIQUE (deployment_id, slot, instance_index)
);
CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  time_ns   INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  subject   TEXT NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
)sql";

TEST_F(StateStoreTest, Version1DatabaseIsMigratedInPlaceKeepingItsRows) {
  std::filesystem::create_directories(dir_.File("state"));
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(
        sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        SQLITE_OK);
    sqlite3_close(raw);
  }
  RawExec(path_, kVersion1Tables);
  RawExec(path_,
          "INSERT INTO services VALUES ('web', 'cfg-1', 'blue', 1, 10);"
          "INSERT INTO deployments VALUES (7, 'web', 2, 'v2', 'cfg-2', 'green', 'blue', "
          "'blue_green', 'alice', 'waiting_ready', '', 10, 20, NULL);"
          "INSERT INTO instances VALUES (3, 7, 'web', 'green', 0, 5151, 88, 40001, 'v2', "
          "'running', 30);"
          "INSERT INTO instances VALUES (4, 7, 'web', 'green', 1, 0, 0, 40002, 'v2', "
          "'starting', 30);"
          "INSERT INTO settings VALUES ('controller.spec.7', '{\"service\":\"web\"}', 30);"
          "PRAGMA user_version = 1;");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto instances = store->ListInstances("web", false);
  ASSERT_TRUE(instances.ok()) << instances.status().ToString();
  ASSERT_EQ(instances->size(), 2u);
  EXPECT_EQ((*instances)[0].id, 3);
  EXPECT_EQ((*instances)[0].pid, 5151);
  EXPECT_EQ((*instances)[0].process_start_time, 88);
  EXPECT_EQ((*instances)[0].port, 40001);
  EXPECT_EQ((*instances)[0].state, InstanceState::kRunning);
  EXPECT_EQ((*instances)[0].platform_handle, "");
  EXPECT_EQ((*instances)[1].id, 4);
  EXPECT_EQ((*instances)[1].state, InstanceState::kStarting);
  EXPECT_EQ((*instances)[1].platform_handle, "");

  auto spec = store->GetSetting("controller.spec.7");
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(spec->has_value());
  EXPECT_EQ(**spec, R"({"service":"web"})");
  auto active = store->ActiveDeployment("web");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->id, 7);
  EXPECT_EQ((*active)->state, DeploymentState::kWaitingReady);

  // The migrated row takes a new handle through the ordinary upsert.
  InstanceRecord second = (*instances)[1];
  second.platform_handle = R"({"pid":6161})";
  auto upserted = store->UpsertInstance(second);
  ASSERT_TRUE(upserted.ok()) << upserted.status().ToString();
  EXPECT_EQ(*upserted, 4);
  store.reset();

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw,
                               "SELECT (SELECT user_version FROM pragma_user_version), "
                               "platform_handle FROM instances WHERE id = 4",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), SqliteStateStore::SchemaVersion());
  EXPECT_EQ(SqliteStateStore::SchemaVersion(), 2);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1))),
            R"({"pid":6161})");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(StateStoreTest, RouterPolicyAndSettingsSurviveReopen) {
  const std::string policy = R"({"active":"green","canary":null,"weight_bp":0})";
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto none = store->LoadRouterPolicy("main");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(store->SaveRouterPolicy("main", R"({"active":"blue"})").ok());
    ASSERT_TRUE(store->SaveRouterPolicy("main", policy).ok());
    EXPECT_EQ(store->SaveRouterPolicy("main", "{oops").code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(store->PutSetting("retain_revisions", "3").ok());
    ASSERT_TRUE(store->PutSetting("retain_revisions", "5").ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = store->LoadRouterPolicy("main");
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, policy);
  auto setting = store->GetSetting("retain_revisions");
  ASSERT_TRUE(setting.ok());
  EXPECT_EQ(setting->value_or(""), "5");
  auto missing = store->GetSetting("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto entries = store->ReadAudit(0, 0);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);  // two policy saves; settings are not audited
  EXPECT_EQ((*entries)[1].action, "router.policy");
  EXPECT_EQ((*entries)[1].detail_json, policy);
}

TEST_F(StateStoreTest, AuditAppendReadAndValidation) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    auto seq =
        store->AppendAudit({"bob", "cli.approve", "web", R"({"n":)" + std::to_string(i) + "}"});
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    EXPECT_EQ(*seq, i + 1);
  }
  EXPECT_EQ(store->AppendAudit({"bob", "x", "web", "not json"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->AppendAudit({"", "x", "web", "{}"}).status().code(),
            StatusCode::kInvalidArgument);
  auto page = store->ReadAudit(2, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 3);
  EXPECT_EQ((*page)[0].prev_hash, (*store->ReadAudit(1, 1))[0].hash);
  EXPECT_EQ((*page)[1].detail_json, R"({"n":3})");
  auto report = store->VerifyAudit();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_EQ(report->head_seq, 5);
  EXPECT_EQ(report->head_lag, 0);
  EXPECT_EQ(report->ToString(), "audit log OK: 5 entries, head 5");

  // The triggers refuse edits through SQL.
  std::string error;
  EXPECT_NE(RawTry(path_, "UPDATE audit SET actor = 'mallory' WHERE seq = 2", &error), SQLITE_OK);
  EXPECT_THAT(error, HasSubstr("append-only"));
  EXPECT_NE(RawTry(path_, "DELETE FROM audit WHERE seq = 5", &error), SQLITE_OK);
  EXPECT_THAT(error, HasSubstr("append-only"));
}

}  // namespace
}  // namespace turnout::state
