// The closed-form link as a transport: a transfer takes the time WdmoeChannel gives for its
// bits on the device's slice of its pool (rate from the SNR, walked over fading blocks); the
// pool is shared statically or work-conserving (BandwidthPool).
#ifndef WDMOE_LINK_TRANSPORT_H
#define WDMOE_LINK_TRANSPORT_H

#include "access-overhead.h"
#include "bandwidth-pool.h"
#include "bandwidth-slices.h"
#include "expert-transport.h"
#include "wdmoe-channel.h"

#include "ns3/ptr.h"
#include "ns3/random-variable-stream.h"

#include <memory>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * ExpertTransport over WdmoeChannel. The band plan's pools (shared: one pool for both
 * directions; FDD: a downlink pool and an uplink pool) are each a BandwidthPool: device d's
 * transfers in a pool go one after the other on its slice, which is its share of the pool
 * (SetShares, as of the transfer's Send) or, with WorkConserving, that share scaled up so that
 * the devices sending in the pool use all of it.
 *
 * A transfer of b payload bits sent at t, with an AccessOverhead:
 * 1. waits, if uplink, for its grant, then for the next slot boundary (AccessOverhead::Start);
 * 2. enters its pool there with b plus its packets' headers on the air (AccessOverhead::OnAirBits),
 *    behind its device's earlier transfers in that pool;
 * 3. its bits are through at t_b (the pool's walk of the fading blocks on its slice, as the
 *    slice changes);
 * 4. arrives at the end of the slot holding its last bit (AccessOverhead::SlotBoundary(t_b))
 *    plus its drawn HARQ retransmissions, which delay it but occupy no pool.
 * Without overhead it arrives at t_b. With WorkConserving false and one transfer per device and
 * pool at a time, this is exactly start + WholeSlots(TransferTime(...)) + retransmissions.
 *
 * A prefetch hint (SendControl) is, with HintAirtime, a downlink transfer like any other (same
 * path as Send, its own HARQ stream); without, it arrives after bits / rate on an equal share
 * of the downlink at the rate of its start and occupies nothing.
 *
 * Airtime (the trace radio energy is booked from): each transfer's seconds on the air in its
 * pool, from going on the air (behind its device's earlier transfers) to its bits being
 * through, counting only its direction's symbols under TDD; not the grant and slot waits, and
 * not HARQ retransmissions (delay here, on no pool). A hint without HintAirtime has none.
 */
class LinkTransport : public ExpertTransport
{
  public:
    static TypeId GetTypeId();
    LinkTransport();

    /// The links (device d is the channel's device d) and the pools they share. Set the
    /// attributes (WorkConserving) first.
    void SetChannel(Ptr<WdmoeChannel> channel, const BandPlan& band);
    /// Slots, grants, HARQ and headers (default: none). Call after SetChannel.
    void SetAccessOverhead(const AccessOverhead& access);
    /// The HARQ draws: stream + 2 d (downlink of device d) and + 2 d + 1 (uplink), then, with
    /// HintAirtime, stream + 2 N + d (device d's hints); none without HARQ. Returns the number
    /// of streams used.
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
    bool m_workConserving;       ///< idle slices go to the running transfers
    bool m_hintAirtime;          ///< hints are downlink transfers in the pool
    AccessOverhead m_access;
    /// HARQ draws: device d's downlink 2 d, uplink 2 d + 1, hints 2 N + d; empty without HARQ.
    std::vector<Ptr<UniformRandomVariable>> m_harq;
    /// The pools: shared, [0] for both directions; FDD, [0] downlink and [1] uplink.
    std::vector<std::unique_ptr<BandwidthPool>> m_pools;

    /// A transfer of payload `bits` from now: the grant and slot wait, then its pool.
    void Transmit(uint32_t device,
                  WdmoeChannel::Direction direction,
                  double bits,
                  uint32_t harqStream,
                  Callback<void> arrived);
    /// Puts a transfer whose start has come into its pool.
    void Enter(uint32_t device,
               WdmoeChannel::Direction direction,
               double onAirBits,
               double share,
               uint32_t harqStream,
               Callback<void> arrived);
    /// Its bits are through now: it arrives at the slot's end, after its retransmissions.
    void Through(uint32_t harqStream, Callback<void> arrived);
    /// A pool's transfer left the air: the Airtime trace.
    void OnAir(uint32_t device, WdmoeChannel::Direction direction, double seconds);
};

} // namespace ns3

#endif
