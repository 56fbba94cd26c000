#include "latency-predictor.h"

#include "ns3/double.h"
#include "ns3/simulator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ns3
{

LatencyPredictor::LatencyPredictor(Ptr<WdmoeChannel> channel,
                                   const BandPlan& band,
                                   const CostModel& cost,
                                   std::vector<Ptr<ExpertDeviceApp>> devices,
                                   const AccessOverhead& access)
    : m_channel(channel),
      m_band(band),
      m_cost(cost),
      m_devices(std::move(devices)),
      m_access(access)
{
}

bool
LatencyPredictor::HasEnergy() const
{
    return !m_devices.empty() &&
           std::all_of(m_devices.begin(), m_devices.end(), [](const Ptr<ExpertDeviceApp>& d) {
               return d->Profile().HasEnergy();
           });
}

double
LatencyPredictor::DeviceEnergy(uint32_t device,
                               const DeviceWork& work,
                               int layer,
                               double share) const
{
    const ExpertDeviceApp& dev = *m_devices[device];
    const ComputeProfile& p = dev.Profile();
    if (!p.HasEnergy())
    {
        throw std::logic_error("device profile \"" + p.name + "\" has no energy fields");
    }
    const Time now = Simulator::Now();
    double busy = 0;
    for (std::size_t k = 0; k < work.experts.size(); ++k)
    {
        busy += dev.ExpertTime(work.tokensOf[k]).GetSeconds();
        const bool resident =
            dev.Memory().Peek(layer, work.experts[k], now, dev.LoadTime()).resident;
        busy += resident ? 0.0 : dev.LoadTime().GetSeconds();
    }
    const double onAir = m_access.OnAirBits(m_cost.HiddenStateBits(work.tokens));
    const auto airtime = [&](WdmoeChannel::Direction dir, double poolHz) {
        const double rate = m_channel->KnownRate(device, dir, share * poolHz, now);
        return rate > 0 ? std::min(WdmoeChannel::kUnreachableSeconds, onAir / rate)
                        : WdmoeChannel::kUnreachableSeconds;
    };
    const double txPowerW = m_channel->GetDeviceTxPowerW(device);
    return (p.activePowerW - p.idlePowerW) * busy +
           txPowerW / p.paEfficiency * airtime(WdmoeChannel::UPLINK, m_band.ulHz) +
           p.radioRxPowerW * airtime(WdmoeChannel::DOWNLINK, m_band.dlHz);
}

double
LatencyPredictor::WithOverhead(double airtimeSeconds, bool uplink) const
{
    const Time slotted = m_access.WholeSlots(Seconds(airtimeSeconds));
    const double grant = uplink ? m_access.uplinkGrant.GetSeconds() : 0.0;
    return grant + slotted.GetSeconds() +
           m_access.ExpectedRetransmissions() * m_access.harqRtt.GetSeconds();
}

Time
LatencyPredictor::PredictedEnd(uint32_t device,
                               WdmoeChannel::Direction dir,
                               double bits,
                               double bandwidthHz,
                               Time now,
                               Time ready) const
{
    const Time start = m_access.Start(ready, dir == WdmoeChannel::UPLINK);
    const Time airtime = m_channel->PredictTransferTime(device,
                                                        dir,
                                                        m_access.OnAirBits(bits),
                                                        bandwidthHz,
                                                        now,
                                                        start);
    return start + m_access.WholeSlots(airtime) +
           Seconds(m_access.ExpectedRetransmissions() * m_access.harqRtt.GetSeconds());
}

template <class Rate>
double
LatencyPredictor::RoundTripAt(uint32_t device, int tokens, Rate rate) const
{
    const double share = 1.0 / std::max<std::size_t>(1, m_devices.size());
    const double bits = m_cost.HiddenStateBits(tokens);
    // A link in outage now (a zero rate under a truncated mapping) is out of reach, not infinite.
    const double never = WdmoeChannel::kUnreachableSeconds;
    const double onAir = m_access.OnAirBits(bits);
    double dl = std::min(never,
                         onAir / (rate(WdmoeChannel::DOWNLINK, m_band.dlHz * share) *
                                  m_channel->DutyCycle(WdmoeChannel::DOWNLINK)));
    double ul = std::min(never,
                         onAir / (rate(WdmoeChannel::UPLINK, m_band.ulHz * share) *
                                  m_channel->DutyCycle(WdmoeChannel::UPLINK)));
    if (!m_access.IsIdeal())
    {
        dl = WithOverhead(dl, false);
        ul = WithOverhead(ul, true);
    }
    return dl + m_cost.ExpertSeconds(m_devices[device]->Profile(), tokens) + ul;
}

double
LatencyPredictor::EqualShareRoundTrip(uint32_t device, int tokens, Time at) const
{
    return RoundTripAt(device, tokens, [&](WdmoeChannel::Direction dir, double hz) {
        return m_channel->KnownRate(device, dir, hz, at);
    });
}

double
LatencyPredictor::ExpectedRoundTrip(uint32_t device, int tokens) const
{
    return RoundTripAt(device, tokens, [&](WdmoeChannel::Direction dir, double hz) {
        return m_channel->ExpectedRate(device, dir, hz);
    });
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
    const Time arrive =
        PredictedEnd(device, WdmoeChannel::DOWNLINK, bits, share * m_band.dlHz, now, now);
    // The loads it must wait for, queued on its storage reader, then the device's own timing.
    const Time loadTime = dev.LoadTime();
    Time storageFree = std::max(arrive, dev.Memory().StorageFreeAt());
    std::vector<Time> readyAt;
    for (int expert : work.experts)
    {
        const ExpertMemory::Demand d = dev.Memory().Peek(layer, expert, arrive, loadTime);
        readyAt.push_back(d.resident ? d.readyAt : storageFree + loadTime);
        storageFree = d.resident ? storageFree : readyAt.back();
    }
    const std::vector<ExpertTiming> timeline = dev.Timeline(work, arrive, readyAt);
    const Time t = timeline.empty() ? std::max(arrive, dev.ComputeFreeAt()) : timeline.back().end;
    const Time answered =
        PredictedEnd(device, WdmoeChannel::UPLINK, bits, share * m_band.ulHz, now, t);
    return (answered - now).GetSeconds();
}

} // namespace ns3
