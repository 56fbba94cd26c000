#include "wdmoe-helper.h"

#include "cache-allocation.h"
#include "latency-predictor.h"
#include "mixtral-model.h"

#include "ns3/double.h"
#include "ns3/mobility-model.h"
#include "ns3/simulator.h"

#include <optional>
#include <stdexcept>

namespace ns3
{

namespace
{

/// Memory slots per layer of one device: each layer's LRU holds at most the experts the device
/// hosts there; uniform water filling, or AdapMoE's DP on the expected on-demand loads.
std::vector<int>
MemorySlotsOf(const std::vector<int>& hosted,
              int memorySlots,
              int experts,
              int topK,
              CacheAllocationRule rule,
              const wdmoe::llm::RoutingProfile& profile,
              bool prefetch)
{
    if (rule == CacheAllocationRule::UNIFORM)
    {
        return AllocateSlotsUniform(hosted, memorySlots);
    }
    std::vector<std::vector<double>> loads(hosted.size());
    for (std::size_t l = 0; l < hosted.size(); ++l)
    {
        const double accuracy = prefetch ? profile.prefetchAccuracy[l] : 0.0;
        for (int slots = 0; slots <= hosted[l]; ++slots)
        {
            loads[l].push_back(ExpectedOnDemandLoads(profile.singleExpertRate[l],
                                                     accuracy,
                                                     hosted[l],
                                                     experts,
                                                     topK,
                                                     slots));
        }
    }
    return AllocateSlotsDp(loads, memorySlots);
}

} // namespace

struct WdmoeHelper::Cell
{
    std::shared_ptr<wdmoe::llm::MixtralModel> model;
    std::vector<int> tokens;
    int promptTokens = 0;
    int scoredTokens = 0;
    std::optional<ServingWorkload> requests; ///< serving instead of the single stream
    CostModel cost = CostModel::Mixtral8x7B();
    ComputeProfile bsProfile;
    ComputeProfile deviceProfile;
    InferencePolicy policy;
    PlacementAlgorithm placementAlgorithm = PlacementAlgorithm::MIN_COST;
    bool replicas = false;
    int memorySlots = 0;
    int storageSlots = 0;
    bool warm = true;
    CacheAllocationRule cacheAllocation = CacheAllocationRule::UNIFORM;
    wdmoe::llm::RoutingProfile routingProfile;

    // Made by Install and SetUp.
    Ptr<WdmoeChannel> channel;
    BandPlan band{DuplexMode::SHARED, 0, 0};
    AccessOverhead access;
    Ptr<ExpertTransport> transport;
    Ptr<MoeInferenceApp> bs;
    std::vector<Ptr<ExpertDeviceApp>> devices;
    ExpertPlacement placement;
    std::vector<std::vector<int>> slots;
};

WdmoeHelper::WdmoeHelper()
    : m_band(BandPlan::FromConfig(DuplexMode::SHARED, 100e6, 0.5)),
      m_cell(std::make_shared<Cell>())
{
    m_channelFactory.SetTypeId("ns3::WdmoeChannel");
    m_transportFactory.SetTypeId("ns3::LinkTransport");
    m_bsFactory.SetTypeId("ns3::MoeInferenceApp");
}

void
WdmoeHelper::SetChannelAttribute(const std::string& name, const AttributeValue& value)
{
    m_channelFactory.Set(name, value);
}

void
WdmoeHelper::SetTransportAttribute(const std::string& name, const AttributeValue& value)
{
    m_transportFactory.Set(name, value);
}

void
WdmoeHelper::SetTransport(Ptr<ExpertTransport> transport)
{
    m_transport = transport;
}

void
WdmoeHelper::SetBsAttribute(const std::string& name, const AttributeValue& value)
{
    m_bsFactory.Set(name, value);
}

void
WdmoeHelper::SetBandPlan(const BandPlan& band)
{
    m_band = band;
}

void
WdmoeHelper::SetLinkMapping(const LinkToSystemMapping& downlink, const LinkToSystemMapping& uplink)
{
    m_linkMapping = {downlink, uplink};
}

void
WdmoeHelper::SetAccessOverhead(const AccessOverhead& access)
{
    m_access = access;
}

void
WdmoeHelper::SetModel(std::shared_ptr<wdmoe::llm::MixtralModel> model)
{
    m_cell->model = std::move(model);
}

void
WdmoeHelper::SetWorkload(const std::vector<int>& tokens, int promptTokens, int scoredTokens)
{
    m_cell->tokens = tokens;
    m_cell->promptTokens = promptTokens;
    m_cell->scoredTokens = scoredTokens;
    m_cell->requests.reset();
}

void
WdmoeHelper::SetRequests(const std::vector<int>& tokens, const ServingWorkload& workload)
{
    m_cell->tokens = tokens;
    m_cell->requests = workload;
}

void
WdmoeHelper::SetCostModel(const CostModel& cost)
{
    m_cell->cost = cost;
}

void
WdmoeHelper::SetBsProfile(const ComputeProfile& profile)
{
    m_cell->bsProfile = profile;
}

void
WdmoeHelper::SetDeviceProfile(const ComputeProfile& profile)
{
    m_cell->deviceProfile = profile;
}

void
WdmoeHelper::SetPolicy(const InferencePolicy& policy)
{
    m_cell->policy = policy;
}

void
WdmoeHelper::SetSelectionRule(const std::string& nameOrType)
{
    m_selectionFactory.SetTypeId(ExpertSelectionRule::LookupRule(nameOrType));
}

void
WdmoeHelper::SetSelectionRuleAttribute(const std::string& name, const AttributeValue& value)
{
    m_selectionFactory.Set(name, value);
}

void
WdmoeHelper::SetAllocationRule(const std::string& nameOrType)
{
    m_allocationFactory.SetTypeId(BandwidthAllocationRule::LookupRule(nameOrType));
}

void
WdmoeHelper::SetAllocationRuleAttribute(const std::string& name, const AttributeValue& value)
{
    m_allocationFactory.Set(name, value);
}

void
WdmoeHelper::SetPlacement(PlacementAlgorithm algorithm, bool replicas)
{
    m_cell->placementAlgorithm = algorithm;
    m_cell->replicas = replicas;
}

void
WdmoeHelper::SetExpertSlots(int memorySlots, int storageSlots, bool warm)
{
    m_cell->memorySlots = memorySlots;
    m_cell->storageSlots = storageSlots;
    m_cell->warm = warm;
}

void
WdmoeHelper::SetCacheAllocation(CacheAllocationRule rule, const wdmoe::llm::RoutingProfile& profile)
{
    m_cell->cacheAllocation = rule;
    m_cell->routingProfile = profile;
}

void
WdmoeHelper::ConfigureBsApp()
{
    Cell& c = *m_cell;
    c.bs->SetModel(c.model);
    if (c.requests)
    {
        c.bs->SetRequests(c.tokens, *c.requests);
    }
    else
    {
        c.bs->SetWorkload(c.tokens, c.promptTokens, c.scoredTokens);
    }
    c.bs->SetCosts(c.cost, c.bsProfile);
    c.bs->SetPolicy(c.policy);
    if (m_selectionFactory.IsTypeIdSet())
    {
        c.bs->SetSelectionRule(m_selectionFactory.Create<ExpertSelectionRule>());
    }
    if (m_allocationFactory.IsTypeIdSet())
    {
        c.bs->SetAllocationRule(m_allocationFactory.Create<BandwidthAllocationRule>());
    }
}

ApplicationContainer
WdmoeHelper::Install(Ptr<Node> bs, NodeContainer devices)
{
    Cell& c = *m_cell;
    if (!c.model || devices.GetN() == 0)
    {
        throw std::invalid_argument("WdmoeHelper::Install needs SetModel and at least one device");
    }
    const std::string shortfall = HostingShortfall(devices.GetN(),
                                                   c.storageSlots,
                                                   "slots",
                                                   c.model->Config().numHiddenLayers,
                                                   c.model->Config().numLocalExperts);
    if (!shortfall.empty())
    {
        throw std::invalid_argument("the devices cannot hold the model: " + shortfall);
    }
    c.band = m_band;
    c.access = m_access;
    c.channel = m_channelFactory.Create<WdmoeChannel>();
    c.channel->SetAttribute("TotalBandwidth", DoubleValue(m_band.dlHz));
    c.channel->SetAttribute("UplinkBandwidth", DoubleValue(m_band.ulHz));
    c.channel->SetBs(bs->GetObject<MobilityModel>());
    if (m_band.tdd)
    {
        c.channel->SetTddPattern(*m_band.tdd);
    }
    if (!m_linkMapping.empty())
    {
        c.channel->SetLinkMapping(WdmoeChannel::DOWNLINK, m_linkMapping[0]);
        c.channel->SetLinkMapping(WdmoeChannel::UPLINK, m_linkMapping[1]);
    }
    Ptr<LinkTransport> link;
    if (m_transport)
    {
        c.transport = m_transport;
    }
    else
    {
        link = m_transportFactory.Create<LinkTransport>();
        c.transport = link;
    }
    c.devices.clear();
    ApplicationContainer apps;
    c.bs = m_bsFactory.Create<MoeInferenceApp>();
    apps.Add(c.bs);
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        c.channel->AddDevice(devices.Get(i)->GetObject<MobilityModel>());
        Ptr<ExpertDeviceApp> device = CreateObject<ExpertDeviceApp>();
        device->SetTransport(c.transport, i);
        device->SetCosts(c.deviceProfile, c.cost);
        devices.Get(i)->AddApplication(device);
        c.devices.push_back(device);
        apps.Add(device);
    }
    if (link)
    {
        link->SetChannel(c.channel, m_band);
        link->SetAccessOverhead(m_access);
    }
    ConfigureBsApp();
    bs->AddApplication(c.bs);
    // Before the applications start (their start events come later at time 0).
    Simulator::ScheduleWithContext(bs->GetId(), Seconds(0), &WdmoeHelper::SetUp, m_cell);
    m_channel = c.channel;
    m_bs = c.bs;
    m_devices = c.devices;
    return apps;
}

void
WdmoeHelper::SetUp(std::shared_ptr<Cell> cell)
{
    // The placement prices each device on the channel as it is at time 0 (an equal share of
    // the band, one token through one expert), with the BS's one latency predictor.
    Cell& c = *cell;
    const wdmoe::llm::ModelConfig& mc = c.model->Config();
    const LatencyPredictor predictor(c.channel, c.band, c.cost, c.devices, c.access);
    PlacementProblem problem;
    problem.layers = mc.numHiddenLayers;
    problem.experts = mc.numLocalExperts;
    problem.replicas = c.replicas;
    for (uint32_t i = 0; i < c.devices.size(); ++i)
    {
        problem.deviceCapacity.push_back(
            std::min(c.storageSlots, problem.layers * problem.experts));
        problem.deviceCost.push_back(predictor.EqualShareRoundTrip(i, 1, Seconds(0)));
    }
    c.placement = c.placementAlgorithm == PlacementAlgorithm::MIN_COST ? PlaceMinCost(problem)
                                                                       : PlaceRoundRobin(problem);
    c.slots.assign(c.devices.size(), {});
    for (uint32_t i = 0; i < c.devices.size(); ++i)
    {
        std::vector<int> hosted(problem.layers, 0);
        for (const auto& [layer, expert] : c.placement.ExpertsOn(i))
        {
            ++hosted[layer];
        }
        c.slots[i] = MemorySlotsOf(hosted,
                                   c.memorySlots,
                                   problem.experts,
                                   mc.numExpertsPerTok,
                                   c.cacheAllocation,
                                   c.routingProfile,
                                   c.policy.prefetch);
        ExpertMemory memory(c.slots[i]);
        for (const auto& [layer, expert] : c.placement.ExpertsOn(i))
        {
            if (c.warm)
            {
                memory.Preload(layer, expert);
            }
        }
        c.devices[i]->SetMemory(memory);
    }
    c.bs->SetCell(c.transport, c.devices, c.placement, predictor);
}

int64_t
WdmoeHelper::AssignStreams(int64_t stream)
{
    NS_ABORT_MSG_UNLESS(m_channel, "WdmoeHelper::AssignStreams needs Install first");
    int64_t used = m_channel->AssignStreams(stream);
    // The link's HARQ draws come after the channel's, so switching HARQ on moves no other draw.
    if (Ptr<LinkTransport> link = DynamicCast<LinkTransport>(m_cell->transport))
    {
        used += link->AssignStreams(stream + used);
    }
    used += m_bs->AssignStreams(stream + used);
    return used;
}

const ExpertPlacement&
WdmoeHelper::GetPlacement() const
{
    return m_cell->placement;
}

const std::vector<std::vector<int>>&
WdmoeHelper::GetMemorySlots() const
{
    return m_cell->slots;
}

} // namespace ns3
