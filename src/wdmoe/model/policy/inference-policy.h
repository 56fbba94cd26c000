// The BS's run-time policies as one value: gating, expert selection, band allocation and
// prefetch, with their knobs, and the rule objects they stand for.
#ifndef WDMOE_INFERENCE_POLICY_H
#define WDMOE_INFERENCE_POLICY_H

#include "bandwidth-allocation-rule.h"
#include "expert-selection-rule.h"

#include "ns3/ptr.h"

#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{
class RoutingPolicy;
} // namespace llm
} // namespace wdmoe

namespace ns3
{

/// "policy.gating": which experts are candidates for a token.
enum class GatingRule
{
    TOP_K,   ///< "topk": the model's own top-k
    ADAPTIVE ///< "adaptive": AdapMoE's sensitivity-based gating
};

/// The names the config and the results use for the rules.
std::string GatingRuleName(GatingRule value);       ///< "topk", "adaptive"
std::string SelectionRuleName(SelectionRule value); ///< "all", "wlr", "straggler", "energy"
std::string AllocationRuleName(
    AllocationRule value); ///< "equal", "proportional", "minmax", "joint"

/// The run-time policies of the BS (DESIGN.md section 5; doc/wdmoe.rst "Policies"). Gating
/// decides the candidates per token, selection which of them run (decode steps), allocation
/// how the band is split among the devices used, prefetch whether next-layer hints are sent.
/// The cache-slot allocation is part of the devices' ExpertMemory. Selection and allocation
/// are rule objects: selectionRule and allocationRule where set, else the built-in rules the
/// enum fields and their knobs name (SelectionRuleOf, AllocationRuleOf).
struct InferencePolicy
{
    std::string name = "top-2"; ///< as it appears in results
    GatingRule gating = GatingRule::TOP_K;
    std::vector<double> sensitivity; ///< F_l per layer (adaptive gating)
    double adaptiveThreshold = 0.005;
    bool adaptivePrefill = false; ///< apply adaptive gating to prefills too
    SelectionRule selection = SelectionRule::ALL;
    double wlrTheta = 0.5;
    StragglerBounds straggler;
    EnergyBounds energy; ///< the "energy" rule's knobs
    /// Straggler rule: F_l over the mean F per layer (from the calibrated sensitivities), or
    /// empty for every layer weighing 1.
    std::vector<double> stragglerLayerScale;
    /// JOINT: minmax alternated with the selection rule until the selection stands.
    AllocationRule allocation = AllocationRule::EQUAL;
    double minmaxFloor = 0;      ///< minmax: each device keeps this fraction of 1/n of the band
    int jointMaxIterations = 10; ///< bound on the alternation
    bool prefetch = false;
    double hintBits = 256; ///< size of one prefetch hint on the downlink
    /// The selection rule object; null: SelectionRuleOf(*this).
    Ptr<ExpertSelectionRule> selectionRule;
    /// The allocation rule object; null: AllocationRuleOf(*this). The joint loop alternates it
    /// with the selection rule.
    Ptr<BandwidthAllocationRule> allocationRule;

    bool Adaptive() const { return gating == GatingRule::ADAPTIVE; }

    /// Selection and allocation alternate (allocation JOINT).
    bool Joint() const { return allocation == AllocationRule::JOINT; }
};

/// The policy's selection rule: its selectionRule, or else a new built-in rule named by
/// `selection` with the policy's knobs (wlrTheta; straggler).
Ptr<ExpertSelectionRule> SelectionRuleOf(const InferencePolicy& policy);

/// The policy's allocation rule: its allocationRule, or else a new built-in rule named by
/// `allocation` (minmax when JOINT) with the policy's knobs (minmaxFloor).
Ptr<BandwidthAllocationRule> AllocationRuleOf(const InferencePolicy& policy);

/// The policy's gating: AdapMoE's adaptive gating with its sensitivities and threshold, or the
/// model's own top-k. Throws std::invalid_argument when adaptive gating has not one sensitivity
/// per layer.
std::unique_ptr<wdmoe::llm::RoutingPolicy> GatingOf(const InferencePolicy& policy, int layers);

} // namespace ns3

#endif
