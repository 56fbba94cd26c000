// A decode step's expert selection at the BS: the policy's selection rule asked which of the
// gated candidates run, priced by the latency predictor under the policy's band allocation,
// alternating with the allocation while the policy is joint.
#ifndef WDMOE_DECODE_SELECTION_H
#define WDMOE_DECODE_SELECTION_H

#include "inference-policy.h"
#include "layer-work.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace ns3
{

/// The predicted round trip (s) of `work` on `device` with `share` of the band (the
/// LatencyPredictor's, for the layer in flight).
using WorkRoundTrip = std::function<double(uint32_t device, const DeviceWork& work, double share)>;

/// The predicted device energy (J) of `work` on `device` with `share` of the band.
using WorkEnergy = std::function<double(uint32_t device, const DeviceWork& work, double share)>;

/// The allocation rule's shares of the band for the active devices of work, in their order.
/// Throws std::logic_error when the rule answers with another number of shares.
std::vector<double> AllocateShares(BandwidthAllocationRule& rule,
                                   const LayerWork& work,
                                   const WorkRoundTrip& roundTrip);

/// What one decode token runs at this layer.
struct DecodeSelection
{
    wdmoe::llm::RoutingDecision decision; ///< the kept candidates, weights renormalised
    std::vector<int> deviceOf;            ///< the device of each kept expert
    int rounds = 0;                       ///< selection rounds (joint: alternations)
};

/**
 * Which of one decode token's gated candidates run. The policy's selection rule (its rule
 * object, set) decides from the candidates' weights and predicted round trips; a joint policy
 * alternates it with the allocation rule until the selection stands (at most
 * jointMaxIterations rounds). `energy` prices subsets for a rule that asks
 * (SelectionContext::layerEnergy); without it such a rule gets std::logic_error. When every
 * candidate is kept the decision is returned bit for bit. Throws std::logic_error when the rule
 * keeps none.
 */
DecodeSelection SelectDecodeExperts(const InferencePolicy& policy,
                                    const wdmoe::llm::RoutingDecision& candidates,
                                    const std::vector<int>& deviceOf,
                                    uint32_t layer,
                                    std::size_t devices,
                                    const WorkRoundTrip& roundTrip,
                                    const WorkEnergy& energy = WorkEnergy());

} // namespace ns3

#endif
