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

namespace
{

/// The bisection of MinMaxShares on the target latency T: per device, brackets of its minimal
/// share s_i(T) valid for every T in (lo, hi) (RT_i(infeasible[i]) > hi or infeasible[i] = 0;
/// RT_i(feasible[i]) <= lo, as every device meets lo with the whole band). They narrow as the
/// target does, so later inner searches start from a smaller interval.
class MinMaxSearch
{
  public:
    MinMaxSearch(const std::vector<RoundTripOfShare>& roundTrip, double relativeTolerance)
        : m_roundTrip(roundTrip),
          m_n(roundTrip.size()),
          m_innerTolerance(relativeTolerance * kInnerToOuterTolerance),
          m_infeasible(m_n, 0.0),
          m_feasible(m_n, 1.0),
          m_lower(m_n),
          m_upper(m_n)
    {
    }

    /// One step of either search: a feasible target becomes the upper bound (its shares the
    /// best so far), an infeasible one the lower bound.
    bool TryTarget(double target, MinMaxAllocation& result, double& lo, double& hi)
    {
        ++result.bisections;
        if (MinimalShares(target) <= 1.0)
        {
            hi = target;
            best = m_upper;
            m_infeasible = m_lower;
            return true;
        }
        lo = target;
        NarrowFeasible();
        return false;
    }

    std::vector<double> best; ///< the shares of the best feasible target so far

  private:
    /// Fills m_lower/m_upper with each device's bracket of s_i(target) and returns the sum of
    /// the feasible ends (a device that misses the target with its whole band counts as 2).
    double MinimalShares(double target)
    {
        double sum = 0.0;
        for (std::size_t i = 0; i < m_n; ++i)
        {
            double a = m_infeasible[i];
            double b = m_feasible[i];
            if (!(m_roundTrip[i](b) <= target))
            {
                // Only a function that is not non-increasing gets here.
                a = b = 2.0;
            }
            for (int k = 0; k < kMaxInnerBisections && b - a > m_innerTolerance * b; ++k)
            {
                const double m = a + 0.5 * (b - a);
                if (m_roundTrip[i](m) <= target)
                {
                    b = m;
                }
                else
                {
                    a = m;
                }
            }
            m_lower[i] = a;
            m_upper[i] = b;
            sum += b;
        }
        return sum;
    }

    /// After an infeasible target (the new lo): every device met it with its upper end.
    void NarrowFeasible()
    {
        for (std::size_t i = 0; i < m_n; ++i)
        {
            if (m_upper[i] <= 1.0)
            {
                m_feasible[i] = m_upper[i];
            }
        }
    }

    const std::vector<RoundTripOfShare>& m_roundTrip;
    std::size_t m_n;
    double m_innerTolerance;
    std::vector<double> m_infeasible;
    std::vector<double> m_feasible;
    std::vector<double> m_lower;
    std::vector<double> m_upper;
};

} // namespace

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
    MinMaxSearch search(roundTrip, relativeTolerance);
    search.best = EqualShares(n);
    double lo = MaxRoundTrip(roundTrip, std::vector<double>(n, 1.0));
    double hi = MaxRoundTrip(roundTrip, search.best);
    bool finite = std::isfinite(lo);
    if (finite && !std::isfinite(hi))
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
            found = search.TryTarget(target, result, lo, hi);
        }
        finite = found;
    }
    if (!finite)
    {
        // Some device cannot finish even with the whole band (or no finite target was found):
        // no target helps.
        result.shares = search.best;
        result.roundTrip = hi;
        return result;
    }
    while (hi - lo > relativeTolerance * lo && result.bisections < kMaxOuterBisections)
    {
        search.TryTarget(lo + 0.5 * (hi - lo), result, lo, hi);
    }
    // The band the minimal shares leave over goes to everyone in proportion, which can only
    // shorten each round trip.
    double sum = 0.0;
    for (double s : search.best)
    {
        sum += s;
    }
    for (double& s : search.best)
    {
        s /= sum;
    }
    result.shares = search.best;
    result.roundTrip = MaxRoundTrip(roundTrip, search.best);
    return result;
}

} // namespace ns3
