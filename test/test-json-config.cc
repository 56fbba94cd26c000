// Config reading and result writing that every program shares.

#include "json-config.h"
#include "result-files.h"
#include "safetensors-writer.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace ns3;
using wdmoe::test::TempDir;
using wdmoe::test::WriteFile;

namespace
{

std::string
Slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool
Exists(const std::string& path)
{
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

} // namespace

TEST_CASE("config: errors name the file and the dotted field", "[config]")
{
    TempDir dir;
    const std::string file = dir.File("scenario.json");
    WriteFile(file, R"({"cell": {"bandwidth_mhz": -5, "radius_m": "far", "devices": 2.5,
                        "typo": 1, "fading": {"on": 3}}, "name": 7})");
    const nlohmann::json j = ReadJsonConfigFile(file);
    JsonConfigReader root(file, j);
    const JsonConfigReader cell = root.Object("cell");
    CHECK_THROWS_WITH(cell.Number("bandwidth_mhz", 20, 0.001, 1e4),
                      Catch::StartsWith(file + ": field \"cell.bandwidth_mhz\"") &&
                          Catch::Contains("[0.001, 10000]") && Catch::Contains("-5"));
    CHECK_THROWS_WITH(cell.Number("radius_m", 500, 1, 1e5), Catch::Contains("\"cell.radius_m\""));
    CHECK_THROWS_WITH(cell.Integer("devices", 8, 1, 1000),
                      Catch::Contains("\"cell.devices\" must be an integer"));
    CHECK_THROWS_WITH(cell.AllowOnly({"bandwidth_mhz", "radius_m", "devices", "fading"}),
                      Catch::Contains("\"cell.typo\" is not a known key"));
    CHECK_THROWS_WITH(cell.Object("fading").Bool("on", false),
                      Catch::Contains("\"cell.fading.on\" must be true or false"));
    CHECK_THROWS_WITH(root.String("name"), Catch::Contains("\"name\" must be a string"));
    CHECK_THROWS_WITH(root.String("missing"), Catch::Contains("\"missing\" is required"));
    CHECK_THROWS_WITH(root.Object("name"), Catch::Contains("\"name\" must be a JSON object"));
    // Absent fields take their defaults; present valid ones are read.
    CHECK(cell.Number("absent", 20, 0, 100) == 20);
    CHECK(root.Object("absent").Integer("x", 3, 0, 5) == 3);
    CHECK(root.PathRelativeToFile("models/m") == dir.Path() + "/models/m");
    CHECK(root.PathRelativeToFile("/abs/m") == "/abs/m");
}

TEST_CASE("config: unreadable or invalid files name the file", "[config]")
{
    TempDir dir;
    CHECK_THROWS_WITH(ReadJsonConfigFile(dir.File("none.json")),
                      Catch::Contains("none.json: cannot open"));
    WriteFile(dir.File("bad.json"), "{\"a\": [1, 2,}");
    CHECK_THROWS_WITH(ReadJsonConfigFile(dir.File("bad.json")),
                      Catch::Contains("bad.json: not valid JSON"));
    WriteFile(dir.File("list.json"), "[1, 2]");
    const nlohmann::json j = ReadJsonConfigFile(dir.File("list.json"));
    CHECK_THROWS_WITH(JsonConfigReader(dir.File("list.json"), j),
                      Catch::Contains("the top level must be a JSON object"));
}

TEST_CASE("result files: written whole or not at all", "[results]")
{
    TempDir dir;
    const std::string out = dir.File("a/b/summary.json");
    CreateResultDirectory(dir.File("a/b"));
    WriteFileAtomically(out, "first");
    WriteFileAtomically(out, "second, longer");
    CHECK(Slurp(out) == "second, longer");
    CHECK_FALSE(Exists(out + ".tmp"));
    // Runs without --outDir write under results/<config name>.
    CHECK(DefaultResultDirectory("configs/paper/wdmoe-fig3.json") == "results/wdmoe-fig3");
    CHECK(DefaultResultDirectory("default.json") == "results/default");
    CHECK(DefaultResultDirectory("configs/a.json.bak") == "results/a.json.bak");
    CHECK(DefaultResultDirectory("sweeps/plain") == "results/plain");
    // A folder that does not exist: an error naming the file, and nothing left behind.
    const std::string lost = dir.File("nowhere/summary.json");
    CHECK_THROWS_WITH(WriteFileAtomically(lost, "x"), Catch::Contains("nowhere/summary.json"));
    CHECK_FALSE(Exists(lost));
    CHECK_FALSE(Exists(lost + ".tmp"));
}
