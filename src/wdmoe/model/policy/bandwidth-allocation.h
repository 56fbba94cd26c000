// How the BS splits the band among the devices a layer uses: equal, proportional to load, or
// min-max (the slowest device's round trip as short as the band allows). DESIGN.md section 5.
#ifndef WDMOE_BANDWIDTH_ALLOCATION_H
#define WDMOE_BANDWIDTH_ALLOCATION_H

#include <functional>
#include <string>
#include <vector>

namespace ns3
{

/// The rules a scenario can name.
enum class AllocationRule
{
    EQUAL,
    PROPORTIONAL,
    MINMAX,
    JOINT ///< minmax alternated with expert selection: the application runs that loop
};

/// A device's predicted round trip (s) when it gets the fraction `share` in (0, 1] of the band:
/// of the one pool in shared duplex, of each pool in FDD. Must be non-increasing in share.
using RoundTripOfShare = std::function<double(double share)>;

/// n shares of 1/n each (empty for n = 0).
std::vector<double> EqualShares(std::size_t n);

/// Shares proportional to loads (each > 0, finite), summing to 1. Throws std::invalid_argument
/// for an empty list or a load that is not positive and finite.
std::vector<double> ProportionalShares(const std::vector<double>& loads);

struct MinMaxAllocation
{
    std::vector<double> shares; ///< per device, summing to 1
    double roundTrip = 0;       ///< the largest predicted round trip under shares (s)
    int bisections = 0;         ///< iterations of the outer bisection on the target latency
};

/// Minimises max_i roundTrip[i](share_i) subject to sum share_i = 1: bisection on the target
/// latency T between the largest round trip with the whole band (a lower bound) and the largest
/// with equal shares (feasible); for each T every device's minimal share with roundTrip <= T is
/// found by its own bisection on (0, 1] (a device that misses T with the whole band makes T
/// infeasible); T is feasible when those shares sum to at most 1. The search stops when
/// hi - lo <= relativeTolerance * lo (at most 200 outer and 100 inner steps, so a function that
/// is not monotone cannot hang it). The band left at the final feasible T is handed out in
/// proportion to the shares, so they sum to 1 up to rounding. relativeTolerance bounds the gap
/// between the returned max round trip and the optimum, relative to the optimum (the inner
/// searches are 100 times finer). One device gets the whole band. When a device's round trip
/// with an equal share is infinite, a finite feasible target is first found by doubling; when
/// some device's round trip is infinite or NaN even with the whole band, the equal split is
/// returned (roundTrip then infinite). Throws std::invalid_argument for an empty list or a
/// relativeTolerance that is not positive and finite.
MinMaxAllocation MinMaxShares(const std::vector<RoundTripOfShare>& roundTrip,
                              double relativeTolerance = 1e-6);

} // namespace ns3

#endif
