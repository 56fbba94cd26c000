#include "inference-policy.h"

#include "gating.h"
#include "routing.h"

#include "ns3/double.h"

#include <stdexcept>

namespace ns3
{

std::string
GatingRuleName(GatingRule value)
{
    return value == GatingRule::ADAPTIVE ? "adaptive" : "topk";
}

std::string
SelectionRuleName(SelectionRule value)
{
    switch (value)
    {
    case SelectionRule::WLR:
        return "wlr";
    case SelectionRule::STRAGGLER:
        return "straggler";
    case SelectionRule::ENERGY:
        return "energy";
    case SelectionRule::ALL:
    default:
        return "all";
    }
}

std::string
AllocationRuleName(AllocationRule value)
{
    switch (value)
    {
    case AllocationRule::PROPORTIONAL:
        return "proportional";
    case AllocationRule::MINMAX:
        return "minmax";
    case AllocationRule::JOINT:
        return "joint";
    case AllocationRule::EQUAL:
    default:
        return "equal";
    }
}

Ptr<ExpertSelectionRule>
SelectionRuleOf(const InferencePolicy& policy)
{
    if (policy.selectionRule)
    {
        return policy.selectionRule;
    }
    switch (policy.selection)
    {
    case SelectionRule::WLR:
    {
        Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("wlr");
        rule->SetAttribute("Theta", DoubleValue(policy.wlrTheta));
        return rule;
    }
    case SelectionRule::STRAGGLER:
    {
        Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("straggler");
        rule->SetAttribute("WeightMax", DoubleValue(policy.straggler.weightMax));
        rule->SetAttribute("GainMin", DoubleValue(policy.straggler.gainMin));
        rule->SetAttribute("Tradeoff", DoubleValue(policy.straggler.tradeoff));
        return rule;
    }
    case SelectionRule::ENERGY:
    {
        Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("energy");
        rule->SetAttribute("WeightMin", DoubleValue(policy.energy.weightMin));
        rule->SetAttribute("LatencySlack", DoubleValue(policy.energy.latencySlack));
        return rule;
    }
    case SelectionRule::ALL:
    default:
        return ExpertSelectionRule::CreateRule("all");
    }
}

Ptr<BandwidthAllocationRule>
AllocationRuleOf(const InferencePolicy& policy)
{
    if (policy.allocationRule)
    {
        return policy.allocationRule;
    }
    switch (policy.Joint() ? AllocationRule::MINMAX : policy.allocation)
    {
    case AllocationRule::PROPORTIONAL:
        return BandwidthAllocationRule::CreateRule("proportional");
    case AllocationRule::MINMAX:
    {
        Ptr<BandwidthAllocationRule> rule = BandwidthAllocationRule::CreateRule("minmax");
        rule->SetAttribute("Floor", DoubleValue(policy.minmaxFloor));
        return rule;
    }
    case AllocationRule::EQUAL:
    default:
        return BandwidthAllocationRule::CreateRule("equal");
    }
}

std::unique_ptr<wdmoe::llm::RoutingPolicy>
GatingOf(const InferencePolicy& policy, int layers)
{
    if (!policy.Adaptive())
    {
        return std::make_unique<wdmoe::llm::TopKRouting>();
    }
    if (int(policy.sensitivity.size()) != layers)
    {
        throw std::invalid_argument("adaptive gating needs one sensitivity per layer (" +
                                    std::to_string(policy.sensitivity.size()) + " for " +
                                    std::to_string(layers) + " layers)");
    }
    return std::make_unique<wdmoe::llm::AdaptiveGating>(policy.sensitivity,
                                                        policy.adaptiveThreshold,
                                                        policy.adaptivePrefill);
}

} // namespace ns3
