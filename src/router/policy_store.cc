#include "router/policy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

#include "common/file_util.h"

namespace turnout::router {

namespace {

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
  // The file holds the override secret: owner-only.
  return WriteFileAtomically(path, PolicyToJson(policy, /*include_secret=*/true) + "\n", 0600);
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
