// The closed-form link as a transport: a transfer takes the time WdmoeChannel gives for its
// bits on the device's slice of the band (rate from the SNR, walked over fading blocks).
#ifndef WDMOE_LINK_TRANSPORT_H
#define WDMOE_LINK_TRANSPORT_H

#include "bandwidth-slices.h"
#include "expert-transport.h"
#include "wdmoe-channel.h"

#include "ns3/ptr.h"

namespace ns3
{

/**
 * \ingroup wdmoe
 * ExpertTransport over WdmoeChannel: device d's slice is its share of the band plan's pools;
 * a transfer of b bits starting at t lasts WdmoeChannel::TransferTime(d, direction, b, slice,
 * t). A control message goes on an equal share of the downlink at the rate of its start.
 */
class LinkTransport : public ExpertTransport
{
  public:
    static TypeId GetTypeId();
    LinkTransport();

    /// The links (device d is the channel's device d) and the pools they share.
    void SetChannel(Ptr<WdmoeChannel> channel, const BandPlan& band);

    void SetShares(const std::vector<uint32_t>& devices,
                   const std::vector<double>& shares) override;
    bool InCoverage(uint32_t device) override;
    void Send(uint32_t device, Direction direction, double bits, Callback<void> arrived) override;
    void SendControl(uint32_t device, double bits, Callback<void> arrived) override;

  protected:
    void DoDispose() override;

  private:
    Ptr<WdmoeChannel> m_channel;
    BandPlan m_band{DuplexMode::SHARED, 0, 0};
    std::vector<double> m_share; ///< by device: its share of each pool
    double m_minRateBps;         ///< coverage floor
};

} // namespace ns3

#endif
