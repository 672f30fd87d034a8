#include "daemon/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "common/file_util.h"
#include "common/secret.h"
#include "common/sha256.h"
#include "common/text.h"
#include "container_platform/container_platform.h"
#include "controller/engine.h"
#include "controller/http_probe.h"
#include "controller/http_verifier.h"
#include "daemon/analysis.h"
#include "daemon/api_request.h"
#include "daemon/database.h"
#include "daemon/router_process.h"
#include "daemon/secrets.h"
#include "judge/judge_json.h"
#include "judge/slo.h"
#include "notify/notifier.h"
#include "platform/log_tail.h"
#include "platform/process_platform.h"
#include "platform/supervisor.h"
#include "router/admin_client.h"
#include "state/sqlite_state_store.h"

namespace turnout::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using state::DeploymentState;
using Millis = std::chrono::milliseconds;

// How long an API thread waits for the controller thread to run its command. Steps are bounded
// (a probe round of at most ~1 s per instance), so this only trips when something is wrong.
constexpr Millis kCommandTimeout{60000};
// How often the router process is checked (and relaunched once its backoff passed); also the
// longest idle wait of the controller thread.
constexpr Millis kRouterTick{50};
// A deploy requested while the previous deployment only keeps its old slot warm first finishes
// that one (drain, stop); it may take this long.
constexpr Millis kFinishPreviousTimeout{60000};
// turnoutd's sign of life in the store ({"alive_ms","pid"[,"stopped":true]}), rewritten every
// kHeartbeatEvery and once more at a clean stop: a restarted daemon learns from it when the one
// before was last alive and whether it died or stopped.
constexpr char kHeartbeatKey[] = "turnoutd.heartbeat";
constexpr Millis kHeartbeatEvery{1000};
// The identity of the state directory: 16 random bytes as hex, made by its first turnoutd and
// kept in the store. Containers carry it as turnout.owner, so that the turnoutd of another
// state directory with the same service name on the same engine never adopts or removes them.
constexpr char kStateIdKey[] = "turnoutd.state-id";
// Who turned maintenance on by hand and why ("bob: disk swap"); "" once it is off.
constexpr char kMaintenanceOwnerKey[] = "daemon.maintenance.owner";
// How often the audit entries appended since the last check are verified.
constexpr Millis kAuditCheckEvery{1000};

int64_t WallMsOf(Clock::WallTime t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

std::string FormatTime(Clock::WallTime t) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

int64_t MillisBetween(Clock::WallTime a, Clock::WallTime b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

json DeploymentJson(const state::Deployment& d) {
  json j = {{"id", d.id},
            {"service", d.service},
            {"revision", d.revision},
            {"version", d.version},
            {"state", std::string(state::DeploymentStateName(d.state))},
            {"finished", state::IsTerminal(d.state)},
            {"target_slot", d.target_slot},
            {"previous_slot", d.previous_slot},
            {"strategy", d.strategy},
            {"started_by", d.started_by},
            {"reason", d.reason},
            {"config_hash", d.config_hash},
            {"created_at", FormatTime(d.created_at)},
            {"updated_at", FormatTime(d.updated_at)}};
  if (d.finished_at) {
    j["finished_at"] = FormatTime(*d.finished_at);
    j["duration_ms"] = MillisBetween(d.created_at, *d.finished_at);
  } else {
    j["finished_at"] = nullptr;
  }
  return j;
}

json StepJson(const state::StepRecord& s) {
  json detail = json::parse(s.detail_json, nullptr, false);
  json j = {{"step", s.step},
            {"outcome", std::string(state::StepOutcomeName(s.outcome))},
            {"started_at", FormatTime(s.started_at)},
            {"detail", detail.is_discarded() ? json(s.detail_json) : detail}};
  if (s.finished_at) {
    j["finished_at"] = FormatTime(*s.finished_at);
    j["duration_ms"] = MillisBetween(s.started_at, *s.finished_at);
  }
  return j;
}

json AuditJson(const state::AuditEntry& e) {
  json detail = json::parse(e.detail_json, nullptr, false);
  return {{"seq", e.seq},         {"time", FormatTime(e.time)},
          {"actor", e.actor},     {"action", e.action},
          {"subject", e.subject}, {"detail", detail.is_discarded() ? json(e.detail_json) : detail},
          {"hash", e.hash}};
}

api::Reply Ok(const json& j) { return api::Reply::Json(200, j.dump()); }

std::string LocalAddress(std::string address) {
  // Smoke checks connect to the router's listener; a wildcard bind is reached on loopback.
  if (address.rfind("0.0.0.0:", 0) == 0) return "127.0.0.1:" + address.substr(8);
  return address;
}

}  // namespace

struct Daemon::Impl {
  DaemonOptions options;
  std::ostream* log = nullptr;
  std::mutex log_mu;
  service::ServiceConfig config;
  std::string config_path;  // absolute
  std::string config_dir;
  StatePaths paths;
  int lock_fd = -1;  // paths.lock_file, locked while this daemon serves the directory
  Clock& clock = SystemClock::Get();
  Clock::WallTime started_at{};

  std::unique_ptr<state::SqliteStateStore> store;
  // The router process runs on the process platform whatever the service's platform is.
  std::unique_ptr<platform::ProcessPlatform> process_platform;
  // The service's instances with `platform.type: container` (else null).
  std::unique_ptr<platform::ContainerPlatform> container_platform;
  // The secrets of turnout.yaml: their values under <state_dir>/secrets, resolved into each
  // instance's environment at launch by secret_platform (which wraps one of the two above).
  std::unique_ptr<SecretStore> secrets;
  std::unique_ptr<SecretPlatform> secret_platform;
  platform::Platform* platform = nullptr;  // the service's instances: secret_platform
  Clock::TimePoint next_overlap_check{};
  // The engine's mechanisms for probes and commands (it does no I/O of its own).
  controller::HttpProber engine_prober;
  platform::LocalCommandRunner engine_commands;
  controller::HttpVerifier engine_verifier;  // verify: performance checks through the router
  // The router: a process of its own that turnoutd launched or attached to (default), or a
  // standalone one it only drives (router.external).
  std::unique_ptr<RouterProcess> router_process;
  std::unique_ptr<router::RouterControl> external;
  router::RouterControl* control = nullptr;
  std::string router_address;   // where smoke checks go
  std::string override_secret;  // the router's override secret (smoke checks send it)
  // The router's admin API as this daemon knows it: the router process's (its Unix socket, or
  // router.admin), or the standalone router it drives. "" when there is none. Filled wherever the
  // router is set up; `turnout status` reports it.
  std::string router_admin_address;
  std::unique_ptr<controller::Engine> engine;
  std::unique_ptr<platform::Supervisor> supervisor;
  std::unique_ptr<notify::Notifier> notifier;  // null when turnout.yaml has no hooks
  std::unique_ptr<Analysis> analysis;          // rules, canary judge, dependencies
  std::unique_ptr<DatabasePhases> database;    // null without a database section
  std::unique_ptr<api::Server> server;

  // Controller thread and its queue of commands.
  std::thread controller;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> commands;
  bool stopping = false;
  bool started = false;

  // What the controller is doing, for status readers (guarded by progress_mu).
  std::mutex progress_mu;
  int64_t progress_deployment = 0;
  std::string progress_state;
  std::string waiting_for;
  Clock::WallTime progress_since{};
  std::string last_error;  // the last Step() error (store/router/platform refused), "" when none

  // Supervised instances: key "<slot>/<index>" -> the record the key stands for (controller
  // thread and supervisor callback; both run on the controller thread).
  std::map<std::string, state::InstanceRecord> watched;
  Clock::TimePoint next_tick{};
  Clock::TimePoint next_router_tick{};
  // Test hook (crash-safety tests): "VERSION:STATE" from $TURNOUTD_TEST_CRASH makes the daemon
  // kill itself with SIGKILL when the deployment of VERSION is about to run STATE's action,
  // i.e. right after that transition was recorded and before it was acted on.
  std::string crash_version;
  std::string crash_state;

  // The previous daemon (from its heartbeat) and what this one resumed (for status and `up`).
  controller::RestartFacts restart;
  std::string resumed_summary;  // guarded by progress_mu
  Clock::TimePoint next_heartbeat{};
  // The audit chain (guarded by audit_mu): checked in full at start, then from the last
  // verified entry on. Broken and not acknowledged: turnoutd refuses to act (no command that
  // changes anything, no deployment step, no resume) until `turnout audit acknowledge`.
  std::mutex audit_mu;
  bool audit_broken = false;
  std::string audit_problem;
  int64_t audit_checked_seq = 0;
  std::string audit_checked_hash;
  Clock::TimePoint next_audit_check{};
  bool resume_pending = false;  // controller thread: the start-up resume waits for the chain

  void Log(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    *log << FormatTime(clock.WallNow()) << " turnoutd: " << line << std::endl;
  }

  bool Busy() const {
    return engine->has_deployment() && !state::IsTerminal(engine->deployment().state);
  }

  // Runs `fn` on the controller thread and returns its result.
  template <typename T>
  Result<T> RunOnController(std::function<Result<T>()> fn) {
    auto task = std::make_shared<std::packaged_task<Result<T>()>>(std::move(fn));
    std::future<Result<T>> done = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return Unavailable("turnoutd is stopping");
      commands.push_back([task] { (*task)(); });
    }
    cv.notify_all();
    if (done.wait_for(kCommandTimeout) != std::future_status::ready) {
      return Status(StatusCode::kDeadlineExceeded,
                    "the controller did not take the command within 60 s; see turnoutd.log");
    }
    return done.get();
  }

  Status StartAll();
  // Resumes the interrupted deployment (recording what was found and decided), or records a
  // crash that interrupted none, and watches the serving instances.
  Status ResumeOrWatch();
  // The instances re-adopted at start, of those recorded as live (for the restart record).
  size_t adopted_at_start = 0, recorded_at_start = 0;
  void Heartbeat(bool stopped);
  // The full check (start, acknowledgement) and the incremental one (controller loop).
  Status VerifyAuditChain();
  void CheckNewAuditEntries();
  void MarkAuditBroken(const std::string& problem);
  void NotifyAuditBroken(const std::string& problem);  // the hook event audit_broken
  bool AuditBroken() {
    std::lock_guard<std::mutex> lock(audit_mu);
    return audit_broken;
  }
  Result<json> AcknowledgeAudit(const std::string& reason, const std::string& actor);
  void ControllerLoop();
  void StepOnce();
  void SetProgress(const controller::StepReport& report);
  void OnEngineEvent(const controller::EngineEvent& event);
  void OnSupervisorEvent(const platform::SupervisorEvent& event);
  // Containers of this service that turnout labelled but no live instance record names (a
  // turnoutd killed between a launch and its record): each is logged and removed, so that
  // nothing runs twice and nothing is left behind. Containers turnout did not label, and those
  // of another state directory (turnout.owner), are never listed, let alone touched.
  Status RemoveUnrecordedContainers(const std::vector<state::InstanceRecord>& live);
  // The state directory's identity (kStateIdKey), made and stored on first use.
  Result<std::string> StateId();
  void WatchServing();
  void UnwatchAll();

  Result<controller::DeploymentSpec> SpecFor(const std::string& version);
  // The database phases of the deployments that begin from now on, from `c`'s `database:`
  // section (none without one). Only between deployments: no phase job may run.
  Status UseDatabase(const service::ServiceConfig& c);
  Result<state::Deployment> Deploy(const std::string& version, const std::string& actor,
                                   const std::string& reason);
  // confirm: {"data_loss": bool, "unsupported_schema": bool} for the database ladder.
  Result<json> Rollback(std::optional<int64_t> to_revision, const std::string& actor,
                        const json& confirm);
  // Refuses a new deployment while one runs (AlreadyExists, naming it); one that only keeps its
  // old slot warm (ScalingDown) is finished first, since `what` needs that slot.
  Status MakeRoomFor(const std::string& what, const std::string& actor);
  // The definition deployment `id` was deployed with (its saved spec).
  Result<controller::DeploymentSpec> SavedSpec(int64_t id);
  // The saved spec of the revision that serves now; NotFound when nothing serves.
  Result<controller::DeploymentSpec> ServingSpec();
  // `turnout restart`, `scale N`, `set env`: a new revision of the serving version with the
  // serving revision's own definition, changed by `change` (nothing for a restart), which also
  // fills `detail` (what changed: names, never an env value). kind: "restart", "scale", "env".
  // Recorded with the revision as daemon.change.<id> (history's "change"). A restart or scale
  // rolls in place when the ports are auto, else goes blue/green into the idle slot; an env
  // change rolls out by the serving revision's strategy.
  Result<json> Redefine(const std::string& kind, const std::string& actor,
                        const std::string& reason,
                        const std::function<Status(controller::DeploymentSpec*, json*)>& change);
  // The change recorded with deployment `id` (null for a deployment of turnout.yaml).
  json ChangeOf(int64_t id);
  // `turnout secrets rotate NAME`: a revision of the serving version whose NAME is a new value
  // (`value`, or generated when empty) and NAME_PREVIOUS the old one for `overlap` (none when
  // 0). `turnout secrets drop-previous NAME`: a revision without NAME_PREVIOUS. Both audited
  // with names and fingerprints only.
  Result<json> RotateSecret(const std::string& name, const std::string& value, Millis overlap,
                            const std::string& actor, const std::string& reason);
  Result<json> DropPreviousSecret(const std::string& name, const std::string& actor,
                                  const std::string& reason);
  // Controller thread, every second: once a rotation's overlap ended (by this daemon's clock,
  // from the deadline kept in the store, so a restart does not forget it), rolls out the
  // revision that drops NAME_PREVIOUS, as soon as no deployment runs.
  void DropEndedOverlaps();
  // The secrets of the serving revision: GET /v1/secrets.
  api::Reply SecretsReply();
  Result<json> Switch(const std::string& slot, const std::string& actor);
  // `turnout maintenance on|off`: the router answers every request with 503, Retry-After and
  // the page of turnout.yaml's `maintenance:` (read again now), or routes again. Refused while a
  // deployment runs (its judge and rules would see no traffic).
  Result<json> SetMaintenance(bool enabled, const std::string& reason, const std::string& actor);
  // What users get in maintenance (`turnout maintenance on`, strategy recreate), from turnout.yaml
  // as it is now (`enabled` false).
  Result<router::MaintenancePolicy> MaintenancePage();
  // Stops every instance, and with `stop_router` the router process too (users then get
  // connection refused until the next `turnout up`).
  Result<json> StopAll(const std::string& actor, bool stop_router);
  // Ends a deployment that only keeps its old slot warm (ScalingDown) now.
  Status FinishScaleDown(const std::string& reason);
  // `turnout prune`: the images of the revisions revisions.on_disk no longer keeps, and the
  // stopped containers of the service nothing records (ContainerPlatform::Prune says which are
  // never touched). Kept: the newest on_disk revisions, the serving one, and every revision
  // with a live instance. Refused while a deployment launches or switches (a ScalingDown only
  // keeps its old slot warm: its instances are live records, so it may run).
  Result<json> Prune(bool dry_run, const std::string& actor);

  api::Reply Handle(const api::Request& r);
  api::Reply StatusReply();
  api::Reply DeploymentReply(const std::string& which);
  api::Reply HistoryReply(const api::Request& r);
  api::Reply HealthReply(const api::Request& r);
  api::Reply SloReply();
  api::Reply LogsReply(const api::Request& r);
  // `turnout logs --follow` (follow=1): the containers of the slot's newest instances streamed
  // from the engine until the client goes away (or turnoutd stops).
  api::Reply FollowLogsReply(
      const std::vector<std::pair<std::string, platform::InstanceHandle>>& instances, int lines);
  // Log streams running now (at most kMaxLogFollows: each holds an API handler thread).
  std::shared_ptr<std::atomic<int>> log_follows = std::make_shared<std::atomic<int>>(0);
  api::Reply AuditReply(const api::Request& r);
};

// ---- start and stop ------------------------------------------------------------------------

Result<std::unique_ptr<Daemon>> Daemon::Create(DaemonOptions options) {
  if (options.config_path.empty()) return InvalidArgument("no turnout.yaml given");
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  fs::path config_path = fs::absolute(options.config_path, ec);
  if (ec) return IoError("cannot resolve " + options.config_path + ": " + ec.message());
  TURNOUT_ASSIGN_OR_RETURN(impl->config, service::LoadServiceConfig(config_path.string()));
  impl->config_path = config_path.string();
  impl->config_dir = config_path.parent_path().string();
  impl->paths = PathsFor(impl->config, impl->config_dir);
  if (!options.socket_path.empty()) impl->paths.socket = options.socket_path;
  if (!options.api_tcp_address.empty() && options.api_token.empty()) {
    return InvalidArgument("an API on TCP needs a token (--token or TURNOUTD_TOKEN)");
  }
  impl->log = options.log ? options.log : &std::cerr;
  if (const char* crash = std::getenv("TURNOUTD_TEST_CRASH")) {
    std::string_view spec(crash);
    if (auto colon = spec.rfind(':'); colon != std::string_view::npos) {
      impl->crash_version = std::string(spec.substr(0, colon));
      impl->crash_state = std::string(spec.substr(colon + 1));
    }
  }
  impl->options = std::move(options);
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() {
  Stop();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);  // frees the state directory
}

const StatePaths& Daemon::paths() const { return impl_->paths; }
std::string Daemon::socket_path() const { return impl_->paths.socket; }
std::string Daemon::api_tcp_address() const {
  return impl_->server ? impl_->server->tcp_address() : "";
}
std::vector<std::string> Daemon::listen_addresses() const {
  if (impl_->control) {
    Result<router::RouterStatus> s = impl_->control->GetStatus();
    if (s.ok()) return s->listen;
  }
  return {};
}

Status Daemon::Start() {
  Status s = impl_->StartAll();
  if (!s.ok()) Stop();
  return s;
}

namespace {

// Takes the state directory's lock, or says which turnoutd holds it. The descriptor is not
// inherited by the processes turnoutd starts (O_CLOEXEC): an app instance or the router process
// that outlives turnoutd never holds the directory.
Result<int> LockStateDirectory(const StatePaths& paths) {
  int fd = ::open(paths.lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot open " + paths.lock_file + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return IoError("cannot lock " + paths.lock_file + ": " + std::strerror(err));
    }
    std::string pid =
        n > 0 ? std::string(Trim(std::string_view(buf, static_cast<size_t>(n)))) : std::string();
    return AlreadyExists("another turnoutd (pid " + (pid.empty() ? std::string("?") : pid) +
                         ") serves the state directory " + paths.dir +
                         "; stop it first (`turnout down`), or give this service its own "
                         "state_dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot write " + paths.lock_file + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

Status Daemon::Impl::StartAll() {
  if (started) return FailedPrecondition("turnoutd already started");
  // turnoutd works in the directory of turnout.yaml: relative commands and paths of hooks and
  // checks mean the same whoever started it and from where.
  if (::chdir(config_dir.c_str()) != 0) {
    return IoError("cannot enter " + config_dir + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::create_directories(paths.dir, ec);
  if (ec) return IoError("cannot create the state directory " + paths.dir + ": " + ec.message());
  ::chmod(paths.dir.c_str(), 0700);
  // One turnoutd per state directory, checked before anything is read or touched: a second one
  // would attach to the same router process, resume the same deployment and rewrite the
  // heartbeat and pid file of the first. (Not `started` yet: its Stop() must leave them alone.)
  if (lock_fd < 0) {
    TURNOUT_ASSIGN_OR_RETURN(lock_fd, LockStateDirectory(paths));
  }
  started = true;
  started_at = clock.WallNow();
  for (const std::string& w : ConfigWarnings(config)) Log("warning: " + w);
  fs::create_directories(paths.logs, ec);
  if (ec) return IoError("cannot create " + paths.logs + ": " + ec.message());

  state::SqliteStateStoreOptions so;
  so.path = paths.database;
  so.actor = "turnoutd";
  TURNOUT_ASSIGN_OR_RETURN(store, state::SqliteStateStore::Open(so));
  process_platform = std::make_unique<platform::ProcessPlatform>(clock);
  platform = process_platform.get();
  if (config.platform.is_container()) {
    platform::ContainerPlatformOptions options = ContainerOptionsFromConfig(config, config_dir);
    TURNOUT_ASSIGN_OR_RETURN(options.owner, StateId());
    // An unreachable engine stops turnoutd here, naming every socket it tried.
    TURNOUT_ASSIGN_OR_RETURN(container_platform,
                             platform::ContainerPlatform::Create(std::move(options)));
    platform = container_platform.get();
    Log("containers on the engine at " + container_platform->socket_path());
  }
  TURNOUT_ASSIGN_OR_RETURN(secrets, SecretStore::Open(paths.dir + "/secrets", *store));
  secret_platform = std::make_unique<SecretPlatform>(*platform, *secrets);
  platform = secret_platform.get();
  // The one before: when it was last alive and whether it stopped or died.
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> beat, store->GetSetting(kHeartbeatKey));
  if (beat) {
    json b = json::parse(*beat, nullptr, false);
    if (b.is_object() && b.contains("alive_ms") && b["alive_ms"].is_number_integer()) {
      restart.last_alive = Clock::WallTime(Millis(b["alive_ms"].get<int64_t>()));
      restart.previous_end = b.value("stopped", false) ? "stop" : "crash";
    }
  }
  // The audit chain before anything is appended to it.
  TURNOUT_RETURN_IF_ERROR(VerifyAuditChain());
  // Every audit entry is written through turnoutd: a newer one than the heartbeat is a later
  // sign of life.
  if (restart.last_alive && audit_checked_seq > 0) {
    Result<std::vector<state::AuditEntry>> last = store->ReadAudit(audit_checked_seq - 1, 1);
    if (last.ok() && !last->empty() && last->front().time > *restart.last_alive) {
      restart.last_alive = last->front().time;
    }
  }

  // Re-adopt what an earlier daemon left running; what ended meanwhile is marked so.
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> live,
                           store->ListInstances(config.name, true));
  std::vector<state::InstanceRecord> running;
  for (auto& rec : live) {
    if (rec.platform_handle.empty()) continue;
    Result<platform::InstanceHandle> handle = platform::DecodeHandle(rec.platform_handle);
    if (!handle.ok()) continue;
    Result<platform::InstanceStatus> st = platform->Adopt(*handle);
    if (st.ok() && st->running()) {
      running.push_back(rec);
    } else if (st.ok() && rec.state == state::InstanceState::kRunning) {
      Log("instance " + rec.slot + "-" + std::to_string(rec.instance_index) + " (" + rec.version +
          ", pid " + std::to_string(rec.pid) + ") " + st->ToString() + " while turnoutd was down");
    }
  }
  if (!live.empty()) {
    Log("re-adopted " + std::to_string(running.size()) + " running instance(s) of " +
        std::to_string(live.size()) + " recorded");
  }
  if (container_platform) TURNOUT_RETURN_IF_ERROR(RemoveUnrecordedContainers(live));
  adopted_at_start = running.size();
  recorded_at_start = live.size();

  std::string active_slot;
  if (Result<state::Service> svc = store->GetService(config.name); svc.ok()) {
    active_slot = svc->active_slot;
  }
  if (config.router.external.empty()) {
    // The router runs as its own process, so that traffic never depends on turnoutd. Its admin
    // token and the override header's secret are turnoutd's to make (or turnout.yaml's when
    // given), kept 0600 in the state directory and never logged.
    RouterSecrets secrets;
    TURNOUT_ASSIGN_OR_RETURN(secrets.admin_token,
                             LoadOrCreateSecretFile(paths.router_token, config.router.admin_token));
    TURNOUT_ASSIGN_OR_RETURN(
        secrets.override_secret,
        LoadOrCreateSecretFile(paths.override_secret, config.router.override_secret));
    override_secret = secrets.override_secret;
    RouterProcessOptions ro;
    ro.program = FindProgram("turnout", "cli");
    ro.service = config.name;
    ro.config = RouterConfigFromService(config, paths, active_slot, running, secrets);
    ro.config_path = paths.router_config;
    ro.record_path = paths.router_record;
    ro.log_dir = paths.logs;
    ro.working_dir = paths.dir;
    ro.log = [this](const std::string& l) { Log(l); };
    TURNOUT_ASSIGN_OR_RETURN(
        router_process, RouterProcess::AttachOrLaunch(std::move(ro), *process_platform, clock));
    control = router_process.get();
    TURNOUT_ASSIGN_OR_RETURN(router::RouterStatus rs, control->GetStatus());
    if (rs.listen.empty()) return FailedPrecondition("the router process listens nowhere");
    router_address = LocalAddress(rs.listen[0]);
    router_admin_address = router_process->info().admin;
    std::string listen;
    for (const auto& a : rs.listen) listen += " " + a;
    Log("router serving on" + listen + " (override secret " + SecretFingerprint(override_secret) +
        ")");
  } else {
    // A standalone router has its own config: its secret is the one turnout.yaml repeats.
    override_secret = config.router.override_secret;
    TURNOUT_ASSIGN_OR_RETURN(
        external, router::AdminClient::Create(config.router.external, config.router.admin_token,
                                              Millis(5000)));
    control = external.get();
    router_admin_address = config.router.external;
    Result<router::RouterStatus> rs = control->GetStatus();
    if (!rs.ok()) {
      return Unavailable("the standalone router at " + config.router.external +
                         " does not answer (" + rs.status().message() +
                         "); start it with `turnout router --admin " + config.router.external +
                         " ...`");
    }
    if (rs->listen.empty()) return FailedPrecondition("the standalone router listens nowhere");
    router_address = LocalAddress(rs->listen[0]);
    Log("driving the standalone router at " + config.router.external + " (serving on " +
        rs->listen[0] + ")");
  }

  if (!config.hooks.empty()) {
    std::vector<notify::Hook> hooks;
    for (size_t i = 0; i < config.hooks.size(); ++i) {
      const service::HookConfig& h = config.hooks[i];
      notify::Hook hook;
      hook.name = "hooks[" + std::to_string(i) + "]";
      hook.on = h.on;
      if (h.has_webhook) {
        hook.webhook_url = h.webhook.url;
        hook.retries = h.webhook.retries;
        hook.timeout = h.webhook.timeout;
      } else {
        hook.command = h.command;
        hook.timeout = h.timeout;
      }
      hooks.push_back(std::move(hook));
    }
    notify::NotifierOptions no;
    no.on_delivery = [this](const notify::Delivery& d) {
      Log(d.hook + " " + d.event.name + ": " + (d.ok ? "delivered" : "FAILED") + " (" + d.detail +
          ")");
      const int64_t id = std::atoll(d.event.deployment_id.c_str());
      if (id <= 0) return;
      // The delivery (its attempts and backoffs) ended now: its step starts when it started.
      Result<int64_t> step = store->BeginStepAt(id, "hook:" + d.hook + ":" + d.event.name, "{}",
                                                clock.WallNow() - d.duration);
      if (step.ok()) {
        (void)store->FinishStep(*step, d.ok ? state::StepOutcome::kOk : state::StepOutcome::kFailed,
                                json{{"attempts", d.attempts}, {"detail", d.detail}}.dump());
      }
    };
    no.on_warning = [this](const std::string& w) { Log("hooks: " + w); };
    TURNOUT_ASSIGN_OR_RETURN(notifier, notify::Notifier::Create(std::move(hooks), std::move(no)));
  }

  controller::EngineOptions eo;
  eo.router_address = router_address;
  eo.override_header = config.router.override_header;
  eo.override_secret = override_secret;
  eo.probe_wait = options.step_wait;
  eo.verifier = &engine_verifier;
  eo.on_event = [this](const controller::EngineEvent& e) { OnEngineEvent(e); };
  TURNOUT_ASSIGN_OR_RETURN(analysis, Analysis::Create(config, *control, clock,
                                                      [this](const std::string& l) { Log(l); }));
  TURNOUT_RETURN_IF_ERROR(analysis->Start());
  eo.analyze = [this](const controller::AnalysisRequest& r) { return analysis->Analyze(r); };
  TURNOUT_RETURN_IF_ERROR(UseDatabase(config));
  eo.database = [this](const controller::PhaseRequest& r) {
    return database ? database->Poll(r) : controller::PhaseStatus{};
  };
  eo.maintenance = [this] { return MaintenancePage(); };
  eo.maintenance_owner = [this] {
    // Who turned it on by hand, and why (SetMaintenance keeps it).
    Result<std::optional<std::string>> saved = store->GetSetting(kMaintenanceOwnerKey);
    return saved.ok() && *saved ? **saved : std::string();
  };
  engine = std::make_unique<controller::Engine>(*store, *platform, *control, engine_prober,
                                                engine_commands, clock, eo);

  platform::SupervisorOptions sup;
  supervisor = std::make_unique<platform::Supervisor>(
      *platform, sup, [this](const platform::SupervisorEvent& e) { OnSupervisorEvent(e); });

  if (AuditBroken()) {
    resume_pending = true;  // after the acknowledgement
    Log("not resuming anything while the audit log is broken");
    std::string problem;
    {
      std::lock_guard<std::mutex> lock(audit_mu);
      problem = audit_problem;
    }
    NotifyAuditBroken(problem);
  } else {
    TURNOUT_RETURN_IF_ERROR(ResumeOrWatch());
  }
  Heartbeat(false);

  controller = std::thread([this] { ControllerLoop(); });

  api::Server::Options ao;
  ao.unix_path = paths.socket;
  ao.tcp_address = options.api_tcp_address;
  ao.token = options.api_token;
  server = std::make_unique<api::Server>(ao, [this](const api::Request& r) { return Handle(r); });
  TURNOUT_RETURN_IF_ERROR(server->Start());
  {
    std::ofstream pid(paths.pid_file, std::ios::trunc);
    pid << ::getpid() << "\n";
  }
  Log("ready: service " + config.name + ", API on " + paths.socket +
      (server->tcp_address().empty() ? "" : " and " + server->tcp_address()));
  return Status::Ok();
}

Status Daemon::Impl::ResumeOrWatch() {
  const size_t adopted = adopted_at_start, recorded = recorded_at_start;
  TURNOUT_ASSIGN_OR_RETURN(std::optional<state::Deployment> resumed,
                           engine->Resume(config.name, restart));
  std::string summary;
  if (resumed) {
    summary = engine->resume_summary();
  } else {
    WatchServing();
    if (restart.previous_end == "crash") {
      // A crash between deployments: on record too, once.
      const Clock::WallTime now = clock.WallNow();
      const int64_t down_ms = std::max<int64_t>(0, MillisBetween(*restart.last_alive, now));
      const std::string decided = "nothing to resume; keep serving (" + std::to_string(adopted) +
                                  " of " + std::to_string(recorded) +
                                  " recorded instance(s) still running)";
      json detail = {{"previous_end", "crash"},
                     {"last_alive_ms", WallMsOf(*restart.last_alive)},
                     {"down_ms", down_ms},
                     {"instances", {{"recorded", recorded}, {"running", adopted}}},
                     {"decided", decided}};
      TURNOUT_RETURN_IF_ERROR(
          store->AppendAudit({"turnoutd", "turnoutd.restart", config.name, detail.dump()})
              .status());
      summary =
          "turnoutd had died (down " + std::to_string((down_ms + 999) / 1000) + " s); " + decided;
    }
  }
  if (!summary.empty()) {
    Log("restart: " + summary);
    std::lock_guard<std::mutex> lock(progress_mu);
    resumed_summary = summary;
  }
  return Status::Ok();
}

void Daemon::Impl::Heartbeat(bool stopped) {
  json b = {{"alive_ms", WallMsOf(clock.WallNow())}, {"pid", ::getpid()}};
  if (stopped) b["stopped"] = true;
  if (Status s = store->PutSetting(kHeartbeatKey, b.dump()); !s.ok()) {
    Log("cannot record the heartbeat: " + s.ToString());
  }
  next_heartbeat = clock.Now() + kHeartbeatEvery;
}

Status Daemon::Impl::VerifyAuditChain() {
  TURNOUT_ASSIGN_OR_RETURN(state::AuditReport report, store->VerifyAudit());
  if (!report.trusted()) {
    MarkAuditBroken(report.ToString());
    return Status::Ok();
  }
  if (!report.ok()) Log(report.ToString());
  std::lock_guard<std::mutex> lock(audit_mu);
  audit_broken = false;
  audit_problem.clear();
  audit_checked_seq = report.last_seq;
  audit_checked_hash = report.last_hash;
  next_audit_check = clock.Now() + kAuditCheckEvery;
  return Status::Ok();
}

void Daemon::Impl::CheckNewAuditEntries() {
  int64_t seq;
  std::string hash;
  {
    std::lock_guard<std::mutex> lock(audit_mu);
    if (audit_broken || clock.Now() < next_audit_check) return;
    seq = audit_checked_seq;
    hash = audit_checked_hash;
    next_audit_check = clock.Now() + kAuditCheckEvery;
  }
  Result<state::AuditReport> report = store->VerifyAuditFrom(seq, hash);
  if (!report.ok()) return;  // the check could not run (a busy database): again next time
  if (!report->ok()) {
    MarkAuditBroken(report->ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(audit_mu);
  audit_checked_seq = report->last_seq;
  audit_checked_hash = report->last_hash;
}

void Daemon::Impl::MarkAuditBroken(const std::string& problem) {
  {
    std::lock_guard<std::mutex> lock(audit_mu);
    if (audit_broken) return;
    audit_broken = true;
    audit_problem = problem;
  }
  Log(problem +
      "; turnoutd refuses to act until an operator checks it and runs "
      "`turnout audit acknowledge --reason \"...\"`");
  NotifyAuditBroken(problem);  // at start the hooks are not set up yet: StartAll tells them
}

void Daemon::Impl::NotifyAuditBroken(const std::string& problem) {
  if (!notifier) return;
  notify::Event n;
  n.name = "audit_broken";
  n.service = config.name;
  n.reason = problem;
  n.time = clock.WallNow();
  notifier->Notify(std::move(n));
}

Result<json> Daemon::Impl::AcknowledgeAudit(const std::string& reason, const std::string& actor) {
  std::string problem;
  {
    std::lock_guard<std::mutex> lock(audit_mu);
    problem = audit_problem;
  }
  if (problem.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(state::AuditReport report, store->VerifyAudit());
    problem = report.ToString();
  }
  json detail = {{"reason", reason}, {"problem", problem}};
  TURNOUT_ASSIGN_OR_RETURN(int64_t seq, store->AcknowledgeAuditBreak({actor, "audit.acknowledged",
                                                                      config.name, detail.dump()}));
  TURNOUT_RETURN_IF_ERROR(VerifyAuditChain());
  if (AuditBroken()) {
    return Internal("the audit log is still broken after the acknowledgement; see turnoutd.log");
  }
  Log("audit log break acknowledged by " + actor + " (entry " + std::to_string(seq) +
      "): " + reason);
  if (resume_pending) {
    resume_pending = false;
    TURNOUT_RETURN_IF_ERROR(ResumeOrWatch());
  }
  return json{{"acknowledged_seq", seq}, {"problem", problem}, {"reason", reason}};
}

void Daemon::Stop() {
  Impl& d = *impl_;
  if (d.server) d.server->Stop();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    d.stopping = true;
  }
  d.cv.notify_all();
  if (d.controller.joinable()) d.controller.join();
  if (d.analysis) d.analysis->Stop();
  if (d.notifier) {
    d.notifier->Flush(Millis(2000));  // let the last events out, briefly
    d.notifier->Stop();
  }
  if (d.started && d.store) d.Heartbeat(/*stopped=*/true);
  if (d.started) {
    std::error_code ec;
    fs::remove(d.paths.pid_file, ec);
    d.started = false;
    const bool router_runs = d.router_process && !d.router_process->info().stopped;
    d.Log(std::string("stopped; app instances") +
          (router_runs ? " and the router process keep running" : " keep running"));
  }
}

// ---- the controller thread -----------------------------------------------------------------

void Daemon::Impl::ControllerLoop() {
  for (;;) {
    std::function<void()> command;
    // Nothing to step: no deployment, or one held while the audit log is broken.
    const bool idle = !Busy() || AuditBroken();
    {
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) break;
      if (commands.empty() && idle) {
        cv.wait_for(lock, kRouterTick, [&] { return stopping || !commands.empty(); });
        if (stopping) break;
      }
      if (!commands.empty()) {
        command = std::move(commands.front());
        commands.pop_front();
      }
    }
    if (command) {
      command();
      continue;
    }
    if (clock.Now() >= next_heartbeat) Heartbeat(false);
    CheckNewAuditEntries();
    DropEndedOverlaps();
    if (Busy() && !AuditBroken()) StepOnce();
    if (clock.Now() >= next_tick) {
      supervisor->Tick(clock.Now());
      next_tick = clock.Now() + Millis(500);
    }
    // The router process is watched more closely: while it is down, nobody is served.
    if (router_process && clock.Now() >= next_router_tick) {
      router_process->Tick(clock.Now());
      next_router_tick = clock.Now() + kRouterTick;
    }
  }
  // Commands queued after the last step: answer them.
  std::deque<std::function<void()>> left;
  {
    std::lock_guard<std::mutex> lock(mu);
    left.swap(commands);
  }
  for (auto& c : left) c();
}

void Daemon::Impl::StepOnce() {
  if (!crash_state.empty() && engine->deployment().version == crash_version &&
      state::DeploymentStateName(engine->deployment().state) == crash_state) {
    Log("test crash point " + crash_version + ":" + crash_state + " reached: SIGKILL");
    ::raise(SIGKILL);
  }
  Result<controller::StepReport> report = engine->Step();
  if (!report.ok()) {
    // The store, the router or the platform refused; the step is idempotent, so it is retried
    // after a pause (commands are still taken meanwhile).
    bool repeated;
    {
      std::lock_guard<std::mutex> lock(progress_mu);
      repeated = last_error == report.status().ToString();
      last_error = report.status().ToString();
    }
    if (!repeated) Log("step failed, retrying every second: " + report.status().ToString());
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, Millis(1000), [&] { return stopping || !commands.empty(); });
    return;
  }
  {
    std::lock_guard<std::mutex> lock(progress_mu);
    last_error.clear();
  }
  SetProgress(*report);
}

void Daemon::Impl::SetProgress(const controller::StepReport& report) {
  const std::string state_name(state::DeploymentStateName(report.state));
  std::lock_guard<std::mutex> lock(progress_mu);
  if (progress_deployment != report.deployment_id || progress_state != state_name) {
    progress_deployment = report.deployment_id;
    progress_state = state_name;
    progress_since = clock.WallNow();
  }
  waiting_for = report.waiting_for;
}

void Daemon::Impl::OnEngineEvent(const controller::EngineEvent& e) {
  const state::Deployment& d = e.deployment;
  Log("deployment " + std::to_string(d.id) + " (revision " + std::to_string(d.revision) + ", " +
      d.version + " -> " + d.target_slot + "): " + e.name +
      (e.detail.empty() ? "" : ": " + e.detail));
  if (notifier) {
    notify::Event n;
    n.name = e.name;
    n.service = d.service;
    n.version = d.version;
    n.slot = d.target_slot;
    n.revision = d.revision;
    n.deployment_id = std::to_string(d.id);
    n.reason = e.detail;
    n.time = clock.WallNow();
    notifier->Notify(std::move(n));
  }
  if (e.name == "deploy_started") {
    UnwatchAll();
  } else if (e.name == "succeeded" || e.name == "rolled_back" || e.name == "failed") {
    WatchServing();
  }
}

Result<std::string> Daemon::Impl::StateId() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> id, store->GetSetting(kStateIdKey));
  if (id && !id->empty()) return *id;
  TURNOUT_ASSIGN_OR_RETURN(std::string made, RandomSecretHex(16));
  TURNOUT_RETURN_IF_ERROR(store->PutSetting(kStateIdKey, made));
  return made;
}

Status Daemon::Impl::RemoveUnrecordedContainers(const std::vector<state::InstanceRecord>& live) {
  std::set<std::string> recorded;
  for (const auto& rec : live) {
    Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle);
    if (h.ok()) recorded.insert(h->id);
  }
  TURNOUT_ASSIGN_OR_RETURN(std::vector<platform::ManagedContainer> found,
                           container_platform->ListManaged(config.name));
  size_t removed = 0;
  for (const auto& c : found) {
    if (recorded.count(c.handle.id) != 0) continue;
    Log("container " + c.name + " (" + c.slot + "-" + std::to_string(c.instance) + ", " +
        c.revision + ", " + c.state + ") is not on record: removing it");
    if (Status s = container_platform->Stop(c.handle); !s.ok()) {
      Log("cannot remove container " + c.name + ": " + s.message());
    } else {
      ++removed;
    }
  }
  if (removed > 0) Log("removed " + std::to_string(removed) + " container(s) not on record");
  return Status::Ok();
}

void Daemon::Impl::OnSupervisorEvent(const platform::SupervisorEvent& e) {
  auto it = watched.find(e.key);
  const std::string who = "instance " + e.key;
  switch (e.type) {
    case platform::SupervisorEvent::Type::kExited:
      Log(who + " " + e.status.ToString() + "; restarting it");
      (void)store->AppendAudit(
          state::AuditEvent{"turnoutd", "instance.exited", config.name,
                            json{{"instance", e.key}, {"status", e.status.ToString()}}.dump()});
      break;
    case platform::SupervisorEvent::Type::kRestarted:
      Log(who + " restarted (attempt " + std::to_string(e.attempt) + ", pid " +
          std::to_string(e.handle.pid) + ")");
      if (it != watched.end()) {
        state::InstanceRecord rec = it->second;
        rec.pid = e.handle.pid;
        rec.process_start_time = static_cast<int64_t>(e.handle.start_time_ticks);
        rec.platform_handle = platform::EncodeHandle(e.handle);
        rec.state = state::InstanceState::kRunning;
        if (Result<int64_t> id = store->UpsertInstance(rec); id.ok()) {
          rec.id = *id;
          it->second = rec;
        } else {
          Log("cannot record the restarted " + who + ": " + id.status().ToString());
        }
      }
      (void)store->AppendAudit(
          state::AuditEvent{"turnoutd", "instance.restarted", config.name,
                            json{{"instance", e.key}, {"pid", e.handle.pid}}.dump()});
      break;
    case platform::SupervisorEvent::Type::kRestartFailed:
      Log(who + " could not be restarted: " + e.error.ToString());
      break;
    case platform::SupervisorEvent::Type::kError:
      Log(who + ": " + e.error.ToString());
      break;
    case platform::SupervisorEvent::Type::kRestartScheduled:
    case platform::SupervisorEvent::Type::kLogRotated:
      break;
  }
}

// Watches the instances of the revision that serves traffic (between deployments the daemon
// keeps them up; during a deployment the engine's own rules decide what an exit means).
void Daemon::Impl::WatchServing() {
  UnwatchAll();
  Result<state::Service> svc = store->GetService(config.name);
  if (!svc.ok() || svc->active_revision == 0) return;
  Result<state::Deployment> serving = store->GetRevision(config.name, svc->active_revision);
  if (!serving.ok()) return;
  Result<controller::DeploymentSpec> spec = SavedSpec(serving->id);
  if (!spec.ok()) return;
  Result<std::vector<state::InstanceRecord>> live = store->ListInstances(config.name, true);
  if (!live.ok()) return;
  for (const auto& rec : *live) {
    // The serving revision's instances, and those a scale in place kept from the revisions
    // before it (the same definition: it restarts them from the serving one's).
    if (rec.slot != svc->active_slot || rec.deployment_id > serving->id) continue;
    if (rec.state != state::InstanceState::kRunning || rec.platform_handle.empty()) continue;
    Result<platform::InstanceHandle> handle = platform::DecodeHandle(rec.platform_handle);
    if (!handle.ok()) continue;
    const std::string key = rec.slot + "/" + std::to_string(rec.instance_index);
    supervisor->Watch(key,
                      controller::InstanceSpecFor(*spec, rec.slot, rec.instance_index,
                                                  static_cast<uint16_t>(rec.port)),
                      *handle, clock.Now());
    watched[key] = rec;
  }
}

void Daemon::Impl::UnwatchAll() {
  for (const auto& [key, rec] : watched) (void)supervisor->Unwatch(key);
  watched.clear();
}

// ---- commands (run on the controller thread) -----------------------------------------------

namespace {

// The parts of turnout.yaml that turnoutd applies when it starts, each as text to compare:
// the name and slots (the router's), the platform (its type, and a container engine's options),
// the hooks (the notifier) and the override header and secret (the engine's smoke tests).
std::vector<std::pair<std::string, std::string>> StartTimeParts(const service::ServiceConfig& c,
                                                                const std::string& config_dir) {
  auto canonical = [&c](auto fill) {
    service::ServiceConfig part;
    part.name = c.name;
    fill(part);
    return service::CanonicalServiceConfig(part);
  };
  return {
      {"name", c.name},
      {"slots", canonical([&c](service::ServiceConfig& p) { p.slots = c.slots; })},
      {"platform.type", c.platform.type},
      {"the container platform's options",
       c.platform.is_container() ? ContainerOptionsHash(ContainerOptionsFromConfig(c, config_dir))
                                 : ""},
      {"hooks", canonical([&c](service::ServiceConfig& p) { p.hooks = c.hooks; })},
      {"router.override_header", c.router.override_header},
      {"router.override_secret", c.router.override_secret},
  };
}

}  // namespace

Status Daemon::Impl::UseDatabase(const service::ServiceConfig& c) {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<DatabaseSettings> ds,
                           DatabaseSettingsFromConfig(c, config_dir, paths.dir));
  database.reset();  // joins its finished jobs; their outcomes are in the state store
  if (ds) {
    database = std::make_unique<DatabasePhases>(std::move(*ds), *store,
                                                [this](const std::string& l) { Log(l); });
  }
  return Status::Ok();
}

Result<controller::DeploymentSpec> Daemon::Impl::SpecFor(const std::string& version) {
  // The file is read again, so edits to it apply to the next deployment; the config hash the
  // revision records is this file's. What turnoutd applies only when it starts (the router's
  // name and slots, the platform, the hooks, the override header) is refused when it changed,
  // rather than recorded as applied.
  TURNOUT_ASSIGN_OR_RETURN(service::ServiceConfig now, service::LoadServiceConfig(config_path));
  const auto started = StartTimeParts(config, config_dir);
  const auto current = StartTimeParts(now, config_dir);
  std::string changed;
  for (size_t i = 0; i < started.size(); ++i) {
    if (started[i].second != current[i].second) {
      changed += (changed.empty() ? "" : ", ") + started[i].first;
    }
  }
  if (!changed.empty()) {
    return FailedPrecondition(
        "turnout.yaml changed " + changed +
        " since turnoutd started, which apply only when it starts; restart turnoutd "
        "(`turnout down` then `turnout up`) to deploy with them, or undo the change");
  }
  TURNOUT_ASSIGN_OR_RETURN(controller::DeploymentSpec spec,
                           SpecFromConfig(now, config_dir, paths, version));
  // The secrets' values as their sources hold them now; the hash covers their fingerprints.
  std::vector<platform::SecretRef> serving_refs;
  if (Result<controller::DeploymentSpec> serving = ServingSpec(); serving.ok()) {
    serving_refs = serving->secrets;
  }
  TURNOUT_ASSIGN_OR_RETURN(
      spec.secrets, secrets->RefsForDeploy(now.secrets, config_dir, serving_refs, clock.WallNow()));
  if (!spec.secrets.empty()) {
    spec.config_hash = Sha256Hex(spec.config_hash + "\nsecrets " + SecretRefsText(spec.secrets));
  }
  // The rules, the canary judge's settings and the dependencies of this deployment are the
  // file's as of now too.
  TURNOUT_ASSIGN_OR_RETURN(
      std::unique_ptr<Analysis> fresh,
      Analysis::Create(now, *control, clock, [this](const std::string& l) { Log(l); }));
  // And so is its database section (the backup, verification, rehearsal and migrations).
  TURNOUT_RETURN_IF_ERROR(UseDatabase(now));
  TURNOUT_RETURN_IF_ERROR(fresh->Start());
  analysis->Stop();
  analysis = std::move(fresh);
  return spec;
}

Result<state::Deployment> Daemon::Impl::Deploy(const std::string& version, const std::string& actor,
                                               const std::string& reason) {
  TURNOUT_RETURN_IF_ERROR(MakeRoomFor("new deployment of " + version, actor));
  TURNOUT_ASSIGN_OR_RETURN(controller::DeploymentSpec spec, SpecFor(version));
  spec.started_by = actor;
  spec.reason = reason;
  return engine->Begin(spec);
}

Status Daemon::Impl::MakeRoomFor(const std::string& what, const std::string& actor) {
  if (!Busy()) return Status::Ok();
  const state::Deployment& d = engine->deployment();
  if (d.state != DeploymentState::kScalingDown) {
    return AlreadyExists("deployment " + std::to_string(d.id) + " (revision " +
                         std::to_string(d.revision) + ", " + d.version + ") is in progress (" +
                         std::string(state::DeploymentStateName(d.state)) +
                         "); wait for it (`turnout status`), or `turnout abort` it");
  }
  // The previous deployment only keeps its old slot warm: that slot is where the new version
  // goes, so it is stopped now (after draining) instead of after scale_down_delay.
  return FinishScaleDown(what + " requested by " + actor);
}

Result<controller::DeploymentSpec> Daemon::Impl::SavedSpec(int64_t id) {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> saved,
                           store->GetSetting("controller.spec." + std::to_string(id)));
  if (!saved) return NotFound("deployment " + std::to_string(id) + " has no saved definition");
  return controller::DecodeSpec(*saved);
}

Result<controller::DeploymentSpec> Daemon::Impl::ServingSpec() {
  TURNOUT_ASSIGN_OR_RETURN(state::Service svc, store->GetService(config.name));
  if (svc.active_revision == 0) return NotFound("nothing serves yet");
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment serving,
                           store->GetRevision(config.name, svc.active_revision));
  return SavedSpec(serving.id);
}

Result<json> Daemon::Impl::Redefine(
    const std::string& kind, const std::string& actor, const std::string& reason,
    const std::function<Status(controller::DeploymentSpec*, json*)>& change) {
  TURNOUT_RETURN_IF_ERROR(MakeRoomFor(kind, actor));
  Result<state::Service> svc = store->GetService(config.name);
  if (!svc.ok() || svc->active_revision == 0) {
    return FailedPrecondition("nothing serves yet: `turnout deploy VERSION` first");
  }
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment serving,
                           store->GetRevision(config.name, svc->active_revision));
  Result<controller::DeploymentSpec> saved = SavedSpec(serving.id);
  if (!saved.ok()) {
    return FailedPrecondition("the serving revision " + std::to_string(serving.revision) +
                              " has no saved definition to " + kind + " with; `turnout deploy " +
                              serving.version + "` instead");
  }
  controller::DeploymentSpec spec = *saved;
  json detail = {{"kind", kind}, {"of_revision", serving.revision}};
  TURNOUT_RETURN_IF_ERROR(change(&spec, &detail));
  if (kind == "restart" || kind == "scale") {
    // In place, one instance at a time, when ports are chosen at launch; fixed ports cannot
    // hold a new instance beside the old one, so the idle slot takes the new set instead.
    spec.strategy = spec.base_port == 0 ? "rolling" : "blue_green";
  }
  // A scale in place keeps the serving instances (same definition) and only starts or stops
  // the difference; a restart or an env change replaces every instance.
  spec.keep_instances = kind == "scale" && spec.strategy == "rolling";
  if (kind != "restart") {
    // A changed definition is another configuration: its hash follows from the serving one and
    // the change (values included, so that two env values never share a hash).
    json changed = {{"replicas", spec.replicas}, {"env", spec.env}};
    if (!spec.secrets.empty()) changed["secrets"] = SecretRefsText(spec.secrets);
    spec.config_hash = Sha256Hex(serving.config_hash + "\n" + changed.dump());
  }
  // What changed, in words (names only): the default reason and the log line.
  std::string what = kind + " of revision " + std::to_string(serving.revision);
  if (kind == "scale") what += " to " + std::to_string(spec.replicas) + " instance(s)";
  if (detail.contains("secret")) {
    what +=
        ": " + detail.value("action", std::string()) + " " + detail.value("secret", std::string());
  }
  for (const char* list : {"set", "unset"}) {
    if (!detail.contains(list) || detail[list].empty()) continue;
    what += std::string(list == std::string("set") ? ": set " : ", unset ");
    for (size_t i = 0; i < detail[list].size(); ++i) {
      what += (i ? "," : "") + detail[list][i].get<std::string>();
    }
  }
  spec.started_by = actor;
  spec.reason = reason.empty() ? what : reason;
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment d, engine->Begin(spec));
  (void)store->PutSetting("daemon.change." + std::to_string(d.id), detail.dump());
  Log(what + " requested by " + actor + ": deployment " + std::to_string(d.id) + ", revision " +
      std::to_string(d.revision) + ", " + spec.strategy);
  json out = {{"action", kind}, {"deployment", DeploymentJson(d)}, {"change", detail}};
  out["deployment"]["change"] = detail;
  return out;
}

json Daemon::Impl::ChangeOf(int64_t id) {
  Result<std::optional<std::string>> saved =
      store->GetSetting("daemon.change." + std::to_string(id));
  if (!saved.ok() || !*saved) return nullptr;
  json j = json::parse(**saved, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(nullptr) : j;
}

namespace {

int64_t WallMillis(Clock::WallTime t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

Clock::WallTime FromWallMillis(int64_t ms) { return Clock::WallTime(Millis(ms)); }

platform::SecretRef* FindSecret(controller::DeploymentSpec* spec, const std::string& name) {
  for (auto& r : spec->secrets) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

Status NoSuchSecret(const std::string& name) {
  return NotFound("the serving revision has no secret " + name +
                  "; add it to turnout.yaml's secrets: and `turnout deploy` first");
}

}  // namespace

Result<json> Daemon::Impl::RotateSecret(const std::string& name, const std::string& value,
                                        Millis overlap, const std::string& actor,
                                        const std::string& reason) {
  const Clock::WallTime now = clock.WallNow();
  json audit;
  TURNOUT_ASSIGN_OR_RETURN(
      json out,
      Redefine(
          "secrets", actor, reason, [&](controller::DeploymentSpec* spec, json* detail) -> Status {
            platform::SecretRef* ref = FindSecret(spec, name);
            if (ref == nullptr) return NoSuchSecret(name);
            if (ref->previous_generation > 0) {
              return FailedPrecondition(name +
                                        "_PREVIOUS still holds the value before the last rotation; "
                                        "`turnout secrets drop-previous " +
                                        name +
                                        "` first (tokens signed with it stop being accepted)");
            }
            std::string fresh = value;
            if (fresh.empty()) {
              TURNOUT_ASSIGN_OR_RETURN(fresh, RandomSecretHex());
            }
            const std::string fingerprint = secrets->Fingerprint(fresh);
            if (fingerprint == ref->fingerprint) {
              return FailedPrecondition("the new value of " + name +
                                        " is the one it has; nothing to roll out");
            }
            TURNOUT_ASSIGN_OR_RETURN(int64_t generation,
                                     secrets->AddGeneration(name, fresh, "rotated", now));
            if (overlap.count() > 0) {
              ref->previous_generation = ref->generation;
              ref->previous_fingerprint = ref->fingerprint;
            }
            (*detail)["secret"] = name;
            (*detail)["action"] = "rotate";
            (*detail)["generation"] = generation;
            (*detail)["fingerprint"] = fingerprint;
            (*detail)["previous_fingerprint"] = ref->fingerprint;
            (*detail)["overlap_until"] =
                overlap.count() > 0 ? json(FormatTime(now + overlap)) : json(nullptr);
            ref->generation = generation;
            ref->fingerprint = fingerprint;
            audit = *detail;
            return Status::Ok();
          }));
  json meta = secrets->Meta(name);
  meta["rotated_ms"] = WallMillis(now);
  if (overlap.count() > 0) {
    meta["overlap_until_ms"] = WallMillis(now + overlap);
  } else {
    meta.erase("overlap_until_ms");
  }
  if (Status s = secrets->PutMeta(name, meta); !s.ok()) {
    Log("secrets: cannot record the rotation of " + name + ": " + s.ToString());
  }
  audit["deployment"] = out["deployment"].value("id", int64_t{0});
  (void)store->AppendAudit(state::AuditEvent{actor, "secret.rotated", config.name, audit.dump()});
  return out;
}

Result<json> Daemon::Impl::DropPreviousSecret(const std::string& name, const std::string& actor,
                                              const std::string& reason) {
  json audit;
  TURNOUT_ASSIGN_OR_RETURN(
      json out, Redefine("secrets", actor, reason,
                         [&](controller::DeploymentSpec* spec, json* detail) -> Status {
                           platform::SecretRef* ref = FindSecret(spec, name);
                           if (ref == nullptr) return NoSuchSecret(name);
                           if (ref->previous_generation == 0) {
                             return FailedPrecondition(name +
                                                       " has no previous value live; nothing "
                                                       "to drop");
                           }
                           (*detail)["secret"] = name;
                           (*detail)["action"] = "drop_previous";
                           (*detail)["fingerprint"] = ref->fingerprint;
                           (*detail)["dropped_fingerprint"] = ref->previous_fingerprint;
                           ref->previous_generation = 0;
                           ref->previous_fingerprint.clear();
                           audit = *detail;
                           return Status::Ok();
                         }));
  json meta = secrets->Meta(name);
  meta.erase("overlap_until_ms");
  (void)secrets->PutMeta(name, meta);
  audit["deployment"] = out["deployment"].value("id", int64_t{0});
  (void)store->AppendAudit(
      state::AuditEvent{actor, "secret.previous_dropped", config.name, audit.dump()});
  return out;
}

void Daemon::Impl::DropEndedOverlaps() {
  if (clock.Now() < next_overlap_check) return;
  next_overlap_check = clock.Now() + Millis(1000);
  if (AuditBroken()) return;
  if (Busy() && engine->deployment().state != DeploymentState::kScalingDown) return;
  Result<controller::DeploymentSpec> spec = ServingSpec();
  if (!spec.ok()) return;
  const int64_t now = WallMillis(clock.WallNow());
  for (const platform::SecretRef& ref : spec->secrets) {
    if (ref.previous_generation == 0) continue;
    const int64_t until = secrets->Meta(ref.name).value("overlap_until_ms", int64_t{0});
    if (until > now) continue;
    Result<json> out = DropPreviousSecret(ref.name, "turnoutd",
                                          "the overlap of " + ref.name + "'s rotation ended");
    if (!out.ok()) {
      Log("secrets: cannot drop " + ref.name + "_PREVIOUS yet: " + out.status().message());
      next_overlap_check = clock.Now() + Millis(30000);
    }
    return;  // one revision at a time
  }
}

api::Reply Daemon::Impl::SecretsReply() {
  std::vector<platform::SecretRef> serving;
  if (Result<controller::DeploymentSpec> spec = ServingSpec(); spec.ok()) {
    serving = spec->secrets;
  }
  Result<service::ServiceConfig> now = service::LoadServiceConfig(config_path);
  const std::vector<service::SecretConfig>& declared = now.ok() ? now->secrets : config.secrets;
  json list = json::array();
  auto entry = [&](const std::string& name) -> json& {
    for (auto& e : list) {
      if (e["name"] == name) return e;
    }
    list.push_back({{"name", name},
                    {"source", nullptr},
                    {"as", nullptr},
                    {"generation", nullptr},
                    {"fingerprint", nullptr},
                    {"rotated_at", nullptr},
                    {"previous", nullptr}});
    return list.back();
  };
  for (const auto& s : declared) {
    json& e = entry(s.name);
    e["source"] = s.source();
    e["as"] = s.as;
  }
  for (const auto& r : serving) {
    json& e = entry(r.name);
    e["as"] = r.as;
    e["generation"] = r.generation;
    e["fingerprint"] = r.fingerprint;
    const json meta = secrets->Meta(r.name);
    if (meta.contains("rotated_ms")) {
      e["rotated_at"] = FormatTime(FromWallMillis(meta.value("rotated_ms", int64_t{0})));
    }
    if (r.previous_generation > 0) {
      const int64_t until = meta.value("overlap_until_ms", int64_t{0});
      e["previous"] = {
          {"generation", r.previous_generation},
          {"fingerprint", r.previous_fingerprint},
          {"until", until > 0 ? json(FormatTime(FromWallMillis(until))) : json(nullptr)}};
    }
  }
  return Ok(json{{"service", config.name}, {"secrets", list}});
}

Status Daemon::Impl::FinishScaleDown(const std::string& reason) {
  TURNOUT_RETURN_IF_ERROR(engine->ExpediteScaleDown(reason));
  const Clock::TimePoint deadline = clock.Now() + kFinishPreviousTimeout;
  while (Busy()) {
    if (clock.Now() > deadline) {
      return Status(StatusCode::kDeadlineExceeded,
                    "the previous deployment did not finish scaling down within 60 s");
    }
    TURNOUT_ASSIGN_OR_RETURN(controller::StepReport r, engine->Step());
    SetProgress(r);
  }
  return Status::Ok();
}

Result<json> Daemon::Impl::Rollback(std::optional<int64_t> to_revision, const std::string& actor,
                                    const json& confirm) {
  if (Busy()) {
    const state::Deployment d = engine->deployment();
    if (to_revision && *to_revision != d.revision) {
      return FailedPrecondition("deployment " + std::to_string(d.id) + " (revision " +
                                std::to_string(d.revision) +
                                ") is in progress; `turnout rollback` without --to rolls it back, "
                                "then --to N can redeploy another revision");
    }
    (void)store->PutSetting("daemon.db." + std::to_string(d.id) + ".confirm", confirm.dump());
    const Clock::TimePoint t0 = clock.Now();
    TURNOUT_RETURN_IF_ERROR(engine->RequestRollback("by " + actor));
    const double ms = std::chrono::duration<double, std::milli>(clock.Now() - t0).count();
    json out = {
        {"action", "rollback"},
        {"deployment", DeploymentJson(engine->deployment())},
        {"switched_back", !d.previous_slot.empty() && (d.state == DeploymentState::kBaking ||
                                                       d.state == DeploymentState::kScalingDown ||
                                                       d.state == DeploymentState::kSwitching)},
        {"took_ms", ms}};
    return out;
  }
  TURNOUT_ASSIGN_OR_RETURN(state::Service svc, store->GetService(config.name));
  if (svc.active_revision == 0) return FailedPrecondition("nothing has been deployed yet");
  std::optional<state::Deployment> target;
  if (to_revision) {
    Result<state::Deployment> d = store->GetRevision(config.name, *to_revision);
    if (!d.ok()) {
      return NotFound("there is no revision " + std::to_string(*to_revision) +
                      "; `turnout history` lists them");
    }
    if (d->state != DeploymentState::kSucceeded) {
      return FailedPrecondition("revision " + std::to_string(*to_revision) + " (" + d->version +
                                ") never succeeded (" +
                                std::string(state::DeploymentStateName(d->state)) +
                                "); pick one that did from `turnout history`");
    }
    target = *d;
  } else {
    TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Deployment> history,
                             store->History(config.name, 0));
    for (const auto& d : history) {
      if (d.revision < svc.active_revision && d.state == DeploymentState::kSucceeded) {
        target = d;
        break;
      }
    }
    if (!target) {
      return FailedPrecondition("there is no earlier successful revision to roll back to");
    }
  }
  if (target->revision == svc.active_revision) {
    return FailedPrecondition("revision " + std::to_string(target->revision) + " (" +
                              target->version + ") is already serving");
  }
  // The earlier revision's own definition, as it was deployed (not today's turnout.yaml).
  controller::DeploymentSpec spec;
  Result<controller::DeploymentSpec> decoded = SavedSpec(target->id);
  if (decoded.ok()) {
    spec = *decoded;
    // The app as that revision ran it, the database as turnout.yaml says now (its URL, the
    // backups, the verification): a file that cannot be read keeps the current settings, as a
    // rollback must not wait for a fix of the file.
    Result<service::ServiceConfig> now = service::LoadServiceConfig(config_path);
    Status used = now.ok() ? UseDatabase(*now) : now.status();
    if (!used.ok()) Log("rollback: database settings kept as they were: " + used.message());
  } else {
    TURNOUT_ASSIGN_OR_RETURN(spec, SpecFor(target->version));
  }
  spec.started_by = actor;
  // The instances serving may be of another version or definition: each one is replaced.
  spec.keep_instances = false;
  spec.reason =
      "rollback to revision " + std::to_string(target->revision) + " (" + target->version + ")";
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment d, engine->Begin(spec));
  // The schema the target revision served with, for the database ladder of the redeploy.
  if (Result<std::optional<std::string>> v =
          store->GetSetting("daemon.db." + std::to_string(target->id) + ".version_after");
      v.ok() && *v) {
    (void)store->PutSetting("daemon.db." + std::to_string(d.id) + ".target_version", **v);
  }
  (void)store->PutSetting("daemon.db." + std::to_string(d.id) + ".confirm", confirm.dump());
  return json{{"action", "redeploy"},
              {"deployment", DeploymentJson(d)},
              {"rollback_to", target->revision},
              {"switched_back", false}};
}

Result<json> Daemon::Impl::Switch(const std::string& slot, const std::string& actor) {
  if (Busy()) {
    return FailedPrecondition(
        "a deployment is in progress; use `turnout rollback` or `turnout abort` instead");
  }
  if (std::find(config.slots.begin(), config.slots.end(), slot) == config.slots.end()) {
    return NotFound("there is no slot '" + slot + "'");
  }
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> live,
                           store->ListInstances(config.name, true));
  int64_t deployment_id = 0;
  for (const auto& rec : live) {
    if (rec.slot == slot && rec.state == state::InstanceState::kRunning) {
      deployment_id = rec.deployment_id;
    }
  }
  if (deployment_id == 0) {
    return FailedPrecondition("slot " + slot +
                              " has no running instances; deploy a version to it first");
  }
  TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus st, control->GetSlotStatus(slot));
  const bool healthy =
      !st.instances.empty() && std::all_of(st.instances.begin(), st.instances.end(),
                                           [](const auto& i) { return i.healthy && !i.ejected; });
  if (!healthy) {
    return FailedPrecondition("the router does not see every instance of " + slot +
                              " healthy; `turnout health-check " + slot + "` shows why");
  }
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment d, store->GetDeployment(deployment_id));
  const Clock::TimePoint t0 = clock.Now();
  TURNOUT_RETURN_IF_ERROR(control->Switch(slot).status());
  const double ms = std::chrono::duration<double, std::milli>(clock.Now() - t0).count();
  TURNOUT_RETURN_IF_ERROR(
      store->SetActive(config.name, slot, d.revision, "manual switch by " + actor));
  WatchServing();
  return json{{"slot", slot}, {"revision", d.revision}, {"version", d.version}, {"took_ms", ms}};
}

Result<router::MaintenancePolicy> Daemon::Impl::MaintenancePage() {
  // What users will see is read now, so that a page edited since turnoutd started is the one
  // served.
  TURNOUT_ASSIGN_OR_RETURN(service::ServiceConfig now, service::LoadServiceConfig(config_path));
  const service::MaintenanceConfig& mc = now.maintenance;
  router::MaintenancePolicy m;
  m.retry_after_seconds = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(mc.retry_after).count());
  m.content_type = mc.content_type;
  if (!mc.page.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(m.page, ReadSmallRegularFile(mc.page, "the maintenance page",
                                                          service::kMaxMaintenancePage));
  }
  return m;
}

Result<json> Daemon::Impl::SetMaintenance(bool enabled, const std::string& reason,
                                          const std::string& actor) {
  if (Busy()) {
    return FailedPrecondition(
        "a deployment is in progress; wait for it or `turnout abort` it, "
        "then turn maintenance " +
        std::string(enabled ? "on" : "off"));
  }
  router::MaintenancePolicy m;
  if (enabled) {
    TURNOUT_ASSIGN_OR_RETURN(m, MaintenancePage());
  }
  m.enabled = enabled;
  TURNOUT_RETURN_IF_ERROR(control->SetMaintenance(m).status());
  // A recreate that begins while maintenance is on leaves it on, naming who turned it on.
  (void)store->PutSetting(kMaintenanceOwnerKey,
                          enabled ? actor + (reason.empty() ? "" : ": " + reason) : "");
  json detail = {{"enabled", enabled}, {"reason", reason}};
  if (enabled) {
    detail["retry_after_s"] = m.retry_after_seconds;
    detail["page_bytes"] = m.page.size();
  }
  TURNOUT_RETURN_IF_ERROR(
      store
          ->AppendAudit(state::AuditEvent{
              actor, enabled ? "service.maintenance_on" : "service.maintenance_off", config.name,
              detail.dump()})
          .status());
  Log(std::string("maintenance ") + (enabled ? "on" : "off") + " by " + actor +
      (reason.empty() ? "" : " (" + reason + ")"));
  json out = {{"maintenance", enabled}};
  if (enabled) {
    out["retry_after_s"] = m.retry_after_seconds;
    out["page_bytes"] = m.page.size();
  }
  return out;
}

// `turnout down --stop-instances`: every live instance of the service is stopped (gracefully,
// after the router drained it). Refused while a deployment runs.
Result<json> Daemon::Impl::StopAll(const std::string& actor, bool stop_router) {
  if (Busy() && engine->deployment().state == DeploymentState::kScalingDown) {
    TURNOUT_RETURN_IF_ERROR(FinishScaleDown("instances stopped by " + actor));
  }
  if (Busy()) {
    return FailedPrecondition("a deployment is in progress; `turnout abort` it first");
  }
  UnwatchAll();
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> live,
                           store->ListInstances(config.name, true));
  int stopped = 0;
  for (const auto& rec : live) {
    TURNOUT_RETURN_IF_ERROR(store->SetInstanceState(rec.id, state::InstanceState::kStopping));
    if (Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle); h.ok()) {
      TURNOUT_RETURN_IF_ERROR(platform->Stop(*h));
    }
    TURNOUT_RETURN_IF_ERROR(store->SetInstanceState(rec.id, state::InstanceState::kStopped));
    ++stopped;
  }
  TURNOUT_RETURN_IF_ERROR(
      store
          ->AppendAudit(state::AuditEvent{actor, "service.instances_stopped", config.name,
                                          json{{"stopped", stopped}}.dump()})
          .status());
  Log("stopped " + std::to_string(stopped) + " instance(s) (requested by " + actor + ")");
  json out = {{"stopped", stopped}, {"router_stopped", false}};
  if (stop_router && router_process) {
    TURNOUT_RETURN_IF_ERROR(router_process->StopProcess());
    TURNOUT_RETURN_IF_ERROR(
        store->AppendAudit(state::AuditEvent{actor, "router.stopped", config.name, "{}"}).status());
    out["router_stopped"] = true;
  }
  return out;
}

Result<json> Daemon::Impl::Prune(bool dry_run, const std::string& actor) {
  const int on_disk = config.revisions.on_disk;
  if (!container_platform) {
    return json{{"platform", config.platform.type},
                {"dry_run", dry_run},
                {"on_disk", on_disk},
                {"images", json::array()},
                {"containers", json::array()},
                {"freed_bytes", 0},
                {"message",
                 "nothing to prune: process revisions keep nothing on disk (the version's "
                 "files are in the working directory you provide; each instance's log file is "
                 "reused by the next revision in its slot), so revisions.on_disk (" +
                     std::to_string(on_disk) + ") removes nothing"}};
  }
  if (Busy() && engine->deployment().state != DeploymentState::kScalingDown) {
    const state::Deployment d = engine->deployment();
    return FailedPrecondition("deployment " + std::to_string(d.id) + " (" + d.version +
                              ") is in progress; prune after it ends");
  }
  TURNOUT_ASSIGN_OR_RETURN(state::Service svc, store->GetService(config.name));
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Deployment> history, store->History(config.name, 0));
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> live,
                           store->ListInstances(config.name, true));
  std::set<int64_t> live_deployments;
  std::vector<std::string> recorded;
  for (const auto& rec : live) {
    live_deployments.insert(rec.deployment_id);
    if (Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle); h.ok()) {
      recorded.push_back(h->id);
    }
  }
  std::sort(history.begin(), history.end(),
            [](const state::Deployment& a, const state::Deployment& b) {
              return a.revision > b.revision;
            });
  std::vector<platform::PruneRevision> revisions;
  json kept_revisions = json::array();
  for (size_t i = 0; i < history.size(); ++i) {
    const state::Deployment& d = history[i];
    platform::PruneRevision r;
    r.revision = d.revision;
    r.version = d.version;
    r.keep = static_cast<int>(i) < on_disk || d.revision == svc.active_revision ||
             live_deployments.count(d.id) != 0 || !state::IsTerminal(d.state);
    if (Result<controller::DeploymentSpec> spec = SavedSpec(d.id); spec.ok()) r.image = spec->image;
    if (r.keep) kept_revisions.push_back(d.revision);
    revisions.push_back(std::move(r));
  }
  TURNOUT_ASSIGN_OR_RETURN(platform::PruneReport report,
                           container_platform->Prune(config.name, revisions, recorded, dry_run));
  json images = json::array();
  int removed_images = 0;
  for (const auto& i : report.images) {
    json revs = json::array();
    for (size_t k = 0; k < i.revisions.size(); ++k) {
      revs.push_back({{"revision", i.revisions[k]}, {"version", i.versions[k]}});
    }
    json image = {{"id", i.id},
                  {"tags", i.tags},
                  {"revisions", revs},
                  {"bytes", i.bytes},
                  {"removed", i.removed}};
    if (!i.removed) image["kept_because"] = i.kept_because;
    if (i.removed) ++removed_images;
    images.push_back(std::move(image));
  }
  json containers = json::array();
  int removed_containers = 0;
  for (const auto& c : report.containers) {
    json one = {{"id", c.id},
                {"name", c.name},
                {"version", c.version},
                {"state", c.state},
                {"removed", c.removed}};
    if (!c.error.empty()) one["error"] = c.error;
    if (c.removed) ++removed_containers;
    containers.push_back(std::move(one));
  }
  json out = {{"platform", "container"},          {"dry_run", dry_run}, {"on_disk", on_disk},
              {"kept_revisions", kept_revisions}, {"images", images},   {"containers", containers},
              {"freed_bytes", report.freed_bytes}};
  if (!dry_run && (removed_images > 0 || removed_containers > 0)) {
    TURNOUT_RETURN_IF_ERROR(
        store
            ->AppendAudit(state::AuditEvent{actor, "service.pruned", config.name,
                                            json{{"images", removed_images},
                                                 {"containers", removed_containers},
                                                 {"freed_bytes", report.freed_bytes}}
                                                .dump()})
            .status());
    Log("pruned " + std::to_string(removed_images) + " image(s) and " +
        std::to_string(removed_containers) + " stopped container(s), " +
        std::to_string(report.freed_bytes) + " bytes (requested by " + actor + ")");
  }
  return out;
}

// ---- the API -------------------------------------------------------------------------------

api::Reply Daemon::Handle(const api::Request& request) { return impl_->Handle(request); }

api::Reply Daemon::Impl::Handle(const api::Request& r) {
  const std::string& p = r.path;
  const bool get = r.method == "GET";
  const bool post = r.method == "POST";
  if (p == "/healthz") {
    api::Reply ok;
    ok.content_type = "text/plain";
    ok.body = "ok\n";
    return ok;
  }
  if (p == "/v1/status" && get) return StatusReply();
  if (p == "/v1/deployments" && get) return HistoryReply(r);
  if (p.rfind("/v1/deployments/", 0) == 0 && get) return DeploymentReply(p.substr(16));
  if (p == "/v1/health" && get) return HealthReply(r);
  if (p == "/v1/slo" && get) return SloReply();
  if (p == "/v1/logs" && get) return LogsReply(r);
  if (p == "/v1/secrets" && get) return SecretsReply();
  if ((p == "/v1/audit" || p == "/v1/audit/verify" || p == "/v1/events") && get) {
    return AuditReply(r);
  }
  if (!post) {
    static const std::set<std::string> kPosts = {"/v1/deploy",
                                                 "/v1/rollback",
                                                 "/v1/switch",
                                                 "/v1/approve",
                                                 "/v1/abort",
                                                 "/v1/stop-instances",
                                                 "/v1/pause",
                                                 "/v1/resume",
                                                 "/v1/promote",
                                                 "/v1/audit/acknowledge",
                                                 "/v1/maintenance",
                                                 "/v1/prune",
                                                 "/v1/restart",
                                                 "/v1/scale",
                                                 "/v1/env",
                                                 "/v1/secrets/rotate",
                                                 "/v1/secrets/drop-previous"};
    if (kPosts.count(p)) return api::Reply::Error(405, p + " needs POST");
    return api::Reply::Error(404, "unknown endpoint " + r.method + " " + p);
  }
  Result<ApiCommand> command = ParseApiCommand(r);
  if (!command.ok()) return api::Reply::FromStatus(command.status());
  const std::string& actor = command->actor;
  if (p == "/v1/audit/acknowledge") {
    Result<json> out = RunOnController<json>(
        [&]() -> Result<json> { return AcknowledgeAudit(command->reason, actor); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  {
    std::lock_guard<std::mutex> lock(audit_mu);
    if (audit_broken) {
      return api::Reply::FromStatus(FailedPrecondition(
          "turnoutd refuses to act: " + audit_problem +
          ". Find out what changed the log (restore it from a backup if you can), then run "
          "`turnout audit acknowledge --reason \"...\"` to record why it may be trusted again"));
    }
  }
  if (p == "/v1/deploy") {
    Result<state::Deployment> d =
        RunOnController<state::Deployment>([&]() -> Result<state::Deployment> {
          return Deploy(command->version, actor, command->reason);
        });
    if (!d.ok()) return api::Reply::FromStatus(d.status());
    return api::Reply::Json(201, json{{"deployment", DeploymentJson(*d)}}.dump());
  }
  if (p == "/v1/secrets/rotate" || p == "/v1/secrets/drop-previous") {
    const ApiCommand& c = *command;
    Result<json> out = RunOnController<json>([&]() -> Result<json> {
      if (p == "/v1/secrets/rotate") {
        return RotateSecret(c.secret_name, c.secret_value, Millis(c.overlap_ms), actor, c.reason);
      }
      return DropPreviousSecret(c.secret_name, actor, c.reason);
    });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return api::Reply::Json(201, out->dump());
  }
  if (p == "/v1/restart" || p == "/v1/scale" || p == "/v1/env") {
    const ApiCommand& c = *command;
    Result<json> out = RunOnController<json>([&]() -> Result<json> {
      if (p == "/v1/restart") {
        return Redefine("restart", actor, c.reason,
                        [](controller::DeploymentSpec*, json*) { return Status::Ok(); });
      }
      if (p == "/v1/scale") {
        return Redefine("scale", actor, c.reason,
                        [&](controller::DeploymentSpec* spec, json* detail) -> Status {
                          if (spec->replicas == c.replicas) {
                            return FailedPrecondition("the serving revision already runs " +
                                                      std::to_string(c.replicas) + " instance(s)");
                          }
                          (*detail)["replicas_before"] = spec->replicas;
                          (*detail)["replicas"] = c.replicas;
                          spec->replicas = c.replicas;
                          return Status::Ok();
                        });
      }
      return Redefine(
          "env", actor, c.reason, [&](controller::DeploymentSpec* spec, json* detail) -> Status {
            // A secret's variables are turnout.yaml's secrets: to set.
            for (const auto& r : spec->secrets) {
              for (const std::string& var :
                   {r.name, r.name + "_PREVIOUS", r.name + "_FILE", r.name + "_PREVIOUS_FILE"}) {
                const bool named =
                    std::any_of(c.env_set.begin(), c.env_set.end(),
                                [&](const auto& kv) { return kv.first == var; }) ||
                    std::find(c.env_unset.begin(), c.env_unset.end(), var) != c.env_unset.end();
                if (named) {
                  return FailedPrecondition(var + " belongs to the secret " + r.name +
                                            " (turnout.yaml secrets:); `turnout secrets rotate " +
                                            r.name + "` changes it");
                }
              }
            }
            auto& env = spec->env;
            const auto before = env;
            for (const auto& name : c.env_unset) {
              std::erase_if(env, [&](const auto& kv) { return kv.first == name; });
            }
            for (const auto& change : c.env_set) {
              // (clang 14 cannot capture a structured binding in a lambda)
              const std::string& name = change.first;
              const std::string& value = change.second;
              auto it = std::find_if(env.begin(), env.end(),
                                     [&](const auto& kv) { return kv.first == name; });
              if (it == env.end()) {
                env.emplace_back(name, value);
              } else {
                it->second = value;
              }
            }
            if (env == before) {
              return FailedPrecondition(
                  "the serving revision's environment already is so; nothing to "
                  "roll out");
            }
            json set = json::array();
            for (const auto& kv : c.env_set) set.push_back(kv.first);
            (*detail)["set"] = set;
            (*detail)["unset"] = c.env_unset;
            return Status::Ok();
          });
    });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return api::Reply::Json(201, out->dump());
  }
  if (p == "/v1/rollback") {
    const std::optional<int64_t> to = command->to_revision;
    const json confirm = {{"data_loss", command->confirm_data_loss},
                          {"unsupported_schema", command->confirm_unsupported_schema}};
    Result<json> out =
        RunOnController<json>([&]() -> Result<json> { return Rollback(to, actor, confirm); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/switch") {
    const std::string& slot = command->slot;
    Result<json> out = RunOnController<json>([&]() -> Result<json> { return Switch(slot, actor); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/maintenance") {
    Result<json> out = RunOnController<json>(
        [&]() -> Result<json> { return SetMaintenance(command->enabled, command->reason, actor); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/stop-instances") {
    const bool stop_router = command->router;
    Result<json> out =
        RunOnController<json>([&]() -> Result<json> { return StopAll(actor, stop_router); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/prune") {
    const bool dry_run = command->dry_run;
    Result<json> out =
        RunOnController<json>([&]() -> Result<json> { return Prune(dry_run, actor); });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/pause" || p == "/v1/resume" || p == "/v1/promote") {
    const bool full = command->full;
    Result<json> out = RunOnController<json>([&]() -> Result<json> {
      if (!Busy()) return FailedPrecondition("no deployment is in progress");
      if (p == "/v1/pause") {
        TURNOUT_RETURN_IF_ERROR(engine->Pause(actor));
      } else if (p == "/v1/resume") {
        TURNOUT_RETURN_IF_ERROR(engine->Unpause(actor));
      } else {
        TURNOUT_RETURN_IF_ERROR(engine->Promote(full, actor));
      }
      return json{{"deployment", DeploymentJson(engine->deployment())},
                  {"paused", engine->paused()}};
    });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  if (p == "/v1/approve" || p == "/v1/abort") {
    const bool approve = p == "/v1/approve";
    // An abort must not wait behind a long step (an image pull): the step is interrupted.
    if (!approve) engine->Interrupt();
    Result<json> out = RunOnController<json>([&]() -> Result<json> {
      if (!approve) engine->ClearInterrupt();
      if (!engine->has_deployment() || !Busy()) {
        return FailedPrecondition("no deployment is in progress");
      }
      TURNOUT_RETURN_IF_ERROR(approve ? engine->Approve(actor) : engine->Abort(actor));
      return json{{"deployment", DeploymentJson(engine->deployment())}};
    });
    if (!out.ok()) return api::Reply::FromStatus(out.status());
    return Ok(*out);
  }
  return api::Reply::Error(404, "unknown endpoint " + r.method + " " + p);
}

api::Reply Daemon::Impl::StatusReply() {
  json out;
  out["service"] = config.name;
  out["config"] = config_path;
  out["state_dir"] = paths.dir;
  out["daemon"] = {{"pid", ::getpid()},
                   {"started_at", FormatTime(started_at)},
                   {"log_follows", log_follows->load()}};
  if (restart.last_alive) {
    out["daemon"]["previous"] = {{"end", restart.previous_end},
                                 {"last_alive", FormatTime(*restart.last_alive)}};
  }
  {
    std::lock_guard<std::mutex> lock(progress_mu);
    if (!resumed_summary.empty()) out["daemon"]["resumed"] = resumed_summary;
  }
  {
    std::lock_guard<std::mutex> lock(audit_mu);
    out["audit"] = {{"ok", !audit_broken}, {"verified_seq", audit_checked_seq}};
    if (audit_broken) {
      out["audit"]["problem"] = audit_problem;
      out["audit"]["warning"] =
          "the audit log is broken; turnoutd refuses to act until `turnout audit acknowledge "
          "--reason \"...\"`";
    }
  }
  Result<state::Service> svc = store->GetService(config.name);
  Result<std::vector<state::InstanceRecord>> live = store->ListInstances(config.name, true);
  if (svc.ok() && svc->active_revision > 0) {
    json active = {{"slot", svc->active_slot}, {"revision", svc->active_revision}};
    if (Result<state::Deployment> d = store->GetRevision(config.name, svc->active_revision);
        d.ok()) {
      active["version"] = d->version;
      active["since"] = d->finished_at ? FormatTime(*d->finished_at) : FormatTime(d->updated_at);
    }
    out["active"] = active;
  } else {
    out["active"] = nullptr;
  }
  Result<std::optional<state::Deployment>> current = store->ActiveDeployment(config.name);
  if (current.ok() && *current) {
    json d = DeploymentJson(**current);
    std::lock_guard<std::mutex> lock(progress_mu);
    if (progress_deployment == (*current)->id) {
      d["waiting_for"] = waiting_for;
      d["state_elapsed_ms"] = MillisBetween(progress_since, clock.WallNow());
    }
    if (!last_error.empty()) d["error"] = last_error;
    out["deployment"] = d;
  } else {
    out["deployment"] = nullptr;
  }
  if (Result<std::vector<state::Deployment>> h = store->History(config.name, 1);
      h.ok() && !h->empty()) {
    out["last_deployment"] = DeploymentJson(h->front());
  }
  json router_json;
  router_json["mode"] = router_process ? "process" : "external";
  if (router_process) {
    const RouterProcess::Info info = router_process->info();
    router_json["process"] = {{"pid", info.pid},           {"admin", info.admin},
                              {"log", info.log_path},      {"attached_at_start", info.attached},
                              {"restarts", info.restarts}, {"stopped", info.stopped}};
  }
  router_json["admin"] = router_admin_address;
  Result<router::RouterStatus> rs = control->GetStatus();
  Result<std::vector<router::SlotWindowMetrics>> windows =
      control->GetWindowMetrics(std::chrono::seconds(60));
  if (rs.ok()) {
    router_json["listen"] = rs->listen;
    if (router_admin_address.empty()) router_json["admin"] = rs->admin;
    router_json["policy"] = json::parse(router::PolicyToJson(rs->policy), nullptr, false);
    // The page itself is not status: its size is.
    router_json["policy"]["maintenance"]["page_bytes"] = rs->policy.maintenance.page.size();
    router_json["policy"]["maintenance"].erase("page");
    json slots = json::array();
    for (const auto& s : rs->slots) {
      json slot = {{"name", s.name},
                   {"receives_traffic", s.receives_traffic},
                   {"in_flight", s.in_flight},
                   {"drained", s.drained}};
      json instances = json::array();
      for (const auto& i : s.instances) {
        json inst = {{"address", i.address},
                     {"healthy", i.healthy},
                     {"ejected", i.ejected},
                     {"in_flight", i.in_flight}};
        if (live.ok()) {
          for (const auto& rec : *live) {
            if (rec.slot == s.name && RecordAddress(rec) == i.address) {
              inst["pid"] = rec.pid;
              inst["version"] = rec.version;
              inst["state"] = std::string(state::InstanceStateName(rec.state));
              inst["deployment_id"] = rec.deployment_id;
            }
          }
        }
        if (!inst.contains("state")) inst["state"] = "not running";
        instances.push_back(inst);
      }
      slot["instances"] = instances;
      if (windows.ok()) {
        for (const auto& w : *windows) {
          if (w.slot != s.name) continue;
          const metrics::Counters& c = w.window.counters;
          slot["last_60s"] = {{"requests", c.requests},
                              {"errors_5xx", c.by_class[5]},
                              {"aborted", c.by_class[0]},
                              {"error_rate", c.ErrorRate()},
                              {"p50_ms", w.window.total_latency.PercentileUs(50) / 1000.0},
                              {"p95_ms", w.window.total_latency.PercentileUs(95) / 1000.0},
                              {"p99_ms", w.window.total_latency.PercentileUs(99) / 1000.0}};
        }
      }
      slots.push_back(slot);
    }
    router_json["slots"] = slots;
  } else {
    router_json["error"] = rs.status().ToString();
  }
  out["router"] = router_json;
  return Ok(out);
}

api::Reply Daemon::Impl::DeploymentReply(const std::string& which) {
  Result<state::Deployment> d = NotFound("");
  if (which == "current" || which == "latest") {
    Result<std::vector<state::Deployment>> h = store->History(config.name, 1);
    if (!h.ok()) return api::Reply::FromStatus(h.status());
    if (h->empty()) return api::Reply::Error(404, "nothing has been deployed yet");
    d = h->front();
  } else if (which.rfind("rev", 0) == 0) {
    Result<int64_t> rev = ParseWholeNumber(which.substr(3), 1, INT64_MAX);
    if (!rev.ok()) return api::Reply::FromStatus(rev.status().WithContext("revision"));
    d = store->GetRevision(config.name, *rev);
  } else {
    char* end = nullptr;
    const long long id = std::strtoll(which.c_str(), &end, 10);
    if (which.empty() || *end != '\0' || id <= 0) {
      return api::Reply::Error(400, "expected a deployment id, rev<N>, or current");
    }
    d = store->GetDeployment(id);
  }
  if (!d.ok()) return api::Reply::FromStatus(d.status());
  json out = {{"deployment", DeploymentJson(*d)}};
  out["deployment"]["change"] = ChangeOf(d->id);
  Result<std::vector<state::Transition>> ts = store->Transitions(d->id);
  json transitions = json::array();
  if (ts.ok()) {
    for (const auto& t : *ts) {
      transitions.push_back({{"from", std::string(state::DeploymentStateName(t.from))},
                             {"to", std::string(state::DeploymentStateName(t.to))},
                             {"reason", t.reason},
                             {"at", FormatTime(t.at)}});
    }
  }
  out["transitions"] = transitions;
  json steps = json::array();
  if (Result<std::vector<state::StepRecord>> ss = store->Steps(d->id); ss.ok()) {
    for (const auto& s : *ss) steps.push_back(StepJson(s));
  }
  out["steps"] = steps;
  {
    std::lock_guard<std::mutex> lock(progress_mu);
    if (progress_deployment == d->id && !state::IsTerminal(d->state)) {
      out["waiting_for"] = waiting_for;
      out["state_elapsed_ms"] = MillisBetween(progress_since, clock.WallNow());
      if (!last_error.empty()) out["error"] = last_error;
    }
  }
  return Ok(out);
}

api::Reply Daemon::Impl::HistoryReply(const api::Request& r) {
  Result<int64_t> limit = r.QueryNumber("limit", 20, 1, 100000);
  if (!limit.ok()) return api::Reply::FromStatus(limit.status());
  Result<std::vector<state::Deployment>> h = store->History(config.name, static_cast<int>(*limit));
  if (!h.ok()) return api::Reply::FromStatus(h.status());
  Result<state::Service> svc = store->GetService(config.name);
  json list = json::array();
  for (const auto& d : *h) {
    json j = DeploymentJson(d);
    j["serving"] = svc.ok() && svc->active_revision == d.revision;
    j["change"] = ChangeOf(d.id);
    list.push_back(j);
  }
  return Ok(json{{"service", config.name}, {"deployments", list}});
}

api::Reply Daemon::Impl::HealthReply(const api::Request& r) {
  const std::string only = r.Query("slot");
  if (!only.empty() &&
      std::find(config.slots.begin(), config.slots.end(), only) == config.slots.end()) {
    return api::Reply::Error(404, "there is no slot '" + only + "'");
  }
  Result<std::vector<state::InstanceRecord>> live = store->ListInstances(config.name, true);
  if (!live.ok()) return api::Reply::FromStatus(live.status());
  json slots = json::array();
  bool all_ok = true;
  for (const auto& slot : config.slots) {
    if (!only.empty() && slot != only) continue;
    Result<router::SlotStatus> rs = control->GetSlotStatus(slot);
    json instances = json::array();
    for (const auto& rec : *live) {
      if (rec.slot != slot || rec.port == 0) continue;
      const std::string address = RecordAddress(rec);
      json inst = {{"address", address}, {"version", rec.version}, {"pid", rec.pid}};
      std::string process = "unknown";
      if (Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle);
          h.ok()) {
        if (Result<platform::InstanceStatus> st = platform->Inspect(*h); st.ok()) {
          process = st->ToString();
        }
      }
      inst["process"] = process;
      for (const auto& [name, probe] : {std::pair{"readiness", config.health.readiness},
                                        std::pair{"liveness", config.health.liveness}}) {
        controller::ProbeRequest req;
        req.address = address;
        req.path = probe.path;
        req.timeout = probe.timeout;
        const Clock::TimePoint t0 = clock.Now();
        Result<controller::ProbeResponse> resp = controller::HttpProbe(req);
        const double ms = std::chrono::duration<double, std::milli>(clock.Now() - t0).count();
        const bool ok = resp.ok() && resp->status >= 200 && resp->status < 300;
        all_ok = all_ok && (ok || std::string(name) == "liveness");
        inst[name] = {{"path", probe.path},
                      {"ok", ok},
                      {"status", resp.ok() ? resp->status : 0},
                      {"error", resp.ok() ? "" : resp.status().message()},
                      {"ms", ms}};
      }
      if (rs.ok()) {
        for (const auto& i : rs->instances) {
          if (i.address == address) {
            inst["router"] = {{"healthy", i.healthy}, {"ejected", i.ejected}};
          }
        }
      }
      instances.push_back(inst);
    }
    slots.push_back({{"name", slot},
                     {"receives_traffic", rs.ok() && rs->receives_traffic},
                     {"instances", instances}});
  }
  return Ok(json{{"ok", all_ok}, {"slots", slots}});
}

// The objectives of turnout.yaml over what the router measured for all slots together: the
// budget over the totals since the router started, and the burn rate of the last minute. (The
// router keeps two minutes of windows; the long windows of multi-window burn-rate alerts need a
// Prometheus that scrapes it.)
api::Reply Daemon::Impl::SloReply() {
  Result<std::vector<router::SlotWindowMetrics>> totals = control->GetCumulativeMetrics();
  if (!totals.ok()) return api::Reply::FromStatus(totals.status());
  Result<std::vector<router::SlotWindowMetrics>> minute =
      control->GetWindowMetrics(std::chrono::seconds(60));
  if (!minute.ok()) return api::Reply::FromStatus(minute.status());
  auto sum = [](const std::vector<router::SlotWindowMetrics>& all) {
    metrics::WindowSnapshot s;
    for (const auto& m : all) {
      s.counters.Merge(m.window.counters);
      s.total_latency.Merge(m.window.total_latency);
    }
    return s;
  };
  const metrics::WindowSnapshot all = sum(*totals);
  const metrics::WindowSnapshot last = sum(*minute);
  json objectives = json::array();
  for (const auto& o : config.slo.objectives) {
    const judge::EventCounts period = judge::CountEvents(o, all.counters, all.total_latency);
    const judge::EventCounts recent = judge::CountEvents(o, last.counters, last.total_latency);
    const judge::ErrorBudget budget = judge::ComputeErrorBudget(o.target, period);
    objectives.push_back({{"name", o.name},
                          {"target", o.target},
                          {"period_s", o.period.count()},
                          {"events", period.total},
                          {"good", period.good},
                          {"budget", judge::ToJson(budget)},
                          {"burn_rate_60s", judge::BurnRate(o.target, recent)},
                          {"summary", judge::DescribeErrorBudget(o, budget)}});
  }
  return Ok(json{{"service", config.name},
                 {"since", FormatTime(started_at)},
                 {"covers", "requests seen by the router since it started"},
                 {"objectives", objectives}});
}

api::Reply Daemon::Impl::LogsReply(const api::Request& r) {
  std::string slot = r.Query("slot");
  Result<int64_t> wanted = r.QueryNumber("lines", 50, 1, 10000);
  if (!wanted.ok()) return api::Reply::FromStatus(wanted.status());
  const int lines = static_cast<int>(*wanted);
  if (slot.empty()) {
    Result<state::Service> svc = store->GetService(config.name);
    slot = svc.ok() && !svc->active_slot.empty() ? svc->active_slot : config.slots[0];
  }
  Result<std::vector<state::InstanceRecord>> all = store->ListInstances(config.name, false);
  if (!all.ok()) return api::Reply::FromStatus(all.status());
  // The newest record of each instance index of the slot.
  std::map<int, state::InstanceRecord> newest;
  for (const auto& rec : *all) {
    if (rec.slot != slot) continue;
    auto it = newest.find(rec.instance_index);
    if (it == newest.end() || rec.deployment_id > it->second.deployment_id) {
      newest[rec.instance_index] = rec;
    }
  }
  if (r.Query("follow") == "1") {
    if (!container_platform) {
      return api::Reply::Error(
          400,
          "--follow reads the logs of containers from their engine; an instance of the "
          "process platform writes its log to a file (its path is in `turnout logs`): "
          "follow it with tail -f");
    }
    std::vector<std::pair<std::string, platform::InstanceHandle>> followed;
    for (const auto& [index, rec] : newest) {
      Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle);
      if (h.ok()) followed.emplace_back(slot + "-" + std::to_string(index), *h);
    }
    if (followed.empty()) {
      return api::Reply::Error(404, "no container has run in slot " + slot);
    }
    return FollowLogsReply(followed, lines);
  }
  json out = json::array();
  for (const auto& [index, rec] : newest) {
    std::string path;
    Result<platform::InstanceHandle> h = platform::DecodeHandle(rec.platform_handle);
    if (h.ok() && h->kind == platform::kContainerKind && container_platform) {
      // The engine keeps a container's logs (gone with the container once it is removed).
      out.push_back(
          {{"instance", slot + "-" + std::to_string(index)},
           {"version", rec.version},
           {"state", std::string(state::InstanceStateName(rec.state))},
           {"path", "container " + h->id.substr(0, 12)},
           {"text", container_platform->LogTail(*h, static_cast<size_t>(lines), 1 << 20)}});
      continue;
    }
    if (h.ok()) path = h->log_path;
    if (path.empty()) {
      path = paths.logs + "/" + config.name + "-" + slot + "-" + std::to_string(index) + ".log";
    }
    out.push_back({{"instance", slot + "-" + std::to_string(index)},
                   {"version", rec.version},
                   {"state", std::string(state::InstanceStateName(rec.state))},
                   {"path", path},
                   {"text", platform::ReadLogTail(path, static_cast<size_t>(lines), 1 << 20)}});
  }
  return Ok(json{{"slot", slot}, {"instances", out}});
}

api::Reply Daemon::Impl::FollowLogsReply(
    const std::vector<std::pair<std::string, platform::InstanceHandle>>& instances, int lines) {
  constexpr int kMaxLogFollows = 2;  // of the API's 4 handler threads
  if (log_follows->fetch_add(1) >= kMaxLogFollows) {
    log_follows->fetch_sub(1);
    return api::Reply::Error(503, "already " + std::to_string(kMaxLogFollows) +
                                      " `turnout logs --follow` at once: stop one of them "
                                      "first");
  }
  api::Reply reply;
  reply.status = 200;
  reply.content_type = "text/plain; charset=utf-8";
  platform::ContainerPlatform* containers = container_platform.get();
  reply.stream = [containers, instances, lines, follows = log_follows](
                     const api::Reply::StreamWrite& write, const std::atomic<bool>& gone) {
    std::mutex write_mu;
    const bool prefixed = instances.size() > 1;
    // Whole lines only, each with its instance's name when there are several.
    auto follow_one = [&](const std::string& name, const platform::InstanceHandle& handle) {
      const std::string prefix = prefixed ? "[" + name + "] " : "";
      std::string partial;
      auto out = [&](std::string_view piece) {
        partial.append(piece);
        std::string whole;
        for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
          whole += prefix + partial.substr(0, nl + 1);
          partial.erase(0, nl + 1);
        }
        if (whole.empty()) return !gone.load();
        std::lock_guard lock(write_mu);
        return write(whole);
      };
      Status s = containers->FollowLogs(handle, lines, out, gone);
      std::lock_guard lock(write_mu);
      if (!partial.empty()) write(prefix + partial + "\n");
      if (gone) return;
      write(prefix +
            (s.ok() ? "(the container stopped)\n" : "(the log ends here: " + s.message() + ")\n"));
    };
    std::vector<std::thread> more;
    for (size_t i = 1; i < instances.size(); ++i) {
      more.emplace_back(follow_one, instances[i].first, instances[i].second);
    }
    follow_one(instances[0].first, instances[0].second);
    for (auto& t : more) t.join();
    follows->fetch_sub(1);
  };
  return reply;
}

api::Reply Daemon::Impl::AuditReply(const api::Request& r) {
  if (r.path == "/v1/audit/verify") {
    Result<state::AuditReport> report = store->VerifyAudit();
    if (!report.ok()) return api::Reply::FromStatus(report.status());
    return Ok(json{{"ok", report->ok()},
                   {"acknowledged_seq", report->acknowledged_seq},
                   {"entries", report->entries},
                   {"last_seq", report->last_seq},
                   {"head_seq", report->head_seq},
                   {"head_lag", report->head_lag},
                   {"problem", std::string(state::AuditProblemKindName(report->kind))},
                   {"first_bad_seq", report->first_bad_seq},
                   {"message", report->ToString()}});
  }
  Result<int64_t> after_seq = r.QueryNumber("after", 0, 0, INT64_MAX);
  Result<int64_t> limit_n = r.QueryNumber("limit", 200, 1, 1000000);
  // tail=N: the newest N entries (what `turnout audit` shows by default).
  Result<int64_t> tail_n = r.QueryNumber("tail", 0, 0, 1000000);
  for (const Result<int64_t>* n : {&after_seq, &limit_n, &tail_n}) {
    if (!n->ok()) return api::Reply::FromStatus(n->status());
  }
  const int64_t after = *after_seq;
  const int limit = static_cast<int>(*limit_n);
  const int tail = static_cast<int>(*tail_n);
  Result<std::vector<state::AuditEntry>> entries =
      store->ReadAudit(after, tail > 0 ? 0 : std::max(limit, 1));
  if (!entries.ok()) return api::Reply::FromStatus(entries.status());
  if (tail > 0 && entries->size() > static_cast<size_t>(tail)) {
    entries->erase(entries->begin(), entries->end() - tail);
  }
  json list = json::array();
  for (const auto& e : *entries) list.push_back(AuditJson(e));
  json out = {{"entries", list}};
  if (r.path == "/v1/events") {
    std::lock_guard<std::mutex> lock(progress_mu);
    out["progress"] = {{"deployment_id", progress_deployment},
                       {"state", progress_state},
                       {"waiting_for", waiting_for}};
  }
  return Ok(out);
}

}  // namespace turnout::daemon
