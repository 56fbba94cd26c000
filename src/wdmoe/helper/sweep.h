// A sweep: one base scenario and the points to run it at, each point a set of dotted config
// fields (the cartesian product of axes, or an explicit list). Expansion, up-front checks,
// the results layout that makes a sweep resumable, and the merged table.
#ifndef WDMOE_SWEEP_H
#define WDMOE_SWEEP_H

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

class JsonConfigReader;

/// The most points a sweep may have unless its file raises "max_points" (checked before the
/// points are formed: the product of 9 axes of 10 values is 10^9 points).
constexpr long long kDefaultMaxSweepPoints = 10000;
/// The most "max_points" may allow.
constexpr long long kMaxSweepPoints = 100000;

/// One point: the fields it sets, in axis order (dotted path, JSON value).
struct SweepPoint
{
    std::vector<std::pair<std::string, nlohmann::json>> fields;

    /// "dotted.key=value" strings for ScenarioConfig::Load / wdmoe-run --set.
    std::vector<std::string> Sets() const;
    /// "devices.count=4, cell.bandwidth_mhz=20" for messages.
    std::string Describe() const;
};

struct Sweep
{
    std::string file;              ///< the sweep file
    std::string baseConfig;        ///< the scenario config every point starts from
    std::vector<std::string> axes; ///< the dotted paths, in file order (the CSV's columns)
    std::vector<SweepPoint> points;

    /// Reads a sweep file: {"base": "scenario.json" (relative to the sweep file), and either
    /// "axes": {"dotted.path": [values...], ...} (their cartesian product, the first axis
    /// varying slowest) or "points": [{"dotted.path": value, ...}, ...] (every point setting the
    /// same paths), "description" and "max_points" (default kDefaultMaxSweepPoints) optional}.
    /// Before the product is formed, every axis's values are checked to be a list, a point of
    /// every axis's first value is checked (so every path is known), and the number of points
    /// is checked against max_points. Then every point is applied to the base config and
    /// checked before anything runs; errors are JsonConfigError naming the sweep file, the
    /// point and the field.
    static Sweep Load(const std::string& path);

    /// results/<sweep file name>/ (the merged sweep.csv) and its points/NNNN folders.
    std::string ResultDirectory() const;
    std::string PointDirectory(std::size_t index) const;

    /// The points one of rankCount runners (the ranks of an MPI job) takes: point i goes to
    /// rank i % rankCount, so every point has exactly one runner and the shares differ by at
    /// most one point. One runner (rankCount 1) takes them all.
    std::vector<std::size_t> PointsOfRank(int rank, int rankCount) const;

  private:
    void LoadAxes(const JsonConfigReader& root,
                  const nlohmann::ordered_json& spec,
                  const nlohmann::json& base,
                  std::size_t cap);
    void LoadPoints(const JsonConfigReader& root,
                    const nlohmann::ordered_json& list,
                    std::size_t cap);
};

/// True when a point's folder holds its whole result for exactly this point: summary.json
/// (written last by a run) and point.json equal to the point's fields.
bool IsPointComplete(const std::string& dir, const SweepPoint& point);

/// point.json's content for a point (written into its folder before it runs).
std::string PointJson(const SweepPoint& point);

/// sweep.csv: one row per point in order, with a column per axis (values as written in the
/// sweep file; strings bare, an object with a "name" by its name, CSV-quoted where needed)
/// followed by the point's folder, its policy's name and its summary's figures.
/// Throws std::runtime_error naming a point whose summary.json is missing or malformed.
std::string MergeSweepCsv(const Sweep& sweep);

/// sweep-means.csv: the points that differ only in a replicate axis ("run", "seed") as one row,
/// with a column per other axis, the policy's name, the number of runs, and for each of
/// latency_mean_ms, latency_p95_ms, experts_per_token_layer, cache_hit_rate, prefetch_accuracy,
/// perplexity and kl_divergence the mean over the runs and its 95 % Student interval
/// (x, x_low, x_high; empty where unknown: one run, or no prefetch).
std::string MergeSweepMeans(const Sweep& sweep);

} // namespace ns3

#endif
