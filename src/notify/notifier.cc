#include "notify/notifier.h"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "httpc/client.h"
#include "platform/command.h"
#include "platform/run.h"

namespace turnout::notify {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::string Or(const std::string& value, const char* fallback) {
  return value.empty() ? fallback : value;
}

// Slack's mrkdwn treats these three as control characters.
std::string EscapeMrkdwn(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string IsoTime(Clock::WallTime t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch());
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Replace(std::string_view word, const Event& e) {
  const std::pair<std::string_view, std::string> kValues[] = {
      {"{event}", e.name},
      {"{service}", e.service},
      {"{version}", e.version},
      {"{slot}", e.slot},
      {"{revision}", std::to_string(e.revision)}};
  std::string out;
  size_t i = 0;
  while (i < word.size()) {
    bool replaced = false;
    if (word[i] == '{') {
      for (const auto& [key, value] : kValues) {
        if (word.substr(i, key.size()) == key) {
          out += value;
          i += key.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(word[i++]);
  }
  return out;
}

// Retry-After in delta-seconds (the HTTP-date form is ignored: receivers that rate-limit
// webhooks send seconds). 0 when absent or unreadable.
Millis RetryAfter(const std::string& value) {
  if (value.empty() || value.size() > 6 ||
      value.find_first_not_of("0123456789") != std::string::npos) {
    return Millis(0);
  }
  return Millis(std::stoll(value) * 1000);
}

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

bool Hook::Subscribed(std::string_view event) const {
  for (const std::string& e : on) {
    if (e == "*" || e == event) return true;
  }
  return false;
}

std::string EventSentence(const Event& e) {
  const std::string version = Or(e.version, "(no version)");
  const std::string& n = e.name;
  std::string what;
  if (n == "deploy_started") {
    what = "deploying " + version +
           (e.revision > 0 ? " (revision " + std::to_string(e.revision) + ")" : "");
  } else if (n == "pre_checks_passed") {
    what = "pre-deploy checks passed for " + version;
  } else if (n == "awaiting_approval") {
    what = version + " is waiting for approval (turnout approve)";
  } else if (n == "ready") {
    what = version + " is ready" + (e.slot.empty() ? "" : " on " + e.slot);
  } else if (n == "smoke_passed") {
    what = "smoke tests passed for " + version;
  } else if (n == "switched") {
    what = "traffic switched to " + Or(e.slot, "the new slot") + " (" + version + ")";
  } else if (n == "succeeded") {
    what = version + " deployed successfully";
  } else if (n == "rolled_back") {
    what = version + " was rolled back";
  } else if (n == "failed") {
    what = "deployment of " + version + " failed";
  } else if (n == "aborted") {
    what = "deployment of " + version + " was aborted";
  } else if (n == "step_passed") {
    what = version + " passed a canary step";
  } else if (n == "paused") {
    what = "deployment of " + version + " is paused";
  } else if (n == "promoted") {
    what = version + " was promoted";
  } else {
    what = n + " (" + version + ")";
  }
  std::string sentence = Or(e.service, "turnout") + ": " + what;
  if (!e.reason.empty()) sentence += ": " + e.reason;
  return sentence;
}

std::string SlackBody(const Event& e) {
  json turnout = {{"event", e.name},        {"service", e.service},
                  {"version", e.version},   {"slot", e.slot},
                  {"revision", e.revision}, {"deployment_id", e.deployment_id},
                  {"reason", e.reason},     {"time", IsoTime(e.time)}};
  if (!e.evidence_json.empty()) {
    json evidence = json::parse(e.evidence_json, nullptr, /*allow_exceptions=*/false);
    turnout["evidence"] = evidence.is_discarded() ? json(e.evidence_json) : evidence;
  } else {
    turnout["evidence"] = nullptr;
  }
  std::string context = "event `" + e.name + "`";
  if (!e.slot.empty()) context += " · slot " + e.slot;
  if (e.revision > 0) context += " · revision " + std::to_string(e.revision);
  if (!e.deployment_id.empty()) context += " · deployment " + e.deployment_id;
  std::string sentence = EventSentence(e);
  json body = {
      // Slack shows `text` in notifications and wherever blocks cannot be rendered.
      {"text", sentence},
      {"blocks",
       json::array(
           {{{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", EscapeMrkdwn(sentence)}}}},
            {{"type", "context"},
             {"elements", json::array({{{"type", "mrkdwn"}, {"text", EscapeMrkdwn(context)}}})}}})},
      {"turnout", std::move(turnout)}};
  // Replacement of invalid UTF-8 instead of an exception: a reason may quote process output.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::unique_ptr<Notifier>> Notifier::Create(std::vector<Hook> hooks,
                                                   NotifierOptions options) {
  if (options.queue_capacity == 0) return InvalidArgument("notifier queue capacity must be > 0");
  if (options.backoff_initial < Millis(0) || options.backoff_max < options.backoff_initial) {
    return InvalidArgument("notifier backoff needs 0 <= backoff_initial <= backoff_max");
  }
  for (const Hook& h : hooks) {
    std::string where = "hook \"" + h.name + "\"";
    if (h.name.empty()) return InvalidArgument("a hook needs a name");
    if (h.on.empty()) return InvalidArgument(where + " subscribes to no event");
    if (h.webhook_url.empty() == h.command.empty()) {
      return InvalidArgument(where + " needs exactly one of a webhook url and a command");
    }
    if (h.timeout <= Millis(0)) return InvalidArgument(where + " needs a timeout > 0");
    if (!h.webhook_url.empty()) {
      if (h.webhook_url.rfind("http://", 0) != 0 && h.webhook_url.rfind("https://", 0) != 0) {
        return InvalidArgument(where + ": webhook url must start with http:// or https://");
      }
      if (h.retries < 0 || h.retries > 10) {
        return InvalidArgument(where + ": retries must be within 0..10");
      }
    } else {
      auto words = platform::SplitCommand(h.command);
      if (!words.ok()) return words.status().WithContext(where);
    }
  }
  return std::unique_ptr<Notifier>(new Notifier(std::move(hooks), std::move(options)));
}

Notifier::Notifier(std::vector<Hook> hooks, NotifierOptions options)
    : hooks_(std::move(hooks)), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

Notifier::~Notifier() { Stop(); }

void Notifier::Stop() {
  {
    MutexLock lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      abandoned_ += queue_.size();
      queue_.clear();
    }
  }
  cv_.NotifyAll();
  idle_cv_.NotifyAll();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Notifier::Notify(Event event) {
  {
    MutexLock lock(mu_);
    if (stopping_) {
      ++abandoned_;
      return;
    }
    if (queue_.size() >= options_.queue_capacity) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(event));
  }
  cv_.NotifyAll();
}

bool Notifier::Flush(Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  MutexLock lock(mu_);
  while (!stopping_ && !(queue_.empty() && !busy_)) {
    if (idle_cv_.WaitUntil(mu_, deadline)) break;
  }
  return queue_.empty() && !busy_;
}

uint64_t Notifier::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

uint64_t Notifier::abandoned() const {
  MutexLock lock(mu_);
  return abandoned_;
}

void Notifier::Loop() {
  MutexLock lock(mu_);
  for (;;) {
    while (!stopping_ && queue_.empty()) cv_.Wait(mu_);
    if (stopping_) break;
    Event event = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    uint64_t newly_dropped = dropped_ - dropped_reported_;
    dropped_reported_ = dropped_;
    uint64_t total_dropped = dropped_;
    lock.Unlock();

    if (newly_dropped > 0 && options_.on_warning) {
      options_.on_warning("notifications: queue full (" + std::to_string(options_.queue_capacity) +
                          "), dropped the " + std::to_string(newly_dropped) + " oldest event(s) (" +
                          std::to_string(total_dropped) + " in total)");
    }
    for (const Hook& hook : hooks_) {
      if (!hook.Subscribed(event.name)) continue;
      Delivery d = Deliver(hook, event);
      if (options_.on_delivery) options_.on_delivery(d);
      MutexLock stop_check(mu_);
      if (stopping_) break;
    }

    lock.Lock();
    busy_ = false;
    idle_cv_.NotifyAll();
  }
  busy_ = false;
  idle_cv_.NotifyAll();
}

Delivery Notifier::Deliver(const Hook& hook, const Event& event) {
  auto start = SteadyClock::now();
  Delivery d = hook.webhook_url.empty() ? DeliverCommand(hook, event) : DeliverWebhook(hook, event);
  d.hook = hook.name;
  d.event = event;
  d.duration = std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
  return d;
}

void Notifier::Backoff(Millis delay) {
  if (options_.sleep) {
    options_.sleep(delay);
    return;
  }
  const auto deadline = SteadyClock::now() + delay;
  MutexLock lock(mu_);
  while (!stopping_) {
    if (cv_.WaitUntil(mu_, deadline)) break;
  }
}

Delivery Notifier::DeliverWebhook(const Hook& hook, const Event& event) {
  Delivery d;
  httpc::Request request;
  request.method = "POST";
  request.url = hook.webhook_url;
  request.headers = {{"Content-Type", "application/json"}};
  request.body = SlackBody(event);
  request.timeout = hook.timeout;
  request.connect_timeout = hook.timeout;
  request.max_response_bytes = 64 * 1024;

  Millis backoff = options_.backoff_initial;
  for (;;) {
    ++d.attempts;
    Result<httpc::Response> response = httpc::Fetch(request);
    bool retry = false;
    Millis asked_wait{0};
    if (response.ok()) {
      d.detail = "status " + std::to_string(response->status);
      if (response->status >= 200 && response->status < 300) {
        d.ok = true;
        break;
      }
      retry = httpc::IsRetryableStatus(response->status);
      asked_wait = RetryAfter(response->Header("Retry-After"));
      std::string body = response->body.substr(0, 200);
      if (!body.empty()) d.detail += ": " + body;
    } else {
      d.detail = response.status().ToString();
      retry = Retryable(response.status());
    }
    if (!retry || d.attempts > hook.retries) break;
    {
      MutexLock lock(mu_);
      if (stopping_) break;
    }
    // The receiver's Retry-After is honoured, within backoff_max.
    Backoff(std::max(backoff, std::min(asked_wait, options_.backoff_max)));
    backoff = std::min(backoff * 2, options_.backoff_max);
    MutexLock lock(mu_);
    if (stopping_) break;
  }
  if (!d.ok && d.attempts > 1) d.detail += " (after " + std::to_string(d.attempts) + " attempts)";
  return d;
}

Delivery Notifier::DeliverCommand(const Hook& hook, const Event& event) {
  Delivery d;
  d.attempts = 1;
  auto words = platform::SplitCommand(hook.command);
  if (!words.ok()) {  // validated in Create; kept as a value, never an assert
    d.detail = words.status().ToString();
    return d;
  }
  platform::RunSpec spec;
  for (const std::string& w : *words) spec.argv.push_back(Replace(w, event));
  spec.timeout = hook.timeout;
  spec.kill_grace = Millis(2000);
  spec.max_output_bytes = 16 * 1024;
  spec.env = {{"TURNOUT_EVENT", event.name},
              {"TURNOUT_SERVICE", event.service},
              {"TURNOUT_VERSION", event.version},
              {"TURNOUT_SLOT", event.slot},
              {"TURNOUT_REVISION", std::to_string(event.revision)},
              {"TURNOUT_DEPLOYMENT_ID", event.deployment_id},
              {"TURNOUT_REASON", event.reason}};
  spec.stdin_data = SlackBody(event);
  Result<platform::RunResult> run = platform::RunCommand(spec);
  if (!run.ok()) {
    d.detail = run.status().ToString();
    return d;
  }
  d.ok = run->ok();
  d.detail = run->Describe();
  std::string tail = run->Tail(5);
  if (!d.ok && !tail.empty()) d.detail += ": " + tail;
  return d;
}

}  // namespace turnout::notify
