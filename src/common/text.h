// Small text helpers shared by every module (one copy each).

#pragma once

#include <string_view>

namespace turnout {

// RFC 9110 tchar: ALPHA / DIGIT / one of !#$%&'*+-.^_`|~
bool IsTokenChar(char c);
// A non-empty RFC 9110 token (an HTTP method, a header or cookie name): only tchar.
bool IsToken(std::string_view s);

// `s` without leading and trailing spaces, tabs, CR and LF.
std::string_view Trim(std::string_view s);

}  // namespace turnout
