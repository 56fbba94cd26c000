// The seam between the MoE model and whoever decides which experts run (DESIGN.md section 2).
#ifndef WDMOE_LLM_ROUTING_H
#define WDMOE_LLM_ROUTING_H

#include <vector>

namespace wdmoe
{
namespace llm
{

/// What the MoE layer knows when it asks which experts to run for one token.
struct RoutingRequest
{
    int layer = 0;
    int position = 0;   ///< position of the token in its sequence
    int batchIndex = 0; ///< index of the token inside the current Forward() call
    int batchSize = 1;  ///< tokens in the current Forward() call (1 = decode)
    int topK = 2;       ///< the model's own k (num_experts_per_tok)
    int numExperts = 0;
    const float* gateProbs = nullptr; ///< softmax of the router logits, numExperts values
    int dModel = 0;
    const float* hidden = nullptr; ///< the MoE input (after post_attention_layernorm)
};

/// The experts to run and the weight of each output in the residual sum. Weights are used
/// exactly as given: a policy that drops an expert renormalises itself if it wants to. An
/// empty decision is valid: the layer then adds nothing to the residual stream.
struct RoutingDecision
{
    std::vector<int> experts;
    std::vector<float> weights;

    void Clear()
    {
        experts.clear();
        weights.clear();
    }
};

/// Answers the MoE layer's question. Called once per token per layer, in layer order and,
/// within a layer, in token order.
class RoutingPolicy
{
  public:
    virtual ~RoutingPolicy() = default;
    virtual void Decide(const RoutingRequest& request, RoutingDecision& decision) = 0;
};

/// Mixtral's rule: the k most probable experts (ties to the lower index), weights
/// renormalised to sum to one.
void TopKDecision(const float* probs, int numExperts, int k, RoutingDecision& decision);

/// The model's own routing: TopKDecision with the model's k.
class TopKRouting : public RoutingPolicy
{
  public:
    void Decide(const RoutingRequest& request, RoutingDecision& decision) override;
};

/// Checks a decision against the layer: expert ids in [0, numExperts), no duplicates, one
/// finite weight per expert. Throws std::invalid_argument naming the layer and the problem.
void ValidateDecision(const RoutingDecision& decision, int numExperts, int layer);

} // namespace llm
} // namespace wdmoe

#endif
