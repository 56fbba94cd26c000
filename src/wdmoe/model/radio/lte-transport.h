// The transport seam over real ns-3 packets: UDP datagrams through ns-3's LTE module (eNB on
// the BS node, a UE on every device node, the EPC) to and from an edge host behind the PGW,
// where the BS's attention and gating conceptually run (the MEC arrangement).
#ifndef WDMOE_LTE_TRANSPORT_H
#define WDMOE_LTE_TRANSPORT_H

#include "expert-transport.h"

#include "ns3/data-rate.h"
#include "ns3/ipv4-address.h"
#include "ns3/net-device-container.h"
#include "ns3/node-container.h"
#include "ns3/nstime.h"
#include "ns3/ptr.h"
#include "ns3/traced-callback.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ns3
{

class FlowMonitor;
class LteCellTraces;
class FlowMonitorHelper;
class LteHelper;
class PointToPointEpcHelper;
class Packet;
class Socket;
class UplinkPowerAwareScheduler;
class WdmoeChannel;

/**
 * \ingroup wdmoe
 * ExpertTransport over ns-3's LTE module (FDD, one eNB on the BS node, a UE on every device
 * node) and its EPC: a transfer of b bits is ceil(b / 8) bytes cut into UDP datagrams of at
 * most PacketBytes payload, each starting with a 12-byte header of our own (transfer id,
 * sequence number, total bytes of the transfer); downlink from the edge host to the UE,
 * uplink from the UE to the edge host. The receiving socket counts the bytes per transfer and
 * calls back once, when the last byte is in.
 *
 * Call Install (after the propagation set-up and the attributes, before WdmoeHelper::Install
 * and Simulator::Run); device i is the i-th node given to it. LTE's own MAC scheduler shares
 * the resource blocks: SetShares is a no-op (the BS's split only shapes its predictions).
 * Transfers to or from a device whose default bearer is not yet set up wait for it (the
 * attach takes some tens of ms at the start of a run); that wait counts in their time.
 */
class LteTransport : public ExpertTransport
{
  public:
    static TypeId GetTypeId();
    LteTransport();
    ~LteTransport() override;

    /// Bytes of our header at the start of every datagram's payload.
    static constexpr uint32_t kHeaderBytes = 12;

    /// RLC mode of the data radio bearers.
    enum RlcMode
    {
        RLC_AM, ///< acknowledged: lost segments are retransmitted, every transfer completes
        RLC_UM  ///< unacknowledged: a lost segment loses its datagram and the transfer
    };

    /// Path loss: the 3GPP UMa model with a UMa channel condition model at carrierHz, as
    /// WdmoeChannel::CreateThreeGppUma makes it (the default, at 3.5 GHz).
    void UseThreeGppUma(double carrierHz);
    /// Path loss: 128.1 + 37.6 log10(d / 1 km) dB, as WdmoeChannel::CreateLogDistance128.
    void UseLogDistance128(double minDistanceM);
    /**
     * Path loss: the abstract channel's own (ChannelPathGainLossModel: its loss model, with one
     * draw of the 3GPP LOS state and shadowing per device shared by both transports, plus its
     * static shadowing). Call before Install, then SetPathGainChannel before Simulator::Run
     * (WdmoeHelper::Install does, with the channel it makes).
     */
    void UseChannelPathGain();
    /// Whether UseChannelPathGain was called.
    bool UsesChannelPathGain() const;
    /// The channel whose path gains the LTE channels see (after Install, with
    /// UseChannelPathGain; aborts otherwise).
    void SetPathGainChannel(Ptr<WdmoeChannel> channel);
    /// Each UE's own transmit power in dBm, in device order (before Install; empty, the
    /// default: DeviceTxPowerDbm for every UE; else one entry per device).
    void SetDeviceTxPowers(const std::vector<double>& dbm);

    /**
     * Builds the LTE cell, the EPC, the edge host and the sockets. The nodes keep their
     * mobility models. bs gets the eNB (and the EPC gives it an internet stack); every device
     * node gets an internet stack and a UE attached to the eNB.
     * \throws std::invalid_argument for a bandwidth LTE does not have or too many devices
     */
    void Install(Ptr<Node> bs, NodeContainer devices);

    /// Which trace files EnableTraces writes.
    struct TraceOptions
    {
        bool pcap = false;    ///< pcap of the EPC's links and every UE's bearer
        bool netanim = false; ///< NetAnim XML of the cell
    };

    /// The files of ns-3's LTE statistics (LteHelper::EnableTraces) that the attribute
    /// StatsDirectory asks for, in that folder: per TTI, PHY SINR/RSRP and transport blocks (with
    /// their HARQ outcome), MAC scheduling decisions (MCS, blocks, TB size); per 0.25 s epoch, RLC
    /// and PDCP PDUs, bytes and delays per bearer.
    static const std::vector<std::string>& StatsFiles();

    /**
     * Writes the trace files of options into the folder dir (which must exist) while the
     * simulation runs (LteCellTraces: the files and their names). Call after Install and
     * before Simulator::Run; CloseTraces after it.
     */
    void EnableTraces(const std::string& dir, const TraceOptions& options);
    /// Flushes and closes the trace files; returns their names inside the folder (the
    /// statistics' files are complete only once the simulation is destroyed).
    std::vector<std::string> CloseTraces();

    /// Fixed random streams for the LTE devices, the EPC and the path loss; returns how many
    /// were used. Call after Install.
    int64_t AssignStreams(int64_t stream);

    void SetShares(const std::vector<uint32_t>& devices,
                   const std::vector<double>& shares) override;
    bool InCoverage(uint32_t device) override;
    void Send(uint32_t device, Direction direction, double bits, Callback<void> arrived) override;
    void SendControl(uint32_t device, double bits, Callback<void> arrived) override;

    /// What went one way: transfers completed, datagrams and payload bytes received, and the
    /// mean time from Send to the callback.
    struct DirectionStats
    {
        uint64_t transfers = 0;
        uint64_t datagrams = 0;
        uint64_t bytes = 0;
        double meanTransferS = 0;
        double maxTransferS = 0;
    };

    DirectionStats GetStats(Direction direction) const;

    /// FlowMonitor's view of one direction (every flow between the edge host and a UE that
    /// way, IP packets at their source and destination): packets sent, received and lost (not
    /// arrived by the time of the call), mean one-way delay, and throughput from the first
    /// packet sent to the last received.
    struct FlowStats
    {
        uint64_t flows = 0;
        uint64_t txPackets = 0;
        uint64_t rxPackets = 0;
        uint64_t lostPackets = 0;
        double meanDelayS = 0;
        double throughputBps = 0;
    };

    /// Needs the attribute FlowMonitor true (set before Install).
    FlowStats GetFlowStats(Direction direction);

    /// Transfers sent and not (yet) complete.
    std::size_t PendingTransfers() const { return m_pending.size(); }

    /// The first few of them, for messages ("device 3 uplink, device 6 uplink").
    std::string PendingText() const;

    /// True when the transport stopped the simulation: transfers were pending and no datagram
    /// arrived for StallTimeout (a run whose transfers can never end would never stop, since
    /// the LTE stack keeps the event queue busy).
    bool Stalled() const { return m_stalled; }

    /// The LTE resource blocks of a bandwidth (1.4, 3, 5, 10, 15 or 20 MHz), 0 for any other.
    static uint16_t ResourceBlocksOf(double bandwidthHz);
    /// Scheduler TypeIds known to ns-3 (the subclasses of ns3::FfMacScheduler).
    static std::vector<std::string> Schedulers();

  protected:
    void DoDispose() override;

  private:
    /// Names ns-3's LTE statistics files after StatsDirectory (before the LteHelper makes
    /// its calculators, at its first InstallEnbDevice).
    void NameStatsFiles() const;

    struct Pending
    {
        uint32_t device;
        Direction direction;
        uint32_t totalBytes;
        uint32_t receivedBytes;
        Time start;
        Callback<void> arrived;
    };

    struct Queued
    {
        uint32_t device;
        Direction direction;
        uint32_t id;
        uint32_t bytes;
    };

    /// The scheduler, carrier and RLC attributes (GetTypeId's second half).
    static TypeId AddSchedulingAttributes(TypeId tid);
    void InstallEpcAndEdge();
    void InstallRadio(Ptr<Node> bs, NodeContainer devices);
    void ConfigureLoss();
    void InstallSockets(NodeContainer devices);
    uint32_t StartTransfer(uint32_t device, Direction direction, uint32_t bytes, Callback<void> cb);
    void Emit(const Queued& transfer);
    void Receive(Ptr<Socket> socket);
    void DrbCreated(uint64_t imsi, uint16_t cellId, uint16_t rnti, uint8_t lcid);
    void RadioLinkFailure(uint64_t imsi, uint16_t cellId, uint16_t rnti);
    void CheckStall();
    /// The uplink SINR per resource block the UEs' power control aims at (dB).
    double OpenLoopSinrDb() const;

    // attributes
    uint32_t m_packetBytes;
    std::string m_scheduler;
    bool m_powerAwareUplink;
    uint16_t m_resourceBlocks;
    RlcMode m_rlc;
    double m_bsTxPowerDbm;
    double m_deviceTxPowerDbm;
    std::vector<double> m_deviceTxPowers; ///< per UE (empty: m_deviceTxPowerDbm)
    double m_bsNoiseFigureDb;
    double m_deviceNoiseFigureDb;
    DataRate m_edgeRate;
    Time m_edgeDelay;
    Time m_stallTimeout;
    bool m_flowMonitorEnabled;
    std::unique_ptr<FlowMonitorHelper> m_flowHelper;
    Ptr<FlowMonitor> m_flowMonitor;
    Time m_lastRx;
    bool m_stalled;

    // path loss
    /// Where the LTE channels' path loss comes from.
    enum class PathLoss
    {
        THREE_GPP_UMA,
        LOG_DISTANCE_128,
        CHANNEL
    };

    PathLoss m_pathLoss;
    double m_carrierHz;
    double m_minDistanceM;

    std::unique_ptr<LteCellTraces> m_traces;
    std::string m_statsDir;      ///< StatsDirectory: empty for no statistics
    bool m_statsEnabled = false; ///< the statistics are being written (CloseTraces not yet)
    Ptr<LteHelper> m_lte;
    Ptr<PointToPointEpcHelper> m_epc;
    Ptr<Node> m_edge;
    Ipv4Address m_edgeAddress;
    Ptr<UplinkPowerAwareScheduler> m_uplinkScheduler; ///< null without PowerAwareUplink
    NetDeviceContainer m_enbDevices;
    NetDeviceContainer m_ueDevices;
    Ptr<Socket> m_edgeSocket;
    std::vector<Ptr<Socket>> m_ueSockets;
    std::vector<Ipv4Address> m_ueAddresses;
    std::map<uint64_t, uint32_t> m_deviceOfImsi;
    std::vector<bool> m_ready;    ///< by device: its default bearer is up
    std::vector<bool> m_lost;     ///< by device: its radio link failed
    std::vector<Queued> m_queued; ///< transfers waiting for their device's bearer
    std::map<uint32_t, Pending> m_pending;
    uint32_t m_nextId;
    DirectionStats m_stats[2];
    double m_sumTransferS[2];

    /// (device, direction, payload bytes) of every datagram the receiving socket gets.
    TracedCallback<uint32_t, Direction, uint32_t> m_rxTrace;
};

} // namespace ns3

#endif
