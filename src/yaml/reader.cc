#include "yaml/reader.h"

#include <algorithm>
#include <exception>
#include <set>

#include "common/duration.h"
#include "common/text.h"

namespace turnout::yaml {
namespace {

constexpr size_t kMaxErrors = 50;

std::string JoinList(std::initializer_list<std::string_view> items) {
  std::string out;
  for (auto item : items) out += (out.empty() ? "" : ", ") + std::string(item);
  return out;
}

}  // namespace

Result<YAML::Node> Parse(std::string_view text, std::string_view file) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp stops at the first syntax error and knows where it is.
    std::string where =
        std::string(file) + (e.mark.is_null() ? "" : ":" + std::to_string(e.mark.line + 1));
    return InvalidArgument(where + ": not valid YAML: " + EscapeControl(e.msg));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(file) + ": cannot be read: " + EscapeControl(e.what()));
  }
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
  }
  return "something else";
}

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

Reader::Reader(std::string_view file) : file_(file) {}

std::string Reader::Where(const YAML::Node& node, const YAML::Node& fallback) const {
  YAML::Mark mark = node.IsDefined() ? node.Mark() : YAML::Mark::null_mark();
  if (node.IsDefined() && node.IsNull() && !value_key_mark_.is_null()) mark = value_key_mark_;
  if (mark.is_null() && fallback.IsDefined()) mark = fallback.Mark();
  if (mark.is_null()) return file_ + ": ";
  return file_ + ":" + std::to_string(mark.line + 1) + ": ";
}

void Reader::Expected(const YAML::Node& node, std::string_view path, std::string_view expected) {
  Add(Where(node) + std::string(path) + ": expected " + std::string(expected) + ", got " +
      Describe(node));
}

void Reader::Problem(const YAML::Node& node, std::string_view path, std::string_view what) {
  Add(Where(node) + std::string(path) + ": " + std::string(what));
}

void Reader::Add(std::string message) {
  if (errors_.size() >= kMaxErrors) {
    ++dropped_;
    return;
  }
  errors_.push_back(EscapeControl(message));
}

std::string Reader::Message() const {
  std::string out;
  for (const auto& e : errors_) out += (out.empty() ? "" : "\n") + e;
  if (dropped_ > 0) out += "\n(" + std::to_string(dropped_) + " more problems not shown)";
  return out;
}

Status Reader::ToStatus() const { return HasErrors() ? InvalidArgument(Message()) : Status::Ok(); }

bool Reader::ForEach(
    const YAML::Node& map, std::string_view path, std::initializer_list<std::string_view> allowed,
    const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& fn) {
  if (!map.IsMap()) {
    Expected(map, path.empty() ? "(top level)" : path, "a mapping");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    const std::string full = Join(path, key);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Problem(kv.first, full,
              "unknown key (known keys" + (path.empty() ? "" : " of " + std::string(path)) + ": " +
                  JoinList(allowed) + ")");
      continue;
    }
    if (!seen.insert(key).second) {
      Problem(kv.first, full, "key appears twice");
      continue;
    }
    const YAML::Mark outer = value_key_mark_;
    value_key_mark_ = kv.first.Mark();
    fn(key, kv.second, full);
    value_key_mark_ = outer;
  }
  return true;
}

std::optional<std::string> Reader::String(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) {
    Expected(node, path, "a string");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> Reader::NonEmpty(const YAML::Node& node, std::string_view path,
                                            std::string_view expected) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    Expected(node, path, expected);
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<int64_t> Reader::Int(const YAML::Node& node, std::string_view path, int64_t min,
                                   int64_t max, std::string_view expected) {
  Result<int64_t> v = node.IsScalar()
                          ? ParseWholeNumber(node.Scalar(), std::max<int64_t>(min, 0), max)
                          : Result<int64_t>(InvalidArgument("not a scalar"));
  if (!v.ok()) {
    if (expected.empty()) {
      Expected(node, path, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    } else {
      Expected(node, path, expected);
    }
    return std::nullopt;
  }
  return *v;
}

std::optional<bool> Reader::Bool(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
    return node.Scalar() == "true";
  }
  Expected(node, path, "true or false");
  return std::nullopt;
}

std::optional<Millis> Reader::Duration(const YAML::Node& node, std::string_view path,
                                       bool allow_zero) {
  Result<Millis> d = node.IsScalar() ? ParseDuration(node.Scalar())
                                     : Result<Millis>(InvalidArgument("not a scalar"));
  if (!d.ok()) {
    Expected(node, path, kDurationExpected);
    return std::nullopt;
  }
  if (!allow_zero && d->count() == 0) {
    Expected(node, path, "a duration above zero");
    return std::nullopt;
  }
  return *d;
}

std::optional<std::vector<std::pair<std::string, YAML::Node>>> Reader::Strings(
    const YAML::Node& node, std::string_view path, bool allow_single) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  if (allow_single && node.IsScalar()) {
    out.emplace_back(node.Scalar(), node);
    return out;
  }
  if (!node.IsSequence()) {
    Expected(node, path, allow_single ? "a string or a list of strings" : "a list of strings");
    return std::nullopt;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = String(node[i], std::string(path) + "[" + std::to_string(i) + "]");
    if (s) out.emplace_back(*s, node[i]);
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> Reader::StringMap(
    const YAML::Node& node, std::string_view path,
    const std::function<bool(const std::string&)>& key_ok, std::string_view key_expected) {
  if (!node.IsMap()) {
    Expected(node, path, "a mapping of names to values");
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    const std::string full = Join(path, key);
    if (!key_ok(key)) {
      Expected(kv.first, path, key_expected);
      continue;
    }
    if (!seen.insert(key).second) {
      Problem(kv.first, full, "key appears twice");
      continue;
    }
    auto v = String(kv.second, full);
    if (v) out.emplace_back(key, *v);
  }
  return out;
}

}  // namespace turnout::yaml
