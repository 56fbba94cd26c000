#include "routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace wdmoe
{
namespace llm
{

void
TopKDecision(const float* probs, int numExperts, int k, RoutingDecision& decision)
{
    decision.Clear();
    k = std::min(k, numExperts);
    std::vector<int> order(numExperts);
    std::iota(order.begin(), order.end(), 0);
    // Stable: equal probabilities keep the lower expert index first.
    std::stable_sort(order.begin(), order.end(), [probs](int a, int b) {
        return probs[a] > probs[b];
    });
    float sum = 0.0f;
    for (int i = 0; i < k; ++i)
    {
        sum += probs[order[i]];
    }
    for (int i = 0; i < k; ++i)
    {
        decision.experts.push_back(order[i]);
        decision.weights.push_back(sum > 0.0f ? probs[order[i]] / sum : 1.0f / k);
    }
}

void
TopKRouting::Decide(const RoutingRequest& request, RoutingDecision& decision)
{
    TopKDecision(request.gateProbs, request.numExperts, request.topK, decision);
}

void
ValidateDecision(const RoutingDecision& decision, int numExperts, int layer)
{
    const std::string where = "routing decision at layer " + std::to_string(layer) + ": ";
    if (decision.experts.size() != decision.weights.size())
    {
        throw std::invalid_argument(where + std::to_string(decision.experts.size()) +
                                    " experts but " + std::to_string(decision.weights.size()) +
                                    " weights");
    }
    std::vector<bool> seen(numExperts, false);
    for (std::size_t i = 0; i < decision.experts.size(); ++i)
    {
        const int e = decision.experts[i];
        if (e < 0 || e >= numExperts)
        {
            throw std::invalid_argument(where + "expert " + std::to_string(e) + " is outside [0, " +
                                        std::to_string(numExperts) + ")");
        }
        if (seen[e])
        {
            throw std::invalid_argument(where + "expert " + std::to_string(e) + " appears twice");
        }
        seen[e] = true;
        if (!std::isfinite(decision.weights[i]))
        {
            throw std::invalid_argument(where + "weight of expert " + std::to_string(e) +
                                        " is not finite");
        }
    }
}

} // namespace llm
} // namespace wdmoe
