#include "wdmoe-helper.h"

#include "cache-allocation.h"
#include "channel-aware-placement.h"
#include "latency-predictor.h"
#include "lte-transport.h"
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
    std::vector<ComputeProfile> deviceProfiles; ///< per device (empty: deviceProfile for all)
    std::vector<double> txPowersDbm;            ///< per device (empty: the channel's attribute)
    InferencePolicy policy;
    PlacementAlgorithm placementAlgorithm = PlacementAlgorithm::MIN_COST;
    bool replicas = false;
    std::vector<std::vector<double>> popularity; ///< [layer][expert]
    int memorySlots = 0;
    int storageSlots = 0;
    bool warm = true;
    // Per device (empty: the numbers above for every device).
    std::vector<int> memorySlotsOf;
    std::vector<int> storageSlotsOf;
    std::vector<bool> warmOf;
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
    std::vector<double> placementCosts;

    int MemorySlots(uint32_t i) const
    {
        return memorySlotsOf.empty() ? memorySlots : memorySlotsOf[i];
    }

    int StorageSlots(uint32_t i) const
    {
        return storageSlotsOf.empty() ? storageSlots : storageSlotsOf[i];
    }

    bool Warm(uint32_t i) const { return warmOf.empty() ? warm : bool(warmOf[i]); }

    const ComputeProfile& Profile(uint32_t i) const
    {
        return deviceProfiles.empty() ? deviceProfile : deviceProfiles[i];
    }
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
WdmoeHelper::SetDeviceProfiles(const std::vector<ComputeProfile>& profiles)
{
    m_cell->deviceProfiles = profiles;
}

void
WdmoeHelper::SetDeviceTxPowers(const std::vector<double>& dbm)
{
    m_cell->txPowersDbm = dbm;
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
WdmoeHelper::SetPlacement(PlacementAlgorithm algorithm,
                          bool replicas,
                          const std::vector<std::vector<double>>& popularity)
{
    m_cell->placementAlgorithm = algorithm;
    m_cell->replicas = replicas;
    m_cell->popularity = popularity;
}

void
WdmoeHelper::SetExpertSlots(int memorySlots, int storageSlots, bool warm)
{
    m_cell->memorySlots = memorySlots;
    m_cell->storageSlots = storageSlots;
    m_cell->warm = warm;
    m_cell->memorySlotsOf.clear();
    m_cell->storageSlotsOf.clear();
    m_cell->warmOf.clear();
}

void
WdmoeHelper::SetExpertSlots(const std::vector<int>& memorySlots,
                            const std::vector<int>& storageSlots,
                            const std::vector<bool>& warm)
{
    m_cell->memorySlotsOf = memorySlots;
    m_cell->storageSlotsOf = storageSlots;
    m_cell->warmOf = warm;
}

void
WdmoeHelper::SetCacheAllocation(CacheAllocationRule rule, const wdmoe::llm::RoutingProfile& profile)
{
    m_cell->cacheAllocation = rule;
    m_cell->routingProfile = profile;
}

void
WdmoeHelper::CheckCell(const Cell& c, uint32_t devices)
{
    if (!c.model || devices == 0)
    {
        throw std::invalid_argument("WdmoeHelper::Install needs SetModel and at least one device");
    }
    for (const auto& [what, size] : {std::make_pair("device profiles", c.deviceProfiles.size()),
                                     std::make_pair("transmit powers", c.txPowersDbm.size()),
                                     std::make_pair("memory slot counts", c.memorySlotsOf.size()),
                                     std::make_pair("storage slot counts", c.storageSlotsOf.size()),
                                     std::make_pair("warm flags", c.warmOf.size())})
    {
        if (size != 0 && size != devices)
        {
            throw std::invalid_argument("WdmoeHelper::Install: " + std::to_string(size) + " " +
                                        what + " for " + std::to_string(devices) + " devices");
        }
    }
    const int layers = c.model->Config().numHiddenLayers;
    const int experts = c.model->Config().numLocalExperts;
    long long hosted = 0;
    for (uint32_t i = 0; i < devices; ++i)
    {
        hosted += c.StorageSlots(i);
    }
    if (hosted < (long long)layers * experts)
    {
        const std::string shortfall =
            c.storageSlotsOf.empty()
                ? HostingShortfall(devices, c.storageSlots, "slots", layers, experts)
                : std::to_string(hosted) + " slots in all < " + std::to_string(layers) +
                      " layers x " + std::to_string(experts) + " experts";
        throw std::invalid_argument("the devices cannot hold the model: " + shortfall);
    }
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
    CheckCell(c, devices.GetN());
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
        if (!c.txPowersDbm.empty())
        {
            c.channel->SetDeviceTxPowerDbm(i, c.txPowersDbm[i]);
        }
        Ptr<ExpertDeviceApp> device = CreateObject<ExpertDeviceApp>();
        device->SetTransport(c.transport, i);
        device->SetCosts(c.Profile(i), c.cost);
        devices.Get(i)->AddApplication(device);
        c.devices.push_back(device);
        apps.Add(device);
    }
    if (link)
    {
        link->SetChannel(c.channel, m_band);
        link->SetAccessOverhead(m_access);
    }
    Ptr<LteTransport> lte = DynamicCast<LteTransport>(c.transport);
    if (lte && lte->UsesChannelPathGain())
    {
        lte->SetPathGainChannel(c.channel);
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

PlacementProblem
WdmoeHelper::PlacementProblemOf(const Cell& c, const LatencyPredictor& predictor)
{
    // min-cost and round-robin price each device on the channel as it is at time 0 (as they
    // always have); the popularity rules on the channel it can expect over the run.
    const bool expected = PlacementUsesPopularity(c.placementAlgorithm);
    PlacementProblem problem;
    problem.layers = c.model->Config().numHiddenLayers;
    problem.experts = c.model->Config().numLocalExperts;
    problem.replicas = c.replicas;
    for (uint32_t i = 0; i < c.devices.size(); ++i)
    {
        problem.deviceCapacity.push_back(
            std::min(c.StorageSlots(i), problem.layers * problem.experts));
        problem.deviceCost.push_back(expected ? predictor.ExpectedRoundTrip(i, 1)
                                              : predictor.EqualShareRoundTrip(i, 1, Seconds(0)));
    }
    if (!expected)
    {
        return problem;
    }
    if (c.popularity.size() != std::size_t(problem.layers))
    {
        throw std::invalid_argument(
            "WdmoeHelper: placement \"" + PlacementAlgorithmName(c.placementAlgorithm) +
            "\" needs the experts' popularity per layer (SetPlacement), "
            "got " +
            std::to_string(c.popularity.size()) + " layers of " + std::to_string(problem.layers));
    }
    for (const std::vector<double>& layer : c.popularity)
    {
        if (layer.size() != std::size_t(problem.experts))
        {
            throw std::invalid_argument("WdmoeHelper: the popularity of a layer has " +
                                        std::to_string(layer.size()) + " experts, the model " +
                                        std::to_string(problem.experts));
        }
        problem.popularity.insert(problem.popularity.end(), layer.begin(), layer.end());
    }
    return problem;
}

ExpertPlacement
WdmoeHelper::Place(PlacementAlgorithm algorithm, const PlacementProblem& problem)
{
    switch (algorithm)
    {
    case PlacementAlgorithm::ROUND_ROBIN:
        return PlaceRoundRobin(problem);
    case PlacementAlgorithm::CHANNEL_AWARE:
        return PlaceChannelAware(problem);
    case PlacementAlgorithm::MIN_COST:
    case PlacementAlgorithm::MIN_COST_POPULARITY:
    default:
        return PlaceMinCost(problem);
    }
}

void
WdmoeHelper::SetUp(std::shared_ptr<Cell> cell)
{
    // The placement prices each device on the channel as it is at time 0 (an equal share of
    // the band, one token through one expert), with the BS's one latency predictor.
    Cell& c = *cell;
    const wdmoe::llm::ModelConfig& mc = c.model->Config();
    const LatencyPredictor predictor(c.channel, c.band, c.cost, c.devices, c.access);
    const PlacementProblem problem = PlacementProblemOf(c, predictor);
    c.placementCosts = problem.deviceCost;
    c.placement = Place(c.placementAlgorithm, problem);
    c.slots.assign(c.devices.size(), {});
    for (uint32_t i = 0; i < c.devices.size(); ++i)
    {
        std::vector<int> hosted(problem.layers, 0);
        for (const auto& [layer, expert] : c.placement.ExpertsOn(i))
        {
            ++hosted[layer];
        }
        c.slots[i] = MemorySlotsOf(hosted,
                                   c.MemorySlots(i),
                                   problem.experts,
                                   mc.numExpertsPerTok,
                                   c.cacheAllocation,
                                   c.routingProfile,
                                   c.policy.prefetch);
        ExpertMemory memory(c.slots[i]);
        for (const auto& [layer, expert] : c.placement.ExpertsOn(i))
        {
            if (c.Warm(i))
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

Ptr<ExpertTransport>
WdmoeHelper::GetTransport() const
{
    NS_ABORT_MSG_UNLESS(m_cell, "WdmoeHelper::GetTransport needs Install first");
    return m_cell->transport;
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

const std::vector<double>&
WdmoeHelper::GetPlacementCosts() const
{
    return m_cell->placementCosts;
}

} // namespace ns3
