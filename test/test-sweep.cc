// Sweeps: expansion of axes (cartesian) and explicit points, up-front checks naming the point
// and the field, completeness of a point's folder (what resume relies on), the merged CSV.

#include "json-config.h"
#include "result-files.h"
#include "scenario-fixture.h"
#include "sweep.h"
#include "tiny-model.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

using namespace ns3;
using wdmoe::test::TempDir;

namespace
{

const std::string kRoot = WDMOE_SOURCE_DIR;

/// A sweep file in a temp folder whose base is the repository's default scenario.
struct SweepFixture
{
    TempDir dir;

    std::string Write(const nlohmann::ordered_json& body, const std::string& name = "s.json") const
    {
        nlohmann::ordered_json json = body;
        if (!json.contains("base"))
        {
            json["base"] = kRoot + "/configs/default.json";
        }
        wdmoe::test::WriteFile(dir.File(name), json.dump(2));
        return dir.File(name);
    }
};

std::string
ErrorOf(const std::string& path)
{
    try
    {
        Sweep::Load(path);
    }
    catch (const JsonConfigError& e)
    {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("sweep: axes expand to their cartesian product, the first axis slowest", "[sweep]")
{
    SweepFixture f;
    const std::string path = f.Write(nlohmann::ordered_json::parse(
        R"({"axes": {"devices.count": [2, 4, 8], "cell.bandwidth_mhz": [20, 100]}})"));
    const Sweep s = Sweep::Load(path);
    REQUIRE(s.points.size() == 6);
    CHECK(s.axes == std::vector<std::string>{"devices.count", "cell.bandwidth_mhz"});
    CHECK(s.points[0].Describe() == "devices.count=2, cell.bandwidth_mhz=20");
    CHECK(s.points[1].Describe() == "devices.count=2, cell.bandwidth_mhz=100");
    CHECK(s.points[5].Describe() == "devices.count=8, cell.bandwidth_mhz=100");
    CHECK(s.points[3].Sets() ==
          std::vector<std::string>{"devices.count=4", "cell.bandwidth_mhz=100"});
    CHECK(s.ResultDirectory() == "results/s");
    CHECK(s.PointDirectory(12) == "results/s/points/0012");
}

TEST_CASE("sweep: explicit points run as listed", "[sweep]")
{
    SweepFixture f;
    const std::string path = f.Write(nlohmann::ordered_json::parse(
        R"({"points": [{"devices.count": 2, "policy.allocation": "minmax"},
                       {"devices.count": 16, "policy.allocation": "equal"}]})"));
    const Sweep s = Sweep::Load(path);
    REQUIRE(s.points.size() == 2);
    CHECK(s.points[1].Sets() ==
          std::vector<std::string>{"devices.count=16", "policy.allocation=\"equal\""});
}

TEST_CASE("sweep: bad sweeps fail before anything runs, naming the point and the field", "[sweep]")
{
    SweepFixture f;
    CHECK_THAT(ErrorOf(f.Write(nlohmann::ordered_json::object())),
               Catch::Contains("\"axes\" or \"points\" is required"));
    CHECK_THAT(ErrorOf(f.Write({{"axes", {{"devices.count", nlohmann::ordered_json::array()}}}})),
               Catch::Contains("axes.devices.count") && Catch::Contains("non-empty list"));
    CHECK_THAT(ErrorOf(f.Write(nlohmann::ordered_json::parse(
                   R"({"points": [{"devices.count": 2}, {"cell.bandwidth_mhz": 5}]})"))),
               Catch::Contains("points[1]") && Catch::Contains("same paths"));
    // The third point sets zero devices: the scenario's own check, with the point named.
    const std::string bad = ErrorOf(f.Write({{"axes", {{"devices.count", {4, 2, 0}}}}}));
    CHECK_THAT(bad, Catch::Contains("point 2 (devices.count=0)"));
    CHECK_THAT(bad, Catch::Contains("devices.count"));
    CHECK_THAT(ErrorOf(f.Write({{"axes", {{"policy.selection", {"all", "best"}}}}})),
               Catch::Contains("point 1") && Catch::Contains("policy.selection"));
    CHECK_THAT(ErrorOf(f.Write({{"base", kRoot + "/configs/policies.json"},
                                {"axes", {{"devices.count", {4}}}}})),
               Catch::Contains("policy comparison"));
    CHECK_THAT(ErrorOf(f.Write({{"axes", {{"devices.count", {4}}}}, {"colour", 1}})),
               Catch::Contains("colour"));
}

TEST_CASE("sweep: a point is complete only with its summary and its own point.json", "[sweep]")
{
    TempDir dir;
    SweepPoint p;
    p.fields = {{"devices.count", 4}, {"cell.bandwidth_mhz", 20}};
    SweepPoint other = p;
    other.fields[1].second = 50;
    const std::string d = dir.File("0000");
    CHECK_FALSE(IsPointComplete(d, p)); // nothing there
    CreateResultDirectory(d);
    WriteFileAtomically(d + "/point.json", PointJson(p));
    CHECK_FALSE(IsPointComplete(d, p)); // interrupted: no summary yet
    WriteFileAtomically(d + "/summary.json", "{}\n");
    CHECK(IsPointComplete(d, p));
    CHECK_FALSE(IsPointComplete(d, other)); // the sweep file changed: redo
}

TEST_CASE("sweep: merged CSV has a column per axis and one row per point", "[sweep]")
{
    SweepFixture f;
    const std::string path = f.Write(nlohmann::ordered_json::parse(
        R"({"axes": {"devices.count": [2, 4],
                     "policy": [{"name": "a, quoted \"one\""}]}})"));
    const Sweep s = Sweep::Load(path);
    TempDir work;
    char old[4096];
    REQUIRE(::getcwd(old, sizeof old));
    REQUIRE(::chdir(work.File("").c_str()) == 0);
    for (std::size_t i = 0; i < s.points.size(); ++i)
    {
        CreateResultDirectory(s.PointDirectory(i));
        const nlohmann::json summary = {
            {"policy", {{"name", "p"}}},
            {"decode_tokens", 10},
            {"latency_ms", {{"mean", 1.5 + i}, {"p50", 1}, {"p95", 2}, {"p99", 3}}},
            {"experts_per_token_layer", 2},
            {"cache_hit_rate", 1},
            {"prefetch_accuracy", nullptr},
            {"perplexity", 3.25},
            {"kl_divergence_from_topk", 0.01}};
        WriteFileAtomically(s.PointDirectory(i) + "/summary.json", summary.dump());
    }
    const std::string csv = MergeSweepCsv(s);
    std::remove((s.PointDirectory(1) + "/summary.json").c_str());
    CHECK_THROWS_WITH(MergeSweepCsv(s), Catch::Contains("0001/summary.json"));
    REQUIRE(::chdir(old) == 0);
    std::istringstream in(csv);
    std::string header, row0, row1, extra;
    std::getline(in, header);
    std::getline(in, row0);
    std::getline(in, row1);
    CHECK_FALSE(std::getline(in, extra));
    CHECK(header.rfind("point,devices.count,policy,results,policy_name,decode_tokens,"
                       "latency_mean_ms,",
                       0) == 0);
    CHECK(row0 ==
          "0,2,\"a, quoted \"\"one\"\"\",results/s/points/0000,p,10,1.5,1,2,3,2,1,,3.25,0.01");
    CHECK(row1.rfind("1,4,", 0) == 0);
}

TEST_CASE("sweep: sweep-means.csv averages the runs of each point with a Student interval",
          "[sweep]")
{
    SweepFixture f;
    const Sweep s = Sweep::Load(f.Write(nlohmann::ordered_json::parse(
        R"({"axes": {"devices.count": [2, 4], "run": [1, 2, 3]}})")));
    REQUIRE(s.points.size() == 6);
    TempDir work;
    char old[4096];
    REQUIRE(::getcwd(old, sizeof old));
    REQUIRE(::chdir(work.File("").c_str()) == 0);
    // Latency means 10, 12, 14 at 2 devices and 20, 20, 20 at 4; p95 twice the mean.
    const double latency[6] = {10, 12, 14, 20, 20, 20};
    for (std::size_t i = 0; i < s.points.size(); ++i)
    {
        CreateResultDirectory(s.PointDirectory(i));
        const nlohmann::json summary = {
            {"policy", {{"name", "p"}}},
            {"decode_tokens", 10},
            {"latency_ms", {{"mean", latency[i]}, {"p50", 1}, {"p95", 2 * latency[i]}, {"p99", 3}}},
            {"experts_per_token_layer", 2},
            {"cache_hit_rate", 1},
            {"prefetch_accuracy", nullptr},
            {"perplexity", 3},
            {"kl_divergence_from_topk", 0}};
        WriteFileAtomically(s.PointDirectory(i) + "/summary.json", summary.dump());
    }
    const std::string csv = MergeSweepMeans(s);
    REQUIRE(::chdir(old) == 0);
    const auto rows = wdmoe::test::ParseCsv(csv);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].count("run") == 0); // the replicate axis is what is averaged over
    CHECK(rows[0].at("devices.count") == "2");
    CHECK(rows[0].at("runs") == "3");
    CHECK(std::stod(rows[0].at("latency_mean_ms")) == 12);
    // s = 2, standard error 2 / sqrt(3), t(0.975, 2) = 4.302652729749464.
    const double half = 4.302652729749464 * 2 / std::sqrt(3.0);
    CHECK(std::stod(rows[0].at("latency_mean_ms_low")) == Approx(12 - half).epsilon(1e-8));
    CHECK(std::stod(rows[0].at("latency_mean_ms_high")) == Approx(12 + half).epsilon(1e-8));
    CHECK(std::stod(rows[0].at("latency_p95_ms")) == 24);
    CHECK(std::stod(rows[1].at("latency_mean_ms_low")) == 20); // no spread, no width
    CHECK(std::stod(rows[1].at("latency_mean_ms_high")) == 20);
    CHECK(rows[0].at("prefetch_accuracy").empty()); // no prefetch: empty cells
    CHECK(rows[0].at("prefetch_accuracy_low").empty());
}

TEST_CASE("sweep: the ranks of an MPI run share the points, each point on one rank", "[sweep]")
{
    SweepFixture f;
    const Sweep s = Sweep::Load(f.Write(nlohmann::ordered_json::parse(
        R"({"axes": {"devices.count": [2, 4, 8, 16, 32], "workload.scored_tokens": [4]}})")));
    REQUIRE(s.points.size() == 5);
    CHECK(s.PointsOfRank(0, 1) == std::vector<std::size_t>{0, 1, 2, 3, 4});
    CHECK(s.PointsOfRank(0, 2) == std::vector<std::size_t>{0, 2, 4});
    CHECK(s.PointsOfRank(1, 2) == std::vector<std::size_t>{1, 3});
    CHECK(s.PointsOfRank(6, 8).empty()); // more ranks than points: some have nothing to do
    CHECK_THROWS(s.PointsOfRank(2, 2));
    CHECK_THROWS(s.PointsOfRank(0, 0));
}
