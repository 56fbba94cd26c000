// Adaptive gating (AdapMoE): the per-token rule, the policy, sensitivity.json, the next-layer
// prediction, the sensitivity calibration and the routing profile, on hand-made numbers and
// tiny generated checkpoints.

#include "calibration.h"
#include "evaluation.h"
#include "gating.h"
#include "mixtral-model.h"
#include "safetensors-writer.h"
#include "safetensors.h"
#include "tiny-model.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

using namespace wdmoe::llm;
using wdmoe::test::TempDir;
using wdmoe::test::TinyModel;
using wdmoe::test::WriteFile;
using wdmoe::test::WriteModel;

namespace
{

const std::string kModelDir = std::string(WDMOE_SOURCE_DIR) + "/models/kjv-moe";

RoutingDecision
Adaptive(const std::vector<float>& probs, double sensitivity, double threshold)
{
    RoutingDecision d;
    AdaptiveDecision(probs.data(), int(probs.size()), sensitivity, threshold, d);
    return d;
}

RoutingRequest
MakeRequest(const std::vector<float>& probs, int layer, int batchSize, int topK = 2)
{
    RoutingRequest r;
    r.layer = layer;
    r.batchSize = batchSize;
    r.topK = topK;
    r.numExperts = int(probs.size());
    r.gateProbs = probs.data();
    return r;
}

/// Every expert of `layer` gets expert 0's weights: which experts run there no longer matters
/// for the output, only the sum of their weights.
void
MakeExpertsIdentical(TinyModel& tiny, int layer)
{
    const std::string p = "model.layers." + std::to_string(layer) + ".block_sparse_moe.experts.";
    for (int e = 1; e < tiny.experts; ++e)
    {
        for (const char* w : {".w1.weight", ".w2.weight", ".w3.weight"})
        {
            tiny.weights[p + std::to_string(e) + w] = tiny.weights[p + "0" + w];
        }
    }
}

void
ScaleDownProjections(TinyModel& tiny, int layer, float factor)
{
    const std::string p = "model.layers." + std::to_string(layer) + ".block_sparse_moe.experts.";
    for (int e = 0; e < tiny.experts; ++e)
    {
        for (float& x : tiny.weights[p + std::to_string(e) + ".w2.weight"])
        {
            x *= factor;
        }
    }
}

std::string
ReadText(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("gating: adaptive decision runs one expert when F times w2 squared is below T with ties "
          "to the lower index",
          "[gating]")
{
    SECTION("a clear one-expert case")
    {
        // w2 = 0.04 / 0.94 = 0.0426, F * w2^2 = 0.0018 < 0.005.
        const RoutingDecision d = Adaptive({0.02f, 0.9f, 0.04f, 0.04f}, 1.0, 0.005);
        CHECK(d.experts == std::vector<int>{1});
        CHECK(d.weights == std::vector<float>{1.0f});
    }
    SECTION("a clear two-expert case keeps the renormalised top-2")
    {
        // w2 = 0.4 / 0.9 = 0.444, F * w2^2 = 0.198 > 0.005.
        const RoutingDecision d = Adaptive({0.1f, 0.5f, 0.0f, 0.4f}, 1.0, 0.005);
        CHECK(d.experts == std::vector<int>{1, 3});
        REQUIRE(d.weights.size() == 2);
        CHECK(d.weights[0] == Approx(0.5 / 0.9).epsilon(1e-6));
        CHECK(d.weights[1] == Approx(0.4 / 0.9).epsilon(1e-6));
        CHECK(d.weights[0] + d.weights[1] == Approx(1.0));
        // The same token in a layer of low sensitivity: 0.01 * 0.198 = 0.00198 < 0.005.
        CHECK(Adaptive({0.1f, 0.5f, 0.0f, 0.4f}, 0.01, 0.005).experts == std::vector<int>{1});
    }
    SECTION("a product exactly at the threshold keeps both experts")
    {
        // w1 = 0.375 / 0.5 = 0.75 and w2 = 0.125 / 0.5 = 0.25 exactly; F * w2^2 = 4 * 0.0625 =
        // 0.25, all exact in binary floating point.
        const std::vector<float> probs = {0.125f, 0.0625f, 0.375f, 0.0f};
        const RoutingDecision at = Adaptive(probs, 4.0, 0.25);
        CHECK(at.experts == std::vector<int>{2, 0});
        CHECK(at.weights == std::vector<float>{0.75f, 0.25f});
        // Just above the product, or a sensitivity just below 4: one expert.
        CHECK(Adaptive(probs, 4.0, std::nextafter(0.25, 1.0)).experts == std::vector<int>{2});
        CHECK(Adaptive(probs, std::nextafter(4.0, 0.0), 0.25).experts == std::vector<int>{2});
    }
    SECTION("ties in probability go to the lower expert index")
    {
        // All equal: experts 0 and 1, w2 = 0.5; 0.01 * 0.25 = 0.0025 < 0.005 keeps expert 0.
        const std::vector<float> flat = {0.25f, 0.25f, 0.25f, 0.25f};
        CHECK(Adaptive(flat, 1.0, 0.005).experts == std::vector<int>{0, 1});
        CHECK(Adaptive(flat, 0.01, 0.005).experts == std::vector<int>{0});
        // A tie for first place between experts 2 and 3: 2 runs when one does.
        const std::vector<float> tie = {0.1f, 0.0f, 0.45f, 0.45f};
        CHECK(Adaptive(tie, 1.0, 0.005).experts == std::vector<int>{2, 3});
        CHECK(Adaptive(tie, 0.01, 0.005).experts == std::vector<int>{2});
        // A tie for second place between experts 0 and 3: 0 is the second.
        CHECK(Adaptive({0.2f, 0.6f, 0.0f, 0.2f}, 1.0, 0.005).experts == std::vector<int>{1, 0});
    }
    SECTION("threshold 0 never drops, not even a second weight of 0")
    {
        CHECK(Adaptive({1.0f, 0.0f, 0.0f, 0.0f}, 0.0, 0.0).experts == std::vector<int>{0, 1});
        CHECK(Adaptive({0.0f, 0.999f, 0.001f, 0.0f}, 0.0, 0.0).experts.size() == 2);
        CHECK(Adaptive({0.0f, 0.999f, 0.001f, 0.0f}, 1e-9, 0.0).experts.size() == 2);
    }
    SECTION("fewer than two experts is an error")
    {
        RoutingDecision d;
        const float one = 1.0f;
        CHECK_THROWS_AS(AdaptiveDecision(&one, 1, 1.0, 0.005, d), std::invalid_argument);
    }
}

TEST_CASE("gating: the AdaptiveGating policy drops while decoding and keeps top-k in prefill "
          "unless asked",
          "[gating]")
{
    // w2 = 1/3, w2^2 = 1/9: layer 0 (F = 100) keeps both, layer 1 (F = 0.001) drops.
    const std::vector<float> probs = {0.6f, 0.3f, 0.1f, 0.0f};
    AdaptiveGating gating({100.0, 0.001}, 0.005);
    RoutingDecision d;
    gating.Decide(MakeRequest(probs, 0, 1), d);
    CHECK(d.experts == std::vector<int>{0, 1});
    gating.Decide(MakeRequest(probs, 1, 1), d);
    CHECK(d.experts == std::vector<int>{0});
    CHECK(d.weights == std::vector<float>{1.0f});

    // A prefill (batchSize > 1) keeps the model's top-k ...
    gating.Decide(MakeRequest(probs, 1, 5), d);
    CHECK(d.experts == std::vector<int>{0, 1});
    // ... unless the policy applies to prefill too.
    AdaptiveGating everywhere({100.0, 0.001}, 0.005, true);
    everywhere.Decide(MakeRequest(probs, 1, 5), d);
    CHECK(d.experts == std::vector<int>{0});

    // A model whose k is not 2 keeps its own top-k.
    gating.Decide(MakeRequest(probs, 1, 1, 3), d);
    CHECK(d.experts == std::vector<int>{0, 1, 2});

    CHECK_THROWS_AS(gating.Decide(MakeRequest(probs, 2, 1), d), std::out_of_range);
    CHECK_THROWS_AS(AdaptiveGating({1.0, -0.5}, 0.005), std::invalid_argument);
    CHECK_THROWS_AS(AdaptiveGating({1.0, std::nan("")}, 0.005), std::invalid_argument);
    CHECK_THROWS_AS(AdaptiveGating({1.0}, -1.0), std::invalid_argument);
}

TEST_CASE("gating: sensitivity.json round trip and errors naming the file and the field",
          "[gating]")
{
    TempDir dir;
    const std::string file = dir.File("sensitivity.json");
    SensitivityTable table;
    table.calibrationText = "calibration.txt";
    table.calibrationTokens = 12345;
    table.window = 128;
    table.meanDeltaNll = {0.0123456789012345, -1e-9};
    table.meanSecondWeightSq = {0.0712, 0.1};
    table.sensitivity = {0.1733999999999, 0.0};
    table.Save(dir.Path());

    const SensitivityTable back = SensitivityTable::Load(dir.Path(), 2);
    CHECK(back.calibrationText == table.calibrationText);
    CHECK(back.calibrationTokens == table.calibrationTokens);
    CHECK(back.window == table.window);
    CHECK(back.meanDeltaNll == table.meanDeltaNll); // bit-exact: JSON keeps every digit
    CHECK(back.meanSecondWeightSq == table.meanSecondWeightSq);
    CHECK(back.sensitivity == table.sensitivity);
    const nlohmann::json written = nlohmann::json::parse(ReadText(file));
    CHECK(written["layers"][1]["layer"] == 1);
    CHECK(written["model"] == std::filesystem::path(dir.Path()).filename().string());
    std::ifstream tmp(file + ".tmp");
    CHECK_FALSE(tmp.good()); // the temporary file was renamed into place

    SECTION("missing file")
    {
        TempDir empty;
        CHECK_THROWS_AS(SensitivityTable::Load(empty.Path(), 2), LoadError);
        CHECK_THROWS_WITH(SensitivityTable::Load(empty.Path(), 2),
                          Catch::Contains(empty.File("sensitivity.json")) &&
                              Catch::Contains("cannot open"));
    }
    SECTION("a layer count other than the model's")
    {
        CHECK_THROWS_AS(SensitivityTable::Load(dir.Path(), 3), LoadError);
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 3),
                          Catch::Contains(file) && Catch::Contains("\"layers\"") &&
                              Catch::Contains("3 layers"));
    }
    SECTION("a negative or non-finite sensitivity")
    {
        nlohmann::json j = written;
        j["layers"][1]["sensitivity"] = -0.5;
        WriteFile(file, j.dump());
        CHECK_THROWS_AS(SensitivityTable::Load(dir.Path(), 2), LoadError);
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 2),
                          Catch::Contains(file) && Catch::Contains("layers[1].sensitivity") &&
                              Catch::Contains(">= 0"));
        j["layers"][1]["sensitivity"] = "big";
        WriteFile(file, j.dump());
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 2),
                          Catch::Contains("layers[1].sensitivity"));
    }
    SECTION("a missing field")
    {
        nlohmann::json j = written;
        j.erase("calibration_tokens");
        WriteFile(file, j.dump());
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 2),
                          Catch::Contains(file) && Catch::Contains("\"calibration_tokens\"") &&
                              Catch::Contains("missing"));
        j = written;
        j["layers"][0].erase("mean_delta_nll");
        WriteFile(file, j.dump());
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 2),
                          Catch::Contains("layers[0].mean_delta_nll"));
    }
    SECTION("malformed JSON")
    {
        WriteFile(file, "{\"layers\": [");
        CHECK_THROWS_WITH(SensitivityTable::Load(dir.Path(), 2),
                          Catch::Contains(file) && Catch::Contains("not valid JSON"));
    }
}

TEST_CASE("gating: the embedded model's sensitivity.json loads and covers every layer", "[gating]")
{
    auto model = MixtralModel::Load(kModelDir);
    const int layers = model->Config().numHiddenLayers;
    const SensitivityTable table = SensitivityTable::Load(kModelDir, layers);
    CHECK(table.calibrationText == "calibration.txt");
    CHECK(table.calibrationTokens > 70000);
    CHECK(table.window == model->Config().maxPositionEmbeddings);
    for (int l = 0; l < layers; ++l)
    {
        CHECK(table.sensitivity[l] > 0);
        CHECK(table.sensitivity[l] ==
              Approx(table.meanDeltaNll[l] / table.meanSecondWeightSq[l]).epsilon(1e-12));
    }
}

TEST_CASE("gating: layer stepper PredictNextLayer is the next router on this layer's MoE input",
          "[gating][seam]")
{
    TinyModel tiny(21, 3);
    TempDir dir;
    WriteModel(dir, tiny.Config(), tiny.Classic(wdmoe::llm::DType::F32));
    auto model = MixtralModel::Load(dir.Path());
    const std::vector<int> ids = {3, 17, 0, 39, 22, 5, 5, 11};
    const int n = int(ids.size());
    const int d = tiny.d;
    const int experts = tiny.experts;

    KvCache cache = model->NewCache();
    LayerStepper pass(*model, cache, ids.data(), n);
    std::vector<float> probs(experts);
    CHECK_THROWS_AS(pass.PredictNextLayer(0, probs.data()), std::logic_error); // before Attend
    std::vector<RoutingDecision> decisions(n);
    while (!pass.Done())
    {
        pass.Attend();
        const int l = pass.Layer();
        CHECK_THROWS_AS(pass.PredictNextLayer(-1, probs.data()), std::logic_error);
        CHECK_THROWS_AS(pass.PredictNextLayer(n, probs.data()), std::logic_error);
        if (l + 1 == tiny.layers)
        {
            CHECK_THROWS_AS(pass.PredictNextLayer(0, probs.data()), std::logic_error);
        }
        else
        {
            // softmax(W_gate[l + 1] h) in double, with h the MoE input the request shows.
            const std::vector<float>& gate = tiny.weights.at(
                "model.layers." + std::to_string(l + 1) + ".block_sparse_moe.gate.weight");
            for (int i = 0; i < n; ++i)
            {
                const RoutingRequest r = pass.Request(i);
                std::vector<double> logits(experts);
                double maxLogit = -1e300;
                for (int e = 0; e < experts; ++e)
                {
                    for (int k = 0; k < d; ++k)
                    {
                        logits[e] += double(gate[std::size_t(e) * d + k]) * r.hidden[k];
                    }
                    maxLogit = std::max(maxLogit, logits[e]);
                }
                double sum = 0;
                for (double& x : logits)
                {
                    x = std::exp(x - maxLogit);
                    sum += x;
                }
                pass.PredictNextLayer(i, probs.data());
                for (int e = 0; e < experts; ++e)
                {
                    CHECK(probs[e] == Approx(logits[e] / sum).margin(1e-6));
                }
                // Not this layer's router (the test would be vacuous if the two coincided).
                bool differs = false;
                for (int e = 0; e < experts; ++e)
                {
                    differs = differs || std::abs(probs[e] - r.gateProbs[e]) > 1e-3;
                }
                CHECK(differs);
            }
        }
        for (int i = 0; i < n; ++i)
        {
            const RoutingRequest r = pass.Request(i);
            TopKDecision(r.gateProbs, r.numExperts, r.topK, decisions[i]);
        }
        pass.RunExperts(decisions);
        CHECK_THROWS_AS(pass.PredictNextLayer(0, probs.data()), std::logic_error); // moved on
    }
}

TEST_CASE("gating: calibration of a tiny model recovers its known order of layer sensitivities",
          "[gating][calibration]")
{
    // Three layers whose second expert matters by construction:
    //  - layer 2: every expert is expert 0, so the output is (w1 + w2) E(x) = E(x) whether or
    //    not the second expert runs: dropping it changes nothing and F_2 = 0 up to rounding;
    //  - layer 0: the experts' down projections (w2) scaled by 3, layer 1's by 0.3. An expert's
    //    output scales with its down projection, so dropping the second expert moves the
    //    residual stream about 10 times more at layer 0 than at layer 1, and the NLL, quadratic
    //    in that move near the model's own predictions, about 100 times more. (The router
    //    weights, and so E[w2^2], are not touched by the scaling of w2.)
    // The text is the model's own greedy continuation: the top-2 model predicts it at the
    // maximum of its logits, so any change of the expert mix raises the NLL on average. Each
    // window is one prompt token plus 31 greedy tokens, exactly the model's context.
    TinyModel tiny(5, 3);
    MakeExpertsIdentical(tiny, 2);
    ScaleDownProjections(tiny, 0, 3.0f);
    ScaleDownProjections(tiny, 1, 0.3f);
    TempDir dir;
    WriteModel(dir, tiny.Config(), tiny.Classic(wdmoe::llm::DType::F32));
    auto model = MixtralModel::Load(dir.Path());

    std::vector<int> text;
    for (int prompt = 0; prompt < 24; ++prompt)
    {
        const std::vector<int> start = {(prompt * 7) % tiny.vocab};
        const std::vector<int> more = GenerateGreedy(*model, start, tiny.context - 1);
        REQUIRE(int(more.size()) == tiny.context - 1);
        text.insert(text.end(), start.begin(), start.end());
        text.insert(text.end(), more.begin(), more.end());
    }
    const SensitivityTable t = CalibrateSensitivity(*model, text, "greedy");
    CHECK(t.calibrationText == "greedy");
    CHECK(t.window == tiny.context);
    CHECK(t.calibrationTokens == 24 * (tiny.context - 1));
    REQUIRE(t.sensitivity.size() == 3);
    INFO("F = " << t.sensitivity[0] << ", " << t.sensitivity[1] << ", " << t.sensitivity[2]
                << "; E[dNLL] = " << t.meanDeltaNll[0] << ", " << t.meanDeltaNll[1] << ", "
                << t.meanDeltaNll[2]);
    CHECK(t.sensitivity[0] > t.sensitivity[1]);
    CHECK(t.sensitivity[1] > t.sensitivity[2]);
    CHECK(t.sensitivity[1] > 0);
    CHECK(t.sensitivity[2] == Approx(0.0).margin(1e-4 * t.sensitivity[1]));
    CHECK(std::abs(t.meanDeltaNll[2]) < 1e-4 * t.meanDeltaNll[1]);
    for (int l = 0; l < 3; ++l)
    {
        CHECK(t.meanSecondWeightSq[l] > 0);
        CHECK(t.meanSecondWeightSq[l] <= 0.25); // w2 <= 1/2 after renormalisation
    }

    // maxTokens caps the scored predictions.
    CalibrationOptions few;
    few.maxTokens = 40;
    CHECK(CalibrateSensitivity(*model, text, "greedy", few).calibrationTokens == 40);

    // Only a top-2 model can be calibrated; the error names the config file and the field.
    nlohmann::json config = tiny.Config();
    config["num_experts_per_tok"] = 1;
    TempDir top1;
    WriteModel(top1, config, tiny.Classic(wdmoe::llm::DType::F32));
    auto single = MixtralModel::Load(top1.Path());
    CHECK_THROWS_WITH(CalibrateSensitivity(*single, text, "greedy"),
                      Catch::Contains("config.json") && Catch::Contains("num_experts_per_tok"));
}

TEST_CASE("gating: routing profile gives single-expert rate and next-layer prefetch accuracy",
          "[gating][calibration]")
{
    TinyModel tiny(8, 3);
    // Layer 1's router sees nothing (zero weights): its softmax is uniform, so both the
    // prediction made at layer 0 and the experts run at layer 1 are experts {0, 1} (ties to the
    // lower index), for every token: a_1 = 1 exactly.
    for (float& x : tiny.weights["model.layers.1.block_sparse_moe.gate.weight"])
    {
        x = 0.0f;
    }
    TempDir dir;
    WriteModel(dir, tiny.Config(), tiny.Classic(wdmoe::llm::DType::F32));
    auto model = MixtralModel::Load(dir.Path());
    std::mt19937 rng(3);
    std::vector<int> tokens(100);
    for (int& t : tokens)
    {
        t = int(rng() % unsigned(tiny.vocab));
    }
    // Windows of 32 at 0, 32, 64 (24 decodes each after an 8-token prompt); the one at 96 has
    // only 4 tokens, all prompt.
    const long long decodes = 3 * 24;

    SECTION("top-2: never one expert")
    {
        const RoutingProfile p = ProfileRouting(*model, tokens, 32, 8);
        CHECK(p.decodeTokens == decodes);
        REQUIRE(p.singleExpertRate.size() == 3);
        REQUIRE(p.prefetchAccuracy.size() == 3);
        for (int l = 0; l < 3; ++l)
        {
            CHECK(p.singleExpertRate[l] == 0.0);
            CHECK(p.prefetchAccuracy[l] >= 0.0);
            CHECK(p.prefetchAccuracy[l] <= 1.0);
            double sum = 0;
            for (double r : p.expertRate[l])
            {
                sum += r;
            }
            CHECK(sum == Approx(2.0));
        }
        CHECK(p.prefetchAccuracy[0] == 0.0);
        CHECK(p.prefetchAccuracy[1] == 1.0);
        CHECK(p.expertRate[1] == std::vector<double>{1.0, 1.0, 0.0, 0.0});
        CHECK(p.prefetchAccuracy[2] < 1.0); // a real router: some predictions miss
    }
    SECTION("adaptive gating with a huge threshold: always one expert")
    {
        AdaptiveGating gating({1.0, 1.0, 1.0}, 1e9);
        const RoutingProfile p = ProfileRouting(*model, tokens, 32, 8, &gating);
        CHECK(p.decodeTokens == decodes);
        for (int l = 0; l < 3; ++l)
        {
            CHECK(p.singleExpertRate[l] == 1.0);
            CHECK(p.prefetchAccuracy[l] >= 0.0);
            CHECK(p.prefetchAccuracy[l] <= 1.0);
        }
        CHECK(p.prefetchAccuracy[0] == 0.0);
        CHECK(p.prefetchAccuracy[1] == 1.0); // expert 0 runs, and {0, 1} was predicted
        CHECK(p.expertRate[1] == std::vector<double>{1.0, 0.0, 0.0, 0.0});
    }
    SECTION("the decode count is capped and the prompt must fit the window")
    {
        CHECK(ProfileRouting(*model, tokens, 32, 8, nullptr, 30).decodeTokens == 30);
        CHECK(ProfileRouting(*model, tokens, 0, 31).decodeTokens == 3); // window = context 32
        CHECK_THROWS_AS(ProfileRouting(*model, tokens, 32, 32), std::invalid_argument);
    }
}
