// Accuracy in the cell: NLL, KL divergence from the unmodified top-k model and top-1 agreement
// of every scored token against a replay of the model alone; and the priced model's depth
// against the routed model's ("latency covers N of M layers").

#include "gating.h"
#include "mixtral-model.h"
#include "scenario-fixture.h"
#include "tokenizer.h"
#include "run-scenario.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <iterator>

using namespace ns3;
using wdmoe::test::ParseCsv;
using wdmoe::test::ScenarioFixture;

namespace
{

/// A two-layer cell whose model has calibrated sensitivities (F = 1 per layer), scoring 20
/// tokens in windows of a 24-token context after an 8-token prompt.
struct AccuracyFixture : ScenarioFixture
{
    AccuracyFixture()
        : ScenarioFixture(2)
    {
        wdmoe::test::WriteFile(dir.File("model/calibration.txt"), std::string(300, 'z'));
        wdmoe::llm::SensitivityTable table;
        table.calibrationText = "calibration.txt";
        table.calibrationTokens = 300;
        table.window = 24;
        table.meanDeltaNll = {0.1, 0.1};
        table.meanSecondWeightSq = {0.1, 0.1};
        table.sensitivity = {1.0, 1.0};
        table.Save(dir.File("model"));
        config["workload"]["scored_tokens"] = 20;
    }
};

/// softmax-based scores computed here, independently of the library's token-scoring.
double
LogSumExp(const float* x, int n)
{
    double top = *std::max_element(x, x + n);
    double sum = 0;
    for (int i = 0; i < n; ++i)
    {
        sum += std::exp(x[i] - top);
    }
    return std::log(sum) + top;
}

double
Kl(const float* p, const float* q, int n)
{
    const double zp = LogSumExp(p, n);
    const double zq = LogSumExp(q, n);
    double kl = 0;
    for (int i = 0; i < n; ++i)
    {
        kl += std::exp(p[i] - zp) * ((p[i] - zp) - (q[i] - zq));
    }
    return kl;
}

struct Replayed
{
    std::vector<double> nll, kl;
    std::vector<bool> agrees;
    int passesAfterDeviation = 0; ///< passes in a window that already deviated
    int deviatingPasses = 0;
    int topKPassesBeforeDeviation = 0;
};

/// The scenario's windows (MoeInferenceApp::StartPass) replayed with the model alone: the
/// policy's pass and the unmodified top-k model's, each on its own cache.
Replayed
Replay(const std::string& modelDir, const std::vector<int>& tokens, double threshold, int scored)
{
    auto model = wdmoe::llm::MixtralModel::Load(modelDir);
    const int vocab = model->Config().vocabSize;
    const int prompt = 8;
    wdmoe::llm::AdaptiveGating gating({1.0, 1.0}, threshold, false);
    wdmoe::llm::KvCache cache = model->NewCache();
    wdmoe::llm::KvCache reference = model->NewCache();
    Replayed out;
    int next = 0;
    bool first = true;
    bool deviated = false;
    for (int s = 0; s < scored; ++s)
    {
        std::vector<int> fed;
        if (first || cache.Length() >= cache.Capacity())
        {
            const int begin = first ? 0 : next - prompt + 1;
            first = false;
            cache.Clear();
            reference.Clear();
            deviated = false;
            fed.assign(tokens.begin() + begin, tokens.begin() + begin + prompt);
            next = begin + prompt;
        }
        else
        {
            fed.push_back(tokens[next++]);
        }
        const int n = int(fed.size());
        std::vector<float> logits(std::size_t(n) * vocab);
        std::vector<float> topK(logits.size());
        model->Forward(cache, fed.data(), n, logits.data(), &gating);
        model->Forward(reference, fed.data(), n, topK.data());
        const float* last = &logits[std::size_t(n - 1) * vocab];
        const float* ref = &topK[std::size_t(n - 1) * vocab];
        const bool same = std::equal(logits.begin(), logits.end(), topK.begin());
        out.deviatingPasses += !same;
        out.passesAfterDeviation += deviated;
        out.topKPassesBeforeDeviation += same && !deviated && n == 1;
        deviated = deviated || !same;
        out.nll.push_back(LogSumExp(last, vocab) - last[tokens[next]]);
        out.kl.push_back(Kl(ref, last, vocab));
        out.agrees.push_back(std::max_element(last, last + vocab) - last ==
                             std::max_element(ref, ref + vocab) - ref);
    }
    return out;
}

} // namespace

TEST_CASE("accuracy: the unmodified top-k model has zero KL and full agreement", "[accuracy]")
{
    AccuracyFixture f;
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    for (const auto& row : ParseCsv(r.tokensCsv))
    {
        CHECK(std::stod(row.at("kl")) == 0);
        CHECK(row.at("agrees_with_topk") == "1");
    }
    CHECK(r.summary["kl_divergence_from_topk"].get<double>() == 0);
    CHECK(r.summary["top1_agreement_with_topk"].get<double>() == 1);
    CHECK(r.summary["tokens_scored"].get<int>() == 20);
}

TEST_CASE("accuracy: NLL, KL and agreement under adaptive gating equal a replay of the model "
          "alone",
          "[accuracy]")
{
    AccuracyFixture f;
    const double threshold = 0.003; // one deviating decode pass early in a window
    f.config["policy"] = {{"gating", "adaptive"}, {"adaptive_threshold", threshold}};
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    auto model = wdmoe::llm::MixtralModel::Load(f.dir.File("model"));
    auto tokenizer = wdmoe::llm::Tokenizer::ForModel(f.dir.File("model"), model->Config());
    std::ifstream in(f.dir.File("text.txt"));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const Replayed want = Replay(f.dir.File("model"), tokenizer->Encode(text), threshold, 20);
    // The case exercises every path of the reference pass: decode passes that route like
    // top-k before any deviation (skipped), the first that does not (the reference cache is
    // filled from the run's), and passes after it in the same window (run on that cache).
    REQUIRE(want.deviatingPasses > 0);
    REQUIRE(want.topKPassesBeforeDeviation > 0);
    REQUIRE(want.passesAfterDeviation > 0);
    const auto rows = ParseCsv(r.tokensCsv);
    REQUIRE(rows.size() == want.nll.size());
    double kl = 0;
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        INFO("token " << i);
        CHECK(std::stod(rows[i].at("nll")) == Approx(want.nll[i]).epsilon(1e-6).margin(1e-6));
        CHECK(std::stod(rows[i].at("kl")) == Approx(want.kl[i]).epsilon(1e-5).margin(1e-7));
        CHECK((rows[i].at("agrees_with_topk") == "1") == want.agrees[i]);
        kl += want.kl[i];
    }
    CHECK(kl > 0);
    CHECK(r.summary["kl_divergence_from_topk"].get<double>() ==
          Approx(kl / rows.size()).epsilon(1e-5));
}

TEST_CASE("accuracy: the priced model's depth must be the routed model's unless only the routed "
          "layers are priced",
          "[accuracy][config]")
{
    AccuracyFixture f; // a 2-layer routed model
    auto errorOf = [&f](const nlohmann::json& cost) {
        f.config["cost_model"] = cost;
        try
        {
            RunScenario(ScenarioConfig::Load(f.Write("cost.json")));
        }
        catch (const std::exception& e)
        {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK_THAT(errorOf("mixtral-8x7b"),
               Catch::Contains("cost.json") && Catch::Contains("\"cost_model\"") &&
                   Catch::Contains("prices 32 layers") && Catch::Contains("routed model has 2"));
    CHECK_THAT(errorOf({{"preset", "mixtral-8x7b"}, {"layers", "all"}}),
               Catch::Contains("\"cost_model.layers\"") && Catch::Contains("\"routed\""));
    CHECK_THAT(errorOf({{"d_model", 512}, {"d_ff", 1024}, {"layers", "routed"}}),
               Catch::Contains("\"cost_model.layers\"") && Catch::Contains("as a number"));
    CHECK_THAT(errorOf({{"d_model", 512}, {"d_ff", 1024}}), Catch::Contains("prices 32 layers"));
    CHECK_THAT(errorOf({{"preset", "gpt-5"}}), Catch::Contains("\"cost_model.preset\""));
    CHECK_THAT(errorOf({{"preset", "mixtral-8x7b"}, {"depth", 2}}),
               Catch::Contains("\"cost_model.depth\""));

    auto run = [&f](const nlohmann::json& cost) {
        f.config["cost_model"] = cost;
        return RunScenario(ScenarioConfig::Load(f.Write("cost.json")));
    };
    const ScenarioResult routed = run({{"preset", "mixtral-8x7b"}, {"layers", "routed"}});
    CHECK(routed.summary["latency_covers"] == "latency covers 2 of 32 layers");
    CHECK(routed.summary["layers_in_latency"] == 2);
    CHECK(routed.summary["model_priced"]["layers"] == 32);
    CHECK(routed.summary["model_priced"]["priced_layers"] == "routed");
    // A Mixtral of the routed depth: every layer costs the same, so the same latencies.
    const ScenarioResult shallow = run({{"preset", "mixtral-8x7b"}, {"layers", 2}});
    CHECK(shallow.summary["latency_covers"] == "latency covers 2 of 2 layers");
    CHECK(shallow.summary["model_priced"]["priced_layers"] == "all");
    CHECK(shallow.tokensCsv == routed.tokensCsv);
    const ScenarioResult inline2 = run({{"d_model", 4096}, {"d_ff", 14336}, {"layers", 2}});
    CHECK(inline2.summary["latency_covers"] == "latency covers 2 of 2 layers");
    const ScenarioResult self = run("self");
    CHECK(self.summary["latency_covers"] == "latency covers 2 of 2 layers");
}
