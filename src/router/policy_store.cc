#include "router/policy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

namespace turnout::router {

namespace {

// Writes all of `data`, retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes the descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the error (close can report a deferred write failure).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

}  // namespace

Status SavePolicy(const std::string& path, const RoutingPolicy& policy) {
  if (path.empty()) return InvalidArgument("the policy state file path is empty");
  const std::string tmp = path + ".tmp";
  const std::string json = PolicyToJson(policy, /*include_secret=*/true) + "\n";
  {
    // O_TRUNC: a .tmp left by a crash is simply overwritten.
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return ErrnoError("cannot create " + tmp, errno);
    // The mode given to open() only applies to a new file; a leftover .tmp may be wider.
    if (::fchmod(fd.get(), 0600) != 0) return ErrnoError("cannot chmod " + tmp, errno);
    TURNOUT_RETURN_IF_ERROR(WriteAll(fd.get(), json, tmp));
    if (::fsync(fd.get()) != 0) return ErrnoError("cannot fsync " + tmp, errno);
    if (fd.Close() != 0) return ErrnoError("cannot close " + tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoError("cannot rename " + tmp + " to " + path, errno);
  }
  // The rename is durable only once the directory entry is on disk.
  const std::string dir = DirectoryOf(path);
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return ErrnoError("cannot open directory " + dir, errno);
  if (::fsync(dir_fd.get()) != 0) return ErrnoError("cannot fsync directory " + dir, errno);
  return Status::Ok();
}

Result<RoutingPolicy> LoadPolicy(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFound("no saved policy at " + path);
    return ErrnoError("cannot open " + path, errno);
  }
  // A policy is a few hundred bytes; anything huge is not ours.
  constexpr size_t kMaxPolicyBytes = 1 << 20;
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read " + path, errno);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxPolicyBytes) {
      return InvalidArgument(path + ": larger than 1 MiB, not a saved policy");
    }
  }
  Result<RoutingPolicy> policy = ParsePolicyJson(data);
  if (!policy.ok()) {
    return InvalidArgument(path + ": not a valid saved policy (" + policy.status().message() +
                           "); fix or delete the file");
  }
  return policy;
}

}  // namespace turnout::router
