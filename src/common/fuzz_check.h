// What the libFuzzer targets (the *_fuzz.cc files) share: a check that stops the run with the
// broken invariant named (libFuzzer saves the input as a finding), and the "view lies inside
// this buffer" test the parsers' targets need. For fuzz targets only; the product reports
// errors as values (common/status.h).

#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace turnout::fuzz {

// Prints "invariant broken: <what>" and aborts when `condition` is false.
inline void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// True when `view` is empty or lies within `buffer`.
inline bool Inside(std::string_view view, std::string_view buffer) {
  if (view.empty()) return true;
  return view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size();
}

}  // namespace turnout::fuzz
