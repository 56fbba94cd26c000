// Bandwidth allocation as an ns-3 object: how the BS splits the band among the devices a layer
// uses. The BS application holds one BandwidthAllocationRule, chosen once at set-up (by a
// registered name or a TypeId, see RuleRegistry); a new rule is one subclass and one Register
// call (doc/wdmoe.rst "Adding a policy rule"). The built-in rules wrap the functions of
// bandwidth-allocation.h. ("joint" is no rule of its own: the application alternates its
// selection rule with a minmax allocation rule.)
#ifndef WDMOE_BANDWIDTH_ALLOCATION_RULE_H
#define WDMOE_BANDWIDTH_ALLOCATION_RULE_H

#include "bandwidth-allocation.h"

#include "ns3/object.h"
#include "ns3/ptr.h"

#include <string>
#include <vector>

namespace ns3
{

class BandwidthAllocationRule : public Object
{
  public:
    static TypeId GetTypeId();

    /// The shares of the band, one per active device (never called with none), each in (0, 1]
    /// and summing to 1; roundTrip[i] is device i's predicted round trip at a given share.
    virtual std::vector<double> Allocate(const std::vector<RoundTripOfShare>& roundTrip) = 0;

    /// As ExpertSelectionRule's: a name ("minmax", or a program's own) for a TypeId name.
    static void Register(const std::string& name, const std::string& typeName);
    /// The TypeId of a registered name or of a subclass's TypeId name; throws
    /// std::invalid_argument listing the known names for any other.
    static TypeId LookupRule(const std::string& nameOrType);
    /// A new rule of that name or type with its attributes' defaults.
    static Ptr<BandwidthAllocationRule> CreateRule(const std::string& nameOrType);
    /// The registered names, sorted ("equal", "minmax", "proportional" and any added).
    static std::vector<std::string> Names();
    /// What the results call a rule: its registered name, else its TypeId name.
    static std::string NameOf(Ptr<BandwidthAllocationRule> rule);
};

/// "equal": 1/n each (EqualShares).
class EqualAllocationRule : public BandwidthAllocationRule
{
  public:
    static TypeId GetTypeId();
    std::vector<double> Allocate(const std::vector<RoundTripOfShare>& roundTrip) override;
};

/// "proportional": shares proportional to each device's predicted round trip at an equal
/// share, its expected load (ProportionalShares).
class ProportionalAllocationRule : public BandwidthAllocationRule
{
  public:
    static TypeId GetTypeId();
    std::vector<double> Allocate(const std::vector<RoundTripOfShare>& roundTrip) override;
};

/// "minmax": every device keeps Floor of its equal share; MinMaxShares splits the rest so that
/// the slowest round trip is as short as it can be. The floor guards devices the optimum
/// would starve against fading the BS cannot foresee. Attributes Floor, RelativeTolerance.
class MinMaxAllocationRule : public BandwidthAllocationRule
{
  public:
    static TypeId GetTypeId();
    std::vector<double> Allocate(const std::vector<RoundTripOfShare>& roundTrip) override;

  private:
    double m_floor = 0;
    double m_relativeTolerance = 1e-4;
};

} // namespace ns3

#endif
