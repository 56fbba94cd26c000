// Cost of the network simulation around the model: a whole scenario (ns-3 cell + MoeInferenceApp)
// against the same forward passes run without ns-3 in the same process, and the wall time per
// simulated token as the number of devices grows. Prints `name: value` lines.

#include "bench-util.h"
#include "mixtral-model.h"
#include "routing.h"
#include "tokenizer.h"

#include "ns3/wdmoe-scenario.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ns3;
using namespace wdmoe::llm;
using wdmoe::bench::Median;

namespace
{

const char* kUsage =
    "usage: wdmoe bench sim [--runs N] [--tokens N]\n"
    "1. Simulation overhead: wall time of a scenario (models/kjv-moe on its heldout.txt, 64\n"
    "   prompt + --tokens scored tokens (default 256), 8 jetson-agx-orin devices, an\n"
    "   edge-server-gpu BS, 100 MHz, 3gpp-uma, priced as mixtral-8x7b, 1 thread) over the wall\n"
    "   time of the same forward passes without ns-3 (LayerStepper with the model's own top-k,\n"
    "   plus the reference Forward the app runs per pass). Both sides include loading the\n"
    "   model and the text. Median of --runs N alternating runs per side (default 7) after a\n"
    "   warm-up of each: scenario_s, forward_only_s, sim_overhead = scenario / forward-only.\n"
    "2. Scaling: wall time per simulated token at 8, 64 and 512 devices (min-cost placement),\n"
    "   (time with --tokens scored tokens - time with 32) / (--tokens - 32), so that setup\n"
    "   cancels; medians of min(N, 3) runs: per_token_ms_{8,64,512}, per_token_512_over_8.\n";

double
Now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

ScenarioConfig
MakeConfig(int devices, int scoredTokens)
{
    ScenarioConfig config;
    config.file = "bench-sim";
    config.echo = nlohmann::json::object();
    config.modelDir = "models/kjv-moe";
    config.threads = 1;
    config.textPath = "models/kjv-moe/heldout.txt";
    config.promptTokens = 64;
    config.scoredTokens = scoredTokens;
    config.pricedModel.architecture = CostModel::Mixtral8x7B();
    config.pricedModel.routedLayersOnly = true; // the 4-layer model: 4 of Mixtral's 32 layers
    config.bandwidthHz = 100e6;
    config.propagation = "3gpp-uma";
    config.profilesDir = "configs/profiles";
    config.bsProfile = "edge-server-gpu";
    config.deviceProfile = "jetson-agx-orin";
    config.devices = devices;
    config.placement = "min-cost";
    config.Validate();
    return config;
}

/// Wall seconds of RunScenario(config), model loading included.
double
TimeScenario(const ScenarioConfig& config)
{
    const double start = Now();
    const ScenarioResult result = RunScenario(config);
    const double s = Now() - start;
    if (result.summary["tokens_scored"].get<int>() != config.scoredTokens)
    {
        throw std::runtime_error("the scenario scored " + result.summary["tokens_scored"].dump() +
                                 " tokens, not " + std::to_string(config.scoredTokens));
    }
    return s;
}

/// Wall seconds of the scenario's model work without ns-3: load the model, read and tokenize
/// the text, then the passes of MoeInferenceApp (StartPass's windows, LayerStepper with the
/// model's own top-k, logits and NLL, and the reference Forward per pass). *sink collects the
/// NLL so that nothing is optimised away.
double
TimeForwardOnly(const ScenarioConfig& c, double* sink)
{
    const double start = Now();
    LoadOptions options;
    options.threads = c.threads;
    std::shared_ptr<MixtralModel> model(MixtralModel::Load(c.modelDir, options));
    const ModelConfig& mc = model->Config();
    auto tokenizer = Tokenizer::ForModel(c.modelDir, mc);
    std::ifstream in(c.textPath, std::ios::binary);
    if (!in)
    {
        throw std::runtime_error("cannot read " + c.textPath);
    }
    std::ostringstream text;
    text << in.rdbuf();
    const std::vector<int> tokens = tokenizer->Encode(text.str());
    if (std::size_t(c.promptTokens) + std::size_t(c.scoredTokens) > tokens.size())
    {
        throw std::runtime_error("the text is too short for the workload");
    }

    KvCache cache = model->NewCache();
    KvCache referenceCache = model->NewCache();
    const int vocab = mc.vocabSize;
    std::vector<int> passTokens;
    std::vector<RoutingDecision> decisions;
    std::vector<float> logits, reference;
    int nextToken = 0, scored = 0, request = -1;
    double nll = 0;
    while (true)
    {
        // MoeInferenceApp::StartPass
        passTokens.clear();
        if (request < 0 || cache.Length() >= cache.Capacity())
        {
            const int begin = request < 0 ? 0 : nextToken - c.promptTokens + 1;
            ++request;
            cache.Clear();
            referenceCache.Clear();
            passTokens.assign(tokens.begin() + begin, tokens.begin() + begin + c.promptTokens);
            nextToken = begin + c.promptTokens;
        }
        else
        {
            passTokens.push_back(tokens[nextToken]);
            ++nextToken;
        }
        const int n = int(passTokens.size());
        // StartLayer / DispatchLayer / FinishLayer, without the cell
        LayerStepper pass(*model, cache, passTokens.data(), n);
        while (!pass.Done())
        {
            pass.Attend();
            decisions.assign(n, RoutingDecision());
            for (int i = 0; i < n; ++i)
            {
                const RoutingRequest r = pass.Request(i);
                TopKDecision(r.gateProbs, r.numExperts, r.topK, decisions[i]);
            }
            pass.RunExperts(decisions);
        }
        // FinishPass
        logits.resize(std::size_t(n) * vocab);
        pass.Logits(logits.data());
        reference.resize(logits.size());
        model->Forward(referenceCache, passTokens.data(), n, reference.data());
        const float* last = &logits[std::size_t(n - 1) * vocab];
        const float* refLast = &reference[std::size_t(n - 1) * vocab];
        const int target = tokens[nextToken];
        const float maxLogit = *std::max_element(last, last + vocab);
        double sum = 0;
        for (int v = 0; v < vocab; ++v)
        {
            sum += std::exp(double(last[v]) - maxLogit);
        }
        nll += std::log(sum) + maxLogit - last[target];
        nll += (std::max_element(last, last + vocab) - last) ==
               (std::max_element(refLast, refLast + vocab) - refLast);
        ++scored;
        if (scored >= c.scoredTokens || nextToken + 1 >= int(tokens.size()))
        {
            break;
        }
    }
    const double s = Now() - start;
    *sink += nll;
    if (scored != c.scoredTokens)
    {
        throw std::runtime_error("the forward-only loop scored " + std::to_string(scored) +
                                 " tokens, not " + std::to_string(c.scoredTokens));
    }
    return s;
}

} // namespace

int
main(int argc, char** argv)
{
    int runs = 7, tokens = 256;
    const int shortTokens = 32;
    wdmoe::bench::BenchArgs args("bench sim", kUsage, argc, argv);
    while (args.Next())
    {
        if (args.Flag() == "--runs")
        {
            runs = args.PositiveInt();
        }
        else if (args.Flag() == "--tokens")
        {
            tokens = args.PositiveInt();
        }
        else
        {
            args.Unknown();
        }
    }
    if (tokens <= shortTokens)
    {
        std::cerr << "bench sim: --tokens must exceed " << shortTokens << "\n";
        return 2;
    }

    try
    {
        // 1. Simulation overhead, alternating sides after one warm-up of each.
        const ScenarioConfig config = MakeConfig(8, tokens);
        double sink = 0;
        TimeScenario(config);
        TimeForwardOnly(config, &sink);
        std::vector<double> scenario, forwardOnly;
        for (int r = 0; r < runs; ++r)
        {
            scenario.push_back(TimeScenario(config));
            forwardOnly.push_back(TimeForwardOnly(config, &sink));
        }
        const double scenarioS = Median(scenario);
        const double forwardS = Median(forwardOnly);
        std::printf("model: %s\n", config.modelDir.c_str());
        std::printf("threads: 1\n");
        std::printf("scored_tokens: %d\n", tokens);
        std::printf("runs: %d\n", runs);
        std::printf("scenario_s: %.3f\n", scenarioS);
        std::printf("scenario_s_min: %.3f\n", *std::min_element(scenario.begin(), scenario.end()));
        std::printf("forward_only_s: %.3f\n", forwardS);
        std::printf("forward_only_s_min: %.3f\n",
                    *std::min_element(forwardOnly.begin(), forwardOnly.end()));
        std::printf("sim_overhead: %.3f\n", scenarioS / forwardS);
        std::printf("target_sim_overhead: 1.25\n");
        std::fflush(stdout);

        // 2. Wall time per simulated token against the number of devices.
        const int scalingRuns = std::min(runs, 3);
        std::vector<double> perTokenMs;
        for (int devices : {8, 64, 512})
        {
            const ScenarioConfig longer = MakeConfig(devices, tokens);
            const ScenarioConfig shorter = MakeConfig(devices, shortTokens);
            std::vector<double> perToken;
            for (int r = 0; r < scalingRuns; ++r)
            {
                const double l = TimeScenario(longer);
                const double s = TimeScenario(shorter);
                perToken.push_back((l - s) / (tokens - shortTokens) * 1e3);
            }
            perTokenMs.push_back(Median(perToken));
            std::printf("per_token_ms_%d: %.3f\n", devices, perTokenMs.back());
            std::fflush(stdout);
        }
        std::printf("per_token_512_over_8: %.3f\n", perTokenMs[2] / perTokenMs[0]);
        std::printf("target_per_token_512_over_8: 1.5\n");
        return sink == -1.0 ? 3 : 0; // never: keeps the forward-only work observable
    }
    catch (const std::exception& e)
    {
        std::cerr << "bench sim: error: " << e.what() << "\n";
        return 1;
    }
}
