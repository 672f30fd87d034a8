// The service manager's notify protocol (systemd's sd_notify): how a long-running turnout
// process (turnoutd, `turnout router`) tells systemd, or any supervisor that speaks the protocol,
// that it is ready, what it is doing, that it is stopping, and that it is still alive.
//
// Everything here is a no-op when the process was not started with NOTIFY_SOCKET (a terminal, a
// test, `turnout up`), so callers call it unconditionally. Errors are ignored (the service
// manager is told, never asked).
//
// The protocol's variables (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) are taken out of the
// environment once, at the start of main, before any thread or child exists: turnoutd's children
// (the router process, app instances, hooks) inherit its environment, and one that speaks the
// protocol itself would otherwise report READY or WATCHDOG in turnoutd's name. That is also why
// the datagrams are sent here and not by libsystemd's sd_notify, which reads the environment at
// every call.
//
//   int main() {
//     systemd::TakeNotifyEnvironment();
//   systemd::NotifyStatus("starting");
//   ... bind, start ...
//   systemd::NotifyReady("serving demo, API on /var/lib/turnout/turnoutd.sock");
//   systemd::Watchdog watchdog([&] { return ApiAnswers(); });
//   ... wait for SIGTERM ...
//   systemd::NotifyStopping("SIGTERM: stopping");

#pragma once

#include <chrono>
#include <functional>
#include <string_view>
#include <thread>

#include "common/mutex.h"

namespace turnout::systemd {

// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, keeps them for the calls below and removes
// them from the environment. Call it first thing in main (it is not thread-safe: setenv/unsetenv);
// before it, and without NOTIFY_SOCKET, every call below does nothing. Calling it again reads the
// environment again (tests).
void TakeNotifyEnvironment();

// READY=1 with STATUS=`status`: the process serves (call it once, after its listeners accept).
void NotifyReady(std::string_view status);
// STATUS=`status`: one line shown by `systemctl status`.
void NotifyStatus(std::string_view status);
// STOPPING=1 with STATUS=`status`: the process is shutting down (call it when the stop begins).
void NotifyStopping(std::string_view status);

// The watchdog timeout the service manager asked for (WATCHDOG_USEC, when WATCHDOG_PID is unset
// or names this process, and NOTIFY_SOCKET is set); zero when there is none.
std::chrono::microseconds WatchdogTimeout();

// Sends WATCHDOG=1 every half of WatchdogTimeout() from a thread of its own, but only after
// `alive` returned true: a process whose main work is stuck stops pinging, and the service
// manager restarts it (Restart=on-failure) once the timeout passes. `alive` is called from that
// thread, once per ping, and must return within the half interval to count. Without a watchdog
// timeout no thread starts. The destructor stops the thread (at most one `alive` call later).
class Watchdog {
 public:
  explicit Watchdog(std::function<bool()> alive);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Half of WatchdogTimeout(); zero when no thread runs.
  std::chrono::microseconds interval() const { return interval_; }

 private:
  void Run();

  std::function<bool()> alive_;
  std::chrono::microseconds interval_{0};
  Mutex mu_;
  CondVar cv_;
  bool stop_ TURNOUT_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace turnout::systemd
