// Durations as people write them in flags and config files: "500ms", "2s", "5m", "1h", or "0".

#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout {

// Digits (at most nine) followed by one unit: ms, s, m or h; a bare "0" is zero. No sign,
// fraction or space. The error names the text and shows the expected form.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest exact form ParseDuration reads back: "1500ms", "2s", "5m", "1h", "0".
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace turnout
