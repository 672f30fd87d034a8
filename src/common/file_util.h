// Small file helpers shared by everything that persists state outside a database.

#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

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

// The directory part of `path` ("." for a bare file name).
std::string DirectoryOf(const std::string& path);

}  // namespace turnout
