// Cost of durable writes (each one fsyncs the WAL, and audited ones rewrite the head anchor) and
// of verifying the audit chain. Run on the disk the state directory will live on.

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/clock.h"
#include "state/sqlite_state_store.h"

namespace turnout::state {
namespace {

struct BenchStore {
  BenchStore() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "turnout-state-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) dir = pattern;
    SqliteStateStoreOptions options;
    options.path = dir + "/turnout.db";
    options.clock = &clock;
    auto opened = SqliteStateStore::Open(options);
    if (opened.ok()) store = std::move(opened).value();
  }
  ~BenchStore() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  ManualClock clock;
  std::string dir;
  std::unique_ptr<SqliteStateStore> store;
};

void BM_AppendAudit(benchmark::State& state) {
  BenchStore b;
  if (b.store == nullptr) return state.SkipWithError("cannot open store");
  for (auto _ : state) {
    if (!b.store->AppendAudit({"bench", "bench.event", "web", R"({"k":1})"}).ok()) {
      return state.SkipWithError("append failed");
    }
  }
}
BENCHMARK(BM_AppendAudit)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RecordTransition(benchmark::State& state) {
  BenchStore b;
  if (b.store == nullptr) return state.SkipWithError("cannot open store");
  DeploymentSpec spec;
  spec.service = "web";
  spec.version = "v1";
  spec.target_slot = "green";
  spec.started_by = "bench";
  auto dep = b.store->BeginDeployment(spec);
  if (!dep.ok()) return state.SkipWithError("begin failed");
  DeploymentState from = DeploymentState::kPending;
  for (auto _ : state) {
    DeploymentState to = from == DeploymentState::kLaunching ? DeploymentState::kWaitingReady
                                                             : DeploymentState::kLaunching;
    if (!b.store->RecordTransition(dep->id, from, to, "bench").ok()) {
      return state.SkipWithError("transition failed");
    }
    from = to;
  }
}
BENCHMARK(BM_RecordTransition)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_VerifyAudit(benchmark::State& state) {
  BenchStore b;
  if (b.store == nullptr) return state.SkipWithError("cannot open store");
  for (int64_t i = 0; i < state.range(0); ++i) {
    if (!b.store->AppendAudit({"bench", "bench.event", "web", R"({"k":1})"}).ok()) {
      return state.SkipWithError("append failed");
    }
  }
  for (auto _ : state) {
    auto report = b.store->VerifyAudit();
    if (!report.ok() || !report->ok()) return state.SkipWithError("verify failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_VerifyAudit)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace turnout::state

BENCHMARK_MAIN();
