// What the BS asks of one device for one layer, and what the device reports back with its
// answer.
#ifndef WDMOE_EXPERT_REQUEST_H
#define WDMOE_EXPERT_REQUEST_H

#include "ns3/nstime.h"

#include <memory>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * What one device computes for one layer: its experts and the tokens routed to each.
 */
struct DeviceWork
{
    std::vector<int> experts;  ///< distinct experts, in the order the device runs them
    std::vector<int> tokensOf; ///< tokens routed to each of experts
    int tokens = 0;            ///< distinct tokens whose hidden states travel
};

/**
 * \ingroup wdmoe
 * One layer's work for one device. The BS sends it down (the hidden states of work.tokens
 * tokens), the device runs it and answers (the experts' outputs for those tokens). The device
 * fills in how it went.
 */
struct ExpertRequest
{
    int layer = 0;
    DeviceWork work;

    /// The BS gave up on it (its layer ended at the deadline): a device that has not started it
    /// drops it, and one that has computed it does not answer.
    bool withdrawn = false;

    // Filled in by the device.
    Time receivedAt; ///< when the request arrived
    Time answeredAt; ///< when its answer left
    Time queue;      ///< waiting for the device's earlier work
    Time load;       ///< waiting for experts to load from storage
    Time compute;    ///< the experts' computations
    int hits = 0;    ///< experts found in memory (or already on their way from a prefetch)
    int misses = 0;  ///< experts loaded on demand
};

using ExpertRequestPtr = std::shared_ptr<ExpertRequest>;

} // namespace ns3

#endif
