// Request-target decoding for the API server (internal to src/api; exposed for its tests).
//
// Thread-safety: pure functions.

#pragma once

#include <string>
#include <string_view>

#include "api/api.h"
#include "common/status.h"

namespace turnout::api {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). Fails with InvalidArgument on a
// '%' not followed by two hex digits and on an encoded NUL (no API value may contain one).
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);

// Fills out->path and out->query from an origin-form target ("/p?a=1&b"). Empty query pieces
// ("a=1&&b") are skipped. Fails with InvalidArgument when the target does not start with '/' or
// an escape is malformed.
Status DecodeTarget(std::string_view target, Request* out);

}  // namespace turnout::api
