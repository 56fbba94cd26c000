// Measurements of a model's routing that policies are tuned with: AdapMoE's per-layer
// sensitivity calibration and a routing profile (single-expert rate, next-layer prediction
// accuracy) for the cache-slot allocation.
#ifndef WDMOE_LLM_CALIBRATION_H
#define WDMOE_LLM_CALIBRATION_H

#include "gating.h"

#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

class MixtralModel;

struct CalibrationOptions
{
    int window = 0;          ///< context window in tokens (0: max_position_embeddings)
    long long maxTokens = 0; ///< tokens to score at most (0: the whole text)
};

/// AdapMoE's calibration: the text is cut into non-overlapping windows (as EvaluateTokens);
/// for every layer l, each window is run again with expert 2 dropped at layer l alone (expert 1
/// kept with weight 1 for every token of the window), and dNLL is the per-token increase of the
/// NLL over the unmodified top-2 model. F_l = E[dNLL] / E[w2^2], with w2 the renormalised
/// second weight at layer l of the unmodified pass, averaged over the same tokens.
/// F_l = 0 where E[dNLL] <= 0. Requires a top-2 model (else std::invalid_argument naming
/// config.json). calibrationText is stored as given (a file name).
SensitivityTable CalibrateSensitivity(MixtralModel& model,
                                      const std::vector<int>& tokens,
                                      const std::string& calibrationText,
                                      const CalibrationOptions& options = CalibrationOptions());

/// Per-layer routing statistics of decode steps under a gating policy, measured with the
/// model alone (no network): the text is cut into windows of `window` tokens; each window
/// prefills its first promptTokens tokens, then decodes the rest one token at a time.
struct RoutingProfile
{
    long long decodeTokens = 0;
    /// per layer: share of decode token-layers that ran exactly one expert (r_l)
    std::vector<double> singleExpertRate;
    /// per layer: share of the experts run at layer l (decode) that the next-layer
    /// prediction made at layer l - 1 contained (a_l); a_0 = 0 (nothing predicts layer 0)
    std::vector<double> prefetchAccuracy;
    /// [layer][expert]: share of decode tokens that ran the expert
    std::vector<std::vector<double>> expertRate;
};

/// policy: the gating used while decoding (null: the model's top-k); prompts are prefilled
/// with the model's top-k and not counted. The prediction of layer l + 1 is
/// LayerStepper::PredictNextLayer's top-k (k = num_experts_per_tok) at layer l. window 0: the
/// model's context; 0 <= promptTokens < window (else std::invalid_argument); at most
/// maxDecodeTokens decode steps (0: no limit). Teacher-forced: the text's own tokens are
/// decoded.
RoutingProfile ProfileRouting(MixtralModel& model,
                              const std::vector<int>& tokens,
                              int window,
                              int promptTokens,
                              RoutingPolicy* policy = nullptr,
                              long long maxDecodeTokens = 0);

} // namespace llm
} // namespace wdmoe

#endif
