// Benchmarks the expert decode kernels in the two regimes decode can be in, against the
// machine's own read bandwidth measured in the same run.
//
// Decode of one expert is a matrix-vector product that reads every weight once, so the best a
// kernel can do is stream its weights at the rate the memory system delivers to the same number
// of threads. Where those bytes come from decides that rate, so the program names the regime:
//   cached:    one 4096 x 14336 matrix (and one expert) repeated. On a CPU whose last-level
//              cache holds it, this is what ggml's test-backend-ops perf measures (MUL_MAT with
//              m = 4096, n = 1, k = 14336): matrix_ms compares with it directly.
//   streaming: decode over distinct experts totalling at least four times the last-level
//              cache, as a real token does (every layer reads new experts), against a
//              read-bandwidth probe over the same bytes, alternating in the same run so a busy
//              host slows both alike and their ratio (stream_bw_ratio) stays meaningful where
//              absolute numbers do not.
// Every vector ISA the CPU has is run, so the gain of each is visible. Output is `name: value`
// lines; a figure measured per ISA carries the ISA as a suffix, and the unsuffixed headline
// figures are those of the ISA named by headline_isa (the one the engine picks by default).

#include "dtype.h"
#include "expert-kernel.h"
#include "last-level-cache.h"
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
using wdmoe::bench::LastLevelCache;

namespace
{

// One Mixtral-8x7B expert.
constexpr int kDModel = 4096;
constexpr int kDFf = 14336;

/// The probe hands out chunks of this size, close to what the kernel's chunks read.
constexpr std::size_t kProbeChunkBytes = 256 * 1024;

/// Tokens of the prefill (batch) figure.
constexpr int kBatchTokens = 16;

/// Decode over distinct experts covers at least this many times the last-level cache.
constexpr double kStreamLlcMultiple = 4.0;

struct Options
{
    int threads = 0;
    int runs = 15;
    DType dtype = DType::BF16;
    bool scalar = true;
    bool cached = true;          ///< run the cached regime
    bool streaming = true;       ///< run the streaming regime
    std::vector<KernelIsa> isas; ///< empty: every vector ISA the CPU has
    double memoryGib = 6.0;
};

const char* kUsage =
    "usage: %s [--threads N] [--runs N] [--dtype bf16|f16|f32] [--kernel all|avx512|avx2|scalar]\n"
    "          [--regime both|cached|streaming] [--memory-gib G] [--no-scalar]\n"
    "  Times the SwiGLU decode kernel on Mixtral experts (d_model %d, d_ff %d) in two regimes,\n"
    "  each against a read-bandwidth probe with the same number of threads:\n"
    "    cached     one 4096 x 14336 matrix (matrix_ms) and one expert (expert_ms) repeated,\n"
    "               and 16 tokens of prefill through that expert (batch_ms)\n"
    "    streaming  distinct experts totalling >= 4x the last-level cache (stream_bw_ratio)\n"
    "  --threads N     threads, caller included (default: hardware cores)\n"
    "  --runs N        timed runs of each figure (default 15)\n"
    "  --dtype T       weight type (default bf16)\n"
    "  --kernel K      kernel ISA to time (default all: every vector ISA this CPU has)\n"
    "  --memory-gib G  most weight memory to allocate (default 6); fewer streaming experts\n"
    "                  than 4x the cache needs is reported, not hidden\n"
    "  --regime R      which regimes to run (default both)\n"
    "  --no-scalar     skip the single scalar-kernel run\n";

[[noreturn]] void
Fail(const char* argv0, const std::string& message)
{
    std::fprintf(stderr, "%s: %s\n", argv0, message.c_str());
    std::exit(2);
}

/// Every vector ISA this CPU has, widest first; the scalar kernel where there is none.
std::vector<KernelIsa>
VectorIsasOfThisCpu()
{
    std::vector<KernelIsa> isas;
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2})
    {
        if (CpuSupportsIsa(isa))
        {
            isas.push_back(isa);
        }
    }
    if (isas.empty())
    {
        isas.push_back(KernelIsa::Scalar);
    }
    return isas;
}

/// The ISAs --kernel names; exits 2 on an unknown name or one this CPU lacks.
std::vector<KernelIsa>
ParseIsaOption(const char* argv0, const std::string& text)
{
    if (text == "all")
    {
        return VectorIsasOfThisCpu();
    }
    KernelIsa isa = KernelIsa::Scalar;
    if (!ParseKernelIsa(text, &isa))
    {
        Fail(argv0, "--kernel wants all, avx512, avx2 or scalar, got '" + text + "'");
    }
    try
    {
        CheckKernelIsaSupported(isa);
    }
    catch (const std::invalid_argument& e)
    {
        Fail(argv0, std::string("--kernel ") + text + ": " + e.what());
    }
    return {isa};
}

/// Sets which regimes run from --regime's value; exits 2 on anything else.
void
ParseRegime(const char* argv0, const std::string& text, Options& o)
{
    if (text != "both" && text != "cached" && text != "streaming")
    {
        Fail(argv0, "--regime wants both, cached or streaming, got '" + text + "'");
    }
    o.cached = text != "streaming";
    o.streaming = text != "cached";
}

/// Parses argv; exits 0 after --help and 2 on anything it does not understand.
Options
ParseOptions(int argc, char** argv)
{
    Options o;
    auto needValue = [&](int& i) -> std::string {
        if (i + 1 >= argc)
        {
            Fail(argv[0], std::string(argv[i]) + " needs a value");
        }
        return argv[++i];
    };
    auto parsePositive = [&](const std::string& flag, const std::string& text) {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !(v > 0) || v > 1024)
        {
            Fail(argv[0], flag + " wants a positive number up to 1024, got '" + text + "'");
        }
        return v;
    };
    for (int i = 1; i < argc; ++i)
    {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h")
        {
            std::printf(kUsage, argv[0], kDModel, kDFf);
            std::exit(0);
        }
        else if (arg == "--threads" || arg == "--runs")
        {
            const double v = parsePositive(arg, needValue(i));
            if (v != static_cast<int>(v))
            {
                Fail(argv[0], arg + " wants an integer");
            }
            (arg == "--threads" ? o.threads : o.runs) = static_cast<int>(v);
        }
        else if (arg == "--memory-gib")
        {
            o.memoryGib = parsePositive(arg, needValue(i));
        }
        else if (arg == "--dtype")
        {
            const std::string v = needValue(i);
            if (!ParseUserDType(v, &o.dtype))
            {
                Fail(argv[0], "unknown dtype '" + v + "' (bf16, f16 or f32)");
            }
        }
        else if (arg == "--kernel")
        {
            o.isas = ParseIsaOption(argv[0], needValue(i));
        }
        else if (arg == "--regime")
        {
            ParseRegime(argv[0], needValue(i), o);
        }
        else if (arg == "--no-scalar")
        {
            o.scalar = false;
        }
        else
        {
            Fail(argv[0], "unknown argument '" + arg + "' (try --help)");
        }
    }
    if (o.threads == 0)
    {
        const unsigned hw = std::thread::hardware_concurrency();
        o.threads = hw == 0 ? 1 : static_cast<int>(hw);
    }
    if (o.isas.empty())
    {
        o.isas = VectorIsasOfThisCpu();
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

/// A run of bytes the probe reads.
struct Region
{
    const unsigned char* data;
    std::size_t bytes;
};

/// Streams each region once, one after the other, with the pool's threads (one ParallelFor per
/// region, as the kernel runs one expert after another); returns a sum so it is not elided.
std::uint64_t
ReadProbe(ThreadPool& pool, const std::vector<Region>& regions, int streams)
{
#if defined(__x86_64__) || defined(__i386__)
    static const bool avx2 = CpuSupportsAvx2();
#endif
    // One slot per thread, a cache line apart so threads do not share a line.
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(pool.Size()) * 8, 0);
    for (const Region& region : regions)
    {
        const int chunks =
            static_cast<int>((region.bytes + kProbeChunkBytes - 1) / kProbeChunkBytes);
        pool.ParallelFor(chunks, [&](int chunk, int thread) {
            const std::size_t begin = static_cast<std::size_t>(chunk) * kProbeChunkBytes;
            const std::size_t length = std::min(kProbeChunkBytes, region.bytes - begin);
            const unsigned char* p = region.data + begin;
#if defined(__x86_64__) || defined(__i386__)
            const std::uint64_t s =
                avx2 ? SumChunkAvx2(p, length, streams) : SumChunkPortable(p, length);
#else
            (void)streams;
            const std::uint64_t s = SumChunkPortable(p, length);
#endif
            sums[static_cast<std::size_t>(thread) * 8] += s;
        });
    }
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

// ---- Experts and timing ---------------------------------------------------------------------

/// One expert's three matrices in one allocation: w1, w3, w2.
struct Expert
{
    Buffer bytes;
    ExpertWeights weights;
};

std::size_t
MatrixBytes(DType t)
{
    return static_cast<std::size_t>(kDModel) * kDFf * DTypeSize(t);
}

Expert
MakeExpert(DType t, std::uint64_t seed)
{
    const std::size_t matrixBytes = MatrixBytes(t);
    const std::size_t elements = static_cast<std::size_t>(kDModel) * kDFf;
    Expert e{AllocateBuffer(3 * matrixBytes), {}};
    unsigned char* base = e.bytes.get();
    // Scales like a trained layer's (about 1/sqrt(fan-in)), so h and y stay in a sane range.
    // Random content also keeps the host from merging identical pages (KSM) and serving them
    // from cache.
    FillWeights(base, t, elements, 0.02f, 3 * seed + 1);
    FillWeights(base + matrixBytes, t, elements, 0.02f, 3 * seed + 2);
    FillWeights(base + 2 * matrixBytes, t, elements, 0.01f, 3 * seed + 3);
    e.weights.dtype = t;
    e.weights.w1 = base;
    e.weights.w3 = base + matrixBytes;
    e.weights.w2 = base + 2 * matrixBytes;
    e.weights.dModel = kDModel;
    e.weights.dFf = kDFf;
    return e;
}

std::vector<float>
RandomActivation(int length, std::uint64_t seed)
{
    XorShift rng{seed};
    std::vector<float> v(static_cast<std::size_t>(length));
    for (float& f : v)
    {
        f = rng.Uniform();
    }
    return v;
}

template <typename Fn>
double
TimeOnce(Fn fn)
{
    const auto start = std::chrono::steady_clock::now();
    fn();
    return SecondsSince(start);
}

/// A probe measured with one and with four streams per chunk; the faster one (by median) is
/// the machine's read bandwidth as far as this program can tell, so a weak probe cannot
/// flatter the kernel.
struct ProbeSamples
{
    std::vector<double> oneStream;
    std::vector<double> fourStreams;

    double BestMedian() const
    {
        return std::min(Percentile(oneStream, 50), Percentile(fourStreams, 50));
    }
};

/// What one ISA measured.
struct IsaFigures
{
    KernelIsa isa = KernelIsa::Scalar;
    double matrixMs = 0;
    double expertMs = 0;
    double batchMs = 0;
    double streamExpertGbps = 0;
    double streamReadGbps = 0;
    double streamBwRatio = 0;
};

std::uint64_t g_probeSink = 0;
double g_ySink = 0.0;

// ---- The two regimes ---------------------------------------------------------------------------

/// Cached: one 4096 x 14336 matrix (expert 0's w2) times a vector, then expert 0 whole, each
/// repeated so it stays in the last-level cache; the probe reads the same matrix repeatedly.
void
CachedRegime(const Options& opt, ThreadPool& pool, const Expert& e, IsaFigures& fig)
{
    MatrixWeights m;
    m.dtype = opt.dtype;
    m.data = e.weights.w2;
    m.rows = kDModel;
    m.cols = kDFf;
    const std::vector<float> h = RandomActivation(kDFf, 7);
    const std::vector<float> x = RandomActivation(kDModel, 42);
    std::vector<float> y(kDModel);
    auto matvec = [&] { MatrixVectorForward(m, h.data(), y.data(), &pool, fig.isa); };
    auto expert = [&] { ExpertForward(e.weights, x.data(), y.data(), &pool, fig.isa); };
    for (int i = 0; i < 3; ++i)
    {
        matvec();
    }
    // A 4 ms figure: five times the runs, so the median is not one unlucky scheduling slice.
    std::vector<double> matrixSeconds;
    for (int run = 0; run < 5 * opt.runs; ++run)
    {
        matrixSeconds.push_back(TimeOnce(matvec));
        g_ySink += y[static_cast<std::size_t>(run) % y.size()];
    }
    expert();
    std::vector<double> expertSeconds;
    for (int run = 0; run < opt.runs; ++run)
    {
        expertSeconds.push_back(TimeOnce(expert));
        g_ySink += y[static_cast<std::size_t>(run) % y.size()];
    }
    fig.matrixMs = Percentile(matrixSeconds, 50) * 1e3;
    fig.expertMs = Percentile(expertSeconds, 50) * 1e3;
    const char* name = KernelIsaName(fig.isa);
    const double matrixGb = static_cast<double>(MatrixBytes(opt.dtype)) / 1e9;
    std::printf("matrix_ms_%s: %.3f\n", name, fig.matrixMs);
    std::printf("matrix_ms_p10_%s: %.3f\n", name, Percentile(matrixSeconds, 10) * 1e3);
    std::printf("matrix_ms_p90_%s: %.3f\n", name, Percentile(matrixSeconds, 90) * 1e3);
    std::printf("matrix_gbps_%s: %.2f\n", name, matrixGb / (fig.matrixMs / 1e3));
    std::printf("expert_ms_%s: %.3f\n", name, fig.expertMs);
    std::printf("expert_gbps_%s: %.2f\n", name, 3 * matrixGb / (fig.expertMs / 1e3));
}

/// Prefill: kBatchTokens tokens through expert 0 at once (ExpertForwardBatch), compute-bound
/// where decode is memory-bound, so it shows what the wider vectors buy in arithmetic.
void
CachedBatch(const Options& opt, ThreadPool& pool, const Expert& e, IsaFigures& fig)
{
    const std::vector<float> X = RandomActivation(kBatchTokens * kDModel, 43);
    std::vector<float> Y(X.size());
    auto batch = [&] {
        ExpertForwardBatch(e.weights, X.data(), kBatchTokens, Y.data(), &pool, fig.isa);
    };
    batch();
    std::vector<double> seconds;
    for (int run = 0; run < std::max(3, opt.runs / 3); ++run)
    {
        seconds.push_back(TimeOnce(batch));
        g_ySink += Y[static_cast<std::size_t>(run) % Y.size()];
    }
    fig.batchMs = Percentile(seconds, 50) * 1e3;
    // Two flops (a multiply and an add) per weight per token.
    const double flops = 2.0 * 3.0 * kDModel * static_cast<double>(kDFf) * kBatchTokens;
    std::printf("batch_ms_%s: %.3f\n", KernelIsaName(fig.isa), fig.batchMs);
    std::printf("batch_gflops_%s: %.1f\n",
                KernelIsaName(fig.isa),
                flops / (fig.batchMs / 1e3) / 1e9);
}

/// The read bandwidth of the cached matrix (expert 0's w2) repeated.
void
CachedProbe(const Options& opt, ThreadPool& pool, const Expert& e)
{
    const std::vector<Region> matrix{
        {static_cast<const unsigned char*>(e.weights.w2), MatrixBytes(opt.dtype)}};
    ProbeSamples probe;
    g_probeSink += ReadProbe(pool, matrix, 1) + ReadProbe(pool, matrix, 4);
    for (int run = 0; run < 5 * opt.runs; ++run)
    {
        probe.oneStream.push_back(TimeOnce([&] { g_probeSink += ReadProbe(pool, matrix, 1); }));
        probe.fourStreams.push_back(TimeOnce([&] { g_probeSink += ReadProbe(pool, matrix, 4); }));
    }
    const double gb = static_cast<double>(MatrixBytes(opt.dtype)) / 1e9;
    std::printf("cached_read_gbps: %.2f\n", gb / probe.BestMedian());
}

/// Streaming: every expert once per pass, as a token's layers do, alternating with probe
/// passes over the same bytes (one-stream before, four-stream after each kernel pass).
void
StreamingRegime(const Options& opt,
                ThreadPool& pool,
                const std::vector<Expert>& experts,
                IsaFigures& fig)
{
    std::vector<Region> regions;
    for (const Expert& e : experts)
    {
        regions.push_back({e.bytes.get(), 3 * MatrixBytes(opt.dtype)});
    }
    const std::vector<float> x = RandomActivation(kDModel, 42);
    std::vector<float> y(kDModel);
    auto token = [&] {
        for (const Expert& e : experts)
        {
            ExpertForward(e.weights, x.data(), y.data(), &pool, fig.isa);
        }
    };
    token();
    g_probeSink += ReadProbe(pool, regions, 1) + ReadProbe(pool, regions, 4);
    ProbeSamples probe;
    std::vector<double> kernelSeconds;
    for (int run = 0; run < opt.runs; ++run)
    {
        probe.oneStream.push_back(TimeOnce([&] { g_probeSink += ReadProbe(pool, regions, 1); }));
        kernelSeconds.push_back(TimeOnce(token));
        g_ySink += y[static_cast<std::size_t>(run) % y.size()];
        probe.fourStreams.push_back(TimeOnce([&] { g_probeSink += ReadProbe(pool, regions, 4); }));
    }
    const double gb = static_cast<double>(regions.size() * regions[0].bytes) / 1e9;
    fig.streamExpertGbps = gb / Percentile(kernelSeconds, 50);
    fig.streamReadGbps = gb / probe.BestMedian();
    fig.streamBwRatio = fig.streamExpertGbps / fig.streamReadGbps;
    const char* name = KernelIsaName(fig.isa);
    std::printf("stream_pass_ms_%s: %.3f\n", name, Percentile(kernelSeconds, 50) * 1e3);
    std::printf("stream_expert_gbps_%s: %.2f\n", name, fig.streamExpertGbps);
    std::printf("stream_read_gbps_%s: %.2f\n", name, fig.streamReadGbps);
    std::printf("stream_bw_ratio_%s: %.3f\n", name, fig.streamBwRatio);
    // Best against best: less sensitive to other load on the host than the medians.
    std::printf("stream_bw_ratio_best_%s: %.3f\n",
                name,
                std::min(Percentile(probe.oneStream, 0), Percentile(probe.fourStreams, 0)) /
                    Percentile(kernelSeconds, 0));
}

/// Enough distinct experts for kStreamLlcMultiple times the cache, within the memory cap.
int
StreamingExpertCount(const Options& opt, const LastLevelCache& llc)
{
    const double expertBytes = 3.0 * static_cast<double>(MatrixBytes(opt.dtype));
    const double llcBytes = llc.bytes > 0 ? static_cast<double>(llc.bytes) : 32.0 * (1 << 20);
    const int wanted =
        std::max(2, static_cast<int>(std::ceil(kStreamLlcMultiple * llcBytes / expertBytes)));
    const int allowed = static_cast<int>(opt.memoryGib * (1u << 30) / expertBytes);
    if (allowed < wanted)
    {
        std::fprintf(stderr,
                     "warning: %d experts (%.2f GB) would cover %.0fx the last-level cache but "
                     "--memory-gib %.1f allows %d: the streaming regime is partly cached\n",
                     wanted,
                     wanted * expertBytes / 1e9,
                     kStreamLlcMultiple,
                     opt.memoryGib,
                     allowed);
    }
    if (allowed < 1)
    {
        Fail("bench-kernel", "--memory-gib is too small for one expert");
    }
    return std::min(wanted, allowed);
}

/// One expert through the scalar reference, against the headline ISA's output.
void
ScalarCheck(ThreadPool& pool, const Expert& e, KernelIsa isa)
{
    const std::vector<float> x = RandomActivation(kDModel, 42);
    std::vector<float> y(kDModel);
    std::vector<float> yScalar(kDModel);
    ExpertForward(e.weights, x.data(), y.data(), &pool, isa);
    const double seconds = TimeOnce(
        [&] { ExpertForward(e.weights, x.data(), yScalar.data(), &pool, KernelIsa::Scalar); });
    std::printf("scalar_ms: %.3f\n", seconds * 1e3);
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

/// The headline figures (the first ISA's: the widest unless --kernel chose one) and the gain
/// of each further ISA's figures over the first's.
void
PrintHeadline(const Options& opt, const std::vector<IsaFigures>& figures)
{
    const IsaFigures& head = figures.front();
    std::printf("headline_isa: %s\n", KernelIsaName(head.isa));
    if (opt.cached)
    {
        std::printf("matrix_ms: %.3f\n", head.matrixMs);
        std::printf("expert_ms: %.3f\n", head.expertMs);
        std::printf("batch_ms: %.3f\n", head.batchMs);
    }
    if (opt.streaming)
    {
        std::printf("stream_expert_gbps: %.2f\n", head.streamExpertGbps);
        std::printf("stream_read_gbps: %.2f\n", head.streamReadGbps);
        std::printf("stream_bw_ratio: %.3f\n", head.streamBwRatio);
        std::printf("target_stream_bw_ratio: 0.90\n");
    }
    for (std::size_t i = 1; i < figures.size(); ++i)
    {
        const IsaFigures& other = figures[i];
        const char* vs = KernelIsaName(other.isa);
        const char* name = KernelIsaName(head.isa);
        if (opt.cached)
        {
            std::printf("matrix_speedup_%s_over_%s: %.3f\n",
                        name,
                        vs,
                        other.matrixMs / head.matrixMs);
            std::printf("expert_speedup_%s_over_%s: %.3f\n",
                        name,
                        vs,
                        other.expertMs / head.expertMs);
            std::printf("batch_speedup_%s_over_%s: %.3f\n", name, vs, other.batchMs / head.batchMs);
        }
        if (opt.streaming)
        {
            std::printf("stream_speedup_%s_over_%s: %.3f\n",
                        name,
                        vs,
                        head.streamExpertGbps / other.streamExpertGbps);
        }
    }
}

} // namespace

int
main(int argc, char** argv)
{
    const Options opt = ParseOptions(argc, argv);
    const LastLevelCache llc = wdmoe::bench::DetectLastLevelCache();
    const int expertCount = opt.streaming ? StreamingExpertCount(opt, llc) : 1;
    const double expertBytes = 3.0 * static_cast<double>(MatrixBytes(opt.dtype));

    std::printf("threads: %d\n", opt.threads);
    std::printf("dtype: %s\n", DTypeName(opt.dtype));
    std::printf("runs: %d\n", opt.runs);
    std::printf("llc_bytes: %zu\n", llc.bytes);
    std::printf("llc_level: %d\n", llc.level);
    std::printf("llc_source: %s\n", llc.bytes > 0 ? llc.source.c_str() : "none (32 MiB assumed)");
    std::printf("matrix_bytes: %zu\n", MatrixBytes(opt.dtype));
    std::printf("expert_bytes: %.0f\n", expertBytes);
    if (opt.streaming)
    {
        std::printf("stream_experts: %d\n", expertCount);
        std::printf("stream_bytes: %.0f\n", expertCount * expertBytes);
        std::printf("stream_llc_multiple: %.2f\n",
                    llc.bytes > 0 ? expertCount * expertBytes / static_cast<double>(llc.bytes)
                                  : 0.0);
    }
    std::fflush(stdout);

    std::vector<Expert> experts;
    for (int i = 0; i < expertCount; ++i)
    {
        experts.push_back(MakeExpert(opt.dtype, static_cast<std::uint64_t>(i) + 1));
    }
    ThreadPool pool(opt.threads);

    std::vector<IsaFigures> figures;
    for (KernelIsa isa : opt.isas)
    {
        figures.push_back({});
        figures.back().isa = isa;
    }
    if (opt.cached)
    {
        std::printf("# cached: one matrix, then one expert, repeated; then a 16-token batch\n");
        CachedProbe(opt, pool, experts.front());
        for (IsaFigures& fig : figures)
        {
            CachedRegime(opt, pool, experts.front(), fig);
            CachedBatch(opt, pool, experts.front(), fig);
            std::fflush(stdout);
        }
    }
    if (opt.streaming)
    {
        std::printf("# streaming: %d distinct experts per pass, probe over the same bytes\n",
                    expertCount);
        for (IsaFigures& fig : figures)
        {
            StreamingRegime(opt, pool, experts, fig);
            std::fflush(stdout);
        }
    }
    std::printf("# headline\n");
    PrintHeadline(opt, figures);
    if (opt.scalar)
    {
        ScalarCheck(pool, experts.front(), figures.front().isa);
    }
    // Printed so that neither loop can be optimised away.
    std::printf("checksum: %llu %.6g\n",
                static_cast<unsigned long long>(g_probeSink % 1000003),
                g_ySink);
    return 0;
}
