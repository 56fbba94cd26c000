// The layer latency of hand-made selection tests: the layer waits for its slowest kept candidate.
#ifndef WDMOE_TEST_SLOWEST_OF_H
#define WDMOE_TEST_SLOWEST_OF_H

#include "expert-selection.h"

#include <algorithm>
#include <vector>

namespace wdmoe
{
namespace test
{

/// The layer waits for its slowest kept candidate.
inline ns3::LayerLatencyOf
SlowestOf(const std::vector<double>& roundTrips)
{
    return [roundTrips](const std::vector<bool>& keep) {
        double slowest = 0;
        for (std::size_t c = 0; c < keep.size(); ++c)
        {
            slowest = keep[c] ? std::max(slowest, roundTrips[c]) : slowest;
        }
        return slowest;
    };
}

} // namespace test
} // namespace wdmoe

#endif
