#include "link-transport.h"

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
                          MakeDoubleChecker<double>(0.0));
    return tid;
}

LinkTransport::LinkTransport()
    : m_minRateBps(0)
{
}

void
LinkTransport::DoDispose()
{
    m_channel = nullptr;
    ExpertTransport::DoDispose();
}

void
LinkTransport::SetChannel(Ptr<WdmoeChannel> channel, const BandPlan& band)
{
    m_channel = channel;
    m_band = band;
    m_share.assign(channel->GetNDevices(), 1.0 / std::max<uint32_t>(1, channel->GetNDevices()));
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
    for (uint32_t i = 0; access.harqBler > 0 && i < 2 * m_channel->GetNDevices(); ++i)
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

Time
LinkTransport::Transfer(uint32_t device, Direction direction, double bits, Time ready)
{
    const bool down = direction == DOWNLINK;
    const Time start = m_access.Start(ready, !down);
    const Time airtime =
        m_channel->TransferTime(device,
                                down ? WdmoeChannel::DOWNLINK : WdmoeChannel::UPLINK,
                                m_access.OnAirBits(bits),
                                m_share.at(device) * (down ? m_band.dlHz : m_band.ulHz),
                                start);
    if (airtime == Time::Max())
    {
        return airtime;
    }
    uint32_t retransmissions = 0;
    if (!m_harq.empty())
    {
        // u in (0, 1]: 1 - U with U uniform in [0, 1).
        const double u = 1.0 - m_harq[2 * device + (down ? 0 : 1)]->GetValue();
        retransmissions = m_access.Retransmissions(u);
    }
    return start + m_access.WholeSlots(airtime) +
           TimeStep(m_access.harqRtt.GetTimeStep() * int64_t(retransmissions)) - ready;
}

void
LinkTransport::Send(uint32_t device, Direction direction, double bits, Callback<void> arrived)
{
    const Time duration = Transfer(device, direction, bits, Simulator::Now());
    if (duration == Time::Max())
    {
        // An outage longer than the channel waits: the bits never arrive (a deadline, if any,
        // gives up on them).
        NS_LOG_LOGIC("device " << device << ": transfer lost in an outage");
        return;
    }
    Simulator::Schedule(duration, &Deliver, arrived);
}

void
LinkTransport::SendControl(uint32_t device, double bits, Callback<void> arrived)
{
    const double rate =
        m_channel->DownlinkRate(device, m_band.dlHz / m_channel->GetNDevices(), Simulator::Now());
    if (rate > 0) // a hint sent in an outage is lost
    {
        Simulator::Schedule(Seconds(bits / rate), &Deliver, arrived);
    }
}

} // namespace ns3
