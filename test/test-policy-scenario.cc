// The policies inside the cell: config errors, gating and selection limits that must reduce to
// the plain top-k run or to one expert, prefetch hints and their accuracy, and the comparison
// table of several policies.

#include "gating.h"
#include "moe-inference-app.h"
#include "policy-comparison.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include "ns3/callback.h"

#include <catch2/catch.hpp>
#include <cmath>

using namespace ns3;
using wdmoe::test::ParseCsv;
using wdmoe::test::ScenarioFixture;

namespace
{

/// A two-layer fixture whose model has calibrated sensitivities (F = 1 per layer) and a
/// calibration text that shares nothing with the scored text.
struct PolicyFixture : ScenarioFixture
{
    PolicyFixture()
        : ScenarioFixture(2)
    {
        wdmoe::test::WriteFile(dir.File("model/calibration.txt"),
                               std::string(300, 'z') + "0123456789");
        wdmoe::llm::SensitivityTable table;
        table.calibrationText = "calibration.txt";
        table.calibrationTokens = 310;
        table.window = 24;
        table.meanDeltaNll = {0.1, 0.1};
        table.meanSecondWeightSq = {0.1, 0.1};
        table.sensitivity = {1.0, 1.0};
        table.Save(dir.File("model"));
        config["workload"]["scored_tokens"] = 20;
        config["devices"]["count"] = 2;
    }

    ScenarioResult Run(const nlohmann::json& policy)
    {
        config["policy"] = policy;
        return RunScenario(ScenarioConfig::Load(Write()));
    }
};

void
ExpectConfigError(const nlohmann::json& policy, const std::string& field)
{
    PolicyFixture f;
    f.config["policy"] = policy;
    const std::string path = f.Write("bad.json");
    CHECK_THROWS_WITH(RunScenario(ScenarioConfig::Load(path)),
                      Catch::Contains("bad.json") && Catch::Contains(field));
}

} // namespace

TEST_CASE("policy scenario: bad policy fields name the file and the field", "[policies]")
{
    ExpectConfigError({{"gating", "magic"}}, "\"policy.gating\" must be \"topk\" or \"adaptive\"");
    ExpectConfigError({{"selection", "best"}},
                      "\"policy.selection\" must be \"all\", \"wlr\", \"straggler\" or \"energy\"");
    ExpectConfigError({{"allocation", "fair"}}, "\"policy.allocation\"");
    ExpectConfigError({{"cache_allocation", "lfu"}}, "\"policy.cache_allocation\"");
    ExpectConfigError({{"prefech", true}}, "\"policy.prefech\" is not a known key");
    ExpectConfigError({{"minmax_floor", 2}}, "\"policy.minmax_floor\"");
    {
        // Adaptive gating without calibrated sensitivities.
        ScenarioFixture g(1);
        g.config["policy"] = {{"gating", "adaptive"}};
        CHECK_THROWS_WITH(RunScenario(ScenarioConfig::Load(g.Write("nocal.json"))),
                          Catch::Contains("nocal.json") && Catch::Contains("\"policy.gating\"") &&
                              Catch::Contains("sensitivity.json"));
    }
    {
        // Scoring the calibration text itself.
        PolicyFixture g;
        g.config["workload"]["text"] = "model/calibration.txt";
        g.config["policy"] = {{"gating", "adaptive"}};
        CHECK_THROWS_WITH(RunScenario(ScenarioConfig::Load(g.Write("same.json"))),
                          Catch::Contains("\"workload.text\" shares passages"));
    }
    {
        // The DP allocation needs a text to profile the routing on.
        ScenarioFixture g(1);
        g.config["policy"] = {{"cache_allocation", "dp"}};
        CHECK_THROWS_WITH(RunScenario(ScenarioConfig::Load(g.Write("dp.json"))),
                          Catch::Contains("\"policy.profile_text\" is needed"));
    }
}

TEST_CASE("policy scenario: adaptive gating's limits are one expert and plain top-k", "[policies]")
{
    PolicyFixture f;
    const ScenarioResult topk = f.Run(nlohmann::json::object());
    const ScenarioResult zero = f.Run({{"gating", "adaptive"}, {"adaptive_threshold", 0}});
    CHECK(zero.tokensCsv == topk.tokensCsv); // F w2^2 < 0 never holds
    const ScenarioResult all = f.Run({{"gating", "adaptive"}, {"adaptive_threshold", 1e6}});
    CHECK(all.summary["experts_per_token_layer"].get<double>() == 1.0);
    CHECK(all.summary["single_expert_rate"].get<double>() == 1.0);
    CHECK(topk.summary["experts_per_token_layer"].get<double>() == 2.0);
    // Prefill keeps top-2: 8 prompt tokens x 2 layers x 2 experts.
    const auto rows = ParseCsv(all.tokensCsv);
    REQUIRE(rows[0].at("phase") == "prefill");
    CHECK(rows[0].at("experts_run") == "32");
    const ScenarioResult prefill =
        f.Run({{"gating", "adaptive"}, {"adaptive_threshold", 1e6}, {"adaptive_prefill", true}});
    CHECK(ParseCsv(prefill.tokensCsv)[0].at("experts_run") == "16");
}

TEST_CASE("policy scenario: selection rules at their limits", "[policies]")
{
    PolicyFixture f;
    const ScenarioResult topk = f.Run(nlohmann::json::object());
    // theta 0 keeps everything; a straggler weight bound of 0 drops nothing.
    CHECK(f.Run({{"selection", "wlr"}, {"wlr_theta", 0}}).tokensCsv == topk.tokensCsv);
    CHECK(f.Run({{"selection", "straggler"},
                 {"straggler_layer_weights", "uniform"},
                 {"straggler_weight_max", 0}})
              .tokensCsv == topk.tokensCsv);
    // A huge theta keeps only the top-1.
    const ScenarioResult one = f.Run({{"selection", "wlr"}, {"wlr_theta", 1e6}});
    CHECK(one.summary["experts_per_token_layer"].get<double>() == 1.0);
    CHECK(one.summary["selection_rounds_per_layer"].get<double>() == 1.0);
    // joint alternates at least once and at most its bound.
    const ScenarioResult joint =
        f.Run({{"selection", "wlr"}, {"allocation", "joint"}, {"joint_max_iterations", 3}});
    const double rounds = joint.summary["selection_rounds_per_layer"].get<double>();
    CHECK(rounds >= 1.0);
    CHECK(rounds <= 3.0);
    // The same policy twice: byte-identical.
    const nlohmann::json straggler = {{"selection", "straggler"},
                                      {"straggler_layer_weights", "uniform"},
                                      {"allocation", "minmax"}};
    CHECK(f.Run(straggler).tokensCsv == f.Run(straggler).tokensCsv);
}

TEST_CASE("policy scenario: prefetch hints go to layer >= 1 and their accuracy is counted",
          "[policies]")
{
    PolicyFixture f;
    f.config["devices"]["warm_cache"] = false;
    f.config["devices"]["memory_fraction"] = 0.1; // 18 slots on an AGX Orin: all 8 fit
    std::vector<uint32_t> hintLayers;
    f.config["policy"] = {{"prefetch", true}};
    const ScenarioResult r =
        RunScenario(ScenarioConfig::Load(f.Write()), [&](Ptr<MoeInferenceApp> app) {
            app->TraceConnectWithoutContext("PrefetchHint",
                                            MakeCallback(+[](std::vector<uint32_t>* layers,
                                                             uint32_t layer,
                                                             uint32_t,
                                                             uint32_t) {
                                                layers->push_back(layer);
                                            }).Bind(&hintLayers));
        });
    for (uint32_t layer : hintLayers)
    {
        CHECK(layer == 1);
    }
    const auto& perLayer = r.summary["per_layer"];
    CHECK(perLayer[0]["prefetch_accuracy"].is_null()); // nothing predicts the first layer
    const double accuracy = perLayer[1]["prefetch_accuracy"].get<double>();
    CHECK(accuracy >= 0.0);
    CHECK(accuracy <= 1.0);
    CHECK(r.summary["prefetch_accuracy"].get<double>() == Approx(accuracy));
    // Hints are sent only for experts not in memory; the cold cache needs some.
    CHECK(perLayer[1]["prefetch_hints"].get<long long>() >= long(hintLayers.size()));
}

TEST_CASE("policy scenario: a comparison runs each entry and measures changes against the "
          "baseline",
          "[policies]")
{
    PolicyFixture f;
    f.config["policies"] = {{{"name", "wlr"}, {"selection", "wlr"}, {"wlr_theta", 1e6}},
                            {{"name", "vanilla"}}};
    f.config["baseline"] = "vanilla";
    f.config["statistics"] = {{"runs", 1}};
    const PolicyComparison c = PolicyComparison::Load(f.Write("cmp.json"));
    REQUIRE(c.entries.size() == 2);
    CHECK(c.baseline == 1);
    std::vector<std::vector<ScenarioResult>> results;
    for (std::size_t p = 0; p < c.entries.size(); ++p)
    {
        results.push_back({RunScenario(c.RunOf(p, 0))});
    }
    const std::vector<PolicyRow> rows = ComparePolicies(results, c.baseline, c.statistics);
    CHECK(rows[1].vsBaseline.latencyChangePct.mean == 0.0);
    CHECK(rows[1].vsBaseline.perplexityChangePct.mean == 0.0);
    const double base = results[1][0].summary["latency_ms"]["mean"].get<double>();
    const double wlr = results[0][0].summary["latency_ms"]["mean"].get<double>();
    CHECK(rows[0].vsBaseline.latencyChangePct.mean == Approx(100.0 * (wlr / base - 1.0)));
    // One run: no latency interval, and the verdict says why.
    CHECK(std::isnan(rows[0].vsBaseline.latencyChangePct.low));
    CHECK(rows[0].LatencyVerdict(false) == "unknown (1 run)");
    CHECK(rows[0].expertsPerTokenLayer == 1.0);
    const nlohmann::ordered_json table = PolicyTableJson(rows, c.baseline, c.statistics);
    CHECK(table["policies"][0]["prefetch_accuracy"].is_null());
    CHECK(table["policies"][0]["latency_change_pct"]["ci"][0].is_null());
    const std::string csv = PolicyTableCsv(rows, c.baseline);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
    CHECK_THAT(csv, Catch::Contains("\nvanilla,"));
}

TEST_CASE("policy scenario: bad comparisons name the entry", "[policies]")
{
    auto errorOf = [](const nlohmann::json& policies, const std::string& baseline) {
        PolicyFixture f;
        f.config["policies"] = policies;
        if (!baseline.empty())
        {
            f.config["baseline"] = baseline;
        }
        try
        {
            PolicyComparison::Load(f.Write("cmp.json"));
        }
        catch (const std::exception& e)
        {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK_THAT(errorOf(nlohmann::json::array(), ""), Catch::Contains("\"policies\" must be"));
    CHECK_THAT(errorOf({{{"selection", "wlr"}}}, ""), Catch::Contains("policies[0]"));
    CHECK_THAT(errorOf({{{"name", "a"}}, {{"name", "a"}}}, ""), Catch::Contains("repeats \"a\""));
    CHECK_THAT(errorOf({{{"name", "a"}}, {{"name", "b"}}, {{"name", "c"}, {"selection", "x"}}}, ""),
               Catch::Contains("\"policies[2].selection\""));
    CHECK_THAT(errorOf({{{"name", "a"}}}, "b"), Catch::Contains("\"baseline\" names no entry"));
}
