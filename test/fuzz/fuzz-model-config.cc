// Fuzz target: a model's config.json. Every input must either load (with the dimensions the
// engine relies on: positive, heads divisible by kv heads, top-k within the experts, an even
// head_dim) or fail with a LoadError.
#include "fuzz-sandbox.h"
#include "load-error.h"
#include "model-config.h"

#include <cstdlib>

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("config.json", data, size);
    try
    {
        const wdmoe::llm::ModelConfig c = wdmoe::llm::ModelConfig::Load(path);
        const bool sane = c.vocabSize > 0 && c.hiddenSize > 0 && c.intermediateSize > 0 &&
                          c.numHiddenLayers > 0 && c.numKeyValueHeads > 0 &&
                          c.numAttentionHeads % c.numKeyValueHeads == 0 &&
                          c.numExpertsPerTok >= 1 && c.numExpertsPerTok <= c.numLocalExperts &&
                          c.headDim > 0 && c.headDim % 2 == 0 && c.ropeTheta > 1 &&
                          c.rmsNormEps > 0 && c.slidingWindow >= 0;
        if (!sane)
        {
            wdmoe::fuzz::Unexpected("model-config",
                                    "a config that breaks the checked invariants loaded");
        }
    }
    catch (const wdmoe::llm::LoadError&)
    {
    }
    catch (const std::exception& e)
    {
        wdmoe::fuzz::Unexpected("model-config", e.what());
    }
    return 0;
}
