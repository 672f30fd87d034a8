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

namespace {

// The whole of a small file. NotFound (saying `what`) when it does not exist; InvalidArgument
// when it is over 1 MiB (a policy or a secret is a few hundred bytes: anything huge is not ours).
Result<std::string> ReadSmallFile(const std::string& path, std::string_view what) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFound("no " + std::string(what) + " at " + path);
    return ErrnoError("cannot open " + path, errno);
  }
  constexpr size_t kMaxBytes = 1 << 20;
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
    if (data.size() > kMaxBytes) {
      return InvalidArgument(path + ": larger than 1 MiB, not a " + std::string(what));
    }
  }
  return data;
}

}  // namespace

Result<RoutingPolicy> LoadPolicy(const std::string& path) {
  TURNOUT_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path, "saved policy"));
  Result<RoutingPolicy> policy = ParsePolicyJson(data);
  if (!policy.ok()) {
    return InvalidArgument(path + ": not a valid saved policy (" + policy.status().message() +
                           "); fix or delete the file");
  }
  return policy;
}

Status SaveOverrideSecret(const std::string& path, std::string_view secret) {
  if (path.empty()) return InvalidArgument("the override secret file path is empty");
  return WriteFileAtomically(path, std::string(secret) + "\n", 0600);
}

Result<std::string> LoadOverrideSecret(const std::string& path) {
  TURNOUT_ASSIGN_OR_RETURN(std::string secret, ReadSmallFile(path, "override secret file"));
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  bool visible = !secret.empty();
  for (char ch : secret) visible = visible && ch > 0x20 && ch < 0x7f;
  if (!visible) {
    return InvalidArgument("override secret file " + path +
                           ": expected visible ASCII characters without spaces; fix or delete it "
                           "(a new secret is then generated)");
  }
  return secret;
}

}  // namespace turnout::router
