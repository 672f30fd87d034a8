// Small file helpers shared by everything that persists state outside a database.

#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout {

// Replaces `path` with `content` so that a crash at any moment leaves either the old file or the
// new one, never a mix: writes a uniquely named temporary file beside it with `mode`, fsyncs it,
// renames it over `path`, then fsyncs the directory so the rename itself is durable. Safe to call
// from several threads and processes at once (the last rename wins). On error the temporary file
// is removed and `path` is untouched.
Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode = 0600);

// The whole content of the file at `path`. IoError "cannot read <what> <path>: <reason>".
Result<std::string> ReadFileToString(const std::string& path, std::string_view what = "file");

// The content of a regular file of at most `max_bytes` that the user named (an env file, a
// page): never a device, a FIFO or a directory, and never more than that read. InvalidArgument
// "<what> <path> is not a regular file" / "... is larger than N bytes"; IoError when it cannot be
// read.
Result<std::string> ReadSmallRegularFile(const std::string& path, std::string_view what,
                                         size_t max_bytes);

// The directory part of `path` ("." for a bare file name).
std::string DirectoryOf(const std::string& path);

}  // namespace turnout
