#include "sweep.h"

#include "confidence-interval.h"
#include "json-config.h"
#include "policy-comparison.h"
#include "result-files.h"
#include "wdmoe-scenario.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ns3
{

namespace
{

/// A JSON value as a CSV cell or message text: strings without quotes.
std::string
Text(const nlohmann::json& value)
{
    return value.is_string() ? value.get<std::string>() : value.dump();
}

/// A CSV cell: an object with a "name" (a policy) by its name, quoted when it needs to be.
std::string
Cell(const nlohmann::json& value)
{
    return CsvField(value.is_object() && value.contains("name") && value["name"].is_string()
                        ? value["name"].get<std::string>()
                        : Text(value));
}

std::string
ReadWhole(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        return "";
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

std::vector<std::string>
SweepPoint::Sets() const
{
    std::vector<std::string> sets;
    for (const auto& [key, value] : fields)
    {
        sets.push_back(key + "=" + value.dump());
    }
    return sets;
}

std::string
SweepPoint::Describe() const
{
    std::string text;
    for (const auto& [key, value] : fields)
    {
        text += (text.empty() ? "" : ", ") + key + "=" + Text(value);
    }
    return text;
}

Sweep
Sweep::Load(const std::string& path)
{
    Sweep sweep;
    sweep.file = path;
    const nlohmann::json json = ReadJsonConfigFile(path);
    const JsonConfigReader root(path, json);
    root.AllowOnly({"description", "base", "axes", "points"});
    root.String("description", "");
    sweep.baseConfig = root.PathRelativeToFile(root.String("base"));
    if (json.contains("axes") == json.contains("points"))
    {
        root.Fail("axes", "or \"points\" is required (exactly one of them)");
    }
    if (json.contains("axes"))
    {
        const nlohmann::json& axes = json["axes"];
        if (!axes.is_object() || axes.empty())
        {
            root.Fail("axes", "must be an object of dotted config paths to lists of values");
        }
        // nlohmann::json keeps object keys sorted; the file order is the order written.
        const nlohmann::ordered_json ordered =
            nlohmann::ordered_json::parse(ReadWhole(path))["axes"];
        sweep.points.push_back(SweepPoint());
        for (const auto& [key, values] : ordered.items())
        {
            if (!values.is_array() || values.empty())
            {
                root.Fail("axes." + key, "must be a non-empty list of values");
            }
            sweep.axes.push_back(key);
            std::vector<SweepPoint> product;
            for (const SweepPoint& partial : sweep.points)
            {
                for (const auto& value : values)
                {
                    SweepPoint p = partial;
                    p.fields.push_back({key, nlohmann::json::parse(value.dump())});
                    product.push_back(p);
                }
            }
            sweep.points = product;
        }
    }
    else
    {
        const nlohmann::ordered_json list =
            nlohmann::ordered_json::parse(ReadWhole(path))["points"];
        if (!list.is_array() || list.empty())
        {
            root.Fail("points", "must be a non-empty list of objects of dotted paths to values");
        }
        for (std::size_t i = 0; i < list.size(); ++i)
        {
            const std::string field = "points[" + std::to_string(i) + "]";
            if (!list[i].is_object() || list[i].empty())
            {
                root.Fail(field, "must be a non-empty object of dotted config paths to values");
            }
            SweepPoint p;
            std::vector<std::string> keys;
            for (const auto& [key, value] : list[i].items())
            {
                p.fields.push_back({key, nlohmann::json::parse(value.dump())});
                keys.push_back(key);
            }
            if (i == 0)
            {
                sweep.axes = keys;
            }
            else if (keys != sweep.axes)
            {
                root.Fail(field, "must set the same paths as points[0], in the same order");
            }
            sweep.points.push_back(p);
        }
    }
    // Every point, checked now: a sweep fails before it runs anything.
    if (IsPolicyComparison(sweep.baseConfig))
    {
        root.Fail("base", "names a policy comparison; a sweep's base is one scenario");
    }
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        const SweepPoint& p = sweep.points[i];
        try
        {
            ScenarioConfig::Load(sweep.baseConfig, p.Sets()).Validate();
        }
        catch (const JsonConfigError& e)
        {
            throw JsonConfigError(path + ": point " + std::to_string(i) + " (" + p.Describe() +
                                  "): " + e.what());
        }
    }
    return sweep;
}

std::string
Sweep::ResultDirectory() const
{
    return DefaultResultDirectory(file);
}

std::string
Sweep::PointDirectory(std::size_t index) const
{
    char name[32];
    std::snprintf(name, sizeof name, "%04zu", index);
    return ResultDirectory() + "/points/" + name;
}

std::vector<std::size_t>
Sweep::PointsOfRank(int rank, int rankCount) const
{
    if (rankCount < 1 || rank < 0 || rank >= rankCount)
    {
        throw std::invalid_argument("Sweep::PointsOfRank: rank " + std::to_string(rank) + " of " +
                                    std::to_string(rankCount));
    }
    std::vector<std::size_t> share;
    for (std::size_t i = std::size_t(rank); i < points.size(); i += std::size_t(rankCount))
    {
        share.push_back(i);
    }
    return share;
}

std::string
PointJson(const SweepPoint& point)
{
    nlohmann::ordered_json json = nlohmann::ordered_json::object();
    for (const auto& [key, value] : point.fields)
    {
        json[key] = value;
    }
    return json.dump(2) + "\n";
}

bool
IsPointComplete(const std::string& dir, const SweepPoint& point)
{
    return ReadWhole(dir + "/point.json") == PointJson(point) &&
           !ReadWhole(dir + "/summary.json").empty();
}

namespace
{

/// Every point's summary.json, in point order; a missing or malformed one is a
/// std::runtime_error naming it.
std::vector<nlohmann::json>
ReadPointSummaries(const Sweep& sweep)
{
    std::vector<nlohmann::json> summaries;
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        const std::string dir = sweep.PointDirectory(i);
        const std::string text = ReadWhole(dir + "/summary.json");
        nlohmann::json s = nlohmann::json::parse(text, nullptr, false);
        if (text.empty() || s.is_discarded() || !s.contains("latency_ms"))
        {
            throw std::runtime_error(dir + "/summary.json: missing or malformed (point " +
                                     std::to_string(i) + ")");
        }
        summaries.push_back(std::move(s));
    }
    return summaries;
}

bool
IsReplicateAxis(const std::string& axis)
{
    return axis == "run" || axis == "seed";
}

/// The figures sweep-means.csv averages, as read from a summary (NaN where absent).
const std::vector<std::pair<std::string, std::function<double(const nlohmann::json&)>>>&
MeanMetrics()
{
    static const std::vector<std::pair<std::string, std::function<double(const nlohmann::json&)>>>
        metrics = {
            {"latency_mean_ms", [](const nlohmann::json& s) { return s["latency_ms"]["mean"].get<double>(); }},
            {"latency_p95_ms", [](const nlohmann::json& s) { return s["latency_ms"]["p95"].get<double>(); }},
            {"experts_per_token_layer",
             [](const nlohmann::json& s) { return s["experts_per_token_layer"].get<double>(); }},
            {"cache_hit_rate", [](const nlohmann::json& s) { return s["cache_hit_rate"].get<double>(); }},
            {"prefetch_accuracy",
             [](const nlohmann::json& s) {
                 return s["prefetch_accuracy"].is_number() ? s["prefetch_accuracy"].get<double>()
                                                           : std::nan("");
             }},
            {"perplexity", [](const nlohmann::json& s) { return s["perplexity"].get<double>(); }},
            {"kl_divergence",
             [](const nlohmann::json& s) { return s.value("kl_divergence_from_topk", std::nan("")); }},
        };
    return metrics;
}

std::string
Number(double v)
{
    std::ostringstream out;
    out.precision(9);
    if (std::isfinite(v))
    {
        out << v;
    }
    return out.str();
}

} // namespace

std::string
MergeSweepMeans(const Sweep& sweep)
{
    const std::vector<nlohmann::json> summaries = ReadPointSummaries(sweep);
    // Points that differ only in a replicate axis form one group, in order of first appearance.
    std::vector<std::string> keys;
    std::map<std::string, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        std::string key;
        for (const auto& [axis, value] : sweep.points[i].fields)
        {
            key += IsReplicateAxis(axis) ? std::string() : "," + Cell(value);
        }
        if (!groups.count(key))
        {
            keys.push_back(key);
        }
        groups[key].push_back(i);
    }
    std::ostringstream csv;
    csv << "group";
    for (const std::string& axis : sweep.axes)
    {
        csv << (IsReplicateAxis(axis) ? "" : "," + axis);
    }
    csv << ",policy_name,runs";
    for (const auto& metric : MeanMetrics())
    {
        csv << "," << metric.first << "," << metric.first << "_low," << metric.first << "_high";
    }
    csv << "\n";
    for (std::size_t g = 0; g < keys.size(); ++g)
    {
        const std::vector<std::size_t>& members = groups[keys[g]];
        csv << g << keys[g] << "," << Cell(summaries[members.front()]["policy"]["name"]) << ","
            << members.size();
        for (const auto& metric : MeanMetrics())
        {
            std::vector<double> values;
            for (std::size_t i : members)
            {
                values.push_back(metric.second(summaries[i]));
            }
            const Interval v = std::isfinite(values.front()) ? StudentInterval(values)
                                                             : Interval{std::nan(""), std::nan(""), std::nan(""), 0};
            csv << "," << Number(v.mean) << "," << Number(v.low) << "," << Number(v.high);
        }
        csv << "\n";
    }
    return csv.str();
}

std::string
MergeSweepCsv(const Sweep& sweep)
{
    const std::vector<nlohmann::json> summaries = ReadPointSummaries(sweep);
    std::ostringstream csv;
    csv.precision(9);
    csv << "point";
    for (const std::string& axis : sweep.axes)
    {
        csv << "," << axis;
    }
    csv << ",results,policy_name,decode_tokens,latency_mean_ms,latency_p50_ms,latency_p95_ms,"
           "latency_p99_ms,experts_per_token_layer,cache_hit_rate,prefetch_accuracy,perplexity,"
           "kl_divergence\n";
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        const nlohmann::json& s = summaries[i];
        csv << i;
        for (const auto& field : sweep.points[i].fields)
        {
            csv << "," << Cell(field.second);
        }
        const auto& l = s["latency_ms"];
        csv << "," << sweep.PointDirectory(i) << "," << Cell(s["policy"]["name"]) << ","
            << s["decode_tokens"].get<int>() << "," << l["mean"].get<double>() << ","
            << l["p50"].get<double>() << "," << l["p95"].get<double>() << ","
            << l["p99"].get<double>() << "," << s["experts_per_token_layer"].get<double>() << ","
            << s["cache_hit_rate"].get<double>() << ","
            << (s["prefetch_accuracy"].is_number()
                    ? std::to_string(s["prefetch_accuracy"].get<double>())
                    : std::string())
            << "," << s["perplexity"].get<double>() << ","
            << Number(s.value("kl_divergence_from_topk", std::nan(""))) << "\n";
    }
    return csv.str();
}

} // namespace ns3
