// Several policies on one cell and one text, side by side: a scenario config with a
// "policies" list (configs/policies.json). Each entry is merged into the base config's "policy"
// object and run as its own scenario; the table compares them with the baseline entry.
#ifndef WDMOE_POLICY_COMPARISON_H
#define WDMOE_POLICY_COMPARISON_H

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
    std::vector<ScenarioConfig> runs; ///< one per entry of "policies", in file order
    std::size_t baseline = 0;         ///< index of the entry the changes are measured against

    /// Reads and checks every entry before anything runs: "policies" must be a non-empty list
    /// of objects with distinct "name"s; "baseline" (optional) names one of them (default: the
    /// first). Errors name the file and the field ("policies[2].selection").
    static PolicyComparison Load(const std::string& path,
                                 const std::vector<std::string>& sets = {});
};

/// One row of the comparison table.
struct PolicyRow
{
    std::string policy;
    double latencyMeanMs = 0;
    double latencyP95Ms = 0;
    double expertsPerTokenLayer = 0;
    double cacheHitRate = 0;
    nlohmann::ordered_json prefetchAccuracy; ///< null when the policy does not prefetch
    double perplexity = 0;
    double perplexityChangePct = 0; ///< against the baseline
    double latencyChangePct = 0;    ///< against the baseline
    double selectionRoundsPerLayer = 0;
};

/// The rows of finished runs (summaries in run order), changes against summaries[baseline].
std::vector<PolicyRow> ComparePolicies(const std::vector<ScenarioResult>& results,
                                       std::size_t baseline);

/// policies.json: a list of objects with the keys policy, latency_mean_ms, latency_p95_ms,
/// experts_per_token_layer, cache_hit_rate, prefetch_accuracy, perplexity,
/// perplexity_change_pct, latency_change_pct, selection_rounds_per_layer.
nlohmann::ordered_json PolicyTableJson(const std::vector<PolicyRow>& rows);
/// policies.csv: the same columns, one row per policy.
std::string PolicyTableCsv(const std::vector<PolicyRow>& rows);
/// The table as printed by `wdmoe run`.
std::string PolicyTableText(const std::vector<PolicyRow>& rows);

/// A policy name as a folder name: lower case, runs of other characters as one '-'.
std::string PolicyFolderName(const std::string& policy);

} // namespace ns3

#endif
