#include "judge/confidence.h"

#include <gtest/gtest.h>

#include <random>

namespace turnout::judge {
namespace {

TEST(BinomialConfidenceSequence, ContainsTheEstimateAndShrinks) {
  Interval empty = BinomialConfidenceSequence(0, 0, 0.05);
  EXPECT_EQ(empty.lower, 0);
  EXPECT_EQ(empty.upper, 1);
  double last_width = 1;
  for (uint64_t n : {100u, 1000u, 10000u, 100000u}) {
    Interval i = BinomialConfidenceSequence(n / 10, n, 0.05);
    EXPECT_LT(i.lower, 0.1);
    EXPECT_GT(i.upper, 0.1);
    EXPECT_LT(i.upper - i.lower, last_width);
    last_width = i.upper - i.lower;
  }
  EXPECT_LT(last_width, 0.01);
  Interval none = BinomialConfidenceSequence(0, 500, 0.05);
  EXPECT_EQ(none.lower, 0);
  EXPECT_GT(none.upper, 0);
  EXPECT_LT(none.upper, 0.02);
  Interval all = BinomialConfidenceSequence(500, 500, 0.05);
  EXPECT_EQ(all.upper, 1);
  EXPECT_GT(all.lower, 0.98);
  // A smaller alpha gives a wider interval.
  Interval wide = BinomialConfidenceSequence(50, 1000, 0.001);
  Interval narrow = BinomialConfidenceSequence(50, 1000, 0.1);
  EXPECT_LT(wide.lower, narrow.lower);
  EXPECT_GT(wide.upper, narrow.upper);
}

// The defining property: the true rate stays inside at every n at once, for all but about
// alpha of the sequences (here far fewer: the mixture bound is conservative).
TEST(BinomialConfidenceSequence, CoversTheTrueRateAtEveryStepWithProbabilityOneMinusAlpha) {
  constexpr double kAlpha = 0.1;
  constexpr int kSequences = 300;
  constexpr int kSteps = 1000;
  for (double p : {0.01, 0.3}) {
    std::mt19937_64 rng(42);
    std::bernoulli_distribution bit(p);
    int ever_missed = 0;
    for (int s = 0; s < kSequences; ++s) {
      uint64_t x = 0;
      for (int n = 1; n <= kSteps; ++n) {
        x += bit(rng) ? 1 : 0;
        Interval i = BinomialConfidenceSequence(x, n, kAlpha);
        if (p < i.lower || p > i.upper) {
          ++ever_missed;
          break;
        }
      }
    }
    EXPECT_LE(ever_missed, kAlpha * kSequences) << "p=" << p;
  }
}

TEST(RateDifference, BoundsAndPValuesAgree) {
  DifferenceBounds b = RateDifferenceBounds(100, 1000, 5, 1000, 0.5, 0.05);
  EXPECT_LT(b.lower, b.upper);
  EXPECT_NEAR(b.lower, b.canary.lower - 1.5 * b.stable.upper, 1e-12);
  EXPECT_NEAR(b.upper, b.canary.upper - 1.5 * b.stable.lower, 1e-12);
  EXPECT_GT(b.lower, 0.01);  // clearly worse

  SequentialPValues p = RateDifferencePValues(100, 1000, 5, 1000, 0.5, 0.01);
  EXPECT_LT(p.harm, 1e-4);
  EXPECT_EQ(p.safety, 1.0);
  // At alpha just above the p-value the decision is made; just below it is not.
  EXPECT_GT(RateDifferenceBounds(100, 1000, 5, 1000, 0.5, p.harm * 1.01).lower, 0.01);
  EXPECT_LE(RateDifferenceBounds(100, 1000, 5, 1000, 0.5, p.harm * 0.99).lower, 0.01);

  SequentialPValues same = RateDifferencePValues(10, 5000, 10, 5000, 0.5, 0.01);
  EXPECT_EQ(same.harm, 1.0);
  EXPECT_LT(same.safety, 0.05);
}

}  // namespace
}  // namespace turnout::judge
