// The cell end to end: configs, the event schedule of one token against a hand computation,
// reproducibility.

#include "compute-profile.h"
#include "cost-model.h"
#include "json-config.h"
#include "tiny-model.h"
#include "wdmoe-scenario.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace ns3;
using wdmoe::test::TempDir;
using wdmoe::test::TinyModel;

namespace
{

const std::string kProfiles = std::string(WDMOE_SOURCE_DIR) + "/configs/profiles";

/// A folder with a one-layer byte-level model, a text, the shipped profiles and a config.
struct ScenarioFixture
{
    TempDir dir;
    nlohmann::json config;

    explicit ScenarioFixture(int layers = 1)
    {
        TinyModel tiny(21, layers, 256);
        tiny.context = 24;
        TempDir& d = dir;
        ::mkdir(d.File("model").c_str(), 0755);
        wdmoe::test::WriteText(d.File("model/config.json"), tiny.Config().dump());
        wdmoe::test::WriteSafetensors(d.File("model/model.safetensors"),
                                      tiny.Classic(wdmoe::llm::DType::F32));
        std::string text;
        for (int i = 0; i < 400; ++i)
        {
            text += char('a' + (i * 7) % 26);
        }
        wdmoe::test::WriteText(d.File("text.txt"), text);
        REQUIRE(::symlink(kProfiles.c_str(), d.File("profiles").c_str()) == 0);
        config = {{"model", {{"path", "model"}}},
                  {"workload", {{"text", "text.txt"}, {"prompt_tokens", 8}, {"scored_tokens", 6}}},
                  {"cost_model", "mixtral-8x7b"},
                  {"cell",
                   {{"bandwidth_mhz", 20},
                    {"propagation", "log-distance-128"},
                    {"min_distance_m", 200},
                    {"radius_m", 200.000001},
                    {"shadowing_sigma_db", 0},
                    {"fading", false}}},
                  {"devices", {{"count", 1}, {"profile", "jetson-agx-orin"}}},
                  {"placement", {{"algorithm", "round-robin"}}}};
    }

    std::string Write(const std::string& name = "scenario.json") const
    {
        wdmoe::test::WriteText(dir.File(name), config.dump(2));
        return dir.File(name);
    }
};

/// Rows of tokens.csv as maps from column name to text.
std::vector<std::map<std::string, std::string>>
ParseCsv(const std::string& csv)
{
    std::istringstream in(csv);
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header;
    std::istringstream h(line);
    for (std::string cell; std::getline(h, cell, ',');)
    {
        header.push_back(cell);
    }
    std::vector<std::map<std::string, std::string>> rows;
    while (std::getline(in, line))
    {
        std::istringstream r(line);
        std::map<std::string, std::string> row;
        std::size_t k = 0;
        for (std::string cell; std::getline(r, cell, ',');)
        {
            row[header.at(k++)] = cell;
        }
        rows.push_back(row);
    }
    return rows;
}

} // namespace

TEST_CASE("scenario: one token, one layer, one device equals the hand-computed sum of its parts",
          "[scenario]")
{
    ScenarioFixture f(1);
    const ScenarioResult result = RunScenario(ScenarioConfig::Load(f.Write()));
    const auto rows = ParseCsv(result.tokensCsv);
    REQUIRE(rows.size() == 6);
    REQUIRE(rows[0].at("phase") == "prefill");
    const auto& token = rows[1]; // the first decode step: 1 token after 8 in the cache
    REQUIRE(token.at("phase") == "decode");
    REQUIRE(token.at("position") == "8");

    // Independent link budget: 128.1 + 37.6 log10(d/km) dB at the 3D distance between the BS
    // (25 m high) and the device (1.5 m high, 200 m away on the ground), the whole 20 MHz to
    // the one device, 43/23 dBm, -174 dBm/Hz, noise figures 7 dB (device) and 5 dB (BS).
    const double distanceKm = std::sqrt(200.0 * 200.0 + 23.5 * 23.5) / 1000;
    const double pathLossDb = 128.1 + 37.6 * std::log10(distanceKm);
    const double bandwidth = 20e6;
    const double noiseMw = std::pow(10.0, -17.4) * bandwidth;
    const double dlSnr = std::pow(10.0, (43 - pathLossDb) / 10) / (noiseMw * std::pow(10.0, 0.7));
    const double ulSnr = std::pow(10.0, (23 - pathLossDb) / 10) / (noiseMw * std::pow(10.0, 0.5));
    const double bits = 1 * 4096 * 16 + 8 * 64; // one Mixtral hidden state in bf16 + header
    const double dl = bits / (bandwidth * std::log2(1 + dlSnr));
    const double ul = bits / (bandwidth * std::log2(1 + ulSnr));

    // Compute from the profiles' numbers, read here on their own: the roofline of the BS layer
    // and LM head on the A100 profile, two Mixtral experts (top-2 on the one device) on the
    // Jetson AGX Orin, each memory-bound at batch 1.
    const nlohmann::json orin = ReadJsonConfigFile(kProfiles + "/jetson-agx-orin.json");
    const double expertBytes = 3.0 * 4096 * 14336 * 2;
    const double expertFlops = 2.0 * 3 * 4096 * 14336;
    const double expert = std::max(
        expertFlops / (orin["compute_efficiency"].get<double>() * orin["peak_flops"].get<double>()),
        expertBytes / (orin["memory_efficiency"].get<double>() *
                       orin["memory_bandwidth_gbps"].get<double>() * 1e9));
    const CostModel mixtral = CostModel::Mixtral8x7B();
    const ComputeProfile bs = ComputeProfile::LoadByName(kProfiles, "edge-server-gpu");
    const double bsPart = mixtral.BsLayerSeconds(bs, 1, 8) + mixtral.LmHeadSeconds(bs, 1);

    auto ms = [&](const char* column) { return std::stod(token.at(column)); };
    const double ns = 1e-6; // one nanosecond, in ms
    CHECK(ms("downlink_ms") == Approx(dl * 1e3).margin(ns));
    CHECK(ms("uplink_ms") == Approx(ul * 1e3).margin(ns));
    CHECK(ms("device_compute_ms") == Approx(2 * expert * 1e3).margin(2 * ns));
    CHECK(ms("bs_compute_ms") == Approx(bsPart * 1e3).margin(2 * ns));
    CHECK(ms("load_ms") == 0); // the cache starts warm with the placed experts
    CHECK(ms("waiting_ms") == Approx(0).margin(ns));
    CHECK(ms("latency_ms") == Approx((dl + ul + 2 * expert + bsPart) * 1e3).margin(5 * ns));
    CHECK(token.at("experts_run") == "2");
    CHECK(token.at("experts_dropped") == "0");
}

TEST_CASE("scenario: a cold cache pays the storage load once, then hits", "[scenario]")
{
    ScenarioFixture f(1);
    f.config["devices"]["warm_cache"] = false;
    const auto rows = ParseCsv(RunScenario(ScenarioConfig::Load(f.Write())).tokensCsv);
    const nlohmann::json orin = ReadJsonConfigFile(kProfiles + "/jetson-agx-orin.json");
    const double load = 3.0 * 4096 * 14336 * 2 / (orin["storage_read_gbps"].get<double>() * 1e9);
    // The prefill loads the experts its tokens use; every load costs the same storage read.
    const double prefillLoad = std::stod(rows[0].at("load_ms"));
    const int misses = std::stoi(rows[0].at("cache_misses"));
    REQUIRE(misses >= 2);
    CHECK(prefillLoad == Approx(misses * load * 1e3).margin(misses * 1e-6));
    int laterMisses = 0;
    for (std::size_t i = 1; i < rows.size(); ++i)
    {
        laterMisses += std::stoi(rows[i].at("cache_misses"));
    }
    CHECK(laterMisses <= 4 - misses); // 4 experts in the layer: each is loaded at most once
}

TEST_CASE("scenario: same config and run give identical tokens.csv; another run differs",
          "[scenario]")
{
    ScenarioFixture f(2);
    f.config["cell"]["fading"] = true;
    f.config["cell"]["shadowing_sigma_db"] = 8;
    f.config["cell"]["radius_m"] = 500;
    f.config["cell"]["min_distance_m"] = 35;
    f.config["devices"]["count"] = 3;
    const std::string path = f.Write();
    const std::string first = RunScenario(ScenarioConfig::Load(path)).tokensCsv;
    CHECK(RunScenario(ScenarioConfig::Load(path)).tokensCsv == first);
    ScenarioConfig other = ScenarioConfig::Load(path);
    other.run = 2;
    CHECK(RunScenario(other).tokensCsv != first);
}

TEST_CASE("scenario: bad configs name the file and the field", "[scenario][config]")
{
    auto expectError = [&](const std::function<void(nlohmann::json&)>& edit,
                           const std::string& field) {
        ScenarioFixture g(1);
        edit(g.config);
        const std::string path = g.Write("bad.json");
        CHECK_THROWS_WITH(ScenarioConfig::Load(path),
                          Catch::Contains("bad.json") && Catch::Contains(field));
    };
    expectError([](nlohmann::json& c) { c["devices"]["count"] = 0; }, "\"devices.count\"");
    expectError([](nlohmann::json& c) { c["cell"]["bandwidth_mhz"] = -20; },
                "\"cell.bandwidth_mhz\"");
    expectError(
        [](nlohmann::json& c) {
            c["cell"]["radius_m"] = 30;
            c["cell"]["min_distance_m"] = 35;
        },
        "\"cell.radius_m\" must exceed");
    expectError([](nlohmann::json& c) { c["devices"]["profile"] = "pager"; },
                "\"devices.profile\" names no profile");
    expectError([](nlohmann::json& c) { c["cell"]["bandwith_mhz"] = 20; },
                "\"cell.bandwith_mhz\" is not a known key");
    expectError([](nlohmann::json& c) { c["cost_model"] = "gpt-5"; }, "\"cost_model\"");
    expectError([](nlohmann::json& c) { c["cell"]["duplex"] = "tdd"; }, "\"cell.duplex\"");
    expectError(
        [](nlohmann::json& c) {
            c["failures"] = {{{"device", 5}, {"at_s", 1.0}}};
        },
        "\"failures[0].device\"");
}
