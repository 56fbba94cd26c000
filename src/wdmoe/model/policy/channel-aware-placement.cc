/*
 * Channel-aware expert placement: popularity rank -> expected round-trip rank.
 */
#include "channel-aware-placement.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace ns3
{

namespace
{

/// The pair indices (layer * experts + expert) of `candidates` ordered most used first (stable:
/// ties keep their order).
std::vector<int>
ByPopularity(std::vector<int> candidates, const std::vector<double>& weight)
{
    std::stable_sort(candidates.begin(), candidates.end(), [&weight](int a, int b) {
        return weight[a] > weight[b];
    });
    return candidates;
}

} // namespace

std::vector<int>
DevicesByCost(const std::vector<double>& deviceCost)
{
    std::vector<int> order(deviceCost.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&deviceCost](int a, int b) {
        return deviceCost[a] < deviceCost[b];
    });
    return order;
}

ExpertPlacement
PlaceChannelAware(const PlacementProblem& p)
{
    ValidatePlacementProblem(p);
    const int n = static_cast<int>(p.deviceCapacity.size());
    const std::vector<double> weight = PairWeights(p);
    const std::vector<int> rank = DevicesByCost(p.deviceCost);
    ExpertPlacement out(p.layers, p.experts, n);
    std::vector<int> room(p.deviceCapacity);
    for (int l = 0; l < p.layers; ++l)
    {
        std::vector<int> layerPairs(p.experts);
        std::iota(layerPairs.begin(), layerPairs.end(), l * p.experts);
        const std::vector<int> hottest = ByPopularity(layerPairs, weight);
        for (int r = 0; r < p.experts; ++r)
        {
            for (int i = 0; i < n; ++i)
            {
                const int d = rank[(r + i) % n];
                if (room[d] > 0)
                {
                    out.AddHolder(l, hottest[r] % p.experts, d);
                    --room[d];
                    break;
                }
            }
            // Total room >= layers * experts (validated), so some device had room.
        }
    }
    if (!p.replicas)
    {
        return out;
    }
    std::vector<int> everyPair(p.layers * p.experts);
    std::iota(everyPair.begin(), everyPair.end(), 0);
    const std::vector<int> hottest = ByPopularity(everyPair, weight);
    for (bool placed = true; placed;)
    {
        placed = false;
        for (int pair : hottest)
        {
            const std::vector<int>& h = out.Holders(pair / p.experts, pair % p.experts);
            for (int d : rank)
            {
                if (room[d] > 0 && std::find(h.begin(), h.end(), d) == h.end())
                {
                    out.AddHolder(pair / p.experts, pair % p.experts, d);
                    --room[d];
                    placed = true;
                    break;
                }
            }
        }
    }
    return out;
}

} // namespace ns3
