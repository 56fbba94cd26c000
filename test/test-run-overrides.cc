// wdmoe-run's command-line overrides (--devices, --bandwidthMHz): the same checked path as
// --set, named in errors, echoed in config_echo, and a results folder of their own.
#include "error-message.h"
#include "json-config.h"
#include "run-overrides.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include <catch2/catch.hpp>

using namespace ns3;
using wdmoe::test::ErrorOf;
using wdmoe::test::ScenarioFixture;

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
