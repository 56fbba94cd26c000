// What a run reports as warnings (stderr and summary.json's "warnings") instead of changing
// nothing in silence: a failure aimed at a device that holds no expert, and tensors the weights
// loader skipped.
#ifndef WDMOE_SCENARIO_WARNINGS_H
#define WDMOE_SCENARIO_WARNINGS_H

#include "expert-placement.h"
#include "wdmoe-scenario.h"

#include <string>
#include <vector>

namespace ns3
{

/// One line per failure whose device holds no expert (its switch-off changes no result), in
/// the config's order, naming the failures[i] entry and the device.
std::vector<std::string> FailureWarnings(const std::vector<ScenarioConfig::Failure>& failures,
                                         const ExpertPlacement& placement);

} // namespace ns3

#endif
