#include "policy-comparison.h"

#include "json-config.h"
#include "result-files.h"

#include <cctype>
#include <cstdio>
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
        base.erase("baseline");
    }
    base.erase("policies");
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
        comparison.runs.push_back(ScenarioConfig::FromJson(path, json, sets, field));
        if (name == baselineName)
        {
            comparison.baseline = i;
        }
    }
    if (!baselineName.empty() && !names.count(baselineName))
    {
        root.Fail("baseline", "names no entry of \"policies\": \"" + baselineName + "\"");
    }
    return comparison;
}

std::vector<PolicyRow>
ComparePolicies(const std::vector<ScenarioResult>& results, std::size_t baseline)
{
    std::vector<PolicyRow> rows;
    for (const ScenarioResult& r : results)
    {
        const auto& s = r.summary;
        PolicyRow row;
        row.policy = s["policy"]["name"].get<std::string>();
        row.latencyMeanMs = s["latency_ms"]["mean"].get<double>();
        row.latencyP95Ms = s["latency_ms"]["p95"].get<double>();
        row.expertsPerTokenLayer = s["experts_per_token_layer"].get<double>();
        row.cacheHitRate = s["cache_hit_rate"].get<double>();
        row.prefetchAccuracy = s["prefetch_accuracy"];
        row.perplexity = s["perplexity"].get<double>();
        row.selectionRoundsPerLayer = s["selection_rounds_per_layer"].get<double>();
        rows.push_back(row);
    }
    const PolicyRow reference = rows.at(baseline);
    for (PolicyRow& row : rows)
    {
        row.perplexityChangePct = 100.0 * (row.perplexity / reference.perplexity - 1.0);
        row.latencyChangePct = 100.0 * (row.latencyMeanMs / reference.latencyMeanMs - 1.0);
    }
    return rows;
}

nlohmann::ordered_json
PolicyTableJson(const std::vector<PolicyRow>& rows)
{
    nlohmann::ordered_json table = nlohmann::ordered_json::array();
    for (const PolicyRow& r : rows)
    {
        table.push_back({{"policy", r.policy},
                         {"latency_mean_ms", r.latencyMeanMs},
                         {"latency_p95_ms", r.latencyP95Ms},
                         {"experts_per_token_layer", r.expertsPerTokenLayer},
                         {"cache_hit_rate", r.cacheHitRate},
                         {"prefetch_accuracy", r.prefetchAccuracy},
                         {"perplexity", r.perplexity},
                         {"perplexity_change_pct", r.perplexityChangePct},
                         {"latency_change_pct", r.latencyChangePct},
                         {"selection_rounds_per_layer", r.selectionRoundsPerLayer}});
    }
    return table;
}

std::string
PolicyTableCsv(const std::vector<PolicyRow>& rows)
{
    const nlohmann::ordered_json table = PolicyTableJson(rows);
    std::ostringstream csv;
    csv.precision(9);
    bool header = true;
    for (const auto& row : table)
    {
        if (header)
        {
            std::string sep;
            for (const auto& [key, value] : row.items())
            {
                csv << sep << key;
                sep = ",";
            }
            csv << "\n";
            header = false;
        }
        std::string sep;
        for (const auto& [key, value] : row.items())
        {
            csv << sep;
            if (value.is_string())
            {
                csv << CsvField(value.get<std::string>());
            }
            else if (value.is_number())
            {
                csv << value.get<double>();
            }
            sep = ","; // null (no prefetch) stays an empty cell
        }
        csv << "\n";
    }
    return csv.str();
}

std::string
PolicyTableText(const std::vector<PolicyRow>& rows)
{
    std::size_t width = 6;
    for (const PolicyRow& r : rows)
    {
        width = std::max(width, r.policy.size());
    }
    std::string out;
    char line[512];
    std::snprintf(line,
                  sizeof line,
                  "%-*s  %9s  %9s  %7s  %6s  %8s  %10s  %7s  %9s\n",
                  int(width),
                  "policy",
                  "mean ms",
                  "p95 ms",
                  "experts",
                  "hit",
                  "prefetch",
                  "perplexity",
                  "ppl %",
                  "latency %");
    out += line;
    for (const PolicyRow& r : rows)
    {
        char prefetch[32] = "-";
        if (r.prefetchAccuracy.is_number())
        {
            std::snprintf(prefetch, sizeof prefetch, "%.3f", r.prefetchAccuracy.get<double>());
        }
        std::snprintf(line,
                      sizeof line,
                      "%-*s  %9.2f  %9.2f  %7.3f  %6.3f  %8s  %10.4f  %+7.2f  %+9.2f\n",
                      int(width),
                      r.policy.c_str(),
                      r.latencyMeanMs,
                      r.latencyP95Ms,
                      r.expertsPerTokenLayer,
                      r.cacheHitRate,
                      prefetch,
                      r.perplexity,
                      r.perplexityChangePct,
                      r.latencyChangePct);
        out += line;
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
