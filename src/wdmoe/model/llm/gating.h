// Gating rules that decide, per token and layer, how many of the router's experts run:
// Mixtral's top-k and AdapMoE's adaptive gating (DESIGN.md section 5).
#ifndef WDMOE_LLM_GATING_H
#define WDMOE_LLM_GATING_H

#include "routing.h"

#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

/// AdapMoE's rule on one token: take the top-2 experts with weights renormalised so that
/// w1 + w2 = 1 (ties to the lower index, as TopKDecision); when sensitivity * w2^2 is strictly
/// below threshold, run only expert 1 with weight 1. numExperts >= 2 (else
/// std::invalid_argument). A threshold of 0 never drops (sensitivity >= 0).
void AdaptiveDecision(const float* probs,
                      int numExperts,
                      double sensitivity,
                      double threshold,
                      RoutingDecision& decision);

/// Adaptive gating as a RoutingPolicy: AdaptiveDecision with the layer's sensitivity while
/// decoding (batchSize == 1); a prefill (batchSize > 1) keeps the model's top-k unless
/// applyToPrefill is set. The rule is defined for top-2 models: a model whose k is not 2 keeps
/// its top-k everywhere.
class AdaptiveGating : public RoutingPolicy
{
  public:
    /// sensitivity: one F_l per layer (finite, >= 0); threshold T (finite, >= 0). Other values
    /// are std::invalid_argument; Decide throws std::out_of_range for a layer without F_l.
    AdaptiveGating(std::vector<double> sensitivity, double threshold, bool applyToPrefill = false);
    void Decide(const RoutingRequest& request, RoutingDecision& decision) override;

  private:
    std::vector<double> m_sensitivity;
    double m_threshold;
    bool m_applyToPrefill;
};

/// A model's per-layer sensitivities, as `wdmoe calibrate` writes them to
/// <model dir>/sensitivity.json:
///
///   {"model": "kjv-moe", "calibration_text": "calibration.txt", "calibration_tokens": N,
///    "window": W, "layers": [{"layer": 0, "mean_delta_nll": .., "mean_second_weight_sq": ..,
///    "sensitivity": ..}, ...]}
///
/// "model" is the folder's name, written for people (Load ignores it).
struct SensitivityTable
{
    std::string calibrationText;     ///< file name of the calibration text (relative to the model)
    long long calibrationTokens = 0; ///< tokens whose NLL was measured
    int window = 0;                  ///< context window of the teacher-forced passes, tokens
    /// per layer: E[dNLL] (nats) when expert 2 is dropped there; may be slightly negative
    std::vector<double> meanDeltaNll;
    std::vector<double> meanSecondWeightSq; ///< per layer: E[w2^2] (renormalised top-2)
    /// per layer: F_l = max(E[dNLL], 0) / E[w2^2] (0 when E[w2^2] = 0)
    std::vector<double> sensitivity;

    /// Reads <modelDir>/sensitivity.json. Throws LoadError naming the file and the field for
    /// a missing file, malformed JSON, a missing field, a non-finite or negative F_l, or a
    /// layer count other than `layers`.
    static SensitivityTable Load(const std::string& modelDir, int layers);
    /// Writes <modelDir>/sensitivity.json atomically (temporary file in the same folder +
    /// rename). Throws std::runtime_error naming the file when it cannot be written.
    void Save(const std::string& modelDir) const;
};

} // namespace llm
} // namespace wdmoe

#endif
