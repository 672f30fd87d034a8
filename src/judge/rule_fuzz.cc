// libFuzzer target for the rule parser. Aborts when an invariant breaks: a parsed rule with a
// value outside its unit's range, a result that changes when the same text is parsed again
// (with surrounding spaces), or an error message that does not name a column.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "judge/rule.h"

namespace turnout::judge {
namespace {

using turnout::fuzz::Check;

bool Same(const Expression& a, const Expression& b) {
  return a.kind == b.kind && a.statistic == b.statistic && a.op == b.op &&
         a.threshold == b.threshold && a.vs_baseline == b.vs_baseline &&
         a.baseline_factor == b.baseline_factor && a.name == b.name &&
         a.for_duration == b.for_duration && a.text == b.text;
}

void CheckExpression(const Expression& e) {
  Check(std::isfinite(e.threshold), "threshold is finite");
  Check(e.for_duration.count() >= 0, "for is not negative");
  Check(!e.text.empty(), "text is kept");
  if (e.kind == Expression::Kind::kSlotStatistic) {
    Check(e.name.empty(), "slot rules have no name");
    if (e.vs_baseline) {
      Check(e.baseline_factor > 0 && std::isfinite(e.baseline_factor), "factor is positive");
    } else {
      Check(e.threshold >= 0, "slot thresholds are not negative");
      if (e.statistic == Statistic::kErrorRate) Check(e.threshold <= 1, "error rate <= 1");
    }
  } else if (e.kind != Expression::Kind::kHealthFailing) {
    Check(!e.name.empty(), "dependency and metric rules have a name");
  }
}

}  // namespace
}  // namespace turnout::judge

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnout::judge;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  turnout::Result<Expression> a = ParseExpression(text);
  turnout::Result<Expression> b = ParseExpression(" " + std::string(text) + " ");
  Check(a.ok() == b.ok(), "surrounding spaces do not change the outcome");
  if (a.ok()) {
    CheckExpression(*a);
    Check(Same(*a, *b), "surrounding spaces do not change the result");
    turnout::Result<Rule> r = ParseRule(text);
    Check(r.ok(), "ParseRule accepts what ParseExpression accepts");
    Check(r->window >= std::chrono::seconds(1) && r->window <= kMaxWindow &&
              r->window >= std::chrono::ceil<std::chrono::seconds>(
                               std::min(r->for_duration, std::chrono::milliseconds(kMaxWindow))),
          "the default window follows `for`, within range");
  } else {
    Check(!a.status().message().empty(), "errors explain themselves");
    Check(a.status().message().find("column ") != std::string::npos ||
              a.status().message().find("empty rule") != std::string::npos,
          "errors name the column");
  }
  return 0;
}
