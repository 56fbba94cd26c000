// The architecture whose costs are PRICED: expert weight bytes and FLOPs, hidden-state payload
// sizes, and the base station's attention + gate cost per layer. It may differ from the model
// that really runs and routes (DESIGN.md section 4, "Cost model vs computed model"): a scenario
// can route with the small embedded model and price every expert as a Mixtral-8x7B expert.
// This file knows nothing of the llm library (the simulator never touches matrices) nor of
// JSON (helper/cost-model-json.h reads and writes it).
#ifndef WDMOE_COST_MODEL_H
#define WDMOE_COST_MODEL_H

#include <string>
#include <utility>
#include <vector>

namespace ns3
{

struct ComputeProfile;

/// A Mixtral-style MoE architecture, as far as its costs go. Every cost is per layer.
struct CostModel
{
    /// Application header added to every hidden-state transfer: request, layer, token position,
    /// expert and length fields, rounded up (transport/IP overheads are the radio model's).
    static constexpr int kDefaultHeaderBytes = 64;

    std::string name;
    int dModel = 0;
    int dFf = 0; ///< expert hidden size
    int layers = 0;
    int experts = 0; ///< per layer
    int topK = 0;
    int heads = 0;   ///< query heads
    int kvHeads = 0; ///< key/value heads (grouped-query attention)
    int headDim = 0;
    int vocab = 0;
    double weightBytesPerParam = 2; ///< 2 for bf16/f16
    int activationBits = 16;        ///< hidden states on the air and in the KV cache
    int headerBytes = kDefaultHeaderBytes;

    /// One SwiGLU expert's weights: 3 * dModel * dFf * weightBytesPerParam (w1, w3, w2).
    double ExpertBytes() const;
    /// One expert's FLOPs per token: 2 * 3 * dModel * dFf (three matrix-vector products).
    double ExpertFlopsPerToken() const;
    /// Roofline time of one expert on `profile` for a batch of `tokens` tokens (>= 1): FLOPs
    /// scale with tokens, the weight bytes are read once per batch.
    double ExpertSeconds(const ComputeProfile& profile, int tokens) const;
    /// How many experts fit in the profile's memory: floor(memoryBytes / ExpertBytes()).
    long long ExpertSlots(const ComputeProfile& profile) const;

    /// Payload of one hidden-state transfer carrying `tokens` tokens (>= 1), in bits:
    /// tokens * dModel * activationBits + 8 * headerBytes.
    double HiddenStateBits(int tokens) const;

    /// FLOPs at the base station for one layer's attention and gate, for `tokens` new tokens
    /// (>= 1) with `context` (>= 0) tokens already in the KV cache:
    ///   projections  2 * tokens * dModel * (2 * heads * headDim + 2 * kvHeads * headDim)
    ///                (Q and O: dModel x heads*headDim each; K and V: dModel x kvHeads*headDim)
    ///   scores+values 4 * tokens * (context + tokens) * heads * headDim
    ///                (QK^T and PV, each 2 * headDim per query-key pair; the causal mask among
    ///                the new tokens is not discounted, an upper bound for prefill)
    ///   gate         2 * tokens * dModel * experts
    /// Norms, RoPE, softmax and residual adds are left out (O(tokens * dModel)).
    double AttentionGateFlops(int tokens, int context) const;
    /// Bytes read at the base station for the same work:
    ///   (dModel * (2 * heads * headDim + 2 * kvHeads * headDim) + dModel * experts)
    ///       * weightBytesPerParam                         projection and gate weights, once
    ///   + (context + tokens) * 2 * kvHeads * headDim * activationBits / 8     the KV cache
    double AttentionGateBytes(int tokens, int context) const;
    /// The projection and gate weights of one layer: the first term of AttentionGateBytes.
    double AttentionGateWeightBytes() const;
    /// One layer's keys and values of `tokens` tokens: tokens * 2 * kvHeads * headDim *
    /// activationBits / 8 (the second term of AttentionGateBytes).
    double LayerKvBytes(double tokens) const;
    /// The KV-cache bytes one token holds at the BS over every priced layer:
    /// layers * LayerKvBytes(1) (Mixtral-8x7B in 16 bits: 32 * 2 * 8 * 128 * 2 = 131,072).
    double KvBytesPerToken() const;
    /// Roofline time of AttentionGateFlops/Bytes on the base station's profile.
    double BsLayerSeconds(const ComputeProfile& bs, int tokens, int context) const;
    /// The same for a batch of passes (tokens, context) of different requests: their FLOPs and
    /// KV-cache reads add up, the weights are read once. One pass: exactly BsLayerSeconds.
    double BsBatchLayerSeconds(const ComputeProfile& bs,
                               const std::vector<std::pair<int, int>>& passes) const;
    /// The LM head for `tokens` tokens (not part of DESIGN.md's per-token sum; offered for
    /// callers that want it): roofline of 2 * tokens * dModel * vocab FLOPs over
    /// dModel * vocab * weightBytesPerParam bytes.
    double LmHeadSeconds(const ComputeProfile& bs, int tokens) const;

    /// Checks the dimensions (all positive, topK <= experts, heads a multiple of kvHeads);
    /// throws std::invalid_argument naming the model and the field.
    void Validate() const;

    /// Mistral AI's Mixtral-8x7B in bf16: d_model 4096, d_ff 14336, 32 layers, 8 experts,
    /// top-2, 32 heads, 8 KV heads, head_dim 128, vocab 32000. One expert is 352,321,536 bytes
    /// and 352,321,536 FLOPs per token.
    static CostModel Mixtral8x7B();
    /// The preset names FromPreset accepts ("mixtral-8x7b").
    static std::vector<std::string> PresetNames();
    /// A preset by name; an unknown name is std::invalid_argument listing the presets.
    static CostModel FromPreset(const std::string& preset);
    /// Any architecture; validated.
    static CostModel FromDimensions(const std::string& name,
                                    int dModel,
                                    int dFf,
                                    int layers,
                                    int experts,
                                    int topK,
                                    int heads,
                                    int kvHeads,
                                    int headDim,
                                    int vocab,
                                    double weightBytesPerParam = 2,
                                    int activationBits = 16,
                                    int headerBytes = kDefaultHeaderBytes);
};

} // namespace ns3

#endif
