#include "token-scoring.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace wdmoe
{
namespace llm
{

namespace
{

/// log(sum(exp(x))), computed stably.
double
LogSumExp(const float* x, int n)
{
    const float maxValue = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int i = 0; i < n; ++i)
    {
        sum += std::exp(double(x[i]) - maxValue);
    }
    return std::log(sum) + maxValue;
}

} // namespace

int
ArgMax(const float* logits, int vocab)
{
    return int(std::max_element(logits, logits + vocab) - logits);
}

double
NegativeLogLikelihood(const float* logits, int vocab, int target)
{
    return LogSumExp(logits, vocab) - logits[target];
}

double
KlDivergence(const float* reference, const float* other, int vocab)
{
    const double logZp = LogSumExp(reference, vocab);
    const double logZq = LogSumExp(other, vocab);
    double kl = 0.0;
    for (int v = 0; v < vocab; ++v)
    {
        const double logP = double(reference[v]) - logZp;
        const double logQ = double(other[v]) - logZq;
        kl += std::exp(logP) * (logP - logQ);
    }
    // Rounding can leave a tiny negative sum for nearly equal distributions.
    return std::max(0.0, kl);
}

} // namespace llm
} // namespace wdmoe
