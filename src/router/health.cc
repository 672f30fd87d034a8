#include "router/health.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <unordered_map>
#include <vector>

#include "http/parser.h"

namespace turnout::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

int64_t ToNs(Clock::TimePoint t) { return t.time_since_epoch().count(); }

// A check's response head must fit in this; /ready endpoints answer with a few hundred bytes.
constexpr size_t kMaxCheckHeadBytes = 16 * 1024;

}  // namespace

void InstanceHealth::RecordConnectSuccess() {
  consecutive_connect_failures.store(0, std::memory_order_relaxed);
}

void InstanceHealth::RecordConnectFailure(Clock::TimePoint now, const HealthCheckConfig& config) {
  uint32_t failures = consecutive_connect_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (config.eject_after_connect_failures > 0 &&
      failures >= static_cast<uint32_t>(config.eject_after_connect_failures)) {
    ejected_until_ns.store(ToNs(now + config.eject_for), std::memory_order_relaxed);
  }
}

bool InstanceHealth::Ejected(Clock::TimePoint now) const {
  return ejected_until_ns.load(std::memory_order_relaxed) > ToNs(now);
}

bool InstanceHealth::Routable(Clock::TimePoint now) const {
  return healthy.load(std::memory_order_relaxed) && !Ejected(now);
}

HealthState::HealthState(int rise, int fall) : rise_(std::max(rise, 1)), fall_(std::max(fall, 1)) {}

HealthState::Transition HealthState::Observe(bool ok, Clock::TimePoint now) {
  const bool was_healthy = healthy_;
  if (ok) {
    ++successes_;
    failures_ = 0;
  } else {
    ++failures_;
    successes_ = 0;
  }
  if (!decided_) {
    // Nothing is known about a new target: trust the first answer rather than waiting for
    // `rise`/`fall` rounds with a guess.
    decided_ = true;
    healthy_ = ok;
    last_change_ = now;
  } else if (!healthy_ && successes_ >= rise_) {
    healthy_ = true;
  } else if (healthy_ && failures_ >= fall_) {
    healthy_ = false;
  }
  if (healthy_ == was_healthy) return Transition::kNone;
  last_change_ = now;
  return healthy_ ? Transition::kBecameHealthy : Transition::kBecameUnhealthy;
}

namespace {

// Per-target progress; touched only by the checker thread once published.
struct Progress {
  explicit Progress(const HealthCheckConfig& c) : state(c.rise, c.fall) {}
  HealthState state;
  bool in_progress = false;
};

struct Target {
  std::string address;
  std::shared_ptr<InstanceHealth> health;
  std::shared_ptr<Progress> progress;
};

struct TargetList {
  std::mutex mu;
  std::vector<Target> targets;  // guarded by mu
};

// Sockets and resolver of one check, shared with its deadline timer so that the timer can abort
// them even after the check coroutine moved on.
struct Probe {
  explicit Probe(asio::any_io_executor ex) : resolver(ex), socket(ex), deadline(ex) {}
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer deadline;
  bool timed_out = false;
};

// The outcome of one check. kNoDescriptor: the router itself had no descriptor for the check's
// socket, which says nothing about the instance.
enum class ProbeResult { kOk, kFailed, kNoDescriptor };

bool OutOfDescriptors(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors ||
         (ec.category() == boost::system::system_category() && ec.value() == ENFILE);
}

asio::awaitable<ProbeResult> RunProbe(std::shared_ptr<Probe> probe, HostPort target,
                                      std::string host_header, std::string path) {
  constexpr ProbeResult kFailed = ProbeResult::kFailed;
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  // An address needs no resolver: resolving opens sockets (AI_ADDRCONFIG), which fails for the
  // router's own want of descriptors and would pass for the instance's failure.
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code parse_ec;
  asio::ip::address address = asio::ip::make_address(target.host, parse_ec);
  if (!parse_ec) {
    endpoints.emplace_back(address, target.port);
  } else {
    auto results =
        co_await probe->resolver.async_resolve(target.host, std::to_string(target.port), token);
    if (OutOfDescriptors(ec)) co_return ProbeResult::kNoDescriptor;
    if (ec || probe->timed_out) co_return kFailed;
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  // Each socket is opened here rather than by a ranged async_connect, which reports a failed
  // open as a cancellation: an open that fails for want of descriptors must be told apart.
  ec = asio::error::host_not_found;
  for (const tcp::endpoint& endpoint : endpoints) {
    boost::system::error_code ignored;
    probe->socket.close(ignored);
    probe->socket.open(endpoint.protocol(), ec);
    if (OutOfDescriptors(ec)) co_return ProbeResult::kNoDescriptor;
    if (ec) continue;
    co_await probe->socket.async_connect(endpoint, token);
    if (!ec || probe->timed_out) break;
  }
  if (ec || probe->timed_out) co_return kFailed;
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_header +
                        "\r\nUser-Agent: turnout-health\r\nConnection: close\r\n\r\n";
  co_await asio::async_write(probe->socket, asio::buffer(request), token);
  if (ec || probe->timed_out) co_return kFailed;
  std::string buffer;
  char chunk[4096];
  http::ParseLimits limits;
  limits.max_head_bytes = kMaxCheckHeadBytes;
  while (buffer.size() < kMaxCheckHeadBytes) {
    size_t n = co_await probe->socket.async_read_some(asio::buffer(chunk), token);
    if (probe->timed_out) co_return kFailed;
    buffer.append(chunk, n);
    http::ResponseHead head;
    http::ParseResult r = http::ParseResponseHead(buffer, "GET", limits, &head);
    if (r.state == http::ParseState::kComplete) {
      // 1xx interim answers are not expected for a GET without Expect; treat as failure.
      co_return head.status >= 200 && head.status <= 299 ? ProbeResult::kOk : kFailed;
    }
    if (r.state == http::ParseState::kError) co_return kFailed;
    if (ec) co_return kFailed;  // closed or reset before a whole head arrived
  }
  co_return kFailed;
}

// One round: start a check for every target that is not still being checked, then sleep until
// the next interval boundary. `pace` is that sleep; SetTargets cancels it when it added a target,
// and then only the targets never checked yet are checked (at once, not at the next boundary,
// which may be a whole interval away); that is not a round, and the boundary stays. Results are
// applied on the checker thread, so Progress needs no lock. Arguments are copied into the
// coroutine frame; io, list, pace, clock and rounds outlive the thread.
asio::awaitable<void> RunRounds(asio::io_context& io, TargetList* list, asio::steady_timer* pace,
                                HealthCheckConfig config, Clock* clock,
                                std::atomic<uint64_t>* rounds, ThrottledCount* skipped) {
  auto next_round = std::chrono::steady_clock::now();
  bool only_new = false;
  for (;;) {
    std::vector<Target> round;
    {
      std::lock_guard lock(list->mu);
      round = list->targets;
    }
    if (only_new) {
      std::erase_if(round, [](const Target& t) { return t.progress->state.decided(); });
    }
    auto remaining = std::make_shared<size_t>(0);
    for (const Target& t : round) {
      if (!t.progress->in_progress) ++*remaining;
    }
    // A check of new targets only counts no round: its countdown starts too high to reach 0.
    if (only_new) *remaining += 1;
    if (*remaining == 0) rounds->fetch_add(1, std::memory_order_relaxed);
    for (const Target& t : round) {
      if (t.progress->in_progress) continue;
      t.progress->in_progress = true;
      auto apply = [t, remaining, clock, rounds](bool ok) {
        t.progress->in_progress = false;
        t.progress->state.Observe(ok, clock->Now());
        t.health->healthy.store(t.progress->state.healthy(), std::memory_order_relaxed);
        if (ok) {
          t.health->consecutive_connect_failures.store(0, std::memory_order_relaxed);
          t.health->ejected_until_ns.store(0, std::memory_order_relaxed);
        }
        if (--*remaining == 0) rounds->fetch_add(1, std::memory_order_relaxed);
      };
      Result<HostPort> hp = ParseHostPort(t.address);
      if (!hp.ok()) {
        apply(false);
        continue;
      }
      auto probe = std::make_shared<Probe>(io.get_executor());
      probe->deadline.expires_after(config.timeout);
      probe->deadline.async_wait([probe](boost::system::error_code ec) {
        if (ec) return;
        probe->timed_out = true;
        boost::system::error_code ignored;
        probe->resolver.cancel();
        probe->socket.close(ignored);
      });
      // Out of descriptors, the instance keeps its state: the shortage is the router's own.
      auto skip = [t, remaining, clock, rounds, skipped] {
        t.progress->in_progress = false;
        if (uint64_t n = skipped->Add(clock->Now()); n > 0) {
          std::fprintf(stderr,
                       "turnout router: warning: %llu health check(s) not run: the router is "
                       "out of file descriptors (instances keep their state); raise the fd "
                       "limit\n",
                       static_cast<unsigned long long>(n));
        }
        if (--*remaining == 0) rounds->fetch_add(1, std::memory_order_relaxed);
      };
      asio::co_spawn(io, RunProbe(probe, *hp, t.address, config.path),
                     [probe, apply, skip](std::exception_ptr e, ProbeResult result) {
                       probe->deadline.cancel();
                       if (!e && result == ProbeResult::kNoDescriptor) {
                         skip();
                         return;
                       }
                       apply(!e && result == ProbeResult::kOk && !probe->timed_out);
                     });
    }
    if (!only_new) {
      next_round += config.interval;
      auto now = std::chrono::steady_clock::now();
      if (next_round < now) next_round = now;  // fell behind: do not fire a burst of rounds
    }
    pace->expires_at(next_round);
    boost::system::error_code ec;
    co_await pace->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    only_new = ec == asio::error::operation_aborted;
  }
}

}  // namespace

struct HealthChecker::Impl {
  TargetList list;
  std::unique_ptr<asio::io_context> io;
  // RunRounds' sleep; set (under list.mu) while the checker runs, destroyed before io.
  std::unique_ptr<asio::steady_timer> pace;
  std::thread thread;
};

HealthChecker::HealthChecker(HealthCheckConfig config, Clock& clock)
    : config_(std::move(config)), clock_(clock), impl_(std::make_unique<Impl>()) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::SetTargets(
    std::vector<std::pair<std::string, std::shared_ptr<InstanceHealth>>> targets) {
  std::lock_guard lock(impl_->list.mu);
  std::unordered_map<InstanceHealth*, std::shared_ptr<Progress>> previous;
  for (const Target& t : impl_->list.targets) previous[t.health.get()] = t.progress;
  std::vector<Target> next;
  next.reserve(targets.size());
  bool wake = false;
  for (auto& [address, health] : targets) {
    if (health == nullptr) continue;
    auto it = previous.find(health.get());
    const bool added = it == previous.end();
    std::shared_ptr<Progress> progress = added ? std::make_shared<Progress>(config_) : it->second;
    wake = wake || added;
    next.push_back(Target{std::move(address), std::move(health), std::move(progress)});
  }
  impl_->list.targets = std::move(next);
  if (wake && impl_->pace) {
    // Runs on the checker thread, where RunRounds can only be asleep on `pace` in between.
    asio::steady_timer* pace = impl_->pace.get();
    asio::post(pace->get_executor(), [pace] { pace->cancel(); });
  }
}

Status HealthChecker::Start() {
  if (impl_->thread.joinable()) return FailedPrecondition("the health checker is already running");
  if (!config_.enabled) return Status::Ok();
  impl_->io = std::make_unique<asio::io_context>(1);
  asio::io_context& io = *impl_->io;
  {
    std::lock_guard lock(impl_->list.mu);
    impl_->pace = std::make_unique<asio::steady_timer>(io);
  }
  asio::co_spawn(
      io, RunRounds(io, &impl_->list, impl_->pace.get(), config_, &clock_, &rounds_, &skipped_),
      asio::detached);
  try {
    impl_->thread = std::thread([&io] { io.run(); });
  } catch (const std::system_error& e) {
    std::lock_guard lock(impl_->list.mu);
    impl_->pace.reset();
    impl_->io.reset();
    return Internal(std::string("cannot start the health checker thread: ") + e.what());
  }
  return Status::Ok();
}

void HealthChecker::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io->stop();
  impl_->thread.join();
  impl_->thread = std::thread();
  // Checks abandoned mid-way must not block the next Start().
  std::lock_guard lock(impl_->list.mu);
  impl_->pace.reset();
  impl_->io.reset();
  for (Target& t : impl_->list.targets) t.progress->in_progress = false;
}

}  // namespace turnout::router
