#include "confidence-interval.h"

#include "ns3/rng-stream.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ns3
{

namespace
{

void
CheckLevel(double level)
{
    if (!(level > 0 && level < 1))
    {
        throw std::invalid_argument("confidence level must be in (0, 1), got " +
                                    std::to_string(level));
    }
}

double
Mean(const std::vector<double>& values)
{
    double sum = 0;
    for (double v : values)
    {
        sum += v;
    }
    return sum / double(values.size());
}

} // namespace

bool
Interval::ExcludesZero() const
{
    return (low > 0 && high > 0) || (low < 0 && high < 0);
}

double
Quantile(std::vector<double> values, double q)
{
    if (values.empty())
    {
        throw std::invalid_argument("Quantile: no values");
    }
    std::sort(values.begin(), values.end());
    const double rank = std::clamp(q, 0.0, 1.0) * double(values.size() - 1);
    const std::size_t lo = std::size_t(std::floor(rank));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (rank - double(lo)) * (values[hi] - values[lo]);
}

Interval
StudentInterval(const std::vector<double>& values, double level)
{
    CheckLevel(level);
    if (values.empty())
    {
        throw std::invalid_argument("StudentInterval: no values");
    }
    Interval out;
    out.samples = values.size();
    out.mean = Mean(values);
    if (values.size() < 2)
    {
        out.low = out.high = std::numeric_limits<double>::quiet_NaN();
        return out;
    }
    double squares = 0;
    for (double v : values)
    {
        squares += (v - out.mean) * (v - out.mean);
    }
    const double n = double(values.size());
    const double standardError = std::sqrt(squares / (n - 1) / n);
    const boost::math::students_t t(n - 1);
    const double half = boost::math::quantile(t, (1 + level) / 2) * standardError;
    out.low = out.mean - half;
    out.high = out.mean + half;
    return out;
}

Interval
BootstrapInterval(const std::vector<double>& samples,
                  int resamples,
                  uint32_t seed,
                  uint64_t stream,
                  double level)
{
    CheckLevel(level);
    if (samples.empty() || resamples < 2)
    {
        throw std::invalid_argument("BootstrapInterval: needs samples and at least 2 resamples");
    }
    RngStream rng(seed, stream, 0);
    const std::size_t n = samples.size();
    std::vector<double> means(static_cast<std::size_t>(resamples));
    for (double& m : means)
    {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i)
        {
            // RandU01 is in (0, 1): the index is in [0, n).
            sum += samples[std::min(n - 1, std::size_t(rng.RandU01() * double(n)))];
        }
        m = sum / double(n);
    }
    Interval out;
    out.samples = n;
    out.mean = Mean(samples);
    out.low = Quantile(means, (1 - level) / 2);
    out.high = Quantile(means, (1 + level) / 2);
    return out;
}

} // namespace ns3
