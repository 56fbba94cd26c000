#include "calibration.h"

#include "evaluation.h"
#include "mixtral-model.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace wdmoe
{
namespace llm
{

namespace
{

/// The model's top-2, remembering the renormalised second weight of every token at one layer.
class SecondWeightRecorder : public RoutingPolicy
{
  public:
    explicit SecondWeightRecorder(int layers)
        : m_w2(layers)
    {
    }

    void Decide(const RoutingRequest& request, RoutingDecision& decision) override
    {
        TopKDecision(request.gateProbs, request.numExperts, request.topK, decision);
        std::vector<double>& row = m_w2[request.layer];
        row.resize(std::size_t(request.batchSize));
        row[request.batchIndex] = decision.weights.size() > 1 ? decision.weights[1] : 0.0;
    }

    /// [layer][token of the last Forward()]
    std::vector<std::vector<double>> m_w2;
};

/// Top-2 everywhere except at one layer, where only expert 1 runs, with weight 1.
class DropSecondAt : public RoutingPolicy
{
  public:
    explicit DropSecondAt(int layer)
        : m_layer(layer)
    {
    }

    void Decide(const RoutingRequest& request, RoutingDecision& decision) override
    {
        TopKDecision(request.gateProbs, request.numExperts, request.topK, decision);
        if (request.layer == m_layer)
        {
            decision.experts.resize(1);
            decision.weights.assign(1, 1.0f);
        }
    }

  private:
    int m_layer;
};

int
Window(const MixtralModel& model, int window)
{
    return window > 0 ? window : model.Config().maxPositionEmbeddings;
}

} // namespace

SensitivityTable
CalibrateSensitivity(MixtralModel& model,
                     const std::vector<int>& tokens,
                     const std::string& calibrationText,
                     const CalibrationOptions& options)
{
    const ModelConfig& c = model.Config();
    if (c.numExpertsPerTok != 2)
    {
        throw std::invalid_argument(
            model.Dir() + "/config.json: field \"num_experts_per_tok\" is " +
            std::to_string(c.numExpertsPerTok) + "; sensitivity calibration needs a top-2 model");
    }
    const int layers = c.numHiddenLayers;
    const int window = Window(model, options.window);
    const std::vector<TokenWindow> windows =
        ScoringWindows(tokens.size(), window, options.maxTokens);

    std::vector<double> deltaSum(layers, 0.0);
    std::vector<double> w2SqSum(layers, 0.0);
    long long scored = 0;
    KvCache cache = model.NewCache(LongestWindow(windows));
    std::vector<float> logits;
    std::vector<double> baseline, dropped;
    SecondWeightRecorder recorder(layers);
    for (const TokenWindow& win : windows)
    {
        const int* ids = &tokens[win.begin];
        const int predictions = win.length - 1;
        ScoreWindow(model, cache, ids, win.length, &recorder, logits, baseline);
        for (int l = 0; l < layers; ++l)
        {
            // Weights of the scored positions only: the last token of a window predicts
            // nothing that is scored, so dropping its expert changes no NLL here.
            for (int i = 0; i < predictions; ++i)
            {
                w2SqSum[l] += recorder.m_w2[l][i] * recorder.m_w2[l][i];
            }
            DropSecondAt policy(l);
            ScoreWindow(model, cache, ids, win.length, &policy, logits, dropped);
            for (int i = 0; i < predictions; ++i)
            {
                deltaSum[l] += dropped[i] - baseline[i];
            }
        }
        scored += predictions;
    }

    SensitivityTable table;
    table.calibrationText = calibrationText;
    table.calibrationTokens = scored;
    table.window = window;
    for (int l = 0; l < layers; ++l)
    {
        const double meanDelta = deltaSum[l] / double(scored);
        const double meanW2Sq = w2SqSum[l] / double(scored);
        table.meanDeltaNll.push_back(meanDelta);
        table.meanSecondWeightSq.push_back(meanW2Sq);
        // A layer whose second expert does not help on average (dNLL <= 0) gets F = 0: the
        // gating rule then always drops there, which is what the measurement says.
        table.sensitivity.push_back(meanW2Sq > 0 ? std::max(meanDelta, 0.0) / meanW2Sq : 0.0);
    }
    return table;
}

RoutingProfile
ProfileRouting(MixtralModel& model,
               const std::vector<int>& tokens,
               int window,
               int promptTokens,
               RoutingPolicy* policy,
               long long maxDecodeTokens)
{
    const ModelConfig& c = model.Config();
    const int layers = c.numHiddenLayers;
    const int experts = c.numLocalExperts;
    window = Window(model, window);
    if (promptTokens < 0 || promptTokens >= window)
    {
        throw std::invalid_argument(
            "routing profile: the prompt of " + std::to_string(promptTokens) +
            " tokens must be >= 0 and shorter than the window of " + std::to_string(window));
    }

    std::vector<long long> single(layers, 0);
    std::vector<long long> hits(layers, 0);
    std::vector<long long> runs(layers, 0);
    std::vector<std::vector<long long>> counts(layers, std::vector<long long>(experts, 0));
    RoutingProfile profile;
    // Every window is at most `window` tokens and at most the text.
    KvCache cache = model.NewCache(
        int(std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(window), tokens.size()))));
    std::vector<RoutingDecision> decisions(1);
    RoutingDecision& decision = decisions[0];
    RoutingDecision prediction;
    std::vector<float> nextProbs(experts);
    std::vector<int> predicted; // top-k prediction of the current layer, made one layer before
    bool done = false;
    for (std::size_t begin = 0; !done && begin + promptTokens < tokens.size(); begin += window)
    {
        const int w = int(std::min<std::size_t>(std::size_t(window), tokens.size() - begin));
        cache.Clear();
        if (promptTokens > 0)
        {
            model.Forward(cache, &tokens[begin], promptTokens, nullptr, nullptr);
        }
        for (int t = promptTokens; t < w; ++t)
        {
            if (maxDecodeTokens > 0 && profile.decodeTokens >= maxDecodeTokens)
            {
                done = true;
                break;
            }
            LayerStepper pass(model, cache, &tokens[begin + t], 1);
            predicted.clear();
            while (!pass.Done())
            {
                pass.Attend();
                const int l = pass.Layer();
                const RoutingRequest request = pass.Request(0);
                decision.Clear();
                if (policy)
                {
                    policy->Decide(request, decision);
                }
                else
                {
                    TopKDecision(request.gateProbs, experts, request.topK, decision);
                }
                single[l] += decision.experts.size() == 1;
                for (int e : decision.experts)
                {
                    if (e >= 0 && e < experts)
                    {
                        ++counts[l][e];
                    }
                    if (l > 0)
                    {
                        hits[l] += std::count(predicted.begin(), predicted.end(), e);
                    }
                }
                if (l > 0)
                {
                    runs[l] += static_cast<long long>(decision.experts.size());
                }
                if (l + 1 < layers)
                {
                    pass.PredictNextLayer(0, nextProbs.data());
                    TopKDecision(nextProbs.data(), experts, c.numExpertsPerTok, prediction);
                    predicted = prediction.experts;
                }
                pass.RunExperts(decisions);
            }
            ++profile.decodeTokens;
        }
    }

    const double n = double(std::max<long long>(profile.decodeTokens, 1));
    for (int l = 0; l < layers; ++l)
    {
        profile.singleExpertRate.push_back(double(single[l]) / n);
        profile.prefetchAccuracy.push_back(runs[l] ? double(hits[l]) / double(runs[l]) : 0.0);
        std::vector<double> rate;
        for (long long count : counts[l])
        {
            rate.push_back(double(count) / n);
        }
        profile.expertRate.push_back(rate);
    }
    return profile;
}

} // namespace llm
} // namespace wdmoe
