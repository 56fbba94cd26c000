// A scenario: the cell a ScenarioConfig (scenario-config.h) builds, and its results.
#ifndef WDMOE_SCENARIO_H
#define WDMOE_SCENARIO_H

#include "moe-inference-app.h"
#include "scenario-config.h"

#include "ns3/ptr.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ns3
{

class MoeInferenceApp;
class WdmoeHelper;

/// Summary of a finished run, as written to summary.json.
struct ScenarioResult
{
    nlohmann::ordered_json summary;
    std::string tokensCsv;
    std::string transfersCsv;         ///< every exchange's transfer times
    std::string devicesCsv;           ///< each device's profile, experts held, utilisation
    std::string requestsCsv;          ///< serving: every request (empty otherwise)
    std::vector<TokenRecord> records; ///< the rows of tokens.csv
    /// With lte.pcap or lte.netanim: the folder the trace files were written to
    /// (ScenarioConfig::traceDir) and their names in it; empty otherwise.
    std::string traceDir;
    std::vector<std::string> traceFiles;
};

/**
 * \ingroup wdmoe
 * The cell of a ScenarioConfig, built on fresh ns-3 nodes through WdmoeHelper, with a stats
 * collector connected. The library never runs the simulation: the program that made the scenario
 * may add its own nodes, events and trace sinks, then calls Simulator::Run(), then Collect(),
 * then Simulator::Destroy():
 *
 *     WdmoeScenario scenario(config);
 *     Simulator::Run();
 *     ScenarioResult result = scenario.Collect();
 *     Simulator::Destroy();
 *
 * Sets RngSeedManager's seed and run from the config. One scenario per simulation.
 */
class WdmoeScenario
{
  public:
    explicit WdmoeScenario(const ScenarioConfig& config);
    ~WdmoeScenario();
    WdmoeScenario(const WdmoeScenario&) = delete;
    WdmoeScenario& operator=(const WdmoeScenario&) = delete;

    /// The helper that built the cell (its applications, channel, placement).
    WdmoeHelper& Helper();
    Ptr<MoeInferenceApp> GetBsApp() const;

    /// After Simulator::Run and before Simulator::Destroy: summary.json, tokens.csv,
    /// transfers.csv and devices.csv. Throws
    /// when the run did not score every token or the channel could not cover it. The timing's
    /// wall seconds count from the end of the set-up to this call.
    ScenarioResult Collect() const;

  private:
    struct State;
    std::unique_ptr<State> m_state;
};

/// The folder of a run's LTE trace files inside its results folder.
inline const char* const kLteTraceFolder = "lte-traces";

/// Writes tokens.csv, transfers.csv, devices.csv, requests.csv (serving) and then summary.json
/// into outDir, each atomically; then, with trace files, renames their folder to outDir/lte-traces (replacing an
/// older one).
void WriteScenarioResult(const ScenarioResult& result, const std::string& outDir);

} // namespace ns3

#endif
