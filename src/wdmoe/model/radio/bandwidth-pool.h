// The transfers that share one bandwidth pool of the abstract link (LinkTransport): each device
// sends its transfers one after the other on its slice, and the slices are either the devices'
// static shares of the pool or, work-conserving, the pool split among the devices sending now.
#ifndef WDMOE_BANDWIDTH_POOL_H
#define WDMOE_BANDWIDTH_POOL_H

#include "wdmoe-channel.h"

#include "ns3/callback.h"
#include "ns3/event-id.h"
#include "ns3/nstime.h"
#include "ns3/ptr.h"

#include <cstdint>
#include <deque>
#include <map>

namespace ns3
{

/**
 * \ingroup wdmoe
 * One pool of a band plan (BandPlan: the shared band, or an FDD direction's pool) and the
 * transfers on it, event-driven on the ns-3 simulator.
 *
 * A transfer enters with its device, direction, bits and allocated share s (the device's share
 * of the pool when it was sent). Each device's transfers wait in a first-in first-out queue: the
 * head is on the air, the others wait for it (a device's slice carries one transfer at a time).
 * The head of device d is on a slice of
 * - static: s_d x pool (the allocation as given, whoever else is sending);
 * - work-conserving: s_d / sum_{devices sending in the pool} s x pool, so a slice that falls
 *   idle (its device has nothing more to send) goes to the transfers still running, in
 *   proportion to their shares (and the active shares are scaled up to the whole pool).
 *
 * Whenever the set of heads changes (a transfer enters an idle device's queue, or one's bits
 * are through) the slices are recomputed; every head whose slice changed has the bits it carried
 * since its last change accounted at its old slice (WdmoeChannel::BitsDelivered) and its end
 * rescheduled for the rest at the new slice (WdmoeChannel::TransferTime). A head whose slice
 * is unchanged keeps its scheduled end, so the static mode computes each transfer's time once,
 * when it goes on the air. A transfer whose TransferTime is Time::Max() (outage) is dropped at
 * once: its bits never arrive and its share returns to the others (no event is scheduled for
 * it).
 */
class BandwidthPool
{
  public:
    /**
     * \param channel the links
     * \param poolHz the pool's bandwidth (Hz)
     * \param workConserving true: idle slices go to the running transfers
     */
    BandwidthPool(Ptr<WdmoeChannel> channel, double poolHz, bool workConserving);

    /**
     * Queues a transfer now, behind the device's transfers in this pool (on the air at once
     * when it has none).
     * \param device the device
     * \param direction its direction
     * \param bits the bits on the air (> = 0)
     * \param share the device's share of the pool, in (0, 1]
     * \param through called when the last bit is through; never for a transfer lost in outage
     */
    void Enter(uint32_t device,
               WdmoeChannel::Direction direction,
               double bits,
               double share,
               Callback<void> through);

    /// Called with (device, direction, seconds) when a transfer leaves the air (its bits are
    /// through, or it is lost in an outage): the seconds its direction held the air while it
    /// was on it (WdmoeChannel::AirSeconds), what the radios spent energy on.
    using AirtimeCallback = Callback<void, uint32_t, WdmoeChannel::Direction, double>;
    void SetAirtimeCallback(AirtimeCallback airtime);

    /// The transfers of the pool (queued or on the air).
    std::size_t Size() const;

    /// Cancels every transfer's event and forgets them.
    void Clear();

  private:
    /// A transfer in a device's queue.
    struct Flight
    {
        WdmoeChannel::Direction direction; ///< its direction
        double bits;                       ///< on-air bits still to carry as of `since`
        double share;                      ///< its allocated share of the pool
        Callback<void> through;            ///< called when its bits are through
        double hz = 0;                     ///< its slice now (0: not on the air yet)
        Time since;                        ///< when `bits` was last brought up to date
        Time onAirSince;                   ///< when it went on the air (a head's)
        EventId done;                      ///< its bits are through (a head's)
    };

    /// Gives every head its slice; relaunches those whose slice changed; drops the lost ones.
    void Share();
    /// The event of a head whose bits are through.
    void Through(uint32_t device);
    /// Reports a head's airtime up to now to the airtime callback, if any.
    void ReportAirtime(uint32_t device, const Flight& f) const;

    Ptr<WdmoeChannel> m_channel;
    double m_poolHz;
    bool m_workConserving;
    std::map<uint32_t, std::deque<Flight>> m_queues; ///< by device; none for an idle device
    AirtimeCallback m_airtime;
};

} // namespace ns3

#endif
