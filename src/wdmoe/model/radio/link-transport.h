// The closed-form link as a transport: a transfer takes the time WdmoeChannel gives for its
// bits on the device's slice of the band (rate from the SNR, walked over fading blocks).
#ifndef WDMOE_LINK_TRANSPORT_H
#define WDMOE_LINK_TRANSPORT_H

#include "access-overhead.h"
#include "bandwidth-slices.h"
#include "expert-transport.h"
#include "wdmoe-channel.h"

#include "ns3/ptr.h"
#include "ns3/random-variable-stream.h"

#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * ExpertTransport over WdmoeChannel: device d's slice is its share of the band plan's pools;
 * a transfer of b bits starting at t lasts WdmoeChannel::TransferTime(d, direction, b, slice,
 * t). A control message goes on an equal share of the downlink at the rate of its start.
 * With an AccessOverhead, a transfer starts after the uplink grant at a slot boundary, carries
 * its packets' headers, occupies whole slots and ends after its drawn HARQ retransmissions.
 */
class LinkTransport : public ExpertTransport
{
  public:
    static TypeId GetTypeId();
    LinkTransport();

    /// The links (device d is the channel's device d) and the pools they share.
    void SetChannel(Ptr<WdmoeChannel> channel, const BandPlan& band);
    /// Slots, grants, HARQ and headers (default: none). Call after SetChannel.
    void SetAccessOverhead(const AccessOverhead& access);
    /// The HARQ draws: stream + 2 d (downlink of device d) and + 2 d + 1 (uplink); none without
    /// HARQ. Returns the number of streams used.
    int64_t AssignStreams(int64_t stream);

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
    AccessOverhead m_access;
    /// HARQ draws by device and direction (2 d + direction); empty without HARQ.
    std::vector<Ptr<UniformRandomVariable>> m_harq;

    /// The airtime of `bits` from `start` with the access overhead; Time::Max() when never.
    Time Transfer(uint32_t device, Direction direction, double bits, Time ready);
};

} // namespace ns3

#endif
