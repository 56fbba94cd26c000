// Which of the experts gating chose for a token actually run, given how long each one's device
// would take: all of them, WDMoE's weight-to-latency ratio, or our straggler rule
// (DESIGN.md section 5). Candidates are in gating order: index 0 has the largest weight.
#ifndef WDMOE_EXPERT_SELECTION_H
#define WDMOE_EXPERT_SELECTION_H

#include <functional>
#include <string>
#include <vector>

namespace ns3
{

enum class SelectionRule
{
    ALL,
    WLR,
    STRAGGLER
};

/// WDMoE: candidate c is kept when w_c / tau_c >= theta * w_1 / tau_1, where candidate 1 is
/// the first one of largest weight (always kept) and tau_c > 0 is the predicted round trip of
/// the device that would run c. A ratio exactly at the bound is kept.
std::vector<bool> SelectWeightToLatency(const std::vector<double>& weights,
                                        const std::vector<double>& roundTrips,
                                        double theta);

/// The layer's predicted latency if exactly the candidates marked true ran.
using LayerLatencyOf = std::function<double(const std::vector<bool>& keep)>;

/// Ours: starting from all candidates, repeatedly drop the candidate c (never the top-1) that
/// shortens the layer the most, provided that
///   w_c <= weightBound  (it carries little of the output) and
///   L(S) - L(S \ {c}) >= gainBound * L(S)  (it sets the layer's latency: dropping it saves at
///   least that fraction);
/// stop when no candidate qualifies. Ties in gain go to the later (lighter) candidate. Weights
/// are those of the current selection renormalised to sum to one.
std::vector<bool> SelectStragglers(const std::vector<double>& weights,
                                   const LayerLatencyOf& layerLatency,
                                   double weightBound,
                                   double gainBound);

/// The weights of the kept candidates, renormalised to sum to one (in candidate order).
std::vector<double> RenormalisedKept(const std::vector<double>& weights,
                                     const std::vector<bool>& keep);

} // namespace ns3

#endif
