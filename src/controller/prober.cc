#include "controller/prober.h"

#include <algorithm>
#include <cctype>

namespace turnout::controller {

std::string ProbeResponse::Header(std::string_view name) const {
  auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  };
  for (const auto& [n, v] : headers) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), same)) return v;
  }
  return "";
}

}  // namespace turnout::controller
