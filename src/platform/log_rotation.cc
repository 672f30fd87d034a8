#include "platform/log_rotation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/unique_fd.h"

namespace turnout::platform {
namespace {

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Copies the first `size` bytes of `from` into a new file `to` (replacing it).
Status CopyPrefix(int from, uint64_t size, const std::string& to) {
  std::string tmp = to + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (out.get() < 0) return ErrnoError("open " + tmp, errno);
  char buf[64 * 1024];
  uint64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof(buf), size - done));
    ssize_t n = ::pread(from, buf, want, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read log", errno);
    }
    if (n == 0) break;  // someone truncated it meanwhile; keep what we have
    TURNOUT_RETURN_IF_ERROR(WriteAll(out.get(), buf, static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
  }
  if (::fsync(out.get()) != 0) return ErrnoError("fsync " + tmp, errno);
  if (::rename(tmp.c_str(), to.c_str()) != 0) return ErrnoError("rename " + tmp, errno);
  return Status::Ok();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> RotationRenames(const std::string& path,
                                                                 int keep) {
  std::vector<std::pair<std::string, std::string>> renames;
  for (int i = keep - 1; i >= 1; --i) {
    renames.emplace_back(path + "." + std::to_string(i), path + "." + std::to_string(i + 1));
  }
  return renames;
}

Result<bool> RotateLogIfNeeded(const std::string& path, const LogRotationOptions& options) {
  UniqueFd live(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (live.get() < 0) {
    if (errno == ENOENT) return false;
    return ErrnoError("open " + path, errno);
  }
  struct stat st;
  if (::fstat(live.get(), &st) != 0) return ErrnoError("stat " + path, errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size <= options.max_bytes) return false;

  if (options.keep > 0) {
    std::string oldest = path + "." + std::to_string(options.keep);
    if (::unlink(oldest.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError("remove " + oldest, errno);
    }
    for (const auto& [from, to] : RotationRenames(path, options.keep)) {
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        return ErrnoError("rename " + from, errno);
      }
    }
    // Copy what is there now, including anything appended since fstat.
    if (::fstat(live.get(), &st) != 0) return ErrnoError("stat " + path, errno);
    TURNOUT_RETURN_IF_ERROR(CopyPrefix(live.get(), static_cast<uint64_t>(st.st_size), path + ".1"));
  }
  if (::ftruncate(live.get(), 0) != 0) return ErrnoError("truncate " + path, errno);
  return true;
}

}  // namespace turnout::platform
