// What a scenario loads and derives from its config before the cell is built: the model, the
// tokens it scores (checked against the workload and the calibration texts), the priced model,
// the profiles, the DP cache split's routing profile, and each device's expert slots.
#ifndef WDMOE_SCENARIO_INPUTS_H
#define WDMOE_SCENARIO_INPUTS_H

#include "calibration.h"
#include "compute-profile.h"
#include "cost-model.h"
#include "json-config.h"
#include "mixtral-model.h"
#include "scenario-config.h"

#include <memory>
#include <utility>
#include <vector>

namespace ns3
{

/// What a scenario runs and prices: the model, the tokens it scores, the cost model, the
/// profiles and (for the DP cache split and the popularity placements) the routing profile.
struct ScenarioInputs
{
    std::shared_ptr<wdmoe::llm::MixtralModel> model;
    std::vector<int> tokens;
    std::size_t textStart = 0;
    wdmoe::llm::RoutingProfile routingProfile;
    CostModel cost = CostModel::Mixtral8x7B();
    ComputeProfile bsProfile;
    std::vector<ComputeProfile> deviceProfiles; ///< one per device, in the cell's order
};

/// Expert slots of every device, in the cell's order: kept in memory (memory_fraction x its
/// profile's memory / the priced expert's bytes), and hosted on storage (storage_slots, else
/// the memory slots).
struct DeviceSlots
{
    std::vector<int> memory;
    std::vector<int> storage;
};

/// The inputs of config c; errors name c's file and field (root).
ScenarioInputs LoadInputs(const ScenarioConfig& c, const JsonConfigReader& root);

/// Serving: the BS memory for the requests' KV caches, floor(serving.kv_memory_fraction x the
/// BS profile's memory) bytes.
double KvMemoryBytes(const ScenarioConfig& c, const ScenarioInputs& in);

/// Expert slots of every device from the config; devices that cannot hold the model together
/// fail "devices" (or "devices.storage_slots").
DeviceSlots ExpertSlots(const ScenarioConfig& c,
                        const JsonConfigReader& root,
                        const ScenarioInputs& in);

} // namespace ns3

#endif
