// wdmoe-compare: a policy's result folders against a baseline's, paired by run (the statistics
// of a policy comparison, for results made elsewhere: the points of a sweep, say). Prints one
// JSON object: each side's latency across runs and the paired changes with their intervals.

#include "paired-comparison.h"

#include "ns3/command-line.h"

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

std::vector<RunSample>
ReadRuns(const std::string& list, const char* option)
{
    std::vector<RunSample> runs;
    std::istringstream in(list);
    for (std::string dir; std::getline(in, dir, ',');)
    {
        if (!dir.empty())
        {
            runs.push_back(RunSample::FromFolder(dir));
        }
    }
    if (runs.empty())
    {
        throw std::invalid_argument(std::string("--") + option +
                                    " needs result folders (comma-separated)");
    }
    return runs;
}

nlohmann::ordered_json
RunsJson(const std::vector<RunSample>& runs, double level)
{
    const RunStatistics s = SummariseRuns(runs, level);
    return {{"runs", s.runs},
            {"latency_mean_ms", IntervalJson(s.latencyMeanMs)},
            {"latency_p95_ms", IntervalJson(s.latencyP95Ms)}};
}

} // namespace

int
main(int argc, char** argv)
{
    std::string baseline;
    std::string policy;
    StatisticsOptions options;
    uint64_t stream = 0;
    CommandLine cmd(__FILE__);
    cmd.Usage("Compares a policy's result folders (summary.json + tokens.csv of each run) with a "
              "baseline's, paired by RngRun: latency across runs (Student t), accuracy over "
              "tokens (percentile bootstrap of the per-token NLL and KL differences). Prints "
              "one JSON object.");
    cmd.AddValue("baseline", "the baseline's result folders, comma-separated", baseline);
    cmd.AddValue("policy", "the policy's result folders, comma-separated", policy);
    cmd.AddValue("resamples", "bootstrap resamples", options.resamples);
    cmd.AddValue("level", "confidence level", options.level);
    cmd.AddValue("seed", "bootstrap seed", options.seed);
    cmd.AddValue("stream", "bootstrap stream (two per comparison: 2s and 2s + 1)", stream);
    cmd.Parse(argc, argv);
    try
    {
        if (options.resamples < 100 || !(options.level > 0 && options.level < 1))
        {
            std::cerr << "wdmoe-compare: --resamples must be >= 100 and --level in (0, 1)\n";
            return 2;
        }
        const std::vector<RunSample> base = ReadRuns(baseline, "baseline");
        const std::vector<RunSample> runs = ReadRuns(policy, "policy");
        const nlohmann::ordered_json out = {
            {"baseline", RunsJson(base, options.level)},
            {"policy", RunsJson(runs, options.level)},
            {"change", ComparePaired(base, runs, options, stream).ToJson()},
            {"statistics",
             {{"confidence_level", options.level},
              {"bootstrap_resamples", options.resamples},
              {"bootstrap_seed", options.seed},
              {"bootstrap_stream", stream}}}};
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    catch (const std::exception& e)
    {
        std::cerr << "wdmoe-compare: error: " << e.what() << "\n";
        return 1;
    }
}
