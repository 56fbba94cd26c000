// How many memory slots each layer's LRU gets on one device: uniform, or AdapMoE's dynamic
// programme over the expected on-demand loads per token (DESIGN.md section 5).
#ifndef WDMOE_CACHE_ALLOCATION_H
#define WDMOE_CACHE_ALLOCATION_H

#include <vector>

namespace ns3
{

/// AdapMoE's cost of one layer on one device: expected on-demand expert loads per token at a
/// layer where the device hosts `hosted` of the layer's `experts` experts and keeps `slots` of
/// them in memory. Activations on the device per token = (topK - (topK - 1) * singleExpertRate)
/// * hosted / experts (experts used uniformly); a fraction slots / hosted of them hit memory
/// (LRU under uniform use); of the misses, a fraction prefetchAccuracy was prefetched in time,
/// provided the layer has a slot to prefetch into:
///   f = activations * (1 - min(slots, hosted) / hosted) * (1 - [slots > 0] prefetchAccuracy);
/// 0 when hosted is 0. Throws std::invalid_argument for a rate or an accuracy outside [0, 1],
/// experts or topK < 1, hosted outside [0, experts] or negative slots.
double ExpectedOnDemandLoads(double singleExpertRate,
                             double prefetchAccuracy,
                             int hosted,
                             int experts,
                             int topK,
                             int slots);

/// slots[l] minimising sum_l cost[l][slots[l]] subject to sum_l slots[l] <= budget and
/// slots[l] <= cost[l].size() - 1: dp[i][j] = min_k dp[i-1][j-k] + cost[i][k]. Among equal
/// totals the first found in order of increasing k per layer is kept. No layers: an empty
/// result. A cost may be +infinity (that slot count is then never chosen while a finite
/// choice exists). Throws std::invalid_argument for a negative budget, an empty cost row or a
/// NaN cost.
std::vector<int> AllocateSlotsDp(const std::vector<std::vector<double>>& cost, int budget);

/// budget slots spread evenly over the layers, each capped at maxSlots[l]; what a capped layer
/// cannot take goes to the others, lower layers first for remainders (water filling: every
/// layer gets min(maxSlots[l], t) for the highest level t that fits, then one more each to the
/// lowest layers with room until the budget is spent). A budget above sum maxSlots leaves the
/// rest unused. Throws std::invalid_argument for a negative budget or a negative cap.
std::vector<int> AllocateSlotsUniform(const std::vector<int>& maxSlots, int budget);

} // namespace ns3

#endif
