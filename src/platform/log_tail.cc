#include "platform/log_tail.h"

#include <algorithm>
#include <fstream>
#include <iterator>

namespace turnout::platform {

std::string LastLines(std::string_view text, size_t max_lines) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (max_lines == 0) return "";
  size_t start = text.size();
  size_t lines = 0;
  while (start > 0) {
    const size_t nl = text.rfind('\n', start - 1);
    if (nl == std::string_view::npos) {
      start = 0;
      break;
    }
    if (++lines == max_lines) {
      start = nl + 1;
      break;
    }
    start = nl;
  }
  return std::string(text.substr(start));
}

std::string TailOfText(std::string_view text, size_t max_lines, size_t max_bytes) {
  if (text.size() > max_bytes) {
    text.remove_prefix(text.size() - max_bytes);
    // The first line was cut by the byte limit: drop it when a whole one follows.
    const size_t nl = text.find('\n');
    if (nl != std::string_view::npos && nl + 1 < text.size()) text.remove_prefix(nl + 1);
  }
  return LastLines(text, max_lines);
}

std::string ReadLogTail(const std::string& path, size_t max_lines, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size <= 0) return "";
  // One byte more than the limit, so that TailOfText sees whether the first line was cut.
  const std::streamoff start =
      std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes) - 1);
  in.seekg(start);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return TailOfText(data, max_lines, max_bytes);
}

std::string HideValues(std::string text, const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    if (v.size() < 4) continue;
    for (size_t at = text.find(v); at != std::string::npos; at = text.find(v, at)) {
      text.replace(at, v.size(), "[hidden]");
      at += 8;
    }
  }
  return text;
}

}  // namespace turnout::platform
