// A policy against a baseline on the same cells and tokens (DESIGN.md section 8): latency
// across runs with Student intervals, and accuracy over tokens with paired bootstrap intervals.
#ifndef WDMOE_PAIRED_COMPARISON_H
#define WDMOE_PAIRED_COMPARISON_H

#include "confidence-interval.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ns3
{

struct ScenarioResult;

/// What the statistics need of one run: its RngRun, its decode latency figures, and the NLL
/// and KL divergence of every scored token (prefills and decode steps, in order).
struct RunSample
{
    uint32_t run = 0;
    std::size_t textStart = 0; ///< where in the text the run started scoring
    double latencyMeanMs = 0;
    double latencyP95Ms = 0;
    std::vector<double> nll;
    std::vector<double> kl;

    static RunSample FromResult(const ScenarioResult& result);
    /// From a result folder (summary.json and tokens.csv); a missing file or column is a
    /// std::runtime_error naming the file.
    static RunSample FromFolder(const std::string& dir);
};

/// How intervals are made.
struct StatisticsOptions
{
    int resamples = 2000; ///< bootstrap resamples
    double level = 0.95;  ///< two-sided confidence level
    uint32_t seed = 1;    ///< bootstrap seed (ns-3 RngStream)
};

/// One policy's figures across runs.
struct RunStatistics
{
    std::size_t runs = 0;
    Interval latencyMeanMs; ///< the runs' mean decode latencies, Student interval
    Interval latencyP95Ms;  ///< the runs' p95 decode latencies, Student interval
};

RunStatistics SummariseRuns(const std::vector<RunSample>& runs, double level);

/// A policy against the baseline, paired: run r of one against run r of the other (the same
/// placement, positions and fading), token i against token i.
struct PairedStatistics
{
    std::size_t runs = 0;
    std::size_t tokens = 0;       ///< distinct scored tokens the accuracy intervals pool
    Interval nllChange;           ///< nats per token, policy - baseline
    Interval perplexityChangePct; ///< 100 (exp(nllChange) - 1)
    Interval klChange;            ///< nats per token, policy - baseline
    Interval latencyChangePct;    ///< per run 100 (latency / baseline's - 1), Student

    /// {"mean": m, "ci": [low, high]} objects (null ends when unknown).
    nlohmann::ordered_json ToJson() const;
};

/// The accuracy intervals bootstrap per-token differences (policy - baseline on the same token
/// of the same run), with stream `stream` of options.seed. When every run scored the same
/// stretch of text the samples are token i's difference averaged over the runs; when the runs
/// scored different stretches (workload.text_per_run "disjoint") every run's tokens are
/// samples of their own. Both sides must hold the same runs (matched by RngRun, in any order) and
/// the same number of tokens per run; otherwise std::invalid_argument says what differs.
PairedStatistics ComparePaired(const std::vector<RunSample>& baseline,
                               const std::vector<RunSample>& policy,
                               const StatisticsOptions& options,
                               uint64_t stream);

/// {"mean": m, "ci": [low, high]} (null ends when unknown).
nlohmann::ordered_json IntervalJson(const Interval& interval);

} // namespace ns3

#endif
