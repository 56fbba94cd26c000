#include "expert-selection.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace ns3
{

namespace
{

/// The first candidate of largest weight.
std::size_t
TopCandidate(const std::vector<double>& weights)
{
    std::size_t top = 0;
    for (std::size_t c = 1; c < weights.size(); ++c)
    {
        if (weights[c] > weights[top])
        {
            top = c;
        }
    }
    return top;
}

} // namespace

std::vector<bool>
SelectWeightToLatency(const std::vector<double>& weights,
                      const std::vector<double>& roundTrips,
                      double theta)
{
    if (weights.size() != roundTrips.size())
    {
        throw std::invalid_argument("SelectWeightToLatency: one round trip per candidate");
    }
    std::vector<bool> keep(weights.size(), true);
    if (weights.empty())
    {
        return keep;
    }
    const std::size_t top = TopCandidate(weights);
    const double bound = theta * weights[top] / roundTrips[top];
    for (std::size_t c = 0; c < weights.size(); ++c)
    {
        // Compared as w_c >= bound * tau_c: no division, so a ratio exactly at the bound stays.
        keep[c] = c == top || weights[c] >= bound * roundTrips[c];
    }
    return keep;
}

std::vector<bool>
SelectStragglers(const std::vector<double>& weights,
                 const LayerLatencyOf& layerLatency,
                 const StragglerBounds& bounds,
                 double layerScale)
{
    std::vector<bool> keep(weights.size(), true);
    if (weights.size() < 2 || bounds.weightMax <= 0)
    {
        return keep;
    }
    const std::size_t top = TopCandidate(weights);
    while (true)
    {
        double kept = 0;
        for (std::size_t c = 0; c < weights.size(); ++c)
        {
            kept += keep[c] ? weights[c] : 0.0;
        }
        const double latency = layerLatency(keep);
        std::size_t best = weights.size();
        double bestGain = 0;
        for (std::size_t c = 0; c < weights.size(); ++c)
        {
            const double share = weights[c] / kept;
            if (!keep[c] || c == top || share > bounds.weightMax)
            {
                continue;
            }
            keep[c] = false;
            const double gain = latency - layerLatency(keep);
            keep[c] = true;
            // Both comparisons multiplied out (no division by the latency), so that values
            // exactly at a bound qualify.
            const bool setsLatency = gain > 0 && gain >= bounds.gainMin * latency;
            const bool worthIt = layerScale * share * share * latency <= bounds.tradeoff * gain;
            if (setsLatency && worthIt && gain >= bestGain)
            {
                best = c;
                bestGain = gain;
            }
        }
        if (best == weights.size())
        {
            return keep;
        }
        keep[best] = false;
    }
}

std::vector<double>
RenormalisedKept(const std::vector<double>& weights, const std::vector<bool>& keep)
{
    double sum = 0;
    for (std::size_t c = 0; c < weights.size(); ++c)
    {
        sum += keep[c] ? weights[c] : 0.0;
    }
    std::vector<double> out;
    for (std::size_t c = 0; c < weights.size(); ++c)
    {
        if (keep[c])
        {
            out.push_back(sum > 0 ? weights[c] / sum : 0.0);
        }
    }
    return out;
}

} // namespace ns3

namespace ns3
{

namespace
{

/// One subset of the candidates, priced.
struct PricedSubset
{
    std::vector<bool> keep;
    double weight = 0;
    double latency = 0;
    double energy = 0;
};

/// The subsets whose kept weight is at least `minWeight`, in subset-mask order.
std::vector<PricedSubset>
HeavyEnoughSubsets(const std::vector<double>& weights, double minWeight)
{
    const std::size_t n = weights.size();
    std::vector<PricedSubset> subsets;
    for (uint32_t mask = 1; mask < (1u << n); ++mask)
    {
        PricedSubset s;
        s.keep.assign(n, false);
        for (std::size_t k = 0; k < n; ++k)
        {
            if (mask & (1u << k))
            {
                s.keep[k] = true;
                s.weight += weights[k];
            }
        }
        // A relative tolerance, so that a bound of exactly the top-1's weight keeps it.
        if (s.weight >= minWeight * (1 - 1e-12))
        {
            subsets.push_back(s);
        }
    }
    return subsets;
}

} // namespace

std::vector<bool>
SelectMinEnergy(const std::vector<double>& weights,
                const LayerLatencyOf& layerLatency,
                const LayerEnergyOf& layerEnergy,
                const EnergyBounds& bounds)
{
    const std::size_t n = weights.size();
    if (n > 16)
    {
        throw std::invalid_argument("SelectMinEnergy: at most 16 candidates, got " +
                                    std::to_string(n));
    }
    if (n <= 1)
    {
        return std::vector<bool>(n, true);
    }
    double total = 0;
    for (double w : weights)
    {
        total += w;
    }
    std::vector<PricedSubset> subsets = HeavyEnoughSubsets(weights, bounds.weightMin * total);
    double fastest = std::numeric_limits<double>::infinity();
    for (PricedSubset& s : subsets)
    {
        s.latency = layerLatency(s.keep);
        fastest = std::min(fastest, s.latency);
    }
    const PricedSubset* best = nullptr;
    for (PricedSubset& s : subsets)
    {
        if (s.latency > (1 + bounds.latencySlack) * fastest)
        {
            continue;
        }
        s.energy = layerEnergy(s.keep);
        const bool better =
            !best || s.energy < best->energy ||
            (s.energy == best->energy &&
             (s.weight > best->weight || (s.weight == best->weight && s.latency < best->latency)));
        best = better ? &s : best;
    }
    return best ? best->keep : std::vector<bool>(n, true);
}

} // namespace ns3
