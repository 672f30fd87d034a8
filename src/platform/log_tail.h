// The end of a log or of a command's output, for error messages and `turnout logs`.
//
// Thread-safety: pure functions (ReadLogTail reads a file).

#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::platform {

// The last `max_lines` lines of `text`, without the trailing newline(s).
std::string LastLines(std::string_view text, size_t max_lines);

// The last `max_lines` lines of `text`, keeping at most its last `max_bytes` (a line cut by that
// limit is dropped, unless it is the only one), without the trailing newline(s). For output
// that arrives as text (a container's logs from its engine).
std::string TailOfText(std::string_view text, size_t max_lines, size_t max_bytes);

// The last `max_lines` lines of the file at `path`, reading at most its last `max_bytes` (a
// line cut by that limit is dropped, unless it is the only one), without the trailing newline.
// "" when the file is missing, unreadable or empty.
std::string ReadLogTail(const std::string& path, size_t max_lines, size_t max_bytes);

// `text` with every occurrence of each of `values` (e.g. the values of the environment an
// instance was given, which may hold passwords and tokens) replaced by "[hidden]". Values
// shorter than 4 characters are left alone: they would hide ordinary words and numbers.
std::string HideValues(std::string text, const std::vector<std::string>& values);

}  // namespace turnout::platform
