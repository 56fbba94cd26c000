/*
 * Channel-aware expert placement: the most used experts on the devices with the best expected
 * channel and compute ("edge nodes with good channel conditions are preferred when placing
 * frequently used experts", WDMoE's placement as the follow-up work describes it), with copies
 * of the most used experts in the memory left. Plain C++17; no ns-3 header.
 */
#ifndef WDMOE_CHANNEL_AWARE_PLACEMENT_H
#define WDMOE_CHANNEL_AWARE_PLACEMENT_H

#include "expert-placement.h"

#include <vector>

namespace ns3
{

/**
 * Devices ranked by deviceCost (their expected round trip: channel and compute), cheapest
 * first, ties by index; each layer's experts ranked by popularity, most used first, ties by
 * index (no popularity: index order). At every layer the expert of rank r goes to the device of
 * rank r mod N or, when that device is full, to the next one in rank order with room: a
 * layer's hottest expert sits on the best device, its next on the second best, so a layer's
 * top-k experts run in parallel on the best devices, and a device with less room (a phone)
 * simply takes fewer. With problem.replicas, copy rounds then offer every pair, most used
 * first over all layers, one copy on the best-ranked device with room that does not hold it;
 * rounds repeat until a round places nothing, so every device ends up holding
 * min(capacity, layers * experts) experts and the most used experts have copies on the best
 * devices. loadPenalty is not used. Throws std::invalid_argument for a malformed problem or too
 * little total capacity.
 */
ExpertPlacement PlaceChannelAware(const PlacementProblem& problem);

/// The device indices ordered by deviceCost, cheapest first (ties: lower index first).
std::vector<int> DevicesByCost(const std::vector<double>& deviceCost);

} // namespace ns3

#endif // WDMOE_CHANNEL_AWARE_PLACEMENT_H
