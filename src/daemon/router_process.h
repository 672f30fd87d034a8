// RouterProcess: the router (the data plane) as a process of its own that turnoutd launches,
// supervises and drives, so that users are served whatever happens to turnoutd.
//
// The process is `turnout router --config <state_dir>/router.yaml`, launched through the
// Platform like an app instance: in its own session (it outlives turnoutd, kill -9 included),
// its output appended to <log_dir>/<service>-router-0.log, identified by pid + start time +
// boot id. turnoutd drives it through its admin API (router::AdminClient, with the admin token)
// and nothing else; the router persists its policy in its state_file and restores it when it
// starts again.
//
// Start (turnoutd's start, also after kill -9), from the record <state_dir>/router-process.json
// (handle, admin address, fingerprint of the config it was started with):
//   - the recorded process runs, was started from the same config (instances and policy aside:
//     they change at runtime) and answers its admin API: it is *attached* to, never restarted;
//     its slots get the instances turnoutd knows run when they differ;
//   - it runs but its config changed (turnout.yaml's router section, or a new token or secret
//     file): it is stopped and a new one launched, and the log says so (users see the listener
//     closed for the moment between the two);
//   - it runs but does not answer within `start_timeout`: likewise replaced, said in the log;
//   - it is gone: a new one is launched (it restores the persisted policy).
// Either way the override header and its secret are then made what turnoutd wants.
//
// While turnoutd runs, Tick() supervises it (platform::Supervisor): a router that exits is
// relaunched with backoff from the same config file, which SetSlotInstances keeps up to date,
// and the record follows the new process. StopProcess() stops it for good (turnout down
// --stop-instances). Destroying a RouterProcess leaves the process running: that is the point.
//
// Thread-safety: the RouterControl methods may be called from any thread; Tick from one thread.

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "platform/platform.h"
#include "platform/supervisor.h"
#include "router/admin_client.h"
#include "router/config.h"
#include "router/router_control.h"

namespace turnout::daemon {

struct RouterProcessOptions {
  std::string program;  // the `turnout` binary; required
  std::string service;  // names the log file; required
  // The whole config (RouterConfigFromService): slots with the instances that run now, the
  // admin API address (normally unix:<state_dir>/router.sock) and token, the override header
  // and secret, the state_file.
  router::RouterConfig config;
  std::string config_path;  // where the config is written (0600); required
  std::string record_path;  // the record of the launched process (0600); required
  std::string log_dir;      // required
  std::string working_dir;  // Default: "" (turnoutd's)
  std::function<void(const std::string&)> log;  // turnoutd's log; may be empty
  // How long a new process may take to answer its admin API, and how long an attached one may
  // take to answer before it counts as hung. Default: 10 s
  std::chrono::milliseconds start_timeout{10000};
  // Timeout of each admin call. Default: 5 s
  std::chrono::milliseconds call_timeout{5000};
  // Backoff of the relaunches (the data plane is down meanwhile: start fast). Default: 100 ms,
  // doubling up to 10 s, reset after 30 s up.
  platform::SupervisorOptions supervision = [] {
    platform::SupervisorOptions s;
    s.initial_backoff = std::chrono::milliseconds(100);
    s.max_backoff = std::chrono::seconds(10);
    return s;
  }();
};

class RouterProcess final : public router::RouterControl {
 public:
  // Attaches to the recorded router process or launches one (see above). Unavailable, with the
  // end of the router's log, when a new process exits or does not answer in time; IoError when
  // a file cannot be written. `platform` and `clock` must outlive the object.
  static Result<std::unique_ptr<RouterProcess>> AttachOrLaunch(RouterProcessOptions options,
                                                               platform::Platform& platform,
                                                               const Clock& clock);
  ~RouterProcess() override;  // the process keeps running

  // RouterControl, through the admin API. SetSlotInstances also rewrites the config file, so a
  // relaunched process serves the current instances. GetPolicy, SetPolicy and SetPolicyIf carry
  // the override secret turnoutd gave the router (the admin API never shows it).
  Result<router::RouterStatus> GetStatus() override;
  Result<router::RoutingPolicy> GetPolicy() override;
  Result<uint64_t> SetPolicy(const router::RoutingPolicy& policy) override;
  Result<uint64_t> SetPolicyIf(const router::RoutingPolicy& policy,
                               uint64_t if_generation) override;
  Result<uint64_t> UpdatePolicy(const PolicyChange& change) override;
  Result<uint64_t> SetSlotInstances(const std::string& slot,
                                    const std::vector<std::string>& instances) override;
  Result<router::SlotStatus> GetSlotStatus(const std::string& slot) override;
  Result<std::vector<router::SlotWindowMetrics>> GetWindowMetrics(
      std::chrono::seconds window) override;
  Result<std::vector<router::SlotWindowMetrics>> GetCumulativeMetrics() override;
  Result<uint64_t> Switch(const std::string& slot) override;
  Result<uint64_t> SetCanaryWeight(const std::string& slot, uint32_t weight_bp) override;

  // Relaunches the process when it ended (with backoff). Call it every few hundred ms.
  void Tick(Clock::TimePoint now);
  // Stops the process (SIGTERM, its drain, then SIGKILL after the grace) and forgets its
  // record: the next start launches a new one. Supervision ends.
  Status StopProcess();

  struct Info {
    int64_t pid = 0;        // 0 while it is being relaunched or after StopProcess
    std::string admin;      // its admin API address
    std::string log_path;   // its output
    bool attached = false;  // turnoutd attached to a process it found running at its start
    int restarts = 0;       // relaunches by the supervisor since turnoutd started
    bool stopped = false;   // StopProcess was called
  };
  Info info() const;

 private:
  struct State;
  explicit RouterProcess(std::unique_ptr<State> state);
  // `policy` with the override secret turnoutd gave the router when it carries none.
  router::RoutingPolicy WithOurSecret(const router::RoutingPolicy& policy);
  std::unique_ptr<State> s_;
};

// The fingerprint of what a router process is started with, leaving out what changes at
// runtime (the slots' instances and the policy): a running router started from a config with
// another fingerprint must be restarted to apply it.
std::string RouterConfigFingerprint(const router::RouterConfig& config);

}  // namespace turnout::daemon
