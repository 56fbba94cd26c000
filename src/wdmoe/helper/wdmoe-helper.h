// WdmoeHelper: builds a wdmoe cell on nodes a program made (as LteHelper does): the radio
// links, the transport, an ExpertDeviceApp on every device node and the MoeInferenceApp on the
// BS node. The program adds its own nodes, applications, events and trace sinks and calls
// Simulator::Run itself.
#ifndef WDMOE_HELPER_H
#define WDMOE_HELPER_H

#include "bandwidth-slices.h"
#include "calibration.h"
#include "compute-profile.h"
#include "cost-model.h"
#include "expert-device-app.h"
#include "expert-placement.h"
#include "latency-predictor.h"
#include "link-transport.h"
#include "moe-inference-app.h"
#include "scenario-config.h"
#include "wdmoe-channel.h"

#include "ns3/application-container.h"
#include "ns3/node-container.h"
#include "ns3/object-factory.h"

#include <memory>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * Installs a cell. Nodes must carry a MobilityModel. Which expert each device hosts (the
 * placement, priced on the channel) and its memory slots are decided at time 0, before the
 * first token, so that AssignStreams after Install fixes every draw.
 */
class WdmoeHelper
{
  public:
    WdmoeHelper();

    /// An attribute of the WdmoeChannel (e.g. "CoherenceTime", "PropagationLossModel").
    void SetChannelAttribute(const std::string& name, const AttributeValue& value);
    /// An attribute of the LinkTransport (e.g. "MinRate").
    void SetTransportAttribute(const std::string& name, const AttributeValue& value);
    /// Another transport instead of the LinkTransport (e.g. real packets, or a test's fixed
    /// delays); neither application knows which one carries them.
    void SetTransport(Ptr<ExpertTransport> transport);
    /// An attribute of the MoeInferenceApp (e.g. "LayerDeadline").
    void SetBsAttribute(const std::string& name, const AttributeValue& value);
    /// The band and how the directions share it (default: 100 MHz shared).
    void SetBandPlan(const BandPlan& band);
    /// The link's slots, uplink grant, HARQ and packet headers (default: none). The BS's
    /// predictions include them too; another transport (SetTransport) has its own.
    void SetAccessOverhead(const AccessOverhead& access);
    /// How each direction's SINR becomes a rate (default: the channel's Efficiency x Shannon).
    void SetLinkMapping(const LinkToSystemMapping& downlink, const LinkToSystemMapping& uplink);

    /// The model that runs and routes, and the tokens it scores (teacher forcing).
    void SetModel(std::shared_ptr<wdmoe::llm::MixtralModel> model);
    void SetWorkload(const std::vector<int>& tokens, int promptTokens, int scoredTokens);
    /// Serving instead of the single stream: requests over the tokens (MoeInferenceApp::
    /// SetRequests; the batch and KV memory are the BS attributes MaxBatch and KvMemoryBytes).
    void SetRequests(const std::vector<int>& tokens, const ServingWorkload& workload);
    /// The architecture every expert, hidden state and attention is priced as.
    void SetCostModel(const CostModel& cost);
    void SetBsProfile(const ComputeProfile& profile);
    /// The profile of every device.
    void SetDeviceProfile(const ComputeProfile& profile);
    /// One profile per device, in the order of Install's devices (a mixed cell).
    void SetDeviceProfiles(const std::vector<ComputeProfile>& profiles);
    /// One transmit power (dBm) per device, in the order of Install's devices, instead of the
    /// channel's DeviceTxPowerDbm for all (WdmoeChannel::SetDeviceTxPowerDbm).
    void SetDeviceTxPowers(const std::vector<double>& dbm);
    void SetPolicy(const InferencePolicy& policy);
    /// The selection (allocation) rule by registered name or TypeId name, as LteHelper's
    /// SetSchedulerType: a new object of that type replaces the policy's rule at Install; its
    /// attributes are set with SetSelectionRuleAttribute (SetAllocationRuleAttribute).
    /// Throws std::invalid_argument, listing the known names, for an unknown one.
    void SetSelectionRule(const std::string& nameOrType);
    void SetSelectionRuleAttribute(const std::string& name, const AttributeValue& value);
    void SetAllocationRule(const std::string& nameOrType);
    void SetAllocationRuleAttribute(const std::string& name, const AttributeValue& value);

    /// How experts are placed and kept: the algorithm, replicas, the experts a device hosts on
    /// storage and keeps in memory, and whether memories start filled. popularity[l][e]: how
    /// often expert e of layer l is used (RoutingProfile::expertRate), needed by the
    /// algorithms that rank or price experts by it (PlacementUsesPopularity).
    void SetPlacement(PlacementAlgorithm algorithm,
                      bool replicas,
                      const std::vector<std::vector<double>>& popularity = {});
    void SetExpertSlots(int memorySlots, int storageSlots, bool warm);
    /// The same per device, in the order of Install's devices.
    void SetExpertSlots(const std::vector<int>& memorySlots,
                        const std::vector<int>& storageSlots,
                        const std::vector<bool>& warm);
    /// Uniform memory slots, or AdapMoE's DP over this routing profile.
    void SetCacheAllocation(CacheAllocationRule rule,
                            const wdmoe::llm::RoutingProfile& profile = {});

    /**
     * Builds the cell: the BS application on bs, an expert application on every device node.
     * \return the BS application first, then the devices' in the order of devices
     */
    ApplicationContainer Install(Ptr<Node> bs, NodeContainer devices);

    /// Fixed random streams for the channel (3 per device, then the loss model's), then the
    /// link's HARQ draws (2 per device, only with HARQ), then the BS's serving draws (3: arrival
    /// gaps, prompt and output lengths; only serving); returns how many were used. Call after
    /// Install.
    int64_t AssignStreams(int64_t stream);

    Ptr<WdmoeChannel> GetChannel() const { return m_channel; }

    /// The transport the apps use (after Install).
    Ptr<ExpertTransport> GetTransport() const;

    Ptr<MoeInferenceApp> GetBsApp() const { return m_bs; }

    Ptr<ExpertDeviceApp> GetDeviceApp(uint32_t i) const { return m_devices.at(i); }

    /// The placement and each device's memory slots per layer (once the simulation started).
    const ExpertPlacement& GetPlacement() const;
    const std::vector<std::vector<int>>& GetMemorySlots() const;
    /// The per-device cost the placement used, in seconds (once the simulation started): the
    /// equal-share round trip of one token at time 0 (min-cost, round-robin) or the expected
    /// one (channel-aware, min-cost-popularity).
    const std::vector<double>& GetPlacementCosts() const;

  private:
    struct Cell; ///< what the time-0 set-up needs and makes
    /// Throws std::invalid_argument for a cell Install cannot build (no model, per-device
    /// settings of another size, too little room for the model).
    static void CheckCell(const Cell& c, uint32_t devices);
    /// The BS application of Install: the model, the workload (stream or requests), the costs
    /// and the policy with the program's rule objects.
    void ConfigureBsApp();
    static void SetUp(std::shared_ptr<Cell> cell);
    /// The placement's problem: capacities, per-device costs, popularity where the rule uses it.
    static PlacementProblem PlacementProblemOf(const Cell& c, const LatencyPredictor& predictor);
    static ExpertPlacement Place(PlacementAlgorithm algorithm, const PlacementProblem& problem);

    ObjectFactory m_channelFactory;
    ObjectFactory m_transportFactory;
    ObjectFactory m_bsFactory;
    ObjectFactory m_selectionFactory;  ///< no TypeId set: the policy's rule
    ObjectFactory m_allocationFactory; ///< no TypeId set: the policy's rule
    Ptr<ExpertTransport> m_transport;  ///< given by SetTransport (null: a LinkTransport)
    BandPlan m_band;
    std::vector<LinkToSystemMapping> m_linkMapping; ///< downlink, uplink (empty: Shannon)
    AccessOverhead m_access;
    std::shared_ptr<Cell> m_cell;
    Ptr<WdmoeChannel> m_channel;
    Ptr<MoeInferenceApp> m_bs;
    std::vector<Ptr<ExpertDeviceApp>> m_devices;
};

} // namespace ns3

#endif
