// Band splitting among the devices of a layer: equal, proportional and min-max (nested
// bisections). DESIGN.md section 5.
#include "bandwidth-allocation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ns3
{

namespace
{

/// Caps on the bisection loops, so that a function that is not monotone (or a tolerance too
/// small for double precision) cannot hang the caller.
constexpr int kMaxOuterBisections = 200;
constexpr int kMaxInnerBisections = 100;

/// The inner searches are this much finer than the outer one, so that a share found slightly
/// too large (which can make a feasible target look infeasible) moves the target by far less
/// than relativeTolerance.
constexpr double kInnerToOuterTolerance = 1e-2;

/// Largest round trip of the devices under the given shares.
double
MaxRoundTrip(const std::vector<RoundTripOfShare>& roundTrip, const std::vector<double>& shares)
{
    double worst = 0.0;
    for (std::size_t i = 0; i < roundTrip.size(); ++i)
    {
        const double t = roundTrip[i](shares[i]);
        // NaN counts as infinitely slow.
        worst = std::isnan(t) ? INFINITY : std::max(worst, t);
    }
    return worst;
}

} // namespace

std::vector<double>
EqualShares(std::size_t n)
{
    return std::vector<double>(n, n == 0 ? 0.0 : 1.0 / double(n));
}

std::vector<double>
ProportionalShares(const std::vector<double>& loads)
{
    if (loads.empty())
    {
        throw std::invalid_argument("proportional shares: no loads given");
    }
    double largest = 0.0;
    for (std::size_t i = 0; i < loads.size(); ++i)
    {
        if (!(loads[i] > 0.0) || !std::isfinite(loads[i]))
        {
            throw std::invalid_argument("proportional shares: load " + std::to_string(i) + " is " +
                                        std::to_string(loads[i]) +
                                        "; every load must be positive and finite");
        }
        largest = std::max(largest, loads[i]);
    }
    // Scaled by the largest load so that the sum cannot overflow.
    double sum = 0.0;
    for (double l : loads)
    {
        sum += l / largest;
    }
    std::vector<double> shares;
    shares.reserve(loads.size());
    for (double l : loads)
    {
        shares.push_back(l / largest / sum);
    }
    return shares;
}

MinMaxAllocation
MinMaxShares(const std::vector<RoundTripOfShare>& roundTrip, double relativeTolerance)
{
    const std::size_t n = roundTrip.size();
    if (n == 0)
    {
        throw std::invalid_argument("minmax shares: no devices given");
    }
    if (!(relativeTolerance > 0.0) || !std::isfinite(relativeTolerance))
    {
        throw std::invalid_argument("minmax shares: relativeTolerance must be positive and finite");
    }
    MinMaxAllocation result;
    if (n == 1)
    {
        result.shares = {1.0};
        result.roundTrip = roundTrip[0](1.0);
        return result;
    }

    // lo: nobody can beat its round trip with the whole band, so max_i RT_i(1) is a lower
    // bound. hi: equal shares are a feasible allocation.
    std::vector<double> best = EqualShares(n);
    double lo = MaxRoundTrip(roundTrip, std::vector<double>(n, 1.0));
    double hi = MaxRoundTrip(roundTrip, best);

    // Per device, brackets of its minimal share s_i(T) valid for every T in (lo, hi):
    // RT_i(infeasible[i]) > hi (or infeasible[i] = 0) and RT_i(feasible[i]) <= lo (every device
    // meets lo with the whole band). They narrow as the target does, so later inner searches
    // start from a smaller interval.
    std::vector<double> infeasible(n, 0.0);
    std::vector<double> feasible(n, 1.0);
    std::vector<double> lower(n);
    std::vector<double> upper(n);
    const double innerTolerance = relativeTolerance * kInnerToOuterTolerance;

    // Fills lower/upper with each device's bracket of s_i(target) and returns the sum of the
    // feasible ends (a device that misses the target with its whole band counts as 2).
    auto minimalShares = [&](double target) {
        double sum = 0.0;
        for (std::size_t i = 0; i < n; ++i)
        {
            double a = infeasible[i];
            double b = feasible[i];
            if (!(roundTrip[i](b) <= target))
            {
                // Only a function that is not non-increasing gets here.
                a = b = 2.0;
            }
            for (int k = 0; k < kMaxInnerBisections && b - a > innerTolerance * b; ++k)
            {
                const double m = a + 0.5 * (b - a);
                if (roundTrip[i](m) <= target)
                {
                    b = m;
                }
                else
                {
                    a = m;
                }
            }
            lower[i] = a;
            upper[i] = b;
            sum += b;
        }
        return sum;
    };

    // After an infeasible target (the new lo): every device met it with its upper end.
    auto narrowFeasible = [&]() {
        for (std::size_t i = 0; i < n; ++i)
        {
            if (upper[i] <= 1.0)
            {
                feasible[i] = upper[i];
            }
        }
    };

    if (!std::isfinite(lo))
    {
        // Some device cannot finish even with the whole band: no target helps.
        result.shares = best;
        result.roundTrip = hi;
        return result;
    }
    // One step of either search: a feasible target becomes the upper bound (its shares the
    // best so far), an infeasible one the lower bound.
    auto tryTarget = [&](double target) {
        ++result.bisections;
        if (minimalShares(target) <= 1.0)
        {
            hi = target;
            best = upper;
            infeasible = lower;
            return true;
        }
        lo = target;
        narrowFeasible();
        return false;
    };
    if (!std::isfinite(hi))
    {
        // A device needs more than an equal share to finish at all: find a finite feasible
        // target by doubling before bisecting.
        double target = std::max(lo, std::numeric_limits<double>::min());
        bool found = false;
        for (int k = 0; k < kMaxOuterBisections && !found; ++k)
        {
            target *= 2.0;
            if (!std::isfinite(target))
            {
                break;
            }
            found = tryTarget(target);
        }
        if (!found)
        {
            result.shares = best;
            result.roundTrip = hi;
            return result;
        }
    }

    while (hi - lo > relativeTolerance * lo && result.bisections < kMaxOuterBisections)
    {
        tryTarget(lo + 0.5 * (hi - lo));
    }

    // The band the minimal shares leave over goes to everyone in proportion, which can only
    // shorten each round trip.
    double sum = 0.0;
    for (double s : best)
    {
        sum += s;
    }
    for (double& s : best)
    {
        s /= sum;
    }
    result.shares = best;
    result.roundTrip = MaxRoundTrip(roundTrip, best);
    return result;
}

} // namespace ns3
