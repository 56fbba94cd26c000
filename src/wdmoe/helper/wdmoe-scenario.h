// A scenario: the cell a ScenarioConfig (scenario-config.h) builds, and its results.
#ifndef WDMOE_SCENARIO_H
#define WDMOE_SCENARIO_H

#include "moe-inference-app.h"
#include "scenario-config.h"

#include "ns3/ptr.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ns3
{

class MoeInferenceApp;

/// Summary of a finished run, as written to summary.json.
struct ScenarioResult
{
    nlohmann::ordered_json summary;
    std::string tokensCsv;
    std::vector<TokenRecord> records; ///< the rows of tokens.csv
};

/// Builds the cell of config on ns-3 nodes, runs the workload through the model and returns
/// the summary and the per-token table. Uses RngSeedManager seed/run from the config.
/// beforeRun, when given, is called with the application once it is installed and before the
/// simulation runs, e.g. to connect its trace sources.
ScenarioResult RunScenario(const ScenarioConfig& config,
                           const std::function<void(Ptr<MoeInferenceApp>)>& beforeRun = {});

/// Writes summary.json and tokens.csv into outDir, each atomically.
void WriteScenarioResult(const ScenarioResult& result, const std::string& outDir);

} // namespace ns3

#endif
