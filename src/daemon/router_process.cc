#include "daemon/router_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/file_util.h"
#include "common/host_port.h"
#include "common/sha256.h"
#include "daemon/wiring.h"
#include "platform/log_tail.h"
#include "platform/process_platform.h"

namespace turnout::daemon {
namespace {

using nlohmann::json;
using Millis = std::chrono::milliseconds;

constexpr const char* kKey = "router";

// The command template's quoting (platform/command.h): one literal word.
std::string QuoteWord(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A TCP admin address with port 0 (router.admin: 127.0.0.1:0) as one with a port free now, so
// that turnoutd knows where to reach the router. Other addresses are returned as they are.
Result<std::string> ResolveAdminPort(const std::string& address) {
  if (!router::UnixSocketPathOf(address).empty()) return address;
  TURNOUT_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address));
  if (hp.port != 0) return address;
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, hp.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, hp.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    len = sizeof(*v6);
  } else {
    return InvalidArgument("router.admin " + address + ": port 0 needs an IP address");
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot find a free port for router.admin " + address, err);
  }
  ::close(fd);
  const uint16_t port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}

struct Record {
  platform::InstanceHandle handle;
  std::string admin;
  std::string fingerprint;
  std::vector<std::string> listen;  // as bound (port 0 resolved)
};

std::optional<Record> ReadRecord(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  json j = json::parse(
      std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), nullptr,
      false);
  if (j.is_discarded() || !j.is_object() || !j.contains("handle") || !j["handle"].is_string()) {
    return std::nullopt;
  }
  Result<platform::InstanceHandle> handle = platform::DecodeHandle(j["handle"].get<std::string>());
  if (!handle.ok()) return std::nullopt;
  Record r{*handle, j.value("admin", ""), j.value("fingerprint", ""), {}};
  if (j.contains("listen") && j["listen"].is_array()) {
    for (const auto& l : j["listen"]) {
      if (l.is_string()) r.listen.push_back(l.get<std::string>());
    }
  }
  return r;
}

Status WriteRecord(const std::string& path, const Record& r) {
  return WriteFileAtomically(path,
                             json{{"handle", platform::EncodeHandle(r.handle)},
                                  {"pid", r.handle.pid},
                                  {"admin", r.admin},
                                  {"fingerprint", r.fingerprint},
                                  {"listen", r.listen}}
                                     .dump(2) +
                                 "\n",
                             0600);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

std::string RouterConfigFingerprint(const router::RouterConfig& config) {
  router::RouterConfig c = config;
  for (auto& slot : c.slots) slot.instances.clear();
  c.policy = router::RoutingPolicy{};
  return Sha256Hex(RouterConfigYaml(c)).substr(0, 16);
}

struct RouterProcess::State {
  RouterProcessOptions options;
  platform::Platform* platform = nullptr;
  const Clock* clock = nullptr;
  std::string fingerprint;
  platform::InstanceSpec spec;
  std::unique_ptr<platform::Supervisor> supervisor;

  mutable std::mutex mu;        // guards what follows
  router::RouterConfig config;  // as last written to options.config_path
  std::unique_ptr<router::AdminClient> client;
  Record record;
  bool attached = false;
  bool stopped = false;
  int restarts = 0;

  void Log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  router::AdminClient& Client() {
    std::lock_guard<std::mutex> lock(mu);
    return *client;
  }

  // Writes the config file from `config` (requires mu or no other thread yet).
  Status WriteConfig() {
    return WriteFileAtomically(options.config_path, RouterConfigYaml(config), 0600);
  }

  // Polls the admin API until it answers, the process ends, or the timeout passes.
  Status WaitAnswering(const platform::InstanceHandle& handle, Millis timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Status last = Unavailable("no answer yet");
    while (std::chrono::steady_clock::now() < deadline) {
      Result<router::RouterStatus> st = client->GetStatus();
      if (st.ok()) return Status::Ok();
      last = st.status();
      Result<platform::InstanceStatus> is = platform->Inspect(handle);
      if (is.ok() && !is->running()) {
        return Unavailable("the router process (pid " + std::to_string(handle.pid) + ") " +
                           is->ToString() + " at once; the end of " + handle.log_path + ":\n" +
                           platform::ReadLogTail(handle.log_path, 20, 1 << 20));
      }
      std::this_thread::sleep_for(Millis(20));
    }
    return Unavailable("the router process (pid " + std::to_string(handle.pid) +
                       ") did not answer on its admin API " + record.admin + " within " +
                       std::to_string(timeout.count()) + " ms (" + last.message() + "); see " +
                       handle.log_path);
  }

  // Launches a new process from `config` (called before other threads see the object).
  Status Launch() {
    record = Record{};
    record.fingerprint = fingerprint;
    TURNOUT_ASSIGN_OR_RETURN(config.admin, ResolveAdminPort(options.config.admin));
    record.admin = config.admin;
    TURNOUT_RETURN_IF_ERROR(WriteConfig());
    TURNOUT_ASSIGN_OR_RETURN(client, router::AdminClient::Create(config.admin, config.admin_token,
                                                                 options.call_timeout));
    TURNOUT_ASSIGN_OR_RETURN(platform::InstanceHandle handle, platform->Launch(spec));
    Status up = WaitAnswering(handle, options.start_timeout);
    if (!up.ok()) {
      (void)platform->Stop(handle);
      return up;
    }
    record.handle = handle;
    // Port 0 was resolved by the kernel: a relaunch must bind the same addresses, or users
    // would lose the router.
    if (Result<router::RouterStatus> st = client->GetStatus();
        st.ok() && st->listen.size() == config.listen.size()) {
      config.listen = st->listen;
      TURNOUT_RETURN_IF_ERROR(WriteConfig());
    }
    record.listen = config.listen;
    TURNOUT_RETURN_IF_ERROR(WriteRecord(options.record_path, record));
    Log("router process started (pid " + std::to_string(handle.pid) + ", admin API on " +
        record.admin + ", log " + handle.log_path + ")");
    return Status::Ok();
  }

  // Makes the running router serve the instances of `config` where they differ, then takes
  // its instances as the truth for the config file.
  Status ReconcileInstances() {
    TURNOUT_ASSIGN_OR_RETURN(router::RouterStatus st, client->GetStatus());
    if (st.listen.size() == config.listen.size()) config.listen = st.listen;  // port 0 resolved
    for (auto& slot : config.slots) {
      auto it = std::find_if(st.slots.begin(), st.slots.end(),
                             [&](const router::SlotStatus& s) { return s.name == slot.name; });
      if (it == st.slots.end()) continue;
      std::vector<std::string> serving;
      for (const auto& i : it->instances) serving.push_back(i.address);
      if (!slot.instances.empty() && Sorted(serving) != Sorted(slot.instances)) {
        TURNOUT_RETURN_IF_ERROR(client->SetSlotInstances(slot.name, slot.instances).status());
        Log("router slot " + slot.name + " set to the " + std::to_string(slot.instances.size()) +
            " running instance(s) turnoutd knows");
      } else {
        slot.instances = serving;
      }
    }
    return WriteConfig();
  }

  // The override header and secret the router applies are turnoutd's (a persisted policy may
  // carry older ones).
  Status ReconcileOverride() {
    TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, client->GetPolicy());
    // GET never shows the secret: compare through a PUT only when something may differ. The
    // header is visible; the secret is re-sent every start (idempotent, one request).
    policy.override_header = config.policy.override_header;
    return client->SetPolicy(policy).status();
  }
};

RouterProcess::RouterProcess(std::unique_ptr<State> state) : s_(std::move(state)) {}
RouterProcess::~RouterProcess() = default;

Result<std::unique_ptr<RouterProcess>> RouterProcess::AttachOrLaunch(RouterProcessOptions options,
                                                                     platform::Platform& platform,
                                                                     const Clock& clock) {
  if (options.program.empty() || options.service.empty() || options.config_path.empty() ||
      options.record_path.empty() || options.log_dir.empty() || options.config.admin.empty()) {
    return InvalidArgument(
        "RouterProcess needs program, service, config_path, record_path, log_dir and an admin "
        "address");
  }
  auto s = std::make_unique<State>();
  s->platform = &platform;
  s->clock = &clock;
  s->fingerprint = RouterConfigFingerprint(options.config);
  s->config = options.config;
  s->spec.service = options.service;
  s->spec.version = "router";
  s->spec.slot = "router";
  s->spec.instance = 0;
  s->spec.command =
      QuoteWord(options.program) + " router --config " + QuoteWord(options.config_path);
  s->spec.working_dir = options.working_dir;
  s->spec.stop_signal = SIGTERM;
  s->spec.grace = std::chrono::seconds(10);
  s->spec.log_dir = options.log_dir;
  s->options = std::move(options);
  State& st = *s;

  bool launch = true;
  if (std::optional<Record> rec = ReadRecord(st.options.record_path)) {
    const std::string who = "the router process (pid " + std::to_string(rec->handle.pid) + ")";
    // A new process of the same config binds where the old one served (port 0 stays resolved),
    // so users find it where they left it.
    if (rec->fingerprint == st.fingerprint && rec->listen.size() == st.config.listen.size()) {
      st.config.listen = rec->listen;
    }
    Result<platform::InstanceStatus> is = platform.Adopt(rec->handle);
    if (!is.ok() || !is->running()) {
      st.Log(who + " " + (is.ok() ? is->ToString() : is.status().message()) +
             " while turnoutd was down; starting a new one (it restores its persisted policy)");
    } else if (rec->fingerprint != st.fingerprint) {
      st.Log(who +
             " was started from another router config (turnout.yaml's router section, "
             "or its token or secret file changed): restarting it to apply the new one; "
             "its listeners close for the moment of the restart");
      TURNOUT_RETURN_IF_ERROR(platform.Stop(rec->handle));
    } else {
      st.record = *rec;
      st.config.admin = rec->admin;
      TURNOUT_ASSIGN_OR_RETURN(
          st.client,
          router::AdminClient::Create(rec->admin, st.config.admin_token, st.options.call_timeout));
      Status answers = st.WaitAnswering(rec->handle, st.options.start_timeout);
      if (answers.ok()) {
        launch = false;
        st.attached = true;
        st.Log("attached to " + who + ", admin API on " + rec->admin);
      } else {
        st.Log(who + " runs but does not answer (" + answers.message() + "); restarting it");
        TURNOUT_RETURN_IF_ERROR(platform.Stop(rec->handle));
      }
    }
  }
  if (launch) TURNOUT_RETURN_IF_ERROR(st.Launch());
  if (st.attached) TURNOUT_RETURN_IF_ERROR(st.ReconcileInstances());
  TURNOUT_RETURN_IF_ERROR(st.ReconcileOverride());

  State* raw = &st;
  st.supervisor = std::make_unique<platform::Supervisor>(
      platform, st.options.supervision, [raw](const platform::SupervisorEvent& e) {
        const std::string who = "router process";
        switch (e.type) {
          case platform::SupervisorEvent::Type::kExited:
            raw->Log(who + " (pid " + std::to_string(e.handle.pid) + ") " + e.status.ToString() +
                     "; restarting it");
            break;
          case platform::SupervisorEvent::Type::kRestarted: {
            std::lock_guard<std::mutex> lock(raw->mu);
            raw->record.handle = e.handle;
            ++raw->restarts;
            Status saved = WriteRecord(raw->options.record_path, raw->record);
            raw->Log(who + " restarted (attempt " + std::to_string(e.attempt) + ", pid " +
                     std::to_string(e.handle.pid) + ")" +
                     (saved.ok() ? "" : "; cannot record it: " + saved.ToString()));
            break;
          }
          case platform::SupervisorEvent::Type::kRestartFailed:
          case platform::SupervisorEvent::Type::kError:
            raw->Log(who + ": " + e.error.ToString());
            break;
          case platform::SupervisorEvent::Type::kRestartScheduled:
          case platform::SupervisorEvent::Type::kLogRotated:
            break;
        }
      });
  st.supervisor->Watch(kKey, st.spec, st.record.handle, clock.Now());
  return std::unique_ptr<RouterProcess>(new RouterProcess(std::move(s)));
}

Result<router::RouterStatus> RouterProcess::GetStatus() { return s_->Client().GetStatus(); }

Result<router::RoutingPolicy> RouterProcess::GetPolicy() {
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, s_->Client().GetPolicy());
  std::lock_guard<std::mutex> lock(s_->mu);
  if (policy.override_header.header == s_->config.policy.override_header.header) {
    policy.override_header.secret = s_->config.policy.override_header.secret;
  }
  return policy;
}

router::RoutingPolicy RouterProcess::WithOurSecret(const router::RoutingPolicy& policy) {
  router::RoutingPolicy p = policy;
  std::lock_guard<std::mutex> lock(s_->mu);
  if (p.override_header.secret.empty() &&
      p.override_header.header == s_->config.policy.override_header.header) {
    p.override_header.secret = s_->config.policy.override_header.secret;
  }
  return p;
}

Result<uint64_t> RouterProcess::SetPolicy(const router::RoutingPolicy& policy) {
  return s_->Client().SetPolicy(WithOurSecret(policy));
}

Result<uint64_t> RouterProcess::SetPolicyIf(const router::RoutingPolicy& policy,
                                            uint64_t if_generation) {
  return s_->Client().SetPolicyIf(WithOurSecret(policy), if_generation);
}

Result<uint64_t> RouterProcess::UpdatePolicy(const PolicyChange& change) {
  // The admin API keeps the router's secret when the new policy carries none.
  return s_->Client().UpdatePolicy(change);
}

Result<uint64_t> RouterProcess::SetSlotInstances(const std::string& slot,
                                                 const std::vector<std::string>& instances) {
  TURNOUT_ASSIGN_OR_RETURN(uint64_t generation, s_->Client().SetSlotInstances(slot, instances));
  std::lock_guard<std::mutex> lock(s_->mu);
  for (auto& sc : s_->config.slots) {
    if (sc.name == slot) sc.instances = instances;
  }
  if (Status w = s_->WriteConfig(); !w.ok()) {
    s_->Log("the router serves the new instances of " + slot +
            ", but its config file could not be updated (a relaunch would serve the old ones): " +
            w.ToString());
  }
  return generation;
}

Result<router::SlotStatus> RouterProcess::GetSlotStatus(const std::string& slot) {
  return s_->Client().GetSlotStatus(slot);
}

Result<std::vector<router::SlotWindowMetrics>> RouterProcess::GetWindowMetrics(
    std::chrono::seconds window) {
  return s_->Client().GetWindowMetrics(window);
}

Result<std::vector<router::SlotWindowMetrics>> RouterProcess::GetCumulativeMetrics() {
  return s_->Client().GetCumulativeMetrics();
}

Result<uint64_t> RouterProcess::Switch(const std::string& slot) {
  return s_->Client().Switch(slot);
}

Result<uint64_t> RouterProcess::SetCanaryWeight(const std::string& slot, uint32_t weight_bp) {
  return s_->Client().SetCanaryWeight(slot, weight_bp);
}

void RouterProcess::Tick(Clock::TimePoint now) {
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    if (s_->stopped) return;
  }
  s_->supervisor->Tick(now);
}

Status RouterProcess::StopProcess() {
  platform::InstanceHandle handle;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    if (s_->stopped) return Status::Ok();
    s_->stopped = true;
    handle = s_->record.handle;
  }
  // Current is the handle after the latest relaunch (kRestarted updates the record as well).
  if (Result<platform::InstanceHandle> current = s_->supervisor->Current(kKey); current.ok()) {
    handle = *current;
  }
  (void)s_->supervisor->Unwatch(kKey);
  TURNOUT_RETURN_IF_ERROR(s_->platform->Stop(handle));
  std::error_code ec;
  std::filesystem::remove(s_->options.record_path, ec);
  s_->Log("router process (pid " + std::to_string(handle.pid) + ") stopped");
  return Status::Ok();
}

RouterProcess::Info RouterProcess::info() const {
  Info i;
  Result<platform::InstanceHandle> current = s_->supervisor->Current(kKey);
  std::lock_guard<std::mutex> lock(s_->mu);
  i.pid = s_->stopped ? 0 : (current.ok() ? current->pid : 0);
  i.admin = s_->record.admin;
  i.log_path = platform::InstanceLogPath(s_->spec);
  i.attached = s_->attached;
  i.restarts = s_->restarts;
  i.stopped = s_->stopped;
  return i;
}

}  // namespace turnout::daemon
