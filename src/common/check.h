// TURNOUT_CHECK and TURNOUT_DCHECK: stop the process when turnout's own invariant is broken.
//
// Only for our own bugs (a state the code never reaches when it is right), never for input:
// input that is wrong is an error value (common/status.h) that tells the user what to do.
//
//   TURNOUT_CHECK(slot < slots.size(), "slot index out of range");
//   TURNOUT_DCHECK(mu.is_locked_by_me(), "Publish needs mu");
//
// TURNOUT_CHECK is evaluated in every build: when `cond` is false it writes
// "turnout: CHECK failed at file:line: cond: message" to stderr and aborts (a core dump, not an
// exit code a supervisor could take for a normal stop). TURNOUT_DCHECK is the same in builds
// without NDEBUG (debug, sanitizers) and compiles to nothing in release builds: its condition is
// type-checked but never evaluated, so it may be costly and must have no side effects.

#pragma once

#include <string_view>

namespace turnout::internal {

// Writes the message described above and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, std::string_view condition,
                              std::string_view message);

}  // namespace turnout::internal

#define TURNOUT_CHECK(cond, message)                                          \
  do {                                                                        \
    if (!(cond)) [[unlikely]] {                                               \
      ::turnout::internal::CheckFailed(__FILE__, __LINE__, #cond, (message)); \
    }                                                                         \
  } while (0)

#ifdef NDEBUG
#define TURNOUT_DCHECK(cond, message)               \
  do {                                              \
    if (false) {                                    \
      static_cast<void>(cond);                      \
      static_cast<void>(std::string_view(message)); \
    }                                               \
  } while (0)
#else
#define TURNOUT_DCHECK(cond, message) TURNOUT_CHECK(cond, message)
#endif
