// Benchmarks the expert decode kernel against the machine's own read bandwidth.
//
// Decode of one expert is a matrix-vector product that reads every weight once, so the best a
// kernel can do is stream its weights at the rate the memory system delivers to the same number
// of threads. This program measures both in one process, alternating, so that a busy host
// slows both alike and their ratio (kernel_bw_ratio) stays meaningful where absolute numbers
// do not. Output is `name: value` lines.

#include "dtype.h"
#include "expert-kernel.h"
#include "thread-pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace wdmoe::llm;

namespace
{

// One Mixtral-8x7B expert.
constexpr int kDModel = 4096;
constexpr int kDFf = 14336;

/// The probe hands out chunks of this size, close to what the kernel's chunks read.
constexpr std::size_t kProbeChunkBytes = 256 * 1024;

struct Options
{
    int threads = 0;
    int runs = 15;
    DType dtype = DType::BF16;
    bool scalar = true;
};

void
PrintUsage(const char* argv0)
{
    std::printf("usage: %s [--threads N] [--runs N] [--dtype bf16|f16|f32] [--no-scalar]\n"
                "  Times the SwiGLU decode kernel on one Mixtral expert (d_model %d, d_ff %d)\n"
                "  against a read-bandwidth probe with the same number of threads.\n"
                "  --threads N   threads, caller included (default: hardware cores)\n"
                "  --runs N      timed runs of each (default 15)\n"
                "  --dtype T     weight type (default bf16)\n"
                "  --no-scalar   skip the single scalar-kernel run\n",
                argv0,
                kDModel,
                kDFf);
}

/// Parses argv; exits 0 after --help and 2 on anything it does not understand.
Options
ParseOptions(int argc, char** argv)
{
    Options o;
    auto needValue = [&](int& i) -> std::string {
        if (i + 1 >= argc)
        {
            std::fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            std::exit(2);
        }
        return argv[++i];
    };
    auto parsePositive = [&](const std::string& flag, const std::string& text) {
        char* end = nullptr;
        const long v = std::strtol(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || v <= 0 || v > 1024)
        {
            std::fprintf(stderr,
                         "%s: %s wants a positive integer, got '%s'\n",
                         argv[0],
                         flag.c_str(),
                         text.c_str());
            std::exit(2);
        }
        return static_cast<int>(v);
    };
    for (int i = 1; i < argc; ++i)
    {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h")
        {
            PrintUsage(argv[0]);
            std::exit(0);
        }
        else if (arg == "--threads")
        {
            o.threads = parsePositive(arg, needValue(i));
        }
        else if (arg == "--runs")
        {
            o.runs = parsePositive(arg, needValue(i));
        }
        else if (arg == "--dtype")
        {
            const std::string v = needValue(i);
            if (!ParseUserDType(v, &o.dtype))
            {
                std::fprintf(stderr,
                             "%s: unknown dtype '%s' (bf16, f16 or f32)\n",
                             argv[0],
                             v.c_str());
                std::exit(2);
            }
        }
        else if (arg == "--no-scalar")
        {
            o.scalar = false;
        }
        else
        {
            std::fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", argv[0], arg.c_str());
            std::exit(2);
        }
    }
    if (o.threads == 0)
    {
        const unsigned hw = std::thread::hardware_concurrency();
        o.threads = hw == 0 ? 1 : static_cast<int>(hw);
    }
    return o;
}

/// Small, fast generator: filling hundreds of MB with std::mt19937 would dominate start-up.
struct XorShift
{
    std::uint64_t state;

    std::uint64_t Next()
    {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    }

    /// Uniform in [-1, 1).
    float Uniform()
    {
        return static_cast<float>(static_cast<double>(Next() >> 11) * 0x1.0p-52 - 1.0);
    }
};

struct FreeDeleter
{
    void operator()(void* p) const { std::free(p); }
};

using Buffer = std::unique_ptr<unsigned char, FreeDeleter>;

Buffer
AllocateBuffer(std::size_t bytes)
{
    // 64-byte alignment like a page-aligned mmap; the kernel itself does not need it.
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr)
    {
        std::fprintf(stderr, "out of memory allocating %zu bytes\n", bytes);
        std::exit(1);
    }
    return Buffer(static_cast<unsigned char*>(p));
}

/// Fills a weight matrix with values of a typical trained magnitude.
void
FillWeights(unsigned char* dst, DType t, std::size_t count, float scale, std::uint64_t seed)
{
    XorShift rng{seed};
    constexpr std::size_t kBlock = 4096;
    float tmp[kBlock];
    const std::size_t es = DTypeSize(t);
    for (std::size_t done = 0; done < count; done += kBlock)
    {
        const std::size_t n = std::min(kBlock, count - done);
        for (std::size_t i = 0; i < n; ++i)
        {
            tmp[i] = rng.Uniform() * scale;
        }
        FromF32(t, tmp, dst + done * es, n);
    }
}

/// Fills a buffer with pseudo-random bytes.
void
FillRandomBytes(unsigned char* dst, std::size_t bytes, std::uint64_t seed)
{
    XorShift rng{seed};
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8)
    {
        const std::uint64_t v = rng.Next();
        std::memcpy(dst + i, &v, 8);
    }
    for (; i < bytes; ++i)
    {
        dst[i] = static_cast<unsigned char>(rng.Next());
    }
}

// ---- Read-bandwidth probe --------------------------------------------------------------------

#if defined(__x86_64__) || defined(__i386__)
/// Sums a chunk with 256-bit loads into four independent accumulators. With streams == 1 the
/// chunk is read front to back; with streams == 4 its four quarters are read side by side,
/// which keeps more cache-line misses in flight on some machines (as the kernel's interleaved
/// rows do). The probe reports the faster of the two so the ratio is not flattered by a weak
/// probe.
__attribute__((target("avx2"))) std::uint64_t
SumChunkAvx2(const unsigned char* p, std::size_t bytes, int streams)
{
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = _mm256_setzero_si256();
    __m256i a2 = _mm256_setzero_si256();
    __m256i a3 = _mm256_setzero_si256();
    std::size_t i = 0;
    if (streams == 4)
    {
        const std::size_t quarter = bytes / 4 / 32 * 32;
        const unsigned char* q0 = p;
        const unsigned char* q1 = p + quarter;
        const unsigned char* q2 = p + 2 * quarter;
        const unsigned char* q3 = p + 3 * quarter;
        for (; i + 32 <= quarter; i += 32)
        {
            a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(q0 + i)));
            a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(q1 + i)));
            a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(q2 + i)));
            a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(q3 + i)));
        }
        i = 4 * quarter;
    }
    for (; i + 128 <= bytes; i += 128)
    {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    alignas(32) std::uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
    std::uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < bytes; ++i)
    {
        total += p[i];
    }
    return total;
}
#endif

/// Portable fallback for CPUs without AVX2 (the compiler vectorises it with SSE2).
std::uint64_t
SumChunkPortable(const unsigned char* p, std::size_t bytes)
{
    std::uint64_t a[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 32 <= bytes; i += 32)
    {
        for (int j = 0; j < 4; ++j)
        {
            std::uint64_t v;
            std::memcpy(&v, p + i + 8 * j, 8);
            a[j] += v;
        }
    }
    std::uint64_t total = a[0] + a[1] + a[2] + a[3];
    for (; i < bytes; ++i)
    {
        total += p[i];
    }
    return total;
}

/// Streams the whole buffer once with the pool's threads; returns a sum so it is not elided.
std::uint64_t
ReadProbe(ThreadPool& pool, const unsigned char* buffer, std::size_t bytes, bool avx2, int streams)
{
    const int chunks = static_cast<int>((bytes + kProbeChunkBytes - 1) / kProbeChunkBytes);
    // One slot per thread, a cache line apart so threads do not share a line.
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(pool.Size()) * 8, 0);
    pool.ParallelFor(chunks, [&](int chunk, int thread) {
        const std::size_t begin = static_cast<std::size_t>(chunk) * kProbeChunkBytes;
        const std::size_t length = std::min(kProbeChunkBytes, bytes - begin);
#if defined(__x86_64__) || defined(__i386__)
        const std::uint64_t s = avx2 ? SumChunkAvx2(buffer + begin, length, streams)
                                     : SumChunkPortable(buffer + begin, length);
#else
        (void)avx2;
        (void)streams;
        const std::uint64_t s = SumChunkPortable(buffer + begin, length);
#endif
        sums[static_cast<std::size_t>(thread) * 8] += s;
    });
    std::uint64_t total = 0;
    for (std::uint64_t s : sums)
    {
        total += s;
    }
    return total;
}

// ---- Statistics ------------------------------------------------------------------------------

/// Nearest-rank percentile of an unsorted sample (p in [0, 100]).
double
Percentile(std::vector<double> v, double p)
{
    std::sort(v.begin(), v.end());
    const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(rank);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    const double frac = rank - static_cast<double>(lo);
    return v[lo] * (1.0 - frac) + v[hi] * frac;
}

double
SecondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

int
main(int argc, char** argv)
{
    const Options opt = ParseOptions(argc, argv);
    const KernelIsa isa = BestKernelIsa();
    const bool avx2 = isa == KernelIsa::Avx2;

    const std::size_t es = DTypeSize(opt.dtype);
    const std::size_t matrixElements = static_cast<std::size_t>(kDModel) * kDFf;
    const std::size_t matrixBytes = matrixElements * es;
    const std::size_t expertBytes = 3 * matrixBytes;

    Buffer w1 = AllocateBuffer(matrixBytes);
    Buffer w3 = AllocateBuffer(matrixBytes);
    Buffer w2 = AllocateBuffer(matrixBytes);
    // Scales like a trained layer's (about 1/sqrt(fan-in)), so h and y stay in a sane range.
    FillWeights(w1.get(), opt.dtype, matrixElements, 0.02f, 1);
    FillWeights(w3.get(), opt.dtype, matrixElements, 0.02f, 2);
    FillWeights(w2.get(), opt.dtype, matrixElements, 0.01f, 3);

    // The probe buffer is as large as the expert so neither fits in any cache. Random content,
    // like the weights: pages of identical content could be merged by the host (KSM) and then
    // be served from cache, flattering the probe.
    Buffer probe = AllocateBuffer(expertBytes);
    FillRandomBytes(probe.get(), expertBytes, 4);

    std::vector<float> x(kDModel);
    std::vector<float> y(kDModel);
    XorShift rng{42};
    for (float& v : x)
    {
        v = rng.Uniform();
    }

    ExpertWeights w;
    w.dtype = opt.dtype;
    w.w1 = w1.get();
    w.w3 = w3.get();
    w.w2 = w2.get();
    w.dModel = kDModel;
    w.dFf = kDFf;

    ThreadPool pool(opt.threads);
    std::uint64_t probeSink = 0;
    double ySink = 0.0;

    // Warm-up: page in the weights, spin up the workers, settle the clocks.
    for (int i = 0; i < 2; ++i)
    {
        probeSink += ReadProbe(pool, probe.get(), expertBytes, avx2, 1);
        probeSink += ReadProbe(pool, probe.get(), expertBytes, avx2, 4);
        ExpertForward(w, x.data(), y.data(), &pool, isa);
    }

    // Each run times the three back to back, so slow phases of the host hit all of them.
    std::vector<double> probe1Seconds;
    std::vector<double> probe4Seconds;
    std::vector<double> expertSeconds;
    for (int run = 0; run < opt.runs; ++run)
    {
        auto start = std::chrono::steady_clock::now();
        probeSink += ReadProbe(pool, probe.get(), expertBytes, avx2, 1);
        probe1Seconds.push_back(SecondsSince(start));

        start = std::chrono::steady_clock::now();
        ExpertForward(w, x.data(), y.data(), &pool, isa);
        expertSeconds.push_back(SecondsSince(start));
        ySink += y[static_cast<std::size_t>(run) % y.size()];

        start = std::chrono::steady_clock::now();
        probeSink += ReadProbe(pool, probe.get(), expertBytes, avx2, 4);
        probe4Seconds.push_back(SecondsSince(start));
    }

    const double gb = static_cast<double>(expertBytes) / 1e9;
    const double expertMedian = Percentile(expertSeconds, 50);
    const double probe1Median = Percentile(probe1Seconds, 50);
    const double probe4Median = Percentile(probe4Seconds, 50);
    // The better probe is the machine's read bandwidth as far as this program can tell.
    const bool fourBetter = probe4Median < probe1Median;
    const std::vector<double>& probeSeconds = fourBetter ? probe4Seconds : probe1Seconds;
    const double probeMedian = std::min(probe1Median, probe4Median);
    const double expertGbps = gb / expertMedian;
    const double readGbps = gb / probeMedian;

    std::printf("threads: %d\n", pool.Size());
    std::printf("isa: %s\n", KernelIsaName(isa));
    std::printf("dtype: %s\n", DTypeName(opt.dtype));
    std::printf("runs: %d\n", opt.runs);
    std::printf("expert_bytes: %zu\n", expertBytes);
    std::printf("expert_ms: %.3f\n", expertMedian * 1e3);
    std::printf("expert_ms_p10: %.3f\n", Percentile(expertSeconds, 10) * 1e3);
    std::printf("expert_ms_p90: %.3f\n", Percentile(expertSeconds, 90) * 1e3);
    std::printf("expert_ms_min: %.3f\n", Percentile(expertSeconds, 0) * 1e3);
    std::printf("expert_ms_max: %.3f\n", Percentile(expertSeconds, 100) * 1e3);
    std::printf("expert_gbps: %.2f\n", expertGbps);
    std::printf("read_1stream_gbps: %.2f\n", gb / probe1Median);
    std::printf("read_4stream_gbps: %.2f\n", gb / probe4Median);
    std::printf("read_ms: %.3f\n", probeMedian * 1e3);
    std::printf("read_ms_p10: %.3f\n", Percentile(probeSeconds, 10) * 1e3);
    std::printf("read_ms_p90: %.3f\n", Percentile(probeSeconds, 90) * 1e3);
    std::printf("read_bw_gbps: %.2f\n", readGbps);
    std::printf("kernel_bw_ratio: %.3f\n", expertGbps / readGbps);
    // Best against best: less sensitive to other load on the host than the medians.
    std::printf("kernel_bw_ratio_best: %.3f\n",
                std::min(Percentile(probe1Seconds, 0), Percentile(probe4Seconds, 0)) /
                    Percentile(expertSeconds, 0));
    // Against a plain front-to-back read per thread (the simplest probe), for comparison.
    std::printf("kernel_bw_ratio_vs_1stream: %.3f\n", probe1Median / expertMedian);
    std::printf("target_kernel_bw_ratio: 0.85\n");

    if (opt.scalar)
    {
        std::vector<float> yScalar(kDModel);
        const auto start = std::chrono::steady_clock::now();
        ExpertForward(w, x.data(), yScalar.data(), &pool, KernelIsa::Scalar);
        std::printf("scalar_ms: %.3f\n", SecondsSince(start) * 1e3);
        // How far the two kernels disagree, relative to the output's scale.
        double maxDiff = 0.0;
        double maxAbs = 0.0;
        for (int i = 0; i < kDModel; ++i)
        {
            maxDiff = std::max(maxDiff, static_cast<double>(std::abs(y[i] - yScalar[i])));
            maxAbs = std::max(maxAbs, static_cast<double>(std::abs(yScalar[i])));
        }
        std::printf("scalar_vs_isa_max_rel_diff: %.3g\n", maxAbs > 0 ? maxDiff / maxAbs : 0.0);
    }
    // Printed so that neither loop can be optimised away.
    std::printf("checksum: %llu %.6g\n",
                static_cast<unsigned long long>(probeSink % 1000003),
                ySink);
    return 0;
}
