// The router's access log: one line per request, JSON (default) or logfmt, written off the hot
// path.
//
// Each worker appends its lines to its own shard (a buffer guarded by a mutex that only the
// worker and, for a swap of two pointers' worth, the flusher take). A flusher thread swaps the
// shards out every `flush_interval` and writes them in one batch. Memory is bounded: a shard
// holds at most `shard_bytes`; a line that does not fit while the writer lags (a slow disk, a
// pipe nobody reads) is dropped and counted (dropped(), `turnout_access_log_dropped_total` in
// /metrics). A worker never waits for the disk.
//
// Files: `path` is opened for appending (created with mode 0640); "-" means the process's
// stdout. When a write would take a file past `max_size` bytes, FILE.(keep-1) becomes FILE.keep
// ... FILE becomes FILE.1 (the oldest beyond `keep` is removed) and a new FILE is opened.
// Reopen() (SIGHUP in `turnout router`) reopens FILE, for external log rotation.
//
// What a line holds (FormatAccessLogLine): time, client address and port, method, path (the
// query is dropped unless include_query), protocol, status, response and request bytes, total
// and upstream durations, slot, instance, why the slot was chosen, request id, trace id and the
// router's error kind when there is one. No request or response header is logged: never
// Authorization, Cookie, Set-Cookie or the override secret.
//
// Sampling (Keep): 2xx and 3xx answers from an upstream are kept with probability `sample`;
// 1xx, 4xx, 5xx, router errors and aborted requests always.
//
// Thread-safety: Append(worker) from that worker's thread only; everything else from any thread.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "router/config.h"

namespace turnout::router {

// Why a request went to its slot.
enum class RouteReason : uint8_t {
  kNone,          // not routed (refused before a slot was chosen)
  kActive,        // the active slot, no canary in play
  kCanaryWeight,  // a canary is in play: a new client's random key fell on this slot
  kSticky,        // a canary is in play: the client's sticky key (cookie or header) chose this slot
  kOverride,      // the override header with the right secret
};
std::string_view RouteReasonName(RouteReason r);  // "active", "canary_weight", ... ("" for kNone)

// One request, as FormatAccessLogLine writes it. Views must live until the call returns.
struct AccessLogEntry {
  int64_t unix_ms = 0;  // wall-clock time the request started
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::string_view method;  // empty when the head could not be read
  std::string_view target;  // the request target as received
  int version_minor = 1;    // HTTP/1.<minor>; < 0: unknown (no head)
  int status = 0;           // 0: no response (aborted)
  uint64_t response_bytes = 0;
  uint64_t request_bytes = 0;
  double duration_ms = 0;
  double upstream_ms = -1;  // < 0: no upstream response head
  std::string_view slot;
  std::string_view instance;
  RouteReason reason = RouteReason::kNone;
  std::string_view request_id;
  std::string_view trace_id;
  std::string_view error;  // metrics::RouterErrorName, empty when none
};

// Appends one line (ending in '\n'). The path loses its query unless `include_query`. Any bytes
// in the fields give a valid line: JSON strings escape '"', '\\', control bytes and every byte
// >= 0x80 (as \u00XX, one per byte, so the original bytes can be restored); logfmt quotes a value
// with spaces, quotes, '=' or such bytes and escapes them as \xNN.
void FormatAccessLogLine(const AccessLogEntry& entry, AccessLogConfig::Format format,
                         bool include_query, std::string* out);

// The form of a line's "time": RFC 3339 UTC with milliseconds, "2026-12-07T16:33:37.123Z"
// (fixed width, so that such strings sort as the times do).
std::string FormatAccessLogTime(int64_t unix_ms);

class AccessLog {
 public:
  struct Options {
    size_t shard_bytes = 1 << 20;  // per worker; lines beyond it are dropped while the writer lags
    std::chrono::milliseconds flush_interval{100};
  };

  // Opens (creates) the file, or takes stdout for "-", and starts the flusher. IoError naming
  // the path when it cannot be opened.
  static Result<std::unique_ptr<AccessLog>> Open(const AccessLogConfig& config, int workers,
                                                 Options options);
  static Result<std::unique_ptr<AccessLog>> Open(const AccessLogConfig& config, int workers) {
    return Open(config, workers, Options{});
  }
  ~AccessLog();  // flushes what it holds (waiting at most ~1 s for a blocked writer) and stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  const AccessLogConfig& config() const { return config_; }

  // Whether a request with this outcome is logged; `random` is uniform in [0, 2^64).
  bool Keep(int status, bool router_error, uint64_t random) const;

  // Appends the formatted `entry` to the worker's shard, or drops it when the shard is full.
  void Append(int worker, const AccessLogEntry& entry);

  // Asks the flusher to reopen the file (after an external rotation). No-op for stdout.
  void Reopen();
  // Writes everything appended so far; returns true once it is written (or dropped), false
  // when `timeout` passed first (a writer that cannot take bytes). For tests and shutdown.
  bool Flush(std::chrono::milliseconds timeout = std::chrono::seconds(2));

  uint64_t dropped() const;  // lines dropped, all workers
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }  // lines
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  struct Shard {
    std::mutex mu;
    std::string buf;      // guarded by mu
    uint64_t lines = 0;   // lines in buf, guarded by mu
    std::string scratch;  // the worker's formatting buffer (worker thread only)
    std::atomic<uint64_t> dropped{0};
    char pad[64];
  };

  AccessLog(AccessLogConfig config, int workers, Options options);
  Status OpenFile();
  void Run();
  // Writes `data` (`lines` lines); rotates first when it would pass max_size. Flusher only.
  void WriteBatch(const std::string& data, uint64_t lines);
  // Writes all of `data` to fd_, polling with a timeout; false when stopping cut it short.
  bool WriteAll(std::string_view data);
  void Rotate();

  const AccessLogConfig config_;
  const Options options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  int fd_ = -1;
  bool own_fd_ = false;
  uint64_t size_ = 0;  // bytes in the current file (flusher only)
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> lost_{0};  // lines taken from shards but never written

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  bool stop_ = false;            // guarded by mu_
  bool reopen_ = false;          // guarded by mu_
  uint64_t flush_requests_ = 0;  // guarded by mu_
  uint64_t flushes_done_ = 0;    // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace turnout::router
