// wdmoe-llm: the MoE engine on its own — score a text, continue a prompt, calibrate adaptive
// gating, or run a config. The ./wdmoe driver calls it for `eval`, `generate` and `calibrate`.

#include "calibration.h"
#include "dtype.h"
#include "evaluation.h"
#include "expert-kernel.h"
#include "file-io.h"
#include "json-config.h"
#include "json-input.h"
#include "mixtral-model.h"
#include "result-files.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace wdmoe::llm;
using nlohmann::ordered_json;
using ns3::CreateResultDirectory;
using ns3::DefaultResultDirectory;
using ns3::JsonConfigReader;
using ns3::ReadJsonConfigFile;
using ns3::WriteFileAtomically;

namespace
{

/// A command-line mistake: printed with the subcommand's usage, exit code 2.
struct UsageError
{
    std::string message;
};

/// Bad input (file, config field): printed as is, exit code 1.
struct InputError
{
    std::string message;
};

const char* kEvalUsage =
    "usage: wdmoe eval MODEL_DIR TEXT_FILE [--dtype f32|bf16|f16] [--max-tokens N]\n"
    "                  [--window N] [--threads N] [--kernel auto|avx512|avx2|scalar]\n"
    "                  [--dense stored|widened]\n"
    "Teacher-forced evaluation: scores every next token of TEXT_FILE in non-overlapping\n"
    "windows of --window tokens (default: the model's max_position_embeddings) and prints\n"
    "one JSON object with tokens, nll_per_token (nats), perplexity, top1_accuracy,\n"
    "per-layer expert usage and timing.\n"
    "--dense widened runs attention, router and LM head on float32 copies through Eigen on\n"
    "one thread (the engine's original path) instead of in the stored type on every thread.\n";

const char* kGenerateUsage =
    "usage: wdmoe generate MODEL_DIR \"PROMPT\" [--tokens N] [--dtype f32|bf16|f16]\n"
    "                      [--threads N] [--kernel auto|avx512|avx2|scalar]\n"
    "                      [--dense stored|widened]\n"
    "Greedy continuation of PROMPT (default 64 tokens, bounded by the model's context);\n"
    "prints the prompt followed by the continuation.\n";

const char* kCalibrateUsage =
    "usage: wdmoe calibrate MODEL_DIR TEXT_FILE [--window N] [--max-tokens N]\n"
    "                       [--threads N] [--kernel auto|avx512|avx2|scalar]\n"
    "                       [--dense stored|widened]\n"
    "AdapMoE's sensitivity calibration of a top-2 model: per layer, the mean increase of the\n"
    "NLL of TEXT_FILE (teacher forcing, non-overlapping windows of --window tokens, default\n"
    "the model's max_position_embeddings) when the second expert is dropped at that layer\n"
    "alone, and F_l = E[dNLL] / E[w2^2]. Writes MODEL_DIR/sensitivity.json atomically and\n"
    "prints the per-layer table.\n";

const char* kRunUsage =
    "usage: wdmoe-llm run [CONFIG.json] [--outDir DIR] [--threads N]\n"
    "                     [--kernel auto|avx512|avx2|scalar] [--dense stored|widened]\n"
    "The engine alone (no cell): a config's held-out perplexity and a greedy continuation\n"
    "(default configs/engine.json). Prints a table and writes summary.json into --outDir\n"
    "(default results/<config name>/), atomically.\n";

struct Args
{
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;
};

/// Parses --name VALUE and --name=VALUE for the allowed names; anything else starting with
/// "--" is a usage error.
Args
ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& allowed)
{
    Args args;
    for (int i = first; i < argc; ++i)
    {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0)
        {
            args.positional.push_back(a);
            continue;
        }
        std::string name = a.substr(2);
        std::string value;
        const auto eq = name.find('=');
        bool hasValue = eq != std::string::npos;
        if (hasValue)
        {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        bool known = false;
        for (const auto& n : allowed)
        {
            known = known || n == name;
        }
        if (!known)
        {
            throw UsageError{"unknown option '--" + name + "'"};
        }
        if (!hasValue)
        {
            if (i + 1 >= argc)
            {
                throw UsageError{"option '--" + name + "' needs a value"};
            }
            value = argv[++i];
        }
        args.options[name] = value;
    }
    return args;
}

long long
IntOption(const Args& args,
          const std::string& name,
          long long fallback,
          long long min,
          long long max = INT_MAX)
{
    auto it = args.options.find(name);
    if (it == args.options.end())
    {
        return fallback;
    }
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || errno != 0 || v < min || v > max)
    {
        throw UsageError{"--" + name + " expects an integer from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", got '" + wdmoe::llm::CutForMessage(it->second) +
                         "'"};
    }
    return v;
}

LoadOptions
ModelOptions(const Args& args)
{
    LoadOptions options;
    auto dtype = args.options.find("dtype");
    if (dtype != args.options.end())
    {
        if (!ParseUserDType(dtype->second, &options.dtype))
        {
            throw UsageError{"--dtype expects f32, bf16 or f16, got '" + dtype->second + "'"};
        }
        options.overrideDType = true;
    }
    options.threads = int(IntOption(args, "threads", 0, 0, 1024));
    auto kernel = args.options.find("kernel");
    if (kernel != args.options.end() && kernel->second != "auto" &&
        !ParseKernelIsa(kernel->second, &options.isa))
    {
        throw UsageError{"--kernel expects auto, avx512, avx2 or scalar, got '" + kernel->second +
                         "'"};
    }
    auto dense = args.options.find("dense");
    if (dense != args.options.end() && !ParseDenseWeights(dense->second, &options.dense))
    {
        throw UsageError{"--dense expects stored or widened, got '" +
                         wdmoe::llm::CutForMessage(dense->second) + "'"};
    }
    return options;
}

/// Loads a model; the tensors its loader skipped (dtypes the engine does not read) are noted on
/// stderr.
std::unique_ptr<MixtralModel>
LoadModel(const std::string& dir, const LoadOptions& options)
{
    auto model = MixtralModel::Load(dir, options);
    for (const std::string& note : model->Notes())
    {
        std::cerr << "wdmoe-llm: note: " << note << "\n";
    }
    return model;
}

std::string
ReadFile(const std::string& path)
{
    std::optional<std::string> text = ReadWholeFile(path);
    if (!text)
    {
        throw InputError{path + ": cannot open file"};
    }
    return std::move(*text);
}

ordered_json
EvalJson(const EvalResult& r)
{
    ordered_json j;
    j["tokens"] = r.tokens;
    j["nll_per_token"] = r.nllPerToken;
    j["perplexity"] = r.perplexity;
    j["top1_accuracy"] = r.top1Accuracy;
    j["mean_experts_per_token_layer"] = r.meanExpertsPerTokenLayer;
    j["expert_usage"] = r.expertUsage;
    j["seconds"] = r.seconds;
    j["tokens_per_second"] = r.seconds > 0 ? r.tokens / r.seconds : 0.0;
    return j;
}

ordered_json
ModelJson(const MixtralModel& m, const Tokenizer& tok)
{
    const ModelConfig& c = m.Config();
    ordered_json j;
    j["dir"] = m.Dir();
    j["layers"] = c.numHiddenLayers;
    j["experts"] = c.numLocalExperts;
    j["top_k"] = c.numExpertsPerTok;
    j["d_model"] = c.hiddenSize;
    j["d_ff"] = c.intermediateSize;
    j["vocab_size"] = c.vocabSize;
    j["dtype"] = DTypeName(m.WeightDType());
    j["layout"] = m.Layout() == ExpertLayout::Classic ? "classic" : "packed";
    j["tokenizer"] = tok.Kind();
    j["kernel"] = KernelIsaName(m.Isa());
    j["dense"] = DenseWeightsName(m.Dense());
    j["threads"] = m.Threads();
    return j;
}

int
CmdEval(int argc, char** argv)
{
    Args args =
        ParseArgs(argc, argv, 2, {"dtype", "max-tokens", "window", "threads", "kernel", "dense"});
    if (args.positional.size() != 2)
    {
        throw UsageError{"eval takes MODEL_DIR and TEXT_FILE"};
    }
    LoadOptions options = ModelOptions(args);
    EvalOptions eval;
    eval.maxTokens = IntOption(args, "max-tokens", 0, 1, 1LL << 40);
    eval.window = int(IntOption(args, "window", 0, 2));
    auto model = LoadModel(args.positional[0], options);
    auto tokenizer = Tokenizer::ForModel(args.positional[0], model->Config());
    const std::string text = ReadFile(args.positional[1]);
    EvalResult r = EvaluateTokens(*model, tokenizer->Encode(text), eval);
    ordered_json j;
    j["model"] = ModelJson(*model, *tokenizer);
    j["text"] = args.positional[1];
    const ordered_json metrics = EvalJson(r);
    for (auto it = metrics.begin(); it != metrics.end(); ++it)
    {
        j[it.key()] = it.value();
    }
    std::cout << j.dump(2) << "\n";
    return 0;
}

int
CmdGenerate(int argc, char** argv)
{
    Args args = ParseArgs(argc, argv, 2, {"tokens", "dtype", "threads", "kernel", "dense"});
    if (args.positional.size() != 2)
    {
        throw UsageError{"generate takes MODEL_DIR and PROMPT"};
    }
    LoadOptions options = ModelOptions(args);
    const int tokens = int(IntOption(args, "tokens", 64, 1));
    auto model = LoadModel(args.positional[0], options);
    auto tokenizer = Tokenizer::ForModel(args.positional[0], model->Config());
    const std::vector<int> prompt = tokenizer->Encode(args.positional[1]);
    if (prompt.empty())
    {
        throw InputError{"the prompt is empty"};
    }
    std::cout << args.positional[1] << tokenizer->Decode(GenerateGreedy(*model, prompt, tokens))
              << "\n";
    return 0;
}

/// The calibration text as sensitivity.json names it: relative to the model folder when it
/// lies inside it, else the path as given.
std::string
NameRelativeToModel(const std::string& modelDir, const std::string& textPath)
{
    namespace fs = std::filesystem;
    std::error_code error;
    const fs::path dir = fs::weakly_canonical(fs::path(modelDir), error);
    if (error)
    {
        return textPath;
    }
    const fs::path text = fs::weakly_canonical(fs::path(textPath), error);
    if (error)
    {
        return textPath;
    }
    const fs::path relative = text.lexically_relative(dir);
    if (relative.empty() || *relative.begin() == "..")
    {
        return textPath;
    }
    return relative.generic_string();
}

int
CmdCalibrate(int argc, char** argv)
{
    Args args = ParseArgs(argc, argv, 2, {"window", "max-tokens", "threads", "kernel", "dense"});
    if (args.positional.size() != 2)
    {
        throw UsageError{"calibrate takes MODEL_DIR and TEXT_FILE"};
    }
    LoadOptions options = ModelOptions(args);
    CalibrationOptions calibration;
    calibration.window = int(IntOption(args, "window", 0, 2));
    calibration.maxTokens = IntOption(args, "max-tokens", 0, 1, 1LL << 40);
    const std::string& modelDir = args.positional[0];
    const std::string& textPath = args.positional[1];
    auto model = LoadModel(modelDir, options);
    auto tokenizer = Tokenizer::ForModel(modelDir, model->Config());
    const std::vector<int> ids = tokenizer->Encode(ReadFile(textPath));
    if (ids.size() < 2)
    {
        throw InputError{textPath + ": fewer than 2 tokens, nothing to calibrate on"};
    }
    const SensitivityTable table =
        CalibrateSensitivity(*model, ids, NameRelativeToModel(modelDir, textPath), calibration);
    table.Save(modelDir);

    std::printf("wdmoe calibrate %s %s\n", modelDir.c_str(), textPath.c_str());
    std::printf("  tokens scored  %lld (windows of %d tokens)\n",
                table.calibrationTokens,
                table.window);
    std::printf("  %5s  %14s  %12s  %12s\n", "layer", "E[dNLL] nats", "E[w2^2]", "F_l");
    for (std::size_t l = 0; l < table.sensitivity.size(); ++l)
    {
        std::printf("  %5zu  %14.6f  %12.6f  %12.6f\n",
                    l,
                    table.meanDeltaNll[l],
                    table.meanSecondWeightSq[l],
                    table.sensitivity[l]);
    }
    std::printf("  written        %s/sensitivity.json\n", modelDir.c_str());
    return 0;
}

// ----------------------------------------------------------------------------- run

int
CmdRun(int argc, char** argv)
{
    Args args = ParseArgs(argc, argv, 2, {"config", "outDir", "threads", "kernel", "dense"});
    std::string configPath = "configs/engine.json";
    if (args.options.count("config"))
    {
        configPath = args.options["config"];
    }
    if (args.positional.size() > 1 || (args.positional.size() == 1 && args.options.count("config")))
    {
        throw UsageError{"run takes at most one CONFIG.json"};
    }
    if (args.positional.size() == 1)
    {
        configPath = args.positional[0];
    }
    const nlohmann::json config = ReadJsonConfigFile(configPath);
    JsonConfigReader root(configPath, config);
    root.AllowOnly({"description", "model", "dtype", "evaluation", "generation"});
    root.String("description", "");
    const std::string modelDir = root.PathRelativeToFile(root.String("model"));
    LoadOptions options = ModelOptions(args);
    const std::string dtype = root.String("dtype", "");
    if (!dtype.empty())
    {
        if (!ParseUserDType(dtype, &options.dtype))
        {
            root.Fail("dtype", "must be \"f32\", \"bf16\" or \"f16\", got \"" + dtype + "\"");
        }
        options.overrideDType = true;
    }
    const JsonConfigReader evalConfig = root.Object("evaluation");
    evalConfig.AllowOnly({"text", "max_tokens", "window"});
    const std::string textPath = root.PathRelativeToFile(evalConfig.String("text"));
    EvalOptions eval;
    eval.maxTokens = evalConfig.Integer("max_tokens", 0, 1, 1LL << 40);
    eval.window = int(evalConfig.Integer("window", 0, 2, 1 << 20));
    const JsonConfigReader genConfig = root.Object("generation");
    genConfig.AllowOnly({"prompt", "tokens"});
    const std::string prompt = genConfig.String("prompt");
    const int genTokens = int(genConfig.Integer("tokens", 64, 1, 1 << 20));
    const std::string outDir =
        args.options.count("outDir") ? args.options["outDir"] : DefaultResultDirectory(configPath);

    auto model = LoadModel(modelDir, options);
    auto tokenizer = Tokenizer::ForModel(modelDir, model->Config());
    EvalResult r = EvaluateTokens(*model, tokenizer->Encode(ReadFile(textPath)), eval);
    const std::vector<int> promptIds = tokenizer->Encode(prompt);
    if (promptIds.empty())
    {
        root.Fail("generation.prompt", "must not be empty");
    }
    const std::string continuation =
        tokenizer->Decode(GenerateGreedy(*model, promptIds, genTokens));

    ordered_json summary;
    summary["config"] = configPath;
    summary["config_echo"] = config;
    summary["model"] = ModelJson(*model, *tokenizer);
    summary["evaluation"] = EvalJson(r);
    summary["evaluation"]["text"] = textPath;
    summary["generation"] = {{"prompt", prompt}, {"continuation", continuation}};
    CreateResultDirectory(outDir);
    WriteFileAtomically(outDir + "/summary.json", summary.dump(2) + "\n");

    const ModelConfig& c = model->Config();
    std::printf("wdmoe-llm run %s\n", configPath.c_str());
    std::printf("  model          %s (Mixtral: %d layers, %d experts, top-%d, d_model %d, %s, "
                "%s kernel)\n",
                modelDir.c_str(),
                c.numHiddenLayers,
                c.numLocalExperts,
                c.numExpertsPerTok,
                c.hiddenSize,
                DTypeName(model->WeightDType()),
                KernelIsaName(model->Isa()));
    std::printf("  held-out text  %s (%lld tokens scored)\n",
                textPath.c_str(),
                (long long)r.tokens);
    std::printf("  perplexity     %.4f  (NLL %.4f nats/token, top-1 accuracy %.4f)\n",
                r.perplexity,
                r.nllPerToken,
                r.top1Accuracy);
    std::printf("  experts/token  %.3f per layer; %.0f tokens/s scored\n",
                r.meanExpertsPerTokenLayer,
                r.seconds > 0 ? r.tokens / r.seconds : 0.0);
    std::printf("  continuation   %s", prompt.c_str());
    std::printf("%s\n", continuation.c_str());
    std::printf("  summary        %s/summary.json\n", outDir.c_str());
    return 0;
}

const char* kTopUsage = "usage: wdmoe-llm eval|generate|calibrate|run ... (each takes --help)\n";

} // namespace

int
main(int argc, char** argv)
{
    const std::string cmd = argc > 1 ? argv[1] : "";
    const std::map<std::string, std::pair<int (*)(int, char**), const char*>> commands = {
        {"eval", {CmdEval, kEvalUsage}},
        {"generate", {CmdGenerate, kGenerateUsage}},
        {"calibrate", {CmdCalibrate, kCalibrateUsage}},
        {"run", {CmdRun, kRunUsage}},
    };
    auto it = commands.find(cmd);
    if (cmd == "--help" || cmd == "-h")
    {
        std::cout << kTopUsage;
        return 0;
    }
    if (it == commands.end())
    {
        std::cerr << "wdmoe-llm: unknown subcommand '" << cmd << "'\n" << kTopUsage;
        return 2;
    }
    for (int i = 2; i < argc; ++i)
    {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h")
        {
            std::cout << it->second.second;
            return 0;
        }
    }
    try
    {
        return it->second.first(argc, argv);
    }
    catch (const UsageError& e)
    {
        std::cerr << "wdmoe " << cmd << ": " << e.message << "\n" << it->second.second;
        return 2;
    }
    catch (const InputError& e)
    {
        std::cerr << "wdmoe " << cmd << ": error: " << e.message << "\n";
        return 1;
    }
    catch (const std::exception& e)
    {
        std::cerr << "wdmoe " << cmd << ": error: " << e.what() << "\n";
        return 1;
    }
}
