// Decode speed of the embedded model at batch 1: this engine against Debian's PyTorch running
// the same weights on the same prompt, measured in the same run. Prints `name: value` lines.

#include "bench-util.h"
#include "evaluation.h"
#include "mixtral-model.h"
#include "tokenizer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace wdmoe::llm;
using wdmoe::bench::Median;

namespace
{

const char* kUsage =
    "usage: wdmoe bench engine [--model DIR] [--prompt TEXT] [--tokens N] [--runs N]\n"
    "                          [--threads N] [--python PATH] [--reference SCRIPT]\n"
    "Decode tokens/s of a model at batch 1 (default models/kjv-moe, 64 tokens, median of\n"
    "7 runs, 1 thread) for this engine and for PyTorch (tools/moe_reference.py decode) on\n"
    "the same weights and prompt; prints both and torch_speedup = ours / torch. Without\n"
    "python3-torch it says so and skips the ratio.\n";

std::string
ShellQuote(const std::string& s)
{
    std::string out = "'";
    for (char c : s)
    {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

/// Runs a command and returns its standard output; exit status in *status.
std::string
Capture(const std::string& command, int* status)
{
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe)
    {
        *status = -1;
        return out;
    }
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0)
    {
        out.append(buf.data(), n);
    }
    *status = ::pclose(pipe);
    return out;
}

} // namespace

int
main(int argc, char** argv)
{
    std::string modelDir = "models/kjv-moe";
    std::string prompt = "And God said unto Moses,";
    std::string python = "/usr/bin/python3";
    std::string reference = "tools/moe_reference.py";
    int tokens = 64, runs = 7, threads = 1;
    wdmoe::bench::BenchArgs args("bench engine", kUsage, argc, argv);
    while (args.Next())
    {
        const std::string& a = args.Flag();
        if (a == "--model")
        {
            modelDir = args.Value();
        }
        else if (a == "--prompt")
        {
            prompt = args.Value();
        }
        else if (a == "--tokens")
        {
            tokens = args.PositiveInt();
        }
        else if (a == "--runs")
        {
            runs = args.PositiveInt();
        }
        else if (a == "--threads")
        {
            threads = args.PositiveInt();
        }
        else if (a == "--python")
        {
            python = args.Value();
        }
        else if (a == "--reference")
        {
            reference = args.Value();
        }
        else
        {
            args.Unknown();
        }
    }

    try
    {
        LoadOptions options;
        options.threads = threads;
        auto model = MixtralModel::Load(modelDir, options);
        auto tokenizer = Tokenizer::ForModel(modelDir, model->Config());
        const std::vector<int> ids = tokenizer->Encode(prompt);
        const int vocab = model->Config().vocabSize;
        if (ids.empty() || int(ids.size()) + tokens > model->Config().maxPositionEmbeddings)
        {
            std::cerr << "bench engine: prompt + --tokens must fit the context of "
                      << model->Config().maxPositionEmbeddings << " tokens\n";
            return 2;
        }

        std::vector<double> rates;
        std::vector<int> generated;
        std::vector<float> logits(ids.size() * vocab);
        for (int run = 0; run <= runs; ++run) // run 0 warms up
        {
            KvCache cache = model->NewCache();
            model->Forward(cache, ids.data(), int(ids.size()), logits.data());
            const float* last = &logits[(ids.size() - 1) * vocab];
            int next = int(std::max_element(last, last + vocab) - last);
            std::vector<int> out;
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0; i < tokens; ++i) // exactly `tokens` decode steps
            {
                out.push_back(next);
                model->Forward(cache, &next, 1, logits.data());
                next = int(std::max_element(logits.data(), logits.data() + vocab) - logits.data());
            }
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (run > 0)
            {
                rates.push_back(tokens / s);
            }
            generated = out;
        }
        const double ours = Median(rates);
        std::printf("model: %s\n", modelDir.c_str());
        std::printf("threads: %d\n", threads);
        std::printf("decode_tokens: %d\n", tokens);
        std::printf("runs: %d\n", runs);
        std::printf("kernel: %s\n", KernelIsaName(model->Isa()));
        std::printf("wdmoe_tokens_per_s: %.1f\n", ours);
        std::printf("wdmoe_tokens_per_s_min: %.1f\n",
                    *std::min_element(rates.begin(), rates.end()));
        std::printf("wdmoe_tokens_per_s_max: %.1f\n",
                    *std::max_element(rates.begin(), rates.end()));
        std::fflush(stdout);

        int status = 0;
        const std::string probe = Capture(python + " -c 'import torch' 2>/dev/null", &status);
        if (status != 0)
        {
            std::printf("torch: not installed (apt-get install python3-torch); torch_speedup "
                        "skipped\n");
            return 0;
        }
        const std::string command = python + " " + ShellQuote(reference) + " decode " +
                                    ShellQuote(modelDir) + " --prompt " + ShellQuote(prompt) +
                                    " --tokens " + std::to_string(tokens) + " --runs " +
                                    std::to_string(runs) + " --threads " + std::to_string(threads);
        const std::string out = Capture(command, &status);
        if (status != 0)
        {
            std::cerr << "bench engine: the PyTorch reference failed: " << command << "\n";
            return 1;
        }
        const nlohmann::json torch = nlohmann::json::parse(out);
        const double theirs = torch.at("tokens_per_second").get<double>();
        const bool same = torch.at("tokens").get<std::vector<int>>() == generated;
        std::printf("torch_version: %s\n", torch.at("torch_version").get<std::string>().c_str());
        std::printf("torch_tokens_per_s: %.1f\n", theirs);
        std::printf("same_tokens: %s\n", same ? "true" : "false");
        std::printf("torch_speedup: %.2f\n", ours / theirs);
        std::printf("target_torch_speedup: 5\n");
        return same ? 0 : 1;
    }
    catch (const std::exception& e)
    {
        std::cerr << "bench engine: error: " << e.what() << "\n";
        return 1;
    }
}
