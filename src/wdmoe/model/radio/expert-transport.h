// The seam between the BS application and the device applications (DESIGN.md section 2): carry
// these bits between the BS and device d, and call back when they have arrived. Neither
// application knows what carries them: the closed-form link (LinkTransport) is one
// implementation; real ns-3 packets can be another.
#ifndef WDMOE_EXPERT_TRANSPORT_H
#define WDMOE_EXPERT_TRANSPORT_H

#include "ns3/callback.h"
#include "ns3/object.h"
#include "ns3/traced-callback.h"

#include <cstdint>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * Carries bits between the BS and the devices of a cell (devices numbered 0..N-1).
 */
class ExpertTransport : public Object
{
  public:
    static TypeId GetTypeId();

    /// Which way a transfer goes.
    enum Direction
    {
        DOWNLINK, ///< BS to device
        UPLINK    ///< device to BS
    };

    /**
     * The BS's split of the band for the transfers that follow: device devices[k] gets
     * shares[k] of each pool (the shares sum to at most 1). A transport that schedules the
     * band itself may take it as a hint.
     * \param devices the devices the BS is about to use
     * \param shares their shares, in (0, 1]
     */
    virtual void SetShares(const std::vector<uint32_t>& devices,
                           const std::vector<double>& shares) = 0;

    /**
     * \param device a device given a share by SetShares
     * \return false when the device cannot be reached now (out of coverage): nothing sent to
     *         it would arrive
     */
    virtual bool InCoverage(uint32_t device) = 0;

    /**
     * Carries bits on the device's share and calls arrived when the last bit is there.
     * \param device the device at the other end
     * \param direction DOWNLINK (BS to device) or UPLINK
     * \param bits what is sent (>= 0)
     * \param arrived called once, at the arrival time
     */
    virtual void Send(uint32_t device,
                      Direction direction,
                      double bits,
                      Callback<void> arrived) = 0;

    /**
     * A small control message from the BS to a device (a prefetch hint), on the control
     * channel rather than the device's data share.
     * \param device the device
     * \param bits its size
     * \param arrived called once, at the arrival time
     */
    virtual void SendControl(uint32_t device, double bits, Callback<void> arrived) = 0;

    /// The "Airtime" trace: (device, direction, seconds) each time a transfer leaves the air,
    /// the seconds its device's radio transmitted (UPLINK) or received (DOWNLINK) it. A
    /// transport that cannot tell fires nothing (LinkTransport fires it; see its class).
    typedef void (*AirtimeTracedCallback)(uint32_t device, Direction direction, double seconds);

  protected:
    /// Fires the Airtime trace.
    void NotifyAirtime(uint32_t device, Direction direction, double seconds);

  private:
    TracedCallback<uint32_t, Direction, double> m_airtimeTrace;
};

} // namespace ns3

#endif
