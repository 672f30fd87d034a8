#include "http/api_support.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace turnout::http {
namespace {

// Fills `addr` for `path`; false when the path does not fit.
bool UnixAddress(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

}  // namespace

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  const std::string expected = "Bearer " + std::string(token);
  unsigned char diff = authorization.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < authorization.size(); ++i) {
    diff |= static_cast<unsigned char>(authorization[i] ^
                                       (i < expected.size() ? expected[i] : 0));
  }
  return diff == 0;
}

Result<UnixListener> ListenOnUnixSocket(const std::string& path, uint32_t mode,
                                        std::string_view what) {
  const std::string name(what);
  sockaddr_un addr{};
  if (path.empty()) return InvalidArgument(name + " path is empty");
  if (!UnixAddress(path, &addr)) {
    return InvalidArgument(name + " path is too long (" + std::to_string(path.size()) +
                           " bytes; Unix sockets allow at most " +
                           std::to_string(sizeof(addr.sun_path) - 1) +
                           "): choose a shorter path: " + path);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return AlreadyExists(name + " path " + path +
                           " exists and is not a socket; refusing to replace it");
    }
    // Whether a process still answers there: a refused connect means the file was left behind
    // by one that died, and it is safe to replace.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return ErrnoError("cannot check the existing " + name + " " + path, errno);
    const int connected =
        ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : errno;
    ::close(probe);
    if (connected == 0) {
      return AlreadyExists(name + " " + path +
                           " is in use: another process accepts connections on it (stop it "
                           "first, or use another socket path)");
    }
    if (connected != ECONNREFUSED) {
      return ErrnoError("cannot check the existing " + name + " " + path, connected);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError("cannot remove the stale " + name + " " + path, errno);
    }
  } else if (errno != ENOENT) {
    return ErrnoError("cannot inspect the " + name + " path " + path, errno);
  }

  UnixListener listener;
  listener.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener.fd < 0) return ErrnoError(name + " " + path + ": cannot open a socket", errno);
  auto fail = [&](std::string_view step, bool remove_file) {
    const int err = errno;
    ::close(listener.fd);
    if (remove_file) RemoveUnixSocketFile(path, listener);
    return ErrnoError(name + " " + path + ": cannot " + std::string(step), err);
  };
  if (::bind(listener.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail("bind", false);
  }
  if (::lstat(path.c_str(), &st) == 0) {
    listener.dev = st.st_dev;
    listener.ino = st.st_ino;
  }
  // The mode is set before listen(): until then every connect is refused, so no peer can get in
  // through the umask's wider mode in between.
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) return fail("set its mode", true);
  if (::listen(listener.fd, SOMAXCONN) != 0) return fail("listen", true);
  return listener;
}

void RemoveUnixSocketFile(const std::string& path, const UnixListener& listener) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == listener.dev &&
      st.st_ino == listener.ino) {
    ::unlink(path.c_str());
  }
}

}  // namespace turnout::http
