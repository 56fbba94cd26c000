#include "cost-model.h"

#include "compute-profile.h"

#include <cmath>
#include <stdexcept>

namespace ns3
{

namespace
{

void
CheckTokens(int tokens, int context = 0)
{
    if (tokens < 1 || context < 0)
    {
        throw std::invalid_argument("CostModel: tokens must be >= 1 and context >= 0 (got " +
                                    std::to_string(tokens) + ", " + std::to_string(context) + ")");
    }
}

} // namespace

double
CostModel::ExpertBytes() const
{
    return 3.0 * dModel * dFf * weightBytesPerParam;
}

double
CostModel::ExpertFlopsPerToken() const
{
    return 2.0 * 3.0 * dModel * dFf;
}

double
CostModel::ExpertSeconds(const ComputeProfile& profile, int tokens) const
{
    CheckTokens(tokens);
    return profile.RooflineSeconds(tokens * ExpertFlopsPerToken(), ExpertBytes());
}

long long
CostModel::ExpertSlots(const ComputeProfile& profile) const
{
    return static_cast<long long>(std::floor(profile.memoryBytes / ExpertBytes()));
}

double
CostModel::HiddenStateBits(int tokens) const
{
    CheckTokens(tokens);
    return static_cast<double>(tokens) * dModel * activationBits + 8.0 * headerBytes;
}

double
CostModel::AttentionGateFlops(int tokens, int context) const
{
    CheckTokens(tokens, context);
    const double t = tokens;
    const double projection = 2.0 * t * dModel * (2.0 * heads * headDim + 2.0 * kvHeads * headDim);
    const double scoresValues = 4.0 * t * (static_cast<double>(context) + t) * heads * headDim;
    const double gate = 2.0 * t * dModel * experts;
    return projection + scoresValues + gate;
}

double
CostModel::AttentionGateBytes(int tokens, int context) const
{
    CheckTokens(tokens, context);
    return AttentionGateWeightBytes() + LayerKvBytes(static_cast<double>(context) + tokens);
}

double
CostModel::AttentionGateWeightBytes() const
{
    return (static_cast<double>(dModel) * (2.0 * heads * headDim + 2.0 * kvHeads * headDim) +
            static_cast<double>(dModel) * experts) *
           weightBytesPerParam;
}

double
CostModel::LayerKvBytes(double tokens) const
{
    return tokens * 2.0 * kvHeads * headDim * activationBits / 8.0;
}

double
CostModel::KvBytesPerToken() const
{
    return layers * LayerKvBytes(1);
}

double
CostModel::BsBatchLayerSeconds(const ComputeProfile& bs,
                               const std::vector<std::pair<int, int>>& passes) const
{
    // Weights read once for the batch; FLOPs and each pass's KV cache reads add up. One pass:
    // 0 + x is x, so the sums are BsLayerSeconds's terms bit for bit.
    double flops = 0;
    double kvCache = 0;
    for (const auto& [tokens, context] : passes)
    {
        CheckTokens(tokens, context);
        flops += AttentionGateFlops(tokens, context);
        kvCache += LayerKvBytes(static_cast<double>(context) + tokens);
    }
    return bs.RooflineSeconds(flops, AttentionGateWeightBytes() + kvCache);
}

double
CostModel::BsLayerSeconds(const ComputeProfile& bs, int tokens, int context) const
{
    return bs.RooflineSeconds(AttentionGateFlops(tokens, context),
                              AttentionGateBytes(tokens, context));
}

double
CostModel::LmHeadSeconds(const ComputeProfile& bs, int tokens) const
{
    CheckTokens(tokens);
    return bs.RooflineSeconds(2.0 * tokens * dModel * vocab,
                              static_cast<double>(dModel) * vocab * weightBytesPerParam);
}

void
CostModel::Validate() const
{
    auto fail = [this](const std::string& field, const std::string& problem) {
        throw std::invalid_argument("cost model \"" + name + "\": " + field + " " + problem);
    };
    const std::pair<const char*, int> positive[] = {{"d_model", dModel},
                                                    {"d_ff", dFf},
                                                    {"layers", layers},
                                                    {"experts", experts},
                                                    {"top_k", topK},
                                                    {"heads", heads},
                                                    {"kv_heads", kvHeads},
                                                    {"head_dim", headDim},
                                                    {"vocab", vocab},
                                                    {"activation_bits", activationBits}};
    for (const auto& [field, value] : positive)
    {
        if (value < 1)
        {
            fail(field, "must be >= 1, got " + std::to_string(value));
        }
    }
    if (!(weightBytesPerParam > 0) || !std::isfinite(weightBytesPerParam))
    {
        fail("weight_bytes_per_param", "must be > 0");
    }
    if (headerBytes < 0)
    {
        fail("header_bytes", "must be >= 0, got " + std::to_string(headerBytes));
    }
    if (topK > experts)
    {
        fail("top_k",
             "must be <= experts (" + std::to_string(experts) + "), got " + std::to_string(topK));
    }
    if (heads % kvHeads != 0)
    {
        fail("heads",
             "must be a multiple of kv_heads (" + std::to_string(kvHeads) + "), got " +
                 std::to_string(heads));
    }
}

CostModel
CostModel::FromDimensions(const std::string& name,
                          int dModel,
                          int dFf,
                          int layers,
                          int experts,
                          int topK,
                          int heads,
                          int kvHeads,
                          int headDim,
                          int vocab,
                          double weightBytesPerParam,
                          int activationBits,
                          int headerBytes)
{
    CostModel m;
    m.name = name;
    m.dModel = dModel;
    m.dFf = dFf;
    m.layers = layers;
    m.experts = experts;
    m.topK = topK;
    m.heads = heads;
    m.kvHeads = kvHeads;
    m.headDim = headDim;
    m.vocab = vocab;
    m.weightBytesPerParam = weightBytesPerParam;
    m.activationBits = activationBits;
    m.headerBytes = headerBytes;
    m.Validate();
    return m;
}

CostModel
CostModel::Mixtral8x7B()
{
    return FromDimensions("mixtral-8x7b", 4096, 14336, 32, 8, 2, 32, 8, 128, 32000, 2.0, 16);
}

std::vector<std::string>
CostModel::PresetNames()
{
    return {"mixtral-8x7b"};
}

CostModel
CostModel::FromPreset(const std::string& preset)
{
    if (preset == "mixtral-8x7b")
    {
        return Mixtral8x7B();
    }
    std::string list;
    for (const auto& n : PresetNames())
    {
        list += (list.empty() ? "" : ", ") + n;
    }
    throw std::invalid_argument("unknown cost model preset \"" + preset + "\" (available: " + list +
                                ")");
}

} // namespace ns3
