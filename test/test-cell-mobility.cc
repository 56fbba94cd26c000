// The cell's devices on every ns-3 mobility model it supports (bounded by the cell, started at
// their drawn places), the models it refuses and why; drops counted by phase; warnings for a
// failure that changes nothing.
#include "cell-mobility.h"
#include "error-message.h"
#include "json-config.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

using namespace ns3;
using wdmoe::test::ErrorOf;
using wdmoe::test::ScenarioFixture;

namespace
{

/// The models that move (every supported one but the two that stay where they are put).
std::vector<std::string>
MovingModels()
{
    std::vector<std::string> models;
    for (const std::string& m : CellMobilityModels())
    {
        if (m != "static" && m != "ns3::ConstantPositionMobilityModel")
        {
            models.push_back(m);
        }
    }
    return models;
}

} // namespace

TEST_CASE("cell mobility: every supported model starts at the device's place and stays in the "
          "cell's square at its height",
          "[mobility][bad-input]")
{
    REQUIRE(MovingModels().size() == 5);
    for (const std::string& type : MovingModels())
    {
        INFO(type);
        const double radius = 500;
        const Vector start(300, -200, 1.5);
        int64_t stream = 100;
        Ptr<MobilityModel> m = CreateCellMobility(type);
        PlaceInCell(m, radius, start, stream);
        CHECK(stream > 100); // its random streams were assigned
        // Where the cell drew it (a steady-state random waypoint used to start at its own
        // default region: 25 m from the BS).
        CHECK(CalculateDistance(m->GetPosition(), start) < 1e-9);
        double moved = 0;
        for (int t = 1; t <= 60; ++t)
        {
            Simulator::Stop(Seconds(5));
            Simulator::Run();
            const Vector p = m->GetPosition();
            CHECK(std::abs(p.x) <= radius + 1e-6);
            CHECK(std::abs(p.y) <= radius + 1e-6);
            CHECK(std::abs(p.z - 1.5) < 1e-9);
            moved = std::max(moved, CalculateDistance(p, start));
        }
        CHECK(moved > 1); // it does move
        Simulator::Destroy();
    }
}

TEST_CASE("scenario: the cell runs on every mobility model it supports", "[mobility][scenario]")
{
    for (const std::string& type : CellMobilityModels())
    {
        INFO(type);
        ScenarioFixture f;
        f.config["devices"]["count"] = 3;
        f.config["cell"]["mobility"] = type;
        const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
        CHECK(r.summary["tokens_scored"].get<int>() == 6);
        CHECK(std::isfinite(r.summary["latency_ms"]["mean"].get<double>()));
    }
}

TEST_CASE("cell mobility: models the cell cannot drive are refused by name with the list of "
          "those that work",
          "[mobility][bad-input]")
{
    ScenarioFixture f;
    const std::string works =
        "the cell's devices can use \"static\", \"ns3::ConstantPositionMobilityModel\", "
        "\"ns3::GaussMarkovMobilityModel\", \"ns3::RandomDirection2dMobilityModel\", "
        "\"ns3::RandomWalk2dMobilityModel\", \"ns3::RandomWaypointMobilityModel\", "
        "\"ns3::SteadyStateRandomWaypointMobilityModel\"";
    auto error = [&](const std::string& mobility) {
        f.config["cell"]["mobility"] = mobility;
        return ErrorOf([&] { ScenarioConfig::Load(f.Write()); });
    };
    CHECK(error("ns3::ConstantVelocityMobilityModel") ==
          f.dir.File("scenario.json") +
              ": field \"cell.mobility\" is \"ns3::ConstantVelocityMobilityModel\", which keeps "
              "a velocity that no config field sets (at its default of 0 it is \"static\"); " +
              works);
    CHECK_THAT(error("ns3::WaypointMobilityModel"),
               Catch::Contains("which moves only along waypoints that a program adds; " + works));
    CHECK_THAT(error("ns3::HierarchicalMobilityModel"), Catch::Contains("parent and child"));
    CHECK_THAT(
        error("ns3::Node"),
        Catch::Contains("is \"ns3::Node\", which is no ns-3 mobility model TypeId name; " + works));
    CHECK_THAT(error("walk"), Catch::Contains("is \"walk\", which is no ns-3 mobility model"));
}

TEST_CASE("scenario: drops are counted by phase, prefill and decode", "[scenario][bad-input]")
{
    ScenarioFixture f(2);
    f.config["devices"]["count"] = 2;
    f.config["cell"]["layer_deadline_ms"] = 0.001; // every expert misses it
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    long long prefill = 0, decode = 0;
    for (const auto& row : wdmoe::test::ParseCsv(r.tokensCsv))
    {
        (row.at("phase") == "prefill" ? prefill : decode) += std::stoll(row.at("experts_dropped"));
    }
    // One prefill of 8 tokens and 5 decodes, 2 layers, top-2: 32 and 20 experts.
    CHECK(prefill == 32);
    CHECK(decode == 20);
    CHECK(r.summary["experts_dropped_prefill"].get<long long>() == prefill);
    CHECK(r.summary["experts_dropped_decode"].get<long long>() == decode);
    CHECK(r.summary["experts_dropped"].get<long long>() == prefill + decode);
}

TEST_CASE("scenario: a failure aimed at a device that holds no expert is a warning",
          "[scenario][bad-input]")
{
    // One layer of 4 experts, round-robin over 6 devices: devices 4 and 5 hold nothing.
    ScenarioFixture f;
    f.config["devices"]["count"] = 6;
    f.config["cell"]["layer_deadline_ms"] = 100;
    f.config["failures"] = {{{"device", 1}, {"at_s", 0}}, {{"device", 5}, {"at_s", 0}}};
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    CHECK(r.summary["warnings"].get<std::vector<std::string>>() ==
          std::vector<std::string>{"failures[1]: device 5 holds no expert (the placement left it "
                                   "empty), so its failure changes nothing"});
    f.config["failures"] = {{{"device", 1}, {"at_s", 0}}};
    CHECK(RunScenario(ScenarioConfig::Load(f.Write())).summary["warnings"].empty());
}
