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
    STRAGGLER,
    ENERGY
};

/// WDMoE: candidate c is kept when w_c / tau_c >= theta * w_1 / tau_1, where candidate 1 is
/// the first one of largest weight (always kept) and tau_c > 0 is the predicted round trip of
/// the device that would run c. A ratio exactly at the bound is kept.
std::vector<bool> SelectWeightToLatency(const std::vector<double>& weights,
                                        const std::vector<double>& roundTrips,
                                        double theta);

/// The layer's predicted latency if exactly the candidates marked true ran.
using LayerLatencyOf = std::function<double(const std::vector<bool>& keep)>;

/// The bounds of the straggler rule (doc/wdmoe.rst "Expert selection").
struct StragglerBounds
{
    double weightMax = 0.5; ///< the heaviest share of the kept weight it may drop
    double gainMin = 0.05;  ///< the least relative gain in layer latency worth a drop
    double tradeoff = 0.3;  ///< kappa: expected loss accepted per unit of relative gain
};

/// Ours: starting from all candidates, repeatedly drop the candidate c (never the top-1) that
/// shortens the layer the most, provided that, with s_c its share of the kept weight and
/// g_c = (L(S) - L(S \ {c})) / L(S) the fraction of the layer's latency its drop saves,
///   s_c <= weightMax                      (it carries little of the output),
///   g_c >= gainMin and g_c > 0             (it sets the layer's latency), and
///   layerScale * s_c^2 <= tradeoff * g_c   (the loss it costs is worth the time it saves:
///                                          AdapMoE's model of the loss of dropping an expert
///                                          of weight w at layer l is F_l w^2, and layerScale
///                                          is F_l over the mean F);
/// stop when no candidate qualifies. All bounds are inclusive; ties in gain go to the later
/// (lighter) candidate; a weight bound of 0 drops nothing.
std::vector<bool> SelectStragglers(const std::vector<double>& weights,
                                   const LayerLatencyOf& layerLatency,
                                   const StragglerBounds& bounds,
                                   double layerScale = 1.0);

/// The weights of the kept candidates, renormalised to sum to one (in candidate order).
/// The predicted device energy (J) of a layer if exactly the marked candidates ran.
using LayerEnergyOf = std::function<double(const std::vector<bool>& keep)>;

/// The knobs of SelectMinEnergy.
struct EnergyBounds
{
    /// The kept candidates carry at least this fraction of the candidates' gating weight.
    double weightMin = 0.8;
    /// Their layer latency is at most (1 + latencySlack) times the fastest such subset's.
    double latencySlack = 0.1;
};

/// Our energy-aware baseline in the spirit of JESA (Qin et al., arXiv 2503.13421: expert
/// selection trading the gate weights against the devices' cost under a latency bound): among
/// the non-empty subsets S of the candidates whose kept weight is at least weightMin of the
/// total, with L* the least predicted layer latency of any of them, keep the S of least
/// predicted device energy whose latency is at most (1 + latencySlack) L*; ties go to the larger
/// kept weight, then the lower latency, then the earlier subset (candidates in gating order).
/// Exhaustive over the 2^n - 1 subsets: n (the gating's candidates) is at most 16, else
/// std::invalid_argument.
std::vector<bool> SelectMinEnergy(const std::vector<double>& weights,
                                  const LayerLatencyOf& layerLatency,
                                  const LayerEnergyOf& layerEnergy,
                                  const EnergyBounds& bounds);

std::vector<double> RenormalisedKept(const std::vector<double>& weights,
                                     const std::vector<bool>& keep);

} // namespace ns3

#endif
