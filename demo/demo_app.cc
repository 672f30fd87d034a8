// turnout-demo-app: a small HTTP/1.1 service that stands in for "your application" in the demo,
// the benchmarks and the integration tests. It reports which version answered, can be told to be
// unready, slow, failing or to crash - at start (flags) or while running (POST /admin/fault) -
// so that rollouts and rollbacks can be exercised against real misbehaviour.
//
//   turnout-demo-app --listen 127.0.0.1:0 --version v1 [--slot blue] [--fail-ready]
//                    [--error-rate 0.1] [--latency 50ms [--latency-jitter 10ms]]
//                    [--crash-after 5s] [--ready-after 2s] [--drain-timeout 10s]
//
// Faults by version name: the build suffix of --version (after '+') lists faults separated by
// '_', so that a deployment tool deploys a "bad version" by its name alone:
//   fail-ready      like --fail-ready          errors-10   like --error-rate 0.10 (percent)
//   slow-2s         like --latency 2s          crash-5s    like --crash-after 5s
// e.g. --version v4+errors-10_slow-200ms. Other items (build metadata) are ignored; a flag given
// explicitly wins over the same fault from the version.
//
// The first line on stdout is "listening on HOST:PORT" (flushed), so that a parent that passed
// port 0 learns the port. Endpoints:
//   /          200 {"version","slot","instance"} + X-Version (a share is 500 with --error-rate;
//              delayed by --latency). Any method; a request body is read and discarded.
//   /ready     200, or 503 while --fail-ready, before --ready-after, or while shutting down
//   /live      200 while the process runs, 503 while the fault fail-live is set
//   /health    like /ready, with a JSON body saying why (and ready_probes: GET /ready count)
//   /version   {"version","slot","instance"} (never delayed, never failed)
//   /admin/fault  GET: the current faults; POST ?error-rate=&latency=&latency-jitter=&fail-ready=
//              &fail-live=
//              changes them (absent keys keep their value)
// SIGTERM/SIGINT: stop accepting, close idle keep-alive connections, let requests in flight
// finish (answered with Connection: close), exit 0. After --drain-timeout it exits 0 anyway.
// --crash-after: the process kills itself with SIGKILL (an abnormal exit, no cleanup).
//
// Single-threaded on purpose: all state lives on one io_context thread, so nothing is locked.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/flags.h"
#include "common/status.h"
#include "demo/util.h"
#include "http/parser.h"

namespace turnout::demo {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Nanos = std::chrono::nanoseconds;
constexpr auto kUseTuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view kUsage = R"(usage: turnout-demo-app [flags]
  --listen HOST:PORT      where to listen (port 0: any free port).  Default: 127.0.0.1:0
  --version V             reported in X-Version and the body.      Default: v1
  --slot NAME             reported in the body (also env TURNOUT_SLOT). Default: none
  --fail-ready            GET /ready answers 503
  --error-rate R          share of requests to / answered 500 (0..1). Default: 0
  --latency D             delay before answering / (e.g. 50ms).     Default: 0
  --latency-jitter D      the delay varies uniformly by +-D.        Default: 0
  --ready-after D         /ready answers 503 until D after start.   Default: 0
  --crash-after D         the process kills itself (SIGKILL) after D. Default: never
  --drain-timeout D       on SIGTERM, exit after at most D.         Default: 10s
Faults by version name: the part of --version after '+' lists faults joined by '_':
  fail-ready, errors-PERCENT, slow-DURATION, crash-DURATION
  e.g. --version v4+errors-10_slow-200ms (an explicit flag wins over the same fault).
Prints "listening on HOST:PORT" as the first line of stdout.
)";

struct Options {
  std::string listen = "127.0.0.1:0";
  std::string version = "v1";
  std::string slot;
  bool fail_ready = false;
  double error_rate = 0;
  Nanos latency{0};
  Nanos jitter{0};
  Nanos ready_after{0};
  Nanos crash_after{0};
  Nanos drain_timeout = std::chrono::seconds(10);
};

// Which fault flags were given explicitly (they win over faults named by the version).
struct GivenFlags {
  bool error_rate = false;
  bool latency = false;
  bool crash_after = false;
};

// Applies the faults named by the build suffix of the version ("v4+errors-10_slow-200ms").
Status ApplyVersionFaults(Options& o, const GivenFlags& given) {
  const size_t plus = o.version.find('+');
  if (plus == std::string::npos) return Status::Ok();
  std::string_view items = std::string_view(o.version).substr(plus + 1);
  while (!items.empty()) {
    const std::string_view item = items.substr(0, items.find('_'));
    items.remove_prefix(std::min(items.size(), item.size() + 1));
    auto value_of = [&](std::string_view prefix) -> std::optional<std::string_view> {
      if (!item.starts_with(prefix)) return std::nullopt;
      return item.substr(prefix.size());
    };
    const std::string context = "--version fault '" + std::string(item) + "'";
    if (item == "fail-ready") {
      o.fail_ready = true;
    } else if (auto percent = value_of("errors-")) {
      char* end = nullptr;
      const std::string text(*percent);
      const double p = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !(p >= 0 && p <= 100)) {
        return InvalidArgument(context + ": expected a percentage 0..100");
      }
      if (!given.error_rate) o.error_rate = p / 100;
    } else if (auto slow = value_of("slow-")) {
      Result<Nanos> d = ParseDuration(*slow);
      if (!d.ok()) return d.status().WithContext(context);
      if (!given.latency) o.latency = *d;
    } else if (auto crash = value_of("crash-")) {
      Result<Nanos> d = ParseDuration(*crash);
      if (!d.ok()) return d.status().WithContext(context);
      if (!given.crash_after) o.crash_after = *d;
    }
    // Anything else is build metadata ("+build.7"), not a fault.
  }
  return Status::Ok();
}

Result<Options> ParseFlags(int argc, char** argv) {
  Options o;
  GivenFlags given;
  if (const char* slot = std::getenv("TURNOUT_SLOT")) o.slot = slot;
  static const std::vector<FlagSpec> kFlags = {
      {"fail-ready", "", ""},
      {"listen", "HOST:PORT", ""},
      {"version", "V", ""},
      {"slot", "NAME", ""},
      {"error-rate", "RATE", ""},
      {"latency", "DURATION", ""},
      {"latency-jitter", "DURATION", ""},
      {"ready-after", "DURATION", ""},
      {"crash-after", "DURATION", ""},
      {"drain-timeout", "DURATION", ""},
  };
  TURNOUT_ASSIGN_OR_RETURN(Args args, Args::ParseFlagsOnly(argc, argv, kFlags));
  if (args.help()) return Status(StatusCode::kAborted, "help");
  for (const std::string& name : args.Names()) {
    const std::string flag = "--" + name;
    const std::string value = args.Get(name);
    auto duration = [&](Nanos* out) -> Status {
      TURNOUT_ASSIGN_OR_RETURN(*out, ParseDuration(value));
      return Status::Ok();
    };
    Status st;
    if (flag == "--fail-ready") {
      o.fail_ready = true;
    } else if (flag == "--listen") {
      TURNOUT_RETURN_IF_ERROR(ParseHostPort(value).status());
      o.listen = value;
    } else if (flag == "--version") {
      o.version = value;
    } else if (flag == "--slot") {
      o.slot = value;
    } else if (flag == "--error-rate") {
      TURNOUT_ASSIGN_OR_RETURN(o.error_rate, ParseRate(value));
      given.error_rate = true;
    } else if (flag == "--latency") {
      st = duration(&o.latency);
      given.latency = true;
    } else if (flag == "--latency-jitter") {
      st = duration(&o.jitter);
    } else if (flag == "--ready-after") {
      st = duration(&o.ready_after);
    } else if (flag == "--crash-after") {
      st = duration(&o.crash_after);
      given.crash_after = true;
    } else if (flag == "--drain-timeout") {
      st = duration(&o.drain_timeout);
    }
    if (!st.ok()) return st.WithContext(flag);
  }
  if (o.version.empty()) return InvalidArgument("--version must not be empty");
  TURNOUT_RETURN_IF_ERROR(ApplyVersionFaults(o, given));
  return o;
}

// What POST /admin/fault can change while the app runs.
struct Faults {
  double error_rate = 0;
  Nanos latency{0};
  Nanos jitter{0};
  bool fail_ready = false;
  bool fail_live = false;  // GET /live answers 503 (a hung process that still serves /ready)
};

std::string FormatMillis(Nanos d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gms", static_cast<double>(d.count()) / 1e6);
  return buf;
}

struct Response {
  int status = 200;
  std::string_view content_type = "application/json";
  std::string body;
};

class App;

// One client connection; lives as long as its coroutine.
struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  bool busy = false;  // a request is being read or answered
};

class App {
 public:
  App(asio::io_context& io, Options options)
      : io_(io),
        options_(std::move(options)),
        acceptor_(io),
        signals_(io, SIGTERM, SIGINT),
        crash_timer_(io),
        drain_timer_(io),
        started_(clock_.Now()),
        rng_(std::random_device{}()) {
    faults_.error_rate = options_.error_rate;
    faults_.latency = options_.latency;
    faults_.jitter = options_.jitter;
    faults_.fail_ready = options_.fail_ready;
    nlohmann::json id = {
        {"version", options_.version},
        {"slot", options_.slot.empty() ? nlohmann::json() : nlohmann::json(options_.slot)},
        {"instance", static_cast<int64_t>(::getpid())}};
    identity_body_ = id.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    extra_headers_ = "X-Version: " + Sanitize(options_.version) + "\r\n";
    if (!options_.slot.empty()) extra_headers_ += "X-Slot: " + Sanitize(options_.slot) + "\r\n";
  }

  Status Listen() {
    TURNOUT_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options_.listen));
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(hp.host, ec);
    if (ec) return InvalidArgument("--listen needs an IP address, got '" + hp.host + "'");
    tcp::endpoint endpoint(address, hp.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return IoError("cannot listen on " + options_.listen + ": " + ec.message());
    tcp::endpoint bound = acceptor_.local_endpoint(ec);
    std::string host = bound.address().to_string();
    if (bound.address().is_v6()) host = "[" + host + "]";
    std::printf("listening on %s:%u\n", host.c_str(), static_cast<unsigned>(bound.port()));
    std::fflush(stdout);
    return Status::Ok();
  }

  void Start() {
    asio::co_spawn(io_, AcceptLoop(), asio::detached);
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (!ec) BeginShutdown(signo);
    });
    if (options_.crash_after.count() > 0) {
      crash_timer_.expires_after(options_.crash_after);
      crash_timer_.async_wait([](const boost::system::error_code& ec) {
        if (ec) return;
        std::fprintf(stderr, "turnout-demo-app: crashing now (--crash-after)\n");
        std::fflush(stderr);
        ::kill(::getpid(), SIGKILL);
      });
    }
  }

 private:
  static std::string Sanitize(std::string_view value) {
    std::string out;
    for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
    return out;
  }

  void BeginShutdown(int signo) {
    if (draining_) return;
    draining_ = true;
    std::fprintf(stderr, "turnout-demo-app: signal %d, draining %zu connection(s)\n", signo,
                 connections_.size());
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    crash_timer_.cancel();
    for (Connection* c : connections_) {
      if (!c->busy) c->socket.close(ignored);
    }
    drain_timer_.expires_after(options_.drain_timeout);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::fprintf(stderr, "turnout-demo-app: drain timeout, %zu connection(s) left\n",
                   connections_.size());
      io_.stop();
    });
    MaybeFinishDrain();
  }

  void MaybeFinishDrain() {
    if (!draining_ || !connections_.empty()) return;
    // Nothing left to wait for: let io_context::run() return.
    drain_timer_.cancel();
    signals_.cancel();
  }

  bool Ready() const {
    if (draining_ || faults_.fail_ready) return false;
    return clock_.Now() - started_ >= options_.ready_after;
  }

  asio::awaitable<void> AcceptLoop() {
    while (!draining_) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || draining_) co_return;
        // EMFILE and friends: keep serving the connections we have.
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(io_, Serve(std::make_shared<Connection>(std::move(socket))), asio::detached);
    }
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> conn) {
    connections_.insert(conn.get());
    co_await ServeRequests(*conn);
    boost::system::error_code ignored;
    conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
    conn->socket.close(ignored);
    connections_.erase(conn.get());
    MaybeFinishDrain();
  }

  // Reads up to `n` more bytes into `buffer`; false on EOF or error.
  static asio::awaitable<bool> ReadMore(Connection& conn, std::string& buffer) {
    size_t old_size = buffer.size();
    buffer.resize(old_size + 16 * 1024);
    auto [ec, n] = co_await conn.socket.async_read_some(
        asio::buffer(buffer.data() + old_size, 16 * 1024), kUseTuple);
    buffer.resize(old_size + n);
    co_return !ec && n > 0;
  }

  asio::awaitable<void> ServeRequests(Connection& conn) {
    std::string buffer;
    http::ParseLimits limits;
    while (true) {
      http::RequestHead head;
      http::ParseResult parsed;
      while (true) {
        if (!buffer.empty()) {
          conn.busy = true;
          parsed = http::ParseRequestHead(buffer, limits, &head);
          if (parsed.state != http::ParseState::kIncomplete) break;
        }
        if (draining_ && buffer.empty()) co_return;
        if (!co_await ReadMore(conn, buffer)) co_return;
      }
      if (parsed.state == http::ParseState::kError) {
        Response r{parsed.error_status, "application/json",
                   nlohmann::json({{"error", parsed.error_reason}}).dump() + "\n"};
        co_await Write(conn, r, /*head_only=*/false, /*keep_alive=*/false, head.version_minor);
        co_return;
      }
      // Copy what we need: the head's views die when the buffer moves on.
      std::string method(head.method);
      std::string target(head.target);
      bool keep_alive = head.keep_alive;
      int version_minor = head.version_minor;
      http::BodyKind body = head.body;
      uint64_t content_length = head.content_length;
      if (head.expect_continue && body != http::BodyKind::kNone) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [ec, n] = co_await asio::async_write(conn.socket, asio::buffer(kContinue), kUseTuple);
        if (ec) co_return;
      }
      buffer.erase(0, parsed.consumed);
      if (!co_await DiscardBody(conn, buffer, body, content_length)) co_return;

      Response response = co_await Handle(method, target);
      bool close = !keep_alive || draining_;
      if (!co_await Write(conn, response, method == "HEAD", !close, version_minor)) co_return;
      if (close) co_return;
      conn.busy = !buffer.empty();
    }
  }

  // Reads and drops the request body; false when the connection broke or the body was bad.
  static asio::awaitable<bool> DiscardBody(Connection& conn, std::string& buffer,
                                           http::BodyKind kind, uint64_t length) {
    if (kind == http::BodyKind::kContentLength) {
      while (true) {
        uint64_t take = std::min<uint64_t>(length, buffer.size());
        buffer.erase(0, take);
        length -= take;
        if (length == 0) co_return true;
        if (!co_await ReadMore(conn, buffer)) co_return false;
      }
    }
    if (kind == http::BodyKind::kChunked) {
      http::ChunkedDecoder decoder;
      while (true) {
        while (!buffer.empty()) {
          http::ChunkedDecoder::Step step = decoder.Feed(buffer);
          buffer.erase(0, step.consumed);
          if (step.error) co_return false;
          if (step.done) co_return true;
          if (step.consumed == 0) break;
        }
        if (!co_await ReadMore(conn, buffer)) co_return false;
      }
    }
    co_return true;
  }

  asio::awaitable<Response> Handle(std::string_view method, std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view query =
        path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
    ++in_flight_;
    Response response = co_await Route(method, path, query);
    --in_flight_;
    co_return response;
  }

  asio::awaitable<Response> Route(std::string_view method, std::string_view path,
                                  std::string_view query) {
    if (path == "/") {
      Nanos delay = faults_.latency;
      if (faults_.jitter.count() > 0) {
        std::uniform_int_distribution<int64_t> d(-faults_.jitter.count(), faults_.jitter.count());
        delay += Nanos(d(rng_));
      }
      if (delay.count() > 0) {
        asio::steady_timer timer(io_, delay);
        co_await timer.async_wait(kUseTuple);
      }
      if (faults_.error_rate > 0 &&
          std::uniform_real_distribution<double>(0, 1)(rng_) < faults_.error_rate) {
        co_return Response{500, "application/json",
                           "{\"error\":\"injected failure (--error-rate)\"}\n"};
      }
      co_return Response{200, "application/json", identity_body_};
    }
    if (path == "/version") co_return Response{200, "application/json", identity_body_};
    if (path == "/live") {
      co_return faults_.fail_live ? Response{503, "text/plain", "not live (fail-live)\n"}
                                  : Response{200, "text/plain", "live\n"};
    }
    if (path == "/ready") {
      ++ready_probes_;
      co_return Ready() ? Response{200, "text/plain", "ready\n"}
                        : Response{503, "text/plain", "not ready\n"};
    }
    if (path == "/health") {
      std::string why = draining_            ? "shutting down"
                        : faults_.fail_ready ? "fail-ready is set"
                        : !Ready()           ? "starting (--ready-after)"
                                             : "ok";
      // in_flight (requests being answered besides this one) lets tests see that a slow
      // request has arrived before they act.
      nlohmann::json j = {{"ready", Ready()},
                          {"live", true},
                          {"reason", why},
                          {"version", options_.version},
                          {"in_flight", in_flight_ - 1},
                          {"connections", connections_.size()},
                          {"ready_probes", ready_probes_}};
      co_return Response{Ready() ? 200 : 503, "application/json",
                         j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
    }
    if (path == "/admin/fault") {
      if (method == "POST") {
        Status st = ApplyFaults(query);
        if (!st.ok()) {
          co_return Response{
              400, "application/json",
              nlohmann::json({{"error", st.message()}})
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                  "\n"};
        }
      } else if (method != "GET" && method != "HEAD") {
        co_return Response{405, "application/json",
                           "{\"error\":\"use GET to read faults, POST to change them\"}\n"};
      }
      nlohmann::json j = {{"error_rate", faults_.error_rate},
                          {"latency", FormatMillis(faults_.latency)},
                          {"latency_jitter", FormatMillis(faults_.jitter)},
                          {"fail_ready", faults_.fail_ready},
                          {"fail_live", faults_.fail_live}};
      co_return Response{200, "application/json", j.dump() + "\n"};
    }
    co_return Response{404, "application/json",
                       "{\"error\":\"unknown path; try /, /ready, /live, /health, /version\"}\n"};
  }

  // Applies "error-rate=0.5&latency=10ms&latency-jitter=0&fail-ready=true" all-or-nothing.
  Status ApplyFaults(std::string_view query) {
    Faults next = faults_;
    while (!query.empty()) {
      std::string_view pair = query.substr(0, query.find('&'));
      query.remove_prefix(std::min(query.size(), pair.size() + 1));
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        return InvalidArgument("'" + std::string(pair) + "' needs a value (key=value)");
      }
      std::string_view key = pair.substr(0, eq);
      std::string_view value = pair.substr(eq + 1);
      Status st;
      if (key == "error-rate") {
        Result<double> r = ParseRate(value);
        if (r.ok()) next.error_rate = *r;
        st = r.status();
      } else if (key == "latency" || key == "latency-jitter") {
        Result<Nanos> r = ParseDuration(value);
        if (r.ok()) (key == "latency" ? next.latency : next.jitter) = *r;
        st = r.status();
      } else if (key == "fail-ready" || key == "fail-live") {
        Result<bool> r = ParseBool(value);
        if (r.ok()) (key == "fail-ready" ? next.fail_ready : next.fail_live) = *r;
        st = r.status();
      } else {
        return InvalidArgument(
            "unknown fault '" + std::string(key) +
            "'; known: error-rate, latency, latency-jitter, fail-ready, fail-live");
      }
      if (!st.ok()) return st.WithContext(key);
    }
    faults_ = next;
    std::fprintf(stderr,
                 "turnout-demo-app: faults now error-rate=%g latency=%s jitter=%s "
                 "fail-ready=%d fail-live=%d\n",
                 faults_.error_rate, FormatMillis(faults_.latency).c_str(),
                 FormatMillis(faults_.jitter).c_str(), faults_.fail_ready ? 1 : 0,
                 faults_.fail_live ? 1 : 0);
    return Status::Ok();
  }

  asio::awaitable<bool> Write(Connection& conn, const Response& r, bool head_only, bool keep_alive,
                              int version_minor) {
    std::string out;
    out.reserve(192 + r.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(r.status);
    out += ' ';
    out += http::ReasonPhrase(r.status);
    out += "\r\nContent-Type: ";
    out += r.content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
    out += extra_headers_;
    if (!keep_alive) {
      out += "Connection: close\r\n";
    } else if (version_minor == 0) {
      out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    if (!head_only) out += r.body;
    auto [ec, n] = co_await asio::async_write(conn.socket, asio::buffer(out), kUseTuple);
    co_return !ec;
  }

  asio::io_context& io_;
  Options options_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer crash_timer_;
  asio::steady_timer drain_timer_;
  SystemClock& clock_ = SystemClock::Get();
  Clock::TimePoint started_;
  std::mt19937_64 rng_;
  Faults faults_;
  std::string identity_body_;
  std::string extra_headers_;
  bool draining_ = false;
  int in_flight_ = 0;
  uint64_t ready_probes_ = 0;  // requests to /ready answered (lets tests count probes)
  std::unordered_set<Connection*> connections_;
};

int Main(int argc, char** argv) {
  Result<Options> options = ParseFlags(argc, argv);
  if (!options.ok()) return FlagErrorExit(options.status(), "turnout-demo-app", kUsage);
  // A client that goes away mid-write must not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  App app(io, std::move(options).value());
  if (Status st = app.Listen(); !st.ok()) {
    std::fprintf(stderr, "turnout-demo-app: %s\n", st.message().c_str());
    return 1;
  }
  app.Start();
  io.run();
  return 0;
}

}  // namespace
}  // namespace turnout::demo

int main(int argc, char** argv) { return turnout::demo::Main(argc, argv); }
