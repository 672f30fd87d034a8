// Always-valid confidence bounds for proportions (the math behind CanaryJudge; see
// docs/judge.md for why they stay valid however often they are checked).
//
// Pure functions; thread-safe.

#pragma once

#include <cstdint>

namespace turnout::judge {

struct Interval {
  double lower = 0;
  double upper = 1;
};

// The confidence sequence for a Bernoulli rate p after `x` successes in `n` trials, from the
// beta-binomial mixture martingale with a Beta(1/2, 1/2) mixing density: every p whose mixture
// likelihood ratio is below 1/alpha. With probability >= 1 - alpha the true p lies in the
// interval at every n at once (for i.i.d. trials). x <= n; alpha in (0, 1). n == 0 gives [0, 1].
Interval BinomialConfidenceSequence(uint64_t x, uint64_t n, double alpha);

// Bounds on canary_rate - (1 + relative) * stable_rate from each slot's confidence sequence at
// alpha / 2 (a union bound): valid at every check at once with probability >= 1 - alpha.
struct DifferenceBounds {
  Interval canary;
  Interval stable;
  double lower = 0;  // canary.lower - (1 + relative) * stable.upper
  double upper = 0;  // canary.upper - (1 + relative) * stable.lower
};
DifferenceBounds RateDifferenceBounds(uint64_t canary_x, uint64_t canary_n, uint64_t stable_x,
                                      uint64_t stable_n, double relative, double alpha);

// Anytime-valid p-values for "the canary is within tolerance" (harm) and "the canary is beyond
// it" (safety): the smallest alpha at which RateDifferenceBounds' lower bound exceeds `margin`
// (resp. its upper bound is at most `margin`); 1 when no alpha >= 1e-12 does.
struct SequentialPValues {
  double harm = 1;    // small: strong evidence canary - (1 + relative) * stable > margin
  double safety = 1;  // small: strong evidence canary - (1 + relative) * stable <= margin
};
SequentialPValues RateDifferencePValues(uint64_t canary_x, uint64_t canary_n, uint64_t stable_x,
                                        uint64_t stable_n, double relative, double margin);

}  // namespace turnout::judge
