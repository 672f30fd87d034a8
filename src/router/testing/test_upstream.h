// TestUpstream: a real HTTP/1.1 server on 127.0.0.1 (port chosen by the OS) or on a Unix stream
// socket (StartUnix) for the router's and the outbound clients' tests, with scriptable
// per-request behaviour.
//
// It runs a Boost.Asio io_context on its own thread; every connection is a coroutine. Requests are
// read leniently (the upstream must see what the router really sent, not what a strict parser
// accepts): a head up to CRLF CRLF, then a Content-Length or chunked body. Every request is
// recorded (RecordedRequests(), thread-safe) except health checks, which are only counted.
//
// Behaviour: a handler (SetHandler) maps each request to a Behavior; the default answers
// 200 "hello from <name>". Every normal response carries `X-Upstream: <name>`, so tests can tell
// which instance answered.
//
// Big bodies are never held in memory: a request body is recorded up to kMaxRecordedBody bytes
// and otherwise only counted and hashed (BodyHash), and generated response bodies
// (Behavior::generated_body_bytes) are PatternBytes, streamed.
//
// Thread-safety: every public method may be called from any thread. The destructor stops the
// server, closing every connection (hanging ones too).

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::router::testing {

using Millis = std::chrono::milliseconds;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline constexpr size_t kMaxRecordedBody = 1 << 20;

// The first value of a header (ASCII case-insensitive name), "" when absent; and how many times
// it occurs.
std::string FindHeader(const HeaderList& headers, std::string_view name);
int CountHeader(const HeaderList& headers, std::string_view name);

// FNV-1a 64 over a byte stream, fed incrementally. Used to compare big bodies without keeping
// them.
class BodyHash {
 public:
  void Update(std::string_view bytes);
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

// The deterministic content of generated bodies: byte i of the stream is PatternByte(i).
char PatternByte(uint64_t index);
// Fills `out` with the pattern bytes starting at stream offset `offset`.
void FillPattern(uint64_t offset, char* out, size_t size);
// BodyHash of the first `size` pattern bytes.
uint64_t PatternHash(uint64_t size);

struct ReceivedRequest {
  uint64_t connection = 0;  // 1-based id of the upstream connection it arrived on
  std::string method;
  std::string target;
  std::string version;      // "HTTP/1.1"
  HeaderList headers;       // in order, as received
  std::string raw_head;     // the head bytes including the final CRLF CRLF
  bool chunked = false;     // the body arrived with Transfer-Encoding: chunked
  std::string body;         // at most kMaxRecordedBody bytes of it
  uint64_t body_bytes = 0;  // the whole body's size
  uint64_t body_hash = 0;   // BodyHash of the whole body

  // Value of the first header with this name (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const { return FindHeader(headers, name); }
  bool HasHeader(std::string_view name) const { return CountHeader(headers, name) > 0; }
  int HeaderCount(std::string_view name) const { return CountHeader(headers, name); }
};

struct Behavior {
  enum class Kind {
    kRespond,                  // status, headers, body (or generated body), optional chunked/delay
    kEcho,                     // 200 with the received request as the body (see EchoText)
    kCloseBeforeResponse,      // read the request, then close cleanly without answering
    kReset,                    // read the request, then reset the connection (RST)
    kBrokenHead,               // answer a malformed response head, then close
    kContentLengthAndChunked,  // a response with both Content-Length and Transfer-Encoding
    kBreakMidBody,             // announce Content-Length N, send half of it, then close
    kHang,                     // never answer (the connection stays open until the peer closes)
    kUpgradeEcho,              // answer 101 Switching Protocols and echo every tunnel byte back
  };
  Kind kind = Kind::kRespond;
  int status = 200;
  HeaderList headers;                 // extra response headers
  std::string body = "hello";         // kRespond (ignored when generated_body_bytes > 0)
  uint64_t generated_body_bytes = 0;  // kRespond/kBreakMidBody: stream this many pattern bytes
  bool chunked = false;               // kRespond: send the body chunked instead of Content-Length
  Millis delay{0};                    // wait this long before sending the response head
  Millis body_delay{0};               // kRespond: wait this long between head and body
  bool connection_close = false;      // answer `Connection: close` and close after the response
  // Close the connection right after the response without saying so (like an upstream whose
  // keep-alive timeout fired): the next request on a pooled connection finds it dead.
  bool silent_close_after = false;
  // Read the request body (default). False: answer as soon as the head arrives, then discard.
  bool read_body_first = true;

  static Behavior Respond(int status, std::string body = "") {
    Behavior b;
    b.status = status;
    b.body = std::move(body);
    return b;
  }
  static Behavior Of(Kind kind) {
    Behavior b;
    b.kind = kind;
    return b;
  }
};

// "127.0.0.1:<port>" where nothing listens: an upstream is started and stopped at once, so
// connecting is refused (for as long as no other socket takes the port).
std::string RefusingAddress();

// Polls `predicate` until it holds or `timeout` passes (the deadline only bounds a failing test;
// nothing waits for a fixed time). Returns the predicate's last value.
bool WaitUntil(const std::function<bool()>& predicate, Millis timeout = Millis(10000));

// The body kEcho answers with: "<method> <target> <version>\n" then "name: value\n" for every
// header, then "\n" and the recorded body.
std::string EchoText(const ReceivedRequest& request);

class TestUpstream {
 public:
  using Handler = std::function<Behavior(const ReceivedRequest&)>;

  // Starts listening on 127.0.0.1:0. `name` goes into X-Upstream. Aborts the test binary (via
  // the returned status) only when the socket cannot be bound.
  static Result<std::unique_ptr<TestUpstream>> Start(std::string name);
  // Starts listening on a Unix stream socket at `socket_path` (which must not exist yet; it is
  // removed by Stop()). address() and port() mean nothing for it; unix_path() names it.
  static Result<std::unique_ptr<TestUpstream>> StartUnix(std::string name, std::string socket_path);
  ~TestUpstream();

  TestUpstream(const TestUpstream&) = delete;
  TestUpstream& operator=(const TestUpstream&) = delete;

  const std::string& name() const { return name_; }
  std::string address() const;  // "127.0.0.1:<port>"
  uint16_t port() const { return port_; }
  const std::string& unix_path() const { return unix_path_; }

  // The handler sees the request head (its body is read afterwards, unless the behaviour says
  // read_body_first=false); it runs on the server thread and must not block.
  void SetHandler(Handler handler);
  // Every request gets this behaviour (a convenience over SetHandler).
  void SetBehavior(Behavior behavior);

  // Requests for the health path (default "/ready") are answered 200 "ready" while healthy and
  // 503 otherwise, and are counted, not recorded.
  void SetHealthy(bool healthy);
  void SetHealthPath(std::string path);
  uint64_t health_checks() const { return health_checks_.load(); }

  std::vector<ReceivedRequest> RecordedRequests() const;
  size_t request_count() const;
  void ClearRecorded();

  uint64_t accepted_connections() const { return accepted_.load(); }
  // Connections currently open (accepted and not yet closed by either side).
  int64_t open_connections() const { return open_.load(); }

  // Blocks until `predicate()` holds or `timeout` passes; re-evaluated whenever a request is
  // recorded or a connection opens or closes. Returns the final value of the predicate.
  bool WaitFor(const std::function<bool()>& predicate, Millis timeout) const;

  // Stops listening and closes every connection. Idempotent; the destructor calls it.
  void Stop();

 private:
  struct Impl;
  explicit TestUpstream(std::string name);
  void Run();  // starts accepting on the server thread
  void Notify();
  Behavior Decide(const ReceivedRequest& request);
  void Record(ReceivedRequest request);

  std::string name_;
  uint16_t port_ = 0;
  std::string unix_path_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<int64_t> open_{0};
  std::atomic<uint64_t> health_checks_{0};
  std::atomic<bool> healthy_{true};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string health_path_ = "/ready";     // guarded by mu_
  Handler handler_;                        // guarded by mu_
  std::vector<ReceivedRequest> requests_;  // guarded by mu_
};

}  // namespace turnout::router::testing
