#include "teacher-forced-stream.h"

#include "token-scoring.h"

#include <algorithm>
#include <stdexcept>

namespace wdmoe
{
namespace llm
{

std::string
PromptContextError(int promptTokens, int context)
{
    if (promptTokens < context)
    {
        return "";
    }
    return "must be below the model's context of " + std::to_string(context) + " tokens, got " +
           std::to_string(promptTokens);
}

namespace
{

/// The caches hold what the first window feeds (the prompt, then one token per further scored
/// token) or a context's worth when the text needs more windows: a short run of a long-context
/// model allocates no cache of the whole context. Checks the workload first.
int
CacheCapacity(const MixtralModel& model, std::size_t textTokens, int promptTokens, int scoredTokens)
{
    if (promptTokens < 1 || scoredTokens < 1 ||
        std::size_t(promptTokens) + std::size_t(scoredTokens) > textTokens)
    {
        throw std::invalid_argument(
            "the workload needs prompt_tokens + scored_tokens <= the text's tokens (" +
            std::to_string(promptTokens) + " + " + std::to_string(scoredTokens) + " > " +
            std::to_string(textTokens) + ")");
    }
    const int context = model.Config().maxPositionEmbeddings;
    const std::string error = PromptContextError(promptTokens, context);
    if (!error.empty())
    {
        throw std::invalid_argument("prompt_tokens " + error);
    }
    return int(std::min<long long>(context, (long long)promptTokens + scoredTokens));
}

} // namespace

TeacherForcedStream::TeacherForcedStream(MixtralModel& model,
                                         std::vector<int> tokens,
                                         int promptTokens,
                                         int scoredTokens)
    : m_model(model),
      m_tokens(std::move(tokens)),
      m_promptTokens(promptTokens),
      m_scoredTokens(scoredTokens),
      m_cache(model.NewCache(CacheCapacity(model, m_tokens.size(), promptTokens, scoredTokens))),
      m_referenceCache(model.NewCache(m_cache.Capacity()))
{
}

TeacherForcedStream::~TeacherForcedStream() = default;

int
TeacherForcedStream::NextPassPrefillTokens() const
{
    if (m_nextToken < m_promptEnd)
    {
        return m_promptEnd - m_nextToken; // a chunked prefill goes on
    }
    return m_window < 0 || m_cache.Length() >= m_cache.Capacity() ? m_promptTokens : 0;
}

void
TeacherForcedStream::StartWindow()
{
    // The first window starts at the text's beginning; a later one re-reads the last
    // promptTokens - 1 tokens fed and feeds the next token with them.
    const int begin = m_window < 0 ? 0 : m_nextToken - m_promptTokens + 1;
    ++m_window;
    m_cache.Clear();
    m_referenceCache.Clear();
    m_referenceLags = true;
    m_nextToken = begin;
    m_promptEnd = begin + m_promptTokens;
}

LayerStepper&
TeacherForcedStream::StartPass(int maxPrefillTokens)
{
    if (maxPrefillTokens < 1)
    {
        throw std::invalid_argument("a prefill chunk needs at least one token");
    }
    m_passTokens.clear();
    m_prefill = NextPassPrefillTokens() > 0;
    if (m_prefill && m_nextToken >= m_promptEnd)
    {
        StartWindow();
    }
    const int fed = m_prefill ? std::min(maxPrefillTokens, m_promptEnd - m_nextToken) : 1;
    // Teacher forcing: the true tokens.
    m_passTokens.assign(m_tokens.begin() + m_nextToken, m_tokens.begin() + m_nextToken + fed);
    m_nextToken += fed;
    m_lengthBeforePass = m_cache.Length();
    m_pass = std::make_unique<LayerStepper>(m_model,
                                            m_cache,
                                            m_passTokens.data(),
                                            int(m_passTokens.size()));
    return *m_pass;
}

bool
TeacherForcedStream::RoutesLikeTopK(const std::vector<RoutingDecision>& decisions) const
{
    RoutingDecision topK;
    for (std::size_t i = 0; i < decisions.size(); ++i)
    {
        const RoutingRequest request = m_pass->Request(int(i));
        TopKDecision(request.gateProbs, request.numExperts, request.topK, topK);
        if (decisions[i].experts != topK.experts || decisions[i].weights != topK.weights)
        {
            return false;
        }
    }
    return true;
}

std::vector<int>
TeacherForcedStream::PredictNextLayerExperts() const
{
    const int experts = m_model.Config().numLocalExperts;
    std::vector<float> probs(experts);
    m_pass->PredictNextLayer(0, probs.data());
    RoutingDecision predicted;
    TopKDecision(probs.data(), experts, m_model.Config().numExpertsPerTok, predicted);
    return predicted.experts;
}

const float*
TeacherForcedStream::ReferenceLogits(const float* logits, bool routedLikeTopK)
{
    // A pass that routed like top-k on a cache that holds what the top-k model's would is the
    // top-k model's pass: its logits are the reference's, bit for bit.
    if (m_referenceLags && routedLikeTopK)
    {
        return logits;
    }
    const bool wanted = logits != nullptr;
    if (m_referenceLags)
    {
        // The first pass of this window to route otherwise: until it, the run's cache held the
        // top-k model's keys and values.
        m_referenceCache = m_cache;
        m_referenceCache.Truncate(m_lengthBeforePass);
        m_referenceLags = false;
    }
    m_reference.resize(wanted ? m_passTokens.size() * std::size_t(m_model.Config().vocabSize) : 0);
    m_model.Forward(m_referenceCache,
                    m_passTokens.data(),
                    int(m_passTokens.size()),
                    wanted ? m_reference.data() : nullptr);
    return wanted ? m_reference.data() : nullptr;
}

PassScore
TeacherForcedStream::FinishPass(bool routedLikeTopK)
{
    if (!PassPredicts())
    {
        // A chunk of a prefill: its keys and values are cached (the reference's too), no LM head.
        m_pass.reset();
        ReferenceLogits(nullptr, routedLikeTopK);
        return PassScore();
    }
    const int vocab = m_model.Config().vocabSize;
    const std::size_t n = m_passTokens.size();
    std::vector<float> logits(n * vocab);
    m_pass->Logits(logits.data());
    m_pass.reset();
    const float* reference = ReferenceLogits(logits.data(), routedLikeTopK);
    const float* last = &logits[(n - 1) * vocab];
    const float* referenceLast = &reference[(n - 1) * vocab];
    PassScore score;
    score.nll = NegativeLogLikelihood(last, vocab, m_tokens[m_nextToken]);
    score.kl = KlDivergence(referenceLast, last, vocab);
    score.agreesWithTopK = ArgMax(last, vocab) == ArgMax(referenceLast, vocab);
    ++m_scored;
    return score;
}

bool
TeacherForcedStream::Finished() const
{
    return m_scored >= m_scoredTokens || m_nextToken + 1 >= int(m_tokens.size());
}

} // namespace llm
} // namespace wdmoe
