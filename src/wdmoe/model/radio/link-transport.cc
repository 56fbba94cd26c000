#include "link-transport.h"

#include "ns3/boolean.h"
#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/simulator.h"

#include <stdexcept>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("LinkTransport");
NS_OBJECT_ENSURE_REGISTERED(LinkTransport);

namespace
{

void
Deliver(Callback<void> arrived)
{
    arrived();
}

} // namespace

TypeId
LinkTransport::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::LinkTransport")
            .SetParent<ExpertTransport>()
            .SetGroupName("Wdmoe")
            .AddConstructor<LinkTransport>()
            .AddAttribute("MinRate",
                          "Coverage floor (bit/s): a device whose downlink or uplink rate on "
                          "its slice is below it is out of coverage.",
                          DoubleValue(0.0),
                          MakeDoubleAccessor(&LinkTransport::m_minRateBps),
                          MakeDoubleChecker<double>(0.0))
            .AddAttribute("WorkConserving",
                          "Work-conserving sharing of each pool: the devices sending in a pool "
                          "split all of it in proportion to their shares (an idle device's slice "
                          "goes to the others); false: each device has its static share. Read "
                          "by SetChannel.",
                          BooleanValue(true),
                          MakeBooleanAccessor(&LinkTransport::m_workConserving),
                          MakeBooleanChecker())
            .AddAttribute("HintAirtime",
                          "Prefetch hints (SendControl) are downlink transfers in the device's "
                          "pool, like Send's; false: a hint takes bits / rate on an equal share "
                          "of the downlink and occupies nothing. Read by SetAccessOverhead and "
                          "SendControl.",
                          BooleanValue(true),
                          MakeBooleanAccessor(&LinkTransport::m_hintAirtime),
                          MakeBooleanChecker());
    return tid;
}

LinkTransport::LinkTransport()
    : m_minRateBps(0),
      m_workConserving(true),
      m_hintAirtime(true)
{
}

void
LinkTransport::DoDispose()
{
    for (auto& pool : m_pools)
    {
        pool->Clear();
    }
    m_pools.clear();
    m_channel = nullptr;
    ExpertTransport::DoDispose();
}

void
LinkTransport::SetChannel(Ptr<WdmoeChannel> channel, const BandPlan& band)
{
    m_channel = channel;
    m_band = band;
    m_share.assign(channel->GetNDevices(), 1.0 / std::max<uint32_t>(1, channel->GetNDevices()));
    m_pools.clear();
    m_pools.push_back(std::make_unique<BandwidthPool>(channel, band.dlHz, m_workConserving));
    // FDD and TDD: a pool per direction (TDD's directions hold the air in turns, so an ending
    // transfer frees nothing for the other direction).
    if (band.mode != DuplexMode::SHARED)
    {
        m_pools.push_back(std::make_unique<BandwidthPool>(channel, band.ulHz, m_workConserving));
    }
    for (auto& pool : m_pools)
    {
        pool->SetAirtimeCallback(MakeCallback(&LinkTransport::OnAir, this));
    }
}

void
LinkTransport::OnAir(uint32_t device, WdmoeChannel::Direction direction, double seconds)
{
    NotifyAirtime(device, direction == WdmoeChannel::UPLINK ? UPLINK : DOWNLINK, seconds);
}

void
LinkTransport::SetShares(const std::vector<uint32_t>& devices, const std::vector<double>& shares)
{
    for (std::size_t k = 0; k < devices.size(); ++k)
    {
        m_share.at(devices[k]) = shares.at(k);
    }
}

bool
LinkTransport::InCoverage(uint32_t device)
{
    const Time now = Simulator::Now();
    const double dl =
        m_channel->KnownRate(device, WdmoeChannel::DOWNLINK, m_share.at(device) * m_band.dlHz, now);
    const double ul =
        m_channel->KnownRate(device, WdmoeChannel::UPLINK, m_share.at(device) * m_band.ulHz, now);
    return dl >= m_minRateBps && ul >= m_minRateBps;
}

void
LinkTransport::SetAccessOverhead(const AccessOverhead& access)
{
    m_access = access;
    m_harq.clear();
    const uint32_t streams = (m_hintAirtime ? 3 : 2) * m_channel->GetNDevices();
    for (uint32_t i = 0; access.harqBler > 0 && i < streams; ++i)
    {
        m_harq.push_back(CreateObject<UniformRandomVariable>());
    }
}

int64_t
LinkTransport::AssignStreams(int64_t stream)
{
    for (std::size_t i = 0; i < m_harq.size(); ++i)
    {
        m_harq[i]->SetStream(stream + int64_t(i));
    }
    return int64_t(m_harq.size());
}

void
LinkTransport::Transmit(uint32_t device,
                        WdmoeChannel::Direction direction,
                        double bits,
                        uint32_t harqStream,
                        Callback<void> arrived)
{
    const Time now = Simulator::Now();
    const Time start = m_access.Start(now, direction == WdmoeChannel::UPLINK);
    const double onAir = m_access.OnAirBits(bits);
    const double share = m_share.at(device); // the split in force when it is sent
    if (start == now)
    {
        Enter(device, direction, onAir, share, harqStream, arrived);
        return;
    }
    Simulator::Schedule(start - now,
                        &LinkTransport::Enter,
                        this,
                        device,
                        direction,
                        onAir,
                        share,
                        harqStream,
                        arrived);
}

void
LinkTransport::Enter(uint32_t device,
                     WdmoeChannel::Direction direction,
                     double onAirBits,
                     double share,
                     uint32_t harqStream,
                     Callback<void> arrived)
{
    BandwidthPool& pool =
        *m_pools.at(m_band.mode != DuplexMode::SHARED && direction == WdmoeChannel::UPLINK ? 1 : 0);
    pool.Enter(device,
               direction,
               onAirBits,
               share,
               MakeCallback(&LinkTransport::Through, this).Bind(harqStream, arrived));
}

void
LinkTransport::Through(uint32_t harqStream, Callback<void> arrived)
{
    const Time now = Simulator::Now();
    uint32_t retransmissions = 0;
    if (!m_harq.empty())
    {
        // u in (0, 1]: 1 - U with U uniform in [0, 1).
        retransmissions = m_access.Retransmissions(1.0 - m_harq.at(harqStream)->GetValue());
    }
    const Time at = m_access.SlotBoundary(now) +
                    TimeStep(m_access.harqRtt.GetTimeStep() * int64_t(retransmissions));
    if (at == now)
    {
        arrived();
        return;
    }
    Simulator::Schedule(at - now, &Deliver, arrived);
}

void
LinkTransport::Send(uint32_t device, Direction direction, double bits, Callback<void> arrived)
{
    const bool down = direction == DOWNLINK;
    Transmit(device,
             down ? WdmoeChannel::DOWNLINK : WdmoeChannel::UPLINK,
             bits,
             2 * device + (down ? 0 : 1),
             arrived);
}

void
LinkTransport::SendControl(uint32_t device, double bits, Callback<void> arrived)
{
    if (m_hintAirtime)
    {
        Transmit(device,
                 WdmoeChannel::DOWNLINK,
                 bits,
                 2 * m_channel->GetNDevices() + device,
                 arrived);
        return;
    }
    const double rate =
        m_channel->DownlinkRate(device, m_band.dlHz / m_channel->GetNDevices(), Simulator::Now());
    if (rate > 0) // a hint sent in an outage is lost
    {
        Simulator::Schedule(Seconds(bits / rate), &Deliver, arrived);
    }
}

} // namespace ns3
