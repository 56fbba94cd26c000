// The access and protocol overhead of a transfer on the abstract link: slot alignment, an
// uplink scheduling request and grant, HARQ retransmissions of the last transport block, and
// per-packet headers. The default (all off) is the ideal link.
#ifndef WDMOE_ACCESS_OVERHEAD_H
#define WDMOE_ACCESS_OVERHEAD_H

#include "ns3/nstime.h"

#include <cstdint>

namespace ns3
{

/**
 * \ingroup wdmoe
 * What a transfer pays besides its bits on the air. A transfer that may start at `ready`:
 * - waits, if uplink, for its scheduling request and grant (uplinkGrant);
 * - starts at the next slot boundary and occupies whole slots (slot; 0: no slots);
 * - carries its payload split into packets of packetBytes, each with headerBytes of PDCP, RLC,
 *   MAC, IP and UDP headers (packetBytes 0: no packets);
 * - ends after k HARQ retransmissions of its last transport block, each one harqRtt, with
 *   P(k) = bler^k (1 - bler) (the BS predicts the mean, bler / (1 - bler)).
 */
struct AccessOverhead
{
    Time slot;                ///< slot length (numerology mu: 1 ms / 2^mu); 0: none
    Time uplinkGrant;         ///< scheduling request to grant, before an uplink transfer
    double harqBler = 0;      ///< a transport block's first-transmission failure probability
    Time harqRtt;             ///< one HARQ retransmission's round trip
    uint32_t packetBytes = 0; ///< payload per packet; 0: no packetisation
    uint32_t headerBytes = 0; ///< protocol headers per packet

    /// No overhead at all: the link's transfer time is the transfer's.
    bool IsIdeal() const;

    /// The bits on the air: the payload and a header per packet.
    double OnAirBits(double payloadBits) const;

    /// When a transfer ready at `ready` starts: after the grant (uplink), at a slot boundary.
    Time Start(Time ready, bool uplink) const;

    /// The first slot boundary at or after t (t without slots): a transfer whose last bit is
    /// on the air at t has it at this slot's end.
    Time SlotBoundary(Time t) const;

    /// The airtime rounded up to whole slots.
    Time WholeSlots(Time airtime) const;

    /// k retransmissions drawn from a uniform u in (0, 1]: the least k with bler^(k+1) < u.
    uint32_t Retransmissions(double u) const;

    /// The mean number of retransmissions, bler / (1 - bler).
    double ExpectedRetransmissions() const;
};

} // namespace ns3

#endif
