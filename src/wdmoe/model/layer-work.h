// One layer's expert work grouped by the device that serves it.
#ifndef WDMOE_LAYER_WORK_H
#define WDMOE_LAYER_WORK_H

#include "expert-request.h"
#include "routing.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * The experts of one layer's routing decisions grouped by device: what each device computes
 * and which (token, expert) pairs it serves.
 */
struct LayerWork
{
    std::vector<DeviceWork> plans;                       ///< by device
    std::vector<std::vector<std::pair<int, int>>> items; ///< by device: (token, expert) pairs
    std::vector<uint32_t> active;                        ///< devices with work, ascending
};

/// decisions[i].experts[k] runs on device deviceOf[i][k] (of `devices`): each device's distinct
/// experts in first-use order, the tokens routed to each, and the distinct tokens it receives.
LayerWork GroupByDevice(const std::vector<wdmoe::llm::RoutingDecision>& decisions,
                        const std::vector<std::vector<int>>& deviceOf,
                        std::size_t devices);

/// The decisions with only the experts whose device came back (returned[device]), in each
/// decision's order; the weights of a token that lost some are renormalised to sum to one (a
/// token that lost none keeps its weights bit for bit; one that lost all has none).
std::vector<wdmoe::llm::RoutingDecision> KeepReturned(
    const std::vector<wdmoe::llm::RoutingDecision>& decisions,
    const std::vector<std::vector<int>>& deviceOf,
    const std::vector<bool>& returned);

} // namespace ns3

#endif
