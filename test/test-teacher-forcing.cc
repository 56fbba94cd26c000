// TeacherForcedStream (the passes of a workload and their scores) and GroupByDevice (a layer's
// experts by device), against sequences and sums worked out by hand and against the model's own
// forward pass.
#include "layer-work.h"
#include "mixtral-model.h"
#include "safetensors-writer.h"
#include "teacher-forced-stream.h"
#include "tiny-model.h"
#include "token-scoring.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace wdmoe::llm;
using wdmoe::test::TempDir;
using wdmoe::test::TinyModel;
using wdmoe::test::WriteModel;

namespace
{

std::unique_ptr<MixtralModel>
LoadTiny(TempDir& dir, int context)
{
    TinyModel tiny(5);
    tiny.context = context;
    WriteModel(dir, tiny.Config(), tiny.Classic(DType::F32));
    return MixtralModel::Load(dir.Path());
}

std::vector<int>
Text(int n)
{
    std::vector<int> ids;
    for (int i = 0; i < n; ++i)
    {
        ids.push_back((7 * i + 3) % 40);
    }
    return ids;
}

/// Runs the pass with the model's own top-k at every layer.
void
RunTopK(LayerStepper& pass)
{
    std::vector<RoutingDecision> decisions;
    while (!pass.Done())
    {
        pass.Attend();
        decisions.assign(pass.Tokens(), RoutingDecision());
        for (int i = 0; i < pass.Tokens(); ++i)
        {
            const RoutingRequest r = pass.Request(i);
            TopKDecision(r.gateProbs, r.numExperts, r.topK, decisions[i]);
        }
        pass.RunExperts(decisions);
    }
}

} // namespace

TEST_CASE("teacher forcing: windows of a prefill and decode steps, the next re-reading the prompt",
          "[teacher-forcing]")
{
    TempDir dir;
    auto model = LoadTiny(dir, 8);
    const std::vector<int> text = Text(30);
    // Context 8, prompt 3: a window is a prefill (positions 0-2) and decode steps at positions
    // 3..7 (5 predictions), then a new window re-reads the last 2 tokens fed with the next one.
    TeacherForcedStream stream(*model, text, 3, 9);
    std::vector<std::string> seen;
    int scored = 0;
    while (!stream.Finished())
    {
        LayerStepper& pass = stream.StartPass();
        seen.push_back(
            std::string(stream.PassIsPrefill() ? "P" : "D") + std::to_string(stream.Window()) +
            "@" + std::to_string(stream.LastPosition()) + "x" + std::to_string(stream.TokensFed()));
        RunTopK(pass);
        const PassScore s = stream.FinishPass(true);
        CHECK(s.kl == 0.0);
        CHECK(s.agreesWithTopK);
        ++scored;
    }
    CHECK(scored == 9);
    // Capacity min(context 8, 3 + 9) = 8: the first window feeds tokens 0..7, predicting 3..8
    // (6 predictions: the prefill's and 5 decode steps), the second re-reads tokens 6, 7 and
    // feeds 8, then decodes 9 and 10.
    const std::vector<std::string> expected =
        {"P0@2x3", "D0@3x1", "D0@4x1", "D0@5x1", "D0@6x1", "D0@7x1", "P1@2x3", "D1@3x1", "D1@4x1"};
    CHECK(seen == expected);
}

TEST_CASE("teacher forcing: a pass's NLL is the model's own prediction of the next true token",
          "[teacher-forcing]")
{
    TempDir dir;
    auto model = LoadTiny(dir, 16);
    const std::vector<int> text = Text(20);
    TeacherForcedStream stream(*model, text, 4, 3);
    std::vector<double> nll;
    while (!stream.Finished())
    {
        RunTopK(stream.StartPass());
        nll.push_back(stream.FinishPass(true).nll);
    }
    // The same tokens through Forward in one prefill: position p predicts token p + 1.
    KvCache cache = model->NewCache(16);
    const int vocab = model->Config().vocabSize;
    std::vector<float> logits(6 * vocab);
    model->Forward(cache, text.data(), 6, logits.data());
    REQUIRE(nll.size() == 3);
    for (int k = 0; k < 3; ++k)
    {
        const int position = 3 + k;
        CHECK(nll[k] ==
              Approx(NegativeLogLikelihood(&logits[position * vocab], vocab, text[position + 1]))
                  .epsilon(1e-5));
    }
}

TEST_CASE("teacher forcing: a prefill fed in chunks predicts what the whole prompt does",
          "[teacher-forcing][chunked]")
{
    TempDir dir;
    auto model = LoadTiny(dir, 8);
    const std::vector<int> text = Text(30);
    // Context 8, prompt 5, 9 predictions; prefill chunks of at most 2 tokens: the first window
    // feeds positions 0-1, 2-3, 4 (which predicts), then decodes 5..7; the second re-reads the
    // last 4 tokens fed with the next one, again as 2 + 2 + 1, then decodes once more.
    TeacherForcedStream whole(*model, text, 5, 9);
    TeacherForcedStream chunked(*model, text, 5, 9);
    std::vector<double> wholeNll, chunkedNll;
    while (!whole.Finished())
    {
        RunTopK(whole.StartPass());
        wholeNll.push_back(whole.FinishPass(true).nll);
    }
    std::vector<std::string> seen;
    while (!chunked.Finished())
    {
        const int left = chunked.NextPassPrefillTokens();
        LayerStepper& pass = chunked.StartPass(2);
        seen.push_back(std::string(chunked.PassIsPrefill() ? "P" : "D") +
                       std::to_string(chunked.LastPosition()) + "x" +
                       std::to_string(chunked.TokensFed()) + "/" + std::to_string(left) +
                       (chunked.PassPredicts() ? "!" : ""));
        RunTopK(pass);
        const PassScore s = chunked.FinishPass(true);
        if (chunked.PassPredicts())
        {
            chunkedNll.push_back(s.nll);
            CHECK(s.kl == 0.0);
        }
        else
        {
            CHECK(s.nll == 0.0); // an early chunk scores nothing
        }
    }
    const std::vector<std::string> expected = {"P1x2/5",
                                               "P3x2/3",
                                               "P4x1/1!",
                                               "D5x1/0!",
                                               "D6x1/0!",
                                               "D7x1/0!",
                                               "P1x2/5",
                                               "P3x2/3",
                                               "P4x1/1!",
                                               "D5x1/0!",
                                               "D6x1/0!",
                                               "D7x1/0!",
                                               "P1x2/5",
                                               "P3x2/3",
                                               "P4x1/1!"};
    CHECK(seen == expected);
    REQUIRE(chunkedNll.size() == 9);
    REQUIRE(wholeNll.size() == 9);
    for (std::size_t i = 0; i < 9; ++i)
    {
        INFO("prediction " << i);
        CHECK(chunkedNll[i] == Approx(wholeNll[i]).epsilon(1e-5));
    }
    CHECK_THROWS_WITH(chunked.StartPass(0), Catch::Contains("at least one token"));
}

TEST_CASE("teacher forcing: a pass routed otherwise is scored against the top-k reference",
          "[teacher-forcing]")
{
    TempDir dir;
    auto model = LoadTiny(dir, 16);
    TeacherForcedStream stream(*model, Text(20), 4, 2);
    RunTopK(stream.StartPass());
    stream.FinishPass(true);
    // The decode step runs only each token's first expert: another distribution than top-k's.
    LayerStepper& pass = stream.StartPass();
    std::vector<RoutingDecision> decisions(1);
    bool sameAsTopK = true;
    while (!pass.Done())
    {
        pass.Attend();
        const RoutingRequest r = pass.Request(0);
        TopKDecision(r.gateProbs, r.numExperts, r.topK, decisions[0]);
        decisions[0].experts.resize(1);
        decisions[0].weights = {1.0f};
        sameAsTopK = sameAsTopK && stream.RoutesLikeTopK(decisions);
        pass.RunExperts(decisions);
    }
    CHECK_FALSE(sameAsTopK);
    CHECK(stream.FinishPass(false).kl > 0.0);
}

TEST_CASE("teacher forcing: a workload that does not fit the text or the context is refused",
          "[teacher-forcing]")
{
    TempDir dir;
    auto model = LoadTiny(dir, 8);
    CHECK(PromptContextError(7, 8).empty());
    CHECK(PromptContextError(8, 8) == "must be below the model's context of 8 tokens, got 8");
    CHECK_THROWS_WITH(TeacherForcedStream(*model, Text(30), 8, 2),
                      "prompt_tokens must be below the model's context of 8 tokens, got 8");
    CHECK_THROWS_WITH(TeacherForcedStream(*model, Text(10), 4, 7),
                      Catch::Contains("prompt_tokens + scored_tokens <= the text's tokens (4 + "
                                      "7 > 10)"));
    CHECK_THROWS(TeacherForcedStream(*model, Text(10), 0, 2));
}

TEST_CASE("layer work: experts grouped by device, in first-use order, with distinct tokens",
          "[teacher-forcing][layer-work]")
{
    // Token 0 runs experts 1 (device 0) and 3 (device 2); token 1 runs 3 (device 2) and
    // 5 (device 0); token 2 runs 1 (device 0) twice over another holder of nothing else.
    std::vector<RoutingDecision> decisions(3);
    decisions[0].experts = {1, 3};
    decisions[1].experts = {3, 5};
    decisions[2].experts = {1};
    const std::vector<std::vector<int>> deviceOf = {{0, 2}, {2, 0}, {0}};
    const ns3::LayerWork work = ns3::GroupByDevice(decisions, deviceOf, 4);
    CHECK(work.active == std::vector<uint32_t>{0, 2});
    CHECK(work.plans[0].experts == std::vector<int>{1, 5});
    CHECK(work.plans[0].tokensOf == std::vector<int>{2, 1});
    CHECK(work.plans[0].tokens == 3);
    CHECK(work.plans[2].experts == std::vector<int>{3});
    CHECK(work.plans[2].tokensOf == std::vector<int>{2});
    CHECK(work.plans[2].tokens == 2);
    CHECK(work.plans[1].experts.empty());
    CHECK(work.items[0].size() == 3);
}
