#include "cli/access_logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/table.h"
#include "common/text.h"

namespace turnout::cli {

using nlohmann::json;

Status ParseStatusFilter(std::string_view text, AccessLogFilter* filter) {
  if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && (text[1] | 0x20) == 'x' &&
      (text[2] | 0x20) == 'x') {
    filter->status_class = text[0] - '0';
    return Status::Ok();
  }
  Result<int64_t> n = ParseWholeNumber(text, 100, 599);
  if (!n.ok()) {
    return InvalidArgument("--status: expected a class such as 5xx or a status such as 404, got '" +
                           EscapeControl(text) + "'");
  }
  filter->status = static_cast<int>(*n);
  return Status::Ok();
}

std::optional<AccessLogLine> ParseAccessLogLine(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto str = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  AccessLogLine l;
  l.time = str("time");
  l.client = str("client");
  l.method = str("method");
  l.path = str("path");
  l.protocol = str("protocol");
  l.slot = str("slot");
  l.instance = str("instance");
  l.route = str("route");
  l.request_id = str("request_id");
  l.trace_id = str("trace_id");
  l.error = str("error");
  if (auto it = j.find("status"); it != j.end() && it->is_number_integer()) {
    l.status = it->get<int>();
  }
  if (auto it = j.find("duration_ms"); it != j.end() && it->is_number()) {
    l.duration_ms = it->get<double>();
  }
  return l;
}

bool Matches(const AccessLogLine& l, const AccessLogFilter& f) {
  if (!f.slot.empty() && l.slot != f.slot) return false;
  if (f.status_class != 0 && l.status / 100 != f.status_class) return false;
  if (f.status != 0 && l.status != f.status) return false;
  if (!f.since.empty() && l.time < f.since) return false;
  return true;
}

std::string AccessLogHeaderRow() {
  std::string out = Column("TIME", 12) + Column("STATUS", 6) + Column("METHOD", 6) +
                    Column("PATH", 30) + Column("SLOT", 8) + Column("MS", 8) + Column("ROUTE", 13) +
                    "TRACE/ERROR";
  return out + "\n";
}

std::string FormatAccessLogRow(const AccessLogLine& l) {
  // "2026-12-07T16:33:37.123Z" -> "16:33:37.123"
  std::string time = l.time.size() == 24 ? l.time.substr(11, 12) : l.time;
  char ms[32];
  std::snprintf(ms, sizeof(ms), "%.1f", l.duration_ms);
  std::string status = l.status == 0 ? "-" : std::to_string(l.status);
  std::string last = l.trace_id;
  if (!l.error.empty()) last = last.empty() ? l.error : l.error + " " + last;
  std::string out = Column(time, 12) + Column(status, 6) + Column(EscapeControl(l.method), 6) +
                    Column(EscapeControl(l.path), 30) + Column(l.slot, 8) + Column(ms, 8) +
                    Column(l.route, 13) + last;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out + "\n";
}

namespace {

// Reads what `fd` has from its current offset; calls `emit` per complete line. False when
// `emit` asked to stop.
bool Drain(int fd, std::string* pending, const std::function<bool(std::string_view)>& emit) {
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    pending->append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending->find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!emit(std::string_view(*pending).substr(start, nl - start))) return false;
    }
    pending->erase(0, start);
  }
}

}  // namespace

Status ReadAccessLog(const std::string& path, bool follow, std::chrono::milliseconds poll,
                     const std::function<bool(std::string_view)>& emit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError("access log " + path + " (router.access_log.path, or --file)", errno);
  }
  std::string pending;
  bool go = Drain(fd, &pending, emit);
  while (go && follow) {
    std::this_thread::sleep_for(poll);
    struct stat open_st {};
    struct stat path_st {};
    ::fstat(fd, &open_st);
    const bool renamed = ::stat(path.c_str(), &path_st) != 0 || path_st.st_ino != open_st.st_ino ||
                         path_st.st_dev != open_st.st_dev;
    off_t pos = ::lseek(fd, 0, SEEK_CUR);
    if (!renamed && path_st.st_size < pos) {
      ::lseek(fd, 0, SEEK_SET);  // truncated
      pending.clear();
    }
    go = Drain(fd, &pending, emit);
    if (go && renamed) {
      int next = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (next >= 0) {  // else the new file is not there yet: keep the old one and look again
        // A last write may have reached the old file after the new one appeared.
        go = Drain(fd, &pending, emit);
        ::close(fd);
        fd = next;
        pending.clear();
        if (go) go = Drain(fd, &pending, emit);
      }
    }
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace turnout::cli
