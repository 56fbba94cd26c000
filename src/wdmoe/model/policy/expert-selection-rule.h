// Expert selection as an ns-3 object: which of the experts gating chose for a decode token run.
// The BS application holds one ExpertSelectionRule, chosen once at set-up (by a registered name
// or a TypeId, see RuleRegistry), and asks it at every decode layer; a new rule is one subclass
// and one Register call (doc/wdmoe.rst "Adding a policy rule"). The built-in rules wrap the
// functions of expert-selection.h.
#ifndef WDMOE_EXPERT_SELECTION_RULE_H
#define WDMOE_EXPERT_SELECTION_RULE_H

#include "expert-selection.h"

#include "ns3/object.h"
#include "ns3/ptr.h"

#include <functional>
#include <string>
#include <vector>

namespace ns3
{

/// The predictions a selection rule may use, for the current decode token and layer. Both
/// functions are computed on demand (a rule that needs neither costs nothing).
struct SelectionContext
{
    uint32_t layer = 0;
    /// The straggler rule's weight of this layer: F_l over the mean F, or 1 when the policy
    /// weighs every layer alike.
    double layerScale = 1.0;
    /// Each candidate's predicted round trip (s) under the band allocation of the current
    /// selection; a candidate outside it is priced on the share it would get as one more
    /// device of an equal split.
    std::function<std::vector<double>()> roundTrips;
    /// The layer's predicted latency (s) if exactly the marked candidates ran, the band split
    /// among their devices by the policy's allocation rule.
    LayerLatencyOf layerLatency;
    /// The devices' predicted energy (J) for the layer if exactly the marked candidates ran,
    /// under the same allocation (LatencyPredictor::DeviceEnergy); throws std::logic_error
    /// when the run has no energy predictions (a device profile without energy fields).
    LayerEnergyOf layerEnergy;
};

class ExpertSelectionRule : public Object
{
  public:
    static TypeId GetTypeId();

    /// Which candidates run: `weights` are the gating weights in gating order (index 0 the
    /// largest); the answer has one flag per candidate and must keep at least one.
    virtual std::vector<bool> Select(const std::vector<double>& weights,
                                     const SelectionContext& context) = 0;

    /// True for a rule that always keeps every candidate: the application then skips
    /// selection (and counts no selection rounds).
    virtual bool KeepsEveryCandidate() const;

    /// Makes `name` ("wlr", or a program's own "my-rule") stand for the TypeId named
    /// `typeName`; see RuleRegistry::Register.
    static void Register(const std::string& name, const std::string& typeName);
    /// The TypeId of a registered name or of a subclass's TypeId name; throws
    /// std::invalid_argument listing the known names for any other.
    static TypeId LookupRule(const std::string& nameOrType);
    /// A new rule of that name or type with its attributes' defaults.
    static Ptr<ExpertSelectionRule> CreateRule(const std::string& nameOrType);
    /// The registered names, sorted ("all", "straggler", "wlr" and any added).
    static std::vector<std::string> Names();
    /// What the results call a rule: its registered name, else its TypeId name.
    static std::string NameOf(Ptr<ExpertSelectionRule> rule);
};

/// "all": every candidate runs.
class AllSelectionRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId();
    std::vector<bool> Select(const std::vector<double>& weights,
                             const SelectionContext& context) override;
    bool KeepsEveryCandidate() const override;
};

/// "wlr": WDMoE's weight-to-latency ratio (SelectWeightToLatency) on the candidates' round
/// trips. Attribute Theta.
class WlrSelectionRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId();
    std::vector<bool> Select(const std::vector<double>& weights,
                             const SelectionContext& context) override;

  private:
    double m_theta = 0.5;
};

/// "straggler": our straggler rule (SelectStragglers) on the layer's predicted latency, weighed
/// by the layer's scale. Attributes WeightMax, GainMin, Tradeoff (StragglerBounds).
class StragglerSelectionRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId();
    std::vector<bool> Select(const std::vector<double>& weights,
                             const SelectionContext& context) override;

  private:
    double m_weightMax = StragglerBounds().weightMax;
    double m_gainMin = StragglerBounds().gainMin;
    double m_tradeoff = StragglerBounds().tradeoff;
};

/// "energy": our energy-aware baseline in the spirit of JESA (SelectMinEnergy): the least
/// predicted device energy within a latency slack, keeping a share of the gating weight.
/// Attributes WeightMin, LatencySlack (EnergyBounds).
class EnergySelectionRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId();
    std::vector<bool> Select(const std::vector<double>& weights,
                             const SelectionContext& context) override;

  private:
    double m_weightMin = EnergyBounds().weightMin;
    double m_latencySlack = EnergyBounds().latencySlack;
};

} // namespace ns3

#endif
