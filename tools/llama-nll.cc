// llama.cpp's side of `./wdmoe eval`: scores a text under teacher forcing with llama.cpp on a
// GGUF file written by tools/export_gguf.py, in the windows `wdmoe eval` uses (non-overlapping
// windows of --window tokens, default 128 = the embedded models' context, each one prefill
// from an empty cache, its first token context only), and prints the mean NLL per token. Same
// NLL as `./wdmoe eval MODEL_DIR TEXT` (to rounding) means the GGUF file is the same model.
//
// Byte-level models only (the embedded kjv-moe models): token id = byte value, as the
// engine's ByteTokenizer encodes. The KV cache is float32 (llama.cpp's default is f16), so that
// with an f32 export (`export_gguf.py --outtype f32`) every step is float32 arithmetic.
//
// Not part of the build or the tests: it needs a llama.cpp checkout (see the module chapter,
// "llama.cpp side by side"). Built by hand against it:
//
//   L=/work/llama.cpp   # cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
//   g++ -O2 -std=c++17 -o llama-nll tools/llama-nll.cc -I$L/include -I$L/ggml/include \
//       -L$L/build/bin -lllama -lggml -lggml-base -Wl,-rpath,$L/build/bin
//   ./llama-nll kjv-moe-32-f32.gguf models/kjv-moe-32/heldout.txt --threads 2
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace
{

struct Options
{
    std::string model;
    std::string text;
    int window = 128;
    long maxTokens = 0; // predictions to score; 0: the whole text
    int threads = 2;
    bool f16Cache = false;
};

[[noreturn]] void
Usage(const char* why)
{
    std::fprintf(stderr,
                 "llama-nll: %s\nusage: llama-nll MODEL.gguf TEXT_FILE [--window N] "
                 "[--max-tokens N] [--threads N] [--kv f32|f16]\n",
                 why);
    std::exit(2);
}

int
PositiveInt(const char* flag, const char* value)
{
    char* end = nullptr;
    const long v = std::strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 1 || v > 1 << 30)
    {
        Usage((std::string(flag) + " expects a positive integer, got '" + value + "'").c_str());
    }
    return int(v);
}

Options
Parse(int argc, char** argv)
{
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i)
    {
        const std::string a = argv[i];
        if (a.rfind("--", 0) != 0)
        {
            positional.push_back(a);
            continue;
        }
        if (i + 1 >= argc)
        {
            Usage(("option " + a + " needs a value").c_str());
        }
        const char* v = argv[++i];
        if (a == "--window")
        {
            o.window = PositiveInt("--window", v);
        }
        else if (a == "--max-tokens")
        {
            o.maxTokens = PositiveInt("--max-tokens", v);
        }
        else if (a == "--threads")
        {
            o.threads = PositiveInt("--threads", v);
        }
        else if (a == "--kv" && (std::strcmp(v, "f32") == 0 || std::strcmp(v, "f16") == 0))
        {
            o.f16Cache = std::strcmp(v, "f16") == 0;
        }
        else
        {
            Usage(("unknown option or value: " + a + " " + v).c_str());
        }
    }
    if (positional.size() != 2 || o.window < 2)
    {
        Usage("expected MODEL.gguf and TEXT_FILE, and a window of at least 2");
    }
    o.model = positional[0];
    o.text = positional[1];
    return o;
}

/// -log softmax(logits)[target], in double.
double
Nll(const float* logits, int vocab, int target)
{
    const float maxLogit = *std::max_element(logits, logits + vocab);
    double sum = 0.0;
    for (int i = 0; i < vocab; ++i)
    {
        sum += std::exp(double(logits[i]) - maxLogit);
    }
    return std::log(sum) - (double(logits[target]) - maxLogit);
}

struct Score
{
    double nllSum = 0.0;
    long tokens = 0;
    long correct = 0; ///< predictions whose argmax (lowest id on ties) is the next token
};

/// Teacher forcing in wdmoe eval's windows: each window one batch from an empty cache.
Score
ScoreText(llama_context* ctx, const std::vector<llama_token>& ids, const Options& o, int vocab)
{
    llama_batch batch = llama_batch_init(o.window, 0, 1);
    Score s;
    for (std::size_t begin = 0; begin + 1 < ids.size(); begin += std::size_t(o.window))
    {
        const long remaining = o.maxTokens > 0 ? o.maxTokens - s.tokens : long(ids.size());
        const int n =
            int(std::min<long>({long(o.window), long(ids.size() - begin), remaining + 1}));
        if (n < 2)
        {
            break;
        }
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = n;
        for (int i = 0; i < n; ++i)
        {
            batch.token[i] = ids[begin + i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        if (llama_decode(ctx, batch) != 0)
        {
            Usage("llama_decode failed");
        }
        for (int i = 0; i + 1 < n; ++i)
        {
            const float* logits = llama_get_logits_ith(ctx, i);
            const int target = ids[begin + i + 1];
            s.nllSum += Nll(logits, vocab, target);
            s.correct += int(std::max_element(logits, logits + vocab) - logits) == target;
            ++s.tokens;
        }
    }
    llama_batch_free(batch);
    return s;
}

} // namespace

int
main(int argc, char** argv)
{
    const Options o = Parse(argc, argv);
    std::ifstream in(o.text, std::ios::binary);
    if (!in)
    {
        Usage(("cannot open " + o.text).c_str());
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<llama_token> ids(text.begin(), text.end());
    for (llama_token& id : ids)
    {
        id = llama_token(static_cast<unsigned char>(id));
    }

    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
    llama_model* model = llama_model_load_from_file(o.model.c_str(), llama_model_default_params());
    if (!model)
    {
        Usage(("llama.cpp could not load " + o.model).c_str());
    }
    const int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = uint32_t(o.window);
    cp.n_threads = cp.n_threads_batch = o.threads;
    cp.type_k = cp.type_v = o.f16Cache ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx)
    {
        Usage("llama.cpp could not make a context");
    }

    const Score score = ScoreText(ctx, ids, o, vocab);
    if (score.tokens == 0)
    {
        Usage("the text has fewer than 2 tokens: nothing to score");
    }
    std::printf("{\"tokens\": %ld, \"nll_per_token\": %.10f, \"perplexity\": %.10f, "
                "\"top1_accuracy\": %.6f}\n",
                score.tokens,
                score.nllSum / double(score.tokens),
                std::exp(score.nllSum / double(score.tokens)),
                double(score.correct) / double(score.tokens));
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
