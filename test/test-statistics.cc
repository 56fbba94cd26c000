// The statistics behind every cited number: Student intervals across runs, the percentile
// bootstrap over tokens (against closed forms and an exhaustive enumeration of every
// resample), the paired comparison of a policy with its baseline, and the KL divergence.

#include "confidence-interval.h"
#include "paired-comparison.h"
#include "token-scoring.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

using namespace ns3;

TEST_CASE("statistics: Student interval of a mean, by hand", "[statistics]")
{
    // {1, 2, 3, 4, 5}: mean 3, s = sqrt(2.5), standard error sqrt(2.5 / 5) = sqrt(0.5);
    // t(0.975, 4 degrees of freedom) = 2.7764451051977987.
    const Interval i = StudentInterval({1, 2, 3, 4, 5});
    CHECK(i.mean == 3);
    CHECK(i.samples == 5);
    const double half = 2.7764451051977987 * std::sqrt(0.5);
    CHECK(i.low == Approx(3 - half).epsilon(1e-12));
    CHECK(i.high == Approx(3 + half).epsilon(1e-12));
    // 90 %: t(0.95, 4) = 2.1318467863266499.
    const Interval ninety = StudentInterval({1, 2, 3, 4, 5}, 0.90);
    CHECK(ninety.high - ninety.mean == Approx(2.1318467863266499 * std::sqrt(0.5)).epsilon(1e-12));
    // One value: a mean without an interval.
    const Interval one = StudentInterval({7});
    CHECK(one.mean == 7);
    CHECK(std::isnan(one.low));
    CHECK(std::isnan(one.high));
    CHECK_FALSE(one.ExcludesZero());
    CHECK_THROWS_AS(StudentInterval({}), std::invalid_argument);
    CHECK_THROWS_AS(StudentInterval({1, 2}, 1.0), std::invalid_argument);
    CHECK(StudentInterval({-3, -2, -2.5}).ExcludesZero());
    CHECK_FALSE(StudentInterval({-3, 2, -2.5}).ExcludesZero());
}

TEST_CASE("statistics: quantiles interpolate between order statistics as numpy does",
          "[statistics]")
{
    CHECK(Quantile({3, 1, 2, 4}, 0.5) == 2.5);
    CHECK(Quantile({3, 1, 2, 4}, 0.25) == 1.75); // rank 0.75 between 1 and 2
    CHECK(Quantile({3, 1, 2, 4}, 0.0) == 1);
    CHECK(Quantile({3, 1, 2, 4}, 1.0) == 4);
    CHECK(Quantile({5}, 0.3) == 5);
    CHECK_THROWS_AS(Quantile({}, 0.5), std::invalid_argument);
}

TEST_CASE("statistics: a bootstrap of constant differences has no width", "[statistics]")
{
    const Interval i = BootstrapInterval(std::vector<double>(300, 0.25), 2000, 1, 0);
    CHECK(i.mean == 0.25);
    CHECK(i.low == 0.25);
    CHECK(i.high == 0.25);
    const Interval zero = BootstrapInterval(std::vector<double>(10, 0.0), 500, 7, 3);
    CHECK(zero.low == 0);
    CHECK(zero.high == 0);
    CHECK_FALSE(zero.ExcludesZero());
}

TEST_CASE("statistics: the bootstrap interval matches an enumeration of every resample",
          "[statistics]")
{
    // Five samples have 5^5 = 3125 equally likely ordered resamples: their means, sorted, are
    // the exact bootstrap distribution. 200000 random resamples must find its quantiles.
    const std::vector<double> x = {0, 1, 3, 7, 15};
    std::vector<double> means;
    for (int code = 0; code < 3125; ++code)
    {
        double sum = 0;
        for (int k = 0, c = code; k < 5; ++k, c /= 5)
        {
            sum += x[c % 5];
        }
        means.push_back(sum / 5);
    }
    const double exactLow = Quantile(means, 0.025);
    const double exactHigh = Quantile(means, 0.975);
    const Interval b = BootstrapInterval(x, 200000, 11, 0);
    CHECK(b.mean == 5.2);
    CHECK(b.low == Approx(exactLow).margin(0.1));
    CHECK(b.high == Approx(exactHigh).margin(0.1));
    // The exact ends are far apart compared with that margin: the check can fail.
    CHECK(exactHigh - exactLow > 6);
}

TEST_CASE("statistics: for many samples the bootstrap interval is the normal one", "[statistics]")
{
    // 4000 uniform draws on (0, 1) (a fixed linear congruential sequence): the interval of the
    // mean is about mean +- 1.96 sd / sqrt(n).
    std::vector<double> x;
    uint64_t state = 12345;
    for (int i = 0; i < 4000; ++i)
    {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        x.push_back(double(state >> 11) / double(1ULL << 53));
    }
    double mean = 0;
    for (double v : x)
    {
        mean += v / x.size();
    }
    double var = 0;
    for (double v : x)
    {
        var += (v - mean) * (v - mean) / (x.size() - 1);
    }
    const double half = 1.959963984540054 * std::sqrt(var / x.size());
    const Interval b = BootstrapInterval(x, 4000, 1, 0);
    CHECK(b.mean == Approx(mean).epsilon(1e-12));
    CHECK(b.low == Approx(mean - half).margin(0.1 * half));
    CHECK(b.high == Approx(mean + half).margin(0.1 * half));
}

TEST_CASE("statistics: the bootstrap is reproducible by seed and stream", "[statistics]")
{
    const std::vector<double> x = {0.3, -0.1, 0.7, 0.2, 0.0, 1.1, -0.4};
    const Interval a = BootstrapInterval(x, 1000, 5, 2);
    const Interval b = BootstrapInterval(x, 1000, 5, 2);
    CHECK(a.low == b.low);
    CHECK(a.high == b.high);
    const Interval c = BootstrapInterval(x, 1000, 5, 3);
    CHECK((c.low != a.low || c.high != a.high));
    CHECK_THROWS_AS(BootstrapInterval({}, 1000, 1, 0), std::invalid_argument);
    CHECK_THROWS_AS(BootstrapInterval(x, 1, 1, 0), std::invalid_argument);
}

namespace
{

RunSample
Sample(uint32_t run, std::size_t start, double latency, std::vector<double> nll)
{
    RunSample s;
    s.run = run;
    s.textStart = start;
    s.latencyMeanMs = latency;
    s.latencyP95Ms = 2 * latency;
    s.kl = std::vector<double>(nll.size(), 0.0);
    s.nll = std::move(nll);
    return s;
}

} // namespace

TEST_CASE("statistics: a paired comparison by hand", "[statistics]")
{
    StatisticsOptions options;
    options.resamples = 1000;
    // Two runs on the same text: token i's difference is the mean over the runs,
    // {0.1, 0.0, 0.3}, mean 0.4 / 3.
    const std::vector<RunSample> base = {Sample(1, 0, 100, {1, 1, 1}), Sample(2, 0, 80, {1, 1, 1})};
    std::vector<RunSample> policy = {Sample(2, 0, 60, {1.1, 1.1, 1.3}),
                                     Sample(1, 0, 90, {1.1, 0.9, 1.3})};
    policy[0].kl = {0.2, 0.0, 0.1};
    const PairedStatistics d = ComparePaired(base, policy, options, 0);
    CHECK(d.runs == 2);
    CHECK(d.tokens == 3);
    CHECK(d.nllChange.mean == Approx(0.4 / 3));
    CHECK(d.perplexityChangePct.mean == Approx(100 * (std::exp(0.4 / 3) - 1)));
    CHECK(d.perplexityChangePct.low == Approx(100 * std::expm1(d.nllChange.low)));
    CHECK(d.nllChange.low >= 0.0 - 1e-12); // every resample mean of {0.1, 0, 0.3} is >= 0
    CHECK(d.nllChange.high <= 0.3 + 1e-12);
    CHECK(d.klChange.mean == Approx(0.1 / 2)); // {0.1, 0, 0.05}: mean 0.05
    // Latency: -10 % in run 1, -25 % in run 2 (paired by run, not by order).
    CHECK(d.latencyChangePct.mean == Approx(-17.5));
    CHECK(d.latencyChangePct.high - d.latencyChangePct.low ==
          Approx(12.706204736174698 * 15).epsilon(1e-9));

    // Runs on different stretches of text: every run's tokens are samples of their own.
    std::vector<RunSample> baseDisjoint = base;
    std::vector<RunSample> policyDisjoint = policy;
    baseDisjoint[1].textStart = policyDisjoint[0].textStart = 500;
    const PairedStatistics pooled = ComparePaired(baseDisjoint, policyDisjoint, options, 0);
    CHECK(pooled.tokens == 6);
    CHECK(pooled.nllChange.mean == Approx(0.8 / 6));

    // What cannot be paired says why.
    CHECK_THROWS_WITH(ComparePaired(base, {Sample(3, 0, 1, {1, 1, 1}), policy[1]}, options, 0),
                      Catch::Contains("run 3"));
    CHECK_THROWS_WITH(ComparePaired(base, {Sample(1, 0, 1, {1, 1}), policy[0]}, options, 0),
                      Catch::Contains("same tokens"));
    CHECK_THROWS_WITH(ComparePaired(base, {policy[0]}, options, 0), Catch::Contains("same runs"));
    CHECK_THROWS_WITH(ComparePaired(base, policyDisjoint, options, 0),
                      Catch::Contains("different text"));
}

TEST_CASE("statistics: KL divergence of next-token distributions", "[statistics]")
{
    // P = (1/2, 1/2), Q = (0.9, 0.1): KL(P || Q) = 0.5 ln(0.5 / 0.9) + 0.5 ln(0.5 / 0.1).
    const float p[2] = {0.0f, 0.0f};
    const float q[2] = {float(std::log(0.9)), float(std::log(0.1))};
    const double expected = 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1);
    CHECK(wdmoe::llm::KlDivergence(p, q, 2) == Approx(expected).epsilon(1e-6));
    CHECK(wdmoe::llm::KlDivergence(q, q, 2) == 0);
    // Logits are defined up to a constant.
    const float shifted[2] = {q[0] + 5.0f, q[1] + 5.0f};
    CHECK(wdmoe::llm::KlDivergence(p, shifted, 2) == Approx(expected).epsilon(1e-5));
    const float logits[3] = {1.0f, 3.0f, 2.0f};
    CHECK(wdmoe::llm::ArgMax(logits, 3) == 1);
    const double nll =
        std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0)) - 2.0; // -log softmax[2]
    CHECK(wdmoe::llm::NegativeLogLikelihood(logits, 3, 2) == Approx(nll).epsilon(1e-12));
}
