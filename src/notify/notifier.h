// Notifier: delivers deployment events to hooks (webhooks and commands) in the background, so a
// slow or broken receiver never blocks or fails a deployment.
//
// Notify() only copies the event into a bounded queue and returns; it never blocks on I/O. When
// the queue is full the OLDEST queued event is dropped (the newest decision is the one people
// need), counted in dropped(), and reported once through on_warning from the worker thread.
//
// One worker thread delivers events in order; for each event, every hook subscribed to its name
// (or to "*") gets it, one hook after the other:
//   - webhook: POST of a Slack-compatible JSON body (SlackBody): {"text": <one sentence>,
//     "blocks": [...], "turnout": {structured fields}}. 2xx is delivered. 5xx, 429 and network
//     errors/timeouts are retried up to `retries` times with exponential backoff
//     (backoff_initial, doubling, capped at backoff_max; a longer Retry-After in seconds is
//     honoured up to backoff_max); other statuses (4xx: the receiver refuses this body) are
//     final at once.
//   - command: the command template is split into words like a shell (platform::SplitCommand,
//     no shell runs unless it names one), {event} {service} {version} {slot} {revision} are
//     replaced inside each word, and it runs with RunCommand under `timeout` with the
//     environment TURNOUT_EVENT, TURNOUT_SERVICE, TURNOUT_VERSION, TURNOUT_SLOT,
//     TURNOUT_REVISION, TURNOUT_DEPLOYMENT_ID, TURNOUT_REASON and the webhook JSON body on stdin.
//     Exit 0 is delivered; commands are not retried.
// Every delivery's outcome goes to on_delivery (the daemon records it in history / logs).
//
// Backoff waits go through `sleep` (Default: a wait that Stop() interrupts), so tests inject a
// recorder instead of sleeping.
//
// Thread-safety: every public method may be called from any thread. The callbacks run on the
// worker thread; they must not call Stop() or the destructor.

#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace turnout::notify {

using Millis = std::chrono::milliseconds;

struct Event {
  std::string name;  // e.g. "deploy_started", "switched", "rolled_back" (see below)
  std::string service;
  std::string version;
  std::string slot;           // the slot the event is about ("" when none)
  int64_t revision = 0;       // 0 when none yet
  std::string deployment_id;  // "" when none
  std::string reason;         // why (failures, rollbacks, pauses); "" when none
  std::string evidence_json;  // a JSON value with the decision's evidence; "" when none
  Clock::WallTime time{};     // when it happened (the caller's clock)
};

struct Hook {
  std::string name;             // for reports, e.g. "hooks[0]"; required
  std::vector<std::string> on;  // event names, or "*" for all; required
  // Exactly one of webhook_url and command.
  std::string webhook_url;  // http:// or https://
  int retries = 3;          // webhook: extra attempts after a retryable failure. Default: 3
  std::string command;      // a command template (see the file comment)
  Millis timeout{5000};     // per webhook attempt, or the command's deadline. Default: 5s

  bool Subscribed(std::string_view event) const;
};

struct Delivery {
  std::string hook;  // Hook::name
  Event event;
  bool ok = false;
  int attempts = 0;    // webhook POSTs made, or 1 for a command
  std::string detail;  // "status 200", "status 500 after 4 attempts", "exited with code 1: ..."
  Millis duration{0};  // all attempts and backoffs
};

struct NotifierOptions {
  size_t queue_capacity = 256;   // events waiting; the oldest is dropped beyond it. Default: 256
  Millis backoff_initial{1000};  // Default: 1s
  Millis backoff_max{30000};     // Default: 30s
  std::function<void(const Delivery&)> on_delivery;    // Default: none
  std::function<void(const std::string&)> on_warning;  // queue overflow etc. Default: none
  // Replaces the backoff wait (tests). Default: empty = a real wait that Stop() cuts short.
  std::function<void(Millis)> sleep;
};

// The one-sentence summary used as the Slack "text" ("checkout v2: rolled back (error rate
// 7.1% > 5% for 2m)").
std::string EventSentence(const Event& event);

// The webhook body: {"text", "blocks", "turnout": {event, service, version, slot, revision,
// deployment_id, reason, time, evidence}}. Evidence that is not valid JSON is sent as a string.
std::string SlackBody(const Event& event);

class Notifier {
 public:
  // Starts the worker thread. InvalidArgument for a hook without a name/subscription, with
  // both or neither of webhook_url and command, with a non-http(s) URL, retries outside 0..10,
  // a command that does not split, or a zero capacity.
  static Result<std::unique_ptr<Notifier>> Create(std::vector<Hook> hooks,
                                                  NotifierOptions options = {});
  // Stop(): pending events are abandoned (counted in abandoned()), a delivery in progress
  // finishes its current attempt (bounded by the hook's timeout) without further retries.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues the event for every subscribed hook. Never blocks on I/O; after Stop() it is dropped.
  void Notify(Event event);

  // Waits until the queue is empty and no delivery is in progress; false when `timeout` passed
  // first (for shutdown with a grace period, and for tests).
  bool Flush(Millis timeout);

  void Stop();

  uint64_t dropped() const;    // events dropped because the queue was full
  uint64_t abandoned() const;  // events still queued at Stop()

 private:
  Notifier(std::vector<Hook> hooks, NotifierOptions options);
  void Loop();
  Delivery Deliver(const Hook& hook, const Event& event);
  Delivery DeliverWebhook(const Hook& hook, const Event& event);
  Delivery DeliverCommand(const Hook& hook, const Event& event);
  void Backoff(Millis delay);

  const std::vector<Hook> hooks_;
  const NotifierOptions options_;
  mutable Mutex mu_;
  CondVar cv_;       // wakes the worker (events, stop)
  CondVar idle_cv_;  // wakes Flush
  std::deque<Event> queue_ TURNOUT_GUARDED_BY(mu_);
  bool busy_ TURNOUT_GUARDED_BY(mu_) = false;  // a delivery is in progress
  bool stopping_ TURNOUT_GUARDED_BY(mu_) = false;
  uint64_t dropped_ TURNOUT_GUARDED_BY(mu_) = 0;
  uint64_t dropped_reported_ TURNOUT_GUARDED_BY(mu_) = 0;
  uint64_t abandoned_ TURNOUT_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace turnout::notify
