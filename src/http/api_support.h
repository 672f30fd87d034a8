// What the servers of turnout's JSON APIs share (the router's admin API and turnoutd's API):
// the HTTP status for an error Status, the one check every request passes before any endpoint
// sees it (CheckApiRequest), and the listening Unix socket.
// Thread-safety: pure functions (ListenOnUnixSocket/RemoveUnixSocketFile touch only `path`).

#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/parser.h"

namespace turnout::http {

// 200 for OK; InvalidArgument 400, NotFound 404, AlreadyExists/FailedPrecondition/Aborted 409,
// Unavailable 503, DeadlineExceeded 504, IoError/Internal 500.
int HttpStatusFor(StatusCode code);

// True when `authorization` (the header's value) is "Bearer <token>": the auth-scheme compared
// case-insensitively (RFC 9110 §11.1: "bearer" and "BEARER" are the same scheme), then one or
// more spaces, then exactly the token. The token comparison takes the same time wherever the
// first difference is, so a client cannot find the token byte by byte by timing; only the
// length may show.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

// POST, PUT, PATCH and DELETE: the methods that change something, which must carry
// `Content-Type: application/json`.
bool IsMutatingMethod(std::string_view method);

// True when a Content-Type value names application/json (case-insensitive, parameters such as
// "; charset=utf-8" allowed).
bool IsJsonContentType(std::string_view content_type);

// The Host values (lowercase "host:port") a TCP listener bound at `bound` answers to: `bound`
// itself; for a loopback or unspecified (0.0.0.0, [::]) bind also localhost:PORT,
// 127.0.0.1:PORT and [::1]:PORT; and each of `names` (a "name" gets the bound port, a
// "name:port" is taken as is). With port 80 each is also accepted without the port.
std::vector<std::string> OwnHostsFor(std::string_view bound, const std::vector<std::string>& names);

// Who may call an API, as its server knows it.
struct ApiAccess {
  // Required as `Authorization: Bearer <token>` when non-empty.
  std::string token;
  // A Unix socket: no browser reaches it, so Host is not checked, and an Origin (there is no own
  // origin on a socket file) is refused.
  bool unix_socket = false;
  // On TCP: the accepted Host values (OwnHostsFor); the own origins are "http://" + each.
  std::vector<std::string> hosts;
};

// The parts of a request the check reads: header values, empty when the header is absent.
struct ApiRequestHeaders {
  std::string_view method;
  std::string_view authorization;
  std::string_view content_type;
  std::string_view origin;
  std::string_view host;
};

// The checked header values copied out of a parsed head (whose views die with its buffer).
struct ApiCheckedHeaders {
  std::string authorization;
  std::string content_type;
  std::string origin;
  std::string host;

  static ApiCheckedHeaders From(const MessageHeaders& headers);
  // Views into this object for CheckApiRequest.
  ApiRequestHeaders For(std::string_view method) const {
    return {method, authorization, content_type, origin, host};
  }
};

// Why a request was refused; the reply to send.
struct ApiRefusal {
  int status = 0;
  std::string message;        // says what to do
  std::string extra_headers;  // complete "Name: value\r\n" lines (WWW-Authenticate for 401)
};

// The one check of both JSON APIs, in this order (the first failure is the answer):
//   421 on TCP, a Host that is not one of `access.hosts` (or none): a DNS-rebound name;
//   403 an Origin that is not the API's own ("http://" + an accepted Host; none on a socket):
//       a cross-site request from a web page;
//   401 a token is configured and the bearer token is missing or wrong (WWW-Authenticate:
//       Bearer);
//   415 a mutating method (IsMutatingMethod) without Content-Type: application/json.
// `/healthz` is the caller's to exempt. Returns nullopt when the request may proceed.
std::optional<ApiRefusal> CheckApiRequest(const ApiAccess& access,
                                          const ApiRequestHeaders& request);

// A listening Unix stream socket and the file it created.
struct UnixListener {
  int fd = -1;  // owned by the caller (hand it to an acceptor, or close it)
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens on a Unix stream socket at `path` whose file has exactly `mode` (e.g. 0600)
// from the moment anyone can connect: the mode is set between bind() and listen(), and until
// listen() every connect is refused. A socket file already at `path` is replaced only when
// nothing accepts connections on it (left behind by a process that died); a live one is
// AlreadyExists ("<what> <path> is in use: ..."), anything but a socket there is
// AlreadyExists too and is never touched. A path that does not fit sun_path is InvalidArgument;
// socket/bind/chmod/listen failures are IoError. `what` names the socket in messages ("API
// socket", "admin socket"). On failure nothing is left at `path` that was not there before.
Result<UnixListener> ListenOnUnixSocket(const std::string& path, uint32_t mode,
                                        std::string_view what);

// Removes the socket file at `path` when it is still the one `listener` created (same device
// and inode), so that a file another process put there since is never removed. Does not close
// the descriptor.
void RemoveUnixSocketFile(const std::string& path, const UnixListener& listener);

}  // namespace turnout::http
