// Teacher-forced scoring of a text and greedy generation with a MixtralModel.
#ifndef WDMOE_LLM_EVALUATION_H
#define WDMOE_LLM_EVALUATION_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wdmoe
{
namespace llm
{

class KvCache;
class MixtralModel;
class RoutingPolicy;

struct EvalOptions
{
    /// Score at most this many tokens (0: the whole text).
    std::int64_t maxTokens = 0;
    /// Context window: the text is cut into non-overlapping windows of this many tokens,
    /// each run as one prefill from an empty cache; the first token of a window is context
    /// only. 0: max_position_embeddings.
    int window = 0;
    RoutingPolicy* policy = nullptr; ///< null: the model's own top-k
};

struct EvalResult
{
    std::int64_t tokens = 0; ///< predictions scored
    double nllPerToken = 0;  ///< mean negative log-likelihood, nats
    double perplexity = 0;   ///< exp(nllPerToken)
    double top1Accuracy = 0; ///< share of predictions whose argmax is the true next token
    /// [layer][expert]: share of routed tokens (all window positions) that ran the expert.
    std::vector<std::vector<double>> expertUsage;
    double meanExpertsPerTokenLayer = 0;
    double seconds = 0;
};

/// One window of a teacher-forced pass: ids[begin, begin + length) run as one prefill from
/// an empty cache; the first token is context only, so the window scores length - 1
/// predictions.
struct TokenWindow
{
    std::size_t begin = 0;
    int length = 0;
};

/// The windows EvaluateTokens scores a text of tokenCount tokens in: non-overlapping, window
/// tokens each (the last one shorter), at most maxTokens predictions in all (0: no limit).
/// Throws std::invalid_argument for a window below 2 or a text of fewer than 2 tokens.
std::vector<TokenWindow> ScoringWindows(std::size_t tokenCount, int window, std::int64_t maxTokens);

/// The longest of the windows (at least 1): the KV cache a pass over them needs, however long
/// the model's context is.
int LongestWindow(const std::vector<TokenWindow>& windows);

/// Runs ids[0, n) as one prefill from an empty cache (cleared here) and writes the NLL (nats)
/// of each of the n - 1 next-token predictions into nll; the logits (n x vocab) stay in logits
/// for callers that want more of them.
void ScoreWindow(MixtralModel& model,
                 KvCache& cache,
                 const int* ids,
                 int n,
                 RoutingPolicy* policy,
                 std::vector<float>& logits,
                 std::vector<double>& nll);

/// Scores ids (already tokenized) under teacher forcing.
EvalResult EvaluateTokens(MixtralModel& model,
                          const std::vector<int>& ids,
                          const EvalOptions& options = EvalOptions());

/// Greedy continuation: prefill the prompt, then decode one token at a time with the KV
/// cache, taking the argmax (lowest id on ties). Stops at the cache capacity.
std::vector<int> GenerateGreedy(MixtralModel& model,
                                const std::vector<int>& prompt,
                                int tokens,
                                RoutingPolicy* policy = nullptr);

} // namespace llm
} // namespace wdmoe

#endif
