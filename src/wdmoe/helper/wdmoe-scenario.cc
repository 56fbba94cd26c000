#include "wdmoe-scenario.h"

#include "cell-mobility.h"
#include "compute-profile.h"
#include "cost-model.h"
#include "device-activity.h"
#include "device-energy-helper.h"
#include "expert-device-app.h"
#include "expert-placement.h"
#include "json-config.h"
#include "latency-predictor.h"
#include "link-transport.h"
#include "lte-transport.h"
#include "mixtral-model.h"
#include "moe-inference-app.h"
#include "result-files.h"
#include "scenario-inputs.h"
#include "scenario-summary.h"
#include "scenario-warnings.h"
#include "serving-summary.h"
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
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"
#include "ns3/string.h"
#include "ns3/uinteger.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("WdmoeScenario");

namespace
{

/// The BS at the centre (25 m high), devices at 1.5 m: each uniform in area between its
/// group's distances (the cell's annulus [min_distance, radius] by default) at a uniform angle,
/// or at its group's fixed distance (devices.distance_m, devices[i].distance_m) at the group's
/// angle or, without one, device i at 2 pi i / N; each with the cell's mobility model. Returns
/// the next free random stream.
int64_t
PlaceNodes(const ScenarioConfig& c, Ptr<Node> bs, NodeContainer& devices, int64_t stream)
{
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bs->AggregateObject(bsMobility);
    Ptr<UniformRandomVariable> radius2 = CreateObject<UniformRandomVariable>();
    Ptr<UniformRandomVariable> angle = CreateObject<UniformRandomVariable>();
    angle->SetAttribute("Max", DoubleValue(2 * M_PI));
    radius2->SetStream(stream++);
    angle->SetStream(stream++);
    const std::vector<CellDevice> cell = c.CellDevices();
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        const CellDevice& d = cell.at(i);
        Ptr<MobilityModel> m = CreateCellMobility(c.mobility);
        const bool fixed = d.distanceM > 0;
        const double r = fixed ? d.distanceM
                               : std::sqrt(radius2->GetValue(d.minDistanceM * d.minDistanceM,
                                                             d.maxDistanceM * d.maxDistanceM));
        const double a = d.angleRad ? *d.angleRad
                         : fixed    ? 2 * M_PI * i / devices.GetN()
                                    : angle->GetValue();
        // Moving devices stay inside the square around the cell.
        PlaceInCell(m, c.radiusM, Vector(r * std::cos(a), r * std::sin(a), 1.5), stream);
        devices.Get(i)->AggregateObject(m);
    }
    return stream;
}

/// Each device's transmit power (dBm), in the cell's order.
std::vector<double>
DevicePowers(const ScenarioConfig& c)
{
    std::vector<double> powers;
    for (const CellDevice& d : c.CellDevices())
    {
        powers.push_back(d.powerDbm);
    }
    return powers;
}

/// The helper set from the config.
void
ConfigureHelper(WdmoeHelper& helper,
                const ScenarioConfig& c,
                const ScenarioInputs& in,
                const DeviceSlots& slots)
{
    helper.SetChannelAttribute(
        "PropagationLossModel",
        PointerValue(c.propagation == CellPropagation::THREE_GPP_UMA
                         ? WdmoeChannel::CreateThreeGppUma(c.carrierHz)
                         : WdmoeChannel::CreateLogDistance128(c.minDistanceM)));
    helper.SetChannelAttribute("ShadowingSigmaDb", DoubleValue(c.shadowingSigmaDb));
    helper.SetChannelAttribute("CoherenceTime", TimeValue(Seconds(c.coherenceTimeS)));
    helper.SetChannelAttribute("FadingEnabled", BooleanValue(c.fading));
    helper.SetChannelAttribute("CoherenceBandwidth", DoubleValue(c.coherenceBandwidthHz));
    helper.SetChannelAttribute("DopplerCorrelation", BooleanValue(c.dopplerCorrelation));
    helper.SetChannelAttribute("CarrierFrequency", DoubleValue(c.carrierHz));
    helper.SetChannelAttribute("MinDopplerHz", DoubleValue(c.minDopplerHz));
    helper.SetChannelAttribute("CsiDelay", TimeValue(Seconds(c.csiDelayS)));
    helper.SetChannelAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    helper.SetChannelAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    helper.SetChannelAttribute("NoisePsdDbmPerHz", DoubleValue(c.noisePsdDbmHz));
    helper.SetChannelAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    helper.SetChannelAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    helper.SetChannelAttribute("Efficiency", DoubleValue(c.efficiency));
    helper.SetAccessOverhead(c.access);
    if (c.linkMapping != LinkMappingPreset::SHANNON)
    {
        const auto mappings =
            c.truncatedShannon ? *c.truncatedShannon : LinkMappingsOf(c.linkMapping, c.efficiency);
        helper.SetLinkMapping(mappings.first, mappings.second);
    }
    // LTE: each direction its own carrier of cell.bandwidth_mhz (the predictor prices that).
    helper.SetBandPlan(
        c.transport == TransportKind::LTE ? BandPlan{DuplexMode::FDD, c.bandwidthHz, c.bandwidthHz}
        : c.duplex == DuplexMode::TDD     ? BandPlan::Tdd(c.bandwidthHz, *c.tdd)
                                      : BandPlan::FromConfig(c.duplex, c.bandwidthHz, c.ulShare));
    helper.SetTransportAttribute("MinRate", DoubleValue(c.minRateBps));
    helper.SetTransportAttribute("WorkConserving", BooleanValue(c.workConserving));
    helper.SetTransportAttribute("HintAirtime", BooleanValue(c.hintAirtime));
    helper.SetBsAttribute("LayerDeadline", TimeValue(Seconds(c.layerDeadlineS)));
    helper.SetModel(in.model);
    if (c.serving)
    {
        helper.SetBsAttribute("MaxBatch", UintegerValue(c.serving->maxBatch));
        helper.SetBsAttribute("ChunkTokens", UintegerValue(c.serving->chunkTokens));
        helper.SetBsAttribute("KvMemoryBytes", DoubleValue(KvMemoryBytes(c, in)));
        helper.SetRequests(in.tokens, c.serving->workload);
    }
    else
    {
        helper.SetWorkload(in.tokens, c.promptTokens, c.scoredTokens);
    }
    helper.SetCostModel(in.cost);
    helper.SetBsProfile(in.bsProfile);
    helper.SetDeviceProfiles(in.deviceProfiles);
    helper.SetDeviceTxPowers(DevicePowers(c));
    helper.SetPolicy(c.policy);
    helper.SetPlacement(c.placement, c.replicas, in.routingProfile.expertRate);
    std::vector<bool> warm;
    for (const CellDevice& d : c.CellDevices())
    {
        warm.push_back(d.warmCache);
    }
    helper.SetExpertSlots(slots.memory, slots.storage, warm);
    helper.SetCacheAllocation(c.cacheAllocation, in.routingProfile);
}

/// lte.pcap, lte.netanim and lte.stats write into the folder the program gives, made here.
void
MakeTraceDir(const ScenarioConfig& c)
{
    if (c.traceDir.empty())
    {
        throw std::invalid_argument(c.file +
                                    ": lte.pcap, lte.netanim and lte.stats need a folder for "
                                    "their files from the program that runs the scenario (wdmoe "
                                    "run gives one; policy comparisons and sweeps do not)");
    }
    CreateResultDirectory(c.traceDir);
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
    if (c.WritesLteTraces())
    {
        MakeTraceDir(c);
    }
    if (c.lteStats)
    {
        lte->SetAttribute("StatsDirectory", StringValue(c.traceDir));
    }
    lte->SetAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    lte->SetAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    lte->SetDeviceTxPowers(DevicePowers(c));
    lte->SetAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    lte->SetAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    // The abstract channel's loss object (WdmoeHelper::Install hands it over): one path gain
    // per device for both transports.
    lte->UseChannelPathGain();
    lte->Install(bs, devices);
    return lte;
}

/// lte.pcap and lte.netanim: the trace files go to the program's folder while the run goes.
void
EnableLteTraces(const ScenarioConfig& c, LteTransport& lte)
{
    if (!c.ltePcap && !c.lteNetAnim)
    {
        return;
    }
    LteTransport::TraceOptions options;
    options.pcap = c.ltePcap;
    options.netanim = c.lteNetAnim;
    lte.EnableTraces(c.traceDir, options);
}

/// The battery capacity of the config (J; infinity: none).
double
BatteryJoules(const ScenarioConfig& c)
{
    return c.batteryWh > 0 ? c.batteryWh * 3600.0 : std::numeric_limits<double>::infinity();
}

/// energy.enabled: a battery and an energy model on every device (after the failures are
/// scheduled); the energy rule and the energy model need the profile's powers.
std::unique_ptr<DeviceEnergyHelper>
InstallEnergy(const ScenarioConfig& c,
              const JsonConfigReader& root,
              const ScenarioInputs& in,
              WdmoeHelper& helper)
{
    const bool needed = c.energyEnabled || c.policy.selection == SelectionRule::ENERGY;
    for (const ComputeProfile& profile : in.deviceProfiles)
    {
        if (needed && !profile.HasEnergy())
        {
            root.Fail(c.energyEnabled ? "energy.enabled" : "policy.selection",
                      "needs the device profile's energy fields (active_power_w, idle_power_w, "
                      "pa_efficiency, radio_rx_power_w); profile \"" +
                          profile.name + "\" has none");
        }
    }
    if (!c.energyEnabled)
    {
        return nullptr;
    }
    auto energy = std::make_unique<DeviceEnergyHelper>();
    std::vector<Ptr<ExpertDeviceApp>> apps;
    for (int d = 0; d < c.devices; ++d)
    {
        apps.push_back(helper.GetDeviceApp(uint32_t(d)));
    }
    // The devices' radiated power is the channel's (their group's power_dbm, else
    // cell.device_power_dbm).
    std::vector<double> txPowerW;
    for (int d = 0; d < c.devices; ++d)
    {
        txPowerW.push_back(helper.GetChannel()->GetDeviceTxPowerW(uint32_t(d)));
    }
    energy->Install(apps, helper.GetTransport(), txPowerW, BatteryJoules(c));
    if (!c.serving)
    {
        // One request at a time: the energy between passes is its own. Batched steps share
        // their energy among requests, which this split would not attribute.
        energy->ConnectPasses(helper.GetBsApp());
    }
    return energy;
}

} // namespace

struct WdmoeScenario::State
{
    ScenarioConfig config;
    JsonConfigReader root;
    ScenarioInputs in;
    DeviceSlots slots;
    WdmoeHelper helper;
    WdmoeStatsCollector stats;
    std::unique_ptr<DeviceEnergyHelper> energy; ///< null unless energy.enabled
    DeviceActivity activity;
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
        EnableLteTraces(c, *m_state->lte);
    }
    for (const auto& f : c.failures)
    {
        helper.GetDeviceApp(uint32_t(f.device))->ScheduleSwitchOff(Seconds(f.atS));
    }
    m_state->energy = InstallEnergy(c, m_state->root, m_state->in, helper);
    m_state->stats.Connect();
    m_state->activity.Connect(helper, uint32_t(c.devices));
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
            ") and no datagram arrived for 30 s of simulated time (a UE no uplink allocation "
            "carries LTE's lowest MCS on is out of coverage, and ns-3's schedulers never grant "
            "it)");
    }
    if (!helper.GetBsApp()->Finished())
    {
        throw std::runtime_error(c.file + ": the simulation ended before every token was scored");
    }
    if (c.serving && m_state->stats.Requests().empty())
    {
        m_state->root.Fail("workload.requests.duration_s",
                           "let no request arrive (the first Poisson arrival came after it)");
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
    if (m_state->energy)
    {
        result.summary["energy"] =
            m_state->energy->Summary(m_state->stats.Tokens().size(), BatteryJoules(c));
    }
    if (m_state->lte)
    {
        result.summary["lte"] = LteSummary(c, *m_state->lte);
        result.traceFiles = m_state->lte->CloseTraces();
        if (!result.traceFiles.empty())
        {
            result.traceDir = c.traceDir;
            result.summary["lte"]["trace_files"] = result.traceFiles;
        }
    }
    result.summary["timing"] = {
        {"simulated_s", simulatedSeconds},
        {"wall_s", wallSeconds},
        {"sim_speed", wallSeconds > 0 ? simulatedSeconds / wallSeconds : 0.0}};
    result.tokensCsv = m_state->stats.TokensCsv();
    result.transfersCsv = m_state->stats.TransfersCsv();
    result.devicesCsv = m_state->activity.Csv(c, helper, m_state->slots, Seconds(simulatedSeconds));
    if (c.serving)
    {
        result.requestsCsv = RequestsCsv(m_state->stats.Requests());
    }
    result.records = m_state->stats.Tokens();
    return result;
}

void
WriteScenarioResult(const ScenarioResult& result, const std::string& outDir)
{
    CreateResultDirectory(outDir);
    WriteFileAtomically(outDir + "/tokens.csv", result.tokensCsv);
    WriteFileAtomically(outDir + "/transfers.csv", result.transfersCsv);
    WriteFileAtomically(outDir + "/devices.csv", result.devicesCsv);
    if (!result.requestsCsv.empty())
    {
        WriteFileAtomically(outDir + "/requests.csv", result.requestsCsv);
    }
    WriteFileAtomically(outDir + "/summary.json", result.summary.dump(2) + "\n");
    if (!result.traceDir.empty())
    {
        // The run's trace folder, whole, under its final name (an older one replaced).
        const std::filesystem::path final = std::filesystem::path(outDir) / kLteTraceFolder;
        if (std::filesystem::path(result.traceDir) != final)
        {
            std::filesystem::remove_all(final);
            std::filesystem::rename(result.traceDir, final);
        }
    }
}

} // namespace ns3
