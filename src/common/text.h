// Small text helpers shared by every module (one copy each).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout {

// RFC 9110 tchar: ALPHA / DIGIT / one of !#$%&'*+-.^_`|~
bool IsTokenChar(char c);
// A non-empty RFC 9110 token (an HTTP method, a header or cookie name): only tchar.
bool IsToken(std::string_view s);

// A variable name a shell and turnout accept in an environment: [A-Za-z_][A-Za-z0-9_]*.
bool IsEnvName(std::string_view s);
// An IsEnvName a user may set: not TURNOUT_*, which turnout sets for each instance itself.
bool IsUserEnvName(std::string_view s);

// ASCII case-insensitive comparisons (HTTP header names, schemes); other bytes compare exactly.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);

// `s` without leading and trailing spaces, tabs, CR and LF.
std::string_view Trim(std::string_view s);

// `text` with each control character written as an escape (\n, \r, \t, \xNN; DEL is \x7f), so
// that text quoted from a file or a peer stays on its line and cannot drive a terminal. Other
// bytes, UTF-8 included, are kept.
std::string EscapeControl(std::string_view text);

// A whole number in decimal digits (an optional leading '-'; no '+', space, fraction or
// exponent) from `min` to `max`. InvalidArgument: "expected a whole number from MIN to MAX, got
// 'TEXT'" (callers add what the number is for).
Result<int64_t> ParseWholeNumber(std::string_view text, int64_t min, int64_t max);

// A size: `512m`, `1g`, `65536k`, `100mb` or a plain number of bytes (k/m/g: powers of 1024,
// either case; a trailing `b` is allowed). Zero and overflow are refused (nullopt).
std::optional<int64_t> ParseByteSize(std::string_view text);

// "512 B", "1.5 MiB": sizes for progress lines and listings (units of 1024).
std::string HumanBytes(uint64_t bytes);

}  // namespace turnout
