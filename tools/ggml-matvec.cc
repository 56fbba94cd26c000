// ggml's side of `./wdmoe bench kernel`'s matrix_ms: times ggml's CPU matrix-vector product
// MUL_MAT(type_a=bf16, type_b=f32, m=4096, n=1, k=14336) with N threads, as test-backend-ops
// perf does (one graph computed repeatedly, so the 117 MB matrix stays in the last-level
// cache), and prints the median like bench kernel's `name: value` lines.
//
// Not part of the build or the tests: it needs ggml's shared libraries, which Debian 12 does
// not package. The prebuilt ones of the npm package @node-llama-cpp/linux-x64 (3.22.1) work;
// they ship one CPU library per x86 level (haswell, skylakex, icelake, sapphirerapids, ...) and
// no headers, so the few functions used are declared below (ggml.h / ggml-cpu.h of 2025):
//
//   npm pack @node-llama-cpp/linux-x64@3.22.1 && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz
//   L=$PWD/package/bins/linux-x64
//   V=sapphirerapids   # or haswell, skylakex, ...: the CPU library to time
//   LIBS="-L$L -l:libggml-cpu-$V.so -l:libggml-base.so -Wl,-rpath,$L"
//   g++ -O2 -o ggml-matvec tools/ggml-matvec.cc $LIBS
//   ./ggml-matvec 2 75      # threads, timed runs
//
// Note for comparisons: for a bf16 matrix ggml rounds the f32 activation to bf16 and uses bf16
// dot products (vdpbf16ps where the CPU has it); our kernels keep the activation in f32.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C"
{
    struct ggml_context;
    struct ggml_tensor;
    struct ggml_cgraph;

    struct ggml_init_params
    {
        size_t mem_size;
        void* mem_buffer;
        bool no_alloc;
    };

    ggml_context* ggml_init(ggml_init_params params);
    void ggml_free(ggml_context* ctx);
    ggml_tensor* ggml_new_tensor_2d(ggml_context* ctx, int type, int64_t ne0, int64_t ne1);
    ggml_tensor* ggml_mul_mat(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b);
    ggml_cgraph* ggml_new_graph(ggml_context* ctx);
    void ggml_build_forward_expand(ggml_cgraph* cgraph, ggml_tensor* tensor);
    void* ggml_get_data(const ggml_tensor* tensor);
    void ggml_cpu_init(void);
    int ggml_graph_compute_with_ctx(ggml_context* ctx, ggml_cgraph* cgraph, int n_threads);
}

namespace
{

constexpr int kGgmlTypeF32 = 0;
constexpr int kGgmlTypeBf16 = 30;
constexpr int64_t kRows = 4096;  // m: outputs
constexpr int64_t kCols = 14336; // k: the reduction

/// Uniform in [-1, 1) from a xorshift generator (the weights' content does not matter, only
/// that it is not all equal, which a host could merge into shared pages).
struct XorShift
{
    uint64_t state = 88172645463325252ull;

    float Uniform()
    {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return static_cast<float>(static_cast<double>(state >> 11) * 0x1.0p-52 - 1.0);
    }
};

void
Fill(ggml_tensor* matrix, ggml_tensor* vector)
{
    XorShift rng;
    auto* w = static_cast<uint16_t*>(ggml_get_data(matrix));
    for (size_t i = 0; i < static_cast<size_t>(kRows * kCols); ++i)
    {
        const float f = rng.Uniform() * 0.01f;
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        w[i] = static_cast<uint16_t>(bits >> 16); // bf16: the upper half of an f32
    }
    auto* x = static_cast<float*>(ggml_get_data(vector));
    for (int64_t i = 0; i < kCols; ++i)
    {
        x[i] = rng.Uniform();
    }
}

} // namespace

int
main(int argc, char** argv)
{
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int runs = argc > 2 ? std::atoi(argv[2]) : 75;
    if (threads < 1 || runs < 1)
    {
        std::fprintf(stderr, "usage: %s [THREADS] [RUNS]\n", argv[0]);
        return 2;
    }
    ggml_cpu_init();
    const ggml_init_params params{static_cast<size_t>(kRows * kCols) * 2 + (64u << 20),
                                  nullptr,
                                  false};
    ggml_context* ctx = ggml_init(params);
    ggml_tensor* a = ggml_new_tensor_2d(ctx, kGgmlTypeBf16, kCols, kRows);
    ggml_tensor* b = ggml_new_tensor_2d(ctx, kGgmlTypeF32, kCols, 1);
    ggml_tensor* c = ggml_mul_mat(ctx, a, b);
    ggml_cgraph* graph = ggml_new_graph(ctx);
    ggml_build_forward_expand(graph, c);
    Fill(a, b);
    for (int i = 0; i < 3; ++i)
    {
        ggml_graph_compute_with_ctx(ctx, graph, threads);
    }
    std::vector<double> ms;
    for (int run = 0; run < runs; ++run)
    {
        const auto start = std::chrono::steady_clock::now();
        ggml_graph_compute_with_ctx(ctx, graph, threads);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    const auto* y = static_cast<const float*>(ggml_get_data(c));
    std::printf("ggml_threads: %d\n", threads);
    std::printf("ggml_matrix_ms: %.3f\n", median);
    std::printf("ggml_matrix_ms_p10: %.3f\n", ms[ms.size() / 10]);
    std::printf("ggml_matrix_ms_p90: %.3f\n", ms[ms.size() * 9 / 10]);
    std::printf("ggml_matrix_gbps: %.2f\n", static_cast<double>(kRows * kCols) * 2 / 1e6 / median);
    std::printf("checksum: %g\n", static_cast<double>(y[0] + y[kRows - 1]));
    ggml_free(ctx);
    return 0;
}
