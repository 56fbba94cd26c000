#include "latency-predictor.h"

#include "ns3/simulator.h"

#include <algorithm>

namespace ns3
{

LatencyPredictor::LatencyPredictor(Ptr<WdmoeChannel> channel,
                                   const BandPlan& band,
                                   const CostModel& cost,
                                   std::vector<Ptr<ExpertDeviceApp>> devices)
    : m_channel(channel),
      m_band(band),
      m_cost(cost),
      m_devices(std::move(devices))
{
}

double
LatencyPredictor::EqualShareRoundTrip(uint32_t device, int tokens, Time at) const
{
    const double share = 1.0 / std::max<std::size_t>(1, m_devices.size());
    const double bits = m_cost.HiddenStateBits(tokens);
    // A link in outage now (a zero rate under a truncated mapping) is out of reach, not infinite.
    const double never = WdmoeChannel::kUnreachableSeconds;
    const double dl =
        std::min(never, bits / m_channel->DownlinkRate(device, m_band.dlHz * share, at));
    const double ul =
        std::min(never, bits / m_channel->UplinkRate(device, m_band.ulHz * share, at));
    return dl + m_cost.ExpertSeconds(m_devices[device]->Profile(), tokens) + ul;
}

double
LatencyPredictor::DeviceRoundTrip(uint32_t device,
                                  const DeviceWork& work,
                                  int layer,
                                  double share) const
{
    // Downlink on the channel it knows now (then the expected one), the device's compute
    // queue, the loads it must wait for, the computations, and the uplink after them: on the
    // known channel while that is still in the current coherence block, else at the expected
    // rate.
    const ExpertDeviceApp& dev = *m_devices[device];
    const Time now = Simulator::Now();
    const double bits = m_cost.HiddenStateBits(work.tokens);
    const Time arrive = now + m_channel->PredictTransferTime(device,
                                                             WdmoeChannel::DOWNLINK,
                                                             bits,
                                                             share * m_band.dlHz,
                                                             now);
    const Time loadTime = dev.LoadTime();
    Time t = std::max(arrive, dev.ComputeFreeAt());
    Time storageFree = std::max(arrive, dev.Memory().StorageFreeAt());
    for (std::size_t k = 0; k < work.experts.size(); ++k)
    {
        const ExpertMemory::Demand d = dev.Memory().Peek(layer, work.experts[k], arrive, loadTime);
        Time ready = d.readyAt;
        if (!d.resident)
        {
            ready = storageFree + loadTime; // queued behind the loads before it
            storageFree = ready;
        }
        t = std::max(t, ready) + dev.ExpertTime(work.tokensOf[k]);
    }
    const Time ul = m_channel->PredictTransferTime(device,
                                                   WdmoeChannel::UPLINK,
                                                   bits,
                                                   share * m_band.ulHz,
                                                   now,
                                                   t);
    return (t + ul - now).GetSeconds();
}

} // namespace ns3
