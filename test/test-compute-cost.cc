// Compute profiles (configs/profiles/*.json), the roofline, and the cost model that prices
// experts, hidden states and the base station's attention + gate.
#include "compute-profile.h"
#include "cost-model-json.h"
#include "cost-model.h"
#include "json-config.h"
#include "profile-reader.h"
#include "safetensors-writer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

using namespace ns3;
using wdmoe::test::TempDir;
using wdmoe::test::WriteFile;

namespace
{

const std::string kProfilesDir = std::string(WDMOE_SOURCE_DIR) + "/configs/profiles";

nlohmann::json
ReadJson(const std::string& path)
{
    std::ifstream in(path);
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

ComputeProfile
HandProfile()
{
    ComputeProfile p;
    p.name = "hand";
    p.peakFlops = 1e12;        // 1 TFLOP/s
    p.memoryBandwidth = 100e9; // 100 GB/s
    p.memoryBytes = 8e9;
    p.storageReadBandwidth = 2e9;
    p.computeEfficiency = 0.5; // 0.5 TFLOP/s achieved
    p.memoryEfficiency = 0.8;  // 80 GB/s achieved
    return p;
}

/// A valid profile document; tests break one field at a time.
nlohmann::json
ValidProfileJson()
{
    return {{"name", "test-device"},
            {"description", "for tests"},
            {"peak_flops", 1e12},
            {"memory_bandwidth_gbps", 100},
            {"memory_gb", 8},
            {"storage_read_gbps", 2},
            {"compute_efficiency", 0.5},
            {"memory_efficiency", 0.8},
            {"sources", {{"peak_flops", "a datasheet"}}}};
}

} // namespace

TEST_CASE("roofline: picks the compute or the memory bound", "[cost]")
{
    const ComputeProfile p = HandProfile();
    // Compute bound: 1e12 FLOPs / 0.5e12 = 2 s; 8e9 bytes / 80e9 = 0.1 s.
    CHECK(p.RooflineSeconds(1e12, 8e9) == Approx(2.0).epsilon(1e-12));
    CHECK(p.IsComputeBound(1e12, 8e9));
    // Memory bound: 1e9 FLOPs / 0.5e12 = 2 ms; 40e9 bytes / 80e9 = 0.5 s.
    CHECK(p.RooflineSeconds(1e9, 40e9) == Approx(0.5).epsilon(1e-12));
    CHECK_FALSE(p.IsComputeBound(1e9, 40e9));
    // Storage: 3e9 bytes at 2 GB/s.
    CHECK(p.StorageLoadSeconds(3e9) == Approx(1.5).epsilon(1e-12));
}

TEST_CASE("cost model: a Mixtral-8x7B expert is 352,321,536 bytes and FLOPs per token", "[cost]")
{
    const CostModel m = CostModel::Mixtral8x7B();
    CHECK(m.name == "mixtral-8x7b");
    CHECK(m.ExpertBytes() == 352321536.0);
    CHECK(m.ExpertFlopsPerToken() == 352321536.0);
    CHECK(m.dModel == 4096);
    CHECK(m.dFf == 14336);
    CHECK(m.layers == 32);
    CHECK(m.experts == 8);
    CHECK(m.topK == 2);
    CHECK(m.heads == 32);
    CHECK(m.kvHeads == 8);
    CHECK(m.headDim == 128);
    CHECK(m.vocab == 32000);
    CHECK(CostModel::FromPreset("mixtral-8x7b").ExpertBytes() == m.ExpertBytes());
    CHECK_THROWS_WITH(CostModel::FromPreset("gpt-5"),
                      Catch::Contains("\"gpt-5\"") && Catch::Contains("mixtral-8x7b"));
}

TEST_CASE("cost model: Mixtral expert on the Jetson AGX Orin profile by hand", "[cost]")
{
    const std::string path = kProfilesDir + "/jetson-agx-orin.json";
    const nlohmann::json j = ReadJson(path); // read independently of LoadComputeProfile
    const double peak = j.at("peak_flops").get<double>();
    const double bw = j.at("memory_bandwidth_gbps").get<double>() * 1e9;
    const double effF = j.at("compute_efficiency").get<double>();
    const double effM = j.at("memory_efficiency").get<double>();
    const double bytes = 3.0 * 4096 * 14336 * 2;
    const double flops = 2.0 * 3 * 4096 * 14336;
    const double expected = std::max(flops / (effF * peak), bytes / (effM * bw));

    const ComputeProfile orin = LoadComputeProfile(path);
    const CostModel m = CostModel::Mixtral8x7B();
    CHECK(m.ExpertSeconds(orin, 1) == Approx(expected).epsilon(1e-12));
    // Batch 1 is memory bound here: 352 MB at 0.8 * 204.8 GB/s is about 2.15 ms.
    CHECK(m.ExpertSeconds(orin, 1) == Approx(352321536.0 / (0.8 * 204.8e9)).epsilon(1e-12));
    CHECK(orin.StorageLoadSeconds(m.ExpertBytes()) ==
          Approx(bytes / (j.at("storage_read_gbps").get<double>() * 1e9)).epsilon(1e-12));
    CHECK(m.ExpertSlots(orin) ==
          static_cast<long long>(j.at("memory_gb").get<double>() * 1e9 / bytes));
}

TEST_CASE("cost model: a batch reads the weights once and multiplies the FLOPs", "[cost]")
{
    const CostModel m = CostModel::Mixtral8x7B();
    ComputeProfile p = HandProfile();
    // Make compute and memory both visible: times for 1 and 8 tokens, bound by bound.
    const double bytesTime = m.ExpertBytes() / (p.memoryEfficiency * p.memoryBandwidth);
    const double flopsTime1 = m.ExpertFlopsPerToken() / (p.computeEfficiency * p.peakFlops);
    CHECK(m.ExpertSeconds(p, 1) == Approx(std::max(bytesTime, flopsTime1)).epsilon(1e-12));
    CHECK(m.ExpertSeconds(p, 8) == Approx(std::max(bytesTime, 8 * flopsTime1)).epsilon(1e-12));
    // On this profile 8 tokens are compute bound: exactly 8x the FLOP time of one token.
    REQUIRE(8 * flopsTime1 > bytesTime);
    CHECK(m.ExpertSeconds(p, 8) == Approx(8 * flopsTime1).epsilon(1e-12));
    // With infinite compute, 8 tokens cost what 1 does (the same bytes).
    p.peakFlops = 1e30;
    CHECK(m.ExpertSeconds(p, 8) == Approx(m.ExpertSeconds(p, 1)).epsilon(1e-12));
    CHECK_THROWS_AS(m.ExpertSeconds(p, 0), std::invalid_argument);
}

TEST_CASE("cost model: hidden-state payload bits", "[cost]")
{
    const CostModel m = CostModel::Mixtral8x7B();
    CHECK(m.headerBytes == CostModel::kDefaultHeaderBytes);
    CHECK(m.HiddenStateBits(1) == 4096.0 * 16 + 8 * 64);
    CHECK(m.HiddenStateBits(5) == 5 * 4096.0 * 16 + 8 * 64);
}

TEST_CASE("cost model: attention + gate FLOPs and bytes at the base station", "[cost]")
{
    const CostModel m = CostModel::Mixtral8x7B();
    // Decode: 1 new token after 99 in the cache.
    const double proj = 2.0 * 1 * 4096 * (2 * 32 * 128 + 2 * 8 * 128);
    const double attn = 4.0 * 1 * 100 * 32 * 128;
    const double gate = 2.0 * 1 * 4096 * 8;
    CHECK(m.AttentionGateFlops(1, 99) == proj + attn + gate);
    const double weights = (4096.0 * (2 * 32 * 128 + 2 * 8 * 128) + 4096.0 * 8) * 2;
    const double kv = 100.0 * 2 * 8 * 128 * 2;
    CHECK(m.AttentionGateBytes(1, 99) == weights + kv);
    const ComputeProfile bs = LoadComputeProfile({kProfilesDir}, "edge-server-gpu");
    CHECK(m.BsLayerSeconds(bs, 1, 99) ==
          Approx(bs.RooflineSeconds(proj + attn + gate, weights + kv)).epsilon(1e-12));
    CHECK(m.LmHeadSeconds(bs, 1) ==
          Approx(bs.RooflineSeconds(2.0 * 4096 * 32000, 4096.0 * 32000 * 2)).epsilon(1e-12));
    CHECK_THROWS_AS(m.AttentionGateFlops(1, -1), std::invalid_argument);
}

TEST_CASE("cost model: inline dimensions from a config", "[cost][config]")
{
    TempDir dir;
    const std::string file = dir.File("scenario.json");
    WriteFile(file, R"({"cost_model": {"name": "small", "d_model": 512, "d_ff": 1024},
                        "bad_key": {"d_model": 512, "d_ff": 1024, "dff": 3},
                        "no_dff": {"d_model": 512},
                        "bad_topk": {"d_model": 512, "d_ff": 1024, "experts": 4, "top_k": 5},
                        "bad_heads": {"d_model": 512, "d_ff": 1024, "heads": 6, "kv_heads": 4}})");
    const nlohmann::json j = ReadJsonConfigFile(file);
    const JsonConfigReader root(file, j);
    const CostModel m = ReadCostModel(root.Object("cost_model"));
    CHECK(m.name == "small");
    CHECK(m.ExpertBytes() == 3.0 * 512 * 1024 * 2);
    CHECK(m.layers == 32);
    CHECK(m.experts == 8);
    CHECK(m.topK == 2);
    CHECK(m.headDim == 512 / 32);
    CHECK(CostModelJson(m).at("d_model") == 512);
    CHECK_THROWS_WITH(ReadCostModel(root.Object("bad_key")),
                      Catch::StartsWith(file) && Catch::Contains("\"bad_key.dff\"") &&
                          Catch::Contains("not a known key"));
    CHECK_THROWS_WITH(ReadCostModel(root.Object("no_dff")),
                      Catch::Contains("\"no_dff.d_ff\" is required"));
    CHECK_THROWS_WITH(ReadCostModel(root.Object("bad_topk")),
                      Catch::Contains("\"bad_topk.top_k\""));
    CHECK_THROWS_WITH(ReadCostModel(root.Object("bad_heads")),
                      Catch::Contains("\"bad_heads.heads\""));
    CHECK_THROWS_AS(CostModel::FromDimensions("x", 0, 1, 1, 1, 1, 1, 1, 1, 1),
                    std::invalid_argument);
}

TEST_CASE("profiles: every shipped profile loads and cites a source for each number", "[cost]")
{
    const std::vector<std::string> names = ComputeProfileNames(kProfilesDir);
    for (const char* expected :
         {"edge-server-gpu", "jetson-agx-orin", "jetson-orin-nano", "smartphone-soc"})
    {
        CHECK(std::find(names.begin(), names.end(), expected) != names.end());
    }
    for (const auto& name : names)
    {
        INFO("profile " << name);
        const std::string path = kProfilesDir + "/" + name + ".json";
        const ComputeProfile p = LoadComputeProfile({kProfilesDir}, name);
        CHECK(p.name == name);
        CHECK_FALSE(p.description.empty());
        const nlohmann::json j = ReadJson(path);
        CHECK(p.memoryBandwidth == Approx(j.at("memory_bandwidth_gbps").get<double>() * 1e9));
        CHECK(p.memoryBytes == Approx(j.at("memory_gb").get<double>() * 1e9));
        CHECK(p.storageReadBandwidth == Approx(j.at("storage_read_gbps").get<double>() * 1e9));
        REQUIRE(j.contains("sources"));
        for (const auto& field : ComputeProfileNumericFields())
        {
            INFO("field " << field);
            REQUIRE(j.contains(field));
            REQUIRE(j.at("sources").contains(field));
            CHECK(j.at("sources").at(field).get<std::string>().size() > 20);
        }
    }
    // Values as cited (see the profiles' sources).
    const ComputeProfile orin = LoadComputeProfile({kProfilesDir}, "jetson-agx-orin");
    CHECK(orin.memoryBandwidth == Approx(204.8e9));
    CHECK(orin.memoryBytes == Approx(64e9));
    const ComputeProfile nano = LoadComputeProfile({kProfilesDir}, "jetson-orin-nano");
    CHECK(nano.memoryBandwidth == Approx(68e9));
    CHECK(nano.memoryBytes == Approx(8e9));
}

TEST_CASE("profiles: bad files name the file and the field", "[cost][config]")
{
    TempDir dir;
    auto write = [&](const std::string& name, const nlohmann::json& j) {
        const std::string path = dir.File(name + ".json");
        WriteFile(path, j.dump(2));
        return path;
    };
    // The valid one loads, with GB/s and GB converted.
    const ComputeProfile ok = LoadComputeProfile(write("test-device", ValidProfileJson()));
    CHECK(ok.memoryBandwidth == 100e9);
    CHECK(ok.memoryBytes == 8e9);
    CHECK(ok.storageReadBandwidth == 2e9);

    nlohmann::json missing = ValidProfileJson();
    missing.erase("memory_bandwidth_gbps");
    const std::string missingPath = write("missing", missing);
    CHECK_THROWS_WITH(LoadComputeProfile(missingPath),
                      Catch::StartsWith(missingPath) &&
                          Catch::Contains("\"memory_bandwidth_gbps\" is required"));

    nlohmann::json negative = ValidProfileJson();
    negative["storage_read_gbps"] = -3;
    const std::string negativePath = write("negative", negative);
    CHECK_THROWS_WITH(LoadComputeProfile(negativePath),
                      Catch::StartsWith(negativePath) && Catch::Contains("\"storage_read_gbps\"") &&
                          Catch::Contains("-3"));

    nlohmann::json zero = ValidProfileJson();
    zero["peak_flops"] = 0;
    const std::string zeroPath = write("zero", zero);
    CHECK_THROWS_WITH(LoadComputeProfile(zeroPath),
                      Catch::StartsWith(zeroPath) && Catch::Contains("\"peak_flops\" must be > 0"));

    nlohmann::json efficiency = ValidProfileJson();
    efficiency["memory_efficiency"] = 1.5;
    const std::string efficiencyPath = write("efficiency", efficiency);
    CHECK_THROWS_WITH(LoadComputeProfile(efficiencyPath),
                      Catch::Contains("\"memory_efficiency\"") && Catch::Contains("[0, 1]"));

    nlohmann::json unknown = ValidProfileJson();
    unknown["memory_bandwith_gbps"] = 100;
    const std::string unknownPath = write("unknown", unknown);
    CHECK_THROWS_WITH(LoadComputeProfile(unknownPath),
                      Catch::StartsWith(unknownPath) &&
                          Catch::Contains("\"memory_bandwith_gbps\" is not a known key"));

    nlohmann::json badSource = ValidProfileJson();
    badSource["sources"]["peak_flop"] = "typo";
    const std::string badSourcePath = write("bad-source", badSource);
    CHECK_THROWS_WITH(LoadComputeProfile(badSourcePath),
                      Catch::Contains("\"sources.peak_flop\" is not a known key"));

    // By name: an unknown name lists what there is; a file whose name disagrees is named.
    CHECK_THROWS_WITH(LoadComputeProfile({kProfilesDir}, "pocket-tpu"),
                      Catch::Contains("\"pocket-tpu\"") && Catch::Contains("jetson-agx-orin") &&
                          Catch::Contains("smartphone-soc") && Catch::Contains(kProfilesDir));
    nlohmann::json renamed = ValidProfileJson();
    renamed["name"] = "other";
    const std::string renamedPath = write("renamed", renamed);
    CHECK_THROWS_WITH(LoadComputeProfile({dir.Path()}, "renamed"),
                      Catch::StartsWith(renamedPath) && Catch::Contains("\"name\""));
    CHECK(LoadComputeProfile({dir.Path()}, "test-device").name == "test-device");
}
