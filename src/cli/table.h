// Column layout for the human output of the `turnout` commands.
//
// Every column is separated from the next by at least two spaces, whatever the cells hold: a
// long cell pushes the rest of its line to the right instead of running into the next column.
//
// Thread-safety: pure functions.

#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace turnout::cli {

// Left-aligned columns sized to their widest cell, two spaces apart, one line per row (each
// ending in '\n', trailing spaces trimmed). Rows may have different numbers of cells.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// `text` padded with spaces to `width`, and followed by at least two spaces: for lines printed
// one at a time (a live stream), where the widest cell is not known in advance.
std::string Column(std::string_view text, size_t width);

}  // namespace turnout::cli
