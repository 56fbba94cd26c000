#include "decode-selection.h"

#include "expert-selection.h"

#include <algorithm>
#include <stdexcept>

namespace ns3
{

using wdmoe::llm::RoutingDecision;

std::vector<double>
AllocateShares(BandwidthAllocationRule& rule, const LayerWork& work, const WorkRoundTrip& roundTrip)
{
    if (work.active.empty())
    {
        return {};
    }
    std::vector<RoundTripOfShare> ofShare;
    for (uint32_t d : work.active)
    {
        ofShare.push_back(
            [&work, &roundTrip, d](double share) { return roundTrip(d, work.plans[d], share); });
    }
    const std::vector<double> shares = rule.Allocate(ofShare);
    if (shares.size() != work.active.size())
    {
        throw std::logic_error("the allocation rule gave " + std::to_string(shares.size()) +
                               " shares for " + std::to_string(work.active.size()) + " devices");
    }
    return shares;
}

namespace
{

/// The candidates of one decode token, priced as subsets.
class Candidates
{
  public:
    Candidates(const InferencePolicy& policy,
               const RoutingDecision& gated,
               const std::vector<int>& deviceOf,
               std::size_t devices,
               const WorkRoundTrip& roundTrip)
        : m_policy(policy),
          m_gated(gated),
          m_deviceOf(deviceOf),
          m_devices(devices),
          m_roundTrip(roundTrip)
    {
    }

    /// The work of the token if only its kept candidates ran.
    LayerWork WorkOf(const std::vector<bool>& keep) const
    {
        std::vector<RoutingDecision> subset(1);
        std::vector<std::vector<int>> deviceOf(1);
        for (std::size_t k = 0; k < keep.size(); ++k)
        {
            if (keep[k])
            {
                subset[0].experts.push_back(m_gated.experts[k]);
                subset[0].weights.push_back(m_gated.weights[k]);
                deviceOf[0].push_back(m_deviceOf[k]);
            }
        }
        return GroupByDevice(subset, deviceOf, m_devices);
    }

    /// The layer's predicted latency if only the kept candidates ran, with the band allocated
    /// among their devices by the policy's rule: the slowest device's round trip.
    double LayerLatency(const std::vector<bool>& keep) const
    {
        const LayerWork work = WorkOf(keep);
        const std::vector<double> shares = Shares(work);
        double slowest = 0;
        for (std::size_t k = 0; k < work.active.size(); ++k)
        {
            const uint32_t d = work.active[k];
            slowest = std::max(slowest, m_roundTrip(d, work.plans[d], shares[k]));
        }
        return slowest;
    }

    /// The devices' predicted energy if only the kept candidates ran, the band allocated as
    /// for LayerLatency.
    double LayerEnergy(const std::vector<bool>& keep, const WorkEnergy& energy) const
    {
        const LayerWork work = WorkOf(keep);
        const std::vector<double> shares = Shares(work);
        double joules = 0;
        for (std::size_t k = 0; k < work.active.size(); ++k)
        {
            const uint32_t d = work.active[k];
            joules += energy(d, work.plans[d], shares[k]);
        }
        return joules;
    }

    /// Each candidate's round trip under the allocation of the selection `keep`; a candidate
    /// outside it is priced on the share it would get as one more device of an equal split.
    std::vector<double> RoundTrips(const std::vector<bool>& keep) const
    {
        const std::size_t n = keep.size();
        const LayerWork work = WorkOf(keep);
        const std::vector<double> shares = Shares(work);
        std::vector<double> tau(n);
        for (std::size_t k = 0; k < n; ++k)
        {
            const uint32_t d = uint32_t(m_deviceOf[k]);
            const auto at = std::find(work.active.begin(), work.active.end(), d);
            if (at != work.active.end())
            {
                tau[k] = m_roundTrip(d, work.plans[d], shares[at - work.active.begin()]);
                continue;
            }
            std::vector<bool> alone(n, false);
            alone[k] = true;
            tau[k] = m_roundTrip(d, WorkOf(alone).plans[d], 1.0 / (work.active.size() + 1));
        }
        return tau;
    }

  private:
    std::vector<double> Shares(const LayerWork& work) const
    {
        return AllocateShares(*m_policy.allocationRule, work, m_roundTrip);
    }

    const InferencePolicy& m_policy;
    const RoutingDecision& m_gated;
    const std::vector<int>& m_deviceOf;
    std::size_t m_devices;
    const WorkRoundTrip& m_roundTrip;
};

} // namespace

DecodeSelection
SelectDecodeExperts(const InferencePolicy& policy,
                    const RoutingDecision& candidates,
                    const std::vector<int>& deviceOf,
                    uint32_t layer,
                    std::size_t devices,
                    const WorkRoundTrip& roundTrip,
                    const WorkEnergy& energy)
{
    const Candidates priced(policy, candidates, deviceOf, devices, roundTrip);
    const std::size_t n = candidates.experts.size();
    const std::vector<double> weights(candidates.weights.begin(), candidates.weights.end());
    std::vector<bool> keep(n, true);
    SelectionContext context;
    context.layer = layer;
    context.layerScale =
        policy.stragglerLayerScale.empty() ? 1.0 : policy.stragglerLayerScale[layer];
    context.roundTrips = [&priced, &keep]() { return priced.RoundTrips(keep); };
    context.layerLatency = [&priced](const std::vector<bool>& k) { return priced.LayerLatency(k); };
    context.layerEnergy = [&priced, &energy](const std::vector<bool>& k) {
        if (!energy)
        {
            throw std::logic_error("the selection rule asks for energy predictions, and this run "
                                   "has none (a device profile without energy fields)");
        }
        return priced.LayerEnergy(k, energy);
    };
    DecodeSelection selection;
    const int maxRounds = policy.Joint() ? std::max(1, policy.jointMaxIterations) : 1;
    while (selection.rounds < maxRounds)
    {
        ++selection.rounds;
        const std::vector<bool> next = policy.selectionRule->Select(weights, context);
        if (next.size() != n || (n > 0 && std::find(next.begin(), next.end(), true) == next.end()))
        {
            throw std::logic_error("the selection rule must keep at least one of its " +
                                   std::to_string(n) + " candidates");
        }
        if (next == keep)
        {
            break;
        }
        keep = next;
    }
    if (std::find(keep.begin(), keep.end(), false) == keep.end())
    {
        selection.decision = candidates; // nothing dropped: the gating's weights stand
        selection.deviceOf = deviceOf;
        return selection;
    }
    const std::vector<double> kept = RenormalisedKept(weights, keep);
    for (std::size_t k = 0, j = 0; k < n; ++k)
    {
        if (keep[k])
        {
            selection.decision.experts.push_back(candidates.experts[k]);
            selection.decision.weights.push_back(float(kept[j++]));
            selection.deviceOf.push_back(deviceOf[k]);
        }
    }
    return selection;
}

} // namespace ns3
