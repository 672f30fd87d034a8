#include "judge/format.h"

#include <cmath>
#include <cstdio>

#include "common/duration.h"

namespace turnout::judge {

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string FormatNumber(double v) {
  if (!std::isfinite(v)) return v != v ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction)) return FormatNumber(fraction);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g%%", fraction * 100);
  return buf;
}

std::string FormatLatencyUs(double us) {
  if (!std::isfinite(us)) return FormatNumber(us);
  char buf[64];
  if (us >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.4gs", us / 1e6);
  } else if (us >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.4gms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.4gus", us);
  }
  return buf;
}

std::string FormatStatistic(Statistic s, double value) {
  if (s == Statistic::kErrorRate) return FormatPercent(value);
  if (s == Statistic::kRequestRate) return FormatNumber(value) + "/s";
  return FormatLatencyUs(value);
}

std::string FormatFor(std::chrono::milliseconds d) { return FormatDuration(d); }

}  // namespace turnout::judge
