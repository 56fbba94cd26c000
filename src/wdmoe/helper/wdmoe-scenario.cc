#include "wdmoe-scenario.h"

#include "cache-allocation.h"
#include "calibration.h"
#include "cell-mobility.h"
#include "compute-profile.h"
#include "confidence-interval.h"
#include "cost-model-json.h"
#include "cost-model.h"
#include "expert-device-app.h"
#include "expert-placement.h"
#include "file-io.h"
#include "gating.h"
#include "json-config.h"
#include "json-input.h"
#include "latency-predictor.h"
#include "link-transport.h"
#include "mixtral-model.h"
#include "model-config.h"
#include "moe-inference-app.h"
#include "profile-reader.h"
#include "result-files.h"
#include "scenario-warnings.h"
#include "tokenizer.h"
#include "wdmoe-channel.h"
#include "wdmoe-stats-collector.h"

#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/mobility-model.h"
#include "ns3/node-container.h"
#include "ns3/pointer.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("WdmoeScenario");

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

} // namespace

ScenarioResult
RunScenario(const ScenarioConfig& c, const std::function<void(Ptr<MoeInferenceApp>)>& beforeRun)
{
    RngSeedManager::SetSeed(c.seed);
    RngSeedManager::SetRun(c.run);
    int64_t stream = 0;

    // The model that runs and routes.
    wdmoe::llm::LoadOptions options;
    options.threads = c.threads;
    if (!c.dtype.empty())
    {
        options.overrideDType = true;
        wdmoe::llm::ParseUserDType(c.dtype, &options.dtype);
    }
    auto model = std::shared_ptr<wdmoe::llm::MixtralModel>(
        wdmoe::llm::MixtralModel::Load(c.modelDir, options));
    const wdmoe::llm::ModelConfig& mc = model->Config();
    auto tokenizer = wdmoe::llm::Tokenizer::ForModel(c.modelDir, mc);
    const JsonConfigReader root(c.file, c.echo);
    const std::string text = ReadText(c.textPath, root, "workload.text");
    const std::size_t textStart = TextStart(c);
    const std::vector<int> allTokens = tokenizer->Encode(text);
    if (textStart + c.promptTokens + c.scoredTokens > allTokens.size())
    {
        root.Fail(c.disjointTextPerRun ? "workload.text_per_run" : "workload.scored_tokens",
                  "needs " + std::to_string(textStart + c.promptTokens + c.scoredTokens) +
                      " tokens of " + c.textPath + " (run " + std::to_string(c.run) +
                      " starts at token " + std::to_string(textStart) + "), which has " +
                      std::to_string(allTokens.size()));
    }
    const std::vector<int> tokens(allTokens.begin() + textStart, allTokens.end());
    if (c.promptTokens >= mc.maxPositionEmbeddings)
    {
        root.Fail("workload.prompt_tokens",
                  "must be below the model's context of " +
                      std::to_string(mc.maxPositionEmbeddings) + " tokens, got " +
                      std::to_string(c.promptTokens));
    }

    // Neither the calibration text nor the text the cache allocation is profiled on may share
    // passages with the text that is scored.
    const InferencePolicy& policy = c.policy;
    if (!c.tuning && !c.calibrationTextPath.empty() &&
        TextsOverlap(text, ReadText(c.calibrationTextPath, root, "workload.text")))
    {
        root.Fail("workload.text",
                  "shares passages with the calibration text " + c.calibrationTextPath +
                      " that the sensitivities were fitted on; score another text (or set "
                      "workload.purpose to \"tuning\" to choose policy knobs on it)");
    }
    wdmoe::llm::RoutingProfile routingProfile;
    if (c.cacheAllocation == CacheAllocationRule::DP)
    {
        const std::string profile = ReadText(c.profileTextPath, root, "policy.profile_text");
        if (!c.tuning && TextsOverlap(text, profile))
        {
            root.Fail("policy.profile_text",
                      "shares passages with workload.text; profile the routing on another text");
        }
        std::unique_ptr<wdmoe::llm::RoutingPolicy> gating;
        if (policy.adaptiveGating)
        {
            gating = std::make_unique<wdmoe::llm::AdaptiveGating>(policy.sensitivity,
                                                                  policy.adaptiveThreshold,
                                                                  policy.adaptivePrefill);
        }
        routingProfile = wdmoe::llm::ProfileRouting(*model,
                                                    tokenizer->Encode(profile),
                                                    mc.maxPositionEmbeddings,
                                                    c.promptTokens,
                                                    gating.get(),
                                                    c.profileTokens);
    }

    // The model that is priced.
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
                                  double(DTypeSize(model->WeightDType())));
    const CostModel cost = c.pricedModel.Resolve(root, routedDimensions, mc.numHiddenLayers);
    const ComputeProfile bsProfile = LoadComputeProfile(c.profileFolders, c.bsProfile);
    const ComputeProfile deviceProfile = LoadComputeProfile(c.profileFolders, c.deviceProfile);

    // Nodes and positions: the BS at the centre (25 m high), devices uniform in the annulus
    // [min_distance, radius] at 1.5 m.
    NodeContainer bsNode;
    bsNode.Create(1);
    NodeContainer deviceNodes;
    deviceNodes.Create(c.devices);
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bsNode.Get(0)->AggregateObject(bsMobility);
    Ptr<UniformRandomVariable> radius2 = CreateObject<UniformRandomVariable>();
    radius2->SetAttribute("Min", DoubleValue(c.minDistanceM * c.minDistanceM));
    radius2->SetAttribute("Max", DoubleValue(c.radiusM * c.radiusM));
    Ptr<UniformRandomVariable> angle = CreateObject<UniformRandomVariable>();
    angle->SetAttribute("Max", DoubleValue(2 * M_PI));
    radius2->SetStream(stream++);
    angle->SetStream(stream++);
    std::vector<Ptr<MobilityModel>> deviceMobility;
    for (int i = 0; i < c.devices; ++i)
    {
        Ptr<MobilityModel> m = CreateCellMobility(c.mobility);
        const double r = std::sqrt(radius2->GetValue());
        const double a = angle->GetValue();
        // Moving devices stay inside the square around the cell.
        PlaceInCell(m, c.radiusM, Vector(r * std::cos(a), r * std::sin(a), 1.5), stream);
        deviceNodes.Get(i)->AggregateObject(m);
        deviceMobility.push_back(m);
    }

    // The radio links.
    Ptr<WdmoeChannel> channel = CreateObject<WdmoeChannel>();
    channel->SetAttribute("PropagationLossModel",
                          PointerValue(c.propagation == CellPropagation::THREE_GPP_UMA
                                           ? WdmoeChannel::CreateThreeGppUma(c.carrierHz)
                                           : WdmoeChannel::CreateLogDistance128(c.minDistanceM)));
    channel->SetAttribute("ShadowingSigmaDb", DoubleValue(c.shadowingSigmaDb));
    channel->SetAttribute("CoherenceTime", TimeValue(Seconds(c.coherenceTimeS)));
    channel->SetAttribute("FadingEnabled", BooleanValue(c.fading));
    channel->SetAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    channel->SetAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    channel->SetAttribute("NoisePsdDbmPerHz", DoubleValue(c.noisePsdDbmHz));
    channel->SetAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    channel->SetAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    channel->SetAttribute("Efficiency", DoubleValue(c.efficiency));
    const BandPlan band = BandPlan::FromConfig(c.duplex, c.bandwidthHz, c.ulShare);
    channel->SetAttribute("TotalBandwidth", DoubleValue(band.dlHz));
    channel->SetBs(bsMobility);
    for (const auto& m : deviceMobility)
    {
        channel->AddDevice(m);
    }
    stream += channel->AssignStreams(stream);

    // The transport between the BS and the devices: the closed-form link on the band plan.
    Ptr<LinkTransport> transport = CreateObject<LinkTransport>();
    transport->SetAttribute("MinRate", DoubleValue(c.minRateBps));
    transport->SetChannel(channel, band);

    // An expert application on every device node. A device hosts up to storage_slots experts
    // on storage and keeps memorySlots in memory.
    std::vector<Ptr<ExpertDeviceApp>> deviceApps;
    for (int i = 0; i < c.devices; ++i)
    {
        Ptr<ExpertDeviceApp> device = CreateObject<ExpertDeviceApp>();
        device->SetTransport(transport, uint32_t(i));
        device->SetCosts(deviceProfile, cost);
        deviceNodes.Get(i)->AddApplication(device);
        device->SetStartTime(Seconds(0));
        deviceApps.push_back(device);
    }
    const LatencyPredictor predictor(channel, band, cost, deviceApps);

    // Placement (over the layers and experts of the model that routes) and caches.
    const int memorySlots =
        int(std::floor(c.memoryFraction * deviceProfile.memoryBytes / cost.ExpertBytes()));
    const int hostSlots = c.storageSlots > 0 ? c.storageSlots : memorySlots;
    PlacementProblem problem;
    problem.layers = mc.numHiddenLayers;
    problem.experts = mc.numLocalExperts;
    problem.replicas = c.replicas;
    for (int i = 0; i < c.devices; ++i)
    {
        problem.deviceCapacity.push_back(std::min(hostSlots, problem.layers * problem.experts));
        problem.deviceCost.push_back(predictor.EqualShareRoundTrip(uint32_t(i), 1, Seconds(0)));
    }
    if (hostSlots * c.devices < problem.layers * problem.experts)
    {
        root.Fail(c.storageSlots > 0 ? "devices.storage_slots" : "devices",
                  "cannot hold the model: " + std::to_string(c.devices) + " x " +
                      std::to_string(hostSlots) +
                      (c.storageSlots > 0
                           ? " storage slots"
                           : " expert slots (memory_fraction x memory of " + c.deviceProfile +
                                 " / " + std::to_string(cost.ExpertBytes()) +
                                 " bytes per priced expert)") +
                      " < " + std::to_string(problem.layers) + " layers x " +
                      std::to_string(problem.experts) + " experts");
    }
    const ExpertPlacement placement = c.placement == PlacementAlgorithm::MIN_COST
                                          ? PlaceMinCost(problem)
                                          : PlaceRoundRobin(problem);
    std::vector<std::string> warnings = model->Notes();
    for (const std::string& w : FailureWarnings(c.failures, placement))
    {
        warnings.push_back(w);
    }
    // Memory slots per layer: each layer's LRU holds at most the experts the device hosts there.
    std::vector<std::vector<int>> slotsOf(c.devices);
    for (int i = 0; i < c.devices; ++i)
    {
        std::vector<int> hosted(problem.layers, 0);
        for (const auto& [layer, expert] : placement.ExpertsOn(i))
        {
            ++hosted[layer];
        }
        if (c.cacheAllocation == CacheAllocationRule::DP)
        {
            std::vector<std::vector<double>> loads(problem.layers);
            for (int l = 0; l < problem.layers; ++l)
            {
                const double accuracy = policy.prefetch ? routingProfile.prefetchAccuracy[l] : 0.0;
                for (int slots = 0; slots <= hosted[l]; ++slots)
                {
                    loads[l].push_back(ExpectedOnDemandLoads(routingProfile.singleExpertRate[l],
                                                             accuracy,
                                                             hosted[l],
                                                             problem.experts,
                                                             mc.numExpertsPerTok,
                                                             slots));
                }
            }
            slotsOf[i] = AllocateSlotsDp(loads, memorySlots);
        }
        else
        {
            slotsOf[i] = AllocateSlotsUniform(hosted, memorySlots);
        }
        ExpertMemory memory(slotsOf[i]);
        if (c.warmCache)
        {
            for (const auto& [layer, expert] : placement.ExpertsOn(i))
            {
                memory.Preload(layer, expert);
            }
        }
        deviceApps[i]->SetMemory(memory);
    }

    Ptr<MoeInferenceApp> app = CreateObject<MoeInferenceApp>();
    app->SetAttribute("LayerDeadline", TimeValue(Seconds(c.layerDeadlineS)));
    app->SetModel(model);
    app->SetWorkload(tokens, c.promptTokens, c.scoredTokens);
    app->SetCell(transport, deviceApps, placement, predictor);
    app->SetCosts(cost, bsProfile);
    app->SetPolicy(policy);
    bsNode.Get(0)->AddApplication(app);
    for (const auto& f : c.failures)
    {
        deviceApps[f.device]->ScheduleSwitchOff(Seconds(f.atS));
    }
    app->SetStartTime(Seconds(0));
    WdmoeStatsCollector stats(mc.numHiddenLayers);
    stats.Connect();
    if (beforeRun)
    {
        beforeRun(app);
    }
    const auto wallStart = std::chrono::steady_clock::now();
    Simulator::Run();
    const double wallSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wallStart).count();
    const double simulatedSeconds = Simulator::Now().GetSeconds();
    if (!channel->HistoryError().empty())
    {
        const std::string why = channel->HistoryError();
        Simulator::Destroy();
        root.Fail("cell.coherence_time_ms", "is too short for this run: " + why);
    }
    const bool finished = app->Finished();
    Simulator::Destroy();
    if (!finished)
    {
        throw std::runtime_error(c.file + ": the simulation ended before every token was scored");
    }

    // Results, from the statistics the collector made of the trace sources.
    ScenarioResult result;
    nlohmann::ordered_json& s = result.summary;
    s["config"] = c.file;
    s["config_echo"] = c.echo;
    s["seed"] = c.seed;
    s["run"] = c.run;
    s["model_routed"] = {{"dir", c.modelDir},
                         {"layers", mc.numHiddenLayers},
                         {"experts", mc.numLocalExperts},
                         {"top_k", mc.numExpertsPerTok},
                         {"d_model", mc.hiddenSize},
                         {"d_ff", mc.intermediateSize},
                         {"dtype", wdmoe::llm::DTypeName(model->WeightDType())}};
    s["model_priced"] = CostModelJson(cost);
    s["model_priced"]["priced_layers"] =
        c.pricedModel.routedLayersOnly ? "routed" : "all";
    s["layers_in_latency"] = mc.numHiddenLayers;
    s["latency_covers"] = PricedModel::CoverageText(mc.numHiddenLayers, cost.layers);
    s["cell"] = {{"devices", c.devices},
                 {"device_profile", c.deviceProfile},
                 {"bs_profile", c.bsProfile},
                 {"bandwidth_mhz", c.bandwidthHz / 1e6},
                 {"expert_memory_slots_per_device", memorySlots},
                 {"expert_storage_slots_per_device", hostSlots},
                 {"placement", c.placement}};
    s["tokens_scored"] = stats.Tokens().size();
    s["text_start_token"] = textStart;
    s["workload_purpose"] = c.tuning ? "tuning" : "evaluation";
    stats.Latency(s);
    s["policy"] = {{"name", policy.name},
                   {"gating", c.gating},
                   {"adaptive_threshold", policy.adaptiveThreshold},
                   {"selection", c.selection},
                   {"allocation", c.allocation},
                   {"cache_allocation", c.cacheAllocation},
                   {"prefetch", policy.prefetch}};
    if (policy.selection == SelectionRule::STRAGGLER)
    {
        // The bounds in force (their defaults may change between versions).
        s["policy"]["straggler_weight_max"] = policy.straggler.weightMax;
        s["policy"]["straggler_gain_min"] = policy.straggler.gainMin;
        s["policy"]["straggler_tradeoff"] = policy.straggler.tradeoff;
        s["policy"]["straggler_layer_weights"] = c.stragglerLayerWeights;
    }
    if (!policy.stragglerLayerScale.empty())
    {
        s["policy"]["straggler_layer_scale"] = policy.stragglerLayerScale;
    }
    stats.Decode(s, slotsOf.empty() ? std::vector<int>() : slotsOf[0], c.selection != SelectionRule::ALL);
    stats.DropsAndAccuracy(s, warnings);
    // The only field that differs between two runs of the same config: how long it took.
    s["timing"] = {{"simulated_s", simulatedSeconds},
                   {"wall_s", wallSeconds},
                   {"sim_speed", wallSeconds > 0 ? simulatedSeconds / wallSeconds : 0.0}};
    result.tokensCsv = stats.TokensCsv();
    result.records = stats.Tokens();
    return result;
}

void
WriteScenarioResult(const ScenarioResult& result, const std::string& outDir)
{
    CreateResultDirectory(outDir);
    WriteFileAtomically(outDir + "/tokens.csv", result.tokensCsv);
    WriteFileAtomically(outDir + "/summary.json", result.summary.dump(2) + "\n");
}

} // namespace ns3
