#include "sources/dependency.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "common/host_port.h"
#include "db/pg.h"
#include "httpc/client.h"
#include "platform/run.h"

namespace turnout::sources {
namespace {

using SteadyClock = std::chrono::steady_clock;

Millis Since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
}

// Connects one address without blocking past `deadline`. "" on success, else why not.
std::string ConnectOne(const addrinfo* ai, SteadyClock::time_point deadline) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  std::string error;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      error = std::strerror(errno);
    } else {
      for (;;) {
        auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
        if (left <= 0) {
          error = "timed out";
          break;
        }
        pollfd p{fd, POLLOUT, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          error = std::string("poll: ") + std::strerror(errno);
          break;
        }
        if (n == 0) continue;  // re-checks the deadline
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        if (so_error != 0) error = std::strerror(so_error);
        break;
      }
    }
  }
  ::close(fd);
  return error;
}

CheckResult RunTcp(const TcpCheck& check) {
  CheckResult r;
  auto start = SteadyClock::now();
  Result<HostPort> address = ParseHostPort(check.address);
  if (!address.ok()) {
    r.detail = "tcp address: " + address.status().message();
    return r;
  }
  const std::string& host = address->host;
  const std::string port = std::to_string(address->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  // The system resolver has its own timeouts (resolv.conf); they bound this call.
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    r.latency = Since(start);
    r.detail = "resolve " + host + ": " + ::gai_strerror(rc);
    return r;
  }
  auto deadline = start + check.timeout;
  std::string error = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    error = ConnectOne(ai, deadline);
    if (error.empty() || SteadyClock::now() >= deadline) break;
  }
  ::freeaddrinfo(list);
  r.latency = Since(start);
  r.up = error.empty();
  r.detail = r.up ? "connected to " + check.address : "connect " + check.address + ": " + error;
  return r;
}

CheckResult RunHttp(const HttpCheck& check) {
  CheckResult r;
  auto start = SteadyClock::now();
  httpc::Request request;
  request.url = check.url;
  request.timeout = check.timeout;
  request.connect_timeout = check.timeout;
  request.max_response_bytes = 1 << 20;
  Result<httpc::Response> response = httpc::Fetch(request);
  r.latency = Since(start);
  if (!response.ok()) {
    r.detail = response.status().ToString();
    return r;
  }
  r.up = response->status >= check.min_status && response->status <= check.max_status;
  r.detail = "GET " + check.url + ": status " + std::to_string(response->status);
  if (!r.up) {
    r.detail += " (expected " + std::to_string(check.min_status) + ".." +
                std::to_string(check.max_status) + ")";
  }
  return r;
}

std::string WithConnectTimeout(const std::string& conninfo, Millis timeout) {
  // libpq takes whole seconds; rounding up never makes the check stricter than asked.
  int64_t seconds = (timeout.count() + 999) / 1000;
  if (seconds < 1) seconds = 1;
  std::string param = "connect_timeout=" + std::to_string(seconds);
  if (conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0) {
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + param;
  }
  return conninfo.empty() ? param : conninfo + " " + param;
}

CheckResult RunPostgres(const PostgresCheck& check) {
  CheckResult r;
  auto start = SteadyClock::now();
  auto conn = db::PgConnection::Connect(WithConnectTimeout(check.conninfo, check.connect_timeout),
                                        "turnout-dependency-check");
  if (!conn.ok()) {
    r.latency = Since(start);
    r.detail = conn.status().ToString();
    return r;
  }
  auto set = conn->Exec("SET statement_timeout = " +
                        std::to_string(std::max<int64_t>(1, check.statement_timeout.count())));
  if (!set.ok()) {
    r.latency = Since(start);
    r.detail = set.status().ToString();
    return r;
  }
  auto rows = conn->Exec("SELECT 1");
  r.latency = Since(start);
  if (!rows.ok()) {
    r.detail = rows.status().ToString();
    return r;
  }
  r.up = rows->size() == 1 && rows->text(0, 0) == "1";
  r.detail = r.up ? "SELECT 1 ok" : "SELECT 1 returned something else";
  return r;
}

CheckResult RunCommandCheck(const CommandCheck& check) {
  CheckResult r;
  auto start = SteadyClock::now();
  platform::RunSpec spec;
  spec.argv = check.argv;
  spec.timeout = check.timeout;
  spec.working_dir = check.working_dir;
  spec.kill_grace = Millis(1000);
  spec.max_output_bytes = 4096;
  Result<platform::RunResult> run = platform::RunCommand(spec);
  r.latency = Since(start);
  if (!run.ok()) {
    r.detail = run.status().ToString();
    return r;
  }
  r.up = run->ok();
  r.detail = run->Describe();
  std::string tail = run->Tail(3);
  if (!r.up && !tail.empty()) r.detail += ": " + tail;
  return r;
}

}  // namespace

std::string_view CheckKindName(const CheckSpec& spec) {
  static constexpr std::string_view kNames[] = {"tcp", "http", "postgres", "command"};
  return kNames[spec.index()];
}

CheckResult RunCheck(const CheckSpec& spec) {
  if (const auto* c = std::get_if<TcpCheck>(&spec)) return RunTcp(*c);
  if (const auto* c = std::get_if<HttpCheck>(&spec)) return RunHttp(*c);
  if (const auto* c = std::get_if<PostgresCheck>(&spec)) return RunPostgres(*c);
  return RunCommandCheck(std::get<CommandCheck>(spec));
}

DependencyChecker::DependencyChecker(std::vector<NamedCheck> checks, Clock& clock,
                                     Listener listener)
    : checks_(std::move(checks)), clock_(clock), listener_(std::move(listener)) {}

DependencyChecker::~DependencyChecker() { Stop(); }

Status DependencyChecker::Start() {
  std::set<std::string> names;
  for (const NamedCheck& c : checks_) {
    if (c.name.empty()) return InvalidArgument("a dependency check needs a name");
    if (!names.insert(c.name).second) {
      return InvalidArgument("dependency check \"" + c.name + "\" is defined twice");
    }
    if (c.interval <= Millis(0)) {
      return InvalidArgument("dependency check \"" + c.name + "\" needs an interval > 0");
    }
  }
  MutexLock lock(mu_);
  if (thread_.joinable() || stopping_)
    return FailedPrecondition("dependency checker started twice");
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void DependencyChecker::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::optional<DependencyState> DependencyChecker::Get(const std::string& name) const {
  MutexLock lock(mu_);
  auto it = state_.find(name);
  if (it == state_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, DependencyState> DependencyChecker::Snapshot() const {
  MutexLock lock(mu_);
  return state_;
}

void DependencyChecker::CheckAllNow() {
  for (const NamedCheck& c : checks_) Record(c.name, RunCheck(c.spec));
}

void DependencyChecker::Record(const std::string& name, const CheckResult& result) {
  DependencyState copy;
  bool changed = false;
  {
    MutexLock lock(mu_);
    Clock::TimePoint now = clock_.Now();
    auto [it, inserted] = state_.try_emplace(name);
    DependencyState& s = it->second;
    changed = inserted || s.up != result.up;
    if (changed) s.since = now;
    s.up = result.up;
    s.last_checked = now;
    s.consecutive_failures = result.up ? 0 : s.consecutive_failures + 1;
    s.last = result;
    copy = s;
  }
  if (listener_) listener_(name, copy, changed);
}

void DependencyChecker::Loop() {
  // Real time schedules the runs; the injected clock only stamps results.
  std::vector<SteadyClock::time_point> next(checks_.size(), SteadyClock::now());
  MutexLock lock(mu_);
  while (!stopping_) {
    size_t due = 0;
    for (size_t i = 1; i < next.size(); ++i) {
      if (next[i] < next[due]) due = i;
    }
    if (next.empty()) {
      while (!stopping_) cv_.Wait(mu_);
      break;
    }
    bool timed_out = false;
    while (!stopping_ && !timed_out) timed_out = cv_.WaitUntil(mu_, next[due]);
    if (stopping_) break;
    lock.Unlock();
    CheckResult result = RunCheck(checks_[due].spec);
    Record(checks_[due].name, result);
    next[due] = SteadyClock::now() + checks_[due].interval;
    lock.Lock();
  }
}

}  // namespace turnout::sources
