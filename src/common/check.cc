#include "common/check.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace turnout::internal {

void CheckFailed(const char* file, int line, std::string_view condition, std::string_view message) {
  std::string text = "turnout: CHECK failed at " + std::string(file) + ":" + std::to_string(line) +
                     ": " + std::string(condition);
  if (!message.empty()) text += ": " + std::string(message);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace turnout::internal
