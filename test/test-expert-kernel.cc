// Tests for the thread pool and the SwiGLU expert kernels (scalar, AVX2 and AVX-512), against
// an independent double-precision reference that decodes the stored weights on its own. A
// vector ISA this CPU lacks is skipped with a warning naming it (Catch2 2 has no SKIP).

#include "expert-kernel.h"
#include "thread-pool.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace wdmoe::llm;

namespace
{

// ---- Weights with an independent decoder ------------------------------------------------------

/// A [rows][cols] weight matrix stored as dtype with a row stride of `stride` elements, placed
/// `misalign` bytes past an allocation so the kernels see unaligned rows. `value` holds the
/// exact stored values in double; padding between rows holds NaN so reading it shows up.
struct StoredMatrix
{
    DType dtype;
    int rows;
    int cols;
    std::size_t stride;
    std::vector<unsigned char> bytes;
    std::size_t misalign;
    std::vector<double> value; ///< [rows][cols], exactly what is stored

    const void* Data() const { return bytes.data() + misalign; }

    double At(int r, int c) const { return value[static_cast<std::size_t>(r) * cols + c]; }
};

std::size_t
ElemSize(DType t)
{
    return t == DType::F32 ? 4 : 2;
}

/// Draws one random storable value and its 16- or 32-bit encoding. The encodings are built
/// here from sign, exponent and mantissa fields rather than with dtype.h, so the reference
/// does not share code with the kernels.
void
RandomEncoded(DType t, std::mt19937& rng, std::uint32_t* bits, double* value)
{
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    switch (t)
    {
    case DType::F32:
    {
        const float f = uni(rng);
        std::memcpy(bits, &f, 4);
        *value = f;
        return;
    }
    case DType::BF16:
    {
        // Truncating an f32 gives a bf16 whose value is exactly the truncated f32.
        const float f = uni(rng);
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        *bits = u >> 16;
        const std::uint32_t widened = *bits << 16;
        float back;
        std::memcpy(&back, &widened, 4);
        *value = back;
        return;
    }
    case DType::F16:
    {
        const auto sign = static_cast<std::uint32_t>(rng() & 1u);
        const auto mantissa = static_cast<std::uint32_t>(rng() & 0x3FFu);
        // Mostly normals in [2^-5, 2), one in sixteen subnormal (exponent field 0).
        auto exponent = static_cast<std::uint32_t>(10 + rng() % 6);
        if (rng() % 16 == 0)
        {
            exponent = 0;
        }
        *bits = (sign << 15) | (exponent << 10) | mantissa;
        const double magnitude = exponent == 0
                                     ? std::ldexp(mantissa / 1024.0, -14)
                                     : std::ldexp(1.0 + mantissa / 1024.0, int(exponent) - 15);
        *value = sign ? -magnitude : magnitude;
        return;
    }
    }
}

void
StoreBits(DType t, unsigned char* p, std::uint32_t bits)
{
    // Little-endian, as safetensors stores it and x86 reads it.
    const std::size_t n = ElemSize(t);
    for (std::size_t i = 0; i < n; ++i)
    {
        p[i] = static_cast<unsigned char>(bits >> (8 * i));
    }
}

std::uint32_t
NanBits(DType t)
{
    return t == DType::F32 ? 0x7FC00000u : (t == DType::BF16 ? 0x7FC0u : 0x7E00u);
}

StoredMatrix
MakeMatrix(DType t, int rows, int cols, std::size_t stride, std::size_t misalign, std::mt19937& rng)
{
    StoredMatrix m{t, rows, cols, stride, {}, misalign, {}};
    const std::size_t es = ElemSize(t);
    m.bytes.resize(misalign + static_cast<std::size_t>(rows) * stride * es);
    m.value.resize(static_cast<std::size_t>(rows) * cols);
    unsigned char* base = m.bytes.data() + misalign;
    for (int r = 0; r < rows; ++r)
    {
        for (std::size_t c = 0; c < stride; ++c)
        {
            unsigned char* p = base + (static_cast<std::size_t>(r) * stride + c) * es;
            if (c < static_cast<std::size_t>(cols))
            {
                std::uint32_t bits = 0;
                double v = 0.0;
                RandomEncoded(t, rng, &bits, &v);
                StoreBits(t, p, bits);
                m.value[static_cast<std::size_t>(r) * cols + c] = v;
            }
            else
            {
                StoreBits(t, p, NanBits(t));
            }
        }
    }
    return m;
}

struct TestExpert
{
    StoredMatrix w1;
    StoredMatrix w3;
    StoredMatrix w2;
    ExpertWeights weights;
};

/// Random expert; padding > 0 makes every row stride longer than the row.
TestExpert
MakeExpert(DType t, int dModel, int dFf, int padding, std::mt19937& rng)
{
    const std::size_t pad = static_cast<std::size_t>(padding);
    TestExpert e{MakeMatrix(t, dFf, dModel, dModel + pad, 1, rng),
                 MakeMatrix(t, dFf, dModel, dModel + pad, 3, rng),
                 MakeMatrix(t, dModel, dFf, dFf + pad, 2, rng),
                 {}};
    e.weights.dtype = t;
    e.weights.w1 = e.w1.Data();
    e.weights.w3 = e.w3.Data();
    e.weights.w2 = e.w2.Data();
    e.weights.dModel = dModel;
    e.weights.dFf = dFf;
    // Zero strides mean "dense"; use that spelling when there is no padding.
    e.weights.w1RowStride = padding ? e.w1.stride : 0;
    e.weights.w3RowStride = padding ? e.w3.stride : 0;
    e.weights.w2RowStride = padding ? e.w2.stride : 0;
    return e;
}

// ---- Double-precision reference and its error bound -------------------------------------------

/// The reference output for one token and, per output, a rigorous bound on the error of a
/// float implementation.
///
/// With u = 2^-24, any order of float summation of n products has an error of at most
/// gamma_n = n u / (1 - n u) times the sum of the |products| (Higham, Accuracy and Stability,
/// 3.1). Phase 1 therefore has |dg| <= gamma_dModel * sum|w1 x| and likewise du. silu has a
/// derivative of magnitude below 1.1, so |dh| <= 1.1 |dg| |u| + |silu(g)| |du| plus a few
/// roundings of h itself (exp, add, divide, multiply: 4 u |h|, with std::exp within 1 ulp).
/// Phase 2 adds sum |w2| |dh| for the propagated error and gamma_dFf * sum |w2 h| for its own
/// summation. The bound is a worst case, so a correct kernel sits far inside it, while a
/// kernel that drops, repeats or misreads a single term is off by the order of that term,
/// which for these shapes is far larger than the bound.
struct Reference
{
    std::vector<double> y;
    std::vector<double> tolerance;
};

Reference
ReferenceForward(const TestExpert& e, const float* x)
{
    const int dModel = e.weights.dModel;
    const int dFf = e.weights.dFf;
    const double u = std::ldexp(1.0, -24);
    auto gamma = [u](int n) { return n * u / (1.0 - n * u); };

    std::vector<double> h(dFf);
    std::vector<double> hError(dFf);
    for (int j = 0; j < dFf; ++j)
    {
        double g = 0, up = 0, gAbs = 0, upAbs = 0;
        for (int k = 0; k < dModel; ++k)
        {
            g += e.w1.At(j, k) * x[k];
            up += e.w3.At(j, k) * x[k];
            gAbs += std::abs(e.w1.At(j, k) * x[k]);
            upAbs += std::abs(e.w3.At(j, k) * x[k]);
        }
        const double silu = g / (1.0 + std::exp(-g));
        h[j] = silu * up;
        hError[j] = gamma(dModel) * (1.1 * gAbs * std::abs(up) + std::abs(silu) * upAbs) +
                    4 * u * std::abs(h[j]);
    }
    Reference ref;
    ref.y.resize(dModel);
    ref.tolerance.resize(dModel);
    for (int i = 0; i < dModel; ++i)
    {
        double y = 0, propagated = 0, terms = 0;
        for (int j = 0; j < dFf; ++j)
        {
            y += e.w2.At(i, j) * h[j];
            propagated += std::abs(e.w2.At(i, j)) * hError[j];
            terms += std::abs(e.w2.At(i, j)) * (std::abs(h[j]) + hError[j]);
        }
        ref.y[i] = y;
        // Factor 2 covers the second-order terms the first-order analysis above drops; the
        // tiny absolute floor only matters when every term is zero.
        ref.tolerance[i] = 2.0 * (propagated + gamma(dFf) * terms) + 1e-30;
    }
    return ref;
}

std::vector<float>
RandomVector(std::size_t n, std::mt19937& rng)
{
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& f : v)
    {
        f = uni(rng);
    }
    return v;
}

/// Checks one token's output against the reference: one Catch check for the first output
/// outside its bound (with the details), one for the count of such outputs.
void
CheckAgainstReference(const float* y, const Reference& ref, const std::string& what)
{
    int bad = 0;
    for (std::size_t i = 0; i < ref.y.size(); ++i)
    {
        const double err = std::abs(static_cast<double>(y[i]) - ref.y[i]);
        if (!(err <= ref.tolerance[i]))
        {
            if (bad == 0)
            {
                INFO(what << ": output " << i << " got " << y[i] << " want " << ref.y[i]
                          << " error " << err << " bound " << ref.tolerance[i]);
                CHECK(err <= ref.tolerance[i]);
            }
            ++bad;
        }
    }
    INFO(what);
    CHECK(bad == 0);
}

/// Every kernel this CPU can run, the scalar reference first. Warns once per missing ISA so a
/// run on an older CPU says what it did not test.
std::vector<KernelIsa>
IsasToTest()
{
    std::vector<KernelIsa> isas{KernelIsa::Scalar};
    for (KernelIsa isa : {KernelIsa::Avx2, KernelIsa::Avx512})
    {
        if (CpuSupportsIsa(isa))
        {
            isas.push_back(isa);
        }
        else
        {
            WARN("Skipped: this CPU cannot run the " << KernelIsaName(isa) << " kernel");
        }
    }
    return isas;
}

/// The vector ISAs this CPU can run (IsasToTest without the scalar reference).
std::vector<KernelIsa>
VectorIsasToTest()
{
    std::vector<KernelIsa> isas = IsasToTest();
    isas.erase(isas.begin());
    return isas;
}

const char*
DTypeLabel(DType t)
{
    return t == DType::F32 ? "f32" : (t == DType::BF16 ? "bf16" : "f16");
}

} // namespace

// ---- ThreadPool -------------------------------------------------------------------------------

TEST_CASE("ThreadPool runs every chunk exactly once on valid thread ids", "[thread-pool]")
{
    for (int threads : {1, 2, 3, 5})
    {
        ThreadPool pool(threads);
        REQUIRE(pool.Size() == threads);
        for (int chunks : {0, 1, 2, 3, 7, 64, 1000})
        {
            std::vector<std::atomic<int>> hits(static_cast<std::size_t>(chunks));
            for (auto& h : hits)
            {
                h.store(0);
            }
            std::atomic<int> badThread{0};
            pool.ParallelFor(chunks, [&](int chunk, int thread) {
                hits[static_cast<std::size_t>(chunk)].fetch_add(1);
                if (thread < 0 || thread >= threads)
                {
                    badThread.fetch_add(1);
                }
            });
            int wrong = 0;
            for (auto& h : hits)
            {
                wrong += h.load() != 1;
            }
            INFO("threads " << threads << " chunks " << chunks);
            CHECK(wrong == 0);
            CHECK(badThread.load() == 0);
        }
    }
}

TEST_CASE("ThreadPool with no argument has one thread per core", "[thread-pool]")
{
    ThreadPool pool;
    const unsigned hw = std::thread::hardware_concurrency();
    CHECK(pool.Size() == (hw == 0 ? 1 : static_cast<int>(hw)));
}

TEST_CASE("ThreadPool survives many tiny calls", "[thread-pool]")
{
    ThreadPool pool(3);
    std::atomic<long> chunksRun{0};
    std::atomic<long> indexSum{0};
    long expectedChunks = 0;
    long expectedIndexSum = 0;
    for (int call = 0; call < 10000; ++call)
    {
        const int chunks = 1 + call % 5;
        expectedChunks += chunks;
        expectedIndexSum += static_cast<long>(chunks) * (chunks - 1) / 2;
        pool.ParallelFor(chunks, [&](int chunk, int) {
            chunksRun.fetch_add(1);
            indexSum.fetch_add(chunk);
        });
    }
    CHECK(chunksRun.load() == expectedChunks);
    CHECK(indexSum.load() == expectedIndexSum);
}

TEST_CASE("ThreadPool per-thread slots see no interference", "[thread-pool]")
{
    // The documented use of the thread id: scratch per thread, no atomics.
    ThreadPool pool(3);
    std::vector<long> perThread(static_cast<std::size_t>(pool.Size()) * 16, 0);
    for (int call = 0; call < 200; ++call)
    {
        pool.ParallelFor(97, [&](int chunk, int thread) {
            perThread[static_cast<std::size_t>(thread) * 16] += chunk;
        });
    }
    long sum = 0;
    for (long v : perThread)
    {
        sum += v;
    }
    CHECK(sum == 200L * (96 * 97 / 2));
}

TEST_CASE("ThreadPool can be created and destroyed repeatedly", "[thread-pool]")
{
    for (int i = 0; i < 50; ++i)
    {
        ThreadPool pool(1 + i % 4);
        if (i % 2 == 0)
        {
            std::atomic<int> count{0};
            pool.ParallelFor(10, [&](int, int) { count.fetch_add(1); });
            CHECK(count.load() == 10);
        }
        // Odd iterations destroy a pool whose workers never ran a job.
    }
}

TEST_CASE("ThreadPool rethrows a chunk's exception and stays usable", "[thread-pool]")
{
    ThreadPool pool(3);
    CHECK_THROWS_AS(pool.ParallelFor(50,
                                     [](int chunk, int) {
                                         if (chunk == 17)
                                         {
                                             throw std::runtime_error("chunk 17");
                                         }
                                     }),
                    std::runtime_error);
    std::atomic<int> count{0};
    pool.ParallelFor(50, [&](int, int) { count.fetch_add(1); });
    CHECK(count.load() == 50);
}

// ---- Kernels ----------------------------------------------------------------------------------

TEST_CASE("ISA selection", "[expert-kernel]")
{
    CHECK(std::string(KernelIsaName(KernelIsa::Scalar)) == "scalar");
    CHECK(std::string(KernelIsaName(KernelIsa::Avx2)) == "avx2");
    CHECK(std::string(KernelIsaName(KernelIsa::Avx512)) == "avx512");
    for (KernelIsa isa : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512})
    {
        KernelIsa parsed = static_cast<KernelIsa>(-1);
        CHECK(ParseKernelIsa(KernelIsaName(isa), &parsed));
        CHECK(parsed == isa);
    }
    KernelIsa untouched = KernelIsa::Avx2;
    for (const char* bad : {"auto", "AVX2", "avx-512", "sse", ""})
    {
        CHECK_FALSE(ParseKernelIsa(bad, &untouched));
    }
    CHECK(untouched == KernelIsa::Avx2);

    // AVX-512 implies AVX2 on every CPU that has it, and the best ISA is the widest supported.
    CHECK(CpuSupportsIsa(KernelIsa::Scalar));
    CHECK((!CpuSupportsAvx512() || CpuSupportsAvx2()));
    const KernelIsa best = CpuSupportsAvx512()
                               ? KernelIsa::Avx512
                               : (CpuSupportsAvx2() ? KernelIsa::Avx2 : KernelIsa::Scalar);
    CHECK(BestKernelIsa() == best);

    // Forcing an ISA is accepted exactly when the CPU has it, with a message naming it.
    for (KernelIsa isa : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512})
    {
        if (CpuSupportsIsa(isa))
        {
            CHECK_NOTHROW(CheckKernelIsaSupported(isa));
        }
        else
        {
            WARN("This CPU lacks the " << KernelIsaName(isa) << " kernel's features");
            CHECK_THROWS_WITH(CheckKernelIsaSupported(isa), Catch::Contains(KernelIsaName(isa)));
        }
    }
    CHECK_THROWS_AS(CheckKernelIsaSupported(static_cast<KernelIsa>(42)), std::invalid_argument);
}

TEST_CASE("ExpertForward matches the double-precision reference", "[expert-kernel]")
{
    // Dimensions around and away from the vector widths (8 lanes, 16-element unrolls, 4-row
    // groups), including 1; the larger ones exceed the single-thread threshold (128 KiB) so
    // the pooled path with partial chunks runs too.
    const std::vector<std::pair<int, int>> shapes{{1, 1},
                                                  {7, 13},
                                                  {13, 7},
                                                  {33, 100},
                                                  {100, 33},
                                                  {8, 24},
                                                  {24, 16},
                                                  {257, 257},
                                                  {100, 257},
                                                  {520, 1000}};
    std::mt19937 rng(12345);
    std::vector<std::unique_ptr<ThreadPool>> pools;
    pools.push_back(nullptr);
    for (int t : {1, 2, 3})
    {
        pools.push_back(std::make_unique<ThreadPool>(t));
    }
    for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    {
        for (const auto& shape : shapes)
        {
            for (int padding : {0, 5})
            {
                const TestExpert e = MakeExpert(dtype, shape.first, shape.second, padding, rng);
                const std::vector<float> x = RandomVector(shape.first, rng);
                const Reference ref = ReferenceForward(e, x.data());
                for (KernelIsa isa : IsasToTest())
                {
                    for (const auto& pool : pools)
                    {
                        std::vector<float> y(shape.first, -12345.0f);
                        ExpertForward(e.weights, x.data(), y.data(), pool.get(), isa);
                        const std::string what =
                            std::string(DTypeLabel(dtype)) + " " + KernelIsaName(isa) +
                            " d_model " + std::to_string(shape.first) + " d_ff " +
                            std::to_string(shape.second) + " padding " + std::to_string(padding) +
                            " threads " + std::to_string(pool ? pool->Size() : 0);
                        CheckAgainstReference(y.data(), ref, what);
                    }
                }
            }
        }
    }
}

TEST_CASE("Vector and scalar kernels agree", "[expert-kernel]")
{
    std::mt19937 rng(777);
    ThreadPool pool(2);
    for (KernelIsa isa : VectorIsasToTest())
    {
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
        {
            for (const auto& shape : std::vector<std::pair<int, int>>{{13, 33}, {257, 100}})
            {
                const TestExpert e = MakeExpert(dtype, shape.first, shape.second, 3, rng);
                const std::vector<float> x = RandomVector(shape.first, rng);
                const Reference ref = ReferenceForward(e, x.data());
                std::vector<float> ys(shape.first);
                std::vector<float> yv(shape.first);
                ExpertForward(e.weights, x.data(), ys.data(), &pool, KernelIsa::Scalar);
                ExpertForward(e.weights, x.data(), yv.data(), &pool, isa);
                // Each is within its bound of the reference, so they are within twice it of
                // each other.
                for (int i = 0; i < shape.first; ++i)
                {
                    INFO(KernelIsaName(isa) << " " << DTypeLabel(dtype) << " output " << i);
                    CHECK(std::abs(static_cast<double>(ys[i]) - yv[i]) <= 2 * ref.tolerance[i]);
                }
            }
        }
    }
}

TEST_CASE("Every kernel matches the reference on random shapes", "[expert-kernel]")
{
    // Random d_model and d_ff from 1 to 300, so most are not multiples of 8, 16 or 32 and the
    // tails (AVX2: a block of 8 and single elements; AVX-512: one or two masked blocks of 16)
    // are reached in every combination; random token counts reach every batch remainder. The
    // bound is ReferenceForward's: rigorous for any order of f32 accumulation of exactly
    // widened weights, which every kernel here does.
    std::mt19937 rng(4242);
    std::uniform_int_distribution<int> dim(1, 300);
    std::uniform_int_distribution<int> tokens(1, 19);
    ThreadPool pool(2);
    for (int trial = 0; trial < 12; ++trial)
    {
        const int dModel = dim(rng);
        const int dFf = dim(rng);
        const int n = tokens(rng);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
        {
            const TestExpert e = MakeExpert(dtype, dModel, dFf, trial % 3, rng);
            const std::vector<float> X = RandomVector(static_cast<std::size_t>(n) * dModel, rng);
            std::vector<Reference> refs;
            for (int t = 0; t < n; ++t)
            {
                refs.push_back(ReferenceForward(e, X.data() + t * dModel));
            }
            for (KernelIsa isa : IsasToTest())
            {
                const std::string what = std::string(DTypeLabel(dtype)) + " " + KernelIsaName(isa) +
                                         " d_model " + std::to_string(dModel) + " d_ff " +
                                         std::to_string(dFf) + " n " + std::to_string(n);
                std::vector<float> Y(static_cast<std::size_t>(n) * dModel, -1.0f);
                ExpertForwardBatch(e.weights, X.data(), n, Y.data(), &pool, isa);
                std::vector<float> y(dModel, -1.0f);
                for (int t = 0; t < n; ++t)
                {
                    CheckAgainstReference(Y.data() + t * dModel, refs[t], "batch " + what);
                    ExpertForward(e.weights, X.data() + t * dModel, y.data(), nullptr, isa);
                    CheckAgainstReference(y.data(), refs[t], "decode " + what);
                }
            }
        }
    }
}

TEST_CASE("ExpertForwardBatch equals decoding each token", "[expert-kernel]")
{
    const std::vector<std::pair<int, int>> shapes{{1, 1},
                                                  {7, 13},
                                                  {33, 100},
                                                  {257, 100},
                                                  {100, 257}};
    std::mt19937 rng(2024);
    std::vector<std::unique_ptr<ThreadPool>> pools;
    for (int t : {1, 2, 3})
    {
        pools.push_back(std::make_unique<ThreadPool>(t));
    }
    for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    {
        for (const auto& shape : shapes)
        {
            const int dModel = shape.first;
            const TestExpert e = MakeExpert(dtype, dModel, shape.second, 2, rng);
            for (int n : {1, 3, 17})
            {
                const std::vector<float> X =
                    RandomVector(static_cast<std::size_t>(n) * dModel, rng);
                std::vector<Reference> refs;
                for (int t = 0; t < n; ++t)
                {
                    refs.push_back(ReferenceForward(e, X.data() + t * dModel));
                }
                for (KernelIsa isa : IsasToTest())
                {
                    for (const auto& pool : pools)
                    {
                        std::vector<float> Y(static_cast<std::size_t>(n) * dModel, -1.0f);
                        ExpertForwardBatch(e.weights, X.data(), n, Y.data(), pool.get(), isa);
                        std::vector<float> yOne(dModel);
                        for (int t = 0; t < n; ++t)
                        {
                            const std::string what =
                                std::string(DTypeLabel(dtype)) + " " + KernelIsaName(isa) +
                                " d_model " + std::to_string(dModel) + " d_ff " +
                                std::to_string(shape.second) + " n " + std::to_string(n) +
                                " token " + std::to_string(t) + " threads " +
                                std::to_string(pool->Size());
                            CheckAgainstReference(Y.data() + t * dModel, refs[t], "batch " + what);
                            ExpertForward(e.weights,
                                          X.data() + t * dModel,
                                          yOne.data(),
                                          pool.get(),
                                          isa);
                            CheckAgainstReference(yOne.data(), refs[t], "decode " + what);
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("ExpertForwardBatch handles every token-block remainder", "[expert-kernel]")
{
    // The AVX2 batch kernel takes tokens in blocks (4 for gate/up, 8 for down), the AVX-512 one
    // in blocks of 8 for both, with separate code for each remainder; every n from 1 to 17
    // reaches each of them.
    std::mt19937 rng(31337);
    ThreadPool pool(2);
    for (DType dtype : {DType::BF16, DType::F16})
    {
        const int dModel = 33;
        const TestExpert e = MakeExpert(dtype, dModel, 100, 1, rng);
        for (int n = 1; n <= 17; ++n)
        {
            const std::vector<float> X = RandomVector(static_cast<std::size_t>(n) * dModel, rng);
            const std::vector<float> other =
                RandomVector(static_cast<std::size_t>(n) * dModel, rng);
            for (KernelIsa isa : IsasToTest())
            {
                std::vector<float> Y(static_cast<std::size_t>(n) * dModel, -1.0f);
                // A scalar call with other tokens first fills the calling thread's scratch, so
                // that an element the kernel forgets to write cannot pass by holding the right
                // value from a previous call.
                ExpertForwardBatch(e.weights, other.data(), n, Y.data(), &pool, KernelIsa::Scalar);
                ExpertForwardBatch(e.weights, X.data(), n, Y.data(), &pool, isa);
                for (int t = 0; t < n; ++t)
                {
                    const Reference ref = ReferenceForward(e, X.data() + t * dModel);
                    CheckAgainstReference(Y.data() + t * dModel,
                                          ref,
                                          std::string(DTypeLabel(dtype)) + " " +
                                              KernelIsaName(isa) + " n " + std::to_string(n) +
                                              " token " + std::to_string(t));
                }
            }
        }
    }
}

TEST_CASE("ExpertForwardBatch with no tokens does nothing", "[expert-kernel]")
{
    std::mt19937 rng(5);
    const TestExpert e = MakeExpert(DType::F32, 8, 8, 0, rng);
    CHECK_NOTHROW(ExpertForwardBatch(e.weights, nullptr, 0, nullptr, nullptr, KernelIsa::Scalar));
}

TEST_CASE("Expert kernels reject bad arguments", "[expert-kernel]")
{
    std::mt19937 rng(9);
    const TestExpert e = MakeExpert(DType::BF16, 16, 24, 0, rng);
    std::vector<float> x(16, 0.5f);
    std::vector<float> y(16);
    const KernelIsa isa = KernelIsa::Scalar;

    auto expectInvalid = [&](ExpertWeights w) {
        CHECK_THROWS_AS(ExpertForward(w, x.data(), y.data(), nullptr, isa), std::invalid_argument);
        CHECK_THROWS_AS(ExpertForwardBatch(w, x.data(), 1, y.data(), nullptr, isa),
                        std::invalid_argument);
    };
    ExpertWeights w = e.weights;
    w.w1 = nullptr;
    expectInvalid(w);
    w = e.weights;
    w.w3 = nullptr;
    expectInvalid(w);
    w = e.weights;
    w.w2 = nullptr;
    expectInvalid(w);
    w = e.weights;
    w.dModel = 0;
    expectInvalid(w);
    w = e.weights;
    w.dFf = -3;
    expectInvalid(w);
    w = e.weights;
    w.w1RowStride = 15; // shorter than d_model
    expectInvalid(w);
    w = e.weights;
    w.w2RowStride = 23; // shorter than d_ff
    expectInvalid(w);
    w = e.weights;
    w.dtype = static_cast<DType>(99);
    expectInvalid(w);

    CHECK_THROWS_AS(ExpertForward(e.weights, nullptr, y.data(), nullptr, isa),
                    std::invalid_argument);
    CHECK_THROWS_AS(ExpertForward(e.weights, x.data(), nullptr, nullptr, isa),
                    std::invalid_argument);
    // y may not alias x, not even partly.
    CHECK_THROWS_AS(ExpertForward(e.weights, x.data(), x.data(), nullptr, isa),
                    std::invalid_argument);
    std::vector<float> big(40);
    CHECK_THROWS_AS(ExpertForward(e.weights, big.data(), big.data() + 8, nullptr, isa),
                    std::invalid_argument);
    CHECK_NOTHROW(ExpertForward(e.weights, big.data(), big.data() + 16, nullptr, isa));

    CHECK_THROWS_AS(ExpertForwardBatch(e.weights, x.data(), -1, y.data(), nullptr, isa),
                    std::invalid_argument);
    CHECK_THROWS_AS(ExpertForwardBatch(e.weights, nullptr, 1, y.data(), nullptr, isa),
                    std::invalid_argument);
    CHECK_THROWS_AS(ExpertForwardBatch(e.weights, x.data(), 1, nullptr, nullptr, isa),
                    std::invalid_argument);
    CHECK_THROWS_AS(
        ExpertForward(e.weights, x.data(), y.data(), nullptr, static_cast<KernelIsa>(42)),
        std::invalid_argument);
}

TEST_CASE("Expert kernels handle extreme activations", "[expert-kernel]")
{
    // Very negative gate values make exp(-g) overflow; silu must give 0, not NaN.
    const int dModel = 8;
    const int dFf = 8;
    std::vector<float> w1(dFf * dModel, -100.0f);
    std::vector<float> w3(dFf * dModel, 1.0f);
    std::vector<float> w2(dModel * dFf, 1.0f);
    ExpertWeights w;
    w.dtype = DType::F32;
    w.w1 = w1.data();
    w.w3 = w3.data();
    w.w2 = w2.data();
    w.dModel = dModel;
    w.dFf = dFf;
    std::vector<float> x(dModel, 10.0f);
    for (KernelIsa isa : IsasToTest())
    {
        std::vector<float> y(dModel, 1.0f);
        ExpertForward(w, x.data(), y.data(), nullptr, isa);
        for (float v : y)
        {
            CHECK(v == 0.0f);
        }
    }
}

TEST_CASE("MatrixVectorForward matches the reference on random shapes", "[expert-kernel]")
{
    // y = W x against a double-precision sum of the stored values; the bound is 2 gamma_cols
    // sum |w x| (any order of f32 accumulation, Higham 3.1; factor 2 for the second order).
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> dim(1, 300);
    ThreadPool pool(2);
    const double u = std::ldexp(1.0, -24);
    for (int trial = 0; trial < 10; ++trial)
    {
        const int rows = trial == 0 ? 700 : dim(rng); // 700 x 300+: above the pool threshold
        const int cols = trial == 0 ? 333 : dim(rng);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
        {
            const std::size_t pad = static_cast<std::size_t>(trial % 2) * 3;
            const StoredMatrix m = MakeMatrix(dtype, rows, cols, cols + pad, 1, rng);
            const std::vector<float> x = RandomVector(static_cast<std::size_t>(cols), rng);
            MatrixWeights mw;
            mw.dtype = dtype;
            mw.data = m.Data();
            mw.rows = rows;
            mw.cols = cols;
            mw.rowStride = pad == 0 ? 0 : m.stride;
            for (KernelIsa isa : IsasToTest())
            {
                std::vector<float> y(static_cast<std::size_t>(rows), -1.0f);
                MatrixVectorForward(mw, x.data(), y.data(), &pool, isa);
                int bad = 0;
                for (int r = 0; r < rows; ++r)
                {
                    double want = 0;
                    double absSum = 0;
                    for (int c = 0; c < cols; ++c)
                    {
                        want += m.At(r, c) * x[c];
                        absSum += std::abs(m.At(r, c) * x[c]);
                    }
                    const double bound = 2 * cols * u / (1 - cols * u) * absSum + 1e-30;
                    bad += !(std::abs(y[r] - want) <= bound);
                }
                INFO(DTypeLabel(dtype)
                     << " " << KernelIsaName(isa) << " rows " << rows << " cols " << cols);
                CHECK(bad == 0);
            }
        }
    }
    // Bad arguments: the checks ExpertForward makes.
    std::vector<float> v(16, 1.0f);
    MatrixWeights bad;
    bad.data = v.data();
    bad.rows = 4;
    bad.cols = 4;
    std::vector<float> y(4);
    CHECK_NOTHROW(MatrixVectorForward(bad, v.data() + 8, y.data(), nullptr, KernelIsa::Scalar));
    CHECK_THROWS_AS(MatrixVectorForward(bad, v.data(), v.data() + 2, nullptr, KernelIsa::Scalar),
                    std::invalid_argument);
    bad.rowStride = 3;
    CHECK_THROWS_AS(MatrixVectorForward(bad, v.data() + 8, y.data(), nullptr, KernelIsa::Scalar),
                    std::invalid_argument);
}

TEST_CASE("MatrixForward matches the reference for several vectors at once", "[expert-kernel]")
{
    // Y = X W^T row by row against double-precision sums, the bound of MatrixVectorForward's
    // test; n vectors share each weight row (the batch kernels' path).
    std::mt19937 rng(123);
    std::uniform_int_distribution<int> dim(1, 200);
    ThreadPool pool(2);
    const double u = std::ldexp(1.0, -24);
    for (int n : {2, 5, 17})
    {
        const int rows = n == 17 ? 600 : dim(rng);
        const int cols = n == 17 ? 257 : dim(rng);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
        {
            const StoredMatrix m = MakeMatrix(dtype, rows, cols, cols, 1, rng);
            const std::vector<float> X = RandomVector(std::size_t(n) * std::size_t(cols), rng);
            MatrixWeights mw;
            mw.dtype = dtype;
            mw.data = m.Data();
            mw.rows = rows;
            mw.cols = cols;
            for (KernelIsa isa : IsasToTest())
            {
                std::vector<float> Y(std::size_t(n) * std::size_t(rows), -1.0f);
                MatrixForward(mw, X.data(), n, Y.data(), &pool, isa);
                int bad = 0;
                for (int t = 0; t < n; ++t)
                {
                    for (int r = 0; r < rows; ++r)
                    {
                        double want = 0, absSum = 0;
                        for (int c = 0; c < cols; ++c)
                        {
                            const double p = m.At(r, c) * X[std::size_t(t) * cols + c];
                            want += p;
                            absSum += std::abs(p);
                        }
                        const double bound = 2 * cols * u / (1 - cols * u) * absSum + 1e-30;
                        bad += !(std::abs(Y[std::size_t(t) * rows + r] - want) <= bound);
                    }
                }
                INFO(DTypeLabel(dtype) << " " << KernelIsaName(isa) << " n " << n << " rows "
                                       << rows << " cols " << cols);
                CHECK(bad == 0);
            }
        }
    }
    std::vector<float> v(16, 1.0f);
    MatrixWeights w;
    w.data = v.data();
    w.rows = 4;
    w.cols = 4;
    std::vector<float> y(8);
    CHECK_THROWS_AS(MatrixForward(w, v.data(), 0, y.data(), nullptr, KernelIsa::Scalar),
                    std::invalid_argument);
    // Two vectors in, the second output row overlapping the input: refused.
    CHECK_THROWS_AS(MatrixForward(w, v.data(), 2, v.data() + 6, nullptr, KernelIsa::Scalar),
                    std::invalid_argument);
}
