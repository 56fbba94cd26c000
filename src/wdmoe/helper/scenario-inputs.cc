#include "scenario-inputs.h"

#include "expert-placement.h"
#include "file-io.h"
#include "inference-policy.h"
#include "profile-reader.h"
#include "routing.h"
#include "teacher-forced-stream.h"
#include "tokenizer.h"

#include <cmath>
#include <optional>
#include <string>

namespace ns3
{

namespace
{

std::string
ReadText(const std::string& path, const JsonConfigReader& where, const std::string& field)
{
    std::optional<std::string> text = wdmoe::llm::ReadWholeFile(path);
    if (!text)
    {
        where.Fail(field, "names a file that cannot be read: " + path);
    }
    return std::move(*text);
}

/// True when the texts share a passage: one of up to 32 windows of 64 bytes spread evenly over
/// `evaluation` occurs in `calibration` (a text scored with knowledge tuned on itself would
/// flatter the policy).
bool
TextsOverlap(const std::string& evaluation, const std::string& calibration)
{
    const std::size_t window = 64;
    if (evaluation.size() < window)
    {
        return calibration.find(evaluation) != std::string::npos;
    }
    const std::size_t probes = 32;
    for (std::size_t i = 0; i < probes; ++i)
    {
        const std::size_t at = (evaluation.size() - window) * i / (probes - 1);
        if (calibration.find(evaluation.substr(at, window)) != std::string::npos)
        {
            return true;
        }
    }
    return false;
}

/// Where run c.run starts scoring the text (workload.text_per_run).
std::size_t
TextStart(const ScenarioConfig& c)
{
    return c.disjointTextPerRun
               ? std::size_t(c.run - 1) * std::size_t(c.promptTokens + c.scoredTokens)
               : 0;
}

/// Every request's window (prompt + output tokens) must fit the text and the model's context
/// (a request that re-prefilled a second window in the middle of a decode batch is not modelled).
void
CheckRequestsFit(const ScenarioConfig& c,
                 const JsonConfigReader& root,
                 std::size_t textTokens,
                 int context)
{
    const ServingWorkload& w = c.serving->workload;
    const std::string field =
        w.poisson ? "workload.requests.output_tokens" : "workload.requests.trace";
    const int longest = LongestRequestTokens(w);
    if (std::size_t(longest) > textTokens)
    {
        root.Fail(field,
                  "asks for a request of " + std::to_string(longest) + " prompt + output tokens; " +
                      c.textPath + " has " + std::to_string(textTokens));
    }
    if (longest > context)
    {
        root.Fail(field,
                  "asks for a request of " + std::to_string(longest) +
                      " prompt + output tokens, beyond the model's context of " +
                      std::to_string(context));
    }
}

/// The KV memory of the BS must hold the longest request on its own.
void
CheckRequestsKvFit(const ScenarioConfig& c, const JsonConfigReader& root, const ScenarioInputs& in)
{
    const ServingWorkload& w = c.serving->workload;
    const int longest = LongestRequestTokens(w);
    const double need = RequestKvTokens(longest, 0) * in.cost.KvBytesPerToken();
    const double budget = KvMemoryBytes(c, in);
    if (need > budget)
    {
        root.Fail("serving.kv_memory_fraction",
                  "leaves " + std::to_string((long long)budget) + " bytes of " + c.bsProfile +
                      "'s memory for KV caches, less than the " + std::to_string((long long)need) +
                      " bytes of a request of " + std::to_string(longest) + " tokens");
    }
}

/// The text's tokens from where run c.run starts, checked against the workload and the model.
std::vector<int>
ScoredTokens(const ScenarioConfig& c,
             const JsonConfigReader& root,
             const std::vector<int>& allTokens,
             int context)
{
    const std::size_t textStart = TextStart(c);
    if (c.serving)
    {
        CheckRequestsFit(c, root, allTokens.size(), context);
        return allTokens;
    }
    if (textStart + c.promptTokens + c.scoredTokens > allTokens.size())
    {
        root.Fail(c.disjointTextPerRun ? "workload.text_per_run" : "workload.scored_tokens",
                  "needs " + std::to_string(textStart + c.promptTokens + c.scoredTokens) +
                      " tokens of " + c.textPath + " (run " + std::to_string(c.run) +
                      " starts at token " + std::to_string(textStart) + "), which has " +
                      std::to_string(allTokens.size()));
    }
    const std::string promptError = wdmoe::llm::PromptContextError(c.promptTokens, context);
    if (!promptError.empty())
    {
        root.Fail("workload.prompt_tokens", promptError);
    }
    return std::vector<int>(allTokens.begin() + textStart, allTokens.end());
}

/// Neither the calibration text nor the text the cache allocation is profiled on may share
/// passages with the text that is scored; the DP cache split and the popularity placements need
/// the routing profile.
wdmoe::llm::RoutingProfile
CheckTextsAndProfile(const ScenarioConfig& c,
                     const JsonConfigReader& root,
                     const std::string& text,
                     wdmoe::llm::MixtralModel& model,
                     const wdmoe::llm::Tokenizer& tokenizer)
{
    const InferencePolicy& policy = c.policy;
    if (!c.tuning && !c.calibrationTextPath.empty() &&
        TextsOverlap(text, ReadText(c.calibrationTextPath, root, "workload.text")))
    {
        root.Fail("workload.text",
                  "shares passages with the calibration text " + c.calibrationTextPath +
                      " that the sensitivities were fitted on; score another text (or set "
                      "workload.purpose to \"tuning\" to choose policy knobs on it)");
    }
    if (c.cacheAllocation != CacheAllocationRule::DP && !PlacementUsesPopularity(c.placement))
    {
        return {};
    }
    const std::string profile = ReadText(c.profileTextPath, root, "policy.profile_text");
    if (!c.tuning && TextsOverlap(text, profile))
    {
        root.Fail("policy.profile_text",
                  "shares passages with workload.text; profile the routing on another text");
    }
    // The model's own top-k profiles as no gating at all (ProfileRouting's null policy).
    const std::unique_ptr<wdmoe::llm::RoutingPolicy> gating =
        policy.Adaptive() ? GatingOf(policy, model.Config().numHiddenLayers) : nullptr;
    return wdmoe::llm::ProfileRouting(model,
                                      tokenizer.Encode(profile),
                                      model.Config().maxPositionEmbeddings,
                                      c.promptTokens,
                                      gating.get(),
                                      c.profileTokens);
}

} // namespace

ScenarioInputs
LoadInputs(const ScenarioConfig& c, const JsonConfigReader& root)
{
    ScenarioInputs in;
    wdmoe::llm::LoadOptions options;
    options.threads = c.threads;
    options.isa = c.kernel;
    options.dense = c.dense;
    if (c.dtype)
    {
        options.overrideDType = true;
        options.dtype = *c.dtype;
    }
    in.model = std::shared_ptr<wdmoe::llm::MixtralModel>(
        wdmoe::llm::MixtralModel::Load(c.modelDir, options));
    const wdmoe::llm::ModelConfig& mc = in.model->Config();
    auto tokenizer = wdmoe::llm::Tokenizer::ForModel(c.modelDir, mc);
    const std::string text = ReadText(c.textPath, root, "workload.text");
    in.textStart = TextStart(c);
    in.tokens = ScoredTokens(c, root, tokenizer->Encode(text), mc.maxPositionEmbeddings);
    in.routingProfile = CheckTextsAndProfile(c, root, text, *in.model, *tokenizer);
    const CostModel routedDimensions =
        CostModel::FromDimensions("self (" + c.modelDir + ")",
                                  mc.hiddenSize,
                                  mc.intermediateSize,
                                  mc.numHiddenLayers,
                                  mc.numLocalExperts,
                                  mc.numExpertsPerTok,
                                  mc.numAttentionHeads,
                                  mc.numKeyValueHeads,
                                  mc.headDim,
                                  mc.vocabSize,
                                  double(DTypeSize(in.model->WeightDType())));
    in.cost = c.pricedModel.Resolve(root, routedDimensions, mc.numHiddenLayers);
    in.bsProfile = LoadComputeProfile(c.profileFolders, c.bsProfile);
    std::vector<ComputeProfile> groupProfiles;
    for (const DeviceGroup& g : c.Groups())
    {
        groupProfiles.push_back(LoadComputeProfile(c.profileFolders, g.profile));
    }
    for (const CellDevice& d : c.CellDevices())
    {
        in.deviceProfiles.push_back(groupProfiles[d.group]);
    }
    if (c.serving)
    {
        CheckRequestsKvFit(c, root, in);
    }
    return in;
}

double
KvMemoryBytes(const ScenarioConfig& c, const ScenarioInputs& in)
{
    return std::floor(c.serving->kvMemoryFraction * in.bsProfile.memoryBytes);
}

DeviceSlots
ExpertSlots(const ScenarioConfig& c, const JsonConfigReader& root, const ScenarioInputs& in)
{
    const std::vector<CellDevice> devices = c.CellDevices();
    const std::vector<DeviceGroup> groups = c.Groups();
    DeviceSlots slots;
    long long hosted = 0;
    std::string groupsText;
    for (std::size_t i = 0; i < devices.size(); ++i)
    {
        const CellDevice& d = devices[i];
        const int memorySlots = int(std::floor(d.memoryFraction * in.deviceProfiles[i].memoryBytes /
                                               in.cost.ExpertBytes()));
        slots.memory.push_back(memorySlots);
        slots.storage.push_back(d.storageSlots > 0 ? d.storageSlots : memorySlots);
        hosted += slots.storage.back();
        if (i == 0 || devices[i - 1].group != d.group)
        {
            const DeviceGroup& g = groups[d.group];
            groupsText += (groupsText.empty() ? "" : " + ") + std::to_string(g.count) + " x " +
                          std::to_string(slots.storage.back()) + " (" + g.profile + ")";
        }
    }
    const int layers = in.model->Config().numHiddenLayers;
    const int experts = in.model->Config().numLocalExperts;
    if (c.deviceGroups.empty())
    {
        // Every device alike: the message of the object form.
        const std::string shortfall = HostingShortfall(
            c.devices,
            slots.storage[0],
            c.storageSlots > 0
                ? "storage slots"
                : "expert slots (memory_fraction x memory of " + c.deviceProfile + " / " +
                      std::to_string(in.cost.ExpertBytes()) + " bytes per priced expert)",
            layers,
            experts);
        if (!shortfall.empty())
        {
            root.Fail(c.storageSlots > 0 ? "devices.storage_slots" : "devices",
                      "cannot hold the model: " + shortfall);
        }
    }
    else if (hosted < (long long)layers * experts)
    {
        root.Fail("devices",
                  "cannot hold the model: the groups host " + groupsText + " = " +
                      std::to_string(hosted) +
                      " expert slots (storage_slots, else memory_fraction "
                      "x memory / " +
                      std::to_string(in.cost.ExpertBytes()) + " bytes per priced expert) < " +
                      std::to_string(layers) + " layers x " + std::to_string(experts) + " experts");
    }
    return slots;
}

} // namespace ns3
