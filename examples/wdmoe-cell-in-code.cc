// Example: a whole wdmoe cell built in C++, without a JSON config file.
//
// ScenarioConfig holds every field of a scenario config in SI units; ScenarioConfig::Load fills
// it from a file, but a program may equally set the fields itself. This one builds a small cell
// (4 Jetson AGX Orin devices around an edge-server BS, 100 MHz, log-distance path loss), lets
// the embedded model (models/kjv-moe) score 32 tokens of its held-out text after a 16-token
// prompt, priced as Mixtral-8x7B, and prints the summary: decode latency, its breakdown along
// the critical path, perplexity and agreement with the unmodified top-k model. The first few
// token latencies are printed as they happen, from MoeInferenceApp's TokenLatency trace source.
//
// Run it from the repository root (the paths below are relative to it):
//
//   build/bin/wdmoe-cell-in-code [--devices=4] [--run=1]

#include "ns3/core-module.h"
#include "ns3/moe-inference-app.h"
#include "ns3/profile-reader.h"
#include "ns3/wdmoe-scenario.h"

#include <cstdio>
#include <exception>
#include <stdexcept>

using namespace ns3;

NS_LOG_COMPONENT_DEFINE("WdmoeCellInCode");

namespace
{

/// How many token latencies TokenLatency prints as they happen.
const uint32_t kTokensShown = 4;

/// Sink of MoeInferenceApp's TokenLatency trace source: index 0 is the prompt's prefill, the
/// following ones decode steps (a new prefill starts when the model's context is full).
void
TokenLatency(uint32_t index, Time latency)
{
    if (index < kTokensShown)
    {
        std::printf("  t = %8.3f ms: token %u done, latency %.3f ms\n",
                    Simulator::Now().GetSeconds() * 1e3,
                    index,
                    latency.GetSeconds() * 1e3);
    }
}

} // namespace

int
main(int argc, char** argv)
{
    int devices = 4;
    uint32_t run = 1;

    CommandLine cmd(__FILE__);
    cmd.Usage("Builds a wdmoe scenario in C++ (no config file), runs it and prints the "
              "summary (run from the repository root).");
    cmd.AddValue("devices", "number of expert devices", devices);
    cmd.AddValue("run", "RngRun of the scenario (device positions, shadowing, fading)", run);
    cmd.Parse(argc, argv);

    try
    {
        ScenarioConfig config;
        // Not a file: `file` only labels messages and summary["config"]. `echo` (the config as
        // read) is copied into the summary and must be a JSON object.
        config.file = "wdmoe-cell-in-code";
        config.echo = {{"description", "built in C++ by examples/wdmoe-cell-in-code.cc"}};

        // The model that runs and routes, and the text it scores (teacher forcing).
        config.modelDir = "models/kjv-moe";
        config.textPath = "models/kjv-moe/heldout.txt";
        config.promptTokens = 16;
        config.scoredTokens = 32;
        // The model that is priced: Mixtral-8x7B, over the 4 routed layers only (the latency
        // covers 4 of its 32 layers; models/kjv-moe-32 routes all 32).
        config.pricedModel.architecture = CostModel::Mixtral8x7B();
        config.pricedModel.routedLayersOnly = true;

        // The cell: everything not set keeps the defaults of DESIGN.md section 4.
        config.bandwidthHz = 100e6;
        // 128.1 + 37.6 log10(d/km), 8 dB shadowing
        config.propagation = CellPropagation::LOG_DISTANCE_128;
        config.radiusM = 500;
        config.minDistanceM = 35;

        // The nodes. A config file's profile names are looked up in "profiles" beside the file,
        // then in the project's configs/profiles; here the folder is given directly.
        config.profileFolders = {ProjectProfilesFolder()};
        config.bsProfile = "edge-server-gpu";
        config.deviceProfile = "jetson-agx-orin";
        config.devices = devices;
        config.placement = PlacementAlgorithm::MIN_COST;

        config.seed = 1;
        config.run = run;
        if (devices < 1)
        {
            throw std::invalid_argument("--devices must be at least 1");
        }
        config.Validate(); // relations between fields, and that the profiles exist

        // WdmoeScenario builds the nodes, the channel and the applications; the program
        // connects its own trace sink, runs the simulation and collects the results.
        std::printf("first %u tokens, as they finish:\n", kTokensShown);
        WdmoeScenario scenario(config);
        const bool connected = scenario.GetBsApp()->TraceConnectWithoutContext(
            "TokenLatency",
            MakeCallback(&TokenLatency));
        NS_ABORT_MSG_UNLESS(connected, "MoeInferenceApp has no TokenLatency trace source");
        Simulator::Run();
        const ScenarioResult result = scenario.Collect();
        Simulator::Destroy();
        const auto& s = result.summary;

        std::printf("%d x %s, BS %s, %.0f MHz, %s; routed by %s, priced as %s\n",
                    devices,
                    config.deviceProfile.c_str(),
                    config.bsProfile.c_str(),
                    config.bandwidthHz / 1e6,
                    CellPropagationName(config.propagation).c_str(),
                    s["model_routed"]["dir"].get<std::string>().c_str(),
                    s["model_priced"]["name"].get<std::string>().c_str());
        std::printf("%d predictions scored, %d of them decode steps\n",
                    s["tokens_scored"].get<int>(),
                    s["decode_tokens"].get<int>());
        std::printf("decode latency: mean %.3f ms, p95 %.3f ms\n",
                    s["latency_ms"]["mean"].get<double>(),
                    s["latency_ms"]["p95"].get<double>());
        std::printf("mean breakdown (ms):");
        for (const auto& [part, ms] : s["latency_breakdown_ms"].items())
        {
            std::printf(" %s %.3f", part.c_str(), ms.get<double>());
        }
        std::printf("\nperplexity %.4f, top-1 agreement with top-k %.3f\n",
                    s["perplexity"].get<double>(),
                    s["top1_agreement_with_topk"].get<double>());
        return 0;
    }
    catch (const std::exception& e) // bad field, missing model or text, ...
    {
        std::fprintf(stderr, "wdmoe-cell-in-code: %s\n", e.what());
        return 1;
    }
}
