// The run-time policies in the cell, as a user relies on them: config errors that name the file
// and the field, gating and selection checked token by token against a replay of the model
// alone, bandwidth allocation against a hand-solved min-max split, prefetch hints, their timing
// and accuracy, cache slot allocation, the comparison table and determinism. Expected numbers
// are computed here (closed-form link budgets, the profiles' numbers, the model run directly
// through LayerStepper), not taken from the code under test.

#include "gating.h"
#include "json-config.h"
#include "mixtral-model.h"
#include "moe-inference-app.h"
#include "policy-comparison.h"
#include "routing.h"
#include "run-scenario.h"
#include "scenario-fixture.h"
#include "tiny-model.h"
#include "tokenizer.h"

#include "ns3/callback.h"
#include "ns3/config.h"
#include "ns3/mobility-model.h"
#include "ns3/node-list.h"
#include "ns3/node.h"
#include "ns3/simulator.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace ns3;
using wdmoe::test::kProfiles;
using wdmoe::test::ParseCsv;
using wdmoe::test::ScenarioFixture;

namespace
{

// ------------------------------------------------------------------------------ the cell

constexpr double kExpertBytes = 3.0 * 4096 * 14336 * 2; // one Mixtral-8x7B expert in bf16
constexpr double kHiddenBits = 4096 * 16 + 8 * 64;      // one hidden state in bf16 + header

std::string
ReadWhole(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A text of upper-case letters and digits: it shares no 64-byte passage with the fixture's
/// text (lower-case letters only).
std::string
OtherText(int length, int stride)
{
    std::string text;
    for (int i = 0; i < length; ++i)
    {
        text += i % 11 == 10 ? char('0' + i % 10) : char('A' + (i * stride) % 26);
    }
    return text;
}

/// The scenario fixture with a model of `layers` layers, 12 scored tokens (a prefill of 8 and
/// 11 decode steps, all in the first context window of 24), and helpers for policies.
struct PolicyCell : ScenarioFixture
{
    int layers;

    explicit PolicyCell(int layerCount = 2)
        : ScenarioFixture(layerCount),
          layers(layerCount)
    {
        config["workload"]["scored_tokens"] = 12;
    }

    /// Gives the model a sensitivity.json with F_l = f for every layer, fitted (so it says) on
    /// model/calibration.txt, which holds `calibration`.
    void Calibrate(double f, const std::string& calibration = OtherText(300, 7))
    {
        Calibrate(std::vector<double>(layers, f), calibration);
    }

    /// The same with F_l = sensitivity[l].
    void Calibrate(const std::vector<double>& sensitivity,
                   const std::string& calibration = OtherText(300, 7))
    {
        wdmoe::test::WriteFile(dir.File("model/calibration.txt"), calibration);
        wdmoe::llm::SensitivityTable table;
        table.calibrationText = "calibration.txt";
        table.calibrationTokens = long(calibration.size()) - 1;
        table.window = 24;
        table.meanDeltaNll.clear();
        for (double f : sensitivity)
        {
            table.meanDeltaNll.push_back(0.1 * f);
        }
        table.meanSecondWeightSq.assign(sensitivity.size(), 0.1);
        table.sensitivity = sensitivity;
        table.Save(dir.File("model"));
    }

    /// Replaces the symlinked profiles folder by a real one holding copies of the shipped
    /// profiles and `extra` (a profile of one's own, named by its "name").
    void AddProfile(const nlohmann::json& extra)
    {
        const std::string profiles = dir.File("profiles");
        struct stat st;
        if (::lstat(profiles.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        {
            REQUIRE(::unlink(profiles.c_str()) == 0);
            REQUIRE(::mkdir(profiles.c_str(), 0755) == 0);
            for (const auto& entry : std::filesystem::directory_iterator(kProfiles))
            {
                if (entry.path().extension() == ".json")
                {
                    wdmoe::test::WriteFile(profiles + "/" + entry.path().filename().string(),
                                           ReadWhole(entry.path().string()));
                }
            }
        }
        wdmoe::test::WriteFile(profiles + "/" + extra["name"].get<std::string>() + ".json",
                               extra.dump(2));
    }

    ScenarioResult Run(const nlohmann::json& policy,
                       const std::function<void(Ptr<MoeInferenceApp>)>& hook = {},
                       const std::string& name = "scenario.json")
    {
        config["policy"] = policy;
        return RunScenario(ScenarioConfig::Load(Write(name)), hook);
    }
};

/// The Jetson AGX Orin profile with other storage and memory numbers.
nlohmann::json
OrinVariant(const std::string& name, double storageGbps, double memoryGb)
{
    nlohmann::json p = ReadJsonConfigFile(kProfiles + "/jetson-agx-orin.json");
    p["name"] = name;
    p["storage_read_gbps"] = storageGbps;
    p["memory_gb"] = memoryGb;
    p.erase("sources");
    return p;
}

/// One Mixtral expert for one token on the Jetson AGX Orin (memory bound), from the profile's
/// numbers.
double
OrinExpertSeconds()
{
    const nlohmann::json orin = ReadJsonConfigFile(kProfiles + "/jetson-agx-orin.json");
    return std::max(
        2.0 * 3 * 4096 * 14336 /
            (orin["compute_efficiency"].get<double>() * orin["peak_flops"].get<double>()),
        kExpertBytes / (orin["memory_efficiency"].get<double>() *
                        orin["memory_bandwidth_gbps"].get<double>() * 1e9));
}

/// Link budget of a device at 3D distance d3 (m) with 128.1 + 37.6 log10(d/km), no shadowing or
/// fading, -174 dBm/Hz, noise figures 7 dB (device) and 5 dB (BS), 43 dBm over the whole band
/// bandHz at constant PSD, 23 dBm uplink. Times of one hidden state on a share s of the band
/// (shared duplex: the same slice both ways).
struct HandDevice
{
    double d3;
    double bandHz;

    double PathGain() const { return std::pow(10.0, -(128.1 + 37.6 * std::log10(d3 / 1000)) / 10); }

    double Dl(double share) const
    {
        const double snr = std::pow(10.0, 4.3) * PathGain() /
                           (std::pow(10.0, -17.4) * std::pow(10.0, 0.7) * bandHz);
        return kHiddenBits / (share * bandHz * std::log2(1 + snr));
    }

    double DlRate(double hz) const { return kHiddenBits / Dl(hz / bandHz); }

    double Ul(double share) const
    {
        const double hz = share * bandHz;
        const double snr =
            std::pow(10.0, 2.3) * PathGain() / (std::pow(10.0, -17.4) * std::pow(10.0, 0.5) * hz);
        return kHiddenBits / (hz * std::log2(1 + snr));
    }

    /// One decode token's round trip with `experts` experts on the device, no loads.
    double RoundTrip(double share, int experts) const
    {
        return Dl(share) + experts * OrinExpertSeconds() + Ul(share);
    }
};

/// The fixture's single device: 200 m away on the ground, BS 25 m and device 1.5 m high.
HandDevice
FixtureDevice(double bandHz)
{
    return HandDevice{std::sqrt(200.0 * 200.0 + 23.5 * 23.5), bandHz};
}

/// What the application's trace sources said, token by token (in the order of tokens.csv).
struct Traces
{
    struct Event
    {
        Time at;
        uint32_t layer;
        uint32_t expert;
        uint32_t device;
    };

    struct Token
    {
        std::vector<Event> dispatch, back, miss, hint;
        Time latency;
    };

    std::vector<Token> tokens;
    Token current;

    void Connect(Ptr<MoeInferenceApp> app)
    {
        typedef Callback<void, uint32_t, uint32_t, uint32_t> ExpertCb;
        auto into = [this](std::vector<Event> Token::*list) {
            return ExpertCb([this, list](uint32_t layer, uint32_t expert, uint32_t device) {
                (current.*list).push_back(Event{Simulator::Now(), layer, expert, device});
            });
        };
        REQUIRE(app->TraceConnectWithoutContext("ExpertDispatch", into(&Token::dispatch)));
        REQUIRE(app->TraceConnectWithoutContext("ExpertReturn", into(&Token::back)));
        // Misses and hinted loads happen on the devices: their applications' trace sources.
        Config::ConnectWithoutContext(
            "/NodeList/*/ApplicationList/*/$ns3::ExpertDeviceApp/CacheMiss",
            into(&Token::miss));
        Config::ConnectWithoutContext(
            "/NodeList/*/ApplicationList/*/$ns3::ExpertDeviceApp/Prefetch",
            into(&Token::hint));
        REQUIRE(app->TraceConnectWithoutContext(
            "TokenLatency",
            Callback<void, uint32_t, Time>([this](uint32_t, Time latency) {
                current.latency = latency;
                tokens.push_back(current);
                current = Token();
            })));
    }

    std::function<void(Ptr<MoeInferenceApp>)> Hook()
    {
        return [this](Ptr<MoeInferenceApp> app) { Connect(app); };
    }
};

std::vector<Traces::Event>
AtLayer(const std::vector<Traces::Event>& events, uint32_t layer)
{
    std::vector<Traces::Event> out;
    for (const auto& e : events)
    {
        if (e.layer == layer)
        {
            out.push_back(e);
        }
    }
    return out;
}

// ------------------------------------------------------------------- the model on its own

/// Mixtral's top-k written out here: the k most probable (ties to the lower index), weights
/// p / (sum of the k) in float.
wdmoe::llm::RoutingDecision
MyTopK(const float* probs, int experts, int k)
{
    std::vector<int> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [probs](int a, int b) {
        return probs[a] > probs[b];
    });
    float sum = 0;
    for (int i = 0; i < k; ++i)
    {
        sum += probs[order[i]];
    }
    wdmoe::llm::RoutingDecision d;
    for (int i = 0; i < k; ++i)
    {
        d.experts.push_back(order[i]);
        d.weights.push_back(probs[order[i]] / sum);
    }
    return d;
}

/// decide(layer, probs, experts, decode) -> the experts that run with their weights.
using Rule = std::function<
    wdmoe::llm::RoutingDecision(int layer, const float* probs, int experts, bool decode)>;

/// The scenario's workload replayed through the model alone (no cell): a prefill of `prompt`
/// tokens, then `decodes` decode steps, each layer routed by `rule`.
struct Replay
{
    std::vector<std::vector<wdmoe::llm::RoutingDecision>> decode; ///< [step][layer]
    /// [step][layer]: the top-k of layer + 1's router applied to this layer's MoE input
    std::vector<std::vector<std::vector<int>>> predicted;
    std::vector<double> nll; ///< per pass, the prefill first
};

Replay
ReplayModel(const std::string& modelDir,
            const std::string& textPath,
            int prompt,
            int decodes,
            const Rule& rule)
{
    auto model = wdmoe::llm::MixtralModel::Load(modelDir);
    const auto& mc = model->Config();
    auto tokenizer = wdmoe::llm::Tokenizer::ForModel(modelDir, mc);
    const std::vector<int> tokens = tokenizer->Encode(ReadWhole(textPath));
    wdmoe::llm::KvCache cache = model->NewCache();
    Replay out;
    int fed = 0;
    for (int pass = 0; pass <= decodes; ++pass)
    {
        const int n = pass == 0 ? prompt : 1;
        const bool decode = pass > 0;
        wdmoe::llm::LayerStepper step(*model, cache, &tokens[fed], n);
        std::vector<wdmoe::llm::RoutingDecision> layerDecisions;
        std::vector<std::vector<int>> layerPredictions;
        while (!step.Done())
        {
            step.Attend();
            const int layer = step.Layer();
            std::vector<wdmoe::llm::RoutingDecision> decisions;
            for (int i = 0; i < n; ++i)
            {
                const wdmoe::llm::RoutingRequest r = step.Request(i);
                decisions.push_back(rule(layer, r.gateProbs, r.numExperts, decode));
            }
            if (decode)
            {
                layerDecisions.push_back(decisions[0]);
                std::vector<int> next;
                if (layer + 1 < mc.numHiddenLayers)
                {
                    std::vector<float> probs(mc.numLocalExperts);
                    step.PredictNextLayer(0, probs.data());
                    next = MyTopK(probs.data(), mc.numLocalExperts, mc.numExpertsPerTok).experts;
                }
                layerPredictions.push_back(next);
            }
            step.RunExperts(decisions);
        }
        std::vector<float> logits(std::size_t(n) * mc.vocabSize);
        step.Logits(logits.data());
        const float* last = &logits[std::size_t(n - 1) * mc.vocabSize];
        const double top = *std::max_element(last, last + mc.vocabSize);
        double sum = 0;
        for (int v = 0; v < mc.vocabSize; ++v)
        {
            sum += std::exp(double(last[v]) - top);
        }
        fed += n;
        out.nll.push_back(std::log(sum) + top - last[tokens[fed]]);
        if (decode)
        {
            out.decode.push_back(layerDecisions);
            out.predicted.push_back(layerPredictions);
        }
    }
    return out;
}

const Rule kTopK = [](int, const float* probs, int experts, bool) {
    return MyTopK(probs, experts, 2);
};

/// Reads a summary number that may be null.
double
Num(const nlohmann::ordered_json& v)
{
    REQUIRE(v.is_number());
    return v.get<double>();
}

/// One CSV record split into fields as RFC 4180 reads it: a field in double quotes may hold
/// commas, and "" inside it is one quote.
std::vector<std::string>
SplitCsvRecord(const std::string& line)
{
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i)
    {
        const char c = line[i];
        if (quoted)
        {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
            {
                fields.back() += '"';
                ++i;
            }
            else if (c == '"')
            {
                quoted = false;
            }
            else
            {
                fields.back() += c;
            }
        }
        else if (c == '"')
        {
            quoted = true;
        }
        else if (c == ',')
        {
            fields.emplace_back();
        }
        else
        {
            fields.back() += c;
        }
    }
    return fields;
}

std::string
ErrorOf(const std::function<void()>& f)
{
    try
    {
        f();
    }
    catch (const std::exception& e)
    {
        return e.what();
    }
    return "(no error)";
}

} // namespace

// ============================================================================ config errors

TEST_CASE("policies: unknown rule names and keys name the file and the field and list what is "
          "allowed",
          "[policies]")
{
    auto loadError = [](const nlohmann::json& policy) {
        PolicyCell f;
        f.config["policy"] = policy;
        const std::string path = f.Write("bad.json");
        return ErrorOf([&] { ScenarioConfig::Load(path); });
    };
    CHECK_THAT(loadError({{"gating", "magic"}}),
               Catch::Contains("bad.json: field \"policy.gating\" must be \"topk\" or "
                               "\"adaptive\", got \"magic\""));
    CHECK_THAT(loadError({{"selection", "best"}}),
               Catch::Contains("bad.json: field \"policy.selection\" must be \"all\", \"wlr\", "
                               "\"straggler\" or \"energy\", got \"best\""));
    CHECK_THAT(loadError({{"allocation", "fair"}}),
               Catch::Contains("bad.json: field \"policy.allocation\" must be \"equal\", "
                               "\"proportional\", \"minmax\" or \"joint\", got \"fair\""));
    CHECK_THAT(loadError({{"cache_allocation", "lfu"}}),
               Catch::Contains("bad.json: field \"policy.cache_allocation\" must be \"uniform\" "
                               "or \"dp\", got \"lfu\""));
    const std::string unknown = loadError({{"prefetching", true}});
    CHECK_THAT(unknown,
               Catch::Contains("bad.json: field \"policy.prefetching\" is not a known key"));
    for (const char* key : {"gating", "selection", "allocation", "cache_allocation", "prefetch"})
    {
        CHECK_THAT(unknown, Catch::Contains(key));
    }
    CHECK_THAT(loadError("topk"),
               Catch::Contains("field \"policy\" must be") && Catch::Contains("object"));
    CHECK_THAT(loadError({{"prefetch", "yes"}}),
               Catch::Contains("\"policy.prefetch\" must be true or false"));
    CHECK_THAT(loadError({{"joint_max_iterations", 0}}),
               Catch::Contains("\"policy.joint_max_iterations\" must be an integer in [1, "));
    // And a good policy loads.
    CHECK(loadError({{"selection", "wlr"}, {"allocation", "joint"}, {"prefetch", true}}) ==
          "(no error)");
}

TEST_CASE("policies: what the cell needs and the config lacks is an error naming the field",
          "[policies]")
{
    SECTION("adaptive gating without sensitivity.json")
    {
        PolicyCell f;
        f.config["policy"] = {{"gating", "adaptive"}};
        const std::string e =
            ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("nocal.json"))); });
        CHECK_THAT(e, Catch::Contains("nocal.json: field \"policy.gating\""));
        CHECK_THAT(e, Catch::Contains("sensitivity.json"));
    }
    SECTION("cache_allocation dp without a text to profile")
    {
        PolicyCell f; // no sensitivity.json, so no calibration text either
        f.config["policy"] = {{"cache_allocation", "dp"}};
        CHECK_THAT(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("dp.json"))); }),
                   Catch::Contains("dp.json: field \"policy.profile_text\" is needed"));
    }
    SECTION("a workload text that shares a passage with the calibration text")
    {
        PolicyCell f;
        const std::string text = ReadWhole(f.dir.File("text.txt"));
        // A calibration text holding 100 bytes from the middle of the scored text.
        f.Calibrate(1.0, OtherText(200, 3) + text.substr(150, 100) + OtherText(200, 5));
        f.config["policy"] = {{"gating", "adaptive"}};
        CHECK_THAT(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("same.json"))); }),
                   Catch::Contains("same.json: field \"workload.text\" shares passages"));
        // With a calibration text of its own the same config runs.
        f.Calibrate(1.0);
        CHECK(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("same.json"))); }) ==
              "(no error)");
    }
    SECTION("a profile text that shares a passage with the workload")
    {
        PolicyCell f;
        f.config["policy"] = {{"cache_allocation", "dp"}, {"profile_text", "text.txt"}};
        CHECK_THAT(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("prof.json"))); }),
                   Catch::Contains("prof.json: field \"policy.profile_text\" shares passages"));
    }
    SECTION("storage slots that cannot hold layers x experts")
    {
        PolicyCell f; // 2 layers x 4 experts = 8, one device
        f.config["devices"]["storage_slots"] = 7;
        const std::string e =
            ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("slots.json"))); });
        CHECK_THAT(e, Catch::Contains("slots.json: field \"devices.storage_slots\""));
        CHECK_THAT(e, Catch::Contains("2 layers x 4 experts"));
        f.config["devices"]["storage_slots"] = 8; // exactly enough
        CHECK(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("slots.json"))); }) ==
              "(no error)");
        f.config["devices"]["count"] = 2;
        f.config["devices"]["storage_slots"] = 3; // 2 x 3 < 8
        CHECK_THAT(ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write("slots.json"))); }),
                   Catch::Contains("\"devices.storage_slots\""));
    }
}

TEST_CASE("policies: a bad comparison file names the entry and the field", "[policies]")
{
    auto loadError = [](const nlohmann::json& policies, const nlohmann::json& baseline) {
        PolicyCell f;
        f.config["policies"] = policies;
        if (!baseline.is_null())
        {
            f.config["baseline"] = baseline;
        }
        const std::string path = f.Write("cmp.json");
        return ErrorOf([&] { PolicyComparison::Load(path); });
    };
    const nlohmann::json none;
    CHECK_THAT(loadError({{"name", "a"}}, none),
               Catch::Contains("cmp.json: field \"policies\" must be a non-empty list"));
    CHECK_THAT(loadError("a", none),
               Catch::Contains("field \"policies\" must be a non-empty list"));
    CHECK_THAT(loadError(nlohmann::json::array(), none),
               Catch::Contains("field \"policies\" must be a non-empty list"));
    CHECK_THAT(loadError({{{"name", "a"}}, {{"selection", "wlr"}}}, none),
               Catch::Contains("cmp.json: field \"policies[1]\" must be an object with a "
                               "\"name\""));
    CHECK_THAT(loadError({{{"name", "a"}}, "b"}, none),
               Catch::Contains("field \"policies[1]\" must be") && Catch::Contains("object"));
    CHECK_THAT(loadError({{{"name", "a"}}, {{"name", "b"}}, {{"name", "a"}}}, none),
               Catch::Contains("cmp.json: field \"policies[2].name\" repeats \"a\""));
    // Entries 0 and 1 are fine; entry 2 is checked before anything runs.
    CHECK_THAT(
        loadError({{{"name", "a"}}, {{"name", "b"}}, {{"name", "c"}, {"allocation", "fair"}}},
                  none),
        Catch::Contains("cmp.json: field \"policies[2].allocation\" must be \"equal\", "
                        "\"proportional\", \"minmax\" or \"joint\", got \"fair\""));
    CHECK_THAT(
        loadError({{{"name", "a"}}, {{"name", "b"}}, {{"name", "c"}, {"colour", "red"}}}, none),
        Catch::Contains("field \"policies[2].colour\" is not a known key"));
    CHECK_THAT(loadError({{{"name", "a"}}, {{"name", "b"}}}, "c"),
               Catch::Contains("cmp.json: field \"baseline\" names no entry of \"policies\": "
                               "\"c\""));
    CHECK_THAT(loadError({{{"name", "a"}}}, 3), Catch::Contains("field \"baseline\""));
    CHECK(loadError({{{"name", "a"}}, {{"name", "b"}}}, "b") == "(no error)");
}

TEST_CASE("policies: a comparison entry the model cannot serve fails at load, naming the entry",
          "[policies]")
{
    // The chapter: "every entry is checked before the first one runs (errors name
    // policies[i].field)". Adaptive gating on a model without sensitivity.json is such an
    // entry: it must not run the entries before it first, nor be reported as "policy.gating".
    PolicyCell f;
    f.config["policies"] = {{{"name", "top-2"}}, {{"name", "adaptive"}, {"gating", "adaptive"}}};
    const std::string path = f.Write("cmp.json");
    CHECK_THAT(ErrorOf([&] { PolicyComparison::Load(path); }),
               Catch::Contains("field \"policies[1].gating\""));
}

// =============================================================================== gating

TEST_CASE("policies: adaptive gating at its limits in the cell", "[policies]")
{
    PolicyCell f;
    f.Calibrate(1.0);
    f.config["devices"]["count"] = 2;
    const ScenarioResult topk = f.Run(nlohmann::json::object());
    const ScenarioResult zero = f.Run({{"gating", "adaptive"}, {"adaptive_threshold", 0}});
    CHECK(zero.tokensCsv == topk.tokensCsv); // F w2^2 < 0 never holds
    CHECK(Num(topk.summary["experts_per_token_layer"]) == 2.0);
    CHECK(Num(topk.summary["single_expert_rate"]) == 0.0);

    const ScenarioResult one = f.Run({{"gating", "adaptive"}, {"adaptive_threshold", 1e6}});
    CHECK(Num(one.summary["experts_per_token_layer"]) == 1.0);
    CHECK(Num(one.summary["single_expert_rate"]) == 1.0);
    CHECK(one.summary["policy"]["gating"] == "adaptive");
    const auto rows = ParseCsv(one.tokensCsv);
    REQUIRE(rows.size() == 12);
    REQUIRE(rows[0].at("phase") == "prefill");
    CHECK(std::stoi(rows[0].at("experts_run")) == 2 * 8 * 2); // top-2 x 8 tokens x 2 layers
    for (std::size_t i = 1; i < rows.size(); ++i)
    {
        INFO("token " << i);
        CHECK(rows[i].at("phase") == "decode");
        CHECK(rows[i].at("experts_run") == "2"); // one per layer
    }
    for (const auto& layer : one.summary["per_layer"])
    {
        CHECK(Num(layer["single_expert_rate"]) == 1.0);
        CHECK(Num(layer["experts_per_token"]) == 1.0);
    }
}

TEST_CASE("policies: adaptive gating decides each token-layer as F w2^2 < T on the model alone",
          "[policies]")
{
    PolicyCell f;
    const double sensitivity = 2.0;
    const double threshold = 0.08; // one expert when w2 < 0.2
    f.Calibrate(sensitivity);
    f.config["workload"]["scored_tokens"] = 16;
    const ScenarioResult r = f.Run({{"gating", "adaptive"}, {"adaptive_threshold", threshold}});
    const auto rows = ParseCsv(r.tokensCsv);
    REQUIRE(rows.size() == 16);

    // The rule written out here: top-2 renormalised, one expert with weight 1 when
    // F w2^2 < T, and only while decoding.
    const Replay replay = ReplayModel(f.dir.File("model"),
                                      f.dir.File("text.txt"),
                                      8,
                                      15,
                                      [&](int, const float* probs, int experts, bool decode) {
                                          wdmoe::llm::RoutingDecision d = MyTopK(probs, experts, 2);
                                          const double w2 = d.weights[1];
                                          if (decode && sensitivity * w2 * w2 < threshold)
                                          {
                                              d.experts.resize(1);
                                              d.weights.assign(1, 1.0f);
                                          }
                                          return d;
                                      });
    std::vector<int> single(f.layers, 0);
    int singles = 0;
    int doubles = 0;
    CHECK(std::stod(rows[0].at("nll")) == Approx(replay.nll[0]).epsilon(1e-5));
    for (std::size_t i = 1; i < rows.size(); ++i)
    {
        INFO("decode step " << i);
        int experts = 0;
        for (int l = 0; l < f.layers; ++l)
        {
            const auto& d = replay.decode[i - 1][l];
            experts += int(d.experts.size());
            single[l] += d.experts.size() == 1;
            singles += d.experts.size() == 1;
            doubles += d.experts.size() == 2;
        }
        CHECK(std::stoi(rows[i].at("experts_run")) == experts);
        CHECK(std::stod(rows[i].at("nll")) == Approx(replay.nll[i]).epsilon(1e-5));
    }
    REQUIRE(singles > 0); // the threshold splits the token-layers
    REQUIRE(doubles > 0);
    for (int l = 0; l < f.layers; ++l)
    {
        CHECK(Num(r.summary["per_layer"][l]["single_expert_rate"]) ==
              Approx(single[l] / 15.0).epsilon(1e-12));
    }
    CHECK(Num(r.summary["single_expert_rate"]) ==
          Approx(singles / double(singles + doubles)).epsilon(1e-12));
    CHECK(Num(r.summary["experts_per_token_layer"]) ==
          Approx((singles + 2.0 * doubles) / (singles + doubles)).epsilon(1e-12));
}

// ============================================================================ selection

TEST_CASE("policies: selection rules at their limits in the cell", "[policies]")
{
    PolicyCell f;
    f.config["devices"]["count"] = 2; // round-robin: experts 0, 2 on device 0; 1, 3 on device 1
    f.config["cell"]["fading"] = true;
    f.config["cell"]["shadowing_sigma_db"] = 8;
    const ScenarioResult topk = f.Run(nlohmann::json::object());
    CHECK(f.Run({{"selection", "wlr"}, {"wlr_theta", 0}}).tokensCsv == topk.tokensCsv);
    CHECK(f.Run({{"selection", "straggler"},
                 {"straggler_layer_weights", "uniform"},
                 {"straggler_weight_max", 0}})
              .tokensCsv == topk.tokensCsv);
    // A trade-off of 0 prices every drop out...
    CHECK(f.Run({{"selection", "straggler"},
                 {"straggler_layer_weights", "uniform"},
                 {"straggler_tradeoff", 0}})
              .tokensCsv == topk.tokensCsv);
    // ... while bounds that let everything through do drop second experts in this cell.
    const ScenarioResult loose = f.Run({{"selection", "straggler"},
                                        {"straggler_layer_weights", "uniform"},
                                        {"straggler_weight_max", 1},
                                        {"straggler_gain_min", 0},
                                        {"straggler_tradeoff", 1e6}});
    CHECK(Num(loose.summary["experts_per_token_layer"]) < 2.0);
    CHECK(Num(loose.summary["experts_per_token_layer"]) >= 1.0);

    // A huge theta keeps only the top-1 of every decode token-layer, with weight 1 (prefills
    // are not selected): the model alone, routed that way, gives the same experts and NLLs.
    Traces traces;
    const ScenarioResult one = f.Run({{"selection", "wlr"}, {"wlr_theta", 1e6}}, traces.Hook());
    CHECK(Num(one.summary["experts_per_token_layer"]) == 1.0);
    CHECK(Num(one.summary["selection_rounds_per_layer"]) == 1.0);
    const Replay replay = ReplayModel(f.dir.File("model"),
                                      f.dir.File("text.txt"),
                                      8,
                                      11,
                                      [](int, const float* probs, int experts, bool decode) {
                                          return MyTopK(probs, experts, decode ? 1 : 2);
                                      });
    const auto rows = ParseCsv(one.tokensCsv);
    REQUIRE(rows.size() == 12);
    REQUIRE(traces.tokens.size() == 12);
    CHECK(rows[0].at("experts_run") == "32");
    for (std::size_t i = 1; i < rows.size(); ++i)
    {
        INFO("decode step " << i);
        CHECK(rows[i].at("experts_run") == "2");
        const auto& dispatched = traces.tokens[i].dispatch;
        REQUIRE(dispatched.size() == 2);
        for (int l = 0; l < 2; ++l)
        {
            CHECK(dispatched[l].layer == uint32_t(l));
            CHECK(int(dispatched[l].expert) == replay.decode[i - 1][l].experts[0]);
            CHECK(dispatched[l].device == dispatched[l].expert % 2);
        }
        CHECK(std::stod(rows[i].at("nll")) == Approx(replay.nll[i]).epsilon(1e-5));
    }
}

// =========================================================================== allocation

TEST_CASE("policies: minmax gives the worse device the larger share and never loses to equal",
          "[policies]")
{
    PolicyCell f(1);
    f.config["devices"]["count"] = 2; // round-robin: experts 0, 2 on device 0; 1, 3 on device 1
    f.config["cell"]["min_distance_m"] = 35;
    f.config["cell"]["radius_m"] = 900; // fading and shadowing stay off: static, known links
    f.config["workload"]["scored_tokens"] = 16;
    f.config["run"] = 3; // devices some 200 m apart
    // The closed forms below are of static shares (work conservation would give the device
    // that finishes first's slice to the other).
    f.config["cell"]["work_conserving"] = false;
    std::vector<double> d3;
    auto hook = [&d3](Traces& traces) {
        return [&d3, &traces](Ptr<MoeInferenceApp> app) {
            traces.Connect(app);
            d3.clear();
            Ptr<MobilityModel> bs = app->GetNode()->GetObject<MobilityModel>();
            const uint32_t n = NodeList::GetNNodes();
            for (uint32_t k = n - 2; k < n; ++k) // the devices, in channel order
            {
                d3.push_back(NodeList::GetNode(k)->GetObject<MobilityModel>()->GetDistanceFrom(bs));
            }
        };
    };
    Traces equalTraces;
    const auto equal = ParseCsv(f.Run({{"allocation", "equal"}}, hook(equalTraces)).tokensCsv);
    Traces minmaxTraces;
    const auto minmax = ParseCsv(f.Run({{"allocation", "minmax"}}, hook(minmaxTraces)).tokensCsv);
    REQUIRE(d3.size() == 2);
    const HandDevice dev[2] = {{d3[0], 20e6}, {d3[1], 20e6}};
    INFO("devices at " << d3[0] << " m and " << d3[1] << " m");
    REQUIRE(std::abs(d3[0] - d3[1]) > 150); // one is clearly worse
    const int far = d3[0] > d3[1] ? 0 : 1;

    // The min-max split of two devices with one expert each, solved here: device 0's round trip
    // on share s equals device 1's on 1 - s.
    double lo = 1e-9;
    double hi = 1 - 1e-9;
    for (int k = 0; k < 200; ++k)
    {
        const double s = 0.5 * (lo + hi);
        (dev[0].RoundTrip(s, 1) > dev[1].RoundTrip(1 - s, 1) ? lo : hi) = s;
    }
    const double share0 = 0.5 * (lo + hi);
    const double shareOf[2] = {share0, 1 - share0};
    const double optimum = dev[0].RoundTrip(share0, 1);
    CHECK(shareOf[far] > 0.5); // the worse channel gets more band

    REQUIRE(equal.size() == 16);
    REQUIRE(minmax.size() == 16);
    REQUIRE(minmaxTraces.tokens.size() == 16);
    int both = 0;
    int faster = 0;
    for (std::size_t i = 1; i < minmax.size(); ++i)
    {
        INFO("decode step " << i);
        // One layer: latency = BS (attention + gate + LM head) + the layer's round trip.
        auto layerMs = [&](const std::map<std::string, std::string>& row) {
            return std::stod(row.at("latency_ms")) - std::stod(row.at("bs_compute_ms"));
        };
        const double eq = layerMs(equal[i]);
        const double mm = layerMs(minmax[i]);
        CHECK(mm <= eq + 1e-5); // the same tokens and routing: minmax never loses
        faster += mm < eq - 1e-3;
        std::set<uint32_t> used;
        for (const auto& e : minmaxTraces.tokens[i].dispatch)
        {
            used.insert(e.device);
        }
        if (used.size() == 2)
        {
            ++both;
            CHECK(eq * 1e-3 == Approx(std::max(dev[0].RoundTrip(0.5, 1), dev[1].RoundTrip(0.5, 1)))
                                   .epsilon(1e-9)
                                   .margin(5e-9));
            CHECK(mm * 1e-3 == Approx(optimum).epsilon(2e-4)); // minmax stops within 1e-4
            // The device that came back last carried its share of the band: its downlink time
            // tells which.
            const auto& back = minmaxTraces.tokens[i].back;
            const uint32_t last =
                std::max_element(back.begin(), back.end(), [](const auto& a, const auto& b) {
                    return a.at < b.at;
                })->device;
            const double dl = std::stod(minmax[i].at("downlink_ms")) * 1e-3;
            CHECK(dev[last].Dl(1.0) / dl == Approx(shareOf[last]).epsilon(2e-3));
        }
        else
        {
            // One device, the whole band, two experts: nothing to allocate.
            const uint32_t only = *used.begin();
            CHECK(mm * 1e-3 == Approx(dev[only].RoundTrip(1.0, 2)).epsilon(1e-9).margin(5e-9));
            CHECK(mm == Approx(eq).epsilon(1e-9));
        }
    }
    CHECK(both > 0);
    CHECK(faster == both);
}

TEST_CASE("policies: the straggler rule weighs each layer by its calibrated sensitivity",
          "[policies]")
{
    PolicyCell f; // two layers
    f.config["devices"]["count"] = 2;
    // Without sensitivity.json the default layer weights cannot be had: a clear error.
    CHECK_THROWS_WITH(f.Run({{"selection", "straggler"}}),
                      Catch::Contains("\"policy.straggler_layer_weights\"") &&
                          Catch::Contains("./wdmoe calibrate"));
    CHECK_THROWS_WITH(f.Run({{"selection", "straggler"}, {"straggler_layer_weights", "layer"}}),
                      Catch::Contains("\"policy.straggler_layer_weights\" must be"));
    // F = (1, 3): mean 2, so the layers' prices are scaled by 0.5 and 1.5.
    f.Calibrate({1.0, 3.0});
    const ScenarioResult r = f.Run({{"selection", "straggler"}});
    const nlohmann::ordered_json& scale = r.summary["policy"]["straggler_layer_scale"];
    REQUIRE(scale.size() == 2);
    CHECK(Num(scale[0]) == 0.5);
    CHECK(Num(scale[1]) == 1.5);
    CHECK_FALSE(f.Run({{"selection", "straggler"}, {"straggler_layer_weights", "uniform"}})
                    .summary["policy"]
                    .contains("straggler_layer_scale"));

    // The scale acts per layer: F = (0, 1e6) scales layer 0's price to 0 (any drop that saves
    // time goes) and layer 1's to 2 (with a tiny trade-off nothing there is worth dropping).
    f.Calibrate({0.0, 1e6});
    const ScenarioResult split = f.Run({{"selection", "straggler"},
                                        {"straggler_weight_max", 1},
                                        {"straggler_gain_min", 0},
                                        {"straggler_tradeoff", 1e-9}});
    CHECK(Num(split.summary["per_layer"][0]["experts_per_token"]) < 2.0);
    CHECK(Num(split.summary["per_layer"][1]["experts_per_token"]) == 2.0);
    CHECK(split.summary["policy"]["straggler_tradeoff"] == 1e-9);
    CHECK(split.summary["policy"]["straggler_layer_weights"] == "sensitivity");
}

TEST_CASE("policies: joint selection and allocation stops within its bound", "[policies]")
{
    PolicyCell f;
    f.config["devices"]["count"] = 3;
    f.config["cell"]["fading"] = true;
    f.config["cell"]["shadowing_sigma_db"] = 8;
    f.config["cell"]["min_distance_m"] = 35;
    f.config["cell"]["radius_m"] = 500;
    for (const char* selection : {"wlr", "straggler"})
    {
        for (int bound : {1, 2, 5})
        {
            INFO(selection << ", at most " << bound << " rounds");
            const ScenarioResult r = f.Run({{"selection", selection},
                                            {"allocation", "joint"},
                                            {"wlr_theta", 0.8},
                                            {"straggler_layer_weights", "uniform"},
                                            {"straggler_tradeoff", 1.0},
                                            {"joint_max_iterations", bound}});
            const double rounds = Num(r.summary["selection_rounds_per_layer"]);
            CHECK(rounds >= 1.0);
            CHECK(rounds <= bound);
            if (bound == 1)
            {
                CHECK(rounds == 1.0);
            }
            CHECK(r.summary["policy"]["allocation"] == "joint");
        }
    }
    // Without a selection rule there is nothing to alternate with.
    CHECK(Num(f.Run({{"allocation", "joint"}}).summary["selection_rounds_per_layer"]) == 0.0);
}

// ============================================================================== prefetch

TEST_CASE("policies: prefetch hints, their timing, their accuracy and the loads they save",
          "[policies]")
{
    PolicyCell f;
    // One device hosts all 8 experts but keeps 4 in memory (2 per layer); its storage loads
    // one expert in exactly 1 ms. Cold start.
    const double loadS = 1e-3;
    f.AddProfile(OrinVariant("orin-1ms-storage", kExpertBytes / loadS / 1e9, 1.6));
    f.config["devices"] = {{"count", 1},
                           {"profile", "orin-1ms-storage"},
                           {"memory_fraction", 1.0},
                           {"storage_slots", 8},
                           {"warm_cache", false}};
    f.config["workload"]["scored_tokens"] = 16;
    Traces on;
    const ScenarioResult r = f.Run({{"prefetch", true}}, on.Hook());
    Traces off;
    const ScenarioResult plain = f.Run(nlohmann::json::object(), off.Hook(), "plain.json");
    REQUIRE(Num(r.summary["cell"]["expert_memory_slots_per_device"]) == 4);
    REQUIRE(on.tokens.size() == 16);
    REQUIRE(off.tokens.size() == 16);

    // Hints: only for layer >= 1 (nothing predicts layer 0), only while decoding, to the
    // device that holds the expert, on the (whole) downlink's airtime one after the other: the
    // k-th of a step arrives k x 256 bits' airtime after the layer-0 dispatch.
    const HandDevice device = FixtureDevice(20e6);
    CHECK(on.tokens[0].hint.empty());
    long hints = 0;
    for (std::size_t i = 1; i < on.tokens.size(); ++i)
    {
        INFO("decode step " << i);
        const auto& t = on.tokens[i];
        const auto layer0 = AtLayer(t.dispatch, 0);
        const auto layer1 = AtLayer(t.dispatch, 1);
        REQUIRE(!layer0.empty());
        REQUIRE(!layer1.empty());
        int k = 0;
        for (const auto& h : t.hint)
        {
            ++hints;
            ++k;
            CHECK(h.layer == 1);
            CHECK(h.device == 0);
            CHECK(h.expert < 4);
            CHECK((h.at - layer0[0].at).GetSeconds() ==
                  Approx(k * 256 / device.DlRate(20e6)).epsilon(1e-6).margin(2e-9));
            // Its load (behind at most one other hint's) ends long before layer 1 is dispatched.
            CHECK(h.at + Seconds(2 * loadS) < layer1[0].at);
        }
    }
    CHECK(hints > 0);
    CHECK(hints == Num(r.summary["per_layer"][1]["prefetch_hints"]));
    CHECK(Num(r.summary["per_layer"][0]["prefetch_hints"]) == 0);

    // Accuracy: the share of the experts run at layer 1 that layer 1's router, applied to
    // layer 0's MoE input, had predicted; recomputed on the model alone.
    const Replay replay = ReplayModel(f.dir.File("model"), f.dir.File("text.txt"), 8, 15, kTopK);
    long predicted = 0;
    long run = 0;
    for (std::size_t s = 0; s < replay.decode.size(); ++s)
    {
        for (int e : replay.decode[s][1].experts)
        {
            const auto& p = replay.predicted[s][0];
            predicted += std::find(p.begin(), p.end(), e) != p.end();
            ++run;
        }
        // The cell ran the same experts at layer 1.
        std::multiset<int> cell;
        for (const auto& e : AtLayer(on.tokens[s + 1].dispatch, 1))
        {
            cell.insert(int(e.expert));
        }
        CHECK(cell == std::multiset<int>(replay.decode[s][1].experts.begin(),
                                         replay.decode[s][1].experts.end()));
    }
    REQUIRE(run == 30);
    INFO(predicted << " of " << run << " predicted");
    CHECK(Num(r.summary["prefetch_accuracy"]) == Approx(double(predicted) / run).epsilon(1e-12));
    CHECK(Num(r.summary["per_layer"][1]["prefetch_accuracy"]) ==
          Approx(double(predicted) / run).epsilon(1e-12));
    CHECK(r.summary["per_layer"][0]["prefetch_accuracy"].is_null());
    CHECK(plain.summary["prefetch_accuracy"].is_null());

    // Layer 1's round trip by hand: the hidden state's downlink, then the experts in dispatch
    // order, each computed when it is ready and the one before it is done; an expert in memory
    // is ready on arrival, the k-th one that missed after k storage loads from the arrival; then
    // the uplink. A hinted expert, its load long done, must be one of those in memory.
    const double dl = device.Dl(1.0);
    const double compute = OrinExpertSeconds();
    auto handRoundTrip = [&](const std::vector<Traces::Event>& dispatched,
                             const std::vector<Traces::Event>& missed) {
        double t = dl;
        int loads = 0;
        for (const auto& d : dispatched)
        {
            const bool miss = std::any_of(missed.begin(), missed.end(), [&](const auto& m) {
                return m.expert == d.expert;
            });
            const double ready = miss ? dl + ++loads * loadS : dl;
            t = std::max(t, ready) + compute;
        }
        return t + device.Ul(1.0);
    };
    const double noLoad = device.RoundTrip(1.0, 2);
    int savedByHint = 0;
    for (std::size_t i = 1; i < on.tokens.size(); ++i)
    {
        INFO("decode step " << i);
        for (const Traces* run : {&on, &off})
        {
            const auto& t = run->tokens[i];
            const auto layer1 = AtLayer(t.dispatch, 1);
            const auto back1 = AtLayer(t.back, 1);
            REQUIRE(layer1.size() == 2);
            REQUIRE(back1.size() == 2);
            CHECK((back1[0].at - layer1[0].at).GetSeconds() ==
                  Approx(handRoundTrip(layer1, AtLayer(t.miss, 1))).epsilon(1e-9).margin(3e-9));
        }
        const auto& t = on.tokens[i];
        for (const auto& h : t.hint)
        {
            for (const auto& m : AtLayer(t.miss, 1))
            {
                CHECK(m.expert != h.expert);
            }
        }
        // The top-1 expert of layer 1 was hinted: no load before the layer's first computation,
        // where the same token without prefetch waited for one.
        const uint32_t first = AtLayer(t.dispatch, 1)[0].expert;
        const bool hinted = std::any_of(t.hint.begin(), t.hint.end(), [&](const auto& h) {
            return h.expert == first;
        });
        const auto offMisses = AtLayer(off.tokens[i].miss, 1);
        const bool missedWithout = std::any_of(offMisses.begin(),
                                               offMisses.end(),
                                               [&](const auto& m) { return m.expert == first; });
        if (hinted)
        {
            const auto layer1 = AtLayer(t.dispatch, 1);
            CHECK((AtLayer(t.back, 1)[0].at - layer1[0].at).GetSeconds() ==
                  Approx(noLoad).epsilon(1e-9).margin(3e-9));
            savedByHint += missedWithout;
        }
    }
    CHECK(savedByHint > 0);

    // The hit rate over decode steps, from the traces: one demand per dispatched expert.
    for (const auto* traces : {&on, &off})
    {
        long demands = 0;
        long missed = 0;
        for (std::size_t i = 1; i < traces->tokens.size(); ++i)
        {
            demands += long(traces->tokens[i].dispatch.size());
            missed += long(traces->tokens[i].miss.size());
        }
        const ScenarioResult& result = traces == &on ? r : plain;
        CHECK(Num(result.summary["cache_hit_rate"]) ==
              Approx(1.0 - double(missed) / demands).epsilon(1e-12));
    }
}

// ============================================================================ cache slots

TEST_CASE("policies: cache slots, dp and uniform, fill the device's memory across layers",
          "[policies]")
{
    PolicyCell f(4); // 4 layers x 4 experts, all on the one device
    wdmoe::test::WriteFile(f.dir.File("profile.txt"), OtherText(200, 9));
    f.config["devices"]["storage_slots"] = 16;
    for (const double memorySlots : {6.0, 20.0})
    {
        // Memory for memorySlots + 1/2 experts of the 64 GB AGX Orin.
        const double fraction = (memorySlots + 0.5) * kExpertBytes / 64e9;
        f.config["devices"]["memory_fraction"] = fraction;
        const int slots = int(std::floor(fraction * 64e9 / kExpertBytes));
        REQUIRE(slots == int(memorySlots));
        const int expected = std::min(slots, 16);
        for (const char* rule : {"uniform", "dp"})
        {
            INFO(rule << ", " << slots << " memory slots");
            const ScenarioResult r = f.Run({{"cache_allocation", rule},
                                            {"profile_text", "profile.txt"},
                                            {"profile_tokens", 24}});
            CHECK(Num(r.summary["cell"]["expert_memory_slots_per_device"]) == slots);
            CHECK(Num(r.summary["cell"]["expert_storage_slots_per_device"]) == 16);
            CHECK(r.summary["policy"]["cache_allocation"] == rule);
            std::vector<int> perLayer;
            for (const auto& layer : r.summary["per_layer"])
            {
                perLayer.push_back(layer["memory_slots_device0"].get<int>());
            }
            REQUIRE(perLayer.size() == 4);
            CHECK(std::accumulate(perLayer.begin(), perLayer.end(), 0) == expected);
            for (int k : perLayer)
            {
                CHECK(k >= 0);
                CHECK(k <= 4); // a layer keeps at most the 4 experts it hosts
            }
            if (std::string(rule) == "uniform")
            {
                // Every layer hosts 4: the levels differ by at most one, lower layers first.
                const auto [lo, hi] = std::minmax_element(perLayer.begin(), perLayer.end());
                CHECK(*hi - *lo <= 1);
                CHECK(std::is_sorted(perLayer.rbegin(), perLayer.rend()));
            }
            else if (slots == 6)
            {
                // Top-2 gating, no prefetch: every layer's expected loads fall by the same
                // 0.5 per slot, so every split ties; the chapter's rule for ties gives the last
                // layers the fewest.
                CHECK(perLayer == std::vector<int>({4, 2, 0, 0}));
            }
        }
    }
}

// ============================================================================ comparison

TEST_CASE("policies: a comparison runs each entry on the same cell over R runs and compares it "
          "with the baseline, paired",
          "[policies]")
{
    PolicyCell f;
    f.config["devices"]["count"] = 2;
    f.config["devices"]["warm_cache"] = false;
    f.config["devices"]["memory_fraction"] = 0.02; // 3 slots of the 64 GB Orin: 2 + 1
    f.config["devices"]["storage_slots"] = 4;
    f.config["cell"]["fading"] = true;         // runs differ in their fading draws
    f.config["policy"] = {{"wlr_theta", 1e6}}; // what every entry starts from
    f.config["policies"] = {{{"name", "wlr, top-1"}, {"selection", "wlr"}},
                            {{"name", "top-2"}},
                            {{"name", "top-2 + prefetch"}, {"prefetch", true}},
                            {{"name", "wlr at 0"}, {"selection", "wlr"}, {"wlr_theta", 0}}};
    f.config["baseline"] = "top-2";
    f.config["statistics"] = {{"runs", 2}, {"bootstrap_resamples", 500}};
    const PolicyComparison c = PolicyComparison::Load(f.Write("cmp.json"));
    REQUIRE(c.entries.size() == 4);
    CHECK(c.baseline == 1);
    CHECK(c.runs == 2);
    CHECK(c.statistics.resamples == 500);
    CHECK(c.entries[0].policy.name == "wlr, top-1");
    CHECK(c.entries[0].policy.wlrTheta == 1e6); // from the base "policy"
    CHECK(c.entries[3].policy.wlrTheta == 0);   // the entry's own value wins
    std::vector<std::vector<ScenarioResult>> results(c.entries.size());
    for (std::size_t p = 0; p < c.entries.size(); ++p)
    {
        for (int r = 0; r < c.runs; ++r)
        {
            const ScenarioConfig run = c.RunOf(p, r);
            CHECK(run.devices == 2);
            CHECK(run.seed == c.entries[0].seed);
            CHECK(run.run == c.entries[0].run + uint32_t(r));
            results[p].push_back(RunScenario(run));
        }
    }
    CHECK(Num(results[0][0].summary["experts_per_token_layer"]) == 1.0);
    CHECK(results[3][1].tokensCsv == results[1][1].tokensCsv); // theta 0 keeps everything
    CHECK(results[1][0].tokensCsv != results[1][1].tokensCsv); // the runs differ

    const std::vector<PolicyRow> rows = ComparePolicies(results, c.baseline, c.statistics);
    REQUIRE(rows.size() == 4);
    const double t1 = 12.706204736174698; // Student t, 1 degree of freedom, 97.5 %
    auto latency = [&](std::size_t p, int r, const char* key) {
        return Num(results[p][r].summary["latency_ms"][key]);
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        INFO("policy " << i);
        CHECK(rows[i].policy == c.entries[i].policy.name);
        CHECK(rows[i].latency.runs == 2);
        const double a = latency(i, 0, "mean");
        const double b = latency(i, 1, "mean");
        CHECK(rows[i].latency.latencyMeanMs.mean == Approx((a + b) / 2));
        CHECK(rows[i].latency.latencyMeanMs.high - rows[i].latency.latencyMeanMs.low ==
              Approx(t1 * std::abs(a - b)));
        CHECK(rows[i].latency.latencyP95Ms.mean ==
              Approx((latency(i, 0, "p95") + latency(i, 1, "p95")) / 2));
        const double change0 = 100 * (a / latency(1, 0, "mean") - 1);
        const double change1 = 100 * (b / latency(1, 1, "mean") - 1);
        CHECK(rows[i].vsBaseline.latencyChangePct.mean ==
              Approx((change0 + change1) / 2).margin(1e-12));
        const double nll = (Num(results[i][0].summary["nll_per_token"]) +
                            Num(results[i][1].summary["nll_per_token"])) /
                           2;
        CHECK(rows[i].perplexity == Approx(std::exp(nll)));
        const double baseNll = (Num(results[1][0].summary["nll_per_token"]) +
                                Num(results[1][1].summary["nll_per_token"])) /
                               2;
        CHECK(rows[i].vsBaseline.nllChange.mean == Approx(nll - baseNll).margin(1e-12));
        CHECK(rows[i].vsBaseline.perplexityChangePct.mean ==
              Approx(100 * (std::exp(nll - baseNll) - 1)).margin(1e-9));
        CHECK(rows[i].vsBaseline.nllChange.low <= rows[i].vsBaseline.nllChange.mean);
        CHECK(rows[i].vsBaseline.nllChange.high >= rows[i].vsBaseline.nllChange.mean);
    }
    // The baseline against itself, and a policy that routes exactly like it: zero, no width.
    for (std::size_t i : {std::size_t(1), std::size_t(3)})
    {
        CHECK(rows[i].vsBaseline.nllChange.low == 0);
        CHECK(rows[i].vsBaseline.nllChange.high == 0);
        CHECK(rows[i].vsBaseline.klChange.high == 0);
        CHECK(rows[i].klDivergence == 0);
    }
    CHECK(rows[1].vsBaseline.latencyChangePct.mean == 0);
    CHECK(rows[1].LatencyVerdict(true) == "baseline");
    CHECK(rows[0].klDivergence > 0); // one expert instead of two
    CHECK(rows[0].vsBaseline.klChange.low > 0);
    CHECK(rows[0].vsBaseline.latencyChangePct.mean < 0);
    CHECK(rows[0].prefetchAccuracy.is_null());
    CHECK(rows[1].prefetchAccuracy.is_null());
    const double accuracy = (Num(results[2][0].summary["prefetch_accuracy"]) +
                             Num(results[2][1].summary["prefetch_accuracy"])) /
                            2;
    CHECK(Num(rows[2].prefetchAccuracy) == Approx(accuracy));

    // policies.json: the statistics, then one object per policy with the documented keys.
    const nlohmann::ordered_json json = PolicyTableJson(rows, c.baseline, c.statistics);
    CHECK(json["baseline"] == "top-2");
    CHECK(json["statistics"]["runs"] == 2);
    CHECK(json["statistics"]["bootstrap_resamples"] == 500);
    const nlohmann::ordered_json& table = json["policies"];
    const std::vector<std::string> keys = {"policy",
                                           "runs",
                                           "tokens",
                                           "latency_mean_ms",
                                           "latency_p95_ms",
                                           "latency_change_pct",
                                           "latency_verdict",
                                           "experts_per_token_layer",
                                           "cache_hit_rate",
                                           "prefetch_accuracy",
                                           "perplexity",
                                           "perplexity_change_pct",
                                           "nll_change",
                                           "kl_divergence",
                                           "kl_change",
                                           "top1_agreement_with_topk",
                                           "selection_rounds_per_layer"};
    REQUIRE(table.size() == 4);
    for (std::size_t i = 0; i < table.size(); ++i)
    {
        std::vector<std::string> got;
        for (const auto& [key, value] : table[i].items())
        {
            got.push_back(key);
        }
        CHECK(got == keys);
        CHECK(table[i]["policy"] == rows[i].policy);
        CHECK(table[i]["prefetch_accuracy"].is_null() == (i != 2));
        CHECK(table[i]["perplexity_change_pct"]["ci"].size() == 2);
    }

    // policies.csv: a header and one row per policy, an interval as three cells.
    const std::string csv = PolicyTableCsv(rows, c.baseline);
    std::istringstream lines(csv);
    std::vector<std::string> line;
    for (std::string l; std::getline(lines, l);)
    {
        line.push_back(l);
    }
    REQUIRE(line.size() == 5);
    const std::vector<std::string> header = SplitCsvRecord(line[0]);
    REQUIRE(header.size() == 29);
    CHECK(header[3] == "latency_mean_ms");
    CHECK(header[4] == "latency_mean_ms_low");
    CHECK(header[5] == "latency_mean_ms_high");
    for (std::size_t i = 1; i < line.size(); ++i)
    {
        INFO(line[i]);
        const std::vector<std::string> cells = SplitCsvRecord(line[i]);
        REQUIRE(cells.size() == 29);
        CHECK(cells[0] == rows[i - 1].policy); // one of the names holds a comma
        CHECK(std::stod(cells[3]) == Approx(rows[i - 1].latency.latencyMeanMs.mean).epsilon(1e-8));
        CHECK(std::stod(cells[4]) == Approx(rows[i - 1].latency.latencyMeanMs.low).epsilon(1e-8));
        CHECK(cells[15].empty() == (i != 3)); // prefetch_accuracy
    }
    const std::string text = PolicyTableText(rows, c.baseline);
    for (const auto& row : rows)
    {
        CHECK_THAT(text, Catch::Contains(row.policy));
    }
    CHECK(PolicyFolderName("wlr, top-1") == "wlr-top-1");
    CHECK(PolicyFolderName("best: adaptive + straggler + joint + cache dp + prefetch") ==
          "best-adaptive-straggler-joint-cache-dp-prefetch");
}

TEST_CASE("policies: policy names with quotes and commas survive policies.csv", "[policies]")
{
    // RFC 4180: a field holding a comma or a quote is quoted, its quotes doubled, so csv readers
    // and spreadsheets get the name back.
    PolicyRow quote;
    quote.policy = "top-2 \"fast\"";
    PolicyRow comma;
    comma.policy = "wlr, minmax";
    const std::string csv = PolicyTableCsv({quote, comma}, 0);
    CHECK_THAT(csv, Catch::Contains("\n\"top-2 \"\"fast\"\"\","));
    std::istringstream lines(csv);
    std::string line;
    std::getline(lines, line); // header
    std::getline(lines, line);
    CHECK(SplitCsvRecord(line).at(0) == quote.policy);
    CHECK(SplitCsvRecord(line).size() == 29);
    std::getline(lines, line);
    CHECK(SplitCsvRecord(line).at(0) == comma.policy);
    CHECK(SplitCsvRecord(line).size() == 29);
}

// =========================================================================== determinism

TEST_CASE("policies: the same policy config twice gives byte-identical results", "[policies]")
{
    PolicyCell f;
    f.Calibrate(1.0);
    f.config["devices"] = {{"count", 3},
                           {"warm_cache", false},
                           {"memory_fraction", 0.02},
                           {"storage_slots", 4}};
    f.config["cell"]["fading"] = true;
    f.config["cell"]["shadowing_sigma_db"] = 8;
    f.config["cell"]["min_distance_m"] = 35;
    f.config["cell"]["radius_m"] = 500;
    const nlohmann::json policy = {{"gating", "adaptive"},
                                   {"adaptive_threshold", 0.05},
                                   {"selection", "straggler"},
                                   {"straggler_tradeoff", 1.0},
                                   {"allocation", "joint"},
                                   {"minmax_floor", 0.3},
                                   {"cache_allocation", "dp"},
                                   {"profile_tokens", 32},
                                   {"prefetch", true}};
    const ScenarioResult a = f.Run(policy);
    const ScenarioResult b = f.Run(policy);
    CHECK(a.tokensCsv == b.tokensCsv);
    // "timing" measures the machine (wall time, sim_speed): every other field is the run's.
    nlohmann::ordered_json sa = a.summary, sb = b.summary;
    CHECK(sa.contains("timing"));
    sa.erase("timing");
    sb.erase("timing");
    CHECK(sa.dump() == sb.dump());
    // ... and the run is what makes it: another RngRun gives other latencies.
    f.config["run"] = 3; // devices some 200 m apart
    // The closed forms below are of static shares (work conservation would give the device
    // that finishes first's slice to the other).
    f.config["cell"]["work_conserving"] = false;
    CHECK(f.Run(policy).tokensCsv != a.tokensCsv);
}
