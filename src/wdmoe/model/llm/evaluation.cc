#include "evaluation.h"

#include "mixtral-model.h"
#include "token-scoring.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace wdmoe
{
namespace llm
{

namespace
{

/// Passes every question to the wrapped policy and counts which experts it ran.
class CountingPolicy : public RoutingPolicy
{
  public:
    CountingPolicy(RoutingPolicy* inner, int layers, int experts)
        : m_counts(layers, std::vector<std::int64_t>(experts, 0)),
          m_routed(layers, 0),
          m_inner(inner)
    {
    }

    void Decide(const RoutingRequest& request, RoutingDecision& decision) override
    {
        m_inner->Decide(request, decision);
        for (int e : decision.experts)
        {
            if (e >= 0 && e < int(m_counts[request.layer].size()))
            {
                ++m_counts[request.layer][e];
            }
        }
        ++m_routed[request.layer];
    }

    std::vector<std::vector<std::int64_t>> m_counts;
    std::vector<std::int64_t> m_routed;

  private:
    RoutingPolicy* m_inner;
};

} // namespace

std::vector<TokenWindow>
ScoringWindows(std::size_t tokenCount, int window, std::int64_t maxTokens)
{
    if (window < 2)
    {
        throw std::invalid_argument("evaluation window must hold at least 2 tokens");
    }
    if (tokenCount < 2)
    {
        throw std::invalid_argument("text has fewer than 2 tokens: nothing to score");
    }
    std::vector<TokenWindow> windows;
    std::int64_t scored = 0;
    for (std::size_t begin = 0; begin + 1 < tokenCount; begin += window)
    {
        const std::int64_t remaining =
            maxTokens > 0 ? maxTokens - scored : std::int64_t(tokenCount);
        if (remaining <= 0)
        {
            break;
        }
        // A window of w tokens scores w - 1 predictions.
        const std::size_t w = std::min<std::size_t>(
            {std::size_t(window), tokenCount - begin, std::size_t(remaining) + 1});
        if (w < 2)
        {
            break;
        }
        windows.push_back({begin, int(w)});
        scored += std::int64_t(w) - 1;
    }
    return windows;
}

int
LongestWindow(const std::vector<TokenWindow>& windows)
{
    int longest = 1;
    for (const TokenWindow& w : windows)
    {
        longest = std::max(longest, w.length);
    }
    return longest;
}

void
ScoreWindow(MixtralModel& model,
            KvCache& cache,
            const int* ids,
            int n,
            RoutingPolicy* policy,
            std::vector<float>& logits,
            std::vector<double>& nll)
{
    const int vocab = model.Config().vocabSize;
    cache.Clear();
    logits.resize(std::size_t(n) * vocab);
    model.Forward(cache, ids, n, logits.data(), policy);
    nll.resize(n > 0 ? std::size_t(n) - 1 : 0);
    for (int i = 0; i + 1 < n; ++i)
    {
        nll[i] = NegativeLogLikelihood(&logits[std::size_t(i) * vocab], vocab, ids[i + 1]);
    }
}

EvalResult
EvaluateTokens(MixtralModel& model, const std::vector<int>& ids, const EvalOptions& options)
{
    const ModelConfig& c = model.Config();
    const int window = options.window > 0 ? options.window : c.maxPositionEmbeddings;
    const std::vector<TokenWindow> windows = ScoringWindows(ids.size(), window, options.maxTokens);
    TopKRouting topK;
    CountingPolicy counter(options.policy ? options.policy : &topK,
                           c.numHiddenLayers,
                           c.numLocalExperts);
    const auto start = std::chrono::steady_clock::now();

    EvalResult result;
    double nllSum = 0.0;
    std::int64_t correct = 0;
    KvCache cache = model.NewCache(LongestWindow(windows));
    std::vector<float> logits;
    std::vector<double> nll;
    for (const TokenWindow& win : windows)
    {
        ScoreWindow(model, cache, &ids[win.begin], win.length, &counter, logits, nll);
        for (int i = 0; i + 1 < win.length; ++i)
        {
            nllSum += nll[i];
            correct += ArgMax(&logits[std::size_t(i) * c.vocabSize], c.vocabSize) ==
                       ids[win.begin + i + 1];
            ++result.tokens;
        }
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.nllPerToken = nllSum / double(result.tokens);
    result.perplexity = std::exp(result.nllPerToken);
    result.top1Accuracy = double(correct) / double(result.tokens);
    std::int64_t runs = 0, routed = 0;
    for (int l = 0; l < c.numHiddenLayers; ++l)
    {
        std::vector<double> usage;
        for (std::int64_t count : counter.m_counts[l])
        {
            usage.push_back(counter.m_routed[l] ? double(count) / counter.m_routed[l] : 0.0);
            runs += count;
        }
        routed += counter.m_routed[l];
        result.expertUsage.push_back(usage);
    }
    result.meanExpertsPerTokenLayer = routed ? double(runs) / routed : 0.0;
    return result;
}

std::vector<int>
GenerateGreedy(MixtralModel& model,
               const std::vector<int>& prompt,
               int tokens,
               RoutingPolicy* policy)
{
    if (prompt.empty())
    {
        throw std::invalid_argument("generation needs a non-empty prompt");
    }
    const int vocab = model.Config().vocabSize;
    // The prompt and the continuation, within the context: a short run of a long-context
    // model needs no cache of the whole context.
    const long long needed = (long long)prompt.size() + std::max(tokens, 0);
    KvCache cache =
        model.NewCache(int(std::min<long long>(needed, model.Config().maxPositionEmbeddings)));
    if (int(prompt.size()) > cache.Capacity())
    {
        throw std::invalid_argument("prompt of " + std::to_string(prompt.size()) +
                                    " tokens exceeds the context of " +
                                    std::to_string(cache.Capacity()));
    }
    std::vector<float> logits(prompt.size() * vocab);
    model.Forward(cache, prompt.data(), int(prompt.size()), logits.data(), policy);
    std::vector<int> out;
    int next = ArgMax(&logits[(prompt.size() - 1) * vocab], vocab);
    while (int(out.size()) < tokens)
    {
        out.push_back(next);
        if (int(out.size()) == tokens || cache.Length() >= cache.Capacity())
        {
            break;
        }
        model.Forward(cache, &next, 1, logits.data(), policy);
        next = ArgMax(logits.data(), vocab);
    }
    return out;
}

} // namespace llm
} // namespace wdmoe
