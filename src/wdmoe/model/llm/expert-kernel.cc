// The SwiGLU expert feed-forward network: argument checks, run-time ISA dispatch, the two-phase
// threaded driver and the portable scalar reference kernel. The AVX2 kernel lives in
// expert-kernel-avx2.cc, compiled with per-function target attributes so that this library
// needs no global -mavx2 and still runs on CPUs without it.

#include "expert-kernel.h"

#include "expert-kernel-impl.h"
#include "thread-pool.h"

#ifdef WDMOE_LLM_HAVE_AVX2_KERNEL
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

namespace
{

/// Below this many weight bytes (times tokens) an expert runs on the calling thread: waking
/// sleeping workers costs 10-40 microseconds on the development VM (under a microsecond while
/// they still spin), as much as streaming this much memory or more.
constexpr std::size_t kMinParallelBytes = 128 * 1024;

/// Work handed out per ParallelFor chunk. Large enough that the counter and the hardware
/// prefetcher's ramp-up at the start of each chunk are amortised, small enough that a thread
/// slowed down by other processes leaves only a small tail for the others.
constexpr std::size_t kTargetChunkBytes = 256 * 1024;

/// The AVX2 decode kernels take rows in groups of four (gate/up) and eight (down); chunks of a
/// multiple of eight rows keep every group whole except at the very end.
constexpr int kRowGranule = 8;

/// Rows per chunk for rows of rowBytes each, rounded to the granule, with at least about
/// eight chunks per thread so a late or slowed thread does not leave the others idle.
int
RowsPerChunk(std::size_t rowBytes, int rows, int threads)
{
    std::size_t byBytes = kTargetChunkBytes / std::max<std::size_t>(rowBytes, 1);
    const std::size_t byBalance = static_cast<std::size_t>(rows) / (8 * threads);
    std::size_t perChunk = std::min(byBytes, byBalance);
    perChunk = (perChunk / kRowGranule) * kRowGranule;
    return static_cast<int>(std::max<std::size_t>(perChunk, kRowGranule));
}

bool
RangesOverlap(const float* a, const float* b, std::size_t count)
{
    const auto pa = reinterpret_cast<std::uintptr_t>(a);
    const auto pb = reinterpret_cast<std::uintptr_t>(b);
    const std::size_t bytes = count * sizeof(float);
    return pa < pb + bytes && pb < pa + bytes;
}

/// Checks the weights and returns a copy with the row strides resolved (0 -> dense).
ExpertWeights
CheckedWeights(const ExpertWeights& w)
{
    if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16)
    {
        throw std::invalid_argument("ExpertForward: unknown weight dtype");
    }
    if (w.w1 == nullptr || w.w3 == nullptr || w.w2 == nullptr)
    {
        throw std::invalid_argument("ExpertForward: null weight pointer");
    }
    if (w.dModel <= 0 || w.dFf <= 0)
    {
        throw std::invalid_argument("ExpertForward: d_model and d_ff must be positive, got " +
                                    std::to_string(w.dModel) + " and " + std::to_string(w.dFf));
    }
    ExpertWeights r = w;
    const auto dModel = static_cast<std::size_t>(w.dModel);
    const auto dFf = static_cast<std::size_t>(w.dFf);
    r.w1RowStride = w.w1RowStride == 0 ? dModel : w.w1RowStride;
    r.w3RowStride = w.w3RowStride == 0 ? dModel : w.w3RowStride;
    r.w2RowStride = w.w2RowStride == 0 ? dFf : w.w2RowStride;
    // A stride shorter than the row would make rows overlap: certainly a caller's mistake.
    if (r.w1RowStride < dModel || r.w3RowStride < dModel || r.w2RowStride < dFf)
    {
        throw std::invalid_argument("ExpertForward: a row stride is shorter than its row");
    }
    // Element offsets are computed as row * stride in size_t; make sure that cannot wrap.
    const std::size_t maxElements = std::numeric_limits<std::size_t>::max() / 8;
    if (r.w1RowStride > maxElements / dFf || r.w3RowStride > maxElements / dFf ||
        r.w2RowStride > maxElements / dModel)
    {
        throw std::invalid_argument("ExpertForward: row stride too large");
    }
    return r;
}

void
CheckIsa(KernelIsa isa)
{
    if (isa == KernelIsa::Avx2)
    {
        if (!CpuSupportsAvx2())
        {
            throw std::invalid_argument("ExpertForward: AVX2 kernel requested but this CPU lacks "
                                        "AVX2/FMA/F16C");
        }
    }
    else if (isa != KernelIsa::Scalar)
    {
        throw std::invalid_argument("ExpertForward: unknown kernel ISA");
    }
}

/// Runs both phases. The gate/up phase must finish completely before the down phase starts
/// because every output row needs all of H; ParallelFor returning is that barrier.
void
RunExpert(const ExpertWeights& w, const float* X, int n, float* Y, ThreadPool* pool, KernelIsa isa)
{
    detail::GateUpRowsFn gateUp = detail::GateUpRowsScalar;
    detail::DownRowsFn down = detail::DownRowsScalar;
    bool pairSplit = false;
#ifdef WDMOE_LLM_HAVE_AVX2_KERNEL
    if (isa == KernelIsa::Avx2)
    {
        gateUp = detail::GateUpRowsAvx2;
        down = detail::DownRowsAvx2;
        pairSplit = detail::Avx2UsesPairSplit(w.dtype);
    }
#endif

    // Scratch for H (and the reordered X), reused across calls on the same thread so a decode
    // step of a small expert does not pay an allocation. Every element of H is written by
    // phase 1 before phase 2 reads it.
    thread_local std::vector<float> scratch;
    const std::size_t hElements = static_cast<std::size_t>(n) * static_cast<std::size_t>(w.dFf);
    const std::size_t xElements =
        pairSplit ? static_cast<std::size_t>(n) * static_cast<std::size_t>(w.dModel) : 0;
    if (scratch.size() < hElements + xElements)
    {
        scratch.resize(hElements + xElements);
    }
    float* H = scratch.data();
#ifndef NDEBUG
    // Debug builds poison H so that a kernel leaving an element unwritten produces NaN instead
    // of silently reusing a previous call's value. Small next to the weights it stands beside.
    std::fill(H, H + hElements, std::numeric_limits<float>::quiet_NaN());
#endif
    if (pairSplit)
    {
        // Reordered once per call, not per chunk: the kernels read X once per row group.
        float* split = H + hElements;
        for (int t = 0; t < n; ++t)
        {
            const std::size_t offset = static_cast<std::size_t>(t) * w.dModel;
            detail::PairSplit(X + offset, w.dModel, split + offset);
        }
        X = split;
    }

    const std::size_t elemSize = DTypeSize(w.dtype);
    const std::size_t gateUpRowBytes = 2 * static_cast<std::size_t>(w.dModel) * elemSize;
    const std::size_t downRowBytes = static_cast<std::size_t>(w.dFf) * elemSize;
    const std::size_t totalBytes = gateUpRowBytes * static_cast<std::size_t>(w.dFf) +
                                   downRowBytes * static_cast<std::size_t>(w.dModel);

    // Decode streams the weights once; a batch also does n times the arithmetic on them (the
    // re-reads hit the cache), so weigh the threshold by n.
    const std::size_t work = totalBytes * static_cast<std::size_t>(n);
    const int threads = pool == nullptr ? 1 : pool->Size();
    if (threads <= 1 || work < kMinParallelBytes)
    {
        gateUp(w, X, n, 0, w.dFf, H);
        down(w, H, n, 0, w.dModel, Y);
        return;
    }

    const int gateUpChunkRows = RowsPerChunk(gateUpRowBytes, w.dFf, threads);
    const int gateUpChunks = (w.dFf + gateUpChunkRows - 1) / gateUpChunkRows;
    pool->ParallelFor(gateUpChunks, [&](int chunk, int) {
        const int begin = chunk * gateUpChunkRows;
        const int end = std::min(begin + gateUpChunkRows, w.dFf);
        gateUp(w, X, n, begin, end, H);
    });

    const int downChunkRows = RowsPerChunk(downRowBytes, w.dModel, threads);
    const int downChunks = (w.dModel + downChunkRows - 1) / downChunkRows;
    pool->ParallelFor(downChunks, [&](int chunk, int) {
        const int begin = chunk * downChunkRows;
        const int end = std::min(begin + downChunkRows, w.dModel);
        down(w, H, n, begin, end, Y);
    });
}

/// Reads element i of a weight row in any dtype, at any alignment (memcpy, not a cast, since
/// a memory-mapped tensor may start at an odd address).
inline float
LoadWeight(DType t, const unsigned char* row, std::size_t i)
{
    switch (t)
    {
    case DType::F32:
    {
        float v;
        std::memcpy(&v, row + i * 4, 4);
        return v;
    }
    case DType::BF16:
    {
        std::uint16_t h;
        std::memcpy(&h, row + i * 2, 2);
        return Bf16ToF32(h);
    }
    case DType::F16:
    {
        std::uint16_t h;
        std::memcpy(&h, row + i * 2, 2);
        return F16ToF32(h);
    }
    }
    return 0.0f;
}

/// Dot product of a stored weight row with a float vector, accumulated in float in order.
float
ScalarDot(DType t, const unsigned char* row, const float* v, int length)
{
    float sum = 0.0f;
    for (int i = 0; i < length; ++i)
    {
        sum += LoadWeight(t, row, static_cast<std::size_t>(i)) * v[i];
    }
    return sum;
}

} // namespace

namespace detail
{

float
SiluTimes(float g, float u)
{
    return g / (1.0f + std::exp(-g)) * u;
}

void
GateUpRowsScalar(const ExpertWeights& w, const float* X, int n, int rowBegin, int rowEnd, float* H)
{
    const std::size_t rowBytes1 = w.w1RowStride * DTypeSize(w.dtype);
    const std::size_t rowBytes3 = w.w3RowStride * DTypeSize(w.dtype);
    const auto* w1 = static_cast<const unsigned char*>(w.w1);
    const auto* w3 = static_cast<const unsigned char*>(w.w3);
    for (int r = rowBegin; r < rowEnd; ++r)
    {
        const unsigned char* row1 = w1 + static_cast<std::size_t>(r) * rowBytes1;
        const unsigned char* row3 = w3 + static_cast<std::size_t>(r) * rowBytes3;
        for (int t = 0; t < n; ++t)
        {
            const float* x = X + static_cast<std::size_t>(t) * w.dModel;
            const float g = ScalarDot(w.dtype, row1, x, w.dModel);
            const float u = ScalarDot(w.dtype, row3, x, w.dModel);
            H[static_cast<std::size_t>(t) * w.dFf + r] = SiluTimes(g, u);
        }
    }
}

void
DownRowsScalar(const ExpertWeights& w, const float* H, int n, int rowBegin, int rowEnd, float* Y)
{
    const std::size_t rowBytes = w.w2RowStride * DTypeSize(w.dtype);
    const auto* w2 = static_cast<const unsigned char*>(w.w2);
    for (int i = rowBegin; i < rowEnd; ++i)
    {
        const unsigned char* row = w2 + static_cast<std::size_t>(i) * rowBytes;
        for (int t = 0; t < n; ++t)
        {
            const float* h = H + static_cast<std::size_t>(t) * w.dFf;
            Y[static_cast<std::size_t>(t) * w.dModel + i] = ScalarDot(w.dtype, row, h, w.dFf);
        }
    }
}

} // namespace detail

bool
CpuSupportsAvx2()
{
#ifdef WDMOE_LLM_HAVE_AVX2_KERNEL
    // libgcc (and compiler-rt) report AVX-family features only when XGETBV shows that the OS
    // saves the YMM registers, so this also covers the OS side. F16C is read from CPUID
    // directly (leaf 1, ECX bit 29) because clang's __builtin_cpu_supports does not know the
    // name; it needs no OS support beyond the YMM state already implied by AVX2. Evaluated once.
    static const bool supported = [] {
        __builtin_cpu_init();
        unsigned eax = 0;
        unsigned ebx = 0;
        unsigned ecx = 0;
        unsigned edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    }();
    return supported;
#else
    return false;
#endif
}

KernelIsa
BestKernelIsa()
{
    return CpuSupportsAvx2() ? KernelIsa::Avx2 : KernelIsa::Scalar;
}

const char*
KernelIsaName(KernelIsa isa)
{
    switch (isa)
    {
    case KernelIsa::Scalar:
        return "scalar";
    case KernelIsa::Avx2:
        return "avx2";
    }
    return "unknown";
}

void
ExpertForward(const ExpertWeights& w, const float* x, float* y, ThreadPool* pool, KernelIsa isa)
{
    const ExpertWeights checked = CheckedWeights(w);
    CheckIsa(isa);
    if (x == nullptr || y == nullptr)
    {
        throw std::invalid_argument("ExpertForward: null x or y");
    }
    if (RangesOverlap(x, y, static_cast<std::size_t>(w.dModel)))
    {
        throw std::invalid_argument("ExpertForward: y overlaps x");
    }
    RunExpert(checked, x, 1, y, pool, isa);
}

void
ExpertForwardBatch(const ExpertWeights& w,
                   const float* X,
                   int n,
                   float* Y,
                   ThreadPool* pool,
                   KernelIsa isa)
{
    const ExpertWeights checked = CheckedWeights(w);
    CheckIsa(isa);
    if (n < 0)
    {
        throw std::invalid_argument("ExpertForwardBatch: negative token count " +
                                    std::to_string(n));
    }
    if (n == 0)
    {
        // An expert that no token was routed to: nothing to do (X and Y may be null).
        return;
    }
    if (X == nullptr || Y == nullptr)
    {
        throw std::invalid_argument("ExpertForwardBatch: null X or Y");
    }
    const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(w.dModel);
    if (RangesOverlap(X, Y, count))
    {
        throw std::invalid_argument("ExpertForwardBatch: Y overlaps X");
    }
    RunExpert(checked, X, n, Y, pool, isa);
}

} // namespace llm
} // namespace wdmoe
