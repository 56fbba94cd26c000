#include "sweep.h"

#include "confidence-interval.h"
#include "file-io.h"
#include "json-config.h"
#include "json-input.h"
#include "policy-comparison.h"
#include "result-files.h"
#include "wdmoe-scenario.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <map>
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

/// The summary figures of one point's summary.json as sweep.csv cells (from policy_name on).
/// The summary's cells of a sweep.csv row, from policy_name to kl_divergence (an older
/// summary without KL leaves that cell empty).
std::string
SummaryCells(const nlohmann::json& s)
{
    const nlohmann::json& l = s.at("latency_ms");
    const nlohmann::json& prefetch = s.at("prefetch_accuracy");
    std::ostringstream cells;
    cells.precision(9);
    cells << Cell(s.at("policy").at("name")) << "," << s.at("decode_tokens").get<int>() << ","
          << l.at("mean").get<double>() << "," << l.at("p50").get<double>() << ","
          << l.at("p95").get<double>() << "," << l.at("p99").get<double>() << ","
          << s.at("experts_per_token_layer").get<double>() << ","
          << s.at("cache_hit_rate").get<double>() << ","
          << (prefetch.is_number() ? std::to_string(prefetch.get<double>()) : std::string()) << ","
          << s.at("perplexity").get<double>() << ",";
    if (s.contains("kl_divergence_from_topk"))
    {
        cells << s["kl_divergence_from_topk"].get<double>();
    }
    return cells.str();
}

/// The serving columns of sweep.csv (only when the points serve requests).
const char* const kServingColumns =
    ",throughput_tokens_per_s,throughput_requests_per_s,queueing_p50_ms,queueing_p99_ms,"
    "ttft_p50_ms,ttft_p99_ms,tpot_p50_ms,tpot_p99_ms,e2e_p50_ms,e2e_p99_ms";

/// A point's serving cells, each after a comma (a percentile no request had is empty).
std::string
ServingCells(const nlohmann::json& s)
{
    const nlohmann::json& v = s.at("serving");
    std::ostringstream cells;
    cells.precision(9);
    cells << "," << v.at("throughput_tokens_per_s").get<double>() << ","
          << v.at("throughput_requests_per_s").get<double>();
    for (const char* latency : {"queueing_ms", "ttft_ms", "tpot_ms", "e2e_ms"})
    {
        for (const char* p : {"p50", "p99"})
        {
            cells << ",";
            if (v.at(latency).is_object())
            {
                cells << v[latency].at(p).get<double>();
            }
        }
    }
    return cells.str();
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

namespace
{

/// The number of points of the axes' cartesian product, or cap + 1 once it passes cap (the
/// product of 9 axes of 10 values does not fit any budget, and may not fit 64 bits).
std::size_t
ProductSize(const nlohmann::ordered_json& axes, std::size_t cap)
{
    std::size_t count = 1;
    for (const auto& [key, values] : axes.items())
    {
        count *= values.size();
        if (count > cap)
        {
            return cap + 1;
        }
    }
    return count;
}

/// The axes' cartesian product, the first axis varying slowest.
std::vector<SweepPoint>
ExpandAxes(const nlohmann::ordered_json& axes)
{
    std::vector<SweepPoint> points(1);
    for (const auto& [key, values] : axes.items())
    {
        std::vector<SweepPoint> product;
        product.reserve(points.size() * values.size());
        for (const SweepPoint& partial : points)
        {
            for (const auto& value : values)
            {
                SweepPoint p = partial;
                p.fields.push_back({key, nlohmann::json::parse(value.dump())});
                product.push_back(std::move(p));
            }
        }
        points = std::move(product);
    }
    return points;
}

/// Applies a point's fields to the base scenario and checks the result; any error names the
/// sweep file and the point.
void
CheckPoint(const Sweep& sweep,
           const nlohmann::json& base,
           const SweepPoint& point,
           const std::string& which)
{
    try
    {
        ScenarioConfig::FromJson(sweep.baseConfig, base, point.Sets()).Validate();
    }
    catch (const std::exception& e)
    {
        throw JsonConfigError(sweep.file + ": " + which + " (" +
                              wdmoe::llm::CutForMessage(point.Describe(), 200) + "): " + e.what());
    }
}

} // namespace

Sweep
Sweep::Load(const std::string& path)
{
    Sweep sweep;
    sweep.file = path;
    const nlohmann::json json = ReadJsonConfigFile(path);
    const JsonConfigReader root(path, json);
    root.AllowOnly({"description", "base", "axes", "points", "max_points"});
    root.String("description", "");
    sweep.baseConfig = root.PathRelativeToFile(root.String("base"));
    const std::size_t cap =
        std::size_t(root.Integer("max_points", kDefaultMaxSweepPoints, 1, kMaxSweepPoints));
    if (json.contains("axes") == json.contains("points"))
    {
        root.Fail("axes", "or \"points\" is required (exactly one of them)");
    }
    nlohmann::json base;
    try
    {
        base = ReadJsonConfigFile(sweep.baseConfig);
    }
    catch (const JsonConfigError& e)
    {
        root.Fail("base", std::string("names a scenario that cannot be read: ") + e.what());
    }
    if (base.is_object() && base.contains("policies"))
    {
        root.Fail("base", "names a policy comparison; a sweep's base is one scenario");
    }
    // nlohmann::json keeps object keys sorted; the file order is the order written.
    const nlohmann::ordered_json ordered = ReadOrderedJsonConfigFile(path);
    if (json.contains("axes"))
    {
        sweep.LoadAxes(root, ordered["axes"], base, cap);
    }
    else
    {
        sweep.LoadPoints(root, ordered["points"], cap);
    }
    // Every point, checked now: a sweep fails before it runs anything.
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        CheckPoint(sweep, base, sweep.points[i], "point " + std::to_string(i));
    }
    return sweep;
}

void
Sweep::LoadAxes(const JsonConfigReader& root,
                const nlohmann::ordered_json& spec,
                const nlohmann::json& base,
                std::size_t cap)
{
    if (!spec.is_object() || spec.empty())
    {
        root.Fail("axes", "must be an object of dotted config paths to lists of values");
    }
    // Every axis is checked before the product is formed: its values, then its path (a point
    // of every axis's first value reaches each path), then the number of points.
    SweepPoint first;
    for (const auto& [key, values] : spec.items())
    {
        if (!values.is_array() || values.empty())
        {
            root.Fail("axes." + key, "must be a non-empty list of values");
        }
        axes.push_back(key);
        first.fields.push_back({key, nlohmann::json::parse(values.front().dump())});
    }
    CheckPoint(*this, base, first, "the first value of every axis");
    if (ProductSize(spec, cap) > cap)
    {
        std::string sizes;
        double product = 1;
        for (const auto& [key, values] : spec.items())
        {
            sizes += (sizes.empty() ? "" : " x ") + std::to_string(values.size());
            product *= double(values.size());
        }
        std::ostringstream total;
        total << std::setprecision(3) << product;
        root.Fail("axes",
                  "make " + sizes + " = " + total.str() + " points, more than max_points (" +
                      std::to_string(cap) +
                      "): split the sweep, or raise \"max_points\" (at most " +
                      std::to_string(kMaxSweepPoints) + ")");
    }
    points = ExpandAxes(spec);
}

void
Sweep::LoadPoints(const JsonConfigReader& root, const nlohmann::ordered_json& list, std::size_t cap)
{
    if (!list.is_array() || list.empty())
    {
        root.Fail("points", "must be a non-empty list of objects of dotted paths to values");
    }
    if (list.size() > cap)
    {
        root.Fail("points",
                  "has " + std::to_string(list.size()) + " points, more than max_points (" +
                      std::to_string(cap) + "): split the sweep, or raise \"max_points\"");
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
            axes = keys;
        }
        else if (keys != axes)
        {
            root.Fail(field, "must set the same paths as points[0], in the same order");
        }
        points.push_back(p);
    }
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
    return wdmoe::llm::ReadWholeFile(dir + "/point.json").value_or("") == PointJson(point) &&
           !wdmoe::llm::ReadWholeFile(dir + "/summary.json").value_or("").empty();
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
        const std::string file = sweep.PointDirectory(i) + "/summary.json";
        const std::string text = wdmoe::llm::ReadWholeFile(file).value_or("");
        try
        {
            if (text.empty())
            {
                throw std::runtime_error("the file is missing or empty");
            }
            summaries.push_back(
                wdmoe::llm::ParseJsonInput(file, text.data(), text.data() + text.size()));
            SummaryCells(summaries.back()); // every field a row needs is there
        }
        catch (const std::exception& e)
        {
            throw std::runtime_error(file + ": missing or malformed (point " + std::to_string(i) +
                                     "): " + e.what());
        }
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
            {"latency_mean_ms",
             [](const nlohmann::json& s) { return s["latency_ms"]["mean"].get<double>(); }},
            {"latency_p95_ms",
             [](const nlohmann::json& s) { return s["latency_ms"]["p95"].get<double>(); }},
            {"experts_per_token_layer",
             [](const nlohmann::json& s) { return s["experts_per_token_layer"].get<double>(); }},
            {"cache_hit_rate",
             [](const nlohmann::json& s) { return s["cache_hit_rate"].get<double>(); }},
            {"prefetch_accuracy",
             [](const nlohmann::json& s) {
                 return s["prefetch_accuracy"].is_number() ? s["prefetch_accuracy"].get<double>()
                                                           : std::nan("");
             }},
            {"perplexity", [](const nlohmann::json& s) { return s["perplexity"].get<double>(); }},
            {"kl_divergence",
             [](const nlohmann::json& s) {
                 return s.value("kl_divergence_from_topk", std::nan(""));
             }},
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
            const Interval v = std::isfinite(values.front())
                                   ? StudentInterval(values)
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
           "kl_divergence";
    // A sweep of serving cells (every point's summary has "serving") adds their figures.
    bool serving = !summaries.empty();
    for (const nlohmann::json& s : summaries)
    {
        serving = serving && s.contains("serving");
    }
    csv << (serving ? kServingColumns : "") << "\n";
    for (std::size_t i = 0; i < sweep.points.size(); ++i)
    {
        csv << i;
        for (const auto& field : sweep.points[i].fields)
        {
            csv << "," << Cell(field.second);
        }
        csv << "," << sweep.PointDirectory(i) << "," << SummaryCells(summaries[i])
            << (serving ? ServingCells(summaries[i]) : "") << "\n";
    }
    return csv.str();
}

} // namespace ns3
