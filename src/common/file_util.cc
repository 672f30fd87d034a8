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
