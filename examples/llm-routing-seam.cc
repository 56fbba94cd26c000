// Example: answer the MoE layer's routing question yourself.
//
// Every MoE layer asks a RoutingPolicy which experts to run for each token (DESIGN.md
// section 2). This program scores the embedded model's held-out text twice — with the
// model's own top-2 and with a policy that keeps only the most probable expert — and prints
// the perplexity of both and how many experts ran per token and layer.
//
//   build/bin/llm-routing-seam [MODEL_DIR] [TEXT_FILE] [MAX_TOKENS]

#include "evaluation.h"
#include "file-io.h"
#include "mixtral-model.h"
#include "tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

using namespace wdmoe::llm;

/// Runs only the most probable expert, with weight 1.
class Top1Routing : public RoutingPolicy
{
  public:
    void Decide(const RoutingRequest& request, RoutingDecision& decision) override
    {
        const float* p = request.gateProbs;
        const int best = int(std::max_element(p, p + request.numExperts) - p);
        decision.experts = {best};
        decision.weights = {1.0f};
    }
};

int
main(int argc, char** argv)
{
    const std::string modelDir = argc > 1 ? argv[1] : "models/kjv-moe";
    const std::string textFile = argc > 2 ? argv[2] : modelDir + "/heldout.txt";
    EvalOptions options;
    options.maxTokens = argc > 3 ? std::atoll(argv[3]) : 4096;

    try
    {
        auto model = MixtralModel::Load(modelDir);
        auto tokenizer = Tokenizer::ForModel(modelDir, model->Config());
        const std::optional<std::string> text = ReadWholeFile(textFile);
        if (!text)
        {
            throw std::runtime_error("cannot read " + textFile);
        }
        const std::vector<int> ids = tokenizer->Encode(*text);

        const EvalResult topK = EvaluateTokens(*model, ids, options); // the model's own routing
        Top1Routing top1;
        options.policy = &top1;
        const EvalResult single = EvaluateTokens(*model, ids, options);

        std::printf("%-8s %10s %22s\n", "routing", "perplexity", "experts/token-layer");
        std::printf("%-8s %10.4f %22.3f\n",
                    "top-k",
                    topK.perplexity,
                    topK.meanExpertsPerTokenLayer);
        std::printf("%-8s %10.4f %22.3f\n",
                    "top-1",
                    single.perplexity,
                    single.meanExpertsPerTokenLayer);
        return 0;
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "llm-routing-seam: %s\n", e.what());
        return 1;
    }
}
