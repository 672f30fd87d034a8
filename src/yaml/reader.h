// The one strict reader of turnout's YAML files (turnout.yaml, the router's --config file, a
// Compose file being imported).
//
// yaml::Parse turns text into a yaml-cpp tree, with a syntax error named by file and line.
// yaml::Reader reads typed values out of that tree and **collects** every problem, so that one
// run reports every mistake in a file, each as
//
//     FILE:LINE: PATH: expected WHAT, got VALUE
//     FILE:LINE: PATH: unknown key (known keys of PATH: a, b, c)
//
// A method that refuses a value records the problem and returns nullopt; the caller keeps its
// default and goes on. Messages have control characters escaped (a file's bytes never reach a
// terminal raw), and after 50 problems the rest are only counted.
//
// Not thread-safe: one Reader per file being read.

#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::yaml {

using Millis = std::chrono::milliseconds;

// What a value must look like, said the same way in every file.
inline constexpr std::string_view kDurationExpected = "a duration like 500ms or 2s";

// Parses `text`. A syntax error is InvalidArgument "FILE:LINE: not valid YAML: WHY"; anything
// else yaml-cpp or the standard library throws (bad_alloc on absurd input) is InvalidArgument
// "FILE: cannot be read: WHY".
Result<YAML::Node> Parse(std::string_view text, std::string_view file);

// How a node is named in a message: "nothing", "a list", "a mapping", or the scalar in quotes.
std::string Describe(const YAML::Node& node);

// "a.b" from ("a", "b"); just the key when the path is empty.
std::string Join(std::string_view path, std::string_view key);

class Reader {
 public:
  explicit Reader(std::string_view file);

  // "FILE:LINE: " of a node, "FILE: " when it has no position. An empty value ("key:") is placed
  // by yaml-cpp on the next line; inside ForEach the key's line is named instead. `fallback`
  // gives the position when `node` has none (a key that is missing from its mapping).
  std::string Where(const YAML::Node& node, const YAML::Node& fallback = YAML::Node()) const;

  // Records "WHERE PATH: expected EXPECTED, got DESCRIBE(node)".
  void Expected(const YAML::Node& node, std::string_view path, std::string_view expected);
  // Records "WHERE PATH: WHAT".
  void Problem(const YAML::Node& node, std::string_view path, std::string_view what);
  // Records a message as it is (a cross-field check that already names its place).
  void Add(std::string message);

  bool HasErrors() const { return !errors_.empty(); }
  // The problems, one per line, in the order found.
  std::string Message() const;
  // Ok, or InvalidArgument(Message()).
  Status ToStatus() const;

  // Calls fn(key, value, full path) for every key of the mapping `map` that is in `allowed`;
  // unknown and repeated keys are recorded and skipped. False (recorded) when `map` is not a
  // mapping.
  bool ForEach(
      const YAML::Node& map, std::string_view path, std::initializer_list<std::string_view> allowed,
      const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& fn);

  std::optional<std::string> String(const YAML::Node& node, std::string_view path);
  // A string that must not be empty; `expected` says what it should be.
  std::optional<std::string> NonEmpty(const YAML::Node& node, std::string_view path,
                                      std::string_view expected);
  // A decimal integer in [min, max] (min >= 0). `expected` defaults to
  // "an integer from MIN to MAX".
  std::optional<int64_t> Int(const YAML::Node& node, std::string_view path, int64_t min,
                             int64_t max, std::string_view expected = {});
  std::optional<bool> Bool(const YAML::Node& node, std::string_view path);
  // "500ms", "2s", "1m", "1h" (common/duration.h); zero only when `allow_zero`.
  std::optional<Millis> Duration(const YAML::Node& node, std::string_view path, bool allow_zero);
  // A list of strings, or (when `allow_single`) one string; each with its node, for messages
  // about one item. A refused item is recorded and left out.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> Strings(const YAML::Node& node,
                                                                         std::string_view path,
                                                                         bool allow_single = true);
  // A mapping of names to string values, in file order; `key_ok` says which names are valid and
  // `key_expected` how to say so.
  std::optional<std::vector<std::pair<std::string, std::string>>> StringMap(
      const YAML::Node& node, std::string_view path,
      const std::function<bool(const std::string&)>& key_ok, std::string_view key_expected);

 private:
  std::string file_;
  YAML::Mark value_key_mark_ = YAML::Mark::null_mark();
  std::vector<std::string> errors_;
  size_t dropped_ = 0;
};

}  // namespace turnout::yaml
