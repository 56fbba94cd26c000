#include "paired-comparison.h"

#include "json-config.h"
#include "wdmoe-scenario.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ns3
{

namespace
{

nlohmann::ordered_json
NumberOrNull(double v)
{
    return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

/// The columns of tokens.csv (written by WdmoeScenario: no quoted fields) by name.
std::map<std::string, std::vector<std::string>>
ReadTokensCsv(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
    {
        throw std::runtime_error(path + ": cannot be read");
    }
    std::map<std::string, std::vector<std::string>> columns;
    std::vector<std::string> names;
    std::string line;
    for (bool header = true; std::getline(in, line); header = false)
    {
        std::istringstream cells(line);
        std::string cell;
        for (std::size_t i = 0; std::getline(cells, cell, ','); ++i)
        {
            if (header)
            {
                names.push_back(cell);
            }
            else if (i < names.size())
            {
                columns[names[i]].push_back(cell);
            }
        }
    }
    return columns;
}

std::vector<double>
NumericColumn(const std::map<std::string, std::vector<std::string>>& columns,
              const std::string& name,
              const std::string& path)
{
    const auto it = columns.find(name);
    if (it == columns.end())
    {
        throw std::runtime_error(path + ": no \"" + name +
                                 "\" column (a result of an older "
                                 "version? run it again)");
    }
    std::vector<double> out;
    for (const std::string& cell : it->second)
    {
        out.push_back(std::stod(cell));
    }
    return out;
}

bool
SameText(const std::vector<RunSample>& runs)
{
    return std::all_of(runs.begin(), runs.end(), [&runs](const RunSample& r) {
        return r.textStart == runs.front().textStart;
    });
}

/// Policy minus baseline per token (runs paired by RngRun): averaged over the runs when they
/// scored the same text, else every run's tokens one after the other.
std::vector<double>
TokenDifferences(const std::vector<RunSample>& baseline,
                 const std::vector<RunSample>& policy,
                 std::vector<double> RunSample::*field)
{
    const std::size_t tokens = (baseline.front().*field).size();
    const bool same = SameText(policy);
    std::vector<double> diff(same ? tokens : 0, 0.0);
    for (const RunSample& p : policy)
    {
        const RunSample& b = *std::find_if(baseline.begin(),
                                           baseline.end(),
                                           [&](const RunSample& s) { return s.run == p.run; });
        for (std::size_t i = 0; i < tokens; ++i)
        {
            const double d = (p.*field)[i] - (b.*field)[i];
            if (same)
            {
                diff[i] += d / double(policy.size());
            }
            else
            {
                diff.push_back(d);
            }
        }
    }
    return diff;
}

void
CheckPairs(const std::vector<RunSample>& baseline, const std::vector<RunSample>& policy)
{
    if (baseline.empty() || baseline.size() != policy.size())
    {
        throw std::invalid_argument("a paired comparison needs the same runs on both sides (" +
                                    std::to_string(baseline.size()) + " baseline runs, " +
                                    std::to_string(policy.size()) + " policy runs)");
    }
    for (const RunSample& p : policy)
    {
        const auto b = std::find_if(baseline.begin(), baseline.end(), [&](const RunSample& s) {
            return s.run == p.run;
        });
        if (b == baseline.end())
        {
            throw std::invalid_argument("run " + std::to_string(p.run) +
                                        " of the policy has no baseline run to pair with");
        }
        if (b->textStart != p.textStart)
        {
            throw std::invalid_argument("run " + std::to_string(p.run) +
                                        ": the policy and the baseline scored different text (from "
                                        "token " +
                                        std::to_string(p.textStart) + " and " +
                                        std::to_string(b->textStart) + ")");
        }
        if (b->nll.size() != p.nll.size() || b->kl.size() != p.nll.size() ||
            p.kl.size() != p.nll.size() || p.nll.empty())
        {
            throw std::invalid_argument("run " + std::to_string(p.run) + ": the policy scored " +
                                        std::to_string(p.nll.size()) + " tokens and the baseline " +
                                        std::to_string(b->nll.size()) +
                                        ": a paired comparison needs the same tokens");
        }
    }
}

} // namespace

RunSample
RunSample::FromResult(const ScenarioResult& result)
{
    RunSample s;
    s.run = result.summary["run"].get<uint32_t>();
    s.textStart = result.summary["text_start_token"].get<std::size_t>();
    s.latencyMeanMs = result.summary["latency_ms"]["mean"].get<double>();
    s.latencyP95Ms = result.summary["latency_ms"]["p95"].get<double>();
    for (const TokenRecord& r : result.records)
    {
        s.nll.push_back(r.nll);
        s.kl.push_back(r.kl);
    }
    return s;
}

RunSample
RunSample::FromFolder(const std::string& dir)
{
    const std::string summaryPath = dir + "/summary.json";
    const nlohmann::json summary = ReadJsonConfigFile(summaryPath);
    RunSample s;
    try
    {
        s.run = summary.at("run").get<uint32_t>();
        s.textStart = summary.at("text_start_token").get<std::size_t>();
        s.latencyMeanMs = summary.at("latency_ms").at("mean").get<double>();
        s.latencyP95Ms = summary.at("latency_ms").at("p95").get<double>();
    }
    catch (const nlohmann::json::exception& e)
    {
        throw std::runtime_error(summaryPath + ": not a run summary (" + e.what() + ")");
    }
    const std::string csvPath = dir + "/tokens.csv";
    const auto columns = ReadTokensCsv(csvPath);
    s.nll = NumericColumn(columns, "nll", csvPath);
    s.kl = NumericColumn(columns, "kl", csvPath);
    return s;
}

RunStatistics
SummariseRuns(const std::vector<RunSample>& runs, double level)
{
    RunStatistics out;
    out.runs = runs.size();
    std::vector<double> means, p95;
    for (const RunSample& r : runs)
    {
        means.push_back(r.latencyMeanMs);
        p95.push_back(r.latencyP95Ms);
    }
    out.latencyMeanMs = StudentInterval(means, level);
    out.latencyP95Ms = StudentInterval(p95, level);
    return out;
}

PairedStatistics
ComparePaired(const std::vector<RunSample>& baseline,
              const std::vector<RunSample>& policy,
              const StatisticsOptions& options,
              uint64_t stream)
{
    CheckPairs(baseline, policy);
    PairedStatistics out;
    out.runs = policy.size();
    out.tokens = policy.front().nll.size() * (SameText(policy) ? 1 : policy.size());
    // Two streams per policy: the NLL and the KL resamples do not share draws.
    out.nllChange = BootstrapInterval(TokenDifferences(baseline, policy, &RunSample::nll),
                                      options.resamples,
                                      options.seed,
                                      2 * stream,
                                      options.level);
    out.perplexityChangePct = out.nllChange.Map([](double d) { return 100 * std::expm1(d); });
    out.klChange = BootstrapInterval(TokenDifferences(baseline, policy, &RunSample::kl),
                                     options.resamples,
                                     options.seed,
                                     2 * stream + 1,
                                     options.level);
    std::vector<double> latency;
    for (const RunSample& p : policy)
    {
        const auto b = std::find_if(baseline.begin(), baseline.end(), [&](const RunSample& s) {
            return s.run == p.run;
        });
        latency.push_back(100 * (p.latencyMeanMs / b->latencyMeanMs - 1));
    }
    out.latencyChangePct = StudentInterval(latency, options.level);
    return out;
}

nlohmann::ordered_json
IntervalJson(const Interval& interval)
{
    return {{"mean", NumberOrNull(interval.mean)},
            {"ci", {NumberOrNull(interval.low), NumberOrNull(interval.high)}}};
}

nlohmann::ordered_json
PairedStatistics::ToJson() const
{
    return {{"runs", runs},
            {"tokens", tokens},
            {"nll_change", IntervalJson(nllChange)},
            {"perplexity_change_pct", IntervalJson(perplexityChangePct)},
            {"kl_change", IntervalJson(klChange)},
            {"latency_change_pct", IntervalJson(latencyChangePct)}};
}

} // namespace ns3
