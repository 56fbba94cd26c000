// The weight bytes one decode token reads at batch 1: what bounds decode speed on a CPU, where
// every weight matrix the token touches streams from memory once.
#ifndef WDMOE_LLM_DECODE_TRAFFIC_H
#define WDMOE_LLM_DECODE_TRAFFIC_H

#include "model-config.h"

#include <cstddef>
#include <cstdint>

namespace wdmoe
{
namespace llm
{

/// Bytes of weights read by one token, by kind. Norm weights (a few d_model vectors) are left
/// out: they are a rounding error next to any matrix.
struct DecodeTraffic
{
    std::uint64_t attention = 0;    ///< q, k, v and o projections of every layer
    std::uint64_t router = 0;       ///< every layer's gate [experts][d_model]
    std::uint64_t experts = 0;      ///< w1, w3 and w2 of top-k experts in every layer
    std::uint64_t lmHead = 0;       ///< [vocab][d_model]
    std::uint64_t embeddingRow = 0; ///< the token's row of the embedding table

    std::uint64_t Total() const { return attention + router + experts + lmHead + embeddingRow; }
};

/// One token through the model's own top-k (num_experts_per_tok experts in every layer), with
/// the dense weights (attention, router, LM head, embedding) held at denseBytes per element and
/// the expert matrices at expertBytes per element.
DecodeTraffic DecodeTrafficPerToken(const ModelConfig& config,
                                    std::size_t denseBytes,
                                    std::size_t expertBytes);

} // namespace llm
} // namespace wdmoe

#endif
