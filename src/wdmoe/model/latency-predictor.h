// What the BS expects a device's part of a layer to take: the one prediction behind expert
// selection, bandwidth allocation, replica choice and placement costs.
#ifndef WDMOE_LATENCY_PREDICTOR_H
#define WDMOE_LATENCY_PREDICTOR_H

#include "access-overhead.h"
#include "bandwidth-slices.h"
#include "cost-model.h"
#include "expert-device-app.h"
#include "expert-request.h"
#include "wdmoe-channel.h"

#include "ns3/nstime.h"
#include "ns3/ptr.h"

#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * The BS's latency predictions. It knows the channel of the current coherence block (beyond
 * it, the expected rate: WdmoeChannel::PredictTransferTime) and mirrors each device's memory
 * and compute queue.
 */
class LatencyPredictor
{
  public:
    LatencyPredictor() = default;
    LatencyPredictor(Ptr<WdmoeChannel> channel,
                     const BandPlan& band,
                     const CostModel& cost,
                     std::vector<Ptr<ExpertDeviceApp>> devices,
                     const AccessOverhead& access = AccessOverhead());

    /**
     * A round trip of `tokens` tokens through one expert of `device` on an equal share of each
     * pool among all devices, on the channel as it is at `at`, without queues or loads: the
     * cost of sending work there (replica choice, placement, hints). With access overhead:
     * the grant, whole slots and the mean HARQ retransmissions, not the wait for a slot.
     */
    double EqualShareRoundTrip(uint32_t device, int tokens, Time at) const;

    /**
     * The same on the channel a device can expect over the run: each direction at the
     * channel's ExpectedRate (the mean over the fading of its path loss and shadowing), the
     * compute on the device's own profile. Draws no fading: the long-run cost of a device, for
     * placements that must not depend on the first coherence block.
     */
    double ExpectedRoundTrip(uint32_t device, int tokens) const;

    /**
     * The device's part of layer `layer` if it gets `share` of each pool, from now to its
     * answer's arrival: downlink, its compute queue, the loads it must wait for (queued on its
     * storage reader), the computations, uplink.
     */
    double DeviceRoundTrip(uint32_t device, const DeviceWork& work, int layer, double share) const;

    /**
     * The energy (J) the device's part of layer `layer` with `share` of each pool adds to its
     * idle draw (ExpertDeviceEnergyModel's powers): (active - idle power) x (its computations
     * + the loads of experts not in memory) + P_tx / pa_efficiency x uplink airtime +
     * radio_rx_power_w x downlink airtime, the airtimes on-air bits over the rate the BS knows
     * now. Throws std::logic_error when the device's profile has no energy fields.
     */
    double DeviceEnergy(uint32_t device, const DeviceWork& work, int layer, double share) const;

    /// True when every device's profile has energy fields (DeviceEnergy can be asked).
    bool HasEnergy() const;

    uint32_t Devices() const { return uint32_t(m_devices.size()); }

  private:
    Ptr<WdmoeChannel> m_channel;
    BandPlan m_band{DuplexMode::SHARED, 0, 0};
    CostModel m_cost;
    std::vector<Ptr<ExpertDeviceApp>> m_devices;
    AccessOverhead m_access;

    /// When a transfer of `bits` ready at `ready` ends, as the BS predicts it at `now`: the
    /// access overhead (grant, slots, mean HARQ retransmissions) around the channel's airtime.
    Time PredictedEnd(uint32_t device,
                      WdmoeChannel::Direction dir,
                      double bits,
                      double bandwidthHz,
                      Time now,
                      Time ready) const;
    /// Seconds of airtime at a rate, with the access overhead of that direction (no slot wait).
    double WithOverhead(double airtimeSeconds, bool uplink) const;
    /// The equal-share round trip with each direction's rate from rate(direction, slice Hz).
    template <class Rate>
    double RoundTripAt(uint32_t device, int tokens, Rate rate) const;
};

} // namespace ns3

#endif
