// The SwiGLU expert feed-forward network: argument checks, run-time ISA dispatch, the two-phase
// threaded driver and the portable scalar reference kernel. The AVX2 and AVX-512 kernels live in
// expert-kernel-avx2.cc and expert-kernel-avx512.cc, compiled with per-function target
// attributes so that this library needs no global -mavx2 / -mavx512f and still runs on CPUs
// without them.

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

/// Whether aCount floats at a and bCount floats at b share any byte.
bool
RangesOverlap(const float* a, std::size_t aCount, const float* b, std::size_t bCount)
{
    const auto pa = reinterpret_cast<std::uintptr_t>(a);
    const auto pb = reinterpret_cast<std::uintptr_t>(b);
    return pa < pb + bCount * sizeof(float) && pb < pa + aCount * sizeof(float);
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

/// The row-range kernels of one ISA.
struct RowKernels
{
    detail::GateUpRowsFn gateUp = detail::GateUpRowsScalar;
    detail::DownRowsFn down = detail::DownRowsScalar;
};

RowKernels
KernelsFor(KernelIsa isa)
{
    RowKernels k;
#ifdef WDMOE_LLM_HAVE_AVX2_KERNEL
    if (isa == KernelIsa::Avx2)
    {
        k.gateUp = detail::GateUpRowsAvx2;
        k.down = detail::DownRowsAvx2;
    }
    else if (isa == KernelIsa::Avx512)
    {
        k.gateUp = detail::GateUpRowsAvx512;
        k.down = detail::DownRowsAvx512;
    }
#else
    (void)isa;
#endif
    return k;
}

/// Thread-local scratch of at least `elements` floats, reused across calls on the same thread
/// so a decode step of a small expert does not pay an allocation.
float*
Scratch(std::size_t elements)
{
    thread_local std::vector<float> scratch;
    if (scratch.size() < elements)
    {
        scratch.resize(elements);
    }
    return scratch.data();
}

/// Copies the n vectors of X ([n][length]) into dst in pair-split order of the block, once per
/// call rather than per chunk (the kernels read X once per row group); returns dst.
const float*
PairSplitRows(const float* X, int n, int length, int block, float* dst)
{
    for (int t = 0; t < n; ++t)
    {
        const std::size_t offset = static_cast<std::size_t>(t) * static_cast<std::size_t>(length);
        detail::PairSplit(X + offset, length, block, dst + offset);
    }
    return dst;
}

/// Runs fn(begin, end) over [0, rows) in chunks of rows of rowBytes each, on the pool when
/// there is one with more than one thread and the work is large enough to pay for waking it.
template <typename RowRangeFn>
void
ForRowChunks(int rows, std::size_t rowBytes, std::size_t work, ThreadPool* pool, RowRangeFn fn)
{
    const int threads = pool == nullptr ? 1 : pool->Size();
    if (threads <= 1 || work < kMinParallelBytes)
    {
        fn(0, rows);
        return;
    }
    const int chunkRows = RowsPerChunk(rowBytes, rows, threads);
    const int chunks = (rows + chunkRows - 1) / chunkRows;
    pool->ParallelFor(chunks, [&](int chunk, int) {
        const int begin = chunk * chunkRows;
        fn(begin, std::min(begin + chunkRows, rows));
    });
}

/// Runs both phases. The gate/up phase must finish completely before the down phase starts
/// because every output row needs all of H; ForRowChunks returning is that barrier.
void
RunExpert(const ExpertWeights& w, const float* X, int n, float* Y, ThreadPool* pool, KernelIsa isa)
{
    const RowKernels kernels = KernelsFor(isa);
    const int splitBlock = detail::PairSplitBlock(isa, w.dtype);
    const std::size_t hElements = static_cast<std::size_t>(n) * static_cast<std::size_t>(w.dFf);
    const std::size_t xElements =
        splitBlock != 0 ? static_cast<std::size_t>(n) * static_cast<std::size_t>(w.dModel) : 0;
    // Every element of H is written by phase 1 before phase 2 reads it.
    float* H = Scratch(hElements + xElements);
#ifndef NDEBUG
    // Debug builds poison H so that a kernel leaving an element unwritten produces NaN instead
    // of silently reusing a previous call's value. Small next to the weights it stands beside.
    std::fill(H, H + hElements, std::numeric_limits<float>::quiet_NaN());
#endif
    if (splitBlock != 0)
    {
        X = PairSplitRows(X, n, w.dModel, splitBlock, H + hElements);
    }

    const std::size_t elemSize = DTypeSize(w.dtype);
    const std::size_t gateUpRowBytes = 2 * static_cast<std::size_t>(w.dModel) * elemSize;
    const std::size_t downRowBytes = static_cast<std::size_t>(w.dFf) * elemSize;
    const std::size_t totalBytes = gateUpRowBytes * static_cast<std::size_t>(w.dFf) +
                                   downRowBytes * static_cast<std::size_t>(w.dModel);
    // Decode streams the weights once; a batch also does n times the arithmetic on them (the
    // re-reads hit the cache), so weigh the threshold by n.
    const std::size_t work = totalBytes * static_cast<std::size_t>(n);
    ForRowChunks(w.dFf, gateUpRowBytes, work, pool, [&](int begin, int end) {
        kernels.gateUp(w, X, n, begin, end, H);
    });
    ForRowChunks(w.dModel, downRowBytes, work, pool, [&](int begin, int end) {
        kernels.down(w, H, n, begin, end, Y);
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

bool
CpuSupportsAvx512()
{
#ifdef WDMOE_LLM_HAVE_AVX2_KERNEL
    // Read from CPUID and XCR0 directly rather than __builtin_cpu_supports, whose AVX-512 answer
    // depends on the compiler version's idea of the OS check. The CPU side: FMA and F16C (leaf
    // 1), AVX-512 F (leaf 7 EBX bit 16), BW (30) and VL (31). The OS side: OSXSAVE (leaf 1 ECX
    // bit 27) and XCR0 with SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM state enabled (0xE6): a
    // kernel that does not save the ZMM registers on a context switch would corrupt them.
    static const bool supported = [] {
        unsigned eax = 0;
        unsigned ebx = 0;
        unsigned ecx = 0;
        unsigned edx = 0;
        if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0)
        {
            return false;
        }
        const bool osxsave = (ecx & (1u << 27)) != 0;
        const bool fmaF16c = (ecx & (1u << 12)) != 0 && (ecx & (1u << 29)) != 0;
        if (!osxsave || !fmaF16c || __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0)
        {
            return false;
        }
        const unsigned avx512FBwVl = (1u << 16) | (1u << 30) | (1u << 31);
        if ((ebx & avx512FBwVl) != avx512FBwVl)
        {
            return false;
        }
        unsigned xcr0Low = 0;
        unsigned xcr0High = 0;
        __asm__ volatile("xgetbv" : "=a"(xcr0Low), "=d"(xcr0High) : "c"(0));
        constexpr unsigned kZmmState = 0xE6;
        return (xcr0Low & kZmmState) == kZmmState;
    }();
    return supported;
#else
    return false;
#endif
}

bool
CpuSupportsIsa(KernelIsa isa)
{
    switch (isa)
    {
    case KernelIsa::Scalar:
        return true;
    case KernelIsa::Avx2:
        return CpuSupportsAvx2();
    case KernelIsa::Avx512:
        return CpuSupportsAvx512();
    }
    return false;
}

KernelIsa
BestKernelIsa()
{
    if (CpuSupportsAvx512())
    {
        return KernelIsa::Avx512;
    }
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
    case KernelIsa::Avx512:
        return "avx512";
    }
    return "unknown";
}

bool
ParseKernelIsa(const std::string& name, KernelIsa* isa)
{
    for (KernelIsa candidate : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512})
    {
        if (name == KernelIsaName(candidate))
        {
            *isa = candidate;
            return true;
        }
    }
    return false;
}

void
CheckKernelIsaSupported(KernelIsa isa)
{
    switch (isa)
    {
    case KernelIsa::Scalar:
        return;
    case KernelIsa::Avx2:
        if (!CpuSupportsAvx2())
        {
            throw std::invalid_argument("the avx2 expert kernel was requested but this CPU lacks "
                                        "AVX2, FMA or F16C (or the OS does not save YMM state)");
        }
        return;
    case KernelIsa::Avx512:
        if (!CpuSupportsAvx512())
        {
            throw std::invalid_argument(
                "the avx512 expert kernel was requested but this CPU lacks AVX-512 F/BW/VL, FMA "
                "or F16C (or the OS does not save the ZMM and opmask state)");
        }
        return;
    }
    throw std::invalid_argument("unknown expert kernel ISA " +
                                std::to_string(static_cast<int>(isa)));
}

void
ExpertForward(const ExpertWeights& w, const float* x, float* y, ThreadPool* pool, KernelIsa isa)
{
    const ExpertWeights checked = CheckedWeights(w);
    CheckKernelIsaSupported(isa);
    if (x == nullptr || y == nullptr)
    {
        throw std::invalid_argument("ExpertForward: null x or y");
    }
    if (RangesOverlap(x, static_cast<std::size_t>(w.dModel), y, static_cast<std::size_t>(w.dModel)))
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
    CheckKernelIsaSupported(isa);
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
    if (RangesOverlap(X, count, Y, count))
    {
        throw std::invalid_argument("ExpertForwardBatch: Y overlaps X");
    }
    RunExpert(checked, X, n, Y, pool, isa);
}

void
MatrixForward(const MatrixWeights& m,
              const float* X,
              int n,
              float* Y,
              ThreadPool* pool,
              KernelIsa isa)
{
    // The down phase of the expert kernels on its own: an expert whose w2 is this matrix
    // (d_model = rows, d_ff = cols). w1 and w3 are never read; they point at the matrix only
    // so that the argument checks see no null pointer.
    ExpertWeights w;
    w.dtype = m.dtype;
    w.w1 = m.data;
    w.w3 = m.data;
    w.w2 = m.data;
    w.dModel = m.rows;
    w.dFf = m.cols;
    w.w2RowStride = m.rowStride;
    const ExpertWeights checked = CheckedWeights(w);
    CheckKernelIsaSupported(isa);
    if (X == nullptr || Y == nullptr || n < 1)
    {
        throw std::invalid_argument("MatrixForward: null X or Y, or n < 1");
    }
    const std::size_t nn = static_cast<std::size_t>(n);
    if (RangesOverlap(X,
                      nn * static_cast<std::size_t>(m.cols),
                      Y,
                      nn * static_cast<std::size_t>(m.rows)))
    {
        throw std::invalid_argument("MatrixForward: Y overlaps X");
    }
    const RowKernels kernels = KernelsFor(isa);
    const int splitBlock = detail::PairSplitBlock(isa, m.dtype);
    if (splitBlock != 0)
    {
        X = PairSplitRows(X, n, m.cols, splitBlock, Scratch(nn * static_cast<std::size_t>(m.cols)));
    }
    const std::size_t rowBytes = static_cast<std::size_t>(m.cols) * DTypeSize(m.dtype);
    // As in RunExpert: a batch does n times the arithmetic on each row it reads.
    const std::size_t work = rowBytes * static_cast<std::size_t>(m.rows) * nn;
    ForRowChunks(m.rows, rowBytes, work, pool, [&](int begin, int end) {
        kernels.down(checked, X, n, begin, end, Y);
    });
}

void
MatrixVectorForward(const MatrixWeights& m,
                    const float* x,
                    float* y,
                    ThreadPool* pool,
                    KernelIsa isa)
{
    MatrixForward(m, x, 1, y, pool, isa);
}

} // namespace llm
} // namespace wdmoe
