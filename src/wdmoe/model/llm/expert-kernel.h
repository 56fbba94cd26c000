// The SwiGLU expert feed-forward network: y = w2 (silu(w1 x) * (w3 x)).
#ifndef WDMOE_LLM_EXPERT_KERNEL_H
#define WDMOE_LLM_EXPERT_KERNEL_H

#include "dtype.h"

#include <cstddef>
#include <string>

namespace wdmoe
{
namespace llm
{

class ThreadPool;

/// One expert's weights, row-major, in their storage type, at any alignment (they usually
/// point into a memory-mapped safetensors file). w1 and w3 are [d_ff][d_model]; w2 is
/// [d_model][d_ff]. Row strides are in elements, so a packed gate_up_proj can be addressed
/// in place.
struct ExpertWeights
{
    DType dtype = DType::F32;
    const void* w1 = nullptr;
    const void* w3 = nullptr;
    const void* w2 = nullptr;
    int dModel = 0;
    int dFf = 0;
    std::size_t w1RowStride = 0; ///< elements between rows of w1; 0 means d_model
    std::size_t w3RowStride = 0; ///< elements between rows of w3; 0 means d_model
    std::size_t w2RowStride = 0; ///< elements between rows of w2; 0 means d_ff
};

enum class KernelIsa
{
    Scalar, ///< portable reference, any CPU
    Avx2,   ///< AVX2 + FMA + F16C, chosen at run time
    Avx512, ///< AVX-512 F + BW + VL (with FMA and F16C), chosen at run time
};

/// True when this CPU has AVX2, FMA and F16C (and the OS saves YMM state).
bool CpuSupportsAvx2();
/// True when this CPU has AVX-512 F, BW and VL, FMA and F16C, and the OS saves the opmask and
/// ZMM state (XCR0 bits 1, 2, 5, 6 and 7).
bool CpuSupportsAvx512();
/// Whether this CPU can run the given ISA's kernel (Scalar: always).
bool CpuSupportsIsa(KernelIsa isa);
/// The fastest kernel this CPU supports: Avx512, else Avx2, else Scalar.
KernelIsa BestKernelIsa();
const char* KernelIsaName(KernelIsa isa);
/// Parses "scalar", "avx2" or "avx512" (not "auto": callers choose what that means); false for
/// anything else. Does not check the CPU (CheckKernelIsaSupported does).
bool ParseKernelIsa(const std::string& name, KernelIsa* isa);
/// Throws std::invalid_argument naming the ISA and the missing CPU features when this CPU
/// cannot run it (or when isa is not a KernelIsa value).
void CheckKernelIsaSupported(KernelIsa isa);

/// Decode: one token. x and y hold d_model floats (y may not alias x). pool may be null
/// (single-threaded). Throws std::invalid_argument when the CPU lacks the ISA asked for.
void ExpertForward(const ExpertWeights& w,
                   const float* x,
                   float* y,
                   ThreadPool* pool,
                   KernelIsa isa);

/// Prefill: n tokens routed to the same expert, as one small matrix product so each weight
/// row is read once for all n tokens. X and Y are [n][d_model] row-major.
void ExpertForwardBatch(const ExpertWeights& w,
                        const float* X,
                        int n,
                        float* Y,
                        ThreadPool* pool,
                        KernelIsa isa);

/// One stored matrix [rows][cols], row-major, at any alignment, with a row stride in elements
/// (0 means cols).
struct MatrixWeights
{
    DType dtype = DType::F32;
    const void* data = nullptr;
    int rows = 0;
    int cols = 0;
    std::size_t rowStride = 0;
};

/// y = W x for one vector: x holds cols floats, y rows floats (no overlap). The expert kernels'
/// down phase on its own (same ISAs, threading and accuracy); errors as ExpertForward's.
void MatrixVectorForward(const MatrixWeights& m,
                         const float* x,
                         float* y,
                         ThreadPool* pool,
                         KernelIsa isa);

/// Y = X W^T for n vectors: X is [n][cols], Y [n][rows] (no overlap); each weight row is read
/// once for all n. The same kernels, threading and accuracy as MatrixVectorForward, which is
/// this with n = 1. Errors as ExpertForward's; std::invalid_argument for n < 1.
void MatrixForward(const MatrixWeights& m,
                   const float* X,
                   int n,
                   float* Y,
                   ThreadPool* pool,
                   KernelIsa isa);

} // namespace llm
} // namespace wdmoe

#endif
