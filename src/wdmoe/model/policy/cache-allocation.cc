// Cache-slot allocation across layers: AdapMoE's cost, its dynamic programme and the uniform
// baseline (DESIGN.md section 5).
#include "cache-allocation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ns3
{

double
ExpectedOnDemandLoads(double singleExpertRate,
                      double prefetchAccuracy,
                      int hosted,
                      int experts,
                      int topK,
                      int slots)
{
    if (!(singleExpertRate >= 0.0 && singleExpertRate <= 1.0) ||
        !(prefetchAccuracy >= 0.0 && prefetchAccuracy <= 1.0))
    {
        throw std::invalid_argument("expected on-demand loads: the single-expert rate (" +
                                    std::to_string(singleExpertRate) +
                                    ") and the prefetch accuracy (" +
                                    std::to_string(prefetchAccuracy) + ") must lie in [0, 1]");
    }
    if (experts < 1 || topK < 1 || hosted < 0 || hosted > experts || slots < 0)
    {
        throw std::invalid_argument(
            "expected on-demand loads: need experts >= 1, topK >= 1, 0 <= hosted <= experts and "
            "slots >= 0 (got experts " +
            std::to_string(experts) + ", topK " + std::to_string(topK) + ", hosted " +
            std::to_string(hosted) + ", slots " + std::to_string(slots) + ")");
    }
    if (hosted == 0)
    {
        return 0.0;
    }
    const double activations =
        (topK - (topK - 1) * singleExpertRate) * double(hosted) / double(experts);
    const double missRate = 1.0 - double(std::min(slots, hosted)) / double(hosted);
    // A layer without a slot has nowhere to put a prefetched expert: every use is a load.
    const double prefetched = slots > 0 ? prefetchAccuracy : 0.0;
    return activations * missRate * (1.0 - prefetched);
}

std::vector<int>
AllocateSlotsDp(const std::vector<std::vector<double>>& cost, int budget)
{
    if (budget < 0)
    {
        throw std::invalid_argument("slot allocation: negative budget " + std::to_string(budget));
    }
    const std::size_t layers = cost.size();
    // More slots than every layer can take are never used: cap the table's width.
    long long usable = 0;
    for (std::size_t l = 0; l < layers; ++l)
    {
        if (cost[l].empty())
        {
            throw std::invalid_argument("slot allocation: layer " + std::to_string(l) +
                                        " has no cost entry (need one for 0 slots)");
        }
        for (std::size_t k = 0; k < cost[l].size(); ++k)
        {
            if (std::isnan(cost[l][k]))
            {
                throw std::invalid_argument("slot allocation: cost[" + std::to_string(l) + "][" +
                                            std::to_string(k) + "] is NaN");
            }
        }
        usable += static_cast<long long>(cost[l].size()) - 1;
    }
    const int width = int(std::min<long long>(budget, usable));

    // dp[j]: least cost of the layers so far with at most j slots (at most: dp starts at 0 for
    // every j). choice[i][j]: slots of layer i in that optimum.
    std::vector<double> dp(width + 1, 0.0);
    std::vector<double> next(width + 1);
    std::vector<std::vector<int>> choice(layers, std::vector<int>(width + 1, 0));
    for (std::size_t i = 0; i < layers; ++i)
    {
        const int maxK = int(cost[i].size()) - 1;
        for (int j = 0; j <= width; ++j)
        {
            double bestCost = std::numeric_limits<double>::infinity();
            int bestK = 0;
            for (int k = 0; k <= std::min(j, maxK); ++k)
            {
                const double c = dp[j - k] + cost[i][k];
                // Strict: among equal totals the smallest k (found first) stays.
                if (c < bestCost)
                {
                    bestCost = c;
                    bestK = k;
                }
            }
            next[j] = bestCost;
            choice[i][j] = bestK;
        }
        dp.swap(next);
    }

    std::vector<int> slots(layers, 0);
    int j = width;
    for (std::size_t i = layers; i-- > 0;)
    {
        slots[i] = choice[i][j];
        j -= slots[i];
    }
    return slots;
}

std::vector<int>
AllocateSlotsUniform(const std::vector<int>& maxSlots, int budget)
{
    if (budget < 0)
    {
        throw std::invalid_argument("slot allocation: negative budget " + std::to_string(budget));
    }
    int largestCap = 0;
    for (std::size_t l = 0; l < maxSlots.size(); ++l)
    {
        if (maxSlots[l] < 0)
        {
            throw std::invalid_argument("slot allocation: maxSlots[" + std::to_string(l) +
                                        "] is negative");
        }
        largestCap = std::max(largestCap, maxSlots[l]);
    }
    // Water filling: the highest level t with sum_l min(cap_l, t) <= budget; every layer gets
    // min(cap_l, t), so a capped layer's part goes to the others.
    auto filled = [&](int t) {
        long long sum = 0;
        for (int cap : maxSlots)
        {
            sum += std::min(cap, t);
        }
        return sum;
    };
    int lo = 0; // filled(lo) <= budget always (filled(0) = 0)
    int hi = largestCap;
    while (lo < hi)
    {
        const int mid = lo + (hi - lo + 1) / 2;
        if (filled(mid) <= budget)
        {
            lo = mid;
        }
        else
        {
            hi = mid - 1;
        }
    }
    std::vector<int> slots(maxSlots.size());
    long long left = budget - filled(lo);
    for (std::size_t l = 0; l < maxSlots.size(); ++l)
    {
        slots[l] = std::min(maxSlots[l], lo);
        // The remainder: one more each to the lowest layers that still have room (fewer than
        // the layers with room, or t would have been higher).
        if (left > 0 && maxSlots[l] > lo)
        {
            ++slots[l];
            --left;
        }
    }
    return slots;
}

} // namespace ns3
