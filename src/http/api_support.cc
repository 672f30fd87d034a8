#include "http/api_support.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/secret.h"

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

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  constexpr std::string_view kScheme = "bearer";
  // The scheme and the separator are not secret; only the token is compared in constant time.
  if (authorization.size() <= kScheme.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  return SecretMatches(given, token);
}

bool IsMutatingMethod(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  return EqualsIgnoreCase(media, "application/json");
}

std::vector<std::string> OwnHostsFor(std::string_view bound,
                                     const std::vector<std::string>& names) {
  std::vector<std::string> hosts;
  const size_t colon = bound.rfind(':');
  const std::string host = Lowercase(bound.substr(0, colon == std::string_view::npos ? 0 : colon));
  const std::string port =
      colon == std::string_view::npos ? std::string() : std::string(bound.substr(colon + 1));
  auto add = [&](std::string h) {
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(std::move(h));
  };
  add(host + ":" + port);
  const bool loopback_or_any = host == "localhost" || host.starts_with("127.") || host == "[::1]" ||
                               host == "0.0.0.0" || host == "[::]";
  if (loopback_or_any) {
    for (const char* h : {"localhost", "127.0.0.1", "[::1]"}) add(std::string(h) + ":" + port);
  }
  for (const std::string& name : names) {
    const std::string n = Lowercase(name);
    // "[v6]" and "name" have no port; "name:9901" and "[v6]:9901" do.
    const size_t c = n.rfind(':');
    const bool has_port = c != std::string::npos && (n[0] != '[' || c > n.find(']'));
    add(has_port ? n : n + ":" + port);
  }
  if (port == "80") {
    const size_t n = hosts.size();
    for (size_t i = 0; i < n; ++i) {
      if (hosts[i].ends_with(":80")) add(hosts[i].substr(0, hosts[i].size() - 3));
    }
  }
  return hosts;
}

ApiCheckedHeaders ApiCheckedHeaders::From(const MessageHeaders& headers) {
  auto value = [&headers](std::string_view name) {
    const Header* h = headers.Find(name);
    return h ? std::string(h->value) : std::string();
  };
  return {value("Authorization"), value("Content-Type"), value("Origin"), value("Host")};
}

std::optional<ApiRefusal> CheckApiRequest(const ApiAccess& access,
                                          const ApiRequestHeaders& request) {
  auto accepted = [&](std::string_view value, std::string_view prefix) {
    const std::string v = Lowercase(value);
    for (const std::string& h : access.hosts) {
      if (v.size() == prefix.size() + h.size() && v.starts_with(prefix) &&
          std::string_view(v).substr(prefix.size()) == h) {
        return true;
      }
    }
    return false;
  };
  auto own = [&](std::string_view prefix) {
    std::string list;
    for (const std::string& h : access.hosts) {
      if (h.find(':') == std::string::npos && !h.starts_with('[')) continue;  // port-80 aliases
      list += (list.empty() ? "" : ", ") + std::string(prefix) + h;
    }
    return list;
  };
  if (!access.unix_socket && !accepted(request.host, "")) {
    return ApiRefusal{421,
                      "this API answers only to Host " + own("") +
                          " (a request for another name, as a DNS-rebinding page sends, is "
                          "refused): connect to one of those, or configure the name you use as "
                          "an allowed host",
                      ""};
  }
  if (!request.origin.empty()) {
    if (access.unix_socket) {
      return ApiRefusal{403,
                        "cross-site requests are refused: this API accepts no Origin header on "
                        "its Unix socket; call it from the turnout CLI or a script, not from a "
                        "web page",
                        ""};
    }
    if (!accepted(request.origin, "http://")) {
      return ApiRefusal{403,
                        "cross-site requests are refused: Origin " + std::string(request.origin) +
                            " is not this API's own (" + own("http://") +
                            "); call it from the turnout CLI or a script, not from a web page",
                        ""};
    }
  }
  if (!access.token.empty() && !BearerTokenMatches(request.authorization, access.token)) {
    return ApiRefusal{401,
                      request.authorization.empty()
                          ? "this API needs a token: send Authorization: Bearer <token> "
                            "(turnout: --token or TURNOUT_ADMIN_TOKEN)"
                          : "the token was refused; check --token / TURNOUT_ADMIN_TOKEN",
                      "WWW-Authenticate: Bearer\r\n"};
  }
  if (IsMutatingMethod(request.method) && !IsJsonContentType(request.content_type)) {
    return ApiRefusal{
        415,
        std::string(request.method) + " needs a JSON body: send Content-Type: application/json" +
            (request.content_type.empty() ? std::string(" (none was sent)")
                                          : " (got " + std::string(request.content_type) + ")"),
        "Accept-Post: application/json\r\n"};
  }
  return std::nullopt;
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
