// The fields of a Hugging Face MixtralConfig (config.json) that the engine uses.
#ifndef WDMOE_LLM_MODEL_CONFIG_H
#define WDMOE_LLM_MODEL_CONFIG_H

#include <string>

namespace wdmoe
{
namespace llm
{

struct ModelConfig
{
    std::string modelType = "mixtral";
    int vocabSize = 0;
    int hiddenSize = 0;       ///< d_model
    int intermediateSize = 0; ///< d_ff of one expert
    int numHiddenLayers = 0;
    int numAttentionHeads = 0;
    int numKeyValueHeads = 0; ///< defaults to numAttentionHeads when absent
    int headDim = 0;          ///< defaults to hiddenSize / numAttentionHeads when absent or null
    int numLocalExperts = 0;
    int numExpertsPerTok = 0; ///< top-k
    int maxPositionEmbeddings = 0;
    double rmsNormEps = 1e-5;
    double ropeTheta = 1e6;
    bool tieWordEmbeddings = false;
    /// Sliding-window attention span; 0 when null or absent (attend to the whole context). The
    /// engine attends to the whole window it is given, so a run's windows must not be longer.
    int slidingWindow = 0;
    std::string torchDtype; ///< as written, informational

    /// Reads and checks config.json (ReadJsonFile: no key twice, bounded depth): every required
    /// dimension present, an integer and > 0; heads divisible by kv heads; top-k in [1,
    /// experts]; eps > 0; theta in (1, 1e12]. Fields that would change the forward pass in ways
    /// the engine does not implement are refused by name: model_type other than "mixtral",
    /// hidden_act other than "silu", a non-null rope_scaling or quantization_config. Errors
    /// are wdmoe::llm::LoadError naming the file and the field.
    static ModelConfig Load(const std::string& configJsonPath);
};

} // namespace llm
} // namespace wdmoe

#endif
