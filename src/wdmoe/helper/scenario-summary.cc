#include "scenario-summary.h"

#include "bandwidth-allocation-rule.h"
#include "cost-model-json.h"
#include "expert-selection-rule.h"
#include "priced-model.h"
#include "serving-summary.h"

#include <cmath>

namespace ns3
{

namespace
{

nlohmann::ordered_json
DirectionJson(const LteTransport::DirectionStats& s)
{
    return {{"transfers", s.transfers},
            {"datagrams", s.datagrams},
            {"payload_bytes", s.bytes},
            {"transfer_mean_ms", s.meanTransferS * 1e3},
            {"transfer_max_ms", s.maxTransferS * 1e3}};
}

nlohmann::ordered_json
FlowJson(const LteTransport::FlowStats& f)
{
    return {{"flows", f.flows},
            {"packets_sent", f.txPackets},
            {"packets_received", f.rxPackets},
            {"packets_lost", f.lostPackets},
            {"delay_mean_ms", f.meanDelayS * 1e3},
            {"throughput_mbps", f.throughputBps / 1e6}};
}

/// The groups of a mixed cell with the cell's defaults filled in.
nlohmann::ordered_json
DeviceGroupsJson(const ScenarioConfig& c)
{
    nlohmann::ordered_json groups = nlohmann::ordered_json::array();
    const std::vector<CellDevice> devices = c.CellDevices();
    int first = 0;
    for (const DeviceGroup& g : c.deviceGroups)
    {
        const CellDevice& d = devices[first];
        nlohmann::ordered_json j = {{"profile", g.profile},
                                    {"count", g.count},
                                    {"first_device", first},
                                    {"power_dbm", d.powerDbm}};
        if (d.distanceM > 0)
        {
            j["distance_m"] = d.distanceM;
        }
        else
        {
            j["min_distance_m"] = d.minDistanceM;
            j["max_distance_m"] = d.maxDistanceM;
        }
        if (d.angleRad)
        {
            j["angle_deg"] = *d.angleRad * 180.0 / M_PI;
        }
        groups.push_back(j);
        first += g.count;
    }
    return groups;
}

} // namespace

/// summary.json: the config, the models, the cell, then the collector's statistics. `ran` is
/// the BS application's policy as it ran: its rule objects, the config's or the program's own.
/// summary.json's "policy": the rules that ran and the knobs in force.
nlohmann::ordered_json
PolicySummary(const ScenarioConfig& c, const InferencePolicy& ran)
{
    const InferencePolicy& policy = c.policy;
    nlohmann::ordered_json s;
    s = {
        {"name", policy.name},
        {"gating", ran.gating},
        {"adaptive_threshold", policy.adaptiveThreshold},
        {"selection", ExpertSelectionRule::NameOf(ran.selectionRule)},
        {"allocation", ran.Joint() ? "joint" : BandwidthAllocationRule::NameOf(ran.allocationRule)},
        {"cache_allocation", c.cacheAllocation},
        {"prefetch", policy.prefetch}};
    if (policy.selection == SelectionRule::STRAGGLER)
    {
        // The bounds in force (their defaults may change between versions).
        s["straggler_weight_max"] = policy.straggler.weightMax;
        s["straggler_gain_min"] = policy.straggler.gainMin;
        s["straggler_tradeoff"] = policy.straggler.tradeoff;
        s["straggler_layer_weights"] = c.stragglerLayerWeights;
    }
    if (policy.selection == SelectionRule::ENERGY)
    {
        s["energy_weight_min"] = policy.energy.weightMin;
        s["energy_latency_slack"] = policy.energy.latencySlack;
    }
    if (!policy.stragglerLayerScale.empty())
    {
        s["straggler_layer_scale"] = policy.stragglerLayerScale;
    }
    return s;
}

nlohmann::ordered_json
ScenarioSummary(const ScenarioConfig& c,
                const ScenarioInputs& in,
                const DeviceSlots& slots,
                const WdmoeStatsCollector& stats,
                const std::vector<std::vector<int>>& slotsOf,
                const std::vector<std::string>& warnings,
                const InferencePolicy& ran)
{
    nlohmann::ordered_json s;
    s["config"] = c.file;
    s["config_echo"] = c.echo;
    s["seed"] = c.seed;
    s["run"] = c.run;
    s["model_routed"] = {{"dir", c.modelDir},
                         {"layers", in.model->Config().numHiddenLayers},
                         {"experts", in.model->Config().numLocalExperts},
                         {"top_k", in.model->Config().numExpertsPerTok},
                         {"d_model", in.model->Config().hiddenSize},
                         {"d_ff", in.model->Config().intermediateSize},
                         {"dtype", wdmoe::llm::DTypeName(in.model->WeightDType())}};
    s["model_priced"] = CostModelJson(in.cost);
    s["model_priced"]["priced_layers"] = c.pricedModel.routedLayersOnly ? "routed" : "all";
    s["layers_in_latency"] = in.model->Config().numHiddenLayers;
    s["latency_covers"] =
        PricedModel::CoverageText(in.model->Config().numHiddenLayers, in.cost.layers);
    s["cell"] = {{"devices", c.devices},
                 {"device_profile", c.deviceProfile},
                 {"bs_profile", c.bsProfile},
                 {"bandwidth_mhz", c.bandwidthHz / 1e6},
                 {"link_mapping", c.linkMapping},
                 {"transport", c.transport},
                 {"expert_memory_slots_per_device", slots.memory[0]},
                 {"expert_storage_slots_per_device", slots.storage[0]},
                 {"placement", c.placement}};
    if (!c.deviceGroups.empty())
    {
        // A mixed cell: the slots per device, and the groups as they were expanded.
        s["cell"]["expert_memory_slots_per_device"] = slots.memory;
        s["cell"]["expert_storage_slots_per_device"] = slots.storage;
        s["cell"]["device_groups"] = DeviceGroupsJson(c);
    }
    if (c.tdd)
    {
        s["cell"]["tdd"] = {{"pattern", c.tdd->Pattern()},
                            {"slot_ms", c.tdd->Slot().GetSeconds() * 1e3},
                            {"downlink_duty", c.tdd->DutyCycle(false)},
                            {"uplink_duty", c.tdd->DutyCycle(true)}};
    }
    s["tokens_scored"] = stats.Tokens().size();
    s["text_start_token"] = in.textStart;
    s["workload_purpose"] = c.tuning ? "tuning" : "evaluation";
    stats.Latency(s);
    s["policy"] = PolicySummary(c, ran);
    stats.Decode(s,
                 slotsOf.empty() ? std::vector<int>() : slotsOf[0],
                 !ran.selectionRule->KeepsEveryCandidate());
    stats.DropsAndAccuracy(s, warnings);
    if (c.serving)
    {
        s["serving"] = ServingSummary(*c.serving,
                                      KvMemoryBytes(c, in),
                                      in.cost.KvBytesPerToken(),
                                      stats,
                                      slotsOf.size());
    }
    return s;
}

/// summary.json's "lte": the settings and what each direction carried.
nlohmann::ordered_json
LteSummary(const ScenarioConfig& c, LteTransport& lte)
{
    return {{"scheduler", c.lteScheduler},
            {"packet_bytes", c.ltePacketBytes},
            {"rlc", c.lteRlc},
            {"resource_blocks", LteTransport::ResourceBlocksOf(c.bandwidthHz)},
            {"downlink", DirectionJson(lte.GetStats(ExpertTransport::DOWNLINK))},
            {"uplink", DirectionJson(lte.GetStats(ExpertTransport::UPLINK))},
            {"transfers_pending_at_end", lte.PendingTransfers()},
            {"flow_monitor",
             {{"downlink", FlowJson(lte.GetFlowStats(ExpertTransport::DOWNLINK))},
              {"uplink", FlowJson(lte.GetFlowStats(ExpertTransport::UPLINK))}}}};
}

} // namespace ns3
