// RawClient: a blocking HTTP/1.1 client over a real TCP socket, for tests that must control every
// byte sent to the router and see exactly how it answered (or closed, or reset).
//
// Every call takes a timeout; nothing blocks forever. Responses are parsed with the project's
// strict http::ParseResponseHead (so a router that answers with ambiguous framing fails the
// test) and their bodies are read by Content-Length, chunked coding or until close. Big bodies
// are counted and hashed (BodyHash), keeping at most `max_kept_body` bytes.
//
// LoadRunner: N keep-alive connections in their own threads sending requests until a request
// budget or a duration is used up, counting outcomes (and which upstream answered, by the
// X-Upstream header).
//
// Thread-safety: a RawClient is used by one thread at a time; LoadRunner's accessors are
// thread-safe.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "router/testing/test_upstream.h"

namespace turnout::router::testing {

struct RawResponse {
  enum class Outcome {
    kComplete,   // a whole response (head and framed body) arrived
    kClosed,     // the peer closed cleanly before the response was complete
    kReset,      // the connection was reset (ECONNRESET/EPIPE) before it was complete
    kTimeout,    // the deadline passed first
    kMalformed,  // the head did not parse (see error)
  };
  Outcome outcome = Outcome::kTimeout;
  std::string error;  // why, when not kComplete
  int status = 0;     // 0 when no head arrived
  std::string reason;
  HeaderList headers;
  std::string raw_head;
  std::string body;         // at most max_kept_body bytes
  uint64_t body_bytes = 0;  // bytes of body received (even when incomplete)
  uint64_t body_hash = 0;   // BodyHash over all body bytes received
  bool keep_alive = true;   // per the head

  bool complete() const { return outcome == Outcome::kComplete; }
  std::string Header(std::string_view name) const { return FindHeader(headers, name); }
  bool HasHeader(std::string_view name) const { return CountHeader(headers, name) > 0; }
  int HeaderCount(std::string_view name) const { return CountHeader(headers, name); }
};

std::string_view OutcomeName(RawResponse::Outcome outcome);

// How a connection ended when waiting for it to end.
enum class CloseKind { kClosed, kReset, kTimeout, kData };

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Connects to "host:port" (IPv4 literal) or "unix:/path" (a Unix stream socket). Unavailable
  // when refused, DeadlineExceeded on timeout.
  Status Connect(const std::string& address, Millis timeout = Millis(5000));
  bool connected() const { return fd_ >= 0; }
  void Close();
  // Closes with SO_LINGER 0 (a reset).
  void Abort();
  // Half-closes the sending side (FIN), keeps reading.
  void ShutdownWrite();

  // Sends all bytes. IoError (with "reset"/"pipe" in the message) when the peer is gone.
  Status Send(std::string_view bytes, Millis timeout = Millis(5000));
  // Streams `size` PatternBytes (starting at pattern offset 0) in 64 KiB writes.
  Status SendPattern(uint64_t size, Millis timeout = Millis(30000));
  // Sends `bytes` one byte at a time with `gap` between them, stopping early (returning the
  // error) when the peer closes. Real time passes here on purpose: it is how a slow client looks.
  Status Trickle(std::string_view bytes, Millis gap, Millis timeout);

  // Reads one response. `request_method` decides HEAD semantics. Interim 1xx responses are
  // returned as they are (status 100..199, no body); call again for the final one. After a 101
  // the bytes that follow stay buffered for ReadSome.
  RawResponse ReadResponse(std::string_view request_method = "GET", Millis timeout = Millis(5000),
                           size_t max_kept_body = 16 << 20);
  // Send + ReadResponse.
  RawResponse RoundTrip(std::string_view request, std::string_view method = "GET",
                        Millis timeout = Millis(5000));

  // Reads whatever arrives (buffered bytes first) until at least `min_bytes` or the timeout.
  Result<std::string> ReadSome(size_t min_bytes, Millis timeout = Millis(5000));

  // Waits for the peer to end the connection: kClosed on EOF, kReset on a reset, kData when
  // bytes arrive instead (they are kept), kTimeout when nothing happens.
  CloseKind WaitForClose(Millis timeout);

 private:
  enum class Fill { kData, kEof, kReset, kTimeout };
  Fill FillBuffer(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;  // received, not yet consumed
};

// A GET request for `target` with Host `host`, keep-alive, plus extra header lines
// ("Name: value\r\n" each).
std::string GetRequest(std::string_view target = "/", std::string_view extra_headers = "",
                       std::string_view host = "test.local");

// Connects, sends `request`, reads one response and closes: for one-off requests.
RawResponse FetchOnce(const std::string& address, std::string_view request,
                      std::string_view method = "GET", Millis timeout = Millis(5000));

struct LoadOptions {
  std::string address;  // the router's listen address
  int connections = 8;
  uint64_t max_requests = 1000;  // across all connections
  Millis max_duration{5000};
  Millis request_timeout{5000};
  // The request to send; called per request with (connection index, request number).
  std::function<std::string(int, uint64_t)> make_request;  // default: GetRequest("/")
  std::string upstream_header = "X-Upstream";
};

struct LoadResult {
  uint64_t ok = 0;  // 2xx
  uint64_t non_2xx = 0;
  uint64_t resets = 0;  // reset before a complete response
  uint64_t closed = 0;  // clean close before a complete response
  uint64_t timeouts = 0;
  uint64_t malformed = 0;
  uint64_t connect_failures = 0;
  std::map<int, uint64_t> by_status;
  std::map<std::string, uint64_t> by_upstream;
  Millis elapsed{0};

  uint64_t total() const { return ok + non_2xx + resets + closed + timeouts + malformed; }
  uint64_t failures() const { return total() - ok + connect_failures; }
  std::string Summary() const;
};

// Runs load in background threads until the budget, the duration or Stop().
class LoadRunner {
 public:
  explicit LoadRunner(LoadOptions options);
  ~LoadRunner();  // Stop()s and joins

  void Start();
  // Responses completed so far (any outcome).
  uint64_t completed() const { return completed_.load(); }
  bool WaitForCompleted(uint64_t count, Millis timeout) const;
  void Stop();
  // Joins the threads (they end by budget or duration) and returns the totals.
  LoadResult Wait();

 private:
  void Worker(int index);

  LoadOptions options_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> completed_{0};
  std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  LoadResult result_;  // guarded by mu_
};

// Runs a bounded load and returns the totals (LoadRunner Start + Wait).
LoadResult RunLoad(LoadOptions options);

}  // namespace turnout::router::testing
