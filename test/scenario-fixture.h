// The scenario tests' fixture: a folder with a tiny byte-level model, a text, the shipped
// profiles and a config; and a tokens.csv parser.
#ifndef WDMOE_TEST_SCENARIO_FIXTURE_H
#define WDMOE_TEST_SCENARIO_FIXTURE_H

#include "tiny-model.h"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace wdmoe
{
namespace test
{

inline const std::string kProfiles = std::string(WDMOE_SOURCE_DIR) + "/configs/profiles";

/// A folder with a one-layer byte-level model, a text, the shipped profiles and a config.
struct ScenarioFixture
{
    wdmoe::test::TempDir dir;
    nlohmann::json config;

    explicit ScenarioFixture(int layers = 1)
    {
        wdmoe::test::TinyModel tiny(21, layers, 256);
        tiny.context = 24;
        wdmoe::test::TempDir& d = dir;
        ::mkdir(d.File("model").c_str(), 0755);
        wdmoe::test::WriteFile(d.File("model/config.json"), tiny.Config().dump());
        wdmoe::test::WriteSafetensors(d.File("model/model.safetensors"),
                                      tiny.Classic(wdmoe::llm::DType::F32));
        std::string text;
        for (int i = 0; i < 400; ++i)
        {
            text += char('a' + (i * 7) % 26);
        }
        wdmoe::test::WriteFile(d.File("text.txt"), text);
        REQUIRE(::symlink(kProfiles.c_str(), d.File("profiles").c_str()) == 0);
        config = {{"model", {{"path", "model"}}},
                  {"workload", {{"text", "text.txt"}, {"prompt_tokens", 8}, {"scored_tokens", 6}}},
                  {"cost_model", {{"preset", "mixtral-8x7b"}, {"layers", "routed"}}},
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
        wdmoe::test::WriteFile(dir.File(name), config.dump(2));
        return dir.File(name);
    }
};

/// Rows of tokens.csv as maps from column name to text.
inline std::vector<std::map<std::string, std::string>>
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

} // namespace test
} // namespace wdmoe

#endif
