#include "judge/confidence.h"

#include <math.h>  // lgamma_r

#include <algorithm>
#include <cmath>
#include <limits>

namespace turnout::judge {
namespace {

// Beta(1/2, 1/2) (Jeffreys) mixing density: it puts more weight near 0 than a uniform one, so
// the bounds are tight for the small error rates a service normally has.
constexpr double kPriorA = 0.5;
constexpr double kPriorB = 0.5;
constexpr int kBisections = 50;  // 2^-50 of [0, 1]: far below anything a decision depends on
constexpr double kMinAlpha = 1e-12;

// lgamma_r rather than std::lgamma: glibc's lgamma writes the global `signgam`, a data race
// when two judges run on different threads.
double LogGamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}

double LogBeta(double a, double b) { return LogGamma(a) + LogGamma(b) - LogGamma(a + b); }

// x log p + (n - x) log(1 - p), with 0 log 0 = 0.
double LogLikelihood(double x, double n, double p) {
  double v = 0;
  if (x > 0) v += x * std::log(p);
  if (n - x > 0) v += (n - x) * std::log1p(-p);
  return v;
}

}  // namespace

Interval BinomialConfidenceSequence(uint64_t x_in, uint64_t n_in, double alpha) {
  if (n_in == 0 || !(alpha > 0) || !(alpha < 1)) return {0.0, 1.0};
  const double n = static_cast<double>(n_in);
  const double x = static_cast<double>(std::min(x_in, n_in));
  // The mixture martingale is M(p) = B(a + x, b + n - x) / B(a, b) / (p^x (1 - p)^(n - x)).
  // M(p) < 1 / alpha  <=>  LogLikelihood(p) > cut. The log-likelihood is concave with its peak
  // at x / n, where M <= 1 < 1 / alpha, so the set is an interval around x / n.
  const double cut =
      LogBeta(kPriorA + x, kPriorB + n - x) - LogBeta(kPriorA, kPriorB) + std::log(alpha);
  const double mle = x / n;
  Interval out{0.0, 1.0};
  if (x > 0) {
    double lo = 0, hi = mle;  // LogLikelihood(lo) = -inf <= cut < LogLikelihood(hi)
    for (int i = 0; i < kBisections; ++i) {
      const double mid = 0.5 * (lo + hi);
      if (LogLikelihood(x, n, mid) > cut) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    out.lower = lo;  // just outside: the bound errs on the wide side
  }
  if (x < n) {
    double lo = mle, hi = 1;
    for (int i = 0; i < kBisections; ++i) {
      const double mid = 0.5 * (lo + hi);
      if (LogLikelihood(x, n, mid) > cut) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    out.upper = hi;
  }
  return out;
}

DifferenceBounds RateDifferenceBounds(uint64_t canary_x, uint64_t canary_n, uint64_t stable_x,
                                      uint64_t stable_n, double relative, double alpha) {
  DifferenceBounds d;
  d.canary = BinomialConfidenceSequence(canary_x, canary_n, alpha / 2);
  d.stable = BinomialConfidenceSequence(stable_x, stable_n, alpha / 2);
  const double k = 1.0 + relative;
  d.lower = d.canary.lower - k * d.stable.upper;
  d.upper = d.canary.upper - k * d.stable.lower;
  return d;
}

SequentialPValues RateDifferencePValues(uint64_t canary_x, uint64_t canary_n, uint64_t stable_x,
                                        uint64_t stable_n, double relative, double margin) {
  // Smaller alpha widens every bound, so each decision holds for all alpha above a threshold;
  // that threshold is found by bisection on log(alpha).
  auto smallest_alpha = [&](auto decides) {
    const double almost_one = 1 - 1e-9;
    if (!decides(
            RateDifferenceBounds(canary_x, canary_n, stable_x, stable_n, relative, almost_one))) {
      return 1.0;
    }
    if (decides(
            RateDifferenceBounds(canary_x, canary_n, stable_x, stable_n, relative, kMinAlpha))) {
      return kMinAlpha;
    }
    double lo = std::log(kMinAlpha), hi = std::log(almost_one);  // decides(hi), !decides(lo)
    for (int i = 0; i < 24; ++i) {  // alpha to within 0.2 %: plenty for a record
      const double mid = 0.5 * (lo + hi);
      if (decides(RateDifferenceBounds(canary_x, canary_n, stable_x, stable_n, relative,
                                       std::exp(mid)))) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return std::exp(hi);
  };
  SequentialPValues p;
  p.harm = smallest_alpha([&](const DifferenceBounds& b) { return b.lower > margin; });
  p.safety = smallest_alpha([&](const DifferenceBounds& b) { return b.upper <= margin; });
  return p;
}

}  // namespace turnout::judge
