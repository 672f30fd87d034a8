#include "router/access_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace turnout::router {

std::string_view RouteReasonName(RouteReason r) {
  switch (r) {
    case RouteReason::kNone:
      return "";
    case RouteReason::kActive:
      return "active";
    case RouteReason::kCanaryWeight:
      return "canary_weight";
    case RouteReason::kSticky:
      return "sticky";
    case RouteReason::kOverride:
      return "override";
  }
  return "";
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

// The path without its query (and never a fragment: a request target has none).
std::string_view PathOf(std::string_view target, bool include_query) {
  if (include_query) return target;
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

void AppendUnsigned(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// Milliseconds with three decimals at most ("12.345"), no exponent.
void AppendMillis(double ms, std::string* out) {
  if (!(ms >= 0)) ms = 0;
  uint64_t us = static_cast<uint64_t>(ms * 1000.0 + 0.5);
  AppendUnsigned(us / 1000, out);
  uint64_t frac = us % 1000;
  if (frac == 0) return;
  char d[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
               static_cast<char>('0' + frac % 10)};
  size_t n = 4;
  while (d[n - 1] == '0') --n;
  out->append(d, n);
}

void Append2(unsigned v, std::string* out) {
  out->push_back(static_cast<char>('0' + v / 10 % 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

// RFC 3339 UTC with milliseconds: 2026-12-07T16:53:37.123Z. Days to a civil date with the
// usual era arithmetic (no gmtime_r: no locale, no lock).
void AppendTime(int64_t unix_ms, std::string* out) {
  int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  unsigned ms = static_cast<unsigned>(unix_ms - secs * 1000);
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  unsigned sod = static_cast<unsigned>(secs - days * 86400);
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1;
  unsigned m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  if (y < 0 || y > 9999) y = 0;
  Append2(static_cast<unsigned>(y / 100), out);
  Append2(static_cast<unsigned>(y % 100), out);
  out->push_back('-');
  Append2(m, out);
  out->push_back('-');
  Append2(d, out);
  out->push_back('T');
  Append2(sod / 3600, out);
  out->push_back(':');
  Append2(sod / 60 % 60, out);
  out->push_back(':');
  Append2(sod % 60, out);
  out->push_back('.');
  out->push_back(static_cast<char>('0' + ms / 100));
  Append2(ms % 100, out);
  out->push_back('Z');
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
    out->append(s.data() + plain, i - plain);
    plain = i + 1;
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else {
      char e[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out->append(e, 6);
    }
  }
  out->append(s.data() + plain, s.size() - plain);
  out->push_back('"');
}

bool LogfmtNeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void AppendLogfmtValue(std::string_view s, std::string* out) {
  if (!LogfmtNeedsQuotes(s)) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20 || c >= 0x7f) {
      char e[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out->append(e, 4);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

// Writes fields in one order for both formats.
class LineWriter {
 public:
  LineWriter(AccessLogConfig::Format f, std::string* out)
      : json_(f == AccessLogConfig::Format::kJson), out_(out) {
    if (json_) out_->push_back('{');
  }
  void Key(std::string_view k) {
    if (!first_) out_->push_back(json_ ? ',' : ' ');
    first_ = false;
    if (json_) {
      out_->push_back('"');
      out_->append(k);
      out_->append("\":");
    } else {
      out_->append(k);
      out_->push_back('=');
    }
  }
  void String(std::string_view k, std::string_view v) {
    Key(k);
    if (json_)
      AppendJsonString(v, out_);
    else
      AppendLogfmtValue(v, out_);
  }
  void Number(std::string_view k, uint64_t v) {
    Key(k);
    AppendUnsigned(v, out_);
  }
  void Millis(std::string_view k, double v) {
    Key(k);
    AppendMillis(v, out_);
  }
  void Time(std::string_view k, int64_t unix_ms) {
    Key(k);
    if (json_) out_->push_back('"');
    AppendTime(unix_ms, out_);
    if (json_) out_->push_back('"');
  }
  void End() {
    if (json_) out_->push_back('}');
    out_->push_back('\n');
  }

 private:
  bool json_;
  bool first_ = true;
  std::string* out_;
};

}  // namespace

std::string FormatAccessLogTime(int64_t unix_ms) {
  std::string out;
  AppendTime(unix_ms, &out);
  return out;
}

void FormatAccessLogLine(const AccessLogEntry& e, AccessLogConfig::Format format,
                         bool include_query, std::string* out) {
  LineWriter w(format, out);
  w.Time("time", e.unix_ms);
  w.String("client", e.client_ip);
  w.Number("client_port", e.client_port);
  w.String("method", e.method);
  w.String("path", PathOf(e.target, include_query));
  if (e.version_minor == 0) {
    w.String("protocol", "HTTP/1.0");
  } else if (e.version_minor > 0) {
    w.String("protocol", "HTTP/1.1");
  } else {
    w.String("protocol", "");
  }
  w.Number("status", static_cast<uint64_t>(e.status < 0 ? 0 : e.status));
  w.Number("bytes_out", e.response_bytes);
  w.Number("bytes_in", e.request_bytes);
  w.Millis("duration_ms", e.duration_ms);
  if (e.upstream_ms >= 0) w.Millis("upstream_ms", e.upstream_ms);
  w.String("slot", e.slot);
  w.String("instance", e.instance);
  w.String("route", RouteReasonName(e.reason));
  w.String("request_id", e.request_id);
  if (!e.trace_id.empty()) w.String("trace_id", e.trace_id);
  if (!e.error.empty()) w.String("error", e.error);
  w.End();
}

// ---------------------------------------------------------------------------------------------
// AccessLog

AccessLog::AccessLog(AccessLogConfig config, int workers, Options options)
    : config_(std::move(config)), options_(options) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->buf.reserve(std::min<size_t>(options_.shard_bytes, 64 * 1024));
  }
}

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const AccessLogConfig& config, int workers,
                                                   Options options) {
  if (config.path.empty()) return InvalidArgument("access log: no path");
  std::unique_ptr<AccessLog> log(new AccessLog(config, workers, options));
  TURNOUT_RETURN_IF_ERROR(log->OpenFile());
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (own_fd_ && fd_ >= 0) ::close(fd_);
}

Status AccessLog::OpenFile() {
  if (config_.path == "-") {
    int fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return ErrnoError("access log: stdout", errno);
    fd_ = fd;
    own_fd_ = true;
    size_ = 0;
    return Status::Ok();
  }
  // Non-blocking, so that a FIFO nobody reads never holds the flusher past a stop.
  int fd =
      ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
  if (fd < 0) {
    return ErrnoError("access log " + config_.path +
                          ": cannot open it for writing (check the directory exists and is "
                          "writable)",
                      errno);
  }
  struct stat st {};
  size_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  if (own_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = fd;
  own_fd_ = true;
  return Status::Ok();
}

bool AccessLog::Keep(int status, bool router_error, uint64_t random) const {
  if (router_error || status < 200 || status >= 400) return true;
  if (config_.sample >= 1.0) return true;
  if (config_.sample <= 0.0) return false;
  // The top 53 bits as a fraction in [0, 1).
  double u = static_cast<double>(random >> 11) * (1.0 / 9007199254740992.0);
  return u < config_.sample;
}

void AccessLog::Append(int worker, const AccessLogEntry& entry) {
  Shard& s = *shards_[static_cast<size_t>(worker) % shards_.size()];
  s.scratch.clear();
  FormatAccessLogLine(entry, config_.format, config_.include_query, &s.scratch);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.buf.size() + s.scratch.size() > options_.shard_bytes) {
    s.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  s.buf.append(s.scratch);
  ++s.lines;
}

uint64_t AccessLog::dropped() const {
  uint64_t n = lost_.load(std::memory_order_relaxed);
  for (const auto& s : shards_) n += s->dropped.load(std::memory_order_relaxed);
  return n;
}

void AccessLog::Reopen() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reopen_ = true;
  }
  cv_.notify_all();
}

bool AccessLog::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t want = ++flush_requests_;
  cv_.notify_all();
  return flushed_cv_.wait_for(lock, timeout, [&] { return flushes_done_ >= want; });
}

void AccessLog::Run() {
  std::string batch;
  std::string taken;
  for (;;) {
    bool stop = false;
    bool reopen = false;
    uint64_t requests = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.flush_interval,
                   [&] { return stop_ || reopen_ || flush_requests_ > flushes_done_; });
      stop = stop_;
      reopen = reopen_;
      reopen_ = false;
      requests = flush_requests_;
    }
    if (stop) stopping_.store(true, std::memory_order_relaxed);
    if (reopen && config_.path != "-") {
      if (Status s = OpenFile(); !s.ok()) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr, "turnout router: %s\n", s.ToString().c_str());
      }
    }
    // Take every shard's lines; the lock is held for a swap only.
    batch.clear();
    uint64_t lines = 0;
    for (auto& sp : shards_) {
      Shard& s = *sp;
      {
        std::lock_guard<std::mutex> lock(s.mu);
        if (s.buf.empty()) continue;
        taken.swap(s.buf);
        lines += s.lines;
        s.lines = 0;
      }
      batch.append(taken);
      taken.clear();
    }
    if (!batch.empty()) WriteBatch(batch, lines);
    // Keep the batch buffer from growing for good after one burst.
    if (batch.capacity() > 4 * options_.shard_bytes) std::string().swap(batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      flushes_done_ = requests;
    }
    flushed_cv_.notify_all();
    if (stop) return;
  }
}

void AccessLog::WriteBatch(const std::string& data, uint64_t lines) {
  const bool rotates = config_.path != "-" && config_.max_size > 0;
  std::string_view rest = data;
  while (!rest.empty()) {
    std::string_view chunk = rest;
    if (rotates && size_ + rest.size() > config_.max_size) {
      // The whole lines that still fit; none: rotate first (a line longer than max_size goes
      // alone into a new file).
      const uint64_t room = size_ < config_.max_size ? config_.max_size - size_ : 0;
      const size_t end = room == 0 ? std::string_view::npos
                                   : rest.substr(0, static_cast<size_t>(room)).rfind('\n');
      if (end == std::string_view::npos) {
        if (size_ > 0) {
          Rotate();
          continue;
        }
        chunk = rest.substr(0, rest.find('\n') + 1);
      } else {
        chunk = rest.substr(0, end + 1);
      }
    }
    const uint64_t n = chunk.size() == data.size()
                           ? lines
                           : static_cast<uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    if (WriteAll(chunk)) {
      size_ += chunk.size();
      written_.fetch_add(n, std::memory_order_relaxed);
    } else {
      // What is left of the batch is lost too.
      lost_.fetch_add(static_cast<uint64_t>(std::count(rest.begin(), rest.end(), '\n')),
                      std::memory_order_relaxed);
      return;
    }
    rest.remove_prefix(chunk.size());
  }
}

bool AccessLog::WriteAll(std::string_view data) {
  // A writer that cannot take bytes (a full pipe) is waited for in short polls, so that a stop
  // is noticed; at a stop it gets about one more second.
  int idle_polls = 0;
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      idle_polls = 0;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      bool stopping = stopping_.load(std::memory_order_relaxed);
      if (stopping && ++idle_polls > 10) return false;
      struct pollfd p {
        fd_, POLLOUT, 0
      };
      ::poll(&p, 1, 100);
      if (!stopping) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) stopping_.store(true, std::memory_order_relaxed);
      }
      continue;
    }
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void AccessLog::Rotate() {
  const std::string& p = config_.path;
  std::string oldest = p + "." + std::to_string(config_.keep);
  ::unlink(oldest.c_str());
  for (int i = config_.keep - 1; i >= 1; --i) {
    std::string from = p + "." + std::to_string(i);
    std::string to = p + "." + std::to_string(i + 1);
    ::rename(from.c_str(), to.c_str());  // a missing one is fine
  }
  std::string first = p + ".1";
  if (::rename(p.c_str(), first.c_str()) != 0) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    size_ = 0;  // keep writing to the file we have rather than retrying on every batch
    return;
  }
  if (Status s = OpenFile(); !s.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "turnout router: %s\n", s.ToString().c_str());
  }
}

}  // namespace turnout::router
