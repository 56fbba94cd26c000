// A tiny random Mixtral checkpoint written by tests, in either tensor layout.
#ifndef WDMOE_TEST_TINY_MODEL_H
#define WDMOE_TEST_TINY_MODEL_H

#include "dtype.h"
#include "safetensors-writer.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace wdmoe
{
namespace test
{

using llm::DType;

struct TinyModel
{
    int vocab = 40, d = 24, ff = 20, layers = 2, heads = 4, kvHeads = 2, experts = 4, topK = 2;
    int context = 32;

    int headDim() const { return d / heads; }

    std::map<std::string, std::vector<float>> weights; ///< classic names
    std::map<std::string, std::vector<std::int64_t>> shapes;

    explicit TinyModel(unsigned seed, int layerCount = 2, int vocabSize = 40)
        : vocab(vocabSize),
          layers(layerCount)
    {
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal(0.0f, 0.3f);
        auto add = [&](const std::string& name, std::vector<std::int64_t> shape, bool ones) {
            std::int64_t n = 1;
            for (auto s : shape)
            {
                n *= s;
            }
            std::vector<float> v(n);
            for (auto& x : v)
            {
                x = ones ? 1.0f + 0.1f * normal(rng) : normal(rng);
            }
            weights[name] = v;
            shapes[name] = shape;
        };
        add("model.embed_tokens.weight", {vocab, d}, false);
        add("model.norm.weight", {d}, true);
        add("lm_head.weight", {vocab, d}, false);
        for (int l = 0; l < layers; ++l)
        {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            add(p + "input_layernorm.weight", {d}, true);
            add(p + "post_attention_layernorm.weight", {d}, true);
            add(p + "self_attn.q_proj.weight", {heads * headDim(), d}, false);
            add(p + "self_attn.k_proj.weight", {kvHeads * headDim(), d}, false);
            add(p + "self_attn.v_proj.weight", {kvHeads * headDim(), d}, false);
            add(p + "self_attn.o_proj.weight", {d, heads * headDim()}, false);
            add(p + "block_sparse_moe.gate.weight", {experts, d}, false);
            for (int e = 0; e < experts; ++e)
            {
                const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
                add(q + "w1.weight", {ff, d}, false);
                add(q + "w3.weight", {ff, d}, false);
                add(q + "w2.weight", {d, ff}, false);
            }
        }
    }

    nlohmann::json Config() const
    {
        return {{"architectures", {"MixtralForCausalLM"}},
                {"model_type", "mixtral"},
                {"vocab_size", vocab},
                {"hidden_size", d},
                {"intermediate_size", ff},
                {"num_hidden_layers", layers},
                {"num_attention_heads", heads},
                {"num_key_value_heads", kvHeads},
                {"num_local_experts", experts},
                {"num_experts_per_tok", topK},
                {"max_position_embeddings", context},
                {"rms_norm_eps", 1e-5},
                {"rope_theta", 10000.0},
                {"tie_word_embeddings", false}};
    }

    std::vector<TestTensor> Classic(DType dtype) const
    {
        std::vector<TestTensor> out;
        for (const auto& [name, v] : weights)
        {
            out.push_back(MakeTensor(name, dtype, shapes.at(name), v));
        }
        return out;
    }

    /// transformers 5's layout: mlp.gate, and experts packed as gate_up_proj [E][2ff][d]
    /// (gate rows, then up rows) and down_proj [E][d][ff].
    std::vector<TestTensor> Packed(DType dtype) const
    {
        std::vector<TestTensor> out;
        for (const auto& [name, v] : weights)
        {
            if (name.find("block_sparse_moe") == std::string::npos)
            {
                out.push_back(MakeTensor(name, dtype, shapes.at(name), v));
            }
        }
        for (int l = 0; l < layers; ++l)
        {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            out.push_back(MakeTensor(p + "mlp.gate.weight",
                                     dtype,
                                     {experts, d},
                                     weights.at(p + "block_sparse_moe.gate.weight")));
            std::vector<float> gateUp, down;
            for (int e = 0; e < experts; ++e)
            {
                const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
                for (const char* w : {"w1.weight", "w3.weight"})
                {
                    const auto& m = weights.at(q + w);
                    gateUp.insert(gateUp.end(), m.begin(), m.end());
                }
                const auto& m = weights.at(q + "w2.weight");
                down.insert(down.end(), m.begin(), m.end());
            }
            out.push_back(
                MakeTensor(p + "mlp.experts.gate_up_proj", dtype, {experts, 2 * ff, d}, gateUp));
            out.push_back(MakeTensor(p + "mlp.experts.down_proj", dtype, {experts, d, ff}, down));
        }
        return out;
    }
};

inline void
WriteModel(const TempDir& dir, const nlohmann::json& config, const std::vector<TestTensor>& t)
{
    WriteFile(dir.File("config.json"), config.dump(2));
    WriteSafetensors(dir.File("model.safetensors"), t);
}

} // namespace test
} // namespace wdmoe

#endif
