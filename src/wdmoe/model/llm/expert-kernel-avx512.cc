// The AVX-512 (F + BW + VL, with FMA and F16C) expert kernel.
//
// The same design as expert-kernel-avx2.cc (read that file's header first), on 512-bit vectors:
// several weight rows streamed at once, each stream running on through consecutive rows, the
// activation in L1, w1 and w3 fused so silu(g) * u is formed in registers, f32 accumulation.
//
// Compiled, like the AVX2 file, with per-function target attributes rather than per-file
// -mavx512f: with a per-file flag, any inline function or template this file instantiates (a
// std:: helper, say) could be emitted with AVX-512 instructions and then chosen by the linker
// for the whole program, which would crash on a CPU without AVX-512. The attribute confines the
// instructions to the functions below, which the driver calls only after CpuSupportsAvx512().
//
// Weights: bf16 is widened in registers, thirty-two at a time, with one shift (even-indexed
// elements) and one mask (odd-indexed ones), so the activation is kept in pair-split order of
// block 32 (expert-kernel-impl.h). vdpbf16ps (AVX512_BF16) would do the widening and two FMAs
// in one instruction, but it rounds the activation to bf16 (8 significant bits), an error per
// product about 2^15 times the f32 rounding the tests' bound allows, so it is not used; see the
// module chapter. f16 goes through vcvtph2ps (AVX512F), f32 needs nothing.
//
// Software prefetch, unlike in the AVX2 file: each decode row stream asks for the line 1 KiB
// ahead (one prefetcht0 per 64-byte line). On the AVX-512 development machine (an Intel Xeon
// VM, 2 cores) it raised the streaming regime from about 0.85 of the read probe to 0.97 (1 and
// 2 KiB alike; 512 B: 0.92, 4 KiB: 0.91), where on the AVX2 Zen 3 machine it had cost 15-25 %,
// which is why the AVX2 kernel stays without it. The batch path is compute-bound and has none.
//
// Tails: a dot product runs over full blocks of 32, then up to two masked blocks of 16 in
// natural order. Masked loads read nothing past the last element (masked-out lanes do not
// fault), so a row that ends at the end of a memory-mapped file is safe, and row padding (which
// the tests fill with NaN) is never touched.

#include "expert-kernel-impl.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cstdint>
#include <immintrin.h>

#define WDMOE_AVX512_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

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

/// Elements per full block: two f32 vectors.
constexpr int kBlock = 32;

/// How far ahead of each decode row stream the kernel prefetches (see the file comment).
constexpr std::size_t kPrefetchBytes = 1024;

/// Asks for the cache line kPrefetchBytes past p into L1. A prefetch never faults, so that
/// address may lie past the weights' end; it is formed as an integer, since a pointer that far
/// past an object would be undefined behaviour.
static inline void
PrefetchAhead(const unsigned char* p)
{
    const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(p) + kPrefetchBytes;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
}

/// Mask selecting the first count (0 to 16) lanes.
static inline __mmask16
FirstLanes(int count)
{
    return static_cast<__mmask16>((1u << count) - 1u);
}

/// The sum of the sixteen lanes. Not _mm512_reduce_add_ps nor _mm512_castps512_ps256: GCC 12
/// warns (-Wuninitialized) about the undefined vector they pass as a merge source (GCC bug
/// 105593); the zero-masked extracts have no such operand.
WDMOE_AVX512_TARGET static inline float
HorizontalSum(__m512 v)
{
    const __m256d low = _mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 0);
    const __m256d high = _mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 1);
    const __m256 s8 = _mm256_add_ps(_mm256_castpd_ps(low), _mm256_castpd_ps(high));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Sixteen consecutive weights at p, in natural order, widened to f32; only the lanes in m are
/// read, the others are zero.
template <DType T>
WDMOE_AVX512_TARGET static inline __m512
LoadMasked16(const unsigned char* p, __mmask16 m)
{
    if constexpr (T == DType::F32)
    {
        return _mm512_maskz_loadu_ps(m, p);
    }
    else
    {
        const __m256i raw = _mm256_maskz_loadu_epi16(m, p);
        if constexpr (T == DType::BF16)
        {
            // bf16 is the upper half of an f32: zero-extend to 32 bits and shift into place.
            return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
        }
        else
        {
            return _mm512_cvtph_ps(raw);
        }
    }
}

/// Thirty-two consecutive weights at p, widened into two vectors in the order the activation
/// is kept in: for bf16 the even- and odd-indexed elements (pair-split order), otherwise the
/// first and the second sixteen.
template <DType T>
WDMOE_AVX512_TARGET static inline void
Load32(const unsigned char* p, __m512& lo, __m512& hi)
{
    if constexpr (T == DType::BF16)
    {
        // Each 32-bit lane holds elements 2j (low half) and 2j + 1 (high half) on this
        // little-endian machine; a bf16 in the high half of a lane is already that f32.
        const __m512i raw = _mm512_loadu_si512(p);
        lo = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
        hi = _mm512_castsi512_ps(
            _mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
    }
    else if constexpr (T == DType::F32)
    {
        lo = _mm512_loadu_ps(p);
        hi = _mm512_loadu_ps(p + 64);
    }
    else
    {
        lo = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        hi = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    }
}

/// acc + w[0..32) . v[0..32) with the weights at p and v in the matching order.
template <DType T>
WDMOE_AVX512_TARGET static inline __m512
Fma32(const unsigned char* p, __m512 vLo, __m512 vHi, __m512 acc)
{
    __m512 lo;
    __m512 hi;
    Load32<T>(p, lo, hi);
    return _mm512_fmadd_ps(hi, vHi, _mm512_fmadd_ps(lo, vLo, acc));
}

/// The tail of a dot product, elements [k, length) with length - k < 32, as up to two masked
/// parts of sixteen: each part's first element and the mask of its lanes.
struct TailParts
{
    int offsets[2];
    __mmask16 masks[2];
    int count;
};

static inline TailParts
SplitTail(int k, int length)
{
    const int rest = length - k;
    TailParts t{{k, k + 16}, {0, 0}, 0};
    if (rest > 0)
    {
        t.masks[0] = FirstLanes(rest < 16 ? rest : 16);
        t.count = 1;
    }
    if (rest > 16)
    {
        t.masks[1] = FirstLanes(rest - 16);
        t.count = 2;
    }
    return t;
}

// ---- Decode (one token) ----------------------------------------------------------------------

/// Four rows of w1 and of w3 against x: eight row streams in flight, each load of x feeding
/// eight rows, eight independent accumulators.
template <DType T>
WDMOE_AVX512_TARGET static void
GateUpFourRows(const unsigned char* const row1[4],
               const unsigned char* const row3[4],
               const float* x,
               int dModel,
               float h[4])
{
    constexpr std::size_t es = kElemSize<T>;
    __m512 g[4];
    __m512 u[4];
    for (int r = 0; r < 4; ++r)
    {
        g[r] = _mm512_setzero_ps();
        u[r] = _mm512_setzero_ps();
    }
    int k = 0;
    for (; k + kBlock <= dModel; k += kBlock)
    {
        const __m512 xLo = _mm512_loadu_ps(x + k);
        const __m512 xHi = _mm512_loadu_ps(x + k + 16);
        const std::size_t off = static_cast<std::size_t>(k) * es;
        for (int r = 0; r < 4; ++r)
        {
            PrefetchAhead(row1[r] + off);
            PrefetchAhead(row3[r] + off);
            g[r] = Fma32<T>(row1[r] + off, xLo, xHi, g[r]);
            u[r] = Fma32<T>(row3[r] + off, xLo, xHi, u[r]);
        }
    }
    const TailParts tail = SplitTail(k, dModel);
    for (int part = 0; part < tail.count; ++part)
    {
        const __mmask16 m = tail.masks[part];
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + tail.offsets[part]);
        const std::size_t off = static_cast<std::size_t>(tail.offsets[part]) * es;
        for (int r = 0; r < 4; ++r)
        {
            g[r] = _mm512_fmadd_ps(LoadMasked16<T>(row1[r] + off, m), xv, g[r]);
            u[r] = _mm512_fmadd_ps(LoadMasked16<T>(row3[r] + off, m), xv, u[r]);
        }
    }
    for (int r = 0; r < 4; ++r)
    {
        h[r] = SiluTimes(HorizontalSum(g[r]), HorizontalSum(u[r]));
    }
}

/// Dot product of one stored row with a float vector (in the matching order).
template <DType T>
WDMOE_AVX512_TARGET static float
DotRow(const unsigned char* row, const float* v, int length)
{
    constexpr std::size_t es = kElemSize<T>;
    __m512 a0 = _mm512_setzero_ps();
    __m512 a1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + kBlock <= length; k += kBlock)
    {
        __m512 lo;
        __m512 hi;
        Load32<T>(row + static_cast<std::size_t>(k) * es, lo, hi);
        a0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(v + k), a0);
        a1 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(v + k + 16), a1);
    }
    const TailParts tail = SplitTail(k, length);
    for (int part = 0; part < tail.count; ++part)
    {
        const __mmask16 m = tail.masks[part];
        const int at = tail.offsets[part];
        a0 = _mm512_fmadd_ps(LoadMasked16<T>(row + static_cast<std::size_t>(at) * es, m),
                             _mm512_maskz_loadu_ps(m, v + at),
                             a0);
    }
    return HorizontalSum(_mm512_add_ps(a0, a1));
}

/// Eight rows of w2 against h: eight row streams in flight, one accumulator per row.
template <DType T>
WDMOE_AVX512_TARGET static void
DownEightRows(const unsigned char* const row[8], const float* h, int dFf, float y[8])
{
    constexpr std::size_t es = kElemSize<T>;
    __m512 a[8];
    for (int r = 0; r < 8; ++r)
    {
        a[r] = _mm512_setzero_ps();
    }
    int k = 0;
    for (; k + kBlock <= dFf; k += kBlock)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        const __m512 hLo = _mm512_loadu_ps(h + k);
        const __m512 hHi = _mm512_loadu_ps(h + k + 16);
        for (int r = 0; r < 8; ++r)
        {
            PrefetchAhead(row[r] + off);
            a[r] = Fma32<T>(row[r] + off, hLo, hHi, a[r]);
        }
    }
    const TailParts tail = SplitTail(k, dFf);
    for (int part = 0; part < tail.count; ++part)
    {
        const __mmask16 m = tail.masks[part];
        const __m512 hv = _mm512_maskz_loadu_ps(m, h + tail.offsets[part]);
        const std::size_t off = static_cast<std::size_t>(tail.offsets[part]) * es;
        for (int r = 0; r < 8; ++r)
        {
            a[r] = _mm512_fmadd_ps(LoadMasked16<T>(row[r] + off, m), hv, a[r]);
        }
    }
    for (int r = 0; r < 8; ++r)
    {
        y[r] = HorizontalSum(a[r]);
    }
}

// ---- Batch (several tokens per weight row) ---------------------------------------------------

/// One row of w1 and one of w3 against kTokens tokens: each widened weight vector feeds
/// 2 * kTokens FMAs, so the rows are read from memory once per call; the re-reads for later
/// token blocks hit L1/L2. Writes h[t * hStride]. With 32 vector registers, eight tokens (16
/// accumulators) fit where the AVX2 kernel takes four.
template <DType T, int kTokens>
WDMOE_AVX512_TARGET static void
GateUpRowTokens(const unsigned char* row1,
                const unsigned char* row3,
                const float* X,
                int dModel,
                float* h,
                std::size_t hStride)
{
    constexpr std::size_t es = kElemSize<T>;
    __m512 g[kTokens];
    __m512 u[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        g[t] = _mm512_setzero_ps();
        u[t] = _mm512_setzero_ps();
    }
    const std::size_t xStride = static_cast<std::size_t>(dModel);
    int k = 0;
    for (; k + kBlock <= dModel; k += kBlock)
    {
        const std::size_t off = static_cast<std::size_t>(k) * es;
        __m512 lo1;
        __m512 hi1;
        __m512 lo3;
        __m512 hi3;
        Load32<T>(row1 + off, lo1, hi1);
        Load32<T>(row3 + off, lo3, hi3);
        for (int t = 0; t < kTokens; ++t)
        {
            const __m512 xLo = _mm512_loadu_ps(X + t * xStride + k);
            const __m512 xHi = _mm512_loadu_ps(X + t * xStride + k + 16);
            g[t] = _mm512_fmadd_ps(hi1, xHi, _mm512_fmadd_ps(lo1, xLo, g[t]));
            u[t] = _mm512_fmadd_ps(hi3, xHi, _mm512_fmadd_ps(lo3, xLo, u[t]));
        }
    }
    const TailParts tail = SplitTail(k, dModel);
    for (int part = 0; part < tail.count; ++part)
    {
        const __mmask16 m = tail.masks[part];
        const int at = tail.offsets[part];
        const __m512 w1v = LoadMasked16<T>(row1 + static_cast<std::size_t>(at) * es, m);
        const __m512 w3v = LoadMasked16<T>(row3 + static_cast<std::size_t>(at) * es, m);
        for (int t = 0; t < kTokens; ++t)
        {
            const __m512 xv = _mm512_maskz_loadu_ps(m, X + t * xStride + at);
            g[t] = _mm512_fmadd_ps(w1v, xv, g[t]);
            u[t] = _mm512_fmadd_ps(w3v, xv, u[t]);
        }
    }
    for (int t = 0; t < kTokens; ++t)
    {
        h[t * hStride] = SiluTimes(HorizontalSum(g[t]), HorizontalSum(u[t]));
    }
}

/// One row of w2 against kTokens rows of H; writes y[t * yStride].
template <DType T, int kTokens>
WDMOE_AVX512_TARGET static void
DownRowTokens(const unsigned char* row, const float* H, int dFf, float* y, std::size_t yStride)
{
    constexpr std::size_t es = kElemSize<T>;
    __m512 a[kTokens];
    for (int t = 0; t < kTokens; ++t)
    {
        a[t] = _mm512_setzero_ps();
    }
    const std::size_t hStride = static_cast<std::size_t>(dFf);
    int k = 0;
    for (; k + kBlock <= dFf; k += kBlock)
    {
        __m512 lo;
        __m512 hi;
        Load32<T>(row + static_cast<std::size_t>(k) * es, lo, hi);
        for (int t = 0; t < kTokens; ++t)
        {
            const float* h = H + t * hStride + k;
            a[t] = _mm512_fmadd_ps(hi,
                                   _mm512_loadu_ps(h + 16),
                                   _mm512_fmadd_ps(lo, _mm512_loadu_ps(h), a[t]));
        }
    }
    const TailParts tail = SplitTail(k, dFf);
    for (int part = 0; part < tail.count; ++part)
    {
        const __mmask16 m = tail.masks[part];
        const int at = tail.offsets[part];
        const __m512 wv = LoadMasked16<T>(row + static_cast<std::size_t>(at) * es, m);
        for (int t = 0; t < kTokens; ++t)
        {
            a[t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, H + t * hStride + at), a[t]);
        }
    }
    for (int t = 0; t < kTokens; ++t)
    {
        y[t * yStride] = HorizontalSum(a[t]);
    }
}

/// Tokens per call of the batch row kernels; the last block of a batch takes the remainder.
constexpr int kTokenBlock = 8;

/// Where row r's result goes in a row of H: pair-split order where the dtype's kernels use it.
template <DType T>
static inline int
HIndex(int r, int dFf)
{
    constexpr int block = PairSplitBlock(KernelIsa::Avx512, T);
    return block != 0 ? PairSplitIndex(r, dFf, block) : r;
}

/// GateUpRowTokens for 1 to kTokenBlock tokens, chosen at run time.
template <DType T>
WDMOE_AVX512_TARGET static void
GateUpRowSomeTokens(int tokens,
                    const unsigned char* row1,
                    const unsigned char* row3,
                    const float* X,
                    int dModel,
                    float* h,
                    std::size_t hStride)
{
    switch (tokens)
    {
    case 8:
        return GateUpRowTokens<T, 8>(row1, row3, X, dModel, h, hStride);
    case 7:
        return GateUpRowTokens<T, 7>(row1, row3, X, dModel, h, hStride);
    case 6:
        return GateUpRowTokens<T, 6>(row1, row3, X, dModel, h, hStride);
    case 5:
        return GateUpRowTokens<T, 5>(row1, row3, X, dModel, h, hStride);
    case 4:
        return GateUpRowTokens<T, 4>(row1, row3, X, dModel, h, hStride);
    case 3:
        return GateUpRowTokens<T, 3>(row1, row3, X, dModel, h, hStride);
    case 2:
        return GateUpRowTokens<T, 2>(row1, row3, X, dModel, h, hStride);
    case 1:
        return GateUpRowTokens<T, 1>(row1, row3, X, dModel, h, hStride);
    default:
        return;
    }
}

/// DownRowTokens for 1 to kTokenBlock tokens, chosen at run time.
template <DType T>
WDMOE_AVX512_TARGET static void
DownRowSomeTokens(int tokens,
                  const unsigned char* row,
                  const float* H,
                  int dFf,
                  float* y,
                  std::size_t yStride)
{
    switch (tokens)
    {
    case 8:
        return DownRowTokens<T, 8>(row, H, dFf, y, yStride);
    case 7:
        return DownRowTokens<T, 7>(row, H, dFf, y, yStride);
    case 6:
        return DownRowTokens<T, 6>(row, H, dFf, y, yStride);
    case 5:
        return DownRowTokens<T, 5>(row, H, dFf, y, yStride);
    case 4:
        return DownRowTokens<T, 4>(row, H, dFf, y, yStride);
    case 3:
        return DownRowTokens<T, 3>(row, H, dFf, y, yStride);
    case 2:
        return DownRowTokens<T, 2>(row, H, dFf, y, yStride);
    case 1:
        return DownRowTokens<T, 1>(row, H, dFf, y, yStride);
    default:
        return;
    }
}

template <DType T>
WDMOE_AVX512_TARGET static void
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
        for (int t = 0; t < n; t += kTokenBlock)
        {
            const int tokens = n - t < kTokenBlock ? n - t : kTokenBlock;
            GateUpRowSomeTokens<T>(tokens,
                                   row1,
                                   row3,
                                   X + t * dModel,
                                   w.dModel,
                                   hRow + t * dFf,
                                   dFf);
        }
    }
}

template <DType T>
WDMOE_AVX512_TARGET static void
DownRowsBatch(const ExpertWeights& w, const float* H, int n, int rowBegin, int rowEnd, float* Y)
{
    constexpr std::size_t es = kElemSize<T>;
    const auto* w2 = static_cast<const unsigned char*>(w.w2);
    const std::size_t dModel = static_cast<std::size_t>(w.dModel);
    const std::size_t dFf = static_cast<std::size_t>(w.dFf);
    for (int i = rowBegin; i < rowEnd; ++i)
    {
        const unsigned char* row = w2 + static_cast<std::size_t>(i) * w.w2RowStride * es;
        for (int t = 0; t < n; t += kTokenBlock)
        {
            const int tokens = n - t < kTokenBlock ? n - t : kTokenBlock;
            DownRowSomeTokens<T>(tokens, row, H + t * dFf, w.dFf, Y + t * dModel + i, dModel);
        }
    }
}

} // namespace

#define WDMOE_ISA_TARGET WDMOE_AVX512_TARGET
#define WDMOE_ISA_GATE_UP_ROWS GateUpRowsAvx512
#define WDMOE_ISA_DOWN_ROWS DownRowsAvx512
#include "expert-kernel-rows.inc"
#undef WDMOE_ISA_TARGET
#undef WDMOE_ISA_GATE_UP_ROWS
#undef WDMOE_ISA_DOWN_ROWS

} // namespace detail
} // namespace llm
} // namespace wdmoe

#endif // x86
