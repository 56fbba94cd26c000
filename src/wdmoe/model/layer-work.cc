#include "layer-work.h"

#include <algorithm>

namespace ns3
{

LayerWork
GroupByDevice(const std::vector<wdmoe::llm::RoutingDecision>& decisions,
              const std::vector<std::vector<int>>& deviceOf,
              std::size_t devices)
{
    LayerWork work;
    work.plans.assign(devices, DeviceWork());
    work.items.assign(devices, {});
    for (std::size_t i = 0; i < decisions.size(); ++i)
    {
        for (std::size_t k = 0; k < decisions[i].experts.size(); ++k)
        {
            const int d = deviceOf[i][k];
            const int e = decisions[i].experts[k];
            DeviceWork& plan = work.plans[d];
            if (work.items[d].empty())
            {
                work.active.push_back(uint32_t(d));
            }
            work.items[d].push_back({int(i), e});
            auto it = std::find(plan.experts.begin(), plan.experts.end(), e);
            if (it == plan.experts.end())
            {
                plan.experts.push_back(e);
                plan.tokensOf.push_back(1);
            }
            else
            {
                ++plan.tokensOf[it - plan.experts.begin()];
            }
        }
    }
    std::sort(work.active.begin(), work.active.end());
    for (uint32_t d : work.active)
    {
        std::vector<bool> tokenSeen(decisions.size(), false);
        for (const auto& item : work.items[d])
        {
            work.plans[d].tokens += !tokenSeen[item.first];
            tokenSeen[item.first] = true;
        }
    }
    return work;
}

std::vector<wdmoe::llm::RoutingDecision>
KeepReturned(const std::vector<wdmoe::llm::RoutingDecision>& decisions,
             const std::vector<std::vector<int>>& deviceOf,
             const std::vector<bool>& returned)
{
    std::vector<wdmoe::llm::RoutingDecision> final(decisions.size());
    for (std::size_t token = 0; token < decisions.size(); ++token)
    {
        const wdmoe::llm::RoutingDecision& chosen = decisions[token];
        wdmoe::llm::RoutingDecision& kept = final[token];
        for (std::size_t k = 0; k < chosen.experts.size(); ++k)
        {
            if (returned[deviceOf[token][k]])
            {
                kept.experts.push_back(chosen.experts[k]);
                kept.weights.push_back(chosen.weights[k]);
            }
        }
        if (!kept.experts.empty() && kept.experts.size() < chosen.experts.size())
        {
            float sum = 0;
            for (float w : kept.weights)
            {
                sum += w;
            }
            for (float& w : kept.weights)
            {
                w /= sum;
            }
        }
    }
    return final;
}

} // namespace ns3
