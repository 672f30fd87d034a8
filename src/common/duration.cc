#include "common/duration.h"

#include <charconv>
#include <cstdint>

namespace turnout {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  using std::chrono::milliseconds;
  if (text == "0") return milliseconds(0);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  int64_t value = 0;
  // Nine digits keep every unit far from overflowing int64 milliseconds.
  bool ok = digits > 0 && digits <= 9 &&
            std::from_chars(text.data(), text.data() + digits, value).ec == std::errc();
  std::string_view unit = text.substr(digits);
  if (ok) {
    if (unit == "ms") return milliseconds(value);
    if (unit == "s") return milliseconds(value * 1000);
    if (unit == "m") return milliseconds(value * 60'000);
    if (unit == "h") return milliseconds(value * 3'600'000);
  }
  return InvalidArgument("'" + std::string(text) +
                         "' is not a duration; expected e.g. 500ms, 2s, 5m or 1h");
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms == 0) return "0";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace turnout
