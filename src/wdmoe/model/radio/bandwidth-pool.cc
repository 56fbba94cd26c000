#include "bandwidth-pool.h"

#include "ns3/log.h"
#include "ns3/simulator.h"

#include <algorithm>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("BandwidthPool");

BandwidthPool::BandwidthPool(Ptr<WdmoeChannel> channel, double poolHz, bool workConserving)
    : m_channel(channel),
      m_poolHz(poolHz),
      m_workConserving(workConserving)
{
}

void
BandwidthPool::Enter(uint32_t device,
                     WdmoeChannel::Direction direction,
                     double bits,
                     double share,
                     Callback<void> through)
{
    std::deque<Flight>& queue = m_queues[device];
    Flight f;
    f.direction = direction;
    f.bits = bits;
    f.share = share;
    f.through = through;
    queue.push_back(f);
    if (queue.size() == 1) // on the air now: the heads change
    {
        Share();
    }
}

void
BandwidthPool::SetAirtimeCallback(AirtimeCallback airtime)
{
    m_airtime = airtime;
}

void
BandwidthPool::ReportAirtime(uint32_t device, const Flight& f) const
{
    if (!m_airtime.IsNull())
    {
        m_airtime(device,
                  f.direction,
                  m_channel->AirSeconds(f.direction, f.onAirSince, Simulator::Now()));
    }
}

std::size_t
BandwidthPool::Size() const
{
    std::size_t n = 0;
    for (const auto& [device, queue] : m_queues)
    {
        n += queue.size();
    }
    return n;
}

void
BandwidthPool::Clear()
{
    for (auto& [device, queue] : m_queues)
    {
        queue.front().done.Cancel();
    }
    m_queues.clear();
}

void
BandwidthPool::Share()
{
    const Time now = Simulator::Now();
    // Each pass either settles every head or drops one lost in outage (then the heads changed
    // again): at most one pass more than the transfers dropped.
    for (bool dropped = true; dropped;)
    {
        dropped = false;
        double active = 0;
        for (const auto& [device, queue] : m_queues)
        {
            active += queue.front().share;
        }
        for (auto it = m_queues.begin(); it != m_queues.end(); ++it)
        {
            const uint32_t device = it->first;
            Flight& f = it->second.front();
            const double hz = !m_workConserving ? f.share * m_poolHz
                              : active > 0      ? f.share / active * m_poolHz
                                                : 0.0;
            if (hz == f.hz)
            {
                continue; // its end stands
            }
            if (f.hz > 0) // on the air since `since` on the old slice
            {
                f.done.Cancel();
                const double carried =
                    m_channel->BitsDelivered(device, f.direction, f.hz, f.since, now);
                f.bits = std::max(0.0, f.bits - carried);
            }
            else
            {
                f.onAirSince = now;
            }
            f.hz = hz;
            f.since = now;
            const Time left = m_channel->TransferTime(device, f.direction, f.bits, hz, now);
            if (left == Time::Max())
            {
                // An outage longer than the channel waits: the bits never arrive (a deadline,
                // if any, gives up on them); the device's next transfer goes on the air.
                NS_LOG_LOGIC("device " << device << ": transfer lost in an outage");
                ReportAirtime(device, f);
                it->second.pop_front();
                if (it->second.empty())
                {
                    m_queues.erase(it);
                }
                dropped = true;
                break;
            }
            f.done = Simulator::Schedule(left, &BandwidthPool::Through, this, device);
        }
    }
}

void
BandwidthPool::Through(uint32_t device)
{
    auto it = m_queues.find(device);
    NS_ASSERT_MSG(it != m_queues.end(), "BandwidthPool: no transfer of device " << device);
    const Callback<void> through = it->second.front().through;
    ReportAirtime(device, it->second.front());
    it->second.pop_front();
    if (it->second.empty())
    {
        m_queues.erase(it);
    }
    Share(); // its slice goes to the others (work-conserving), its device's next goes on the air
    through();
}

} // namespace ns3
