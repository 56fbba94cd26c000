// summary.json of a finished scenario: the config, the models, the cell, the policy as it ran,
// the collector's statistics, and the LTE transport's figures when it carried the run.
#ifndef WDMOE_SCENARIO_SUMMARY_H
#define WDMOE_SCENARIO_SUMMARY_H

#include "inference-policy.h"
#include "lte-transport.h"
#include "scenario-config.h"
#include "scenario-inputs.h"
#include "wdmoe-stats-collector.h"

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

/// summary.json: the config, the models, the cell, then the collector's statistics. `ran` is
/// the BS application's policy as it ran: its rule objects, the config's or the program's own.
nlohmann::ordered_json ScenarioSummary(const ScenarioConfig& c,
                                       const ScenarioInputs& in,
                                       const DeviceSlots& slots,
                                       const WdmoeStatsCollector& stats,
                                       const std::vector<std::vector<int>>& slotsOf,
                                       const std::vector<std::string>& warnings,
                                       const InferencePolicy& ran);

/// summary.json's "lte": the settings and what each direction carried.
nlohmann::ordered_json LteSummary(const ScenarioConfig& c, LteTransport& lte);

} // namespace ns3

#endif
