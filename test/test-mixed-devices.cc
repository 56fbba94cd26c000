// Mixed cells: "devices" as a list of groups (parsed and expanded in order, each device with its
// group's profile, transmit power and position; bad groups name their field), devices.csv, and
// the channel's per-device transmit power.
#include "device-groups.h"
#include "error-message.h"
#include "radio-fixture.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

using namespace ns3;
using wdmoe::test::ErrorOf;
using wdmoe::test::ScenarioFixture;

namespace
{

/// A cell of three groups at fixed distances: two phones at 23 dBm, one Orin Nano at the cell's
/// default power, one AGX Orin at 10 dBm, 40 m away at 90 degrees.
nlohmann::json
ThreeGroups()
{
    return nlohmann::json::array(
        {{{"profile", "smartphone-soc"}, {"count", 2}, {"power_dbm", 23}, {"distance_m", 150}},
         {{"profile", "jetson-orin-nano"}, {"count", 1}, {"min_distance_m", 60}},
         {{"profile", "jetson-agx-orin"},
          {"count", 1},
          {"power_dbm", 10},
          {"distance_m", 40},
          {"angle_deg", 90}}});
}

/// The fixture's cell made wide enough for the groups (35 to 200 m), with the three groups.
struct MixedFixture : ScenarioFixture
{
    MixedFixture()
    {
        config["cell"]["min_distance_m"] = 35;
        config["cell"]["radius_m"] = 200;
        config["cell"]["device_power_dbm"] = 20;
        config["devices"] = ThreeGroups();
    }
};

} // namespace

TEST_CASE("mixed devices: groups parse and expand in order with their profile, power and place",
          "[mixed]")
{
    MixedFixture f;
    const ScenarioConfig c = ScenarioConfig::Load(f.Write());
    CHECK(c.devices == 4);
    CHECK(c.deviceProfile == "2 x smartphone-soc + 1 x jetson-orin-nano + 1 x jetson-agx-orin");
    const std::vector<CellDevice> d = c.CellDevices();
    REQUIRE(d.size() == 4);
    const std::vector<std::string> profiles = {"smartphone-soc",
                                               "smartphone-soc",
                                               "jetson-orin-nano",
                                               "jetson-agx-orin"};
    const std::vector<int> groups = {0, 0, 1, 2};
    const std::vector<double> powers = {23, 23, 20, 10}; // the Nano: cell.device_power_dbm
    for (std::size_t i = 0; i < 4; ++i)
    {
        CHECK(d[i].profile == profiles[i]);
        CHECK(d[i].group == groups[i]);
        CHECK(d[i].powerDbm == powers[i]);
    }
    CHECK(d[0].distanceM == 150);
    CHECK_FALSE(d[0].angleRad);
    CHECK(d[2].distanceM == 0); // a range: from its own minimum to the cell's radius
    CHECK(d[2].minDistanceM == 60);
    CHECK(d[2].maxDistanceM == 200);
    REQUIRE(d[3].angleRad);
    CHECK(*d[3].angleRad == Approx(M_PI / 2));

    // The object form is one group of `count` alike devices with the cell's power.
    ScenarioFixture plain;
    plain.config["devices"] = {{"count", 3}, {"profile", "jetson-orin-nano"}};
    const std::vector<CellDevice> same = ScenarioConfig::Load(plain.Write()).CellDevices();
    REQUIRE(same.size() == 3);
    CHECK(same[2].profile == "jetson-orin-nano");
    CHECK(same[2].powerDbm == 23);
    CHECK(same[2].minDistanceM == 200);
}

TEST_CASE("mixed devices: each device runs with its group's profile, power and position", "[mixed]")
{
    MixedFixture f;
    const ScenarioConfig c = ScenarioConfig::Load(f.Write());

    struct DestroyAtExit
    {
        ~DestroyAtExit() { Simulator::Destroy(); }
    } destroy;

    WdmoeScenario scenario(c);
    Simulator::Run();
    const ScenarioResult r = scenario.Collect();
    WdmoeHelper& helper = scenario.Helper();
    const std::vector<std::string> names = {"smartphone-soc",
                                            "smartphone-soc",
                                            "jetson-orin-nano",
                                            "jetson-agx-orin"};
    const std::vector<double> powers = {23, 23, 20, 10};
    for (uint32_t i = 0; i < 4; ++i)
    {
        CHECK(helper.GetDeviceApp(i)->Profile().name == names[i]);
        CHECK(helper.GetChannel()->GetDeviceTxPowerDbm(i) == powers[i]);
    }
    const Vector orin =
        helper.GetDeviceApp(3)->GetNode()->GetObject<MobilityModel>()->GetPosition();
    CHECK(orin.x == Approx(0).margin(1e-9));
    CHECK(orin.y == Approx(40));
    // Memory slots from each profile: memory_fraction 0.75 of its memory over an expert's bytes.
    const CostModel cost = CostModel::Mixtral8x7B();
    const auto slots = r.summary["cell"]["expert_memory_slots_per_device"];
    for (uint32_t i = 0; i < 4; ++i)
    {
        const double memory = helper.GetDeviceApp(i)->Profile().memoryBytes;
        CHECK(slots[i].get<int>() == int(std::floor(0.75 * memory / cost.ExpertBytes())));
    }
    CHECK(r.summary["cell"]["device_groups"][2]["first_device"] == 3);

    // devices.csv: one row per device; utilisation is its compute time over the run's.
    const auto rows = wdmoe::test::ParseCsv(r.devicesCsv);
    REQUIRE(rows.size() == 4);
    const double run = r.summary["timing"]["simulated_s"].get<double>();
    int held = 0;
    for (uint32_t i = 0; i < 4; ++i)
    {
        CHECK(rows[i].at("profile") == names[i]);
        CHECK(std::stod(rows[i].at("power_dbm")) == powers[i]);
        CHECK(std::stoi(rows[i].at("experts_held")) == helper.GetPlacement().Load(int(i)));
        held += std::stoi(rows[i].at("experts_held"));
        CHECK(std::stod(rows[i].at("utilisation")) ==
              Approx(std::stod(rows[i].at("compute_busy_s")) / run));
    }
    CHECK(std::stod(rows[3].at("distance_m")) == Approx(40));
    CHECK(std::stod(rows[0].at("distance_m")) == Approx(150));
    CHECK(held == 4); // the one-layer, four-expert model, no replicas
}

TEST_CASE("mixed devices: one device's busy time is the compute of every token's critical path",
          "[mixed]")
{
    // One device holding every expert in memory computes exactly what each token waits for
    // on the device: the sum of tokens.csv's device_compute_ms.
    ScenarioFixture f;
    f.config["devices"] = nlohmann::json::array({{{"profile", "jetson-orin-nano"}, {"count", 1}}});
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    double compute = 0;
    for (const auto& row : wdmoe::test::ParseCsv(r.tokensCsv))
    {
        compute += std::stod(row.at("device_compute_ms")) / 1e3;
    }
    const auto rows = wdmoe::test::ParseCsv(r.devicesCsv);
    REQUIRE(rows.size() == 1);
    CHECK(compute > 0);
    CHECK(std::stod(rows[0].at("compute_busy_s")) == Approx(compute).epsilon(1e-6));
}

TEST_CASE("mixed devices: bad groups are refused naming the group and field", "[mixed][bad-input]")
{
    MixedFixture f;
    auto error = [&](const std::string& set) {
        return ErrorOf([&] { ScenarioConfig::Load(f.Write(), {set}); });
    };
    f.config["devices"][1].erase("count");
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[1].count\" is required"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][1]["count"] = 0;
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[1].count\" must be an integer in [1"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][0]["colour"] = "red";
    CHECK_THAT(error("seed=1"), Catch::Contains("devices[0]") && Catch::Contains("colour"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][0]["min_distance_m"] = 50;
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[0].distance_m\" is a fixed distance"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][1]["max_distance_m"] = 300;
    CHECK_THAT(error("seed=1"),
               Catch::Contains("\"devices[1].max_distance_m\" must be in [cell.min_distance_m, "
                               "cell.radius_m] = [35, 200] m, got 300"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][1]["max_distance_m"] = 50;
    CHECK_THAT(error("seed=1"),
               Catch::Contains("\"devices[1].max_distance_m\" must exceed the group's minimum "
                               "distance (60 m), got 50"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][2]["distance_m"] = 20;
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[2].distance_m\" must be in"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][2]["profile"] = "toaster";
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[2].profile\" names no profile"));
    f.config["devices"] = ThreeGroups();
    f.config["devices"][0]["power_dbm"] = 99;
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices[0].power_dbm\" must be a number in"));
    f.config["devices"] = nlohmann::json::array();
    CHECK_THAT(error("seed=1"), Catch::Contains("\"devices\" as a list needs at least one group"));
    f.config["devices"] = ThreeGroups();
    f.config["failures"] = nlohmann::json::array({{{"device", 4}, {"at_s", 0}}});
    f.config["cell"]["layer_deadline_ms"] = 50;
    CHECK_THAT(error("seed=1"), Catch::Contains("but the cell has 4 devices"));
}

TEST_CASE("mixed devices: too little room across the groups names them", "[mixed][bad-input]")
{
    ScenarioFixture f;
    f.config["devices"] = nlohmann::json::array(
        {{{"profile", "jetson-orin-nano"}, {"count", 1}, {"storage_slots", 1}},
         {{"profile", "jetson-orin-nano"}, {"count", 2}, {"storage_slots", 1}}});
    CHECK_THAT(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write())); }),
               Catch::Contains("field \"devices\" cannot hold the model: the groups host 1 x 1 "
                               "(jetson-orin-nano) + 2 x 1 (jetson-orin-nano) = 3 expert slots"));
}

TEST_CASE("mixed devices: every group key changes the results", "[mixed][config]")
{
    ScenarioFixture f;
    f.config["cell"]["min_distance_m"] = 35;
    f.config["cell"]["radius_m"] = 500;
    f.config["cell"]["fading"] = true;
    f.config["devices"] = nlohmann::json::array(
        {{{"profile", "jetson-orin-nano"}, {"count", 2}, {"memory_fraction", 0.1}},
         {{"profile", "jetson-orin-nano"}, {"count", 1}, {"memory_fraction", 0.1}}});
    const nlohmann::json groups = f.config["devices"];
    auto results = [&](const std::string& key, const nlohmann::json& value) {
        f.config["devices"] = groups;
        if (!key.empty())
        {
            f.config["devices"][0][key] = value;
        }
        const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
        nlohmann::ordered_json s = r.summary;
        s.erase("config_echo");
        s.erase("timing");
        return s.dump() + r.tokensCsv;
    };
    const std::string base = results("", nullptr);
    const std::vector<std::pair<std::string, nlohmann::json>> changes = {
        {"profile", "smartphone-soc"},
        {"count", 1},
        {"power_dbm", -20},
        {"distance_m", 480},
        {"angle_deg", 45},
        {"min_distance_m", 450},
        {"max_distance_m", 40},
        {"memory_fraction", 0.3},
        {"storage_slots", 1},
        {"warm_cache", false}};
    for (const auto& [key, value] : changes)
    {
        INFO(key << " = " << value);
        CHECK(results(key, value) != base);
    }
}

TEST_CASE("channel: a device's own transmit power moves only its uplink SNR, by the dB given",
          "[mixed][radio]")
{
    wdmoe::test::RngGuard guard;
    Ptr<WdmoeChannel> ch = wdmoe::test::StaticOneDeviceChannel(200);
    ch->AddDevice(wdmoe::test::At(200, 0, 0));
    ch->AssignStreams(0);
    const double ul = ch->UplinkSnr(0, 1e6, Seconds(0));
    const double dl = ch->DownlinkSnr(0, 1e6, Seconds(0));
    CHECK(ch->GetDeviceTxPowerDbm(1) == 23); // the attribute's default
    ch->SetDeviceTxPowerDbm(1, 13);
    CHECK(ch->GetDeviceTxPowerDbm(1) == 13);
    CHECK(ch->UplinkSnr(1, 1e6, Seconds(0)) == Approx(ul / 10).epsilon(1e-12));
    CHECK(ch->DownlinkSnr(1, 1e6, Seconds(0)) == Approx(dl).epsilon(1e-12));
    CHECK(ch->UplinkSnr(0, 1e6, Seconds(0)) == ul);
}
