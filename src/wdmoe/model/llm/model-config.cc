// config.json reading. Every dimension is checked here, once, so the engine can size its
// buffers and check tensor shapes without re-validating.
#include "model-config.h"

#include "json-input.h"

#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>

namespace wdmoe
{
namespace llm
{

namespace
{

using Json = nlohmann::json;

/// Reads the fields of one config object, naming the file and the field in every error.
class Reader
{
  public:
    Reader(const std::string& file, const Json& root)
        : m_file(file),
          m_root(root)
    {
    }

    /// The field, or nullptr when absent or null (HF writes null for "use the default").
    const Json* Find(const char* key) const
    {
        const auto it = m_root.find(key);
        if (it == m_root.end() || it->is_null())
        {
            return nullptr;
        }
        return &*it;
    }

    int RequiredPositiveInt(const char* key) const
    {
        const Json* j = Find(key);
        if (j == nullptr)
        {
            throw Fail(key, "is missing (expected a positive integer)");
        }
        return PositiveInt(key, *j);
    }

    int OptionalPositiveInt(const char* key, int fallback) const
    {
        const Json* j = Find(key);
        return j == nullptr ? fallback : PositiveInt(key, *j);
    }

    double OptionalPositiveNumber(const char* key, double fallback) const
    {
        const Json* j = Find(key);
        if (j == nullptr)
        {
            return fallback;
        }
        if (!j->is_number() || !(j->get<double>() > 0) || !std::isfinite(j->get<double>()))
        {
            throw Fail(key, "must be a positive number, got " + DescribeJson(*j));
        }
        return j->get<double>();
    }

    /// A field the engine implements for one value only: absent, null or that value.
    void OnlyValue(const char* key, const std::string& supported, const std::string& what) const
    {
        const Json* j = Find(key);
        if (j != nullptr && (!j->is_string() || j->get<std::string>() != supported))
        {
            throw Fail(key,
                       "is " + DescribeJson(*j) + ", but the engine implements " + what + " \"" +
                           supported + "\" only");
        }
    }

    /// A field the engine does not implement at all: absent or null only.
    void NullOnly(const char* key, const std::string& what) const
    {
        const Json* j = Find(key);
        if (j != nullptr)
        {
            throw Fail(key,
                       "is " + DescribeJson(*j) + ", but the engine does not implement " + what +
                           " (only null is accepted)");
        }
    }

    bool OptionalBool(const char* key, bool fallback) const
    {
        const Json* j = Find(key);
        if (j == nullptr)
        {
            return fallback;
        }
        if (!j->is_boolean())
        {
            throw Fail(key, "must be true or false, got " + DescribeJson(*j));
        }
        return j->get<bool>();
    }

    std::string OptionalString(const char* key, const std::string& fallback) const
    {
        const Json* j = Find(key);
        if (j == nullptr)
        {
            return fallback;
        }
        if (!j->is_string())
        {
            throw Fail(key, "must be a string, got " + DescribeJson(*j));
        }
        return j->get<std::string>();
    }

    LoadError Fail(const char* key, const std::string& problem) const
    {
        return LoadError(m_file, std::string("field \"") + key + "\" " + problem);
    }

  private:
    int PositiveInt(const char* key, const Json& j) const
    {
        // Integers only: 4096.0 in a config is a bug in whatever wrote it.
        if (j.is_number_unsigned())
        {
            const auto v = j.get<std::uint64_t>();
            if (v == 0)
            {
                throw Fail(key, "must be a positive integer, got 0");
            }
            if (v > static_cast<std::uint64_t>(INT_MAX))
            {
                throw Fail(key, "is too large, got " + DescribeJson(j));
            }
            return static_cast<int>(v);
        }
        // nlohmann stores every non-negative integer as unsigned: what is left is negative,
        // fractional or not a number at all.
        throw Fail(key, "must be a positive integer, got " + DescribeJson(j));
    }

    std::string m_file;
    const Json& m_root;
};

/// The fields that change the forward pass beyond the dimensions: what the engine does not
/// implement is refused by name rather than ignored (a gelu model would score as if silu).
void
ReadArchitecture(const Reader& r, ModelConfig& c)
{
    r.OnlyValue("model_type", "mixtral", "the architecture");
    r.OnlyValue("hidden_act", "silu", "the expert activation");
    r.NullOnly("rope_scaling", "RoPE scaling");
    r.NullOnly("quantization_config", "quantized weights");
    c.slidingWindow = r.OptionalPositiveInt("sliding_window", 0);
    c.rmsNormEps = r.OptionalPositiveNumber("rms_norm_eps", c.rmsNormEps);
    c.ropeTheta = r.OptionalPositiveNumber("rope_theta", c.ropeTheta);
    // theta^(-2i/d) are the rotation frequencies: a base at or below 1 makes them grow with i,
    // and 1e-300 overflows them to infinity (NaN logits).
    if (!(c.ropeTheta > 1 && c.ropeTheta <= 1e12))
    {
        throw r.Fail("rope_theta",
                     "must be a number in (1, 1e12] (RoPE's base; Mixtral uses 1e6), got " +
                         DescribeJson(*r.Find("rope_theta")));
    }
}

} // namespace

ModelConfig
ModelConfig::Load(const std::string& configJsonPath)
{
    const Json root = ReadJsonFile(configJsonPath);
    if (!root.is_object())
    {
        throw LoadError(configJsonPath, "must be a JSON object, got " + DescribeJson(root));
    }

    const Reader r(configJsonPath, root);
    ModelConfig c;
    ReadArchitecture(r, c);
    c.modelType = r.OptionalString("model_type", c.modelType);
    c.vocabSize = r.RequiredPositiveInt("vocab_size");
    c.hiddenSize = r.RequiredPositiveInt("hidden_size");
    c.intermediateSize = r.RequiredPositiveInt("intermediate_size");
    c.numHiddenLayers = r.RequiredPositiveInt("num_hidden_layers");
    c.numAttentionHeads = r.RequiredPositiveInt("num_attention_heads");
    c.numKeyValueHeads = r.OptionalPositiveInt("num_key_value_heads", c.numAttentionHeads);
    c.numLocalExperts = r.RequiredPositiveInt("num_local_experts");
    c.numExpertsPerTok = r.RequiredPositiveInt("num_experts_per_tok");
    c.maxPositionEmbeddings = r.RequiredPositiveInt("max_position_embeddings");
    c.tieWordEmbeddings = r.OptionalBool("tie_word_embeddings", c.tieWordEmbeddings);
    c.torchDtype = r.OptionalString("torch_dtype", "");

    if (r.Find("head_dim") != nullptr)
    {
        // Explicit head_dim need not divide hidden_size (HF allows heads * head_dim != d_model).
        c.headDim = r.OptionalPositiveInt("head_dim", 0);
    }
    else
    {
        if (c.hiddenSize % c.numAttentionHeads != 0)
        {
            throw r.Fail("hidden_size",
                         "(" + std::to_string(c.hiddenSize) +
                             ") must be divisible by num_attention_heads (" +
                             std::to_string(c.numAttentionHeads) + ") when head_dim is not given");
        }
        c.headDim = c.hiddenSize / c.numAttentionHeads;
    }
    if (c.numAttentionHeads % c.numKeyValueHeads != 0)
    {
        // Grouped-query attention shares each kv head among a whole number of query heads.
        throw r.Fail("num_attention_heads",
                     "(" + std::to_string(c.numAttentionHeads) +
                         ") must be divisible by num_key_value_heads (" +
                         std::to_string(c.numKeyValueHeads) + ")");
    }
    if (c.numExpertsPerTok > c.numLocalExperts)
    {
        throw r.Fail("num_experts_per_tok",
                     "(" + std::to_string(c.numExpertsPerTok) +
                         ") must not exceed num_local_experts (" +
                         std::to_string(c.numLocalExperts) + ")");
    }
    if (c.headDim % 2 != 0)
    {
        // RoPE rotates pairs of dimensions.
        throw r.Fail("head_dim",
                     "must be even for rotary embeddings, got " + std::to_string(c.headDim));
    }
    return c;
}

} // namespace llm
} // namespace wdmoe
