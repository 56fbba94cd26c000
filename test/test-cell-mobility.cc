// The cell's devices on every ns-3 mobility model it supports (bounded by the cell, started at
// their drawn places), the models it refuses and why; drops counted by phase; warnings for a
// failure that changes nothing; wdmoe-run's command-line overrides.
#include "cell-mobility.h"
#include "error-message.h"
#include "json-config.h"
#include "run-overrides.h"
#include "scenario-fixture.h"
#include "run-scenario.h"

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

TEST_CASE("run overrides: shortcuts go through the checked sets, and name themselves in errors",
          "[run][bad-input]")
{
    std::vector<std::string> args{"wdmoe-run",
                                  "--config=c.json",
                                  "--devices=16",
                                  "--set",
                                  "cell.duplex=fdd",
                                  "--bandwidthMHz=-5",
                                  "--RngRun=abc",
                                  "--workload.scored_tokens=5",
                                  "--outDir=x"};
    const std::vector<RunOverride> overrides = TakeRunOverrides(args);
    CHECK(args == std::vector<std::string>{"wdmoe-run", "--config=c.json", "--outDir=x"});
    CHECK(OverrideSets(overrides) == std::vector<std::string>{"devices.count=16",
                                                              "cell.duplex=fdd",
                                                              "cell.bandwidth_mhz=-5",
                                                              "run=abc",
                                                              "workload.scored_tokens=5"});
    ScenarioFixture f;
    const std::string path = f.Write();
    auto error = [&](const std::string& option) {
        std::vector<std::string> a{"wdmoe-run", option};
        const auto o = TakeRunOverrides(a);
        return NameOverridesIn(ErrorOf([&] { ScenarioConfig::Load(path, OverrideSets(o)); }), o);
    };
    CHECK(error("--devices=1000000") ==
          path + ": field \"devices.count\" must be an integer in [1, 4096], got 1000000 (set by "
                 "--devices=1000000)");
    CHECK(error("--bandwidthMHz=-5") ==
          path + ": field \"cell.bandwidth_mhz\" must be a number in [0.001, 100000], got -5 "
                 "(set by --bandwidthMHz=-5)");
    CHECK(error("--RngRun=abc") == path + ": field \"run\" must be an integer in [1, "
                                          "4294967295], got \"abc\" (set by --RngRun=abc)");
    // What they set is what runs, and what the config echo shows.
    std::vector<std::string> a{"wdmoe-run", "--devices=3", "--RngRun=7"};
    const ScenarioConfig c = ScenarioConfig::Load(path, OverrideSets(TakeRunOverrides(a)));
    CHECK(c.devices == 3);
    CHECK(c.run == 7);
    CHECK(c.echo["devices"]["count"] == 3);
    CHECK(c.echo["run"] == 7);
}

TEST_CASE("run overrides: a run with overrides writes to a folder of its own by default",
          "[run][results]")
{
    auto folder = [](std::vector<std::string> args) {
        args.insert(args.begin(), "wdmoe-run");
        return DefaultRunDirectory("configs/default.json", TakeRunOverrides(args));
    };
    CHECK(folder({}) == "results/default");
    CHECK(folder({"--devices=16"}) == "results/default+devices=16");
    CHECK(folder({"--devices=16", "--bandwidthMHz=20"}) ==
          "results/default+devices=16+bandwidthMHz=20");
    CHECK(folder({"--set", "policy={\"name\": \"a b\"}"}) ==
          "results/default+policy=__name____a_b__");
    const std::string longer = folder({"--set", "description=" + std::string(300, 'd')});
    CHECK(longer.size() == std::string("results/").size() + 150);
    CHECK(longer != folder({"--set", "description=" + std::string(301, 'd')})); // the hash differs
}
