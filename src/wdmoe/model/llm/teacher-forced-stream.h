// Teacher forcing over a text: the passes a workload feeds the model (a prompt's prefill per
// context window, then one true token per decode step) and the score of each pass's prediction
// against the true next token and against the unmodified top-k model.
#ifndef WDMOE_LLM_TEACHER_FORCED_STREAM_H
#define WDMOE_LLM_TEACHER_FORCED_STREAM_H

#include "mixtral-model.h"
#include "routing.h"

#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

/// Why a prompt of promptTokens cannot start a window of a model with this context ("" when it
/// can: the prompt must leave room for at least one decode step).
std::string PromptContextError(int promptTokens, int context);

/// What one pass predicted, scored.
struct PassScore
{
    double nll = 0;             ///< -log p(true next token), nats
    double kl = 0;              ///< KL(top-k model || this pass), nats
    bool agreesWithTopK = true; ///< same argmax as the top-k model
};

/**
 * The passes of a teacher-forced workload over `tokens`: windows of promptTokens prefill, then
 * decode steps of the true tokens until the context is full (the next window re-reads the last
 * promptTokens - 1 tokens fed), until scoredTokens predictions have been scored. A prefill may
 * be fed in chunks (StartPass's maxPrefillTokens, as chunked prefill does): each chunk appends
 * its tokens to the cache, and only the last one predicts (the window's first scored token;
 * attention over the cached chunks computes what one pass over the whole prompt would, to float
 * rounding). The caller
 * routes each pass layer by layer (Pass()); the stream keeps a reference cache for the model's
 * own top-k, so that every prediction is compared with the unmodified model's.
 */
class TeacherForcedStream
{
  public:
    /// Throws std::invalid_argument when prompt and scored tokens do not fit the text or the
    /// prompt does not fit the model's context.
    TeacherForcedStream(MixtralModel& model,
                        std::vector<int> tokens,
                        int promptTokens,
                        int scoredTokens);
    ~TeacherForcedStream();

    /// Starts the next pass: the rest of a prefill under way (at most maxPrefillTokens of it);
    /// else a new window's prefill when the cache is full (or at the start), also of at most
    /// maxPrefillTokens; else one decode step of the next true token.
    LayerStepper& StartPass(int maxPrefillTokens = 1 << 30);

    /// The prompt tokens the next pass would prefill (0: it is a decode step).
    int NextPassPrefillTokens() const;

    /// The pass in flight predicts a token: a decode step or the last chunk of a prefill.
    bool PassPredicts() const { return !m_prefill || m_nextToken == m_promptEnd; }

    LayerStepper& Pass() { return *m_pass; }

    bool PassIsPrefill() const { return m_prefill; }

    int Window() const { return m_window; } ///< index of the pass's context window

    int TokensFed() const { return int(m_passTokens.size()); }

    int LastPosition() const { return m_lengthBeforePass + TokensFed() - 1; }

    /// Whether decisions (one per token of the pass) are the model's own top-k at the pass's
    /// current layer, weights included.
    bool RoutesLikeTopK(const std::vector<RoutingDecision>& decisions) const;

    /// AdapMoE's prediction for the pass's next layer: the top-k of its gate on the current
    /// layer's MoE input of the pass's first token.
    std::vector<int> PredictNextLayerExperts() const;

    /// After the pass's last layer: its prediction of the true next token. routedLikeTopK:
    /// every layer of the pass ran the model's own top-k (then, while the whole window did, the
    /// reference is the pass itself, bit for bit). A pass that does not predict (a prefill's
    /// chunk before its last) scores nothing: a zero PassScore, nothing counted as scored.
    PassScore FinishPass(bool routedLikeTopK);

    /// Every prediction the workload asks for has been scored.
    bool Finished() const;

  private:
    /// The top-k model's logits of the pass (null when `logits` is null: its cache is kept up
    /// to date only).
    const float* ReferenceLogits(const float* logits, bool routedLikeTopK);
    /// Starts a window: its prompt's first token is the next to feed.
    void StartWindow();

    MixtralModel& m_model;
    std::vector<int> m_tokens;
    int m_promptTokens;
    int m_scoredTokens;
    KvCache m_cache;
    /// The unmodified top-k model's cache. While every pass of the current window has routed
    /// like top-k, the two caches hold the same keys and values and the reference pass is
    /// skipped; it is filled from the run's cache when the first pass that routes otherwise
    /// comes.
    KvCache m_referenceCache;
    bool m_referenceLags = true;
    std::unique_ptr<LayerStepper> m_pass;
    std::vector<int> m_passTokens;
    std::vector<float> m_reference;
    int m_lengthBeforePass = 0;
    int m_nextToken = 0; ///< index in m_tokens of the next token to feed (and to predict)
    int m_promptEnd = 0; ///< index in m_tokens just past the current window's prompt
    int m_scored = 0;
    int m_window = -1;
    bool m_prefill = false;
};

} // namespace llm
} // namespace wdmoe

#endif
