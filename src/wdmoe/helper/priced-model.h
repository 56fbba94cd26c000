// Which architecture a scenario prices, as its "cost_model" field says (DESIGN.md section 4,
// "Cost model vs computed model"), and over how many of its layers.
#ifndef WDMOE_PRICED_MODEL_H
#define WDMOE_PRICED_MODEL_H

#include "cost-model.h"

#include <string>

namespace ns3
{

class JsonConfigReader;

/// The "cost_model" field, parsed: "self", a preset name, {"preset": NAME, "layers": N |
/// "routed"} or inline dimensions (ReadCostModel's keys). A token's latency sums the
/// routed model's layers, each priced as one layer of the priced architecture, so the two must
/// have the same depth unless "layers" is "routed": then only the routed layers are priced and
/// the results say "latency covers N of M layers".
struct PricedModel
{
    bool self = false;             ///< the routed model's own dimensions and weight type
    CostModel architecture;        ///< a preset or inline dimensions (unused when self)
    bool routedLayersOnly = false; ///< "layers": "routed"

    /// Reads root's "cost_model" (default "mixtral-8x7b"); errors name the file and the field.
    static PricedModel Read(const JsonConfigReader& root);

    /// The cost model of a run routed by a model of routedLayers layers (self: the given
    /// dimensions). A priced depth other than routedLayers, without "layers": "routed", is a
    /// JsonConfigError naming both numbers.
    CostModel Resolve(const JsonConfigReader& root,
                      const CostModel& routedDimensions,
                      int routedLayers) const;

    /// "latency covers N of M layers" (N routed layers in every token's latency, M the priced
    /// architecture's depth).
    static std::string CoverageText(int layersInLatency, int pricedLayers);
};

} // namespace ns3

#endif
