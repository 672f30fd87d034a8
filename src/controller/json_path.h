// A small JSON path lookup for smoke checks: dotted object keys and [index] array subscripts,
// e.g. "data.items[0].id" or "[2].name". Keys cannot contain '.', '[' or ']'.
// Pure functions; thread-safe; never throw.

#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::controller {

// InvalidArgument (naming the path) when the path is empty or malformed ("a..b", "a[x]", "a[").
Status ValidateJsonPath(std::string_view path);

// The value at `path` in `doc`, or nullopt when a key or index is missing or the path is
// malformed.
std::optional<nlohmann::json> LookupJsonPath(const nlohmann::json& doc, std::string_view path);

// How a smoke check compares a value: a string's contents, anything else as JSON writes it
// (42, 1.5, true, null, {"a":1}).
std::string JsonValueText(const nlohmann::json& value);

}  // namespace turnout::controller
