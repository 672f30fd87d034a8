// Descriptor exhaustion: a router whose descriptor limit is low keeps serving its clients, its
// admin API and its health checks while far more silent connections are attempted than it has
// descriptors; the connections over its limit are accepted and reset at once.
//
// The router runs in a child process (forked before this process starts any thread) whose
// RLIMIT_NOFILE is lowered to kFdLimit, so that the flood's client sockets, held here, do not
// count against it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "router/admin_server.h"
#include "router/fd_budget.h"
#include "router/testing/router_harness.h"

namespace turnout::router {
namespace {

using namespace std::chrono_literals;
using testing::RawClient;
using testing::RawResponse;
using testing::TestUpstream;

constexpr rlim_t kFdLimit = 256;

// Reads one '\n'-terminated line from `fd` (blocking; the child writes it at once).
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// UBSan's vptr check probes memory through a pipe the first time it meets a (type, vtable)
// pair, and a process out of descriptors cannot make one: the check then reports a false
// "invalid vptr" and, not recoverable, kills the child. Meeting every error category the router
// can produce before the descriptors run out fills the check's cache, so nothing needs the probe
// later. Without the sanitizer this does nothing.
void WarmErrorCategories() {
  const boost::system::error_code codes[] = {
      boost::asio::error::eof, boost::asio::error::host_not_found,
      boost::asio::error::service_not_found, boost::asio::error::connection_reset,
      boost::system::error_code(EMFILE, boost::system::generic_category())};
  for (const auto& ec : codes) {
    if (!ec.failed() || ec.message().empty()) _exit(14);
  }
}

// The child: lowers its descriptor limit (soft and hard: the router raises soft to hard), reads
// the upstream address, runs a router with health checks and the admin API, reports
// "<listen> <admin> <max clients> <fd limit>", and exits when the parent closes `control`.
// With `exhaust`, it then takes every descriptor left, as if something else in the process
// (an embedding daemon) had used them up, once the parent has sent a line.
[[noreturn]] void RunRouterChild(int control, int report, bool exhaust) {
  struct rlimit rl = {kFdLimit, kFdLimit};
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(10);
  std::string upstream = ReadLine(control);
  RouterConfig config = testing::MakeTestRouterConfig({{"blue", {upstream}}}, "blue");
  config.health.enabled = true;
  config.health.interval = 100ms;
  config.health.timeout = 1000ms;
  config.health.rise = 1;
  config.health.fall = 1;  // one failed check would take the instance out
  auto created = Router::Create(config);
  if (!created.ok()) {
    WriteAll(report, "error " + created.status().ToString() + "\n");
    _exit(11);
  }
  std::unique_ptr<Router> router = std::move(created).value();
  if (!router->Start().ok()) _exit(12);
  AdminServer::Options options;
  // A Unix socket needs no token (its file mode is the check) and uses no port.
  options.address = "unix:" + ::testing::TempDir() + "turnout-fd-budget-admin-" +
                    std::to_string(::getpid()) + ".sock";
  Router* raw = router.get();
  AdminServer admin(options, *router, [raw] { return raw->PrometheusText(); });
  if (!admin.Start().ok()) _exit(13);
  FdBudget budget = router->fd_budget();
  WriteAll(report, testing::ListenAddress(*router) + " " + admin.address() + " " +
                       std::to_string(budget.max_client_connections) + " " +
                       std::to_string(budget.fd_limit) + "\n");
  ::close(report);
  std::vector<int> hoard;
  if (exhaust) {
    WarmErrorCategories();
    ReadLine(control);
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hoard.push_back(fd);
    // Given back before the parent closes its connections: sanitizers need descriptors to
    // check anything, and report false errors without them.
    ReadLine(control);
    for (int fd : hoard) ::close(fd);
  }
  char c;
  while (::read(control, &c, 1) > 0) {
  }
  admin.Stop();
  router->Stop();
  _exit(0);
}

// A non-blocking connect to 127.0.0.1:port that sends nothing; -1 when no socket is left here.
int SilentConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));  // EINPROGRESS
  return fd;
}

// How many of `fds` the peer has ended (EOF or reset) within `timeout`.
size_t CountEnded(std::vector<int>& fds, std::chrono::milliseconds timeout) {
  std::vector<bool> ended(fds.size(), false);
  size_t count = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> p;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (ended[i]) continue;
      p.push_back(pollfd{fds[i], POLLIN, 0});
      index.push_back(i);
    }
    if (p.empty()) break;
    if (::poll(p.data(), p.size(), 50) <= 0) continue;
    for (size_t k = 0; k < p.size(); ++k) {
      if (p[k].revents == 0) continue;
      char b;
      ssize_t n = ::recv(p[k].fd, &b, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        ended[index[k]] = true;
        ++count;
      }
    }
  }
  return count;
}

// The value of an unlabelled Prometheus sample, -1 when absent.
long long Sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stoll(line.substr(name.size() + 1));
  }
  return -1;
}

// A router child process and what it reported; the destructor ends it (closing `control`).
struct RouterChild {
  pid_t pid = -1;
  int control = -1;
  int report = -1;
  std::string listen, admin;
  uint64_t max_clients = 0, fd_limit = 0;
  uint16_t port = 0;
  ~RouterChild() {
    if (report >= 0) ::close(report);
    if (control >= 0) ::close(control);
    int status = 0;
    if (pid > 0) ::waitpid(pid, &status, 0);
  }
};

// Forks the router child. Call before this process starts any thread.
void ForkRouterChild(bool exhaust, RouterChild* child) {
  int control[2];
  int report[2];
  ASSERT_EQ(::pipe2(control, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  child->pid = ::fork();
  ASSERT_GE(child->pid, 0);
  if (child->pid == 0) {
    ::close(control[1]);
    ::close(report[0]);
    RunRouterChild(control[0], report[1], exhaust);
  }
  ::close(control[0]);
  ::close(report[1]);
  child->control = control[1];
  child->report = report[0];
}

// Raises this side's descriptor limit (it holds the flood), hands the child the upstream's
// address and reads what it reports.
void StartRouterChild(const std::string& upstream, RouterChild* child) {
  ASSERT_TRUE(RaiseFdLimit().ok());
  WriteAll(child->control, upstream + "\n");
  std::istringstream line(ReadLine(child->report));
  line >> child->listen >> child->admin >> child->max_clients >> child->fd_limit;
  ASSERT_FALSE(child->admin.empty()) << "the router child did not start: " << line.str();
  child->port =
      static_cast<uint16_t>(std::stoi(child->listen.substr(child->listen.rfind(':') + 1)));
}

TEST(RouterFdBudgetTest, SilentConnectionFloodUnderALowFdLimitStarvesNeitherClientsAdminNorHealth) {
  RouterChild child;
  ASSERT_NO_FATAL_FAILURE(ForkRouterChild(/*exhaust=*/false, &child));
  auto up = TestUpstream::Start("blue-1");
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  TestUpstream& upstream = **up;
  ASSERT_NO_FATAL_FAILURE(StartRouterChild(upstream.address(), &child));
  const std::string& listen = child.listen;
  const std::string& admin = child.admin;
  const uint64_t max_clients = child.max_clients;
  const uint64_t fd_limit = child.fd_limit;
  const uint16_t port = child.port;
  EXPECT_EQ(fd_limit, kFdLimit);
  ASSERT_GT(max_clients, 8u);
  ASSERT_LT(max_clients, kFdLimit / 2) << "the limit leaves room for everything else";

  auto instance_healthy = [&] {
    RawClient c;
    if (!c.Connect(admin, 1000ms).ok()) return false;
    RawResponse r = c.RoundTrip("GET /v1/slots/blue HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 1000ms);
    return r.status == 200 && r.body.find("\"healthy\":true") != std::string::npos;
  };
  ASSERT_TRUE(testing::WaitUntil(instance_healthy)) << "the instance never became healthy";

  // A normal client, connected before the flood, keeps its connection.
  RawClient user;
  ASSERT_TRUE(user.Connect(listen).ok());
  ASSERT_EQ(user.RoundTrip(testing::GetRequest("/")).status, 200);

  // The flood: twice the descriptor limit of connections that never send a byte.
  std::vector<int> flood;
  for (size_t i = 0; i < 2 * kFdLimit; ++i) {
    int fd = SilentConnect(port);
    ASSERT_GE(fd, 0) << "out of sockets on the test's side after " << i;
    flood.push_back(fd);
  }

  // The user is served quickly throughout, while health checks keep running.
  const uint64_t checks_before = upstream.health_checks();
  std::vector<double> ms;
  for (int i = 0; i < 200; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    RawResponse r = user.RoundTrip(testing::GetRequest("/"), "GET", 2000ms);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.error << " "
                             << r.Header("X-Turnout-Error");
  }
  std::sort(ms.begin(), ms.end());
  const double p99 = ms[ms.size() * 99 / 100];
  EXPECT_LT(p99, 100.0) << "p99 " << p99 << " ms";
  std::printf("fd limit %llu, max clients %llu, %zu silent connections: p99 %.2f ms\n",
              static_cast<unsigned long long>(fd_limit),
              static_cast<unsigned long long>(max_clients), flood.size(), p99);

  // Over the limit, the flood's connections were accepted and closed at once.
  const size_t ended = CountEnded(flood, 3000ms);
  EXPECT_GE(ended, flood.size() - max_clients - 4) << "of " << flood.size();

  // Health checks kept running and the instance stayed in.
  ASSERT_TRUE(testing::WaitUntil([&] { return upstream.health_checks() >= checks_before + 3; }))
      << "health checks stopped";
  EXPECT_TRUE(instance_healthy()) << "the admin API answers and the instance is still healthy";

  // The refusals are in /metrics.
  RawClient m;
  ASSERT_TRUE(m.Connect(admin, 1000ms).ok());
  RawResponse metrics = m.RoundTrip("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 2000ms);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_GE(Sample(metrics.body, "turnout_client_connections_refused_total"),
            static_cast<long long>(ended));
  EXPECT_EQ(Sample(metrics.body, "turnout_client_connections_max"),
            static_cast<long long>(max_clients));
  for (int fd : flood) ::close(fd);
}

TEST(FdBudgetTest, ReservesForAdminHealthAndPoolsAndHalvesTheRestForClients) {
  FdBudgetInputs in;
  in.fd_limit = 1024;
  in.workers = 2;
  in.listeners = 1;
  in.instances = 4;
  in.max_idle_per_instance = 64;
  auto b = PlanFdBudget(in);
  ASSERT_TRUE(b.ok());
  const uint64_t fixed =
      kBaseReserve + 2 * (kPerWorkerReserve + 1) + kAdminReserve + 4 + kHealthReserve;
  EXPECT_EQ(b->reserved, fixed);
  EXPECT_EQ(b->pooled_upstream, std::min<uint64_t>(2 * 4 * 64, (1024 - fixed) / 4));
  EXPECT_EQ(b->max_client_connections, (1024 - fixed - b->pooled_upstream) / 2);
  EXPECT_FALSE(b->capped_by_config);
  EXPECT_EQ(
      DescribeFdBudget(*b),
      "max client connections " + std::to_string(b->max_client_connections) + " (fd limit 1024)");
  // Never more descriptors than the limit, even with every client being proxied.
  EXPECT_LE(b->reserved + b->pooled_upstream + 2 * b->max_client_connections, 1024u);
}

// When accept() itself fails for want of descriptors, the waiting connections are still reset
// at once (with the spare descriptor), the listener neither stalls nor spins, a connected client
// is still served, and health checks that cannot open a socket leave the instance healthy.
TEST(RouterFdBudgetTest, OutOfDescriptorsTheListenerResetsWaitingConnectionsAndHealthHoldsState) {
  RouterChild child;
  ASSERT_NO_FATAL_FAILURE(ForkRouterChild(/*exhaust=*/true, &child));
  auto up = TestUpstream::Start("blue-1");
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  TestUpstream& upstream = **up;
  ASSERT_NO_FATAL_FAILURE(StartRouterChild(upstream.address(), &child));
  const uint16_t port = child.port;
  ASSERT_TRUE(testing::WaitUntil([&] { return upstream.health_checks() >= 2; }));

  RawClient user;
  ASSERT_TRUE(user.Connect(child.listen).ok());
  ASSERT_EQ(user.RoundTrip(testing::GetRequest("/")).status, 200);
  WriteAll(child.control, "exhaust\n");
  // Once the child holds every descriptor, its health checks cannot open sockets: wait until
  // they stop arriving (nothing else would show it from here).
  bool stopped = false;
  for (int i = 0; i < 30 && !stopped; ++i) {
    const uint64_t before = upstream.health_checks();
    std::this_thread::sleep_for(300ms);  // three check intervals
    stopped = upstream.health_checks() == before;
  }
  ASSERT_TRUE(stopped) << "the router child still opens sockets";

  std::vector<int> flood;
  for (int i = 0; i < 100; ++i) {
    int fd = SilentConnect(port);
    ASSERT_GE(fd, 0);
    flood.push_back(fd);
  }
  EXPECT_GE(CountEnded(flood, 3000ms), flood.size() - 2) << "waiting connections were reset";
  for (int fd : flood) ::close(fd);

  // The connected client keeps being served through its pooled upstream connection, which also
  // shows the instance stayed routable (fall is 1: one failed check would take it out).
  for (int i = 0; i < 20; ++i) {
    RawResponse r = user.RoundTrip(testing::GetRequest("/"), "GET", 2000ms);
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.error << " "
                             << r.Header("X-Turnout-Error");
    std::this_thread::sleep_for(20ms);  // across several health check rounds
  }
  WriteAll(child.control, "release\n");
}

// The numbers docs/router.md gives.
TEST(FdBudgetTest, TheDocumentedExamples) {
  FdBudgetInputs in;
  in.workers = 2;
  in.listeners = 1;
  in.instances = 2;
  in.max_idle_per_instance = 64;
  in.fd_limit = 1024;
  EXPECT_EQ(PlanFdBudget(in)->max_client_connections, 345u);
  in.fd_limit = 65536;
  EXPECT_EQ(PlanFdBudget(in)->max_client_connections, 32588u);
  EXPECT_EQ(DescribeFdBudget(*PlanFdBudget(in)), "max client connections 32588 (fd limit 65536)");
}

TEST(FdBudgetTest, AnExplicitMaxConnectionsOnlyLowersTheLimit) {
  FdBudgetInputs in;
  in.fd_limit = 1024;
  in.instances = 1;
  in.max_connections = 100;
  auto low = PlanFdBudget(in);
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low->max_client_connections, 100u);
  EXPECT_TRUE(low->capped_by_config);
  EXPECT_NE(DescribeFdBudget(*low).find("set by limits.max_connections"), std::string::npos);
  in.max_connections = 20000;
  auto high = PlanFdBudget(in);
  ASSERT_TRUE(high.ok());
  EXPECT_LT(high->max_client_connections, 512u);
  EXPECT_TRUE(high->config_over_budget);
  EXPECT_NE(DescribeFdBudget(*high).find("raise the fd limit"), std::string::npos);
}

TEST(FdBudgetTest, ALimitTooLowForAnyClientIsRefusedWithWhatToDo) {
  FdBudgetInputs in;
  in.fd_limit = 64;
  auto b = PlanFdBudget(in);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("ulimit -n"), std::string::npos);
}

}  // namespace
}  // namespace turnout::router
