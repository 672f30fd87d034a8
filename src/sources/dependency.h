// Dependency checks: is a service the app depends on reachable? Four kinds share one result:
//   TcpCheck       a TCP connect to host:port succeeds within the timeout
//   HttpCheck      GET url answers a status within [min_status, max_status] within the timeout
//   PostgresCheck  connect + `SELECT 1` succeed (connect and statement timeouts apply)
//   CommandCheck   a command exits 0 within its timeout (platform::RunCommand)
//
// RunCheck never fails as a call: every failure is a CheckResult with up=false and a detail
// saying why ("connect 127.0.0.1:5432: Connection refused", "GET ...: status 503", ...).
//
// DependencyChecker runs a set of named checks, each at its own interval, on one background
// thread, and keeps each check's latest state with the time it last changed ("since", from the
// injected Clock, so rules like "dependency postgres unavailable for 10s" are evaluated on the
// same clock as everything else). The thread itself waits in real time between checks.
//
// Thread-safety: RunCheck may run on any thread. DependencyChecker's methods may be called from
// any thread; its callback runs on its background thread and must not call Stop().

#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace turnout::sources {

using Millis = std::chrono::milliseconds;

struct TcpCheck {
  std::string address;   // "host:port" ("[::1]:5432" for IPv6 literals); required
  Millis timeout{2000};  // resolve + connect. Default: 2s
};

struct HttpCheck {
  std::string url;       // http:// or https://; required
  int min_status = 200;  // Default: 200
  int max_status = 399;  // Default: 399 (redirects are not followed and count as up)
  Millis timeout{2000};  // Default: 2s
};

struct PostgresCheck {
  std::string conninfo;  // a postgresql:// URL or key=value string; required
  // libpq counts whole seconds (rounded up here; libpq itself treats 1 as 2). Default: 2s
  Millis connect_timeout{2000};
  Millis statement_timeout{2000};  // for SELECT 1. Default: 2s
};

struct CommandCheck {
  std::vector<std::string> argv;  // no shell unless argv runs one; required
  Millis timeout{10000};          // Default: 10s
  std::string working_dir;        // Default: "" (the caller's)
};

using CheckSpec = std::variant<TcpCheck, HttpCheck, PostgresCheck, CommandCheck>;

struct CheckResult {
  bool up = false;
  Millis latency{0};   // how long the check took
  std::string detail;  // why it is down; for an up check a short note ("status 200")
};

// "tcp", "http", "postgres", "command".
std::string_view CheckKindName(const CheckSpec& spec);

// Runs one check to completion (bounded by its timeouts). Never returns an error.
CheckResult RunCheck(const CheckSpec& spec);

struct NamedCheck {
  std::string name;  // unique within a checker; required
  CheckSpec spec;
  Millis interval{5000};  // from the end of one run to the start of the next. Default: 5s
};

struct DependencyState {
  bool up = false;
  Clock::TimePoint since{};         // when `up` took its current value (first result included)
  Clock::TimePoint last_checked{};  // when the latest result arrived
  int consecutive_failures = 0;
  CheckResult last;
};

class DependencyChecker {
 public:
  // Called after every check, with the check's name and its new state; `changed` is true when
  // `up` flipped (or on the first result).
  using Listener =
      std::function<void(const std::string& name, const DependencyState& state, bool changed)>;

  // `clock` must outlive the checker. InvalidArgument for an empty/duplicate name or an
  // interval <= 0 is reported by Start().
  explicit DependencyChecker(std::vector<NamedCheck> checks, Clock& clock = SystemClock::Get(),
                             Listener listener = {});
  ~DependencyChecker();  // Stop()
  DependencyChecker(const DependencyChecker&) = delete;
  DependencyChecker& operator=(const DependencyChecker&) = delete;

  // Starts the background thread; every check runs once right away, then at its interval.
  // FailedPrecondition when started twice.
  Status Start();
  // Stops promptly: no new check starts; one already running finishes (bounded by its own
  // timeout). Idempotent.
  void Stop();

  // The latest state of a check; nullopt before its first result or for an unknown name.
  std::optional<DependencyState> Get(const std::string& name) const;
  // Every check that has a result.
  std::map<std::string, DependencyState> Snapshot() const;
  // Runs every check once on the calling thread and records the results (for a first state
  // before Start, or a forced refresh).
  void CheckAllNow();

 private:
  void Record(const std::string& name, const CheckResult& result);
  void Loop();

  std::vector<NamedCheck> checks_;
  Clock& clock_;
  Listener listener_;
  mutable Mutex mu_;
  CondVar cv_;
  bool stopping_ TURNOUT_GUARDED_BY(mu_) = false;
  std::map<std::string, DependencyState> state_ TURNOUT_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace turnout::sources
