// Private to expert-kernel.cc, expert-kernel-avx2.cc and expert-kernel-avx512.cc: the per-ISA
// row-range kernels that the threaded driver in expert-kernel.cc hands chunks of rows to.
#ifndef WDMOE_LLM_EXPERT_KERNEL_IMPL_H
#define WDMOE_LLM_EXPERT_KERNEL_IMPL_H

#include "expert-kernel.h"

namespace wdmoe
{
namespace llm
{
namespace detail
{

// All kernels take weights whose row strides are already resolved (non-zero) and n >= 1 tokens.
// X and Y are [n][dModel], H is [n][dFf], all row-major and densely packed.

/// Phase 1 for rows [rowBegin, rowEnd) of w1 and w3:
/// H[t][r] = silu(w1[r] . X[t]) * (w3[r] . X[t]).
using GateUpRowsFn =
    void (*)(const ExpertWeights& w, const float* X, int n, int rowBegin, int rowEnd, float* H);
/// Phase 2 for rows [rowBegin, rowEnd) of w2: Y[t][i] = w2[i] . H[t].
using DownRowsFn =
    void (*)(const ExpertWeights& w, const float* H, int n, int rowBegin, int rowEnd, float* Y);

void GateUpRowsScalar(const ExpertWeights& w,
                      const float* X,
                      int n,
                      int rowBegin,
                      int rowEnd,
                      float* H);
void DownRowsScalar(const ExpertWeights& w,
                    const float* H,
                    int n,
                    int rowBegin,
                    int rowEnd,
                    float* Y);

#if defined(__x86_64__) || defined(__i386__)
#define WDMOE_LLM_HAVE_AVX2_KERNEL 1
// Defined in expert-kernel-avx2.cc; call only when CpuSupportsAvx2() is true. When
// PairSplitBlock(KernelIsa::Avx2, w.dtype) is not 0, X must be in pair-split order of that
// block and H is written and read in it; Y is always in natural order.
void GateUpRowsAvx2(const ExpertWeights& w,
                    const float* X,
                    int n,
                    int rowBegin,
                    int rowEnd,
                    float* H);
void DownRowsAvx2(const ExpertWeights& w,
                  const float* H,
                  int n,
                  int rowBegin,
                  int rowEnd,
                  float* Y);
// Defined in expert-kernel-avx512.cc; call only when CpuSupportsAvx512() is true. Pair-split
// as for AVX2, with the block PairSplitBlock(KernelIsa::Avx512, w.dtype).
void GateUpRowsAvx512(const ExpertWeights& w,
                      const float* X,
                      int n,
                      int rowBegin,
                      int rowEnd,
                      float* H);
void DownRowsAvx512(const ExpertWeights& w,
                    const float* H,
                    int n,
                    int rowBegin,
                    int rowEnd,
                    float* Y);
#endif

/// The AVX2 and AVX-512 bf16 kernels widen a vector's worth of weights at a time into their
/// even- and odd-indexed halves with one shift and one mask (no shuffles: widening is what
/// limits a single core once the data streams well), so they want every activation vector (X,
/// and H between the phases) in the matching "pair-split" order: within each full block of
/// `block` elements (16 for AVX2, 32 for AVX-512: two vectors of f32), the even-indexed
/// elements, then the odd-indexed ones; a tail shorter than a block stays in natural order.
/// Returns the block for an ISA and dtype, 0 where the kernels use natural order.
constexpr int
PairSplitBlock(KernelIsa isa, DType t)
{
    if (t != DType::BF16)
    {
        return 0;
    }
    return isa == KernelIsa::Avx2 ? 16 : (isa == KernelIsa::Avx512 ? 32 : 0);
}

/// Where element i of a vector of the given length sits in pair-split order of that block.
inline int
PairSplitIndex(int i, int length, int block)
{
    const int fullBlocks = length / block * block;
    if (i >= fullBlocks)
    {
        return i;
    }
    const int lane = i % block;
    return (i - lane) + (lane & 1) * (block / 2) + (lane >> 1);
}

/// Copies src (length floats) into dst in pair-split order of the given block.
inline void
PairSplit(const float* src, int length, int block, float* dst)
{
    for (int i = 0; i < length; ++i)
    {
        dst[PairSplitIndex(i, length, block)] = src[i];
    }
}

/// silu(g) * u, shared by every kernel so they agree on the activation. g / (1 + e^-g) rather
/// than g * sigmoid(g): for very negative g, e^-g overflows to infinity and the quotient is a
/// clean -0 instead of 0 * inf.
float SiluTimes(float g, float u);

} // namespace detail
} // namespace llm
} // namespace wdmoe

#endif
