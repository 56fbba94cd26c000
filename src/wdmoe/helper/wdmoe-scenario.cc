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
#include "lte-transport.h"
#include "mixtral-model.h"
#include "model-config.h"
#include "moe-inference-app.h"
#include "profile-reader.h"
#include "result-files.h"
#include "scenario-warnings.h"
#include "teacher-forced-stream.h"
#include "tokenizer.h"
#include "wdmoe-channel.h"
#include "wdmoe-helper.h"
#include "wdmoe-stats-collector.h"

#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/enum.h"
#include "ns3/log.h"
#include "ns3/mobility-model.h"
#include "ns3/node-container.h"
#include "ns3/pointer.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"
#include "ns3/string.h"
#include "ns3/uinteger.h"

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

/// What a scenario runs and prices: the model, the tokens it scores, the cost model, the
/// profiles and (for the DP cache split) the routing profile.
struct ScenarioInputs
{
    std::shared_ptr<wdmoe::llm::MixtralModel> model;
    std::vector<int> tokens;
    std::size_t textStart = 0;
    wdmoe::llm::RoutingProfile routingProfile;
    CostModel cost = CostModel::Mixtral8x7B();
    ComputeProfile bsProfile;
    ComputeProfile deviceProfile;
};

/// The text's tokens from where run c.run starts, checked against the workload and the model.
std::vector<int>
ScoredTokens(const ScenarioConfig& c,
             const JsonConfigReader& root,
             const std::vector<int>& allTokens,
             int context)
{
    const std::size_t textStart = TextStart(c);
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
/// passages with the text that is scored; the DP cache split needs the routing profile.
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
    if (c.cacheAllocation != CacheAllocationRule::DP)
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

ScenarioInputs
LoadInputs(const ScenarioConfig& c, const JsonConfigReader& root)
{
    ScenarioInputs in;
    wdmoe::llm::LoadOptions options;
    options.threads = c.threads;
    if (!c.dtype.empty())
    {
        options.overrideDType = true;
        wdmoe::llm::ParseUserDType(c.dtype, &options.dtype);
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
    in.deviceProfile = LoadComputeProfile(c.profileFolders, c.deviceProfile);
    return in;
}

/// The BS at the centre (25 m high), devices uniform in the annulus [min_distance, radius] at
/// 1.5 m, each with the cell's mobility model; returns the next free random stream.
int64_t
PlaceNodes(const ScenarioConfig& c, Ptr<Node> bs, NodeContainer& devices, int64_t stream)
{
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bs->AggregateObject(bsMobility);
    Ptr<UniformRandomVariable> radius2 = CreateObject<UniformRandomVariable>();
    radius2->SetAttribute("Min", DoubleValue(c.minDistanceM * c.minDistanceM));
    radius2->SetAttribute("Max", DoubleValue(c.radiusM * c.radiusM));
    Ptr<UniformRandomVariable> angle = CreateObject<UniformRandomVariable>();
    angle->SetAttribute("Max", DoubleValue(2 * M_PI));
    radius2->SetStream(stream++);
    angle->SetStream(stream++);
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        Ptr<MobilityModel> m = CreateCellMobility(c.mobility);
        const double r = std::sqrt(radius2->GetValue());
        const double a = angle->GetValue();
        // Moving devices stay inside the square around the cell.
        PlaceInCell(m, c.radiusM, Vector(r * std::cos(a), r * std::sin(a), 1.5), stream);
        devices.Get(i)->AggregateObject(m);
    }
    return stream;
}

/// Expert slots of a device from the config: kept in memory, and hosted on storage.
std::pair<int, int>
ExpertSlots(const ScenarioConfig& c, const JsonConfigReader& root, const ScenarioInputs& in)
{
    const int memorySlots =
        int(std::floor(c.memoryFraction * in.deviceProfile.memoryBytes / in.cost.ExpertBytes()));
    const int hostSlots = c.storageSlots > 0 ? c.storageSlots : memorySlots;
    const std::string shortfall = HostingShortfall(
        c.devices,
        hostSlots,
        c.storageSlots > 0
            ? "storage slots"
            : "expert slots (memory_fraction x memory of " + c.deviceProfile + " / " +
                  std::to_string(in.cost.ExpertBytes()) + " bytes per priced expert)",
        in.model->Config().numHiddenLayers,
        in.model->Config().numLocalExperts);
    if (!shortfall.empty())
    {
        root.Fail(c.storageSlots > 0 ? "devices.storage_slots" : "devices",
                  "cannot hold the model: " + shortfall);
    }
    return {memorySlots, hostSlots};
}

/// The helper set from the config.
void
ConfigureHelper(WdmoeHelper& helper,
                const ScenarioConfig& c,
                const ScenarioInputs& in,
                std::pair<int, int> slots)
{
    helper.SetChannelAttribute(
        "PropagationLossModel",
        PointerValue(c.propagation == CellPropagation::THREE_GPP_UMA
                         ? WdmoeChannel::CreateThreeGppUma(c.carrierHz)
                         : WdmoeChannel::CreateLogDistance128(c.minDistanceM)));
    helper.SetChannelAttribute("ShadowingSigmaDb", DoubleValue(c.shadowingSigmaDb));
    helper.SetChannelAttribute("CoherenceTime", TimeValue(Seconds(c.coherenceTimeS)));
    helper.SetChannelAttribute("FadingEnabled", BooleanValue(c.fading));
    helper.SetChannelAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    helper.SetChannelAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    helper.SetChannelAttribute("NoisePsdDbmPerHz", DoubleValue(c.noisePsdDbmHz));
    helper.SetChannelAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    helper.SetChannelAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    helper.SetChannelAttribute("Efficiency", DoubleValue(c.efficiency));
    helper.SetAccessOverhead(c.access);
    if (c.linkMapping != LinkMappingPreset::SHANNON)
    {
        const auto mappings = LinkMappingsOf(c.linkMapping, c.efficiency);
        helper.SetLinkMapping(mappings.first, mappings.second);
    }
    // LTE: each direction its own carrier of cell.bandwidth_mhz (the predictor prices that).
    helper.SetBandPlan(c.transport == TransportKind::LTE
                           ? BandPlan{DuplexMode::FDD, c.bandwidthHz, c.bandwidthHz}
                           : BandPlan::FromConfig(c.duplex, c.bandwidthHz, c.ulShare));
    helper.SetTransportAttribute("MinRate", DoubleValue(c.minRateBps));
    helper.SetBsAttribute("LayerDeadline", TimeValue(Seconds(c.layerDeadlineS)));
    helper.SetModel(in.model);
    helper.SetWorkload(in.tokens, c.promptTokens, c.scoredTokens);
    helper.SetCostModel(in.cost);
    helper.SetBsProfile(in.bsProfile);
    helper.SetDeviceProfile(in.deviceProfile);
    helper.SetPolicy(c.policy);
    helper.SetPlacement(c.placement, c.replicas);
    helper.SetExpertSlots(slots.first, slots.second, c.warmCache);
    helper.SetCacheAllocation(c.cacheAllocation, in.routingProfile);
}

/// summary.json: the config, the models, the cell, then the collector's statistics. `ran` is
/// the BS application's policy as it ran: its rule objects, the config's or the program's own.
nlohmann::ordered_json
ScenarioSummary(const ScenarioConfig& c,
                const ScenarioInputs& in,
                std::pair<int, int> slots,
                const WdmoeStatsCollector& stats,
                const std::vector<std::vector<int>>& slotsOf,
                const std::vector<std::string>& warnings,
                const InferencePolicy& ran)
{
    const InferencePolicy& policy = c.policy;
    nlohmann::ordered_json s;
    s["config"] = c.file;
    s["config_echo"] = c.echo;
    s["seed"] = c.seed;
    s["run"] = c.run;
    s["model_routed"] = {{"dir", c.modelDir},
                         {"layers", in.model->Config().numHiddenLayers},
                         {"experts", in.model->Config().numLocalExperts},
                         {"top_k", in.model->Config().numExpertsPerTok},
                         {"d_model", in.model->Config().hiddenSize},
                         {"d_ff", in.model->Config().intermediateSize},
                         {"dtype", wdmoe::llm::DTypeName(in.model->WeightDType())}};
    s["model_priced"] = CostModelJson(in.cost);
    s["model_priced"]["priced_layers"] = c.pricedModel.routedLayersOnly ? "routed" : "all";
    s["layers_in_latency"] = in.model->Config().numHiddenLayers;
    s["latency_covers"] =
        PricedModel::CoverageText(in.model->Config().numHiddenLayers, in.cost.layers);
    s["cell"] = {{"devices", c.devices},
                 {"device_profile", c.deviceProfile},
                 {"bs_profile", c.bsProfile},
                 {"bandwidth_mhz", c.bandwidthHz / 1e6},
                 {"link_mapping", c.linkMapping},
                 {"transport", c.transport},
                 {"expert_memory_slots_per_device", slots.first},
                 {"expert_storage_slots_per_device", slots.second},
                 {"placement", c.placement}};
    s["tokens_scored"] = stats.Tokens().size();
    s["text_start_token"] = in.textStart;
    s["workload_purpose"] = c.tuning ? "tuning" : "evaluation";
    stats.Latency(s);
    s["policy"] = {
        {"name", policy.name},
        {"gating", ran.gating},
        {"adaptive_threshold", policy.adaptiveThreshold},
        {"selection", ExpertSelectionRule::NameOf(ran.selectionRule)},
        {"allocation", ran.Joint() ? "joint" : BandwidthAllocationRule::NameOf(ran.allocationRule)},
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
    stats.Decode(s,
                 slotsOf.empty() ? std::vector<int>() : slotsOf[0],
                 !ran.selectionRule->KeepsEveryCandidate());
    stats.DropsAndAccuracy(s, warnings);
    return s;
}

/// The LTE transport of the config, built on the cell's nodes (before WdmoeHelper::Install).
Ptr<LteTransport>
MakeLteTransport(const ScenarioConfig& c, Ptr<Node> bs, NodeContainer devices)
{
    Ptr<LteTransport> lte = CreateObject<LteTransport>();
    lte->SetAttribute("PacketBytes", UintegerValue(c.ltePacketBytes));
    lte->SetAttribute("Scheduler", StringValue(c.lteScheduler));
    lte->SetAttribute("ResourceBlocks",
                      UintegerValue(LteTransport::ResourceBlocksOf(c.bandwidthHz)));
    lte->SetAttribute(
        "Rlc",
        EnumValue(c.lteRlc == LteRlc::UM ? LteTransport::RLC_UM : LteTransport::RLC_AM));
    lte->SetAttribute("FlowMonitor", BooleanValue(true));
    lte->SetAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    lte->SetAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    lte->SetAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    lte->SetAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    if (c.propagation == CellPropagation::THREE_GPP_UMA)
    {
        lte->UseThreeGppUma(c.carrierHz);
    }
    else
    {
        lte->UseLogDistance128(c.minDistanceM);
    }
    lte->Install(bs, devices);
    return lte;
}

nlohmann::ordered_json
DirectionJson(const LteTransport::DirectionStats& s)
{
    return {{"transfers", s.transfers},
            {"datagrams", s.datagrams},
            {"payload_bytes", s.bytes},
            {"transfer_mean_ms", s.meanTransferS * 1e3},
            {"transfer_max_ms", s.maxTransferS * 1e3}};
}

nlohmann::ordered_json
FlowJson(const LteTransport::FlowStats& f)
{
    return {{"flows", f.flows},
            {"packets_sent", f.txPackets},
            {"packets_received", f.rxPackets},
            {"packets_lost", f.lostPackets},
            {"delay_mean_ms", f.meanDelayS * 1e3},
            {"throughput_mbps", f.throughputBps / 1e6}};
}

/// summary.json's "lte": the settings and what each direction carried.
nlohmann::ordered_json
LteSummary(const ScenarioConfig& c, LteTransport& lte)
{
    return {{"scheduler", c.lteScheduler},
            {"packet_bytes", c.ltePacketBytes},
            {"rlc", c.lteRlc},
            {"resource_blocks", LteTransport::ResourceBlocksOf(c.bandwidthHz)},
            {"downlink", DirectionJson(lte.GetStats(ExpertTransport::DOWNLINK))},
            {"uplink", DirectionJson(lte.GetStats(ExpertTransport::UPLINK))},
            {"transfers_pending_at_end", lte.PendingTransfers()},
            {"flow_monitor",
             {{"downlink", FlowJson(lte.GetFlowStats(ExpertTransport::DOWNLINK))},
              {"uplink", FlowJson(lte.GetFlowStats(ExpertTransport::UPLINK))}}}};
}

} // namespace

struct WdmoeScenario::State
{
    ScenarioConfig config;
    JsonConfigReader root;
    ScenarioInputs in;
    std::pair<int, int> slots;
    WdmoeHelper helper;
    WdmoeStatsCollector stats;
    Ptr<LteTransport> lte; ///< null with the link transport
    std::chrono::steady_clock::time_point setUpEnd;

    explicit State(const ScenarioConfig& c)
        : config(c),
          root(c.file, c.echo),
          in(LoadInputs(c, root)),
          slots(ExpertSlots(c, root, in)),
          stats(in.model->Config().numHiddenLayers)
    {
    }
};

WdmoeScenario::WdmoeScenario(const ScenarioConfig& c)
{
    RngSeedManager::SetSeed(c.seed);
    RngSeedManager::SetRun(c.run);
    m_state = std::make_unique<State>(c);
    NodeContainer bsNode;
    bsNode.Create(1);
    NodeContainer deviceNodes;
    deviceNodes.Create(c.devices);
    const int64_t stream = PlaceNodes(c, bsNode.Get(0), deviceNodes, 0);
    WdmoeHelper& helper = m_state->helper;
    ConfigureHelper(helper, c, m_state->in, m_state->slots);
    if (c.transport == TransportKind::LTE)
    {
        m_state->lte = MakeLteTransport(c, bsNode.Get(0), deviceNodes);
        helper.SetTransport(m_state->lte);
    }
    helper.Install(bsNode.Get(0), deviceNodes);
    const int64_t used = helper.AssignStreams(stream);
    if (m_state->lte)
    {
        m_state->lte->AssignStreams(stream + used);
    }
    for (const auto& f : c.failures)
    {
        helper.GetDeviceApp(uint32_t(f.device))->ScheduleSwitchOff(Seconds(f.atS));
    }
    m_state->stats.Connect();
    m_state->setUpEnd = std::chrono::steady_clock::now();
}

WdmoeScenario::~WdmoeScenario() = default;

WdmoeHelper&
WdmoeScenario::Helper()
{
    return m_state->helper;
}

Ptr<MoeInferenceApp>
WdmoeScenario::GetBsApp() const
{
    return m_state->helper.GetBsApp();
}

ScenarioResult
WdmoeScenario::Collect() const
{
    const double wallSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_state->setUpEnd).count();
    const ScenarioConfig& c = m_state->config;
    const ScenarioInputs& in = m_state->in;
    const WdmoeHelper& helper = m_state->helper;
    const std::string historyError = helper.GetChannel()->HistoryError();
    if (!historyError.empty())
    {
        m_state->root.Fail("cell.coherence_time_ms", "is too short for this run: " + historyError);
    }
    if (m_state->lte && m_state->lte->Stalled())
    {
        throw std::runtime_error(
            c.file + ": the LTE transport stalled at " +
            std::to_string(Simulator::Now().GetSeconds()) +
            " s: " + std::to_string(m_state->lte->PendingTransfers()) + " transfers pending (" +
            m_state->lte->PendingText() +
            ") and no datagram arrived for 30 s of simulated time (a UE whose uplink SINR is "
            "below LTE's lowest MCS is never granted resource blocks by ns-3's schedulers)");
    }
    if (!helper.GetBsApp()->Finished())
    {
        throw std::runtime_error(c.file + ": the simulation ended before every token was scored");
    }
    std::vector<std::string> warnings = in.model->Notes();
    for (const std::string& w : FailureWarnings(c.failures, helper.GetPlacement()))
    {
        warnings.push_back(w);
    }
    const double simulatedSeconds = Simulator::Now().GetSeconds();
    ScenarioResult result;
    result.summary = ScenarioSummary(c,
                                     in,
                                     m_state->slots,
                                     m_state->stats,
                                     helper.GetMemorySlots(),
                                     warnings,
                                     helper.GetBsApp()->Policy());
    if (m_state->lte)
    {
        result.summary["lte"] = LteSummary(c, *m_state->lte);
    }
    result.summary["timing"] = {
        {"simulated_s", simulatedSeconds},
        {"wall_s", wallSeconds},
        {"sim_speed", wallSeconds > 0 ? simulatedSeconds / wallSeconds : 0.0}};
    result.tokensCsv = m_state->stats.TokensCsv();
    result.records = m_state->stats.Tokens();
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
