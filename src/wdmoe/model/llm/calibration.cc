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

namespace
{

/// What the routing profile counts, per layer, over decode steps.
class RoutingTally
{
  public:
    RoutingTally(int layers, int experts)
        : m_experts(experts),
          m_single(layers, 0),
          m_hits(layers, 0),
          m_runs(layers, 0),
          m_counts(layers, std::vector<long long>(experts, 0))
    {
    }

    /// Layer l ran decision; `predicted` is the top-k prediction made for it one layer before.
    void Count(int l, const RoutingDecision& decision, const std::vector<int>& predicted)
    {
        m_single[l] += decision.experts.size() == 1;
        for (int e : decision.experts)
        {
            if (e >= 0 && e < m_experts)
            {
                ++m_counts[l][e];
            }
            if (l > 0)
            {
                m_hits[l] += std::count(predicted.begin(), predicted.end(), e);
            }
        }
        if (l > 0)
        {
            m_runs[l] += static_cast<long long>(decision.experts.size());
        }
    }

    /// The rates over `decodeTokens` decode steps.
    void Rates(RoutingProfile& profile) const
    {
        const double n = double(std::max<long long>(profile.decodeTokens, 1));
        for (std::size_t l = 0; l < m_single.size(); ++l)
        {
            profile.singleExpertRate.push_back(double(m_single[l]) / n);
            profile.prefetchAccuracy.push_back(m_runs[l] ? double(m_hits[l]) / double(m_runs[l])
                                                         : 0.0);
            std::vector<double> rate;
            for (long long count : m_counts[l])
            {
                rate.push_back(double(count) / n);
            }
            profile.expertRate.push_back(rate);
        }
    }

  private:
    int m_experts;
    std::vector<long long> m_single;
    std::vector<long long> m_hits;
    std::vector<long long> m_runs;
    std::vector<std::vector<long long>> m_counts;
};

/// One decode step of `token`, routed by policy (null: the model's top-k), counted.
void
ProfileDecodeStep(MixtralModel& model,
                  KvCache& cache,
                  const int* token,
                  RoutingPolicy* policy,
                  RoutingTally& tally)
{
    const ModelConfig& c = model.Config();
    std::vector<RoutingDecision> decisions(1);
    RoutingDecision& decision = decisions[0];
    RoutingDecision prediction;
    std::vector<float> nextProbs(c.numLocalExperts);
    std::vector<int> predicted; // top-k prediction of the current layer, made one layer before
    LayerStepper pass(model, cache, token, 1);
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
            TopKDecision(request.gateProbs, c.numLocalExperts, request.topK, decision);
        }
        tally.Count(l, decision, predicted);
        if (l + 1 < c.numHiddenLayers)
        {
            pass.PredictNextLayer(0, nextProbs.data());
            TopKDecision(nextProbs.data(), c.numLocalExperts, c.numExpertsPerTok, prediction);
            predicted = prediction.experts;
        }
        pass.RunExperts(decisions);
    }
}

} // namespace

RoutingProfile
ProfileRouting(MixtralModel& model,
               const std::vector<int>& tokens,
               int window,
               int promptTokens,
               RoutingPolicy* policy,
               long long maxDecodeTokens)
{
    const ModelConfig& c = model.Config();
    window = Window(model, window);
    if (promptTokens < 0 || promptTokens >= window)
    {
        throw std::invalid_argument(
            "routing profile: the prompt of " + std::to_string(promptTokens) +
            " tokens must be >= 0 and shorter than the window of " + std::to_string(window));
    }
    RoutingTally tally(c.numHiddenLayers, c.numLocalExperts);
    RoutingProfile profile;
    // Every window is at most `window` tokens and at most the text.
    KvCache cache = model.NewCache(
        int(std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(window), tokens.size()))));
    for (std::size_t begin = 0; begin + promptTokens < tokens.size(); begin += window)
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
                tally.Rates(profile);
                return profile;
            }
            ProfileDecodeStep(model, cache, &tokens[begin + t], policy, tally);
            ++profile.decodeTokens;
        }
    }
    tally.Rates(profile);
    return profile;
}

} // namespace llm
} // namespace wdmoe
