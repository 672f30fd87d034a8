#include "platform/proc.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <mutex>

namespace turnout::platform {
namespace {

Result<std::string> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ESRCH) return NotFound(path + " does not exist");
    return ErrnoError("open " + path, err);
  }
  std::string text;
  char buf[1024];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    // A process that exits between open and read makes read fail with ESRCH.
    if (n < 0) return err == ESRCH ? NotFound(path + ": process ended") : ErrnoError(path, err);
    return text;
  }
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) {
    return InvalidArgument("stat: no ')' after the command name");
  }
  std::string_view rest = text.substr(close + 2);  // starts at field 3
  ProcStat stat;
  int field = 3;
  size_t pos = 0;
  bool have_start = false;
  while (pos < rest.size() && field <= 22) {
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view value = rest.substr(pos, end - pos);
    if (field == 3) {
      if (value.size() != 1) return InvalidArgument("stat: bad state field");
      stat.state = value[0];
    } else if (field == 4 || field == 22) {
      uint64_t number = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec != std::errc() || ptr != value.data() + value.size()) {
        return InvalidArgument("stat: field " + std::to_string(field) + " is not a number");
      }
      if (field == 4) stat.parent = static_cast<pid_t>(number);
      if (field == 22) {
        stat.start_time_ticks = number;
        have_start = true;
      }
    }
    pos = end + 1;
    ++field;
  }
  if (!have_start) return InvalidArgument("stat: fewer than 22 fields");
  return stat;
}

Result<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return InvalidArgument("pid must be positive");
  TURNOUT_ASSIGN_OR_RETURN(std::string text,
                           ReadSmallFile("/proc/" + std::to_string(pid) + "/stat"));
  return ParseProcStat(text);
}

Result<std::string> BootId() {
  static std::mutex mu;
  static std::optional<std::string> cached;
  std::lock_guard lock(mu);
  if (cached) return *cached;
  TURNOUT_ASSIGN_OR_RETURN(std::string text, ReadSmallFile("/proc/sys/kernel/random/boot_id"));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return IoError("boot_id is empty");
  cached = text;
  return text;
}

}  // namespace turnout::platform
