#include "lte-transport.h"

#include "channel-path-gain-loss-model.h"
#include "lte-cell-traces.h"
#include "uplink-power-aware-scheduler.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/channel-condition-model.h"
#include "ns3/component-carrier-enb.h"
#include "ns3/config.h"
#include "ns3/double.h"
#include "ns3/enum.h"
#include "ns3/flow-monitor-helper.h"
#include "ns3/flow-monitor.h"
#include "ns3/inet-socket-address.h"
#include "ns3/integer.h"
#include "ns3/internet-stack-helper.h"
#include "ns3/ipv4-flow-classifier.h"
#include "ns3/ipv4-static-routing-helper.h"
#include "ns3/ipv4-static-routing.h"
#include "ns3/ipv4.h"
#include "ns3/log.h"
#include "ns3/lte-enb-net-device.h"
#include "ns3/lte-enb-phy.h"
#include "ns3/lte-enb-rrc.h"
#include "ns3/lte-helper.h"
#include "ns3/lte-ue-net-device.h"
#include "ns3/lte-ue-phy.h"
#include "ns3/lte-ue-power-control.h"
#include "ns3/lte-ue-rrc.h"
#include "ns3/packet.h"
#include "ns3/point-to-point-epc-helper.h"
#include "ns3/point-to-point-helper.h"
#include "ns3/propagation-loss-model.h"
#include "ns3/radio-bearer-stats-calculator.h"
#include "ns3/simulator.h"
#include "ns3/socket.h"
#include "ns3/spectrum-channel.h"
#include "ns3/string.h"
#include "ns3/three-gpp-propagation-loss-model.h"
#include "ns3/udp-socket-factory.h"
#include "ns3/uinteger.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("LteTransport");
NS_OBJECT_ENSURE_REGISTERED(LteTransport);

namespace
{

const uint16_t kEdgePort = 9000; ///< the edge host's socket (uplink datagrams arrive here)
const uint16_t kUePort = 9001;   ///< every UE's socket (downlink datagrams arrive here)
/// RLC transmit buffers (ns-3's default is 10 KiB, which drops most of a prefill's burst).
const uint32_t kRlcBufferBytes = 256u << 20;

void
PutU32(uint8_t* at, uint32_t v)
{
    at[0] = uint8_t(v >> 24);
    at[1] = uint8_t(v >> 16);
    at[2] = uint8_t(v >> 8);
    at[3] = uint8_t(v);
}

uint32_t
GetU32(const uint8_t* at)
{
    return uint32_t(at[0]) << 24 | uint32_t(at[1]) << 16 | uint32_t(at[2]) << 8 | uint32_t(at[3]);
}

/// An interface with one address on a node that has an internet stack (no queue disc: the
/// burst of a transfer waits in the device queue, which is sized for it).
void
AddAddress(Ptr<Node> node, Ptr<NetDevice> device, Ipv4Address address)
{
    Ptr<Ipv4> ipv4 = node->GetObject<Ipv4>();
    const int32_t i = ipv4->AddInterface(device);
    ipv4->AddAddress(i, Ipv4InterfaceAddress(address, Ipv4Mask("255.0.0.0")));
    ipv4->SetUp(i);
}

} // namespace

TypeId
LteTransport::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::LteTransport")
            .SetParent<ExpertTransport>()
            .SetGroupName("Wdmoe")
            .AddConstructor<LteTransport>()
            .AddAttribute("PacketBytes",
                          "UDP payload of a datagram (bytes), our 12-byte header included.",
                          UintegerValue(1400),
                          MakeUintegerAccessor(&LteTransport::m_packetBytes),
                          MakeUintegerChecker<uint32_t>(kHeaderBytes + 1, 1472))
            .AddAttribute("BsTxPowerDbm",
                          "eNB transmit power over the downlink carrier (dBm).",
                          DoubleValue(43),
                          MakeDoubleAccessor(&LteTransport::m_bsTxPowerDbm),
                          MakeDoubleChecker<double>())
            .AddAttribute("DeviceTxPowerDbm",
                          "UE maximum transmit power (dBm; LTE's uplink power control applies).",
                          DoubleValue(23),
                          MakeDoubleAccessor(&LteTransport::m_deviceTxPowerDbm),
                          MakeDoubleChecker<double>())
            .AddAttribute("BsNoiseFigureDb",
                          "eNB receiver noise figure (dB).",
                          DoubleValue(5),
                          MakeDoubleAccessor(&LteTransport::m_bsNoiseFigureDb),
                          MakeDoubleChecker<double>(0))
            .AddAttribute("DeviceNoiseFigureDb",
                          "UE receiver noise figure (dB).",
                          DoubleValue(7),
                          MakeDoubleAccessor(&LteTransport::m_deviceNoiseFigureDb),
                          MakeDoubleChecker<double>(0))
            .AddAttribute("EdgeLinkRate",
                          "Rate of the link between the PGW and the edge host (the EPC's own S5 "
                          "and S1-U links run at 10 Gb/s: a faster edge link would only queue a "
                          "burst inside the core).",
                          DataRateValue(DataRate("10Gbps")),
                          MakeDataRateAccessor(&LteTransport::m_edgeRate),
                          MakeDataRateChecker())
            .AddAttribute("EdgeLinkDelay",
                          "Propagation delay of the link between the PGW and the edge host.",
                          TimeValue(MicroSeconds(10)),
                          MakeTimeAccessor(&LteTransport::m_edgeDelay),
                          MakeTimeChecker())
            .AddAttribute("StallTimeout",
                          "Simulated time without any datagram arriving, while transfers are "
                          "pending, after which the transport stops the simulation (0: never).",
                          TimeValue(Seconds(30)),
                          MakeTimeAccessor(&LteTransport::m_stallTimeout),
                          MakeTimeChecker())
            .AddAttribute("FlowMonitor",
                          "Whether a FlowMonitor watches the edge host and the UEs "
                          "(GetFlowStats).",
                          BooleanValue(false),
                          MakeBooleanAccessor(&LteTransport::m_flowMonitorEnabled),
                          MakeBooleanChecker())
            .AddAttribute("StatsDirectory",
                          "Folder (existing when the simulation runs) for ns-3's LTE PHY, MAC, "
                          "RLC and PDCP statistics (StatsFiles); empty: none. Set before "
                          "Install.",
                          StringValue(""),
                          MakeStringAccessor(&LteTransport::m_statsDir),
                          MakeStringChecker())
            .AddTraceSource("Rx",
                            "A datagram of a transfer arrived (device, direction, payload bytes "
                            "with our header).",
                            MakeTraceSourceAccessor(&LteTransport::m_rxTrace),
                            "ns3::LteTransport::RxTracedCallback");
    static TypeId withScheduling = AddSchedulingAttributes(tid);
    return withScheduling;
}

TypeId
LteTransport::AddSchedulingAttributes(TypeId tid)
{
    return tid
        .AddAttribute("Scheduler",
                      "TypeId name of the eNB's MAC scheduler (an ns3::FfMacScheduler).",
                      StringValue("ns3::PfFfMacScheduler"),
                      MakeStringAccessor(&LteTransport::m_scheduler),
                      MakeStringChecker())
        .AddAttribute("PowerAwareUplink",
                      "Whether the scheduler is wrapped in an UplinkPowerAwareScheduler, "
                      "which sizes a power-limited UE's uplink grants to what its power "
                      "carries (without it ns-3's schedulers never grant a UE whose "
                      "full-band sounding SINR is below CQI 1).",
                      BooleanValue(true),
                      MakeBooleanAccessor(&LteTransport::m_powerAwareUplink),
                      MakeBooleanChecker())
        .AddAttribute("ResourceBlocks",
                      "Resource blocks of each direction's carrier (6, 15, 25, 50, 75, 100).",
                      UintegerValue(100),
                      MakeUintegerAccessor(&LteTransport::m_resourceBlocks),
                      MakeUintegerChecker<uint16_t>(6, 100))
        .AddAttribute("Rlc",
                      "RLC mode of the data radio bearers.",
                      EnumValue(RLC_AM),
                      MakeEnumAccessor(&LteTransport::m_rlc),
                      MakeEnumChecker(RLC_AM, "am", RLC_UM, "um"));
}

LteTransport::LteTransport()
    : m_packetBytes(1400),
      m_powerAwareUplink(true),
      m_resourceBlocks(100),
      m_rlc(RLC_AM),
      m_bsTxPowerDbm(43),
      m_deviceTxPowerDbm(23),
      m_bsNoiseFigureDb(5),
      m_deviceNoiseFigureDb(7),
      m_flowMonitorEnabled(false),
      m_stalled(false),
      m_pathLoss(PathLoss::THREE_GPP_UMA),
      m_carrierHz(3.5e9),
      m_minDistanceM(35),
      m_nextId(0),
      m_sumTransferS{0, 0}
{
}

LteTransport::~LteTransport() = default;

void
LteTransport::DoDispose()
{
    m_flowMonitor = nullptr;
    m_flowHelper.reset();
    for (Ptr<Socket> s : m_ueSockets)
    {
        s->SetRecvCallback(MakeNullCallback<void, Ptr<Socket>>());
    }
    if (m_edgeSocket)
    {
        m_edgeSocket->SetRecvCallback(MakeNullCallback<void, Ptr<Socket>>());
    }
    m_ueSockets.clear();
    m_edgeSocket = nullptr;
    m_pending.clear();
    m_queued.clear();
    m_traces.reset();
    m_uplinkScheduler = nullptr;
    m_lte = nullptr;
    m_epc = nullptr;
    m_edge = nullptr;
    ExpertTransport::DoDispose();
}

uint16_t
LteTransport::ResourceBlocksOf(double bandwidthHz)
{
    const std::pair<double, uint16_t> table[] =
        {{1.4e6, 6}, {3e6, 15}, {5e6, 25}, {10e6, 50}, {15e6, 75}, {20e6, 100}};
    for (const auto& [hz, rbs] : table)
    {
        if (std::abs(bandwidthHz - hz) < 1.0)
        {
            return rbs;
        }
    }
    return 0;
}

std::vector<std::string>
LteTransport::Schedulers()
{
    const TypeId base = TypeId::LookupByName("ns3::FfMacScheduler");
    std::vector<std::string> names;
    for (uint16_t i = 0; i < TypeId::GetRegisteredN(); ++i)
    {
        const TypeId t = TypeId::GetRegistered(i);
        // Our wrapper is not a scheduler of its own (PowerAwareUplink puts it around one).
        if (t != base && t.IsChildOf(base) && t.HasConstructor() &&
            t != UplinkPowerAwareScheduler::GetTypeId())
        {
            names.push_back(t.GetName());
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

void
LteTransport::UseThreeGppUma(double carrierHz)
{
    m_pathLoss = PathLoss::THREE_GPP_UMA;
    m_carrierHz = carrierHz;
}

void
LteTransport::UseLogDistance128(double minDistanceM)
{
    m_pathLoss = PathLoss::LOG_DISTANCE_128;
    m_minDistanceM = minDistanceM;
}

void
LteTransport::UseChannelPathGain()
{
    m_pathLoss = PathLoss::CHANNEL;
}

bool
LteTransport::UsesChannelPathGain() const
{
    return m_pathLoss == PathLoss::CHANNEL;
}

void
LteTransport::SetPathGainChannel(Ptr<WdmoeChannel> channel)
{
    NS_ABORT_MSG_UNLESS(m_lte && m_pathLoss == PathLoss::CHANNEL,
                        "LteTransport::SetPathGainChannel needs UseChannelPathGain and Install");
    for (Ptr<SpectrumChannel> spectrum :
         {m_lte->GetDownlinkSpectrumChannel(), m_lte->GetUplinkSpectrumChannel()})
    {
        DynamicCast<ChannelPathGainLossModel>(spectrum->GetPropagationLossModel())
            ->SetChannel(channel);
    }
}

void
LteTransport::SetDeviceTxPowers(const std::vector<double>& dbm)
{
    m_deviceTxPowers = dbm;
}

void
LteTransport::Install(Ptr<Node> bs, NodeContainer devices)
{
    NS_LOG_FUNCTION(this << bs << devices.GetN());
    if (m_lte)
    {
        throw std::invalid_argument("LteTransport::Install: already installed");
    }
    if (devices.GetN() == 0 || devices.GetN() > 319)
    {
        // The eNB gives every UE its own sounding-reference-signal slot: at most 320.
        throw std::invalid_argument("LteTransport: 1 to 319 devices, got " +
                                    std::to_string(devices.GetN()));
    }
    if (!m_deviceTxPowers.empty() && m_deviceTxPowers.size() != devices.GetN())
    {
        throw std::invalid_argument("LteTransport: " + std::to_string(m_deviceTxPowers.size()) +
                                    " device transmit powers for " +
                                    std::to_string(devices.GetN()) + " devices");
    }
    // RLC entities are made when a bearer is set up, so only their defaults reach them.
    Config::SetDefault("ns3::LteRlcAm::MaxTxBufferSize", UintegerValue(kRlcBufferBytes));
    Config::SetDefault("ns3::LteRlcUm::MaxTxBufferSize", UintegerValue(kRlcBufferBytes));
    if (!m_statsDir.empty())
    {
        NameStatsFiles();
    }
    InstallEpcAndEdge();
    InstallRadio(bs, devices);
    InstallSockets(devices);
    if (!m_statsDir.empty())
    {
        m_lte->EnableTraces();
        m_statsEnabled = true;
    }
    if (m_flowMonitorEnabled)
    {
        m_flowHelper = std::make_unique<FlowMonitorHelper>();
        NodeContainer ends(devices);
        ends.Add(m_edge);
        m_flowMonitor = m_flowHelper->Install(ends);
    }
    if (m_stallTimeout.IsStrictlyPositive())
    {
        Simulator::Schedule(m_stallTimeout, &LteTransport::CheckStall, this);
    }
}

void
LteTransport::CheckStall()
{
    if (!m_pending.empty() && Simulator::Now() - m_lastRx >= m_stallTimeout)
    {
        NS_LOG_WARN(m_pending.size() << " transfers pending, no datagram for "
                                     << m_stallTimeout.As(Time::S) << ": stopping");
        m_stalled = true;
        Simulator::Stop();
        return;
    }
    Simulator::Schedule(m_stallTimeout, &LteTransport::CheckStall, this);
}

void
LteTransport::InstallEpcAndEdge()
{
    m_epc = CreateObject<PointToPointEpcHelper>();
    m_lte = CreateObject<LteHelper>();
    m_lte->SetEpcHelper(m_epc);
    m_edge = CreateObject<Node>();
    InternetStackHelper internet;
    internet.Install(m_edge);
    PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", DataRateValue(m_edgeRate));
    p2p.SetDeviceAttribute("Mtu", UintegerValue(1500));
    p2p.SetChannelAttribute("Delay", TimeValue(m_edgeDelay));
    // A transfer's datagrams are sent at one instant: the queue holds the largest burst.
    p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", StringValue("1000000p"));
    Ptr<Node> pgw = m_epc->GetPgwNode();
    NetDeviceContainer link = p2p.Install(pgw, m_edge);
    AddAddress(pgw, link.Get(0), Ipv4Address("1.0.0.1"));
    m_edgeAddress = Ipv4Address("1.0.0.2");
    AddAddress(m_edge, link.Get(1), m_edgeAddress);
    Ipv4StaticRoutingHelper routing;
    routing.GetStaticRouting(m_edge->GetObject<Ipv4>())
        ->AddNetworkRouteTo(Ipv4Address("7.0.0.0"),
                            Ipv4Mask("255.0.0.0"),
                            Ipv4Address("1.0.0.1"),
                            m_edge->GetObject<Ipv4>()->GetInterfaceForDevice(link.Get(1)));
}

void
LteTransport::InstallRadio(Ptr<Node> bs, NodeContainer devices)
{
    if (m_powerAwareUplink)
    {
        m_lte->SetSchedulerType("ns3::UplinkPowerAwareScheduler");
        m_lte->SetSchedulerAttribute("Inner", StringValue(m_scheduler));
        m_lte->SetSchedulerAttribute("MaxSinrDb", DoubleValue(OpenLoopSinrDb()));
    }
    else
    {
        m_lte->SetSchedulerType(m_scheduler);
    }
    m_lte->SetEnbDeviceAttribute("DlBandwidth", UintegerValue(m_resourceBlocks));
    m_lte->SetEnbDeviceAttribute("UlBandwidth", UintegerValue(m_resourceBlocks));
    if (m_pathLoss == PathLoss::CHANNEL)
    {
        m_lte->SetPathlossModelType(ChannelPathGainLossModel::GetTypeId());
    }
    else if (m_pathLoss == PathLoss::THREE_GPP_UMA)
    {
        m_lte->SetPathlossModelType(ThreeGppUmaPropagationLossModel::GetTypeId());
    }
    else
    {
        // WdmoeChannel::CreateLogDistance128's parameters.
        m_lte->SetPathlossModelType(LogDistancePropagationLossModel::GetTypeId());
        m_lte->SetPathlossModelAttribute("Exponent", DoubleValue(3.76));
        m_lte->SetPathlossModelAttribute("ReferenceDistance", DoubleValue(m_minDistanceM));
        m_lte->SetPathlossModelAttribute(
            "ReferenceLoss",
            DoubleValue(128.1 + 37.6 * std::log10(m_minDistanceM / 1000.0)));
    }
    m_enbDevices = m_lte->InstallEnbDevice(NodeContainer(bs));
    ConfigureLoss();
    m_ueDevices = m_lte->InstallUeDevice(devices);
    Ptr<LteEnbNetDevice> enb = DynamicCast<LteEnbNetDevice>(m_enbDevices.Get(0));
    m_uplinkScheduler = DynamicCast<UplinkPowerAwareScheduler>(
        DynamicCast<ComponentCarrierEnb>(enb->GetCcMap().at(0))->GetFfMacScheduler());
    enb->GetPhy()->SetTxPower(m_bsTxPowerDbm);
    enb->GetPhy()->SetNoiseFigure(m_bsNoiseFigureDb);
    enb->GetRrc()->SetAttribute(
        "EpsBearerToRlcMapping",
        EnumValue(m_rlc == RLC_AM ? LteEnbRrc::RLC_AM_ALWAYS : LteEnbRrc::RLC_UM_ALWAYS));
    // The smallest sounding period with a slot for every UE.
    uint32_t srs = 20;
    while (srs <= devices.GetN())
    {
        srs *= 2;
    }
    enb->GetRrc()->SetAttribute("SrsPeriodicity", UintegerValue(srs));
    m_ready.assign(devices.GetN(), false);
    m_lost.assign(devices.GetN(), false);
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        Ptr<LteUeNetDevice> ue = DynamicCast<LteUeNetDevice>(m_ueDevices.Get(i));
        ue->GetPhy()->SetTxPower(m_deviceTxPowers.empty() ? m_deviceTxPowerDbm
                                                          : m_deviceTxPowers.at(i));
        ue->GetPhy()->SetNoiseFigure(m_deviceNoiseFigureDb);
        m_deviceOfImsi[ue->GetImsi()] = i;
        ue->GetRrc()->TraceConnectWithoutContext("DrbCreated",
                                                 MakeCallback(&LteTransport::DrbCreated, this));
        ue->GetRrc()->TraceConnectWithoutContext(
            "RadioLinkFailure",
            MakeCallback(&LteTransport::RadioLinkFailure, this));
    }
}

void
LteTransport::ConfigureLoss()
{
    if (m_pathLoss != PathLoss::THREE_GPP_UMA)
    {
        return;
    }
    // LteHelper sets the loss models' Frequency from the EARFCN (2.1 GHz by default); the
    // cell's carrier is the abstract channel's, and the 3GPP models need a condition model.
    Ptr<ChannelConditionModel> condition = CreateObject<ThreeGppUmaChannelConditionModel>();
    for (Ptr<SpectrumChannel> channel :
         {m_lte->GetDownlinkSpectrumChannel(), m_lte->GetUplinkSpectrumChannel()})
    {
        Ptr<ThreeGppPropagationLossModel> loss =
            DynamicCast<ThreeGppPropagationLossModel>(channel->GetPropagationLossModel());
        NS_ABORT_MSG_UNLESS(loss, "LteTransport: the LTE channel has no 3GPP loss model");
        loss->SetAttribute("Frequency", DoubleValue(m_carrierHz));
        loss->SetChannelConditionModel(condition);
    }
}

void
LteTransport::InstallSockets(NodeContainer devices)
{
    InternetStackHelper internet;
    internet.Install(devices);
    Ipv4InterfaceContainer addresses = m_epc->AssignUeIpv4Address(m_ueDevices);
    Ipv4StaticRoutingHelper routing;
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        Ptr<Ipv4> ipv4 = devices.Get(i)->GetObject<Ipv4>();
        routing.GetStaticRouting(ipv4)->SetDefaultRoute(
            m_epc->GetUeDefaultGatewayAddress(),
            ipv4->GetInterfaceForDevice(m_ueDevices.Get(i)));
        m_ueAddresses.push_back(addresses.GetAddress(i));
        Ptr<Socket> s = Socket::CreateSocket(devices.Get(i), UdpSocketFactory::GetTypeId());
        s->Bind(InetSocketAddress(Ipv4Address::GetAny(), kUePort));
        s->SetRecvCallback(MakeCallback(&LteTransport::Receive, this));
        m_ueSockets.push_back(s);
    }
    m_lte->Attach(m_ueDevices, m_enbDevices.Get(0));
    m_edgeSocket = Socket::CreateSocket(m_edge, UdpSocketFactory::GetTypeId());
    m_edgeSocket->Bind(InetSocketAddress(Ipv4Address::GetAny(), kEdgePort));
    m_edgeSocket->SetRecvCallback(MakeCallback(&LteTransport::Receive, this));
}

namespace
{

/// Each statistics file and the calculator attribute (a default, path "Type::Attribute")
/// that names it.
struct StatsFile
{
    const char* attribute;
    const char* name;
};

const StatsFile kStatsFiles[] = {
    {"ns3::PhyStatsCalculator::DlRsrpSinrFilename", "DlRsrpSinrStats.txt"},
    {"ns3::PhyStatsCalculator::UlSinrFilename", "UlSinrStats.txt"},
    {"ns3::PhyStatsCalculator::UlInterferenceFilename", "UlInterferenceStats.txt"},
    {"ns3::MacStatsCalculator::DlOutputFilename", "DlMacStats.txt"},
    {"ns3::MacStatsCalculator::UlOutputFilename", "UlMacStats.txt"},
    {"ns3::PhyTxStatsCalculator::DlTxOutputFilename", "DlTxPhyStats.txt"},
    {"ns3::PhyTxStatsCalculator::UlTxOutputFilename", "UlTxPhyStats.txt"},
    {"ns3::PhyRxStatsCalculator::DlRxOutputFilename", "DlRxPhyStats.txt"},
    {"ns3::PhyRxStatsCalculator::UlRxOutputFilename", "UlRxPhyStats.txt"},
    {"ns3::RadioBearerStatsCalculator::DlRlcOutputFilename", "DlRlcStats.txt"},
    {"ns3::RadioBearerStatsCalculator::UlRlcOutputFilename", "UlRlcStats.txt"},
    {"ns3::RadioBearerStatsCalculator::DlPdcpOutputFilename", "DlPdcpStats.txt"},
    {"ns3::RadioBearerStatsCalculator::UlPdcpOutputFilename", "UlPdcpStats.txt"},
};

} // namespace

const std::vector<std::string>&
LteTransport::StatsFiles()
{
    static const std::vector<std::string> files = [] {
        std::vector<std::string> names;
        for (const StatsFile& f : kStatsFiles)
        {
            names.emplace_back(f.name);
        }
        return names;
    }();
    return files;
}

void
LteTransport::NameStatsFiles() const
{
    // The LteHelper makes its calculators when it initialises (its first InstallEnbDevice),
    // so their defaults name the files.
    for (const StatsFile& f : kStatsFiles)
    {
        Config::SetDefault(f.attribute, StringValue(m_statsDir + "/" + f.name));
    }
}

void
LteTransport::EnableTraces(const std::string& dir, const TraceOptions& options)
{
    NS_ABORT_MSG_UNLESS(m_lte, "LteTransport::EnableTraces needs Install first");
    if (!options.pcap && !options.netanim)
    {
        return;
    }
    LteCellTraces::Cell cell;
    cell.bs = m_enbDevices.Get(0)->GetNode();
    for (uint32_t i = 0; i < m_ueDevices.GetN(); ++i)
    {
        cell.devices.Add(m_ueDevices.Get(i)->GetNode());
    }
    cell.ueDevices = m_ueDevices;
    cell.pgw = m_epc->GetPgwNode();
    cell.sgw = m_epc->GetSgwNode();
    cell.edge = m_edge;
    m_traces = std::make_unique<LteCellTraces>(cell, dir, options.pcap, options.netanim);
}

std::vector<std::string>
LteTransport::CloseTraces()
{
    std::vector<std::string> files;
    if (m_statsEnabled)
    {
        // The bearer statistics write their last, unfinished epoch when disposed.
        m_lte->GetRlcStats()->Dispose();
        m_lte->GetPdcpStats()->Dispose();
        files = StatsFiles();
        m_statsEnabled = false;
    }
    if (m_traces)
    {
        m_traces->Close();
        files.insert(files.end(), m_traces->Files().begin(), m_traces->Files().end());
    }
    return files;
}

int64_t
LteTransport::AssignStreams(int64_t stream)
{
    NS_ABORT_MSG_UNLESS(m_lte, "LteTransport::AssignStreams needs Install first");
    NetDeviceContainer all(m_enbDevices, m_ueDevices);
    int64_t used = m_lte->AssignStreams(all, stream);
    for (Ptr<SpectrumChannel> channel :
         {m_lte->GetDownlinkSpectrumChannel(), m_lte->GetUplinkSpectrumChannel()})
    {
        Ptr<PropagationLossModel> loss = channel->GetPropagationLossModel();
        used += loss->AssignStreams(stream + used);
        Ptr<ThreeGppPropagationLossModel> threeGpp =
            DynamicCast<ThreeGppPropagationLossModel>(loss);
        if (threeGpp && channel == m_lte->GetDownlinkSpectrumChannel())
        {
            // Shared by both directions; the loss model's AssignStreams leaves it alone.
            used += threeGpp->GetChannelConditionModel()->AssignStreams(stream + used);
        }
    }
    return used;
}

void
LteTransport::SetShares(const std::vector<uint32_t>& /* devices */,
                        const std::vector<double>& /* shares */)
{
    // Deliberately nothing: the eNB's MAC scheduler gives the resource blocks every TTI. The
    // BS's split shapes only its own predictions (LatencyPredictor on WdmoeChannel).
}

double
LteTransport::OpenLoopSinrDb() const
{
    // The UEs' power control aims at P0 dBm per resource block above the path loss (alpha 1,
    // LteUePowerControl's defaults); the eNB's noise in a block is -174 dBm/Hz over 180 kHz.
    struct TypeId::AttributeInformation info;
    NS_ABORT_UNLESS(LteUePowerControl::GetTypeId().LookupAttributeByName("PoNominalPusch", &info));
    const double p0Dbm = DynamicCast<const IntegerValue>(info.initialValue)->Get();
    return p0Dbm - (-174.0 + 10.0 * std::log10(180e3) + m_bsNoiseFigureDb);
}

bool
LteTransport::InCoverage(uint32_t device)
{
    // A UE is in coverage from its attach on until its radio link fails, unless its sounding
    // shows no uplink allocation that carries the lowest MCS; transfers sent before its bearer
    // is up wait for it.
    if (m_lost.at(device))
    {
        return false;
    }
    const uint16_t rnti = DynamicCast<LteUeNetDevice>(m_ueDevices.Get(device))->GetRrc()->GetRnti();
    UplinkPowerAwareScheduler::Allocation a;
    return !m_uplinkScheduler || rnti == 0 || !m_uplinkScheduler->GetAllocation(rnti, a) ||
           a.resourceBlocks > 0;
}

void
LteTransport::Send(uint32_t device, Direction direction, double bits, Callback<void> arrived)
{
    const double bytes = std::ceil(std::max(0.0, bits) / 8.0);
    NS_ABORT_MSG_UNLESS(bytes < 4e9, "LteTransport: a transfer of " << bytes << " bytes");
    StartTransfer(device, direction, uint32_t(bytes), arrived);
}

void
LteTransport::SendControl(uint32_t device, double bits, Callback<void> arrived)
{
    // One small downlink datagram on the device's default bearer (LTE has no separate
    // control channel for application data).
    const double bytes = std::ceil(std::max(0.0, bits) / 8.0);
    StartTransfer(device,
                  DOWNLINK,
                  uint32_t(std::min<double>(bytes, m_packetBytes - kHeaderBytes)),
                  arrived);
}

uint32_t
LteTransport::StartTransfer(uint32_t device,
                            Direction direction,
                            uint32_t bytes,
                            Callback<void> arrived)
{
    NS_ABORT_MSG_UNLESS(device < m_ueSockets.size(), "LteTransport: no device " << device);
    const uint32_t id = m_nextId++;
    if (m_pending.empty())
    {
        m_lastRx = Simulator::Now(); // the stall clock starts with the first pending transfer
    }
    m_pending[id] = Pending{device, direction, bytes, 0, Simulator::Now(), arrived};
    const Queued transfer{device, direction, id, bytes};
    if (m_ready[device])
    {
        Emit(transfer);
    }
    else
    {
        m_queued.push_back(transfer);
    }
    return id;
}

void
LteTransport::Emit(const Queued& t)
{
    NS_LOG_LOGIC("transfer " << t.id << ": device " << t.device
                             << (t.direction == DOWNLINK ? " down, " : " up, ") << t.bytes
                             << " bytes");
    const uint32_t chunk = m_packetBytes - kHeaderBytes;
    const uint32_t datagrams = std::max<uint32_t>(1, (t.bytes + chunk - 1) / chunk);
    const bool down = t.direction == DOWNLINK;
    Ptr<Socket> socket = down ? m_edgeSocket : m_ueSockets[t.device];
    const InetSocketAddress to(down ? m_ueAddresses[t.device] : m_edgeAddress,
                               down ? kUePort : kEdgePort);
    for (uint32_t seq = 0; seq < datagrams; ++seq)
    {
        uint8_t header[kHeaderBytes];
        PutU32(header, t.id);
        PutU32(header + 4, seq);
        PutU32(header + 8, t.bytes);
        Ptr<Packet> p = Create<Packet>(header, kHeaderBytes);
        p->AddAtEnd(Create<Packet>(std::min(chunk, t.bytes - seq * chunk)));
        socket->SendTo(p, 0, to);
    }
}

void
LteTransport::Receive(Ptr<Socket> socket)
{
    Address from;
    while (Ptr<Packet> p = socket->RecvFrom(from))
    {
        if (p->GetSize() < kHeaderBytes)
        {
            continue;
        }
        uint8_t header[kHeaderBytes];
        p->CopyData(header, kHeaderBytes);
        auto it = m_pending.find(GetU32(header));
        if (it == m_pending.end())
        {
            continue; // a transfer already complete (a duplicate) or given up
        }
        Pending& t = it->second;
        m_lastRx = Simulator::Now();
        const uint32_t payload = p->GetSize();
        t.receivedBytes += payload - kHeaderBytes;
        DirectionStats& stats = m_stats[t.direction];
        ++stats.datagrams;
        stats.bytes += payload;
        m_rxTrace(t.device, t.direction, payload);
        if (t.receivedBytes < t.totalBytes)
        {
            continue;
        }
        const double seconds = (Simulator::Now() - t.start).GetSeconds();
        NS_LOG_LOGIC("transfer " << it->first << " complete after " << seconds * 1e3 << " ms");
        ++stats.transfers;
        m_sumTransferS[t.direction] += seconds;
        stats.maxTransferS = std::max(stats.maxTransferS, seconds);
        Callback<void> arrived = t.arrived;
        m_pending.erase(it);
        arrived();
    }
}

void
LteTransport::DrbCreated(uint64_t imsi, uint16_t /* cellId */, uint16_t /* rnti */, uint8_t)
{
    const auto it = m_deviceOfImsi.find(imsi);
    if (it == m_deviceOfImsi.end() || m_ready[it->second])
    {
        return;
    }
    const uint32_t device = it->second;
    NS_LOG_LOGIC("device " << device << ": bearer up at " << Simulator::Now().As(Time::MS));
    m_ready[device] = true;
    std::vector<Queued> waiting;
    std::vector<Queued> others;
    for (const Queued& q : m_queued)
    {
        (q.device == device ? waiting : others).push_back(q);
    }
    m_queued = others;
    for (const Queued& q : waiting)
    {
        Emit(q);
    }
}

void
LteTransport::RadioLinkFailure(uint64_t imsi, uint16_t /* cellId */, uint16_t /* rnti */)
{
    const auto it = m_deviceOfImsi.find(imsi);
    if (it != m_deviceOfImsi.end())
    {
        m_lost[it->second] = true;
    }
}

std::string
LteTransport::PendingText() const
{
    std::string text;
    std::size_t shown = 0;
    for (const auto& [id, t] : m_pending)
    {
        if (shown++ == 5)
        {
            return text + ", ...";
        }
        text += std::string(text.empty() ? "" : ", ") + "device " + std::to_string(t.device) +
                (t.direction == DOWNLINK ? " downlink" : " uplink");
    }
    return text;
}

LteTransport::FlowStats
LteTransport::GetFlowStats(Direction direction)
{
    NS_ABORT_MSG_UNLESS(m_flowMonitor, "LteTransport::GetFlowStats needs FlowMonitor true");
    m_flowMonitor->CheckForLostPackets();
    Ptr<Ipv4FlowClassifier> classifier =
        DynamicCast<Ipv4FlowClassifier>(m_flowHelper->GetClassifier());
    FlowStats out;
    double delaySum = 0;
    uint64_t rxBytes = 0;
    Time first = Time::Max();
    Time last = Seconds(0);
    for (const auto& [id, f] : m_flowMonitor->GetFlowStats())
    {
        const bool down = classifier->FindFlow(id).sourceAddress == m_edgeAddress;
        if (down != (direction == DOWNLINK))
        {
            continue;
        }
        ++out.flows;
        out.txPackets += f.txPackets;
        out.rxPackets += f.rxPackets;
        out.lostPackets += f.lostPackets;
        delaySum += f.delaySum.GetSeconds();
        rxBytes += f.rxBytes;
        first = std::min(first, f.timeFirstTxPacket);
        last = std::max(last, f.timeLastRxPacket);
    }
    out.meanDelayS = out.rxPackets > 0 ? delaySum / out.rxPackets : 0.0;
    out.throughputBps = last > first ? 8.0 * rxBytes / (last - first).GetSeconds() : 0.0;
    return out;
}

LteTransport::DirectionStats
LteTransport::GetStats(Direction direction) const
{
    DirectionStats s = m_stats[direction];
    s.meanTransferS = s.transfers > 0 ? m_sumTransferS[direction] / s.transfers : 0.0;
    return s;
}

} // namespace ns3
