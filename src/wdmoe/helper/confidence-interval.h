// Confidence intervals for the numbers people cite (DESIGN.md section 8): a mean across runs
// (Student's t) and a mean over paired per-token differences (percentile bootstrap).
#ifndef WDMOE_CONFIDENCE_INTERVAL_H
#define WDMOE_CONFIDENCE_INTERVAL_H

#include <cstdint>
#include <vector>

namespace ns3
{

/// A mean and the ends of its confidence interval. With fewer than two samples the interval is
/// unknown: low and high are NaN.
struct Interval
{
    double mean = 0;
    double low = 0;
    double high = 0;
    std::size_t samples = 0;

    /// True when the interval lies entirely below (or entirely above) zero.
    bool ExcludesZero() const;

    /// The interval of f(mean) for an increasing f (percentile intervals map through it).
    template <typename F>
    Interval Map(F f) const
    {
        return {f(mean), f(low), f(high), samples};
    }
};

/// The mean of values and its two-sided Student-t interval at `level` (n - 1 degrees of
/// freedom): mean +- t * s / sqrt(n). Throws std::invalid_argument for no values or a level
/// outside (0, 1).
Interval StudentInterval(const std::vector<double>& values, double level = 0.95);

/// The mean of samples and its percentile bootstrap interval at `level`: `resamples` means of
/// n draws with replacement, the (1 - level) / 2 and (1 + level) / 2 quantiles of those means
/// (linear interpolation between order statistics). The draws come from ns-3's RngStream
/// (MRG32k3a) with the given seed and stream, so the interval is reproducible. Throws
/// std::invalid_argument for no samples, fewer than 2 resamples or a bad level.
Interval BootstrapInterval(const std::vector<double>& samples,
                           int resamples,
                           uint32_t seed,
                           uint64_t stream,
                           double level = 0.95);

/// The q-quantile (0 <= q <= 1) of values by linear interpolation between order statistics
/// (numpy's default); values need not be sorted. Throws std::invalid_argument when empty.
double Quantile(std::vector<double> values, double q);

} // namespace ns3

#endif
