// Example: a selection rule of a program's own, added without editing the module.
//
// A rule is one subclass of ExpertSelectionRule (or BandwidthAllocationRule) with a TypeId, and
// one Register call that gives it a name; the BS application asks whatever rule it is given.
// This one, "slower-second", keeps the top-1 expert and drops any other candidate whose
// predicted round trip exceeds the top-1's by more than Factor (a cheap straggler guard that
// ignores the weights). The program runs the same small cell (4 Jetson AGX Orins, the embedded
// 4-layer model scoring 24 tokens) twice, with Factor 1 and with a Factor that never drops, and
// checks that the application ran exactly the experts the rule kept (the summary's experts per
// token-layer against the rule's own count) and that Factor 1 dropped some. Exit code 1 on a
// failed check.
//
// Run it from the repository root: build/bin/wdmoe-custom-rule

#include "ns3/core-module.h"
#include "ns3/expert-selection-rule.h"
#include "ns3/moe-inference-app.h"
#include "ns3/profile-reader.h"
#include "ns3/wdmoe-scenario.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

using namespace ns3;

namespace
{

/// Keeps the top-1 and every candidate at most Factor times as slow as the top-1.
class SlowerSecondRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("ns3::SlowerSecondRule")
                                .SetParent<ExpertSelectionRule>()
                                .SetGroupName("Wdmoe")
                                .AddConstructor<SlowerSecondRule>()
                                .AddAttribute("Factor",
                                              "Drop a candidate slower than Factor x the top-1",
                                              DoubleValue(2.0),
                                              MakeDoubleAccessor(&SlowerSecondRule::m_factor),
                                              MakeDoubleChecker<double>(1.0));
        return tid;
    }

    std::vector<bool> Select(const std::vector<double>& weights,
                             const SelectionContext& context) override
    {
        // Predicted round trips under the current band allocation (computed on demand).
        const std::vector<double> tau = context.roundTrips();
        std::vector<bool> keep(weights.size(), true); // index 0 is gating's top-1
        for (std::size_t k = 1; k < weights.size(); ++k)
        {
            keep[k] = tau[k] <= m_factor * tau[0];
            kept += keep[k];
        }
        kept += 1;
        ++calls;
        return keep;
    }

    uint64_t calls = 0; ///< decode token-layers it decided
    uint64_t kept = 0;  ///< experts it kept, summed over them

  private:
    double m_factor = 2.0;
};

NS_OBJECT_ENSURE_REGISTERED(SlowerSecondRule);

/// A small cell, as examples/wdmoe-cell-in-code.cc builds it.
ScenarioConfig
SmallCell()
{
    ScenarioConfig config;
    config.file = "wdmoe-custom-rule";
    config.echo = {{"description", "built in C++ by examples/wdmoe-custom-rule.cc"}};
    config.modelDir = "models/kjv-moe";
    config.textPath = "models/kjv-moe/heldout.txt";
    config.promptTokens = 16;
    config.scoredTokens = 24;
    config.pricedModel.architecture = CostModel::Mixtral8x7B();
    config.pricedModel.routedLayersOnly = true;
    config.bandwidthHz = 100e6;
    config.propagation = CellPropagation::LOG_DISTANCE_128;
    config.profileFolders = {ProjectProfilesFolder()};
    config.bsProfile = "edge-server-gpu";
    config.deviceProfile = "jetson-agx-orin";
    config.devices = 4;
    config.Validate();
    return config;
}

/// Runs the cell with the rule registered as "slower-second" at `factor`; false on a failed
/// check. `dropped` tells whether the rule dropped any expert.
bool
RunWith(double factor, bool& dropped)
{
    // Chosen by name through the registry, like the built-ins ("wlr", "straggler").
    Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("slower-second");
    rule->SetAttribute("Factor", DoubleValue(factor));
    WdmoeScenario scenario(SmallCell());
    scenario.GetBsApp()->SetSelectionRule(rule);
    Simulator::Run();
    const ScenarioResult result = scenario.Collect();
    Simulator::Destroy();
    const auto& s = result.summary;
    const Ptr<SlowerSecondRule> own = DynamicCast<SlowerSecondRule>(rule);
    const double ruleRate = own->calls ? double(own->kept) / own->calls : 0.0;
    const double appRate = s["experts_per_token_layer"].get<double>();
    std::printf("Factor %g: the rule decided %llu token-layers, kept %.4f experts each; the "
                "run's summary says %.4f; decode latency mean %.3f ms\n",
                factor,
                (unsigned long long)own->calls,
                ruleRate,
                appRate,
                s["latency_ms"]["mean"].get<double>());
    dropped = own->kept < 2 * own->calls;
    // Every decode token-layer asked the rule, and the app ran exactly what it kept.
    // The summary names the rule that ran, by its registered name.
    const std::string named = s["policy"]["selection"].get<std::string>();
    std::printf("summary.json's policy.selection: %s\n", named.c_str());
    return own->calls > 0 && std::abs(ruleRate - appRate) < 1e-12 && named == "slower-second";
}

} // namespace

int
main(int argc, char** argv)
{
    CommandLine cmd(__FILE__);
    cmd.Usage("Registers a selection rule of its own, runs a small cell with it and checks it "
              "(run from the repository root).");
    cmd.Parse(argc, argv);
    try
    {
        // The one line that makes the rule known by name (no edit of the module).
        ExpertSelectionRule::Register("slower-second", "ns3::SlowerSecondRule");
        bool droppedStrict = false;
        bool droppedLoose = true;
        const bool ok = RunWith(1.0, droppedStrict) && RunWith(1e9, droppedLoose);
        if (!ok || !droppedStrict || droppedLoose)
        {
            std::fprintf(stderr,
                         "wdmoe-custom-rule: FAILED (runs agree with the rule: %d; Factor 1 "
                         "dropped: %d; Factor 1e9 dropped: %d)\n",
                         ok,
                         droppedStrict,
                         droppedLoose);
            return 1;
        }
        std::printf("ok\n");
        return 0;
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "wdmoe-custom-rule: %s\n", e.what());
        return 1;
    }
}
