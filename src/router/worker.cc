#include "router/worker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <new>
#include <random>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/parser.h"
#include "metrics/metrics.h"

namespace turnout::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Steady = std::chrono::steady_clock;
using metrics::RouterError;

namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Bodies are streamed through buffers of this size (the head buffers are at least this big).
constexpr size_t kMinBufferBytes = 32 * 1024;
// Request buffers a worker keeps for reuse; more are freed when a burst of requests ends.
constexpr size_t kMaxFreeCtx = 64;
// Gathered pieces per write when re-encoding chunked bodies.
constexpr size_t kMaxChunkPieces = 16;
// How long the router gives a client to take a router-generated response before closing.
constexpr std::chrono::seconds kErrorWriteTimeout{5};

// kIdleRead: between requests, still holding a request buffer with a read pending (cheap for a
// busy connection: no re-arming of epoll). kIdle: idle for longer than kLinger, holding no buffer.
enum class Phase : uint8_t {
  kNone,
  kIdleRead,
  kIdle,
  kHead,
  kConnect,
  kResponse,
  kBody,
  kTunnel,
  kClosing
};

// A connection idle for this long gives its request buffer back to the worker's pool.
constexpr std::chrono::seconds kLinger{1};
// Outside kIdle the deadline timer is armed at most this far ahead, so that moving between
// phases almost never needs re-arming it (a deadline later than the armed expiry is just stored
// and checked when the timer fires).
constexpr std::chrono::seconds kArmCap{2};
// A pooled upstream connection idle for longer than this is checked for a pending EOF before
// reuse (cheaper than a failed request; skipped for connections reused at once).
constexpr std::chrono::seconds kPeekAfterIdle{1};

// Per-request working memory, taken from the worker's pool only while a request is being served,
// so an idle keep-alive connection holds none of it.
// Request buffers are mapped straight from the kernel and unmapped when freed, so the memory of
// a burst goes back to the system at once instead of staying in the allocator's heap (which
// would leave every later idle connection looking expensive).
class MappedBuffer {
 public:
  explicit MappedBuffer(size_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      heap_.reset(new (std::nothrow) char[size]);  // out of mappings: the heap may still work
      data_ = heap_.get();                         // null when it does not either
    } else {
      data_ = static_cast<char*>(p);
    }
  }
  ~MappedBuffer() {
    if (heap_ == nullptr && data_ != nullptr) ::munmap(data_, size_);
  }
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  char* get() const { return data_; }

 private:
  size_t size_;
  char* data_ = nullptr;
  std::unique_ptr<char[]> heap_;
};

std::atomic<int> g_fail_request_memory{0};  // FailRequestMemoryForTesting

// True when a test asked this allocation to fail.
bool RequestMemoryFailsForTesting() {
  int left = g_fail_request_memory.load(std::memory_order_relaxed);
  while (left > 0) {
    if (g_fail_request_memory.compare_exchange_weak(left, left - 1)) return true;
  }
  return false;
}

// Per-request working memory, taken from the worker's pool only while a request is being served,
// so an idle keep-alive connection holds none of it.
struct RequestCtx {
  explicit RequestCtx(size_t capacity) : in(capacity), up(capacity), cap(capacity) {
    out.reserve(2048);
  }
  // The object itself (two parsed heads, ~8 KiB) is mapped too, for the same reason. Out of
  // memory it is null (the data plane throws nothing): AcquireCtx's caller refuses the connection.
  static void* operator new(size_t size) noexcept {
    if (RequestMemoryFailsForTesting()) return nullptr;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  static void operator delete(void* p, size_t size) { ::munmap(p, size); }

  MappedBuffer in;  // client bytes: head, body, pipelined requests
  MappedBuffer up;  // upstream bytes: response head and body
  size_t cap;
  size_t in_pos = 0;  // consumed client bytes
  size_t in_len = 0;  // valid client bytes
  size_t up_pos = 0;
  size_t up_len = 0;
  std::string out;  // head being sent (either direction)
  // Copied out of the request head for the access log and trace context (the head's bytes get
  // overwritten by the body); filled only when an access log or trace generation is on.
  std::string log_method;
  std::string log_target;
  std::string log_request_id;
  std::string trace_id;
  http::RequestHead req;
  http::ResponseHead resp;
};

bool IsIdempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
      .count();
}

void SetNoDelay(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
}

void CloseSocket(tcp::socket& s) {
  boost::system::error_code ec;
  s.close(ec);
}

// Closes with an RST so the client sees a broken transfer, never a clean end of body.
void AbortSocket(tcp::socket& s) {
  boost::system::error_code ec;
  if (s.is_open()) s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

// The result of moving one body from one socket to the other.
enum class Relay { kOk, kReadError, kWriteError, kBadFraming };

}  // namespace

// One client connection. Shared between its coroutine and its deadline timer's handler.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Worker::Impl& worker, tcp::socket socket);

  // Moves the deadline to now + d for `phase`. Re-arms the timer only when the deadline comes
  // earlier than the armed expiry: pushing it later is a plain store (checked when it fires).
  void SetDeadline(Steady::duration d, Phase p);
  void Touch() { deadline = Steady::now() + touch_for; }
  void Arm();
  void OnTimer(const boost::system::error_code& ec);
  void Expire();

  Worker::Impl& w;
  tcp::socket client;
  tcp::socket upstream;
  asio::steady_timer timer;
  Steady::time_point deadline{};
  Steady::time_point armed{Steady::time_point::max()};
  Steady::duration touch_for{};
  Steady::time_point idle_since{};  // start of the current kIdleRead/kIdle stretch
  Phase phase = Phase::kNone;
  Phase timed_out = Phase::kNone;  // the phase whose deadline passed (cleared by the coroutine)
  bool timer_pending = false;
  bool closed = false;
  bool peer_trusted = false;
  uint16_t peer_port = 0;
  SlotRuntime* tunnel_slot = nullptr;
  std::string peer_ip;
  Conn* prev = nullptr;
  Conn* next = nullptr;
};

// Everything one request needs besides its buffers.
struct Exchange {
  std::shared_ptr<const RoutingTable> table;
  Conn* conn = nullptr;
  RequestCtx* ctx = nullptr;
  int version_minor = -1;  // of the request; -1 until its head is parsed
  RouteReason reason = RouteReason::kNone;
  int64_t unix_ms = 0;  // wall-clock start, for the access log
  const SlotEntry* slot = nullptr;
  int slot_index = -1;
  const InstanceEntry* inst = nullptr;
  SlotSelection sel;
  char key[16];
  Clock::TimePoint t0{};
  Clock::TimePoint t_sent{};
  Clock::TimePoint t_head{};
  bool have_upstream_latency = false;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int status = 0;
  bool router_error = false;
  RouterError error = RouterError::kBadRequest;
  // Facts about the request, copied out of the head (its bytes get overwritten by the body).
  bool is_head = false;
  bool keep_alive = true;
  bool http10 = false;
  bool upgrade = false;
  bool expect = false;
  http::BodyKind body = http::BodyKind::kNone;
  uint64_t content_length = 0;
  size_t body_start = 0;  // where the body begins in RequestCtx::in
  bool retryable = false;
  bool body_done = false;         // the request body was fully forwarded
  bool client_close = false;      // close the client connection after this exchange
  bool response_started = false;  // some response byte went to the client
  bool upstream_reusable = false;
  bool finished = false;  // Finish() ran (a tunnel finishes early)
};

enum class Attempt { kDone, kRetry };

struct Worker::Impl {
  Impl(int index, DataPlaneShared& shared);
  ~Impl();

  const RouterConfig& config() const { return *shared.config; }

  awaitable<void> AcceptLoop(tcp::acceptor& acceptor);
  void Accepted(tcp::socket socket);
  void WaitIdle(std::shared_ptr<Conn> c);
  void Close(Conn& c);
  awaitable<void> ClientLoop(std::shared_ptr<Conn> c);
  awaitable<bool> Serve(Conn& c, RequestCtx& x);
  // Answers a request the router refuses before routing it (counted on the active slot).
  awaitable<bool> Reject(Conn& c, RequestCtx& x, Exchange& e, int status, RouterError err,
                         std::string body);
  awaitable<Attempt> Forward(Conn& c, RequestCtx& x, Exchange& e, bool reused);
  awaitable<bool> Connect(Conn& c, const InstanceEntry& inst, bool* reused);
  awaitable<void> RespondError(Conn& c, RequestCtx& x, Exchange& e, int status, RouterError err,
                               std::string_view body);
  awaitable<void> RespondMaintenance(Conn& c, RequestCtx& x, Exchange& e,
                                     const MaintenancePolicy& m);
  awaitable<void> WriteRouterResponse(Conn& c, RequestCtx& x, Exchange& e,
                                      RouterResponse& response);
  awaitable<Relay> RelayLength(Conn& c, tcp::socket& from, tcp::socket& to, char* buf, size_t* pos,
                               size_t* len, uint64_t remaining, std::string* head,
                               uint64_t* read_bytes, uint64_t* written_bytes);
  awaitable<Relay> RelayChunked(Conn& c, tcp::socket& from, tcp::socket& to, char* buf, size_t* pos,
                                size_t* len, bool reencode, std::string* head, uint64_t* read_bytes,
                                uint64_t* written_bytes);
  awaitable<Relay> RelayUntilClose(Conn& c, RequestCtx& x, std::string* head,
                                   uint64_t* written_bytes);
  awaitable<void> Tunnel(Conn& c, RequestCtx& x, Exchange& e);
  awaitable<void> Pump(Conn& c, tcp::socket& from, tcp::socket& to, char* buf);
  awaitable<void> SweepLoop();

  void Finish(Exchange& e);
  void RefreshTable();
  // Null when the system is out of memory.
  std::unique_ptr<RequestCtx> AcquireCtx();
  void ReleaseCtx(std::unique_ptr<RequestCtx> x);
  bool PoolTake(const InstanceEntry& inst, tcp::socket* out);
  // Closes a pooled connection taken out of a pool (keeps shared.pooled right).
  void PoolDrop(tcp::socket& s);
  void PoolPut(const Exchange& e, tcp::socket s);
  void PoolDropUnrouted();
  void CloseAll();
  void Link(Conn* c);
  void Unlink(Conn* c);
  // Counts a refused client connection (metrics, the rate-limited warning).
  void CountRefused();
  // Accepts and resets, with the spare descriptor, connections waiting on an acceptor while
  // the process is out of descriptors. Returns how many were refused.
  int ShedWithSpare(tcp::acceptor& acceptor);
  // While descriptors are short, whether a connection just accepted may be kept: the spare is
  // restored first, and one more descriptor must still be free (for its upstream). Threads
  // race for every descriptor freed at the limit (the other workers' accepts, health checks),
  // so without this a worker can lose its spare to them for good, and a connection accepted
  // at the limit could never reach an upstream anyway.
  bool KeepUnderFdPressure();
  void NewKey(char (&key)[16]);
  uint64_t NextRandom();
  // Writes the access log line of a finished exchange (when kept) and remembers a failed one's
  // trace id in its slot.
  void LogExchange(const Exchange& e, Clock::TimePoint now);
  size_t NewRequestId(char* out);

  // Declared first: destroyed last, after everything that holds sockets or timers.
  asio::io_context ioc{1};
  int index;
  DataPlaneShared& shared;
  http::ParseLimits limits;
  size_t buffer_bytes;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::unique_ptr<asio::steady_timer> sweep_timer;
  std::thread thread;
  std::future<void> done;
  bool started = false;
  bool stopped = false;
  bool stopping = false;  // worker thread only

  std::shared_ptr<const RoutingTable> table;
  uint64_t table_generation = ~uint64_t{0};
  std::vector<uint32_t> rr;  // round-robin cursor per slot index

  struct Idle {
    tcp::socket socket;
    Steady::time_point since;
  };
  std::unordered_map<uint64_t, std::vector<Idle>> pools;  // instance id -> LIFO

  // Request buffers not in use; at most kMaxFreeCtx are kept after a burst.
  std::vector<std::unique_ptr<RequestCtx>> ctx_free;

  // Held open so that, out of descriptors, one can be freed to accept and reset a connection.
  int spare_fd = -1;
  Conn* conns = nullptr;  // intrusive list of live connections
  uint64_t rng;
  uint64_t request_counter = 0;
};

// ---------------------------------------------------------------------------------------------
// Conn

Conn::Conn(Worker::Impl& worker, tcp::socket socket)
    : w(worker), client(std::move(socket)), upstream(w.ioc), timer(w.ioc) {}

void Conn::SetDeadline(Steady::duration d, Phase p) {
  phase = p;
  touch_for = d;
  deadline = Steady::now() + d;
  if (!timer_pending || deadline < armed) Arm();
}

void Conn::Arm() {
  if (closed || w.stopping) return;
  Steady::time_point at = deadline;
  if (phase != Phase::kIdle) at = std::min(at, Steady::now() + kArmCap);
  if (phase == Phase::kIdleRead) at = std::min(at, idle_since + kLinger);
  if (phase == Phase::kTunnel) {
    // A tunnel also watches its slot's drain state, which can change at any time.
    auto poll =
        std::clamp<Steady::duration>(w.config().timeouts.tunnel_drain / 4,
                                     std::chrono::milliseconds(10), std::chrono::seconds(1));
    at = std::min(at, Steady::now() + poll);
  }
  armed = at;
  timer_pending = true;
  timer.expires_at(at);
  timer.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnTimer(ec); });
}

void Conn::OnTimer(const boost::system::error_code& ec) {
  if (ec == asio::error::operation_aborted) return;  // re-armed or closing
  timer_pending = false;
  if (closed || w.stopping) return;
  Steady::time_point now = Steady::now();
  if (phase == Phase::kTunnel && tunnel_slot != nullptr) {
    int64_t lost = tunnel_slot->lost_traffic_ns.load(std::memory_order_relaxed);
    if (lost != 0 && SteadyNs() - lost >= std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              w.config().timeouts.tunnel_drain)
                                              .count()) {
      Expire();
      return;
    }
  }
  if (now >= deadline) {
    Expire();
    return;
  }
  if (phase == Phase::kIdleRead && now >= idle_since + kLinger) {
    // Not a timeout: the coroutine gives the buffer back and waits without one.
    timed_out = Phase::kIdleRead;
    boost::system::error_code ignored;
    client.cancel(ignored);
    return;
  }
  Arm();
}

void Conn::Expire() {
  timed_out = phase;
  boost::system::error_code ec;
  switch (phase) {
    case Phase::kConnect:
    case Phase::kResponse:
      upstream.cancel(ec);
      break;
    case Phase::kIdleRead:
    case Phase::kIdle:
    case Phase::kHead:
      client.cancel(ec);
      break;
    case Phase::kBody:
      // A body that stopped moving is a broken transfer: reset both sides, never a clean end
      // that would look like a complete message framed by close.
      AbortSocket(client);
      AbortSocket(upstream);
      break;
    case Phase::kTunnel:
    case Phase::kClosing:
    case Phase::kNone:
      client.close(ec);
      upstream.close(ec);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Worker::Impl

Worker::Impl::Impl(int i, DataPlaneShared& s) : index(i), shared(s) {
  const RouterConfig& cfg = *s.config;
  limits.max_head_bytes = cfg.limits.max_head_bytes;
  limits.max_target_bytes = cfg.limits.max_target_bytes;
  limits.max_headers = std::min<size_t>(cfg.limits.max_headers, http::kMaxHeaders);
  buffer_bytes = std::max<size_t>(kMinBufferBytes, cfg.limits.max_head_bytes + 1);
  std::random_device rd;
  rng = (uint64_t{rd()} << 32) ^ rd() ^ (static_cast<uint64_t>(i) << 17) ^ 0x9e3779b97f4a7c15ull;
  if (rng == 0) rng = 1;
  spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Worker::Impl::~Impl() {
  for (auto& [id, v] : pools) {
    shared.pooled.fetch_sub(static_cast<int64_t>(v.size()), std::memory_order_relaxed);
  }
  pools.clear();
  if (spare_fd >= 0) ::close(spare_fd);
  acceptors.clear();
  sweep_timer.reset();
}

uint64_t Worker::Impl::NextRandom() {
  // xorshift64*: fast, and good enough for spreading clients over canary buckets, sampling and
  // trace ids (which need to be unique, not unpredictable).
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1Dull;
}

void Worker::Impl::NewKey(char (&key)[16]) {
  uint64_t v = NextRandom();
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) key[i] = kHex[(v >> (i * 4)) & 0xf];
}

size_t Worker::Impl::NewRequestId(char* out) {
  char* p = out;
  p = std::to_chars(p, p + 16, shared.start_ns, 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, p + 8, static_cast<unsigned>(index), 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, p + 16, ++request_counter, 16).ptr;
  return static_cast<size_t>(p - out);
}

std::unique_ptr<RequestCtx> Worker::Impl::AcquireCtx() {
  if (ctx_free.empty()) {
    std::unique_ptr<RequestCtx> x(new RequestCtx(buffer_bytes));
    if (x == nullptr || x->in.get() == nullptr || x->up.get() == nullptr) return nullptr;
    return x;
  }
  std::unique_ptr<RequestCtx> x = std::move(ctx_free.back());
  ctx_free.pop_back();
  return x;
}

void Worker::Impl::ReleaseCtx(std::unique_ptr<RequestCtx> x) {
  if (ctx_free.size() >= kMaxFreeCtx) return;
  x->in_pos = x->in_len = 0;
  x->up_pos = x->up_len = 0;
  ctx_free.push_back(std::move(x));
}

void Worker::Impl::Link(Conn* c) {
  c->next = conns;
  if (conns != nullptr) conns->prev = c;
  conns = c;
}

void Worker::Impl::Unlink(Conn* c) {
  if (c->prev != nullptr)
    c->prev->next = c->next;
  else if (conns == c)
    conns = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void Worker::Impl::RefreshTable() {
  uint64_t g = shared.generation.load(std::memory_order_acquire);
  if (g == table_generation && table) return;
  table = shared.CurrentTable();
  table_generation = g;
  if (rr.size() < table->slots.size()) rr.resize(table->slots.size(), 0);
  PoolDropUnrouted();
}

void Worker::Impl::PoolDropUnrouted() {
  for (auto it = pools.begin(); it != pools.end();) {
    bool keep = false;
    for (const SlotEntry& s : table->slots) {
      if (!s.receives_traffic) continue;
      for (const auto& inst : s.instances) {
        if (inst->id == it->first) keep = true;
      }
    }
    if (keep) {
      ++it;
      continue;
    }
    for (Idle& i : it->second) PoolDrop(i.socket);
    it = pools.erase(it);
  }
}

void Worker::Impl::PoolDrop(tcp::socket& s) {
  shared.pooled.fetch_sub(1, std::memory_order_relaxed);
  CloseSocket(s);
}

bool Worker::Impl::PoolTake(const InstanceEntry& inst, tcp::socket* out) {
  auto it = pools.find(inst.id);
  if (it == pools.end()) return false;
  std::vector<Idle>& v = it->second;
  Steady::time_point now = Steady::now();
  while (!v.empty()) {
    Idle idle = std::move(v.back());
    v.pop_back();
    shared.pooled.fetch_sub(1, std::memory_order_relaxed);
    if (now - idle.since >= config().timeouts.upstream_idle) {
      CloseSocket(idle.socket);
      continue;
    }
    if (now - idle.since < kPeekAfterIdle) {
      *out = std::move(idle.socket);
      return true;
    }
    // An idle upstream connection must have nothing to say: EOF or stray bytes mean it is dead.
    char b;
    ssize_t r = ::recv(idle.socket.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      CloseSocket(idle.socket);
      continue;
    }
    *out = std::move(idle.socket);
    return true;
  }
  return false;
}

void Worker::Impl::PoolPut(const Exchange& e, tcp::socket s) {
  RefreshTable();
  bool routed = false;
  if (!stopping) {
    for (const SlotEntry& slot : table->slots) {
      if (!slot.receives_traffic) continue;
      for (const auto& inst : slot.instances) {
        if (inst->id == e.inst->id) routed = true;
      }
    }
  }
  std::vector<Idle>& v = pools[e.inst->id];
  bool keep = routed && v.size() < config().limits.max_idle_per_instance;
  if (keep && shared.pooled.fetch_add(1, std::memory_order_relaxed) >=
                  shared.max_pooled.load(std::memory_order_relaxed)) {
    shared.pooled.fetch_sub(1, std::memory_order_relaxed);  // over the descriptor budget
    keep = false;
  }
  if (!keep) {
    CloseSocket(s);
    if (v.empty()) pools.erase(e.inst->id);
    return;
  }
  v.push_back(Idle{std::move(s), Steady::now()});
}

awaitable<void> Worker::Impl::SweepLoop() {
  auto period = std::clamp<Steady::duration>(
      config().timeouts.upstream_idle / 2, std::chrono::milliseconds(50), std::chrono::seconds(1));
  for (;;) {
    sweep_timer->expires_after(period);
    auto [ec] = co_await sweep_timer->async_wait(kNoThrow);
    if (ec || stopping) co_return;
    Steady::time_point now = Steady::now();
    for (auto& [id, v] : pools) {
      // Oldest first: the LIFO pushes to the back.
      size_t n = 0;
      while (n < v.size() && now - v[n].since >= config().timeouts.upstream_idle) {
        PoolDrop(v[n].socket);
        ++n;
      }
      if (n > 0) v.erase(v.begin(), v.begin() + static_cast<ptrdiff_t>(n));
    }
    RefreshTable();
  }
}

void Worker::Impl::CloseAll() {
  stopping = true;
  boost::system::error_code ec;
  for (auto& a : acceptors) a->close(ec);
  if (sweep_timer) sweep_timer->cancel();
  for (Conn* c = conns; c != nullptr; c = c->next) {
    c->closed = true;
    c->timer.cancel();
    CloseSocket(c->client);
    CloseSocket(c->upstream);
  }
  for (auto& [id, v] : pools) {
    for (Idle& i : v) PoolDrop(i.socket);
  }
  pools.clear();
}

void Worker::Impl::CountRefused() {
  RefreshTable();
  metrics::RequestSample s;
  s.router_error = true;
  s.error = RouterError::kConnectionLimit;
  const SlotEntry& slot = table->slots[static_cast<size_t>(table->active)];
  Clock::TimePoint now = shared.clock->Now();
  slot.runtime->metrics->shard(index).Record(s, now);
  uint64_t report = shared.refused.Add(now);
  if (report > 0) {
    std::fprintf(stderr,
                 "turnout router: warning: refused %llu client connection(s) since the last "
                 "warning: at the client connection limit (%lld) or out of descriptors; raise "
                 "the fd limit or add routers\n",
                 static_cast<unsigned long long>(report),
                 static_cast<long long>(shared.max_clients.load(std::memory_order_relaxed)));
  }
}

bool Worker::Impl::KeepUnderFdPressure() {
  if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (spare_fd < 0) return false;
  int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (probe < 0) return false;
  ::close(probe);
  return true;
}

int Worker::Impl::ShedWithSpare(tcp::acceptor& acceptor) {
  // Bounded, so that one worker never spends long here while connections keep arriving.
  constexpr int kMaxShed = 64;
  int shed = 0;
  // Lost to another thread at the last shed: taken back if a descriptor came free since.
  if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  while (shed < kMaxShed && spare_fd >= 0) {
    ::close(spare_fd);
    spare_fd = -1;
    int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      struct linger lg = {1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      ::close(fd);
      CountRefused();
      ++shed;
    }
    spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;  // nothing waiting, or another thread took the descriptor
  }
  return shed;
}

awaitable<void> Worker::Impl::AcceptLoop(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of descriptors: the waiting connections are reset with the spare descriptor (else
      // the backlog would fill and every client would hang); then a short pause so that the
      // loop never spins on an acceptor that stays readable.
      if (ec.value() == EMFILE || ec.value() == ENFILE) {
        shared.fd_pressure_until.store(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                (Steady::now() + std::chrono::seconds(1)).time_since_epoch())
                .count(),
            std::memory_order_relaxed);
        ShedWithSpare(acceptor);
      }
      asio::steady_timer t(ioc, std::chrono::milliseconds(2));
      co_await t.async_wait(kNoThrow);
      continue;
    }
    const int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
            .count();
    if (now_ns < shared.fd_pressure_until.load(std::memory_order_relaxed) &&
        !KeepUnderFdPressure()) {
      CountRefused();
      AbortSocket(socket);  // frees its descriptor: the spare takes it back
      if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      continue;
    }
    int64_t open = shared.connections.fetch_add(1, std::memory_order_relaxed);
    if (open >= shared.max_clients.load(std::memory_order_relaxed)) {
      shared.connections.fetch_sub(1, std::memory_order_relaxed);
      CountRefused();
      AbortSocket(socket);
      continue;
    }
    Accepted(std::move(socket));
  }
}

void Worker::Impl::Accepted(tcp::socket socket) {
  auto c = std::make_shared<Conn>(*this, std::move(socket));
  Link(c.get());
  SetNoDelay(c->client);
  boost::system::error_code ec;
  tcp::endpoint peer = c->client.remote_endpoint(ec);
  if (!ec) {
    asio::ip::address a = peer.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
      a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    }
    c->peer_ip = a.to_string();
    c->peer_port = peer.port();
    c->peer_trusted = shared.trusted.Contains(a);
  }
  c->idle_since = Steady::now();
  WaitIdle(std::move(c));
}

// An idle connection is only its Conn, a pending wait and its timer: no coroutine frame and no
// buffer. The serving coroutine starts when a request arrives.
void Worker::Impl::WaitIdle(std::shared_ptr<Conn> c) {
  if (stopping || c->closed) {
    Close(*c);
    return;
  }
  c->SetDeadline(c->idle_since + config().timeouts.client_idle - Steady::now(), Phase::kIdle);
  Conn& conn = *c;
  conn.client.async_wait(tcp::socket::wait_read,
                         [this, c = std::move(c)](const boost::system::error_code& ec) mutable {
                           if (ec || c->timed_out != Phase::kNone || stopping || c->closed) {
                             Close(*c);
                             return;
                           }
                           asio::co_spawn(ioc, ClientLoop(std::move(c)), asio::detached);
                         });
}

void Worker::Impl::Close(Conn& c) {
  if (c.prev == nullptr && c.next == nullptr && conns != &c) return;  // closed already
  c.closed = true;
  c.timer.cancel();
  CloseSocket(c.upstream);
  if (c.client.is_open()) {
    boost::system::error_code ec;
    c.client.shutdown(tcp::socket::shutdown_send, ec);
    CloseSocket(c.client);
  }
  Unlink(&c);
  shared.connections.fetch_sub(1, std::memory_order_relaxed);
}

awaitable<void> Worker::Impl::ClientLoop(std::shared_ptr<Conn> c) {
  std::unique_ptr<RequestCtx> x = AcquireCtx();
  if (x == nullptr) {
    // Out of memory: a fixed answer that needs none, then the connection goes.
    static constexpr std::string_view kNoMemory =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
        "Connection: close\r\n\r\n";
    co_await asio::async_write(c->client, asio::buffer(kNoMemory.data(), kNoMemory.size()),
                               kNoThrow);
    Close(*c);
    co_return;
  }
  bool idle = false;
  while (!stopping && !c->closed) {
    bool keep = co_await Serve(*c, *x);
    if (!keep || stopping) break;
    if (x->in_len > 0) continue;  // pipelined
    // Between requests: read straight into the buffer while the connection is busy; after
    // kLinger without a request the timer cancels the read and the connection goes idle.
    c->idle_since = Steady::now();
    c->SetDeadline(config().timeouts.client_idle, Phase::kIdleRead);
    auto [rec, n] = co_await c->client.async_read_some(asio::buffer(x->in.get(), x->cap), kNoThrow);
    if (n > 0) {
      c->timed_out = Phase::kNone;
      x->in_len = n;
      continue;
    }
    if (c->timed_out == Phase::kIdleRead && !stopping) {
      c->timed_out = Phase::kNone;
      idle = true;
    }
    break;
  }
  ReleaseCtx(std::move(x));
  if (idle) {
    WaitIdle(std::move(c));
  } else {
    Close(*c);
  }
}

void Worker::Impl::Finish(Exchange& e) {
  Clock::TimePoint now = shared.clock->Now();
  metrics::RequestSample s;
  s.status = e.status;
  s.total = now - e.t0;
  if (e.have_upstream_latency) s.upstream = e.t_head - e.t_sent;
  s.bytes_in = e.bytes_in;
  s.bytes_out = e.bytes_out;
  s.router_error = e.router_error;
  s.error = e.error;
  if (e.slot != nullptr) {
    auto& shard = e.slot->runtime->metrics->shard(index);
    shard.Record(s, now);
    shard.AddInFlight(-1);
  }
  if (e.inst != nullptr) {
    auto& shard = e.inst->metrics->shard(index);
    shard.Record(s, now);
    shard.AddInFlight(-1);
  }
  if (!e.finished) LogExchange(e, now);
  e.finished = true;
}

void Worker::Impl::LogExchange(const Exchange& e, Clock::TimePoint now) {
  const bool failed =
      e.status >= 500 || (e.router_error && e.status == 0 && e.error != RouterError::kClientAbort);
  if (failed && e.slot != nullptr && e.ctx != nullptr && !e.ctx->trace_id.empty()) {
    FailedRequest f;
    f.unix_ms = e.unix_ms;
    f.status = e.status;
    if (e.router_error) f.error = metrics::RouterErrorName(e.error);
    f.trace_id = e.ctx->trace_id;
    f.request_id = e.ctx->log_request_id;
    if (e.inst != nullptr) f.instance = e.inst->address;
    e.slot->runtime->RecordFailure(std::move(f));
  }
  AccessLog* log = shared.access_log;
  if (log == nullptr || !log->Keep(e.status, e.router_error, NextRandom())) return;
  AccessLogEntry l;
  l.unix_ms = e.unix_ms;
  if (e.conn != nullptr) {
    l.client_ip = e.conn->peer_ip;
    l.client_port = e.conn->peer_port;
  }
  if (e.ctx != nullptr && e.version_minor >= 0) {
    l.method = e.ctx->log_method;
    l.target = e.ctx->log_target;
    l.request_id = e.ctx->log_request_id;
    l.trace_id = e.ctx->trace_id;
  }
  l.version_minor = e.version_minor;
  l.status = e.status;
  l.response_bytes = e.bytes_out;
  l.request_bytes = e.bytes_in;
  l.duration_ms = std::chrono::duration<double, std::milli>(now - e.t0).count();
  if (e.have_upstream_latency) {
    l.upstream_ms = std::chrono::duration<double, std::milli>(e.t_head - e.t_sent).count();
  }
  const SlotEntry* slot = e.slot;
  if (slot != nullptr) l.slot = slot->runtime->name;
  if (e.inst != nullptr) l.instance = e.inst->address;
  l.reason = e.reason;
  if (e.router_error) l.error = metrics::RouterErrorName(e.error);
  log->Append(index, l);
}

awaitable<void> Worker::Impl::RespondError(Conn& c, RequestCtx& x, Exchange& e, int status,
                                           RouterError err, std::string_view body) {
  e.status = status;
  e.router_error = true;
  e.error = err;
  if (e.response_started) {
    // Part of a response is out already: the only honest signal left is a reset.
    e.status = 0;
    e.client_close = true;
    AbortSocket(c.client);
    co_return;
  }
  RouterResponse response;
  response.status = status;
  response.reason = metrics::RouterErrorName(err);
  response.body = body;
  co_await WriteRouterResponse(c, x, e, response);
}

awaitable<void> Worker::Impl::RespondMaintenance(Conn& c, RequestCtx& x, Exchange& e,
                                                 const MaintenancePolicy& m) {
  e.status = 503;
  e.router_error = true;
  e.error = RouterError::kMaintenance;
  RouterResponse response;
  response.status = 503;
  response.reason = metrics::RouterErrorName(RouterError::kMaintenance);
  response.body = m.page.empty() ? kDefaultMaintenancePage : std::string_view(m.page);
  response.content_type = m.page.empty() ? std::string_view("text/html; charset=utf-8")
                                         : std::string_view(m.content_type);
  response.body_newline = false;
  response.retry_after_seconds = m.retry_after_seconds;
  co_await WriteRouterResponse(c, x, e, response);
}

// Writes a response the router makes itself; the connection closes after it when the request
// body was not read, or the client asked.
awaitable<void> Worker::Impl::WriteRouterResponse(Conn& c, RequestCtx& x, Exchange& e,
                                                  RouterResponse& response) {
  if (!e.body_done && e.body != http::BodyKind::kNone) e.client_close = true;
  if (!e.keep_alive) e.client_close = true;
  x.out.clear();
  response.close = e.client_close;
  response.head_only = e.is_head;
  AppendRouterResponse(response, &x.out);
  c.timed_out = Phase::kNone;
  c.SetDeadline(kErrorWriteTimeout, Phase::kClosing);
  auto [ec, n] = co_await asio::async_write(c.client, asio::buffer(x.out), kNoThrow);
  e.bytes_out += n;
  e.response_started = true;
  if (ec) e.client_close = true;
}

namespace {

// Whether the client connection serves another request; if so, moves the pipelined bytes that
// follow this request to the front of the buffer.
bool KeepServing(const Exchange& e, RequestCtx& x, bool stopping) {
  if (e.client_close || !e.keep_alive || stopping) return false;
  size_t rest = x.in_len - x.in_pos;
  if (rest > 0 && x.in_pos > 0) std::memmove(x.in.get(), x.in.get() + x.in_pos, rest);
  x.in_len = rest;
  x.in_pos = 0;
  return true;
}

// Runs the decoder over the body bytes that came with the head, so that a malformed chunked body
// is refused before anything is sent upstream. Returns false on a framing error.
bool BufferedChunksValid(const RequestCtx& x) {
  http::ChunkedDecoder decoder;
  size_t pos = x.in_pos;
  while (pos < x.in_len) {
    http::ChunkedDecoder::Step step =
        decoder.Feed(std::string_view(x.in.get() + pos, x.in_len - pos));
    if (step.error) return false;
    if (step.done || (step.consumed == 0 && step.data.empty())) return true;
    pos += step.consumed;
  }
  return true;
}

}  // namespace

awaitable<bool> Worker::Impl::Reject(Conn& c, RequestCtx& x, Exchange& e, int status,
                                     RouterError err, std::string body) {
  e.slot = &e.table->slots[static_cast<size_t>(e.table->active)];
  e.slot->runtime->metrics->shard(index).AddInFlight(1);
  co_await RespondError(c, x, e, status, err, body);
  Finish(e);
  co_return KeepServing(e, x, stopping);
}

awaitable<bool> Worker::Impl::Serve(Conn& c, RequestCtx& x) {
  Exchange e;
  e.t0 = shared.clock->Now();
  e.conn = &c;
  e.ctx = &x;
  x.trace_id.clear();
  if (shared.access_log != nullptr) {
    e.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    shared.clock->WallNow().time_since_epoch())
                    .count();
  }
  c.SetDeadline(config().timeouts.head, Phase::kHead);

  // 1. The request head.
  http::ParseResult pr;
  // Where the parser stopped looking: a head trickled in byte by byte is scanned once, not
  // once per read (quadratic CPU for a slowloris client otherwise).
  size_t resume_at = 0;
  for (;;) {
    if (x.in_len > 0) {
      pr =
          http::ParseRequestHead(std::string_view(x.in.get(), x.in_len), limits, &x.req, resume_at);
      if (pr.state != http::ParseState::kIncomplete) break;
      resume_at = pr.resume_at;
      if (x.in_len >= limits.max_head_bytes) {
        pr.state = http::ParseState::kError;
        pr.error_status = 431;
        pr.error_reason = "request head too large";
        break;
      }
    }
    auto [ec, n] = co_await c.client.async_read_some(
        asio::buffer(x.in.get() + x.in_len, x.cap - x.in_len), kNoThrow);
    if (c.timed_out == Phase::kHead) {
      RefreshTable();
      e.table = table;
      e.keep_alive = false;
      c.timed_out = Phase::kNone;
      co_return co_await Reject(c, x, e, 408, RouterError::kHeadTimeout,
                                "the request head did not arrive in time");
    }
    if (ec) co_return false;  // the client went away between requests or mid-head
    x.in_len += n;
    e.bytes_in += n;
  }
  RefreshTable();
  e.table = table;
  const RoutingTable& t = *e.table;

  if (pr.state == http::ParseState::kError) {
    RouterError err = RouterError::kBadRequest;
    if (pr.error_status == 431) err = RouterError::kHeadTooLarge;
    if (pr.error_status == 414) err = RouterError::kUriTooLong;
    e.keep_alive = false;
    co_return co_await Reject(c, x, e, pr.error_status, err,
                              std::string("bad request: ") + pr.error_reason);
  }

  const http::RequestHead& req = x.req;
  e.is_head = req.method == "HEAD";
  e.keep_alive = req.keep_alive;
  e.http10 = req.version_minor == 0;
  e.upgrade = req.upgrade;
  e.expect = req.expect_continue;
  e.body = req.body;
  e.content_length = req.content_length;
  e.body_start = pr.consumed;
  x.in_pos = pr.consumed;
  e.bytes_in = pr.consumed;
  e.version_minor = req.version_minor;
  const bool logging = shared.access_log != nullptr;
  if (logging) {
    x.log_method.assign(req.method);
    x.log_target.assign(req.target);
  }
  // W3C trace context: a valid traceparent goes on untouched; without one, a new trace when
  // trace.generate is on.
  char traceparent[kTraceparentSize];
  bool new_trace = false;
  {
    std::string_view trace_id;
    TraceparentState ts = InspectTraceparent(req.headers, &trace_id);
    if (ts == TraceparentState::kValid) {
      x.trace_id.assign(trace_id);
    } else if (config().trace.generate) {
      FormatTraceparent(NextRandom(), NextRandom(), NextRandom(), traceparent);
      x.trace_id.assign(traceparent + 3, 32);
      new_trace = true;
    }
  }
  // The request id, for the log line and a failed request's evidence.
  const bool want_request_id = logging || !x.trace_id.empty();
  x.log_request_id.clear();
  if (want_request_id && !config().request_id_header.empty()) {
    const http::Header* rid = req.headers.Find(config().request_id_header);
    if (rid != nullptr) x.log_request_id.assign(rid->value);
  }
  e.retryable = !e.upgrade && IsIdempotent(req.method) &&
                (e.body == http::BodyKind::kNone || (e.body == http::BodyKind::kContentLength &&
                                                     e.content_length <= x.in_len - x.in_pos));

  if (e.body == http::BodyKind::kChunked && !BufferedChunksValid(x)) {
    e.keep_alive = false;
    co_return co_await Reject(c, x, e, 400, RouterError::kBadRequest,
                              "bad request: invalid chunked body");
  }

  // 2. Slot and instance.
  NewKey(e.key);
  e.sel = SelectSlot(t, req, std::string_view(e.key, sizeof(e.key)));
  e.reason = e.sel.reason;
  if (e.sel.bad_secret) {
    co_return co_await Reject(c, x, e, 400, RouterError::kBadRequest,
                              "bad request: the " + t.policy.override_header.header +
                                  " header needs the right " + std::string(kOverrideSecretHeader));
  }
  if (e.sel.slot < 0) {
    co_return co_await Reject(
        c, x, e, 400, RouterError::kBadRequest,
        "bad request: the " + t.policy.override_header.header + " header names no known slot");
  }
  if (t.policy.maintenance.enabled && !e.sel.by_override) {
    co_await RespondMaintenance(c, x, e, t.policy.maintenance);
    Finish(e);
    co_return KeepServing(e, x, stopping);
  }
  e.slot_index = e.sel.slot;
  e.slot = &t.slots[static_cast<size_t>(e.sel.slot)];
  e.slot->runtime->metrics->shard(index).AddInFlight(1);
  e.inst = PickInstance(*e.slot, shared.clock->Now(), &rr[static_cast<size_t>(e.slot_index)]);
  if (e.inst == nullptr) {
    std::string body = "no healthy instance in slot " + e.slot->runtime->name;
    co_await RespondError(c, x, e, 503, RouterError::kNoHealthyUpstream, body);
    Finish(e);
    co_return KeepServing(e, x, stopping);
  }
  e.inst->metrics->shard(index).AddInFlight(1);

  // 3. The head to send upstream (built once: a retry sends the same bytes).
  x.out.clear();
  char rid[64];
  ForwardRequestOptions fo;
  fo.peer_ip = c.peer_ip;
  fo.peer_trusted = c.peer_trusted;
  fo.request_id_header = config().request_id_header;
  fo.request_id = std::string_view(rid, NewRequestId(rid));
  if (want_request_id && x.log_request_id.empty() && !fo.request_id_header.empty()) {
    x.log_request_id.assign(fo.request_id);
  }
  if (new_trace) fo.traceparent = std::string_view(traceparent, kTraceparentSize);
  fo.chunked = e.body == http::BodyKind::kChunked;
  fo.upgrade = e.upgrade;
  AppendForwardedRequestHead(req, fo, &x.out);

  // 4. Forward. A request that may be retried (idempotent, body buffered: e.retryable) and got
  // no response byte is sent again on another instance when possible: once after a failed connect
  // or an upstream that closed a new connection unanswered (an instance shutting down closes its
  // listen backlog), and, without spending that retry, after a pooled connection the upstream had
  // already closed. At most kMaxAttempts in all.
  constexpr int kMaxAttempts = 3;
  bool retried = false;
  for (int attempt = 1;; ++attempt) {
    bool reused = false;
    bool connected = co_await Connect(c, *e.inst, &reused);
    if (stopping) {
      e.status = 0;
      e.router_error = true;
      e.error = RouterError::kClientAbort;
      e.client_close = true;
      Finish(e);
      co_return false;
    }
    Attempt a = Attempt::kRetry;
    if (connected) a = co_await Forward(c, x, e, reused);
    if (a == Attempt::kDone) break;
    CloseSocket(c.upstream);
    const InstanceEntry* next = nullptr;
    if (attempt < kMaxAttempts && (reused || !retried)) {
      next = PickInstance(*e.slot, shared.clock->Now(), &rr[static_cast<size_t>(e.slot_index)],
                          e.inst);
    }
    if (next == nullptr) {
      RouterError err = connected ? RouterError::kUpstreamReset : RouterError::kUpstreamConnect;
      std::string body = connected
                             ? "the upstream closed the connection before responding"
                             : "could not connect to an instance of slot " + e.slot->runtime->name;
      co_await RespondError(c, x, e, 502, err, body);
      break;
    }
    retried = retried || !reused;
    e.inst->metrics->shard(index).AddInFlight(-1);
    e.inst = next;
    e.inst->metrics->shard(index).AddInFlight(1);
    // A retry resends the fully buffered body from its start.
    x.in_pos = e.body_start;
    e.bytes_in = e.body_start;
  }

  Finish(e);
  if (e.upstream_reusable && c.upstream.is_open()) {
    PoolPut(e, std::move(c.upstream));
    c.upstream = tcp::socket(ioc);
  } else {
    CloseSocket(c.upstream);
  }
  co_return KeepServing(e, x, stopping);
}

awaitable<bool> Worker::Impl::Connect(Conn& c, const InstanceEntry& inst, bool* reused) {
  CloseSocket(c.upstream);
  if (PoolTake(inst, &c.upstream)) {
    *reused = true;
    co_return true;
  }
  *reused = false;
  boost::system::error_code ec;
  c.upstream.open(inst.endpoint.protocol(), ec);
  if (ec) co_return false;
  c.SetDeadline(config().timeouts.upstream_connect, Phase::kConnect);
  auto [cec] = co_await c.upstream.async_connect(inst.endpoint, kNoThrow);
  if (stopping) co_return false;
  if (cec || c.timed_out == Phase::kConnect) {
    c.timed_out = Phase::kNone;
    inst.health->RecordConnectFailure(shared.clock->Now(), config().health);
    co_return false;
  }
  inst.health->RecordConnectSuccess();
  SetNoDelay(c.upstream);
  co_return true;
}

awaitable<Attempt> Worker::Impl::Forward(Conn& c, RequestCtx& x, Exchange& e, bool reused) {
  const TimeoutConfig& to = config().timeouts;
  // a) Head, and whatever of a Content-Length body is already buffered.
  bool wait_for_continue = false;
  uint64_t cl_remaining = 0;
  {
    size_t prefix = 0;
    if (e.body == http::BodyKind::kContentLength) {
      prefix = static_cast<size_t>(std::min<uint64_t>(x.in_len - x.in_pos, e.content_length));
      cl_remaining = e.content_length - prefix;
      wait_for_continue = e.expect && cl_remaining > 0;
      if (wait_for_continue) prefix = 0, cl_remaining = e.content_length;
    } else if (e.body == http::BodyKind::kChunked) {
      wait_for_continue = e.expect;
    }
    c.SetDeadline(to.body_idle, Phase::kBody);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(x.out),
                                           asio::buffer(x.in.get() + x.in_pos, prefix)};
    auto [ec, n] = co_await asio::async_write(c.upstream, bufs, kNoThrow);
    if (ec) {
      if (e.retryable) co_return Attempt::kRetry;
      co_await RespondError(c, x, e, 502, RouterError::kUpstreamReset,
                            "the upstream closed the connection before responding");
      co_return Attempt::kDone;
    }
    x.in_pos += prefix;
    e.bytes_in += prefix;
    e.t_sent = shared.clock->Now();
  }

  // b) The rest of the body (now, or after a 100 Continue).
  auto send_body = [&]() -> awaitable<bool> {
    Relay r = Relay::kOk;
    uint64_t written = 0;
    c.SetDeadline(to.body_idle, Phase::kBody);
    if (e.body == http::BodyKind::kContentLength) {
      r = co_await RelayLength(c, c.client, c.upstream, x.in.get(), &x.in_pos, &x.in_len,
                               cl_remaining, nullptr, &e.bytes_in, &written);
    } else if (e.body == http::BodyKind::kChunked) {
      r = co_await RelayChunked(c, c.client, c.upstream, x.in.get(), &x.in_pos, &x.in_len, true,
                                nullptr, &e.bytes_in, &written);
    }
    if (r == Relay::kOk) {
      e.body_done = true;
      e.t_sent = shared.clock->Now();
      co_return true;
    }
    if (r == Relay::kReadError) {
      e.status = 0;
      e.router_error = true;
      e.error = RouterError::kClientAbort;
      e.client_close = true;
      CloseSocket(c.upstream);
      co_return false;
    }
    if (r == Relay::kBadFraming) {
      CloseSocket(c.upstream);
      e.client_close = true;
      co_await RespondError(c, x, e, 400, RouterError::kBadRequest,
                            "bad request: invalid chunked body");
      co_return false;
    }
    e.client_close = true;
    co_await RespondError(c, x, e, 502, RouterError::kUpstreamReset,
                          "the upstream closed the connection while receiving the body");
    co_return false;
  };
  if (e.body == http::BodyKind::kNone) {
    e.body_done = true;
  } else if (!wait_for_continue && cl_remaining == 0 && e.body == http::BodyKind::kContentLength) {
    e.body_done = true;
  } else if (!wait_for_continue) {
    if (!co_await send_body()) co_return Attempt::kDone;
  }

  // c) The response head, relaying interim responses.
  x.up_pos = x.up_len = 0;
  http::ResponseHead& resp = x.resp;
  std::string_view method = e.is_head ? "HEAD" : "GET";
  size_t head_bytes = 0;
  bool any_response_byte = false;
  c.SetDeadline(to.upstream_response, Phase::kResponse);
  for (;;) {
    if (x.up_len > 0) {
      http::ParseResult pr =
          http::ParseResponseHead(std::string_view(x.up.get(), x.up_len), method, limits, &resp);
      if (pr.state == http::ParseState::kError) {
        co_await RespondError(c, x, e, 502, RouterError::kUpstreamBadResponse,
                              "the upstream sent an invalid response");
        co_return Attempt::kDone;
      }
      if (pr.state == http::ParseState::kComplete) {
        if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
          if (!e.http10) {
            x.out.clear();
            AppendForwardedResponseHead(resp, ForwardResponseOptions{}, &x.out);
            auto [wec, wn] = co_await asio::async_write(c.client, asio::buffer(x.out), kNoThrow);
            e.bytes_out += wn;
            if (wec) {
              e.status = 0;
              e.router_error = true;
              e.error = RouterError::kClientAbort;
              e.client_close = true;
              co_return Attempt::kDone;
            }
          }
          size_t rest = x.up_len - pr.consumed;
          std::memmove(x.up.get(), x.up.get() + pr.consumed, rest);
          x.up_len = rest;
          if (resp.status == 100 && !e.body_done) {
            if (!co_await send_body()) co_return Attempt::kDone;
          }
          c.SetDeadline(to.upstream_response, Phase::kResponse);
          continue;
        }
        head_bytes = pr.consumed;
        break;
      }
      if (x.up_len >= limits.max_head_bytes) {
        co_await RespondError(c, x, e, 502, RouterError::kUpstreamBadResponse,
                              "the upstream's response head is too large");
        co_return Attempt::kDone;
      }
    }
    auto [ec, n] = co_await c.upstream.async_read_some(
        asio::buffer(x.up.get() + x.up_len, x.cap - x.up_len), kNoThrow);
    if (c.timed_out == Phase::kResponse) {
      c.timed_out = Phase::kNone;
      co_await RespondError(c, x, e, 504, RouterError::kUpstreamTimeout,
                            "the upstream did not respond in time");
      co_return Attempt::kDone;
    }
    if (ec) {
      if (!any_response_byte && e.retryable && e.bytes_out == 0) {
        co_return Attempt::kRetry;
      }
      co_await RespondError(c, x, e, 502, RouterError::kUpstreamReset,
                            "the upstream closed the connection before a complete response");
      co_return Attempt::kDone;
    }
    any_response_byte = true;
    x.up_len += n;
  }
  e.t_head = shared.clock->Now();
  e.have_upstream_latency = true;
  e.status = resp.status;

  if (resp.status == 101) {
    if (!e.upgrade) {
      co_await RespondError(c, x, e, 502, RouterError::kUpstreamBadResponse,
                            "the upstream switched protocols without being asked to");
      co_return Attempt::kDone;
    }
    x.up_pos = head_bytes;
    co_await Tunnel(c, x, e);
    co_return Attempt::kDone;
  }

  // d) The final response.
  if (!e.body_done) e.client_close = true;  // the client's unsent body would be read as a request
  if (!e.keep_alive || stopping) e.client_close = true;
  const bool reencode = resp.body == http::BodyKind::kChunked && !e.http10;
  if (resp.body == http::BodyKind::kUntilClose) e.client_close = true;
  if (resp.body == http::BodyKind::kChunked && e.http10) e.client_close = true;
  ForwardResponseOptions ro;
  ro.chunked = reencode;
  ro.close = e.client_close;
  ro.keep_alive_header = e.http10 && !e.client_close;
  if (e.sel.set_cookie) {
    ro.cookie_name = e.table->policy.sticky.name;
    ro.cookie_value = std::string_view(e.key, sizeof(e.key));
    ro.cookie_max_age = e.table->policy.sticky.cookie_max_age_seconds;
  }
  x.out.clear();
  AppendForwardedResponseHead(resp, ro, &x.out);
  x.up_pos = head_bytes;
  uint64_t from_upstream = 0;
  Relay r = Relay::kOk;
  c.SetDeadline(to.body_idle, Phase::kBody);
  switch (resp.body) {
    case http::BodyKind::kNone: {
      auto [ec, n] = co_await asio::async_write(c.client, asio::buffer(x.out), kNoThrow);
      e.bytes_out += n;
      if (ec) r = Relay::kWriteError;
      break;
    }
    case http::BodyKind::kContentLength:
      r = co_await RelayLength(c, c.upstream, c.client, x.up.get(), &x.up_pos, &x.up_len,
                               resp.content_length, &x.out, &from_upstream, &e.bytes_out);
      break;
    case http::BodyKind::kChunked:
      r = co_await RelayChunked(c, c.upstream, c.client, x.up.get(), &x.up_pos, &x.up_len, reencode,
                                &x.out, &from_upstream, &e.bytes_out);
      break;
    case http::BodyKind::kUntilClose:
      r = co_await RelayUntilClose(c, x, &x.out, &e.bytes_out);
      break;
  }
  e.response_started = e.bytes_out > 0;
  if (r == Relay::kReadError || r == Relay::kBadFraming) {
    // The upstream broke mid-response (or timed out): the client must not take it as complete.
    e.status = 0;
    e.router_error = true;
    e.error = RouterError::kUpstreamAbort;
    e.client_close = true;
    AbortSocket(c.client);
    co_return Attempt::kDone;
  }
  if (r == Relay::kWriteError) {
    e.status = 0;
    e.router_error = true;
    e.error = RouterError::kClientAbort;
    e.client_close = true;
    co_return Attempt::kDone;
  }
  e.upstream_reusable = resp.keep_alive && e.body_done && !e.upgrade &&
                        resp.body != http::BodyKind::kUntilClose && x.up_pos == x.up_len;
  co_return Attempt::kDone;
}

awaitable<Relay> Worker::Impl::RelayLength(Conn& c, tcp::socket& from, tcp::socket& to, char* buf,
                                           size_t* pos, size_t* len, uint64_t remaining,
                                           std::string* head, uint64_t* read_bytes,
                                           uint64_t* written_bytes) {
  const size_t cap = buffer_bytes;
  for (;;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(*len - *pos, remaining));
    if (n > 0 || head != nullptr) {
      std::array<asio::const_buffer, 2> bufs{
          head != nullptr ? asio::buffer(*head) : asio::const_buffer(),
          asio::buffer(buf + *pos, n)};
      auto [ec, wn] = co_await asio::async_write(to, bufs, kNoThrow);
      *written_bytes += wn;
      if (ec) co_return Relay::kWriteError;
      c.Touch();
      head = nullptr;
      *pos += n;
      *read_bytes += n;
      remaining -= n;
    }
    if (remaining == 0) co_return Relay::kOk;
    if (*pos == *len) *pos = *len = 0;
    auto [ec, rn] = co_await from.async_read_some(asio::buffer(buf + *len, cap - *len), kNoThrow);
    if (ec || rn == 0) co_return Relay::kReadError;
    c.Touch();
    *len += rn;
  }
}

awaitable<Relay> Worker::Impl::RelayChunked(Conn& c, tcp::socket& from, tcp::socket& to, char* buf,
                                            size_t* pos, size_t* len, bool reencode,
                                            std::string* head, uint64_t* read_bytes,
                                            uint64_t* written_bytes) {
  const size_t cap = buffer_bytes;
  http::ChunkedDecoder decoder;
  char sizes[kMaxChunkPieces][24];
  std::array<asio::const_buffer, 1 + 3 * kMaxChunkPieces + 1> bufs;
  for (;;) {
    size_t nb = 0;
    size_t pieces = 0;
    if (head != nullptr) bufs[nb++] = asio::buffer(*head);
    bool done = false;
    while (*pos < *len && pieces < kMaxChunkPieces) {
      http::ChunkedDecoder::Step step = decoder.Feed(std::string_view(buf + *pos, *len - *pos));
      *pos += step.consumed;
      *read_bytes += step.consumed;
      if (step.error) co_return Relay::kBadFraming;
      if (!step.data.empty()) {
        if (reencode) {
          size_t sn = FormatChunkSize(step.data.size(), sizes[pieces]);
          bufs[nb++] = asio::buffer(sizes[pieces], sn);
          bufs[nb++] = asio::buffer(step.data.data(), step.data.size());
          bufs[nb++] = asio::buffer("\r\n", 2);
        } else {
          bufs[nb++] = asio::buffer(step.data.data(), step.data.size());
        }
        ++pieces;
      }
      if (step.done) {
        done = true;
        break;
      }
      if (step.consumed == 0 && step.data.empty()) break;
    }
    if (done && reencode) bufs[nb++] = asio::buffer("0\r\n\r\n", 5);
    if (nb > 0) {
      auto [ec, wn] = co_await asio::async_write(
          to, std::span<const asio::const_buffer>(bufs.data(), nb), kNoThrow);
      *written_bytes += wn;
      if (ec) co_return Relay::kWriteError;
      c.Touch();
      head = nullptr;
    }
    if (done) co_return Relay::kOk;
    if (*pos < *len) continue;  // more decoded pieces than one write takes
    *pos = *len = 0;
    auto [ec, rn] = co_await from.async_read_some(asio::buffer(buf, cap), kNoThrow);
    if (ec || rn == 0) co_return Relay::kReadError;
    c.Touch();
    *len = rn;
  }
}

awaitable<Relay> Worker::Impl::RelayUntilClose(Conn& c, RequestCtx& x, std::string* head,
                                               uint64_t* written_bytes) {
  for (;;) {
    size_t n = x.up_len - x.up_pos;
    if (n > 0 || head != nullptr) {
      std::array<asio::const_buffer, 2> bufs{
          head != nullptr ? asio::buffer(*head) : asio::const_buffer(),
          asio::buffer(x.up.get() + x.up_pos, n)};
      auto [ec, wn] = co_await asio::async_write(c.client, bufs, kNoThrow);
      *written_bytes += wn;
      if (ec) co_return Relay::kWriteError;
      c.Touch();
      head = nullptr;
    }
    x.up_pos = x.up_len = 0;
    auto [ec, rn] = co_await c.upstream.async_read_some(asio::buffer(x.up.get(), x.cap), kNoThrow);
    if (ec == asio::error::eof) co_return Relay::kOk;
    if (ec) co_return Relay::kReadError;
    c.Touch();
    x.up_len = rn;
  }
}

awaitable<void> Worker::Impl::Pump(Conn& c, tcp::socket& from, tcp::socket& to, char* buf) {
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf, buffer_bytes), kNoThrow);
    if (ec) {
      boost::system::error_code ignored;
      if (ec == asio::error::eof && to.is_open()) {
        // Half-close: the other direction may still have bytes to deliver.
        to.shutdown(tcp::socket::shutdown_send, ignored);
      } else {
        from.close(ignored);
        to.close(ignored);
      }
      co_return;
    }
    c.Touch();
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf, n), kNoThrow);
    if (wec) {
      boost::system::error_code ignored;
      from.close(ignored);
      to.close(ignored);
      co_return;
    }
    c.Touch();
  }
}

awaitable<void> Worker::Impl::Tunnel(Conn& c, RequestCtx& x, Exchange& e) {
  const http::ResponseHead& resp = x.resp;
  ForwardResponseOptions ro;
  ro.upgrade = true;
  x.out.clear();
  AppendForwardedResponseHead(resp, ro, &x.out);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(x.out),
                                         asio::buffer(x.up.get() + x.up_pos, x.up_len - x.up_pos)};
  auto [ec, n] = co_await asio::async_write(c.client, bufs, kNoThrow);
  e.bytes_out += n;
  e.response_started = true;
  e.client_close = true;
  if (ec) co_return;
  // The exchange is complete as a request; the tunnel is counted on its own.
  SlotRuntime* rt = e.slot->runtime.get();
  rt->tunnels.fetch_add(1, std::memory_order_relaxed);
  Finish(e);
  const InstanceEntry* inst = e.inst;
  e.slot = nullptr;
  e.inst = nullptr;
  (void)inst;
  c.tunnel_slot = rt;
  c.SetDeadline(config().timeouts.tunnel_idle, Phase::kTunnel);
  c.Arm();  // start polling the slot's drain state now, not at the previously armed expiry
  bool ok = true;
  if (x.in_pos < x.in_len) {
    auto [wec, wn] = co_await asio::async_write(
        c.upstream, asio::buffer(x.in.get() + x.in_pos, x.in_len - x.in_pos), kNoThrow);
    ok = !wec;
  }
  x.in_pos = x.in_len = 0;
  if (ok) {
    using namespace asio::experimental::awaitable_operators;
    co_await (Pump(c, c.client, c.upstream, x.in.get()) &&
              Pump(c, c.upstream, c.client, x.up.get()));
  }
  c.tunnel_slot = nullptr;
  rt->tunnels.fetch_sub(1, std::memory_order_relaxed);
  CloseSocket(c.upstream);
}

// ---------------------------------------------------------------------------------------------
// Worker

Worker::Worker(int index, DataPlaneShared& shared) : impl_(std::make_unique<Impl>(index, shared)) {}

Worker::~Worker() { Stop(); }

Result<tcp::endpoint> Worker::Listen(const tcp::endpoint& endpoint) {
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->ioc);
  boost::system::error_code ec;
  std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  acceptor->open(endpoint.protocol(), ec);
  if (ec) return IoError("listen " + where + ": " + ec.message());
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  int one = 1;
  if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return ErrnoError("listen " + where + ": SO_REUSEPORT", errno);
  }
  acceptor->bind(endpoint, ec);
  if (ec) return IoError("listen " + where + ": bind: " + ec.message());
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return IoError("listen " + where + ": " + ec.message());
  tcp::endpoint bound = acceptor->local_endpoint(ec);
  if (ec) return IoError("listen " + where + ": " + ec.message());
  // ShedWithSpare calls accept4() on it directly: it must never block.
  acceptor->native_non_blocking(true, ec);
  if (ec) return IoError("listen " + where + ": " + ec.message());
  impl_->acceptors.push_back(std::move(acceptor));
  return bound;
}

Status Worker::Start() {
  Impl& w = *impl_;
  if (w.started) return FailedPrecondition("worker already started");
  w.started = true;
  for (auto& a : w.acceptors) asio::co_spawn(w.ioc, w.AcceptLoop(*a), asio::detached);
  w.sweep_timer = std::make_unique<asio::steady_timer>(w.ioc);
  asio::co_spawn(w.ioc, w.SweepLoop(), asio::detached);
  std::promise<void> done;
  w.done = done.get_future();
  try {
    w.thread = std::thread([&w, done = std::move(done)]() mutable {
      w.ioc.run();
      done.set_value();
    });
  } catch (const std::system_error& e) {
    return Internal(std::string("cannot start a worker thread: ") + e.what());
  }
  return Status::Ok();
}

void Worker::Stop() {
  Impl& w = *impl_;
  if (w.stopped) return;
  w.stopped = true;
  if (!w.started) return;
  asio::post(w.ioc, [&w] { w.CloseAll(); });
  // Closing every socket ends every coroutine, so run() returns on its own; a coroutine stuck
  // in something we did not close must not hang Stop() forever.
  if (w.done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) w.ioc.stop();
  if (w.thread.joinable()) w.thread.join();
}

void FailRequestMemoryForTesting(int count) {
  g_fail_request_memory.store(count, std::memory_order_relaxed);
}

}  // namespace turnout::router
