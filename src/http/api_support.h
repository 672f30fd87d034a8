// What the servers of turnout's JSON APIs share (the router's admin API and turnoutd's API):
// the HTTP status for an error Status, and the bearer-token check.
// Thread-safety: pure functions.

#pragma once

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

}  // namespace turnout::http
