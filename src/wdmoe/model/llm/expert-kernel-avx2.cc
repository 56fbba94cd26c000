// The AVX2 + FMA + F16C expert kernel.
//
// Compiled without -mavx2: every function that uses these instructions carries
// target("avx2,fma,f16c"), so the rest of the program stays baseline x86-64 and the driver in
// expert-kernel.cc calls in here only after checking the CPU. Helpers are static inline with
// the same attribute so they inline into their callers (a helper without it could not be
// inlined into a target function, and a lambda would not inherit the attribute).
//
// Decode is a memory-bound matrix-vector product, so the aim is to keep the memory system busy:
// several weight rows are streamed at once (eight per thread), each stream running on through
// consecutive rows so the hardware prefetcher stays trained, and the activation stays in L1.
// Instructions per byte still matter: on the 2-core development machine the same access
// pattern with the arithmetic stripped out reached about 0.95 of the read-bandwidth probe, the
// real bf16 kernel about 0.85, f32 weights (nothing to widen) 0.9-0.98. So bf16 is widened
// sixteen at a time with one shift and one mask into even and odd elements instead of
// zero-extending shuffles (L2-resident gate/up: 38 -> 47 GB/s on one core), which needs the
// activation in pair-split order (expert-kernel-impl.h). f16 goes through vcvtph2ps, f32 needs
// nothing. Software prefetch is deliberately absent: on this machine it cost 15-25 % per
// DESIGN.md section 6, and again here (prefetcht0 at 2 KiB ahead -20 %, prefetcht1 at 1-4 KiB
// -10 to -15 %, prefetcht0 at 512 B no gain).

#include "expert-kernel-impl.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cstdint>
#include <cstring>
#include <immintrin.h>

#define WDMOE_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

namespace wdmoe
{
namespace llm
{
namespace detail
{

namespace
{

/// Bytes per element of the storage type, as a constant for the templates below.
template <DType T>
constexpr std::size_t kElemSize = T == DType::F32 ? 4 : 2;

/// Eight consecutive weights starting at p (any alignment), widened to f32.
template <DType T>
WDMOE_AVX2_TARGET static inline __m256
Load8(const unsigned char* p)
{
    if constexpr (T == DType::F32)
    {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    }
    else if constexpr (T == DType::BF16)
    {
        // bf16 is the upper half of an f32: zero-extend to 32 bits and shift into place.
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
    }
    else
    {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_cvtph_ps(raw);
    }
}

/// One weight (for the tails that do not fill a vector), exact like the vector widening.
template <DType T>
WDMOE_AVX2_TARGET static inline float
Load1(const unsigned char* p)
{
    if constexpr (T == DType::F32)
    {
        float v;
        std::memcpy(&v, p, 4);
        return v;
    }
    else
    {
        std::uint16_t h;
        std::memcpy(&h, p, 2);
        if constexpr (T == DType::BF16)
        {
            const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
            float v;
            std::memcpy(&v, &bits, 4);
            return v;
        }
        else
        {
            return _cvtsh_ss(h);
        }
    }
}

/// Sixteen consecutive weights at p, widened into two vectors in the order the activation is
/// kept in: for bf16 the even- and odd-indexed elements (pair-split order), otherwise the first
/// and the second eight.
template <DType T>
WDMOE_AVX2_TARGET static inline void
Load16(const unsigned char* p, __m256& lo, __m256& hi)
{
    if constexpr (T == DType::BF16)
    {
        // Each 32-bit lane holds elements 2j (low half) and 2j + 1 (high half) on this
        // little-endian machine; a bf16 in the high half of a lane is already that f32.
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        lo = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
        hi = _mm256_castsi256_ps(
            _mm256_and_si256(raw, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
    }
    else
    {
        lo = Load8<T>(p);
        hi = Load8<T>(p + 8 * kElemSize<T>);
    }
}

/// acc + w[0..16) . v[0..16) with the weights at p and v in the matching order.
template <DType T>
WDMOE_AVX2_TARGET static inline __m256
Fma16(const unsigned char* p, __m256 vLo, __m256 vHi, __m256 acc)
{
    __m256 lo;
    __m256 hi;
    Load16<T>(p, lo, hi);
    return _mm256_fmadd_ps(hi, vHi, _mm256_fmadd_ps(lo, vLo, acc));
}

WDMOE_AVX2_TARGET static inline float
HorizontalSum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---- Decode (one token) ----------------------------------------------------------------------
//
// Every dot product runs over full blocks of sixteen (Load16, pair-split order for bf16), then
// at most one block of eight and single elements, both in natural order.

/// Four rows of w1 and of w3 against x: eight row streams in flight, each load of x feeding
/// eight rows, eight independent accumulators.
template <DType T>
WDMOE_AVX2_TARGET static void
GateUpFourRows(const unsigned char* const row1[4],
               const unsigned char* const row3[4],
               const float* x,
               int dModel,
               float h[4])
{
    constexpr std::size_t es = kElemSize<T>;
    __m256 g0 = _mm256_setzero_ps();
    __m256 g1 = _mm256_setzero_ps();
    __m256 g2 = _mm256_setzero_ps();
    __m256 g3 = _mm256_setzero_ps();
    __m256 u0 = _mm256_setzero_ps();
    __m256 u1 = _mm256_setzero_ps();
    __m256 u2 = _mm256_setzero_ps();
    __m256 u3 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= dModel; k += 16)
    {
        const __m256 xLo = _mm256_loadu_ps(x + k);
        const __m256 xHi = _mm256_loadu_ps(x + k + 8);
        const std::size_t off = static_cast<std::size_t>(k) * es;
        g0 = Fma16<T>(row1[0] + off, xLo, xHi, g0);
        u0 = Fma16<T>(row3[0] + off, xLo, xHi, u0);
        g1 = Fma16<T>(row1[1] + off, xLo, xHi, g1);
        u1 = Fma16<T>(row3[1] + off, xLo, xHi, u1);
        g2 = Fma16<T>(row1[2] + off, xLo, xHi, g2);
        u2 = Fma16<T>(row3[2] + off, xLo, xHi, u2);
        g3 = Fma16<T>(row1[3] + off, xLo, xHi, g3);
        u3 = Fma16<T>(row3[3] + off, xLo, xHi, u3);
    }
    if (k + 8 <= dModel)
    {
        const __m256 xv = _mm256_loadu_ps(x + k);
        const std::size_t off = static_cast<std::size_t>(k) * es;
        g0 = _mm256_fmadd_ps(Load8<T>(row1[0] + off), xv, g0);
        u0 = _mm256_fmadd_ps(Load8<T>(row3[0] + off), xv, u0);
        g1 = _mm256_fmadd_ps(Load8<T>(row1[1] + off), xv, g1);
        u1 = _mm256_fmadd_ps(Load8<T>(row3[1] + off), xv, u1);
        g2 = _mm256_fmadd_ps(Load8<T>(row1[2] + off), xv, g2);
        u2 = _mm256_fmadd_ps(Load8<T>(row3[2] + off), xv, u2);
        g3 = _mm256_fmadd_ps(Load8<T>(row1[3] + off), xv, g3);
        u3 = _mm256_fmadd_ps(Load8<T>(row3[3] + off), xv, u3);
        k += 8;
    }
    float g[4] = {HorizontalSum(g0), HorizontalSum(g1), HorizontalSum(g2), HorizontalSum(g3)};
    float u[4] = {HorizontalSum(u0), HorizontalSum(u1), HorizontalSum(u2), HorizontalSum(u3)};
    for (; k < dModel; ++k)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        for (int r = 0; r < 4; ++r)
        {
            g[r] += Load1<T>(row1[r] + off) * x[k];
            u[r] += Load1<T>(row3[r] + off) * x[k];
        }
    }
    for (int r = 0; r < 4; ++r)
    {
        h[r] = SiluTimes(g[r], u[r]);
    }
}

/// Dot product of one stored row with a float vector (in the matching order).
template <DType T>
WDMOE_AVX2_TARGET static float
DotRow(const unsigned char* row, const float* v, int length)
{
    constexpr std::size_t es = kElemSize<T>;
    __m256 a0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= length; k += 16)
    {
        __m256 lo;
        __m256 hi;
        Load16<T>(row + static_cast<std::size_t>(k) * es, lo, hi);
        a0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(v + k), a0);
        a1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(v + k + 8), a1);
    }
    if (k + 8 <= length)
    {
        a0 = _mm256_fmadd_ps(Load8<T>(row + static_cast<std::size_t>(k) * es),
                             _mm256_loadu_ps(v + k),
                             a0);
        k += 8;
    }
    float sum = HorizontalSum(_mm256_add_ps(a0, a1));
    for (; k < length; ++k)
    {
        sum += Load1<T>(row + static_cast<std::size_t>(k) * es) * v[k];
    }
    return sum;
}

/// Eight rows of w2 against h: eight row streams in flight (as many as phase 1 has; measured
/// 5-8 % faster than four rows with two accumulators each), one accumulator per row.
template <DType T>
WDMOE_AVX2_TARGET static void
DownEightRows(const unsigned char* const row[8], const float* h, int dFf, float y[8])
{
    constexpr std::size_t es = kElemSize<T>;
    __m256 a0 = _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps();
    __m256 a3 = _mm256_setzero_ps();
    __m256 a4 = _mm256_setzero_ps();
    __m256 a5 = _mm256_setzero_ps();
    __m256 a6 = _mm256_setzero_ps();
    __m256 a7 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= dFf; k += 16)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        const __m256 hLo = _mm256_loadu_ps(h + k);
        const __m256 hHi = _mm256_loadu_ps(h + k + 8);
        a0 = Fma16<T>(row[0] + off, hLo, hHi, a0);
        a1 = Fma16<T>(row[1] + off, hLo, hHi, a1);
        a2 = Fma16<T>(row[2] + off, hLo, hHi, a2);
        a3 = Fma16<T>(row[3] + off, hLo, hHi, a3);
        a4 = Fma16<T>(row[4] + off, hLo, hHi, a4);
        a5 = Fma16<T>(row[5] + off, hLo, hHi, a5);
        a6 = Fma16<T>(row[6] + off, hLo, hHi, a6);
        a7 = Fma16<T>(row[7] + off, hLo, hHi, a7);
    }
    if (k + 8 <= dFf)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        const __m256 hv = _mm256_loadu_ps(h + k);
        a0 = _mm256_fmadd_ps(Load8<T>(row[0] + off), hv, a0);
        a1 = _mm256_fmadd_ps(Load8<T>(row[1] + off), hv, a1);
        a2 = _mm256_fmadd_ps(Load8<T>(row[2] + off), hv, a2);
        a3 = _mm256_fmadd_ps(Load8<T>(row[3] + off), hv, a3);
        a4 = _mm256_fmadd_ps(Load8<T>(row[4] + off), hv, a4);
        a5 = _mm256_fmadd_ps(Load8<T>(row[5] + off), hv, a5);
        a6 = _mm256_fmadd_ps(Load8<T>(row[6] + off), hv, a6);
        a7 = _mm256_fmadd_ps(Load8<T>(row[7] + off), hv, a7);
        k += 8;
    }
    float s[8] = {HorizontalSum(a0),
                  HorizontalSum(a1),
                  HorizontalSum(a2),
                  HorizontalSum(a3),
                  HorizontalSum(a4),
                  HorizontalSum(a5),
                  HorizontalSum(a6),
                  HorizontalSum(a7)};
    for (; k < dFf; ++k)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        for (int r = 0; r < 8; ++r)
        {
            s[r] += Load1<T>(row[r] + off) * h[k];
        }
    }
    for (int r = 0; r < 8; ++r)
    {
        y[r] = s[r];
    }
}

// ---- Batch (several tokens per weight row) ---------------------------------------------------

/// One row of w1 and one of w3 against kTokens tokens: each widened weight vector feeds
/// 2 * kTokens FMAs, so the rows are read from memory once per call; the re-reads for later
/// token blocks hit L1/L2 (a row pair is at most a few tens of KiB). Writes h[t * hStride].
template <DType T, int kTokens>
WDMOE_AVX2_TARGET static void
GateUpRowTokens(const unsigned char* row1,
                const unsigned char* row3,
                const float* X,
                int dModel,
                float* h,
                std::size_t hStride)
{
    constexpr std::size_t es = kElemSize<T>;
    __m256 g[kTokens];
    __m256 u[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        g[t] = _mm256_setzero_ps();
        u[t] = _mm256_setzero_ps();
    }
    const std::size_t xStride = static_cast<std::size_t>(dModel);
    int k = 0;
    for (; k + 16 <= dModel; k += 16)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        __m256 lo1;
        __m256 hi1;
        __m256 lo3;
        __m256 hi3;
        Load16<T>(row1 + off, lo1, hi1);
        Load16<T>(row3 + off, lo3, hi3);
        for (int t = 0; t < kTokens; ++t)
        {
            const __m256 xLo = _mm256_loadu_ps(X + t * xStride + k);
            const __m256 xHi = _mm256_loadu_ps(X + t * xStride + k + 8);
            g[t] = _mm256_fmadd_ps(hi1, xHi, _mm256_fmadd_ps(lo1, xLo, g[t]));
            u[t] = _mm256_fmadd_ps(hi3, xHi, _mm256_fmadd_ps(lo3, xLo, u[t]));
        }
    }
    if (k + 8 <= dModel)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        const __m256 w1v = Load8<T>(row1 + off);
        const __m256 w3v = Load8<T>(row3 + off);
        for (int t = 0; t < kTokens; ++t)
        {
            const __m256 xv = _mm256_loadu_ps(X + t * xStride + k);
            g[t] = _mm256_fmadd_ps(w1v, xv, g[t]);
            u[t] = _mm256_fmadd_ps(w3v, xv, u[t]);
        }
        k += 8;
    }
    float gs[kTokens];
    float us[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        gs[t] = HorizontalSum(g[t]);
        us[t] = HorizontalSum(u[t]);
    }
    for (; k < dModel; ++k)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        const float a = Load1<T>(row1 + off);
        const float b = Load1<T>(row3 + off);
        for (int t = 0; t < kTokens; ++t)
        {
            gs[t] += a * X[t * xStride + k];
            us[t] += b * X[t * xStride + k];
        }
    }
    for (int t = 0; t < kTokens; ++t)
    {
        h[t * hStride] = SiluTimes(gs[t], us[t]);
    }
}

/// One row of w2 against kTokens rows of H; writes y[t * yStride].
template <DType T, int kTokens>
WDMOE_AVX2_TARGET static void
DownRowTokens(const unsigned char* row, const float* H, int dFf, float* y, std::size_t yStride)
{
    constexpr std::size_t es = kElemSize<T>;
    __m256 a[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        a[t] = _mm256_setzero_ps();
    }
    const std::size_t hStride = static_cast<std::size_t>(dFf);
    int k = 0;
    for (; k + 16 <= dFf; k += 16)
    {
        __m256 lo;
        __m256 hi;
        Load16<T>(row + static_cast<std::size_t>(k) * es, lo, hi);
        for (int t = 0; t < kTokens; ++t)
        {
            const float* h = H + t * hStride + k;
            a[t] = _mm256_fmadd_ps(hi,
                                   _mm256_loadu_ps(h + 8),
                                   _mm256_fmadd_ps(lo, _mm256_loadu_ps(h), a[t]));
        }
    }
    if (k + 8 <= dFf)
    {
        const __m256 wv = Load8<T>(row + static_cast<std::size_t>(k) * es);
        for (int t = 0; t < kTokens; ++t)
        {
            a[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(H + t * hStride + k), a[t]);
        }
        k += 8;
    }
    float s[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        s[t] = HorizontalSum(a[t]);
    }
    for (; k < dFf; ++k)
    {
        const float wk = Load1<T>(row + static_cast<std::size_t>(k) * es);
        for (int t = 0; t < kTokens; ++t)
        {
            s[t] += wk * H[t * hStride + k];
        }
    }
    for (int t = 0; t < kTokens; ++t)
    {
        y[t * yStride] = s[t];
    }
}

/// Token blocks: four tokens per gate/up row pair (8 accumulators), eight per down row.
constexpr int kGateUpTokenBlock = 4;
constexpr int kDownTokenBlock = 8;

/// Where row r's result goes in a row of H: pair-split order where the dtype's kernels use it.
template <DType T>
static inline int
HIndex(int r, int dFf)
{
    constexpr int block = PairSplitBlock(KernelIsa::Avx2, T);
    return block != 0 ? PairSplitIndex(r, dFf, block) : r;
}

template <DType T>
WDMOE_AVX2_TARGET static void
GateUpRowsBatch(const ExpertWeights& w, const float* X, int n, int rowBegin, int rowEnd, float* H)
{
    constexpr std::size_t es = kElemSize<T>;
    const auto* w1 = static_cast<const unsigned char*>(w.w1);
    const auto* w3 = static_cast<const unsigned char*>(w.w3);
    const std::size_t dModel = static_cast<std::size_t>(w.dModel);
    const std::size_t dFf = static_cast<std::size_t>(w.dFf);
    for (int r = rowBegin; r < rowEnd; ++r)
    {
        const unsigned char* row1 = w1 + static_cast<std::size_t>(r) * w.w1RowStride * es;
        const unsigned char* row3 = w3 + static_cast<std::size_t>(r) * w.w3RowStride * es;
        float* hRow = H + HIndex<T>(r, w.dFf);
        int t = 0;
        for (; t + kGateUpTokenBlock <= n; t += kGateUpTokenBlock)
        {
            GateUpRowTokens<T, kGateUpTokenBlock>(row1,
                                                  row3,
                                                  X + t * dModel,
                                                  w.dModel,
                                                  hRow + t * dFf,
                                                  dFf);
        }
        const float* Xt = X + t * dModel;
        float* ht = hRow + t * dFf;
        switch (n - t)
        {
        case 3:
            GateUpRowTokens<T, 3>(row1, row3, Xt, w.dModel, ht, dFf);
            break;
        case 2:
            GateUpRowTokens<T, 2>(row1, row3, Xt, w.dModel, ht, dFf);
            break;
        case 1:
            GateUpRowTokens<T, 1>(row1, row3, Xt, w.dModel, ht, dFf);
            break;
        default:
            break;
        }
    }
}

template <DType T>
WDMOE_AVX2_TARGET static void
DownRowsBatch(const ExpertWeights& w, const float* H, int n, int rowBegin, int rowEnd, float* Y)
{
    constexpr std::size_t es = kElemSize<T>;
    const auto* w2 = static_cast<const unsigned char*>(w.w2);
    const std::size_t dModel = static_cast<std::size_t>(w.dModel);
    const std::size_t dFf = static_cast<std::size_t>(w.dFf);
    for (int i = rowBegin; i < rowEnd; ++i)
    {
        const unsigned char* row = w2 + static_cast<std::size_t>(i) * w.w2RowStride * es;
        int t = 0;
        for (; t + kDownTokenBlock <= n; t += kDownTokenBlock)
        {
            DownRowTokens<T, kDownTokenBlock>(row, H + t * dFf, w.dFf, Y + t * dModel + i, dModel);
        }
        const float* Ht = H + t * dFf;
        float* yt = Y + t * dModel + i;
        switch (n - t)
        {
        case 7:
            DownRowTokens<T, 7>(row, Ht, w.dFf, yt, dModel);
            break;
        case 6:
            DownRowTokens<T, 6>(row, Ht, w.dFf, yt, dModel);
            break;
        case 5:
            DownRowTokens<T, 5>(row, Ht, w.dFf, yt, dModel);
            break;
        case 4:
            DownRowTokens<T, 4>(row, Ht, w.dFf, yt, dModel);
            break;
        case 3:
            DownRowTokens<T, 3>(row, Ht, w.dFf, yt, dModel);
            break;
        case 2:
            DownRowTokens<T, 2>(row, Ht, w.dFf, yt, dModel);
            break;
        case 1:
            DownRowTokens<T, 1>(row, Ht, w.dFf, yt, dModel);
            break;
        default:
            break;
        }
    }
}

} // namespace

#define WDMOE_ISA_TARGET WDMOE_AVX2_TARGET
#define WDMOE_ISA_GATE_UP_ROWS GateUpRowsAvx2
#define WDMOE_ISA_DOWN_ROWS DownRowsAvx2
#include "expert-kernel-rows.inc"
#undef WDMOE_ISA_TARGET
#undef WDMOE_ISA_GATE_UP_ROWS
#undef WDMOE_ISA_DOWN_ROWS

} // namespace detail
} // namespace llm
} // namespace wdmoe

#endif // x86
