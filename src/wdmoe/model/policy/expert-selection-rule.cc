#include "expert-selection-rule.h"

#include "rule-registry.h"

#include "ns3/double.h"
#include "ns3/object-factory.h"

namespace ns3
{

NS_OBJECT_ENSURE_REGISTERED(ExpertSelectionRule);
NS_OBJECT_ENSURE_REGISTERED(AllSelectionRule);
NS_OBJECT_ENSURE_REGISTERED(WlrSelectionRule);
NS_OBJECT_ENSURE_REGISTERED(StragglerSelectionRule);
NS_OBJECT_ENSURE_REGISTERED(EnergySelectionRule);

namespace
{

RuleRegistry&
Registry()
{
    static RuleRegistry registry("expert selection rule",
                                 &ExpertSelectionRule::GetTypeId,
                                 {{"all", "ns3::AllSelectionRule"},
                                  {"wlr", "ns3::WlrSelectionRule"},
                                  {"straggler", "ns3::StragglerSelectionRule"},
                                  {"energy", "ns3::EnergySelectionRule"}});
    return registry;
}

} // namespace

TypeId
ExpertSelectionRule::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::ExpertSelectionRule").SetParent<Object>().SetGroupName("Wdmoe");
    return tid;
}

bool
ExpertSelectionRule::KeepsEveryCandidate() const
{
    return false;
}

void
ExpertSelectionRule::Register(const std::string& name, const std::string& typeName)
{
    Registry().Register(name, typeName);
}

TypeId
ExpertSelectionRule::LookupRule(const std::string& nameOrType)
{
    return Registry().Lookup(nameOrType);
}

Ptr<ExpertSelectionRule>
ExpertSelectionRule::CreateRule(const std::string& nameOrType)
{
    return Registry().Create<ExpertSelectionRule>(nameOrType);
}

std::vector<std::string>
ExpertSelectionRule::Names()
{
    return Registry().Names();
}

std::string
ExpertSelectionRule::NameOf(Ptr<ExpertSelectionRule> rule)
{
    return Registry().NameOf(rule->GetInstanceTypeId());
}

TypeId
AllSelectionRule::GetTypeId()
{
    static TypeId tid = TypeId("ns3::AllSelectionRule")
                            .SetParent<ExpertSelectionRule>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<AllSelectionRule>();
    return tid;
}

std::vector<bool>
AllSelectionRule::Select(const std::vector<double>& weights, const SelectionContext& /*context*/)
{
    return std::vector<bool>(weights.size(), true);
}

bool
AllSelectionRule::KeepsEveryCandidate() const
{
    return true;
}

TypeId
WlrSelectionRule::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::WlrSelectionRule")
            .SetParent<ExpertSelectionRule>()
            .SetGroupName("Wdmoe")
            .AddConstructor<WlrSelectionRule>()
            .AddAttribute("Theta",
                          "A candidate runs when its weight per second of round trip is at "
                          "least Theta times the top-1's",
                          DoubleValue(0.5),
                          MakeDoubleAccessor(&WlrSelectionRule::m_theta),
                          MakeDoubleChecker<double>(0));
    return tid;
}

std::vector<bool>
WlrSelectionRule::Select(const std::vector<double>& weights, const SelectionContext& context)
{
    return SelectWeightToLatency(weights, context.roundTrips(), m_theta);
}

TypeId
StragglerSelectionRule::GetTypeId()
{
    const StragglerBounds defaults;
    static TypeId tid = TypeId("ns3::StragglerSelectionRule")
                            .SetParent<ExpertSelectionRule>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<StragglerSelectionRule>()
                            .AddAttribute("WeightMax",
                                          "The heaviest share of the kept weight a drop may remove",
                                          DoubleValue(defaults.weightMax),
                                          MakeDoubleAccessor(&StragglerSelectionRule::m_weightMax),
                                          MakeDoubleChecker<double>(0, 1))
                            .AddAttribute("GainMin",
                                          "The least relative gain in layer latency worth a drop",
                                          DoubleValue(defaults.gainMin),
                                          MakeDoubleAccessor(&StragglerSelectionRule::m_gainMin),
                                          MakeDoubleChecker<double>(0, 1))
                            .AddAttribute("Tradeoff",
                                          "kappa: expected loss accepted per unit of relative gain",
                                          DoubleValue(defaults.tradeoff),
                                          MakeDoubleAccessor(&StragglerSelectionRule::m_tradeoff),
                                          MakeDoubleChecker<double>(0));
    return tid;
}

std::vector<bool>
StragglerSelectionRule::Select(const std::vector<double>& weights, const SelectionContext& context)
{
    const StragglerBounds bounds{m_weightMax, m_gainMin, m_tradeoff};
    return SelectStragglers(weights, context.layerLatency, bounds, context.layerScale);
}

TypeId
EnergySelectionRule::GetTypeId()
{
    const EnergyBounds defaults;
    static TypeId tid =
        TypeId("ns3::EnergySelectionRule")
            .SetParent<ExpertSelectionRule>()
            .SetGroupName("Wdmoe")
            .AddConstructor<EnergySelectionRule>()
            .AddAttribute("WeightMin",
                          "The least fraction of the candidates' gating weight the kept ones carry",
                          DoubleValue(defaults.weightMin),
                          MakeDoubleAccessor(&EnergySelectionRule::m_weightMin),
                          MakeDoubleChecker<double>(0, 1))
            .AddAttribute("LatencySlack",
                          "The kept candidates' layer latency is at most (1 + LatencySlack) times "
                          "the fastest admissible subset's",
                          DoubleValue(defaults.latencySlack),
                          MakeDoubleAccessor(&EnergySelectionRule::m_latencySlack),
                          MakeDoubleChecker<double>(0));
    return tid;
}

std::vector<bool>
EnergySelectionRule::Select(const std::vector<double>& weights, const SelectionContext& context)
{
    return SelectMinEnergy(weights,
                           context.layerLatency,
                           context.layerEnergy,
                           EnergyBounds{m_weightMin, m_latencySlack});
}

} // namespace ns3
