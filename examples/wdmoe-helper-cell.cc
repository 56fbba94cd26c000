// Example: a wdmoe cell built with WdmoeHelper, in ns-3's own way: the program makes the
// nodes and their positions, the helper installs the applications (the BS's MoeInferenceApp
// and an ExpertDeviceApp on every device node), the program connects its own trace sinks and
// calls Simulator::Run itself. No JSON.
//
// Four Jetson AGX Orin devices stand 100 to 400 m from an edge-server BS on a 100 MHz shared
// band (3GPP UMa at 3.5 GHz). The 32-layer embedded model (models/kjv-moe-32) scores 24 tokens
// of its held-out text, each pass one token (a one-token prompt), priced as all 32 layers of
// Mixtral-8x7B. The program counts tokens and expert returns with its own sinks and checks
// them against the stats collector that makes summary.json and tokens.csv: the same events.
//
// Run it from the repository root: build/bin/wdmoe-helper-cell [--devices=4]

#include "ns3/core-module.h"
#include "ns3/file-io.h"
#include "ns3/mixtral-model.h"
#include "ns3/mobility-module.h"
#include "ns3/network-module.h"
#include "ns3/profile-reader.h"
#include "ns3/tokenizer.h"
#include "ns3/wdmoe-helper.h"
#include "ns3/wdmoe-stats-collector.h"

#include <cmath>
#include <cstdio>
#include <exception>

using namespace ns3;

namespace
{

uint32_t g_tokens = 0;  ///< TokenLatency events seen by this program's sink
uint32_t g_returns = 0; ///< ExpertReturn events seen by this program's sink

void
CountToken(uint32_t, Time)
{
    ++g_tokens;
}

void
CountReturn(uint32_t, uint32_t, uint32_t)
{
    ++g_returns;
}

} // namespace

int
main(int argc, char** argv)
{
    uint32_t devices = 4;
    CommandLine cmd(__FILE__);
    cmd.AddValue("devices", "number of expert devices (1 to 16)", devices);
    cmd.Parse(argc, argv);
    if (devices < 1 || devices > 16)
    {
        std::fprintf(stderr, "wdmoe-helper-cell: --devices must be 1 to 16\n");
        return 2;
    }
    try
    {
        // The model that runs and routes, and the tokens it scores.
        const std::string modelDir = "models/kjv-moe-32";
        auto model =
            std::shared_ptr<wdmoe::llm::MixtralModel>(wdmoe::llm::MixtralModel::Load(modelDir));
        const auto text = wdmoe::llm::ReadWholeFile(modelDir + "/heldout.txt");
        NS_ABORT_MSG_UNLESS(text, "cannot read " << modelDir << "/heldout.txt");
        const auto tokenizer = wdmoe::llm::Tokenizer::ForModel(modelDir, model->Config());

        // Nodes and positions: the program's own.
        NodeContainer bs;
        bs.Create(1);
        NodeContainer cell;
        cell.Create(devices);
        MobilityHelper mobility;
        Ptr<ListPositionAllocator> positions = CreateObject<ListPositionAllocator>();
        positions->Add(Vector(0, 0, 25));
        for (uint32_t i = 0; i < devices; ++i)
        {
            const double r = 100 + 300.0 * i / std::max<uint32_t>(1, devices - 1);
            const double a = 2 * M_PI * i / devices;
            positions->Add(Vector(r * std::cos(a), r * std::sin(a), 1.5));
        }
        mobility.SetPositionAllocator(positions);
        mobility.Install(bs);
        mobility.Install(cell);

        // The cell, in the helper's terms.
        WdmoeHelper wdmoe;
        wdmoe.SetChannelAttribute("PropagationLossModel",
                                  PointerValue(WdmoeChannel::CreateThreeGppUma(3.5e9)));
        wdmoe.SetBandPlan(BandPlan::FromConfig(DuplexMode::SHARED, 100e6, 0.5));
        wdmoe.SetModel(model);
        wdmoe.SetWorkload(tokenizer->Encode(*text), 1, 24);
        wdmoe.SetCostModel(CostModel::Mixtral8x7B());
        wdmoe.SetBsProfile(LoadComputeProfile("configs/profiles/edge-server-gpu.json"));
        wdmoe.SetDeviceProfile(LoadComputeProfile("configs/profiles/jetson-agx-orin.json"));
        wdmoe.SetPlacement(PlacementAlgorithm::MIN_COST, false);
        wdmoe.SetExpertSlots(64, 64, true); // 64 in memory, all hosted experts
        wdmoe.Install(bs.Get(0), cell);
        wdmoe.AssignStreams(0);

        // The collector that makes the result files, and this program's own sinks.
        WdmoeStatsCollector stats(model->Config().numHiddenLayers);
        stats.Connect();
        Config::ConnectWithoutContext(
            "/NodeList/*/ApplicationList/*/$ns3::MoeInferenceApp/TokenLatency",
            MakeCallback(&CountToken));
        Config::ConnectWithoutContext(
            "/NodeList/*/ApplicationList/*/$ns3::MoeInferenceApp/ExpertReturn",
            MakeCallback(&CountReturn));

        Simulator::Run();
        Simulator::Destroy();

        // Every pass is one token, so each expert return is one expert run for one token.
        std::printf("tokens: %u seen by this program, %zu by the collector\n",
                    g_tokens,
                    stats.Tokens().size());
        std::printf("expert returns: %u seen by this program, %lld experts run by the collector\n",
                    g_returns,
                    stats.ExpertsRun());
        const bool ok = g_tokens == 24 && g_tokens == stats.Tokens().size() &&
                        (long long)g_returns == stats.ExpertsRun();
        std::printf("%s\n", ok ? "counts agree" : "COUNTS DISAGREE");
        return ok ? 0 : 1;
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "wdmoe-helper-cell: %s\n", e.what());
        return 1;
    }
}
