// turnout-load: a bounded HTTP/1.1 load generator for the demo and the switch benchmark.
//
//   turnout-load --url http://127.0.0.1:8080/ [--connections 64] [--duration 10s]
//                [--requests N] [--rate R] [--by-header X-Version] [--json] [--progress]
//                [--threads N] [--timeout 5s]
//
// Keeps --connections keep-alive connections busy (one request at a time each) until the
// duration passes or N requests were sent, whichever comes first; it always stops by itself.
// Counts responses by class, connection resets, timeouts and other errors, latency percentiles
// and - with --by-header - responses per value of that response header; with --json also
// responses per status code ("statuses": {"200": n, "503": m}). A request failed when
// it got no 2xx answer (non-2xx, reset, timeout, connect or protocol error).
// SIGINT/SIGTERM stop it early: requests in flight finish and the result is printed as usual.
// Exit status: 0 when no request failed, 1 when any did, 2 for bad flags.
//
// With --rate R the requests are spread evenly at R per second in total and each latency is
// measured from the moment its request was due, so a stalled server shows up as latency
// (no coordinated omission).

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/flags.h"
#include "common/status.h"
#include "demo/util.h"
#include "http/parser.h"

namespace turnout::demo {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Nanos = std::chrono::nanoseconds;
using Steady = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view kUsage = R"(usage: turnout-load --url http://HOST:PORT/PATH [flags]
  --connections N     keep-alive connections.                       Default: 64
  --duration D        stop after D (e.g. 10s).        Default: 10s unless --requests is given
  --requests N        stop after N requests in total.               Default: no limit
  --rate R            send R requests per second in total.           Default: as fast as possible
  --by-header NAME    count responses per value of this response header (e.g. X-Version)
  --timeout D         a request without a full response after D is a timeout. Default: 5s
  --threads N         I/O threads.                                   Default: 1
  --progress          print a line every second on stderr
  --json              print the result as JSON instead of text
SIGINT/SIGTERM stop the run early; the result is printed as usual.
Exit status: 0 when no request failed, 1 otherwise, 2 for bad flags.
)";

struct Options {
  HttpUrl url;
  int connections = 64;
  Nanos duration{0};
  uint64_t requests = 0;
  double rate = 0;
  std::string by_header;
  Nanos timeout = std::chrono::seconds(5);
  int threads = 1;
  bool progress = false;
  bool json = false;
};

Result<Options> ParseFlags(int argc, char** argv) {
  Options o;
  bool have_url = false;
  bool have_duration = false;
  static const std::vector<FlagSpec> kFlags = {
      {"json", "", ""},
      {"progress", "", ""},
      {"url", "URL", ""},
      {"connections", "N", "", false, 'c'},
      {"duration", "DURATION", "", false, 'd'},
      {"requests", "N", "", false, 'n'},
      {"rate", "N", ""},
      {"by-header", "NAME", ""},
      {"timeout", "DURATION", ""},
      {"threads", "N", ""},
  };
  TURNOUT_ASSIGN_OR_RETURN(Args args, Args::ParseFlagsOnly(argc, argv, kFlags));
  if (args.help()) return Status(StatusCode::kAborted, "help");
  for (const std::string& name : args.Names()) {
    const std::string flag = "--" + name;
    const std::string value = args.Get(name);
    if (flag == "--json") {
      o.json = true;
    } else if (flag == "--progress") {
      o.progress = true;
    } else if (flag == "--url") {
      TURNOUT_ASSIGN_OR_RETURN(o.url, ParseHttpUrl(value));
      have_url = true;
    } else if (flag == "--connections") {
      TURNOUT_ASSIGN_OR_RETURN(uint64_t n, ParsePositive(flag, value, 100000));
      o.connections = static_cast<int>(n);
    } else if (flag == "--duration") {
      Result<Nanos> d = ParseDuration(value);
      if (!d.ok()) return d.status().WithContext(flag);
      if (d->count() <= 0) return InvalidArgument("--duration must be positive");
      o.duration = *d;
      have_duration = true;
    } else if (flag == "--requests") {
      TURNOUT_ASSIGN_OR_RETURN(o.requests, ParsePositive(flag, value, uint64_t{1} << 40));
    } else if (flag == "--rate") {
      TURNOUT_ASSIGN_OR_RETURN(uint64_t r, ParsePositive(flag, value, 10'000'000));
      o.rate = static_cast<double>(r);
    } else if (flag == "--by-header") {
      if (value.empty()) return InvalidArgument("--by-header needs a header name");
      o.by_header = value;
    } else if (flag == "--timeout") {
      Result<Nanos> d = ParseDuration(value);
      if (!d.ok()) return d.status().WithContext(flag);
      if (d->count() <= 0) return InvalidArgument("--timeout must be positive");
      o.timeout = *d;
    } else if (flag == "--threads") {
      TURNOUT_ASSIGN_OR_RETURN(uint64_t n, ParsePositive(flag, value, 256));
      o.threads = static_cast<int>(n);
    }
  }
  if (!have_url) return InvalidArgument("--url is required");
  if (!have_duration && o.requests == 0) o.duration = std::chrono::seconds(10);
  o.threads = std::min(o.threads, o.connections);
  return o;
}

enum Outcome { k1xx, k2xx, k3xx, k4xx, k5xx, kReset, kTimeout, kError, kOutcomes };

// Written by one worker thread, read by the main thread for progress and the summary.
struct WorkerStats {
  std::atomic<uint64_t> outcomes[kOutcomes] = {};
  std::atomic<uint64_t> bytes_in{0};
  std::mutex mu;  // guards by_value (taken once per response, uncontended)
  std::map<std::string, uint64_t, std::less<>> by_value;
  std::map<int, uint64_t> by_status;  // guarded by mu
  LatencyHistogram latency;           // touched only by the worker until it has finished
};

// Shared by all workers: the bounds and the request schedule.
struct Plan {
  const Options* options = nullptr;
  std::string request;
  Steady::time_point start;
  std::optional<Steady::time_point> deadline;
  std::atomic<uint64_t> tickets{0};
  std::atomic<bool> stop{false};
};

struct ConnState {
  explicit ConnState(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  bool active = false;  // a request is under way; `deadline` applies
  bool timed_out = false;
  Steady::time_point deadline;
};

class Worker {
 public:
  Worker(Plan& plan, int connections, tcp::endpoint endpoint)
      : plan_(plan), connections_(connections), endpoint_(endpoint), io_(1), ticker_(io_) {}

  WorkerStats& stats() { return stats_; }

  void Run() {
    for (int i = 0; i < connections_; ++i) {
      conns_.push_back(std::make_unique<ConnState>(io_));
      asio::co_spawn(io_, RunConnection(*conns_.back()), [this](std::exception_ptr) {
        if (--running_ == 0) ticker_.cancel();
      });
    }
    running_ = connections_;
    Tick();
    io_.run();
  }

 private:
  // Every 20 ms: enforce per-request timeouts and the overall deadline.
  void Tick() {
    ticker_.expires_after(std::chrono::milliseconds(20));
    ticker_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || running_ == 0) return;
      Steady::time_point now = Steady::now();
      if (plan_.deadline && now >= *plan_.deadline) plan_.stop.store(true);
      for (auto& c : conns_) {
        if (c->active && now >= c->deadline && !c->timed_out) {
          c->timed_out = true;
          boost::system::error_code ignored;
          c->socket.close(ignored);
        }
      }
      Tick();
    });
  }

  // Claims the next request; nullopt when the run is over. With --rate, also returns when the
  // request is due.
  std::optional<Steady::time_point> Claim() {
    if (plan_.stop.load(std::memory_order_relaxed)) return std::nullopt;
    uint64_t ticket = plan_.tickets.fetch_add(1, std::memory_order_relaxed);
    const Options& o = *plan_.options;
    if (o.requests != 0 && ticket >= o.requests) return std::nullopt;
    Steady::time_point due = Steady::now();
    if (o.rate > 0) {
      due = plan_.start + std::chrono::duration_cast<Steady::duration>(
                              std::chrono::duration<double>(static_cast<double>(ticket) / o.rate));
    }
    if (plan_.deadline && due >= *plan_.deadline) {
      plan_.stop.store(true);
      return std::nullopt;
    }
    return due;
  }

  void Count(Outcome outcome) { stats_.outcomes[outcome].fetch_add(1, std::memory_order_relaxed); }

  Outcome Classify(const ConnState& c, const boost::system::error_code& ec) {
    if (c.timed_out) return kTimeout;
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::error::eof || ec == asio::error::connection_aborted) {
      return kReset;
    }
    return kError;
  }

  asio::awaitable<void> RunConnection(ConnState& c) {
    asio::steady_timer timer(io_);
    std::string buffer;
    bool connected = false;
    const Options& o = *plan_.options;
    while (true) {
      std::optional<Steady::time_point> due = Claim();
      if (!due) break;
      if (*due > Steady::now()) {
        timer.expires_at(*due);
        co_await timer.async_wait(kUseTuple);
      }
      Steady::time_point t0 = o.rate > 0 ? *due : Steady::now();
      c.deadline = Steady::now() + o.timeout;
      c.timed_out = false;
      c.active = true;
      boost::system::error_code ec;
      if (!connected) {
        buffer.clear();
        if (!c.socket.is_open()) c.socket.open(endpoint_.protocol(), ec);
        if (!ec) std::tie(ec) = co_await c.socket.async_connect(endpoint_, kUseTuple);
        if (!ec) c.socket.set_option(tcp::no_delay(true), ec);
        if (ec) {
          c.active = false;
          // A refused connect is counted as a failed request; pause briefly so that a
          // missing server does not turn into a busy loop.
          Count(c.timed_out ? kTimeout : kError);
          CloseSocket(c);
          timer.expires_after(std::chrono::milliseconds(10));
          co_await timer.async_wait(kUseTuple);
          continue;
        }
        connected = true;
      }
      Result<bool> keep = co_await Exchange(c, buffer, &ec);
      c.active = false;
      if (!keep.ok()) {
        Count(ec ? Classify(c, ec) : (c.timed_out ? kTimeout : kError));
        CloseSocket(c);
        connected = false;
        continue;
      }
      stats_.latency.Record(Steady::now() - t0);
      if (!*keep) {
        CloseSocket(c);
        connected = false;
      }
    }
    CloseSocket(c);
  }

  void CloseSocket(ConnState& c) {
    boost::system::error_code ignored;
    c.socket.close(ignored);
  }

  // Sends one request and reads its response. Ok(keep_alive) or an error (with *ec set when
  // the socket failed).
  asio::awaitable<Result<bool>> Exchange(ConnState& c, std::string& buffer,
                                         boost::system::error_code* ec) {
    auto [wec, written] =
        co_await asio::async_write(c.socket, asio::buffer(plan_.request), kUseTuple);
    if (wec) {
      *ec = wec;
      co_return IoError("write");
    }
    auto read_more = [&]() -> asio::awaitable<bool> {
      size_t old = buffer.size();
      buffer.resize(old + 16384);
      auto [rec, n] =
          co_await c.socket.async_read_some(asio::buffer(buffer.data() + old, 16384), kUseTuple);
      buffer.resize(old + n);
      if (rec) *ec = rec;
      stats_.bytes_in.fetch_add(n, std::memory_order_relaxed);
      co_return !rec;
    };
    http::ParseLimits limits;
    http::ResponseHead head;
    while (true) {
      http::ParseResult parsed;
      while (true) {
        parsed = http::ParseResponseHead(buffer, "GET", limits, &head);
        if (parsed.state != http::ParseState::kIncomplete) break;
        if (!co_await read_more()) co_return IoError("read head");
      }
      if (parsed.state == http::ParseState::kError) {
        co_return InvalidArgument(parsed.error_reason);
      }
      if (head.status >= 100 && head.status < 200 && head.status != 101) {
        buffer.erase(0, parsed.consumed);  // interim response; the real one follows
        continue;
      }
      int status = head.status;
      bool keep_alive = head.keep_alive;
      {
        std::lock_guard<std::mutex> lock(stats_.mu);
        ++stats_.by_status[status];
      }
      if (!plan_.options->by_header.empty()) {
        const http::Header* h = head.headers.Find(plan_.options->by_header);
        std::string_view value = h != nullptr ? h->value : std::string_view("(none)");
        std::lock_guard<std::mutex> lock(stats_.mu);
        auto it = stats_.by_value.find(value);
        if (it == stats_.by_value.end()) {
          stats_.by_value.emplace(std::string(value), 1);
        } else {
          ++it->second;
        }
      }
      http::BodyKind body = head.body;
      uint64_t length = head.content_length;
      buffer.erase(0, parsed.consumed);
      if (body == http::BodyKind::kContentLength) {
        while (buffer.size() < length) {
          length -= buffer.size();
          buffer.clear();
          if (!co_await read_more()) co_return IoError("read body");
        }
        buffer.erase(0, length);
      } else if (body == http::BodyKind::kChunked) {
        http::ChunkedDecoder decoder;
        while (!decoder.done()) {
          while (!buffer.empty() && !decoder.done()) {
            http::ChunkedDecoder::Step step = decoder.Feed(buffer);
            buffer.erase(0, step.consumed);
            if (step.error) co_return InvalidArgument(step.error_reason);
            if (step.consumed == 0) break;
          }
          if (decoder.done()) break;
          if (!co_await read_more()) co_return IoError("read chunked body");
        }
      } else if (body == http::BodyKind::kUntilClose) {
        while (co_await read_more()) buffer.clear();
        if (*ec != asio::error::eof) co_return IoError("read body until close");
        *ec = {};
        keep_alive = false;
        buffer.clear();
      }
      Count(static_cast<Outcome>(std::clamp(status / 100, 1, 5) - 1));
      co_return keep_alive;
    }
  }

  Plan& plan_;
  int connections_;
  tcp::endpoint endpoint_;
  asio::io_context io_;
  asio::steady_timer ticker_;
  std::vector<std::unique_ptr<ConnState>> conns_;
  int running_ = 0;
  WorkerStats stats_;
};

struct Totals {
  uint64_t outcomes[kOutcomes] = {};
  uint64_t bytes_in = 0;
  std::map<std::string, uint64_t, std::less<>> by_value;
  std::map<int, uint64_t> by_status;
  uint64_t failed() const {
    return outcomes[k1xx] + outcomes[k3xx] + outcomes[k4xx] + outcomes[k5xx] + outcomes[kReset] +
           outcomes[kTimeout] + outcomes[kError];
  }
  uint64_t total() const { return failed() + outcomes[k2xx]; }
};

Totals Sum(std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (auto& w : workers) {
    WorkerStats& s = w->stats();
    for (int i = 0; i < kOutcomes; ++i) t.outcomes[i] += s.outcomes[i].load();
    t.bytes_in += s.bytes_in.load();
    std::lock_guard<std::mutex> lock(s.mu);
    for (const auto& [value, n] : s.by_value) t.by_value[value] += n;
    for (const auto& [status, n] : s.by_status) t.by_status[status] += n;
  }
  return t;
}

std::string ProgressLine(double seconds, const Totals& t) {
  char head[96];
  std::snprintf(head, sizeof head, "t=%.0fs 2xx=%llu fail=%llu", seconds,
                static_cast<unsigned long long>(t.outcomes[k2xx]),
                static_cast<unsigned long long>(t.failed()));
  std::string line = head;
  for (const auto& [value, n] : t.by_value) line += " " + value + "=" + std::to_string(n);
  return line;
}

int Main(int argc, char** argv) {
  Result<Options> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) return FlagErrorExit(parsed.status(), "turnout-load", kUsage);
  const Options& o = *parsed;
  ::signal(SIGPIPE, SIG_IGN);

  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(o.url.endpoint.host, ec);
  if (ec) {
    // A name: resolve it once, up front.
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(o.url.endpoint.host, std::to_string(o.url.endpoint.port), ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "turnout-load: cannot resolve '%s': %s\n", o.url.endpoint.host.c_str(),
                   ec.message().c_str());
      return 2;
    }
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, o.url.endpoint.port);

  Plan plan;
  plan.options = &o;
  plan.request = "GET " + o.url.target + " HTTP/1.1\r\nHost: " + o.url.host_header +
                 "\r\nUser-Agent: turnout-load\r\n\r\n";
  plan.start = Steady::now();
  if (o.duration.count() > 0) plan.deadline = plan.start + o.duration;

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.threads; ++i) {
    int n = o.connections / o.threads + (i < o.connections % o.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(plan, n, endpoint));
  }
  // SIGINT/SIGTERM end the run early but cleanly: requests in flight finish and the result is
  // printed as usual. The signals are blocked in every thread and taken by one waiter thread;
  // SIGUSR1 tells that waiter the run is over.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::thread signal_waiter([&] {
    int signo = 0;
    if (sigwait(&stop_signals, &signo) == 0 && signo != SIGUSR1) {
      plan.stop.store(true);
      if (o.progress) std::fprintf(stderr, "turnout-load: stopping (signal %d)\n", signo);
    }
  });

  std::mutex done_mu;
  std::condition_variable done_cv;
  int finished = 0;
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&, worker = w.get()] {
      worker->Run();
      std::lock_guard<std::mutex> lock(done_mu);
      ++finished;
      done_cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(done_mu);
    Steady::time_point next = plan.start + std::chrono::seconds(1);
    while (finished < o.threads) {
      if (done_cv.wait_until(lock, next) == std::cv_status::timeout) {
        if (o.progress) {
          lock.unlock();
          double t = std::chrono::duration<double>(Steady::now() - plan.start).count();
          std::fprintf(stderr, "%s\n", ProgressLine(t, Sum(workers)).c_str());
          std::fflush(stderr);
          lock.lock();
        }
        next += std::chrono::seconds(1);
      }
    }
  }
  for (auto& t : threads) t.join();
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();
  double elapsed = std::chrono::duration<double>(Steady::now() - plan.start).count();

  Totals t = Sum(workers);
  LatencyHistogram latency;
  for (auto& w : workers) latency.Merge(w->stats().latency);
  auto ms = [&](double percent) { return latency.PercentileMicros(percent) / 1000.0; };
  double rps = elapsed > 0 ? static_cast<double>(t.total()) / elapsed : 0;

  if (o.json) {
    nlohmann::json j = {
        {"url", "http://" + o.url.host_header + o.url.target},
        {"connections", o.connections},
        {"threads", o.threads},
        {"elapsed_seconds", elapsed},
        {"requests", t.total()},
        {"requests_per_second", rps},
        {"responses",
         {{"1xx", t.outcomes[k1xx]},
          {"2xx", t.outcomes[k2xx]},
          {"3xx", t.outcomes[k3xx]},
          {"4xx", t.outcomes[k4xx]},
          {"5xx", t.outcomes[k5xx]}}},
        {"resets", t.outcomes[kReset]},
        {"timeouts", t.outcomes[kTimeout]},
        {"errors", t.outcomes[kError]},
        {"failed", t.failed()},
        {"bytes_in", t.bytes_in},
        {"latency_ms",
         {{"p50", ms(50)},
          {"p90", ms(90)},
          {"p99", ms(99)},
          {"p999", ms(99.9)},
          {"max", latency.MaxMicros() / 1000.0},
          {"mean", latency.MeanMicros() / 1000.0}}},
    };
    nlohmann::json statuses = nlohmann::json::object();
    for (const auto& [status, n] : t.by_status) statuses[std::to_string(status)] = n;
    j["statuses"] = statuses;
    if (!o.by_header.empty()) {
      nlohmann::json values = nlohmann::json::object();
      for (const auto& [value, n] : t.by_value) values[value] = n;
      j["by_header"] = {{"name", o.by_header}, {"values", values}};
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("turnout-load: http://%s%s, %d connections, %.1f s\n", o.url.host_header.c_str(),
                o.url.target.c_str(), o.connections, elapsed);
    std::printf("  requests   %llu (%.0f/s)\n", static_cast<unsigned long long>(t.total()), rps);
    std::printf("  responses  2xx=%llu 3xx=%llu 4xx=%llu 5xx=%llu\n",
                static_cast<unsigned long long>(t.outcomes[k2xx]),
                static_cast<unsigned long long>(t.outcomes[k3xx]),
                static_cast<unsigned long long>(t.outcomes[k4xx]),
                static_cast<unsigned long long>(t.outcomes[k5xx]));
    std::printf("  errors     resets=%llu timeouts=%llu other=%llu\n",
                static_cast<unsigned long long>(t.outcomes[kReset]),
                static_cast<unsigned long long>(t.outcomes[kTimeout]),
                static_cast<unsigned long long>(t.outcomes[kError]));
    std::printf("  latency    p50=%.2fms p90=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms\n", ms(50),
                ms(90), ms(99), ms(99.9), latency.MaxMicros() / 1000.0);
    if (!o.by_header.empty()) {
      std::printf("  %s", o.by_header.c_str());
      for (const auto& [value, n] : t.by_value) {
        std::printf(" %s=%llu", value.c_str(), static_cast<unsigned long long>(n));
      }
      std::printf("\n");
    }
    std::printf("%llu failed requests\n", static_cast<unsigned long long>(t.failed()));
  }
  std::fflush(stdout);
  return t.failed() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace turnout::demo

int main(int argc, char** argv) { return turnout::demo::Main(argc, argv); }
