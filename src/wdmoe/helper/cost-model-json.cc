#include "cost-model-json.h"

#include "json-config.h"

namespace ns3
{

CostModel
ReadCostModel(const JsonConfigReader& r)
{
    r.AllowOnly({"name",
                 "d_model",
                 "d_ff",
                 "layers",
                 "experts",
                 "top_k",
                 "heads",
                 "kv_heads",
                 "head_dim",
                 "vocab",
                 "weight_bytes_per_param",
                 "activation_bits",
                 "header_bytes"});
    const CostModel mixtral = CostModel::Mixtral8x7B();
    const long long big = 1LL << 30;
    for (const char* required : {"d_model", "d_ff"})
    {
        if (!r.Has(required))
        {
            r.Fail(required, "is required (a positive integer)");
        }
    }
    CostModel m;
    m.name = r.String("name", "custom");
    m.dModel = static_cast<int>(r.Integer("d_model", 0, 1, big));
    m.dFf = static_cast<int>(r.Integer("d_ff", 0, 1, big));
    m.layers = static_cast<int>(r.Integer("layers", mixtral.layers, 1, 1 << 20));
    m.experts = static_cast<int>(r.Integer("experts", mixtral.experts, 1, 1 << 20));
    m.topK = static_cast<int>(r.Integer("top_k", mixtral.topK, 1, m.experts));
    m.heads = static_cast<int>(r.Integer("heads", mixtral.heads, 1, 1 << 20));
    m.kvHeads = static_cast<int>(r.Integer("kv_heads", mixtral.kvHeads, 1, m.heads));
    if (m.heads % m.kvHeads != 0)
    {
        r.Fail("heads",
               "must be a multiple of kv_heads (" + std::to_string(m.kvHeads) + "), got " +
                   std::to_string(m.heads));
    }
    if (!r.Has("head_dim") && m.dModel % m.heads != 0)
    {
        r.Fail("head_dim",
               "is required when d_model (" + std::to_string(m.dModel) +
                   ") is not a multiple of heads (" + std::to_string(m.heads) + ")");
    }
    m.headDim = static_cast<int>(r.Integer("head_dim", m.dModel / m.heads, 1, big));
    m.vocab = static_cast<int>(r.Integer("vocab", mixtral.vocab, 1, big));
    m.weightBytesPerParam = r.Number("weight_bytes_per_param", 2, 0.0625, 8);
    m.activationBits = static_cast<int>(r.Integer("activation_bits", 16, 1, 64));
    m.headerBytes =
        static_cast<int>(r.Integer("header_bytes", CostModel::kDefaultHeaderBytes, 0, 1 << 20));
    m.Validate();
    return m;
}

nlohmann::json
CostModelJson(const CostModel& m)
{
    return {{"name", m.name},
            {"d_model", m.dModel},
            {"d_ff", m.dFf},
            {"layers", m.layers},
            {"experts", m.experts},
            {"top_k", m.topK},
            {"heads", m.heads},
            {"kv_heads", m.kvHeads},
            {"head_dim", m.headDim},
            {"vocab", m.vocab},
            {"weight_bytes_per_param", m.weightBytesPerParam},
            {"activation_bits", m.activationBits},
            {"header_bytes", m.headerBytes},
            {"expert_bytes", m.ExpertBytes()},
            {"expert_flops_per_token", m.ExpertFlopsPerToken()}};
}

} // namespace ns3
