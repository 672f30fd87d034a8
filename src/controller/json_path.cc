#include "controller/json_path.h"

#include <variant>
#include <vector>

namespace turnout::controller {
namespace {

using Segment = std::variant<std::string, size_t>;

std::optional<std::vector<Segment>> Parse(std::string_view path) {
  std::vector<Segment> out;
  size_t i = 0;
  bool expect_key = true;  // at the start or after '.'
  while (i < path.size()) {
    if (path[i] == '[') {
      const size_t close = path.find(']', i);
      if (close == std::string_view::npos || close == i + 1) return std::nullopt;
      size_t index = 0;
      for (size_t k = i + 1; k < close; ++k) {
        if (path[k] < '0' || path[k] > '9' || close - i - 1 > 9) return std::nullopt;
        index = index * 10 + static_cast<size_t>(path[k] - '0');
      }
      out.emplace_back(index);
      i = close + 1;
      expect_key = false;
      if (i < path.size() && path[i] == '.') {
        ++i;
        expect_key = true;
        if (i == path.size()) return std::nullopt;
      }
      continue;
    }
    if (!expect_key) return std::nullopt;  // "a[0]b"
    size_t end = i;
    while (end < path.size() && path[end] != '.' && path[end] != '[') {
      if (path[end] == ']') return std::nullopt;
      ++end;
    }
    if (end == i) return std::nullopt;  // "a..b", ".a"
    out.emplace_back(std::string(path.substr(i, end - i)));
    i = end;
    expect_key = false;
    if (i < path.size() && path[i] == '.') {
      ++i;
      expect_key = true;
      if (i == path.size()) return std::nullopt;  // "a."
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

Status ValidateJsonPath(std::string_view path) {
  if (!Parse(path)) return InvalidArgument("JSON path '" + std::string(path) + "' is malformed");
  return Status::Ok();
}

std::optional<nlohmann::json> LookupJsonPath(const nlohmann::json& doc, std::string_view path) {
  std::optional<std::vector<Segment>> segments = Parse(path);
  if (!segments) return std::nullopt;
  const nlohmann::json* cur = &doc;
  for (const Segment& s : *segments) {
    if (const auto* key = std::get_if<std::string>(&s)) {
      if (!cur->is_object()) return std::nullopt;
      auto it = cur->find(*key);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else {
      const size_t index = std::get<size_t>(s);
      if (!cur->is_array() || index >= cur->size()) return std::nullopt;
      cur = &(*cur)[index];
    }
  }
  return *cur;
}

std::string JsonValueText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

}  // namespace turnout::controller
