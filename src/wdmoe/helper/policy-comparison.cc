#include "policy-comparison.h"

#include "json-config.h"
#include "result-files.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>

namespace ns3
{

bool
IsPolicyComparison(const std::string& path)
{
    const nlohmann::json json = ReadJsonConfigFile(path);
    return json.is_object() && json.contains("policies");
}

PolicyComparison
PolicyComparison::Load(const std::string& path, const std::vector<std::string>& sets)
{
    PolicyComparison comparison;
    comparison.file = path;
    nlohmann::json base = ReadJsonConfigFile(path);
    // --set of the comparison's own fields applies here, the rest to every entry.
    std::vector<std::string> entrySets;
    std::vector<std::string> ownSets;
    for (const std::string& set : sets)
    {
        const bool own = set.rfind("statistics.", 0) == 0 || set.rfind("baseline=", 0) == 0;
        (own ? ownSets : entrySets).push_back(set);
    }
    if (base.is_object())
    {
        ApplyConfigSets(base, ownSets, path);
    }
    const JsonConfigReader root(path, base);
    const nlohmann::json list = base["policies"];
    if (!list.is_array() || list.empty())
    {
        root.Fail("policies", "must be a non-empty list of policy objects");
    }
    std::string baselineName;
    if (base.contains("baseline"))
    {
        baselineName = root.String("baseline");
    }
    const JsonConfigReader statistics = root.Object("statistics");
    statistics.AllowOnly({"runs", "bootstrap_resamples", "confidence_level"});
    comparison.runs = int(statistics.Integer("runs", 5, 1, 10000));
    comparison.statistics.resamples =
        int(statistics.Integer("bootstrap_resamples", 2000, 100, 1000000));
    comparison.statistics.level = statistics.Number("confidence_level", 0.95, 0.5, 0.999);
    for (const char* key : {"baseline", "policies", "statistics"})
    {
        base.erase(key);
    }
    const nlohmann::json common =
        base.contains("policy") ? base["policy"] : nlohmann::json::object();
    if (!common.is_object())
    {
        root.Fail("policy", "must be an object (what every entry of \"policies\" starts from)");
    }
    std::set<std::string> names;
    std::set<std::string> folders;
    for (std::size_t i = 0; i < list.size(); ++i)
    {
        const std::string field = "policies[" + std::to_string(i) + "]";
        const JsonConfigReader entry(path, list[i], field);
        if (!list[i].is_object() || !entry.Has("name"))
        {
            root.Fail(field, "must be an object with a \"name\"");
        }
        const std::string name = entry.String("name");
        if (!names.insert(name).second || !folders.insert(PolicyFolderName(name)).second)
        {
            entry.Fail("name",
                       "repeats \"" + name +
                           "\" (or its folder name): each policy needs its own name");
        }
        nlohmann::json json = base;
        json["policy"] = common;
        json["policy"].update(list[i]);
        comparison.entries.push_back(ScenarioConfig::FromJson(path, json, entrySets, field));
        if (name == baselineName)
        {
            comparison.baseline = i;
        }
    }
    if (!baselineName.empty() && !names.count(baselineName))
    {
        root.Fail("baseline", "names no entry of \"policies\": \"" + baselineName + "\"");
    }
    comparison.statistics.seed = comparison.entries.front().seed;
    return comparison;
}

ScenarioConfig
PolicyComparison::RunOf(std::size_t entry, int r) const
{
    ScenarioConfig config = entries.at(entry);
    config.run += uint32_t(r);
    return config;
}

std::string
PolicyRow::LatencyVerdict(bool isBaseline) const
{
    const Interval& change = vsBaseline.latencyChangePct;
    if (isBaseline)
    {
        return "baseline";
    }
    if (!std::isfinite(change.low))
    {
        return "unknown (1 run)";
    }
    return change.high < 0 ? "faster" : change.low > 0 ? "slower" : "no significant difference";
}

namespace
{

double
Mean(const std::vector<ScenarioResult>& runs,
     const std::function<double(const nlohmann::ordered_json&)>& get)
{
    double sum = 0;
    for (const ScenarioResult& r : runs)
    {
        sum += get(r.summary);
    }
    return sum / double(runs.size());
}

/// The means over the runs of the figures without intervals.
void
FillRunMeans(const std::vector<ScenarioResult>& runs, PolicyRow& row)
{
    row.policy = runs.front().summary["policy"]["name"].get<std::string>();
    auto field = [&runs](const char* key) {
        return Mean(runs, [key](const nlohmann::ordered_json& s) { return s[key].get<double>(); });
    };
    row.expertsPerTokenLayer = field("experts_per_token_layer");
    row.cacheHitRate = field("cache_hit_rate");
    row.klDivergence = field("kl_divergence_from_topk");
    row.top1Agreement = field("top1_agreement_with_topk");
    row.selectionRoundsPerLayer = field("selection_rounds_per_layer");
    // Perplexity over every scored token of every run.
    row.perplexity = std::exp(field("nll_per_token"));
    if (!runs.front().summary["prefetch_accuracy"].is_null())
    {
        row.prefetchAccuracy = field("prefetch_accuracy");
    }
}

} // namespace

std::vector<PolicyRow>
ComparePolicies(const std::vector<std::vector<ScenarioResult>>& results,
                std::size_t baseline,
                const StatisticsOptions& options)
{
    std::vector<std::vector<RunSample>> samples;
    for (const auto& runs : results)
    {
        samples.emplace_back();
        for (const ScenarioResult& r : runs)
        {
            samples.back().push_back(RunSample::FromResult(r));
        }
    }
    std::vector<PolicyRow> rows;
    for (std::size_t p = 0; p < results.size(); ++p)
    {
        PolicyRow row;
        FillRunMeans(results[p], row);
        row.latency = SummariseRuns(samples[p], options.level);
        row.vsBaseline = ComparePaired(samples.at(baseline), samples[p], options, p);
        rows.push_back(row);
    }
    return rows;
}

nlohmann::ordered_json
PolicyTableJson(const std::vector<PolicyRow>& rows,
                std::size_t baseline,
                const StatisticsOptions& options)
{
    nlohmann::ordered_json table = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        const PolicyRow& r = rows[i];
        const PairedStatistics& d = r.vsBaseline;
        table.push_back({{"policy", r.policy},
                         {"runs", r.latency.runs},
                         {"tokens", d.tokens},
                         {"latency_mean_ms", IntervalJson(r.latency.latencyMeanMs)},
                         {"latency_p95_ms", IntervalJson(r.latency.latencyP95Ms)},
                         {"latency_change_pct", IntervalJson(d.latencyChangePct)},
                         {"latency_verdict", r.LatencyVerdict(i == baseline)},
                         {"experts_per_token_layer", r.expertsPerTokenLayer},
                         {"cache_hit_rate", r.cacheHitRate},
                         {"prefetch_accuracy", r.prefetchAccuracy},
                         {"perplexity", r.perplexity},
                         {"perplexity_change_pct", IntervalJson(d.perplexityChangePct)},
                         {"nll_change", IntervalJson(d.nllChange)},
                         {"kl_divergence", r.klDivergence},
                         {"kl_change", IntervalJson(d.klChange)},
                         {"top1_agreement_with_topk", r.top1Agreement},
                         {"selection_rounds_per_layer", r.selectionRoundsPerLayer}});
    }
    return {{"baseline", rows.at(baseline).policy},
            {"statistics",
             {{"runs", rows.at(baseline).latency.runs},
              {"tokens_per_run", rows.at(baseline).vsBaseline.tokens},
              {"confidence_level", options.level},
              {"bootstrap_resamples", options.resamples},
              {"bootstrap_seed", options.seed},
              {"latency", "Student-t interval across runs; changes paired by run"},
              {"accuracy",
               "percentile bootstrap over tokens of the per-token differences "
               "against the baseline, averaged over the runs"}}},
            {"policies", table}};
}

std::string
PolicyTableCsv(const std::vector<PolicyRow>& rows, std::size_t baseline)
{
    const nlohmann::ordered_json table =
        PolicyTableJson(rows, baseline, StatisticsOptions())["policies"];
    std::ostringstream csv;
    csv.precision(9);
    auto cell = [&csv](const nlohmann::ordered_json& value) {
        if (value.is_string())
        {
            csv << CsvField(value.get<std::string>());
        }
        else if (value.is_number())
        {
            csv << value.get<double>();
        }
        // null (no prefetch, an unknown interval end) stays an empty cell
    };
    std::string sep;
    for (const auto& [key, value] : table.front().items())
    {
        csv << sep << key;
        if (value.is_object())
        {
            csv << "," << key << "_low," << key << "_high";
        }
        sep = ",";
    }
    csv << "\n";
    for (const auto& row : table)
    {
        sep.clear();
        for (const auto& [key, value] : row.items())
        {
            csv << sep;
            if (value.is_object())
            {
                cell(value["mean"]);
                csv << ",";
                cell(value["ci"][0]);
                csv << ",";
                cell(value["ci"][1]);
            }
            else
            {
                cell(value);
            }
            sep = ",";
        }
        csv << "\n";
    }
    return csv.str();
}

namespace
{

/// "41.23 [38.10, 44.36]", or the mean alone when the interval is unknown.
std::string
WithInterval(const Interval& v, const char* format, bool sign = false)
{
    char mean[64];
    char low[64];
    char high[64];
    const std::string f = std::string(sign ? "%+" : "%") + format;
    std::snprintf(mean, sizeof mean, f.c_str(), v.mean);
    if (!std::isfinite(v.low))
    {
        return mean;
    }
    std::snprintf(low, sizeof low, f.c_str(), v.low);
    std::snprintf(high, sizeof high, f.c_str(), v.high);
    return std::string(mean) + " [" + low + ", " + high + "]";
}

} // namespace

std::string
PolicyTableText(const std::vector<PolicyRow>& rows, std::size_t baseline)
{
    std::vector<std::vector<std::string>> cells = {{"policy",
                                                    "mean ms [95% CI]",
                                                    "p95 ms",
                                                    "latency % [95% CI]",
                                                    "verdict",
                                                    "experts",
                                                    "hit",
                                                    "prefetch",
                                                    "perplexity",
                                                    "ppl % [95% CI]",
                                                    "KL (nats)"}};
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        const PolicyRow& r = rows[i];
        char buffer[64];
        auto number = [&buffer](const char* format, double v) {
            std::snprintf(buffer, sizeof buffer, format, v);
            return std::string(buffer);
        };
        cells.push_back(
            {r.policy,
             WithInterval(r.latency.latencyMeanMs, ".2f"),
             number("%.2f", r.latency.latencyP95Ms.mean),
             i == baseline ? "-" : WithInterval(r.vsBaseline.latencyChangePct, ".1f", true),
             r.LatencyVerdict(i == baseline),
             number("%.3f", r.expertsPerTokenLayer),
             number("%.3f", r.cacheHitRate),
             r.prefetchAccuracy.is_number() ? number("%.3f", r.prefetchAccuracy.get<double>())
                                            : "-",
             number("%.4f", r.perplexity),
             i == baseline ? "-" : WithInterval(r.vsBaseline.perplexityChangePct, ".2f", true),
             number("%.4f", r.klDivergence)});
    }
    std::vector<std::size_t> width(cells.front().size(), 0);
    for (const auto& line : cells)
    {
        for (std::size_t c = 0; c < line.size(); ++c)
        {
            width[c] = std::max(width[c], line[c].size());
        }
    }
    std::string out;
    for (const auto& line : cells)
    {
        for (std::size_t c = 0; c < line.size(); ++c)
        {
            // The name left-aligned, the figures right-aligned.
            const std::string pad(width[c] - line[c].size(), ' ');
            out += (c == 0 ? line[c] + pad : pad + line[c]) + (c + 1 < line.size() ? "  " : "\n");
        }
    }
    return out;
}

std::string
PolicyFolderName(const std::string& policy)
{
    std::string out;
    for (char ch : policy)
    {
        if (std::isalnum(static_cast<unsigned char>(ch)))
        {
            out += char(std::tolower(static_cast<unsigned char>(ch)));
        }
        else if (!out.empty() && out.back() != '-')
        {
            out += '-';
        }
    }
    while (!out.empty() && out.back() == '-')
    {
        out.pop_back();
    }
    return out.empty() ? "policy" : out;
}

} // namespace ns3
