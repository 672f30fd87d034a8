// Copy-truncate log rotation for instance log files.
//
// The app holds its log file open with O_APPEND (it got the descriptor as stdout/stderr and
// cannot be told to reopen), so the file cannot be renamed away: the app would keep writing
// into the renamed file. Instead, once the file is larger than max_bytes, its content is copied
// to <path>.1 (older copies move up: .1 -> .2 ... and the one beyond .keep is deleted) and the
// file is truncated to 0; O_APPEND writers then continue at the new end. Lines written between
// the copy and the truncation are lost; that window is the price of not owning the writer.
//
// Not thread-safe for the same path: one rotator (the supervisor's thread) per file.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace turnout::platform {

struct LogRotationOptions {
  uint64_t max_bytes = 10 * 1024 * 1024;  // Default: 10 MiB; rotate when the file is larger
  int keep = 5;                           // Default: 5 old files (.1 .. .5); 0 = just truncate
};

// The renames a rotation does, oldest first: {"<path>.4" -> "<path>.5", ..., "<path>.1" ->
// "<path>.2"}; <path>.<keep> is removed before them. Pure.
std::vector<std::pair<std::string, std::string>> RotationRenames(const std::string& path, int keep);

// Rotates `path` when it is larger than options.max_bytes. Returns whether it rotated. A
// missing file is not an error (false). IoError when a copy, rename or truncate failed; the
// live file is truncated only after its copy was written completely.
Result<bool> RotateLogIfNeeded(const std::string& path, const LogRotationOptions& options);

}  // namespace turnout::platform
