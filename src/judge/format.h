// Small formatters for the judge's human sentences (internal to src/judge).

#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "judge/rule.h"

namespace turnout::judge {

// 1234567 -> "1,234,567".
std::string FormatCount(uint64_t n);
// A fraction as a percentage with up to 4 significant digits: 0.098 -> "9.8%", 0.05 -> "5%".
std::string FormatPercent(double fraction);
// Microseconds in the largest unit that keeps the value >= 1: "850us", "450ms", "2.1s".
std::string FormatLatencyUs(double us);
// A value in the unit of `s` (percent, latency or "/s").
std::string FormatStatistic(Statistic s, double value);
// A plain number with up to 4 significant digits ("1.5", "90", "0.0123").
std::string FormatNumber(double v);
// A duration as written in rules: "2m", "30s", "1500ms", "0".
std::string FormatFor(std::chrono::milliseconds d);

}  // namespace turnout::judge
