#include "bandwidth-allocation-rule.h"

#include "rule-registry.h"

#include "ns3/double.h"
#include "ns3/object-factory.h"

namespace ns3
{

NS_OBJECT_ENSURE_REGISTERED(BandwidthAllocationRule);
NS_OBJECT_ENSURE_REGISTERED(EqualAllocationRule);
NS_OBJECT_ENSURE_REGISTERED(ProportionalAllocationRule);
NS_OBJECT_ENSURE_REGISTERED(MinMaxAllocationRule);

namespace
{

RuleRegistry&
Registry()
{
    static RuleRegistry registry("bandwidth allocation rule",
                                 &BandwidthAllocationRule::GetTypeId,
                                 {{"equal", "ns3::EqualAllocationRule"},
                                  {"proportional", "ns3::ProportionalAllocationRule"},
                                  {"minmax", "ns3::MinMaxAllocationRule"}});
    return registry;
}

} // namespace

TypeId
BandwidthAllocationRule::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::BandwidthAllocationRule").SetParent<Object>().SetGroupName("Wdmoe");
    return tid;
}

void
BandwidthAllocationRule::Register(const std::string& name, const std::string& typeName)
{
    Registry().Register(name, typeName);
}

TypeId
BandwidthAllocationRule::LookupRule(const std::string& nameOrType)
{
    return Registry().Lookup(nameOrType);
}

Ptr<BandwidthAllocationRule>
BandwidthAllocationRule::CreateRule(const std::string& nameOrType)
{
    return Registry().Create<BandwidthAllocationRule>(nameOrType);
}

std::vector<std::string>
BandwidthAllocationRule::Names()
{
    return Registry().Names();
}

std::string
BandwidthAllocationRule::NameOf(Ptr<BandwidthAllocationRule> rule)
{
    return Registry().NameOf(rule->GetInstanceTypeId());
}

TypeId
EqualAllocationRule::GetTypeId()
{
    static TypeId tid = TypeId("ns3::EqualAllocationRule")
                            .SetParent<BandwidthAllocationRule>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<EqualAllocationRule>();
    return tid;
}

std::vector<double>
EqualAllocationRule::Allocate(const std::vector<RoundTripOfShare>& roundTrip)
{
    return EqualShares(roundTrip.size());
}

TypeId
ProportionalAllocationRule::GetTypeId()
{
    static TypeId tid = TypeId("ns3::ProportionalAllocationRule")
                            .SetParent<BandwidthAllocationRule>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<ProportionalAllocationRule>();
    return tid;
}

std::vector<double>
ProportionalAllocationRule::Allocate(const std::vector<RoundTripOfShare>& roundTrip)
{
    const double equal = 1.0 / roundTrip.size();
    std::vector<double> load;
    for (const RoundTripOfShare& f : roundTrip)
    {
        load.push_back(f(equal));
    }
    return ProportionalShares(load);
}

TypeId
MinMaxAllocationRule::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::MinMaxAllocationRule")
            .SetParent<BandwidthAllocationRule>()
            .SetGroupName("Wdmoe")
            .AddConstructor<MinMaxAllocationRule>()
            .AddAttribute("Floor",
                          "The fraction of its equal share of the band every device keeps; "
                          "minmax splits the rest",
                          DoubleValue(0.0),
                          MakeDoubleAccessor(&MinMaxAllocationRule::m_floor),
                          MakeDoubleChecker<double>(0, 1))
            .AddAttribute("RelativeTolerance",
                          "MinMaxShares' bound on the gap to the optimal slowest round trip, "
                          "relative to it",
                          DoubleValue(1e-4),
                          MakeDoubleAccessor(&MinMaxAllocationRule::m_relativeTolerance),
                          MakeDoubleChecker<double>(1e-12));
    return tid;
}

std::vector<double>
MinMaxAllocationRule::Allocate(const std::vector<RoundTripOfShare>& roundTrip)
{
    const double floor = m_floor / roundTrip.size();
    const double rest = 1.0 - floor * roundTrip.size();
    std::vector<RoundTripOfShare> ofRest;
    for (const RoundTripOfShare& f : roundTrip)
    {
        ofRest.push_back([f, floor, rest](double share) { return f(floor + rest * share); });
    }
    std::vector<double> shares = MinMaxShares(ofRest, m_relativeTolerance).shares;
    for (double& s : shares)
    {
        s = floor + rest * s;
    }
    return shares;
}

} // namespace ns3
