#include "decode-traffic.h"

namespace wdmoe
{
namespace llm
{

DecodeTraffic
DecodeTrafficPerToken(const ModelConfig& c, std::size_t denseBytes, std::size_t expertBytes)
{
    const std::uint64_t d = std::uint64_t(c.hiddenSize);
    const std::uint64_t layers = std::uint64_t(c.numHiddenLayers);
    const std::uint64_t qWidth = std::uint64_t(c.numAttentionHeads) * c.headDim;
    const std::uint64_t kvWidth = std::uint64_t(c.numKeyValueHeads) * c.headDim;
    DecodeTraffic t;
    // q [qWidth][d], k and v [kvWidth][d], o [d][qWidth].
    t.attention = layers * (2 * qWidth * d + 2 * kvWidth * d) * denseBytes;
    t.router = layers * std::uint64_t(c.numLocalExperts) * d * denseBytes;
    t.experts = layers * std::uint64_t(c.numExpertsPerTok) * 3 * d *
                std::uint64_t(c.intermediateSize) * expertBytes;
    t.lmHead = std::uint64_t(c.vocabSize) * d * denseBytes;
    t.embeddingRow = d * denseBytes;
    return t;
}

} // namespace llm
} // namespace wdmoe
