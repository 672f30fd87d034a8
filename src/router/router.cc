#include "router/router.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "common/host_port.h"
#include "metrics/metrics.h"
#include "router/access_log.h"
#include "router/health.h"
#include "router/policy_store.h"
#include "router/routing_table.h"
#include "router/worker.h"

namespace turnout::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Seconds of per-second buckets each SlotMetrics keeps (the longest window the API serves).
constexpr int kWindowSeconds = 300;

Result<tcp::endpoint> Resolve(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(text));
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(hp.host, ec);
  if (!ec) return tcp::endpoint(addr, hp.port);
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
  if (ec || results.empty()) {
    return InvalidArgument("cannot resolve '" + std::string(text) +
                           "': " + (ec ? ec.message() : std::string("no address")));
  }
  return results.begin()->endpoint();
}

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Router::Impl {
  Impl(RouterConfig c, Clock& clk) : config(std::move(c)), clock(clk) {}

  // Builds and publishes a table from the current state. Requires mu.
  uint64_t Publish();
  // Fills the canary seed, validates, persists and publishes `next`. Requires mu.
  Result<uint64_t> ApplyPolicy(RoutingPolicy next);
  std::vector<std::pair<std::string, std::shared_ptr<InstanceHealth>>> Targets() const;
  // Entries for `addresses` in slot `slot`, reusing the current ones for unchanged addresses.
  Result<std::vector<std::shared_ptr<const InstanceEntry>>> MakeInstances(
      size_t slot, const std::vector<std::string>& addresses, bool start_unhealthy);
  SlotStatus StatusOf(size_t slot, Clock::TimePoint now) const;
  std::vector<std::string> SlotNames() const;
  // Gives `next` the current override secret when it has none, or a fresh one when there is no
  // current one either: an override header never works without a secret. Requires mu.
  Status KeepOverrideSecret(RoutingPolicy* next) const;
  // Writes the secret to the secret file (0600) when there is one and it differs. Requires mu.
  Status WriteSecretFile(const RoutingPolicy& p) const;

  // Plans the descriptor budget again for the instances configured now (turnoutd's router
  // starts with none, and an instance needs descriptors for its pooled connections and its
  // health checks). Connections already open stay open when the client limit goes down.
  // Requires mu.
  void ReplanBudget();

  RouterConfig config;
  Clock& clock;
  int workers = 1;
  DataPlaneShared shared;

  mutable std::mutex mu;
  RoutingPolicy policy;
  std::vector<std::shared_ptr<SlotRuntime>> slots;
  std::vector<std::vector<std::shared_ptr<const InstanceEntry>>> instances;  // per slot
  // Per "slot\ninstance": kept when an instance leaves and comes back, so counters continue.
  std::map<std::string, std::shared_ptr<metrics::SlotMetrics>> instance_metrics;
  uint64_t next_instance_id = 1;
  uint64_t generation = 0;
  FdBudget budget;
  FdBudgetInputs budget_inputs;  // as planned at start
  std::string secret_file;       // OverrideSecretFilePath(config)
  std::unique_ptr<HealthChecker> checker;
  std::unique_ptr<AccessLog> access_log;  // outlives the workers: set before they start
  std::vector<std::unique_ptr<Worker>> worker_list;
  std::vector<std::string> listen;
  bool started = false;
  bool stopped = false;
};

uint64_t Router::Impl::Publish() {
  auto table = std::make_shared<RoutingTable>();
  table->generation = ++generation;
  table->policy = policy;
  table->slots.resize(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    table->slots[i].runtime = slots[i];
    table->slots[i].instances = instances[i];
  }
  IndexRoutingTable(table.get());
  shared.PublishTable(std::move(table));
  shared.generation.store(generation, std::memory_order_release);
  return generation;
}

std::vector<std::pair<std::string, std::shared_ptr<InstanceHealth>>> Router::Impl::Targets() const {
  std::vector<std::pair<std::string, std::shared_ptr<InstanceHealth>>> out;
  for (const auto& list : instances) {
    for (const auto& inst : list) out.emplace_back(inst->address, inst->health);
  }
  return out;
}

std::vector<std::string> Router::Impl::SlotNames() const {
  std::vector<std::string> names;
  for (const auto& s : slots) names.push_back(s->name);
  return names;
}

Result<std::vector<std::shared_ptr<const InstanceEntry>>> Router::Impl::MakeInstances(
    size_t slot, const std::vector<std::string>& addresses, bool start_unhealthy) {
  std::vector<std::shared_ptr<const InstanceEntry>> out;
  for (const std::string& address : addresses) {
    for (const auto& prev : out) {
      if (prev->address == address) {
        return InvalidArgument("instance " + address + " is listed twice for slot " +
                               slots[slot]->name);
      }
    }
    std::shared_ptr<const InstanceEntry> existing;
    if (slot < instances.size()) {
      for (const auto& inst : instances[slot]) {
        if (inst->address == address) existing = inst;
      }
    }
    if (existing) {
      out.push_back(existing);
      continue;
    }
    auto resolved = Resolve(address);
    if (!resolved.ok()) {
      return resolved.status().WithContext("slot " + slots[slot]->name);
    }
    auto entry = std::make_shared<InstanceEntry>();
    entry->id = next_instance_id++;
    entry->address = address;
    entry->endpoint = *resolved;
    entry->health = std::make_shared<InstanceHealth>();
    if (start_unhealthy && config.health.enabled) entry->health->healthy.store(false);
    auto& m = instance_metrics[slots[slot]->name + "\n" + address];
    if (!m) m = std::make_shared<metrics::SlotMetrics>(workers, kWindowSeconds);
    entry->metrics = m;
    out.push_back(std::move(entry));
  }
  return out;
}

Status Router::Impl::KeepOverrideSecret(RoutingPolicy* next) const {
  if (next->override_header.header.empty() || !next->override_header.secret.empty()) {
    return Status::Ok();
  }
  if (!policy.override_header.secret.empty()) {
    next->override_header.secret = policy.override_header.secret;
    return Status::Ok();
  }
  TURNOUT_ASSIGN_OR_RETURN(next->override_header.secret, NewOverrideSecret());
  return Status::Ok();
}

Status Router::Impl::WriteSecretFile(const RoutingPolicy& p) const {
  if (secret_file.empty() || p.override_header.secret.empty()) return Status::Ok();
  Result<std::string> current = LoadOverrideSecret(secret_file);
  if (current.ok() && *current == p.override_header.secret) return Status::Ok();
  Status s = SaveOverrideSecret(secret_file, p.override_header.secret);
  if (!s.ok()) {
    return s.WithContext("cannot write the override secret file " + secret_file +
                         " (policy.override.secret_file): make its directory writable");
  }
  return Status::Ok();
}

SlotStatus Router::Impl::StatusOf(size_t i, Clock::TimePoint now) const {
  SlotStatus s;
  s.name = slots[i]->name;
  s.receives_traffic = SlotReceivesTraffic(policy, s.name);
  s.in_flight = slots[i]->metrics->InFlight();
  s.tunnels = slots[i]->tunnels.load(std::memory_order_relaxed);
  s.drained = !s.receives_traffic && s.in_flight == 0;
  for (const auto& inst : instances[i]) {
    InstanceStatus is;
    is.address = inst->address;
    is.healthy = inst->health->healthy.load(std::memory_order_relaxed);
    is.ejected = inst->health->Ejected(now);
    is.in_flight = inst->metrics->InFlight();
    s.instances.push_back(std::move(is));
  }
  return s;
}

Router::Router(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Router::~Router() { Stop(); }

Result<std::unique_ptr<Router>> Router::Create(RouterConfig config, Clock& clock) {
  TURNOUT_RETURN_IF_ERROR(ValidateRouterConfig(config));
  auto impl = std::make_unique<Impl>(std::move(config), clock);
  Impl& r = *impl;
  r.workers = r.config.workers > 0
                  ? r.config.workers
                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  TURNOUT_ASSIGN_OR_RETURN(r.shared.trusted, TrustedProxies::Parse(r.config.trusted_proxies));
  r.shared.config = &r.config;
  r.shared.clock = &clock;
  r.shared.workers = r.workers;
  r.shared.start_ns = static_cast<uint64_t>(clock.WallNow().time_since_epoch().count());
  r.policy = r.config.policy;
  r.secret_file = OverrideSecretFilePath(r.config);
  if (!r.policy.override_header.header.empty() && r.policy.override_header.secret.empty()) {
    // No secret given: the one kept in the secret file (so a restart keeps it), else a new one.
    Result<std::string> kept = r.secret_file.empty()
                                   ? Result<std::string>(NotFound("no secret file"))
                                   : LoadOverrideSecret(r.secret_file);
    if (kept.ok()) {
      r.policy.override_header.secret = *kept;
    } else if (kept.status().code() != StatusCode::kNotFound) {
      return kept.status();
    } else {
      TURNOUT_ASSIGN_OR_RETURN(r.policy.override_header.secret, NewOverrideSecret());
    }
  }
  for (const SlotConfig& sc : r.config.slots) {
    auto rt = std::make_shared<SlotRuntime>();
    rt->name = sc.name;
    rt->metrics = std::make_shared<metrics::SlotMetrics>(r.workers, kWindowSeconds);
    r.slots.push_back(std::move(rt));
  }
  for (size_t i = 0; i < r.config.slots.size(); ++i) {
    TURNOUT_ASSIGN_OR_RETURN(auto list, r.MakeInstances(i, r.config.slots[i].instances, false));
    r.instances.push_back(std::move(list));
  }
  // The descriptor budget. Raising the limit is process-wide: an embedding process gets it too.
  TURNOUT_ASSIGN_OR_RETURN(FdLimit fds, RaiseFdLimit());
  FdBudgetInputs in;
  in.fd_limit = fds.soft;
  in.workers = r.workers;
  in.listeners = r.config.listen.size();
  for (const auto& list : r.instances) in.instances += list.size();
  in.max_idle_per_instance = r.config.limits.max_idle_per_instance;
  in.max_connections = r.config.limits.max_connections;
  TURNOUT_ASSIGN_OR_RETURN(r.budget, PlanFdBudget(in));
  r.budget_inputs = in;
  r.shared.max_clients = static_cast<int64_t>(r.budget.max_client_connections);
  r.shared.max_pooled = static_cast<int64_t>(r.budget.pooled_upstream);
  std::lock_guard<std::mutex> lock(r.mu);
  int64_t now = SteadyNowNs();
  for (const auto& s : r.slots) {
    s->lost_traffic_ns.store(SlotReceivesTraffic(r.policy, s->name) ? 0 : now);
  }
  r.Publish();
  return std::unique_ptr<Router>(new Router(std::move(impl)));
}

Status Router::Start() {
  Impl& r = *impl_;
  std::unique_lock<std::mutex> lock(r.mu);
  if (r.started) return FailedPrecondition("router already started");
  r.started = true;
  if (!r.config.state_file.empty()) {
    Result<RoutingPolicy> loaded = LoadPolicy(r.config.state_file);
    if (loaded.ok()) {
      Status valid = ValidatePolicy(*loaded, r.SlotNames());
      // A secret given in the configuration wins over the persisted one: a program that hands
      // the router its secret at every start (turnoutd) must be able to rely on it.
      if (!r.config.policy.override_header.secret.empty()) {
        loaded->override_header.secret = r.config.policy.override_header.secret;
      }
      if (valid.ok()) valid = r.KeepOverrideSecret(&*loaded);
      if (valid.ok()) {
        r.policy = *loaded;
        int64_t now = SteadyNowNs();
        for (const auto& s : r.slots) {
          s->lost_traffic_ns.store(SlotReceivesTraffic(r.policy, s->name) ? 0 : now);
        }
        r.Publish();
      } else {
        std::fprintf(stderr, "turnout router: ignoring persisted policy %s: %s\n",
                     r.config.state_file.c_str(), valid.ToString().c_str());
      }
    } else if (loaded.status().code() != StatusCode::kNotFound) {
      std::fprintf(stderr, "turnout router: ignoring persisted policy %s: %s\n",
                   r.config.state_file.c_str(), loaded.status().ToString().c_str());
    }
  }

  if (Status s = r.WriteSecretFile(r.policy); !s.ok()) {
    r.started = false;
    return s;
  }
  if (!r.config.access_log.path.empty() && !r.access_log) {
    Result<std::unique_ptr<AccessLog>> log = AccessLog::Open(r.config.access_log, r.workers);
    if (!log.ok()) {
      r.started = false;
      return log.status();
    }
    r.access_log = std::move(*log);
    r.shared.access_log = r.access_log.get();
  }
  for (int i = 0; i < r.workers; ++i) {
    r.worker_list.push_back(std::make_unique<Worker>(i, r.shared));
  }
  auto fail = [&](Status s) {
    for (auto& w : r.worker_list) w->Stop();
    r.worker_list.clear();
    r.listen.clear();
    return s;
  };
  for (const std::string& address : r.config.listen) {
    Result<tcp::endpoint> ep = Resolve(address);
    if (!ep.ok()) return fail(ep.status().WithContext("listen " + address));
    tcp::endpoint bound = *ep;
    for (size_t i = 0; i < r.worker_list.size(); ++i) {
      // The first worker resolves port 0; the others join it on the same port (SO_REUSEPORT).
      Result<tcp::endpoint> b = r.worker_list[i]->Listen(bound);
      if (!b.ok()) return fail(b.status());
      bound = *b;
    }
    r.listen.push_back(FormatHostPort(bound.address().to_string(), bound.port()));
  }
  r.checker = std::make_unique<HealthChecker>(r.config.health, r.clock);
  r.checker->SetTargets(r.Targets());
  Status s = r.checker->Start();
  if (!s.ok()) return fail(s);
  for (auto& w : r.worker_list) {
    Status ws = w->Start();
    if (!ws.ok()) {
      r.checker->Stop();
      return fail(ws);
    }
  }
  return Status::Ok();
}

void Router::Stop() {
  Impl& r = *impl_;
  std::unique_lock<std::mutex> lock(r.mu);
  if (!r.started || r.stopped) return;
  r.stopped = true;
  std::vector<std::unique_ptr<Worker>> workers = std::move(r.worker_list);
  lock.unlock();
  for (auto& w : workers) w->Stop();
  if (r.checker) r.checker->Stop();
  if (r.access_log) r.access_log->Flush();
}

void Router::ReopenAccessLog() {
  if (impl_->access_log) impl_->access_log->Reopen();
}

bool Router::FlushAccessLog() { return impl_->access_log ? impl_->access_log->Flush() : true; }

std::vector<std::string> Router::ListenAddresses() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->listen;
}

FdBudget Router::fd_budget() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->budget;
}

void Router::Impl::ReplanBudget() {
  FdBudgetInputs in = budget_inputs;
  in.instances = 0;
  for (const auto& list : instances) in.instances += list.size();
  Result<FdBudget> plan = PlanFdBudget(in);
  if (!plan.ok()) return;  // not even one client would fit: keep the last plan
  budget = *plan;
  shared.max_clients.store(static_cast<int64_t>(budget.max_client_connections),
                           std::memory_order_relaxed);
  shared.max_pooled.store(static_cast<int64_t>(budget.pooled_upstream), std::memory_order_relaxed);
}

std::string Router::PrometheusText() const {
  const Impl& r = *impl_;
  std::string out;
  std::lock_guard<std::mutex> lock(r.mu);
  {
    metrics::PrometheusWriter w(&out);
    for (size_t i = 0; i < r.slots.size(); ++i) {
      w.Write({{"slot", r.slots[i]->name}}, *r.slots[i]->metrics);
      for (const auto& inst : r.instances[i]) {
        w.Write({{"slot", r.slots[i]->name}, {"instance", inst->address}}, *inst->metrics);
      }
    }
    w.Finish();
  }
  out += "# HELP turnout_tunnels_open Upgraded connections (WebSocket...) open per slot.\n";
  out += "# TYPE turnout_tunnels_open gauge\n";
  for (const auto& s : r.slots) {
    out += "turnout_tunnels_open{slot=\"" + s->name + "\"} " +
           std::to_string(s->tunnels.load(std::memory_order_relaxed)) + "\n";
  }
  out += "# HELP turnout_slot_receives_traffic 1 when the policy routes traffic to the slot.\n";
  out += "# TYPE turnout_slot_receives_traffic gauge\n";
  for (const auto& s : r.slots) {
    out += "turnout_slot_receives_traffic{slot=\"" + s->name + "\"} " +
           (SlotReceivesTraffic(r.policy, s->name) ? "1" : "0") + "\n";
  }
  out += "# HELP turnout_routing_generation Generation of the routing table being served.\n";
  out += "# TYPE turnout_routing_generation gauge\n";
  out += "turnout_routing_generation " + std::to_string(r.generation) + "\n";
  out += "# HELP turnout_client_connections Open client connections.\n";
  out += "# TYPE turnout_client_connections gauge\n";
  out += "turnout_client_connections " +
         std::to_string(r.shared.connections.load(std::memory_order_relaxed)) + "\n";
  out += "# HELP turnout_client_connections_max Client connection limit (descriptor budget).\n";
  out += "# TYPE turnout_client_connections_max gauge\n";
  out += "turnout_client_connections_max " + std::to_string(r.budget.max_client_connections) + "\n";
  out += "# HELP turnout_fd_limit The router process's descriptor limit (soft RLIMIT_NOFILE).\n";
  out += "# TYPE turnout_fd_limit gauge\n";
  out += "turnout_fd_limit " + std::to_string(r.budget.fd_limit) + "\n";
  out +=
      "# HELP turnout_client_connections_refused_total Client connections accepted and reset "
      "at once: over the limit or out of descriptors.\n";
  out += "# TYPE turnout_client_connections_refused_total counter\n";
  out +=
      "turnout_client_connections_refused_total " + std::to_string(r.shared.refused.total()) + "\n";
  if (r.access_log) {
    out += "# HELP turnout_access_log_lines_total Access log lines written.\n";
    out += "# TYPE turnout_access_log_lines_total counter\n";
    out += "turnout_access_log_lines_total " + std::to_string(r.access_log->written()) + "\n";
    out +=
        "# HELP turnout_access_log_dropped_total Access log lines dropped because the writer "
        "lagged (its buffers were full) or could not write.\n";
    out += "# TYPE turnout_access_log_dropped_total counter\n";
    out += "turnout_access_log_dropped_total " + std::to_string(r.access_log->dropped()) + "\n";
  }
  if (r.checker) {
    out +=
        "# HELP turnout_health_checks_skipped_total Health checks not run because the router "
        "had no descriptor for them (the instance kept its state).\n";
    out += "# TYPE turnout_health_checks_skipped_total counter\n";
    out += "turnout_health_checks_skipped_total " + std::to_string(r.checker->skipped()) + "\n";
  }
  return out;
}

Result<RouterStatus> Router::GetStatus() {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  RouterStatus st;
  st.policy = r.policy;
  st.generation = r.generation;
  st.listen = r.listen;
  Clock::TimePoint now = r.clock.Now();
  for (size_t i = 0; i < r.slots.size(); ++i) st.slots.push_back(r.StatusOf(i, now));
  return st;
}

Result<RoutingPolicy> Router::GetPolicy() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->policy;
}

Result<uint64_t> Router::Impl::ApplyPolicy(RoutingPolicy next) {
  FillCanarySeed(policy, &next);
  TURNOUT_RETURN_IF_ERROR(ValidatePolicy(next, SlotNames()));
  TURNOUT_RETURN_IF_ERROR(KeepOverrideSecret(&next));
  if (!config.state_file.empty()) {
    Status saved = SavePolicy(config.state_file, next);
    if (!saved.ok()) return saved.WithContext("policy not changed: cannot persist it");
  }
  if (Status s = WriteSecretFile(next); !s.ok()) return s.WithContext("policy not changed");
  int64_t now = SteadyNowNs();
  for (const auto& s : slots) {
    bool before = SlotReceivesTraffic(policy, s->name);
    bool after = SlotReceivesTraffic(next, s->name);
    if (after)
      s->lost_traffic_ns.store(0, std::memory_order_relaxed);
    else if (before)
      s->lost_traffic_ns.store(now, std::memory_order_relaxed);
  }
  policy = std::move(next);
  return Publish();
}

Result<uint64_t> Router::SetPolicy(const RoutingPolicy& policy) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->ApplyPolicy(policy);
}

Result<uint64_t> Router::SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.generation != if_generation) return StaleGeneration(if_generation, r.generation);
  return r.ApplyPolicy(policy);
}

Result<uint64_t> Router::UpdatePolicy(const PolicyChange& change) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy next, change(r.policy, r.generation));
  return r.ApplyPolicy(std::move(next));
}

Result<uint64_t> Router::SetSlotInstances(const std::string& slot,
                                          const std::vector<std::string>& instances) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  size_t index = r.slots.size();
  for (size_t i = 0; i < r.slots.size(); ++i) {
    if (r.slots[i]->name == slot) index = i;
  }
  if (index == r.slots.size()) return NotFound("unknown slot '" + slot + "'");
  if (instances.empty()) {
    return InvalidArgument("slot " + slot + " needs at least one instance");
  }
  TURNOUT_ASSIGN_OR_RETURN(auto list, r.MakeInstances(index, instances, true));
  r.instances[index] = std::move(list);
  r.ReplanBudget();
  uint64_t generation = r.Publish();
  if (r.checker) r.checker->SetTargets(r.Targets());
  return generation;
}

Result<SlotStatus> Router::GetSlotStatus(const std::string& slot) {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  for (size_t i = 0; i < r.slots.size(); ++i) {
    if (r.slots[i]->name == slot) return r.StatusOf(i, r.clock.Now());
  }
  return NotFound("unknown slot '" + slot + "'");
}

Result<std::vector<SlotWindowMetrics>> Router::GetCumulativeMetrics() {
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<SlotWindowMetrics> out;
  for (const auto& s : r.slots) {
    metrics::CumulativeSnapshot c = s->metrics->Cumulative();
    metrics::WindowSnapshot w;
    w.window = std::chrono::seconds(0);
    w.counters = c.counters;
    w.total_latency = std::move(c.total_latency);
    w.upstream_latency = std::move(c.upstream_latency);
    out.push_back(SlotWindowMetrics{s->name, std::move(w), s->RecentFailures()});
  }
  return out;
}

Result<std::vector<SlotWindowMetrics>> Router::GetWindowMetrics(std::chrono::seconds window) {
  if (window.count() < 1 || window.count() > kWindowSeconds) {
    return InvalidArgument("window must be within 1.." + std::to_string(kWindowSeconds) +
                           " seconds");
  }
  Impl& r = *impl_;
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<SlotWindowMetrics> out;
  Clock::TimePoint now = r.clock.Now();
  for (const auto& s : r.slots) {
    out.push_back(SlotWindowMetrics{s->name, s->metrics->Window(window, now), s->RecentFailures()});
  }
  return out;
}

}  // namespace turnout::router
