// Several policies on one cell and one text, side by side: a scenario config with a
// "policies" list (configs/policies.json). Each entry is merged into the base config's "policy"
// object and run as its own scenario, R times (RngRun run .. run + R - 1); the table compares
// every policy with the baseline entry, paired within each run (DESIGN.md section 8).
#ifndef WDMOE_POLICY_COMPARISON_H
#define WDMOE_POLICY_COMPARISON_H

#include "paired-comparison.h"
#include "wdmoe-scenario.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ns3
{

/// True when a config file holds a "policies" list (a comparison, not a single scenario).
bool IsPolicyComparison(const std::string& path);

struct PolicyComparison
{
    std::string file;
    std::vector<ScenarioConfig> entries; ///< one per entry of "policies", in file order, run 1st
    std::size_t baseline = 0;            ///< index of the entry the changes are measured against
    int runs = 5;                        ///< "statistics.runs": RngRun values per policy
    StatisticsOptions statistics;        ///< the rest of "statistics"

    /// Reads and checks every entry before anything runs: "policies" must be a non-empty list
    /// of objects with distinct "name"s; "baseline" (optional) names one of them (default: the
    /// first); "statistics" (optional) is {"runs": R (default 5), "bootstrap_resamples": N
    /// (default 2000), "confidence_level": L (default 0.95)}. Errors name the file and the
    /// field ("policies[2].selection").
    static PolicyComparison Load(const std::string& path,
                                 const std::vector<std::string>& sets = {});

    /// Entry `entry` at its r-th run (0 <= r < runs): RngRun entries[entry].run + r.
    ScenarioConfig RunOf(std::size_t entry, int r) const;
};

/// One row of the comparison table: a policy over its runs, against the baseline.
struct PolicyRow
{
    std::string policy;
    RunStatistics latency;           ///< decode latency across runs
    PairedStatistics vsBaseline;     ///< paired changes (zero for the baseline itself)
    double expertsPerTokenLayer = 0; ///< means over the runs from here on
    double cacheHitRate = 0;
    nlohmann::ordered_json prefetchAccuracy; ///< null when the policy does not prefetch
    double perplexity = 0;                   ///< exp of the mean NLL over runs and tokens
    double klDivergence = 0;                 ///< from the unmodified top-k model, nats per token
    double top1Agreement = 0;
    double selectionRoundsPerLayer = 0;

    /// "faster", "slower" or "no significant difference" (the latency change's interval
    /// against zero); "baseline" for the baseline, "unknown (1 run)" without an interval.
    std::string LatencyVerdict(bool isBaseline) const;
};

/// The rows of finished runs: results[policy][run], changes against results[baseline].
std::vector<PolicyRow> ComparePolicies(const std::vector<std::vector<ScenarioResult>>& results,
                                       std::size_t baseline,
                                       const StatisticsOptions& options);

/// policies.json: {"statistics": {...}, "policies": [one object per row]} (the keys are
/// documented in doc/wdmoe.rst, "Policy comparisons").
nlohmann::ordered_json PolicyTableJson(const std::vector<PolicyRow>& rows,
                                       std::size_t baseline,
                                       const StatisticsOptions& options);
/// policies.csv: one row per policy, an interval as three columns (x, x_low, x_high).
std::string PolicyTableCsv(const std::vector<PolicyRow>& rows, std::size_t baseline);
/// The table as printed by `wdmoe run`.
std::string PolicyTableText(const std::vector<PolicyRow>& rows, std::size_t baseline);

/// A policy name as a folder name: lower case, runs of other characters as one '-'.
std::string PolicyFolderName(const std::string& policy);

} // namespace ns3

#endif
