// What the servers of turnout's JSON APIs share (the router's admin API and turnoutd's API):
// the HTTP status for an error Status, the bearer-token check, and the listening Unix socket.
// Thread-safety: pure functions (ListenOnUnixSocket/RemoveUnixSocketFile touch only `path`).

#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::http {

// 200 for OK; InvalidArgument 400, NotFound 404, AlreadyExists/FailedPrecondition/Aborted 409,
// Unavailable 503, DeadlineExceeded 504, IoError/Internal 500.
int HttpStatusFor(StatusCode code);

// True when `authorization` (the header's value) is exactly "Bearer <token>". The comparison
// takes the same time wherever the first difference is, so a client cannot find the token byte
// by byte by timing; only the length may show.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

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
