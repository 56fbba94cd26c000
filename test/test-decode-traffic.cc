// Weight bytes per decode token, against Mixtral 8x7B's shapes worked out by hand.
#include "decode-traffic.h"

#include <catch2/catch.hpp>

using namespace wdmoe::llm;

namespace
{

ModelConfig
Mixtral8x7b()
{
    ModelConfig c;
    c.vocabSize = 32000;
    c.hiddenSize = 4096;
    c.intermediateSize = 14336;
    c.numHiddenLayers = 32;
    c.numAttentionHeads = 32;
    c.numKeyValueHeads = 8;
    c.headDim = 128;
    c.numLocalExperts = 8;
    c.numExpertsPerTok = 2;
    return c;
}

} // namespace

TEST_CASE("decode traffic: Mixtral 8x7B in bf16 reads 25.5 GB per token", "[engine]")
{
    const DecodeTraffic t = DecodeTrafficPerToken(Mixtral8x7b(), 2, 2);
    // Per layer: q and o 4096 x 4096, k and v 1024 x 4096 = 41,943,040 elements; x 32 x 2 B.
    CHECK(t.attention == 2684354560ull);
    CHECK(t.router == 32ull * 8 * 4096 * 2); // 2,097,152
    // 2 experts x 3 matrices of 4096 x 14336 in each of 32 layers, 2 bytes each.
    CHECK(t.experts == 22548578304ull);
    CHECK(t.lmHead == 262144000ull);
    CHECK(t.embeddingRow == 8192ull);
    CHECK(t.Total() == 25497182208ull);
}

TEST_CASE("decode traffic: dense and expert widths scale their own terms only", "[engine]")
{
    const DecodeTraffic bf16 = DecodeTrafficPerToken(Mixtral8x7b(), 2, 2);
    const DecodeTraffic wideDense = DecodeTrafficPerToken(Mixtral8x7b(), 4, 2);
    CHECK(wideDense.attention == 2 * bf16.attention);
    CHECK(wideDense.router == 2 * bf16.router);
    CHECK(wideDense.lmHead == 2 * bf16.lmHead);
    CHECK(wideDense.embeddingRow == 2 * bf16.embeddingRow);
    CHECK(wideDense.experts == bf16.experts);
    ModelConfig top1 = Mixtral8x7b();
    top1.numExpertsPerTok = 1;
    CHECK(DecodeTrafficPerToken(top1, 2, 2).experts * 2 == bf16.experts);
}
