// turnout-bench-idle-clients: opens N keep-alive connections to an HTTP server, sends one
// request on each, reads its response, and then keeps every connection open and idle, so
// that a proxy's memory per idle client connection can be measured from outside.
//
//   turnout-bench-idle-clients --url http://127.0.0.1:8080/ --connections 10000 [--hold 60s]
//
// Prints "ready OK FAILED" on stdout (flushed) once every connection has its answer (or
// failed, or --timeout passed), then holds them until SIGTERM/SIGINT or until --hold passes, and
// exits 0 when all of them succeeded. Needs `ulimit -n` above N.

#include <signal.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/flags.h"
#include "demo/util.h"
#include "http/parser.h"

namespace turnout::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kUseTuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view kUsage =
    R"(usage: turnout-bench-idle-clients --url http://HOST:PORT/ --connections N [--hold D]
  --connections N   connections to open and keep idle.     Default: 10000
  --hold D          how long to keep them at most.        Default: 60s
  --parallel N      connects in progress at once.          Default: 200
  --timeout D       connections without an answer by then fail. Default: 30s
Prints "ready OK FAILED" when every connection got its response.
)";

struct Options {
  demo::HttpUrl url;
  int connections = 10000;
  int parallel = 200;
  std::chrono::nanoseconds hold = std::chrono::seconds(60);
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
};

Result<Options> ParseFlags(int argc, char** argv) {
  static const std::vector<FlagSpec> kFlags = {
      {"url", "URL", ""},       {"connections", "N", ""},    {"parallel", "N", ""},
      {"hold", "DURATION", ""}, {"timeout", "DURATION", ""},
  };
  TURNOUT_ASSIGN_OR_RETURN(Args args, Args::ParseFlagsOnly(argc, argv, kFlags));
  if (args.help()) return Status(StatusCode::kAborted, "help");
  if (!args.Has("url")) return InvalidArgument("--url is required");
  Options o;
  TURNOUT_ASSIGN_OR_RETURN(o.url, demo::ParseHttpUrl(args.Get("url")));
  for (const char* name : {"connections", "parallel"}) {
    if (!args.Has(name)) continue;
    const std::string flag = std::string("--") + name;
    TURNOUT_ASSIGN_OR_RETURN(uint64_t n, demo::ParsePositive(flag, args.Get(name), 1000000));
    (flag == "--connections" ? o.connections : o.parallel) = static_cast<int>(n);
  }
  if (args.Has("hold")) {
    TURNOUT_ASSIGN_OR_RETURN(o.hold, demo::ParseDuration(args.Get("hold")));
  }
  if (args.Has("timeout")) {
    TURNOUT_ASSIGN_OR_RETURN(o.timeout, demo::ParseDuration(args.Get("timeout")));
  }
  return o;
}

class Clients {
 public:
  Clients(asio::io_context& io, const Options& o, tcp::endpoint endpoint)
      : io_(io), o_(o), endpoint_(endpoint) {
    request_ = "GET " + o.url.target + " HTTP/1.1\r\nHost: " + o.url.host_header +
               "\r\nUser-Agent: turnout-bench-idle-clients\r\n\r\n";
  }

  void Start() {
    for (int i = 0; i < o_.connections; ++i) {
      sockets_.push_back(std::make_unique<tcp::socket>(io_));
    }
    done_.assign(o_.connections, false);
    for (int i = 0; i < o_.parallel; ++i) {
      asio::co_spawn(io_, Opener(), asio::detached);
    }
    // A server that stops accepting (a connection limit) must not keep us waiting forever:
    // whatever has no answer by the deadline is closed and counted as failed.
    deadline_.expires_after(o_.timeout);
    deadline_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      boost::system::error_code ignored;
      for (int i = 0; i < o_.connections; ++i) {
        if (!done_[i]) sockets_[i]->close(ignored);
      }
      // Those never started fail at once.
      failed_ += o_.connections - next_;
      next_ = o_.connections;
      MaybeReport();
    });
  }

  int ok() const { return ok_; }
  int failed() const { return failed_; }

 private:
  // Each opener takes the next connection number until all N are done.
  asio::awaitable<void> Opener() {
    while (next_ < o_.connections) {
      int index = next_++;
      tcp::socket& socket = *sockets_[index];
      bool good = co_await OpenOne(socket);
      done_[index] = true;
      if (good) {
        ++ok_;
      } else {
        ++failed_;
        boost::system::error_code ignored;
        socket.close(ignored);
      }
      MaybeReport();
    }
  }

  void MaybeReport() {
    if (reported_ || ok_ + failed_ < o_.connections) return;
    reported_ = true;
    deadline_.cancel();
    std::printf("ready %d %d\n", ok_, failed_);
    std::fflush(stdout);
  }

  asio::awaitable<bool> OpenOne(tcp::socket& socket) {
    auto [cec] = co_await socket.async_connect(endpoint_, kUseTuple);
    if (cec) co_return false;
    auto [wec, written] = co_await asio::async_write(socket, asio::buffer(request_), kUseTuple);
    if (wec) co_return false;
    std::string buffer;
    http::ResponseHead head;
    http::ParseLimits limits;
    while (true) {
      http::ParseResult r = http::ParseResponseHead(buffer, "GET", limits, &head);
      if (r.state == http::ParseState::kError) co_return false;
      if (r.state == http::ParseState::kComplete) {
        if (head.status < 200 || head.status >= 300 || !head.keep_alive ||
            head.body != http::BodyKind::kContentLength) {
          co_return false;
        }
        size_t want = r.consumed + head.content_length;
        while (buffer.size() < want) {
          if (!co_await ReadMore(socket, buffer)) co_return false;
        }
        co_return true;
      }
      if (!co_await ReadMore(socket, buffer)) co_return false;
    }
  }

  static asio::awaitable<bool> ReadMore(tcp::socket& socket, std::string& buffer) {
    char chunk[4096];
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), kUseTuple);
    buffer.append(chunk, n);
    co_return !ec && n > 0;
  }

  asio::io_context& io_;
  const Options& o_;
  tcp::endpoint endpoint_;
  std::string request_;
  asio::steady_timer deadline_{io_};
  int next_ = 0;
  int ok_ = 0;
  int failed_ = 0;
  bool reported_ = false;
  std::vector<std::unique_ptr<tcp::socket>> sockets_;
  std::vector<bool> done_;
};

int Main(int argc, char** argv) {
  Result<Options> options = ParseFlags(argc, argv);
  if (!options.ok()) {
    return demo::FlagErrorExit(options.status(), "turnout-bench-idle-clients", kUsage);
  }
  ::signal(SIGPIPE, SIG_IGN);
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(options->url.endpoint.host, ec);
  if (ec) {
    std::fprintf(stderr, "turnout-bench-idle-clients: --url needs an IP address\n");
    return 2;
  }
  asio::io_context io(1);
  Clients clients(io, *options, tcp::endpoint(address, options->url.endpoint.port));
  clients.Start();

  // Stop on a signal or when --hold passes.
  asio::signal_set signals(io, SIGTERM, SIGINT);
  asio::steady_timer hold(io, options->hold);
  signals.async_wait([&](const boost::system::error_code& e, int) {
    if (!e) io.stop();
  });
  hold.async_wait([&](const boost::system::error_code& e) {
    if (!e) io.stop();
  });
  io.run();
  return clients.failed() == 0 && clients.ok() == options->connections ? 0 : 1;
}

}  // namespace
}  // namespace turnout::bench

int main(int argc, char** argv) { return turnout::bench::Main(argc, argv); }
