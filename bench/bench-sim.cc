// Cost of the network simulation around the model: a whole scenario (ns-3 cell + MoeInferenceApp)
// against the same forward passes run without ns-3 in the same process, and the wall time per
// simulated token as the number of devices grows. Prints `name: value` lines.

#include "bench-util.h"
#include "file-io.h"
#include "mixtral-model.h"
#include "routing.h"
#include "teacher-forced-stream.h"
#include "tokenizer.h"

#include "ns3/simulator.h"
#include "ns3/wdmoe-scenario.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ns3;
using namespace wdmoe::llm;
using wdmoe::bench::Median;

namespace
{

const char* kUsage =
    "usage: wdmoe bench sim [--config FILE] [--runs N] [--tokens N]\n"
    "The default scenario (--config, default configs/default.json) with --tokens scored tokens\n"
    "(default: the config's), medians of --runs N runs (default 5) after a warm-up:\n"
    "1. Simulation speed: simulated seconds over wall seconds of Simulator::Run, as the\n"
    "   scenario's summary.json reports it (timing.sim_speed; target >= 100).\n"
    "2. Simulation overhead: wall time of the scenario over the wall time of its forward passes\n"
    "   without ns-3 (LayerStepper with the model's own top-k, the NLL per pass; the reference\n"
    "   pass the app skips while a pass routes like top-k is skipped too); both sides include\n"
    "   loading the model and the text: scenario_s, forward_only_s, sim_overhead (target\n"
    "   <= 1.25).\n"
    "3. Scaling: wall time per simulated token at 8, 64 and 512 devices (min-cost placement),\n"
    "   (time with --tokens scored tokens - time with 32) / (--tokens - 32), so that setup\n"
    "   cancels; medians of min(N, 3) runs: per_token_ms_{8,64,512}, per_token_512_over_8.\n";

double
Now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// The scenario of `path` with `devices` devices and `scoredTokens` scored tokens, checked as
/// the command line's --set would be.
ScenarioConfig
MakeConfig(const std::string& path, int devices, int scoredTokens)
{
    return ScenarioConfig::Load(path,
                                {"devices.count=" + std::to_string(devices),
                                 "workload.scored_tokens=" + std::to_string(scoredTokens)});
}

/// Wall seconds of the scenario of config to its end, model loading included; *simSpeed (when
/// given) gets the run's simulated seconds per wall second.
double
TimeScenario(const ScenarioConfig& config, double* simSpeed = nullptr)
{
    const double start = Now();
    ScenarioResult result;
    {
        WdmoeScenario scenario(config);
        Simulator::Run();
        result = scenario.Collect();
        Simulator::Destroy();
    }
    const double s = Now() - start;
    if (simSpeed)
    {
        *simSpeed = result.summary["timing"]["sim_speed"].get<double>();
    }
    if (result.summary["tokens_scored"].get<int>() != config.scoredTokens)
    {
        throw std::runtime_error("the scenario scored " + result.summary["tokens_scored"].dump() +
                                 " tokens, not " + std::to_string(config.scoredTokens));
    }
    return s;
}

/// Wall seconds of the scenario's model work without ns-3: load the model, read and tokenize
/// the text, then the passes of MoeInferenceApp's TeacherForcedStream with the model's own top-k
/// (a pass that routes like top-k needs no reference pass).
/// *sink collects the NLL so that nothing is optimised away.
double
TimeForwardOnly(const ScenarioConfig& c, double* sink)
{
    const double start = Now();
    LoadOptions options;
    options.threads = c.threads;
    std::shared_ptr<MixtralModel> model(MixtralModel::Load(c.modelDir, options));
    const ModelConfig& mc = model->Config();
    auto tokenizer = Tokenizer::ForModel(c.modelDir, mc);
    const std::optional<std::string> text = ReadWholeFile(c.textPath);
    if (!text)
    {
        throw std::runtime_error("cannot read " + c.textPath);
    }
    const std::vector<int> tokens = tokenizer->Encode(*text);
    if (std::size_t(c.promptTokens) + std::size_t(c.scoredTokens) > tokens.size())
    {
        throw std::runtime_error("the text is too short for the workload");
    }

    // MoeInferenceApp's passes through the same stream, without the cell: the model's own top-k
    // at every layer.
    TeacherForcedStream stream(*model, tokens, c.promptTokens, c.scoredTokens);
    std::vector<RoutingDecision> decisions;
    int scored = 0;
    double nll = 0;
    while (!stream.Finished())
    {
        LayerStepper& pass = stream.StartPass();
        const int n = pass.Tokens();
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
        nll += stream.FinishPass(true).nll;
        ++scored;
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
    int runs = 5, tokens = 0;
    std::string configPath = "configs/default.json";
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
        else if (args.Flag() == "--config")
        {
            configPath = args.Value();
        }
        else
        {
            args.Unknown();
        }
    }
    try
    {
        const ScenarioConfig base = ScenarioConfig::Load(configPath);
        tokens = tokens ? tokens : base.scoredTokens;
        if (tokens <= shortTokens)
        {
            std::cerr << "bench sim: --tokens must exceed " << shortTokens << "\n";
            return 2;
        }
        // 1 and 2. Speed and overhead, alternating sides after one warm-up of each.
        const ScenarioConfig config = MakeConfig(configPath, base.devices, tokens);
        double sink = 0;
        TimeScenario(config);
        TimeForwardOnly(config, &sink);
        std::vector<double> scenario, forwardOnly, speed;
        for (int r = 0; r < runs; ++r)
        {
            speed.emplace_back();
            scenario.push_back(TimeScenario(config, &speed.back()));
            forwardOnly.push_back(TimeForwardOnly(config, &sink));
        }
        const double scenarioS = Median(scenario);
        const double forwardS = Median(forwardOnly);
        std::printf("config: %s\n", configPath.c_str());
        std::printf("model: %s\n", config.modelDir.c_str());
        std::printf("threads: %d\n", config.threads);
        std::printf("scored_tokens: %d\n", tokens);
        std::printf("runs: %d\n", runs);
        std::printf("sim_speed: %.1f\n", Median(speed));
        std::printf("sim_speed_min: %.1f\n", *std::min_element(speed.begin(), speed.end()));
        std::printf("target_sim_speed: 100\n");
        std::printf("scenario_s: %.3f\n", scenarioS);
        std::printf("scenario_s_min: %.3f\n", *std::min_element(scenario.begin(), scenario.end()));
        std::printf("forward_only_s: %.3f\n", forwardS);
        std::printf("forward_only_s_min: %.3f\n",
                    *std::min_element(forwardOnly.begin(), forwardOnly.end()));
        std::printf("sim_overhead: %.3f\n", scenarioS / forwardS);
        std::printf("target_sim_overhead: 1.25\n");
        std::fflush(stdout);

        // 3. Wall time per simulated token against the number of devices.
        const int scalingRuns = std::min(runs, 3);
        std::vector<double> perTokenMs;
        for (int devices : {8, 64, 512})
        {
            const ScenarioConfig longer = MakeConfig(configPath, devices, tokens);
            const ScenarioConfig shorter = MakeConfig(configPath, devices, shortTokens);
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
