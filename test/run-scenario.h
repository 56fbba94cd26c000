// Tests run a scenario to its end in one call: build it, run the simulation, collect, and
// destroy the simulation even when the set-up or the collection throws.
#ifndef WDMOE_TEST_RUN_SCENARIO_H
#define WDMOE_TEST_RUN_SCENARIO_H

#include "wdmoe-helper.h"
#include "wdmoe-scenario.h"

#include "ns3/simulator.h"

#include <functional>

namespace ns3
{

/// beforeRun, when given, gets the BS application before the simulation runs (to connect its
/// trace sources).
inline ScenarioResult
RunScenario(const ScenarioConfig& config,
            const std::function<void(Ptr<MoeInferenceApp>)>& beforeRun = {})
{
    struct DestroyAtExit
    {
        ~DestroyAtExit() { Simulator::Destroy(); }
    } destroy;

    WdmoeScenario scenario(config);
    if (beforeRun)
    {
        beforeRun(scenario.GetBsApp());
    }
    Simulator::Run();
    return scenario.Collect();
}

} // namespace ns3

#endif
