#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>

namespace turnout {
namespace {

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadFileToString(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("cannot read " + std::string(what) + " " + path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return ErrnoError("cannot read " + std::string(what) + " " + path, errno);
  return text.str();
}

Result<std::string> ReadSmallRegularFile(const std::string& path, std::string_view what,
                                         size_t max_bytes) {
  const std::string name = std::string(what) + " " + path;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return ErrnoError("cannot read " + name, errno);
  struct stat st {};
  std::string out;
  Status status = Status::Ok();
  if (::fstat(fd, &st) != 0) {
    status = ErrnoError("cannot read " + name, errno);
  } else if (!S_ISREG(st.st_mode)) {
    status = InvalidArgument(name + " is not a regular file");
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    status = InvalidArgument(name + " is larger than " + std::to_string(max_bytes) + " bytes");
  } else {
    out.resize(max_bytes + 1);  // one more: a file that grew since fstat is refused too
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = ErrnoError("cannot read " + name, errno);
        break;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    if (status.ok() && got > max_bytes) {
      status = InvalidArgument(name + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return out;
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode) {
  static std::atomic<uint64_t> counter{0};
  // Unique per process and call, so concurrent writers never share a temporary file; a crash
  // leaves at most a stray "<path>.tmp.*" that readers never look at.
  std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("cannot create " + tmp, errno);
  Status status = WriteAll(fd, content, tmp);
  // open() applies the umask; the file must carry exactly `mode` (secrets live in some).
  if (status.ok() && ::fchmod(fd, mode) != 0) status = ErrnoError("cannot chmod " + tmp, errno);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError("cannot fsync " + tmp, errno);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("cannot close " + tmp, errno);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError("cannot rename " + tmp + " to " + path, errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  std::string dir = DirectoryOf(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError("cannot open directory " + dir, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return ErrnoError("cannot fsync directory " + dir, err);
  return Status::Ok();
}

}  // namespace turnout
