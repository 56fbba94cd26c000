// A scenario config: the JSON file parsed, section by section, into typed fields in SI units.
#ifndef WDMOE_SCENARIO_CONFIG_H
#define WDMOE_SCENARIO_CONFIG_H

#include "access-overhead.h"
#include "bandwidth-allocation.h"
#include "bandwidth-slices.h"
#include "dense-matrix.h"
#include "device-groups.h"
#include "dtype.h"
#include "expert-kernel.h"
#include "expert-selection.h"
#include "link-to-system-mapping.h"
#include "moe-inference-app.h"
#include "priced-model.h"
#include "serving-config.h"
#include "tdd-pattern.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

/// "cell.propagation".
enum class CellPropagation
{
    THREE_GPP_UMA,   ///< "3gpp-uma"
    LOG_DISTANCE_128 ///< "log-distance-128"
};

/// "cell.link_mapping": how an SINR becomes a rate (LinkToSystemMapping).
enum class LinkMappingPreset
{
    SHANNON, ///< "shannon": cell.efficiency x the Shannon bound
    LTE,     ///< "lte": TR 36.942 Annex A truncated Shannon, downlink and uplink
    NR,      ///< "nr": the same with NR's 256-QAM cap (7.4063 bit/s/Hz)
    LTE_CQI  ///< "lte-cqi": TS 36.213's CQI table at 10 % BLER
};

/// The mappings of a preset, downlink then uplink.
std::pair<LinkToSystemMapping, LinkToSystemMapping> LinkMappingsOf(LinkMappingPreset preset,
                                                                   double efficiency);

/// "transport": what carries the bytes between the BS and the devices.
enum class TransportKind
{
    LINK, ///< "link": the closed-form link (LinkTransport on WdmoeChannel)
    LTE   ///< "lte": UDP over ns-3's LTE module and EPC (LteTransport)
};

/// "lte.rlc".
enum class LteRlc
{
    AM, ///< "am": acknowledged mode
    UM  ///< "um": unacknowledged mode
};

/// "placement.algorithm".
enum class PlacementAlgorithm
{
    MIN_COST,            ///< "min-cost": min-cost flow on per-device costs
    ROUND_ROBIN,         ///< "round-robin"
    CHANNEL_AWARE,       ///< "channel-aware": most used experts on the best devices
    MIN_COST_POPULARITY, ///< "min-cost-popularity": min-cost flow, popularity x device cost
};

/// Whether the algorithm ranks or prices experts by their popularity on the profile text.
bool PlacementUsesPopularity(PlacementAlgorithm value);

/// "policy.cache_allocation": memory slots per layer on each device.
enum class CacheAllocationRule
{
    UNIFORM, ///< "uniform"
    DP       ///< "dp": the dynamic programme over measured routing statistics
};

/// "policy.straggler_layer_weights": what a drop costs at each layer for the straggler rule.
enum class StragglerLayerWeights
{
    SENSITIVITY, ///< "sensitivity": the model's calibrated F_l over their mean
    UNIFORM      ///< "uniform": every layer weighs 1
};

/// The names the config and the results use for these values.
std::string CellPropagationName(CellPropagation value);
std::string LinkMappingPresetName(LinkMappingPreset value);
std::string TransportKindName(TransportKind value);
std::string LteRlcName(LteRlc value);
std::string PlacementAlgorithmName(PlacementAlgorithm value);
std::string CacheAllocationRuleName(CacheAllocationRule value);
std::string StragglerLayerWeightsName(StragglerLayerWeights value);

/// Every field of a scenario config, in SI units (the JSON names carry their units).
struct ScenarioConfig
{
    std::string file; ///< the config file, for messages and the results folder name
    nlohmann::json echo = nlohmann::json::object(); ///< the config as read (with --set applied)

    // model that runs and routes
    std::string modelDir;
    std::optional<wdmoe::llm::DType> dtype; ///< none: the file's
    int threads = 1;
    /// "model.kernel": the expert kernels' instruction set ("auto": the widest this CPU has).
    /// The ISAs sum in different orders, so accuracy figures differ in their last digits.
    wdmoe::llm::KernelIsa kernel = wdmoe::llm::BestKernelIsa();
    /// "model.dense": attention, router and LM head in the stored type on every thread, or
    /// widened to float32 through Eigen on one thread (NLL's last digits differ).
    wdmoe::llm::DenseWeights dense = wdmoe::llm::DenseWeights::Stored;

    // workload: teacher-forced scoring of a text
    std::string textPath;
    int promptTokens = 64;
    int scoredTokens = 256;
    /// "workload.text_per_run": every run scores the text from its beginning ("same"), or run R
    /// starts (R - 1) * (prompt_tokens + scored_tokens) tokens in ("disjoint"), so that runs
    /// score different stretches and accuracy intervals pool more distinct tokens.
    bool disjointTextPerRun = false;
    /// "workload.purpose": "evaluation" refuses a scored text that shares passages with the
    /// calibration or profile text the policy was fitted on; "tuning" scores such a text on
    /// purpose, to choose policy knobs on the calibration text (DESIGN.md section 8).
    bool tuning = false;
    /// "workload.requests" and "serving": many requests served with continuous batching
    /// instead of the single stream (prompt_tokens and scored_tokens then unused and refused)
    std::optional<ServingConfig> serving;

    // model that is priced: "self", a preset, or inline dimensions, over all its layers or
    // only the routed ones
    PricedModel pricedModel = PricedModel{false, CostModel::Mixtral8x7B(), false};

    // cell
    double bandwidthHz = 100e6;
    DuplexMode duplex = DuplexMode::SHARED;
    double ulShare = 0.5;
    std::optional<TddPattern> tdd; ///< duplex TDD only: its slot pattern
    double radiusM = 500;
    double minDistanceM = 35;
    CellPropagation propagation = CellPropagation::THREE_GPP_UMA;
    double carrierHz = 3.5e9;
    double shadowingSigmaDb = 8;
    double coherenceTimeS = 0.01;
    bool fading = true;
    double coherenceBandwidthHz = 0; ///< 0: flat fading over the slice
    bool dopplerCorrelation = false; ///< cell.fading_correlation "doppler" (else "block")
    double minDopplerHz = 0;         ///< floor of the Doppler shift
    double csiDelayS = 0;            ///< age of the BS's channel knowledge
    double bsPowerDbm = 43;
    double devicePowerDbm = 23;
    double noisePsdDbmHz = -174;
    double bsNoiseFigureDb = 5;
    double deviceNoiseFigureDb = 7;
    double efficiency = 1.0;
    LinkMappingPreset linkMapping = LinkMappingPreset::SHANNON;
    /// "cell.truncated_shannon": the "lte" or "nr" preset's mappings (downlink, uplink) with the
    /// parameters given there; none: the preset's own
    std::optional<std::pair<LinkToSystemMapping, LinkToSystemMapping>> truncatedShannon;
    AccessOverhead access;      ///< cell.access (default: the ideal link)
    bool workConserving = true; ///< cell.work_conserving: idle slices go to the running ones
    bool hintAirtime = true;    ///< cell.hint_airtime: prefetch hints are downlink transfers
    double minRateBps = 0;
    std::string mobility = "static"; ///< or an ns-3 MobilityModel TypeId name
    double layerDeadlineS = 0;

    // transport ("transport" and, for "lte", the "lte" object)
    TransportKind transport = TransportKind::LINK;
    std::string lteScheduler = "ns3::PfFfMacScheduler"; ///< "lte.scheduler": a TypeId name
    uint32_t ltePacketBytes = 1400;                     ///< "lte.packet_bytes": UDP payload
    LteRlc lteRlc = LteRlc::AM;                         ///< "lte.rlc"
    bool ltePcap = false;                               ///< "lte.pcap"
    bool lteNetAnim = false;                            ///< "lte.netanim"
    bool lteStats = false;                              ///< "lte.stats"
    /// Where the LTE transport writes its pcap and NetAnim files while it runs (not read from
    /// the file: the program that runs the scenario sets it; wdmoe-run uses
    /// <outDir>/lte-traces.partial). Needed when lte.pcap or lte.netanim is true.
    std::string traceDir;

    // nodes
    /// Where bs.profile and devices.profile names are looked up, in order ("profiles" beside
    /// the config file, then the project's configs/profiles; see profile-reader.h).
    std::vector<std::string> profileFolders;
    /// A profile name, or the path of a profile file (written as a path ending in ".json",
    /// relative to the config file; kept here resolved).
    std::string bsProfile = "edge-server-gpu";
    /// "devices.count"; with deviceGroups, their total (set when read)
    int devices = 8;
    // The object form of "devices" (every device alike); ignored when deviceGroups is set.
    /// "devices.distance_m": every device this far from the BS (horizontally), device i at the
    /// angle 2 pi i / N; 0 (absent): uniform in the annulus [min_distance, radius]
    double deviceDistanceM = 0;
    /// as bsProfile; with deviceGroups, their description (DeviceGroupsText), for messages
    std::string deviceProfile = "jetson-agx-orin";
    double memoryFraction = 0.75; ///< share of device memory for experts
    int storageSlots = 0;         ///< experts a device can host (on storage); 0: its memory slots
    bool warmCache = true;        ///< devices start with their placed experts in memory
    /// "devices" as a list of groups (empty: the object form above)
    std::vector<DeviceGroup> deviceGroups;
    PlacementAlgorithm placement = PlacementAlgorithm::MIN_COST;
    bool replicas = false;

    struct Failure
    {
        int device;
        double atS;
    };

    std::vector<Failure> failures;

    // energy ("energy" object)
    bool energyEnabled = false; ///< the devices' energy is modelled (DeviceEnergyHelper)
    double batteryWh = 0;       ///< each device's battery (Wh); 0: no limit

    // policies ("policy" object): `policy` holds the run-time rules and their knobs
    CacheAllocationRule cacheAllocation = CacheAllocationRule::UNIFORM;
    StragglerLayerWeights stragglerLayerWeights = StragglerLayerWeights::SENSITIVITY;
    InferencePolicy policy;      ///< what the application is given
    std::string profileTextPath; ///< text the dp allocation measures r_l and a_l on
    /// the calibration text named by the model's sensitivity.json, when the policy read it
    std::string calibrationTextPath;
    int profileTokens = 1024; ///< decode tokens of that measurement

    uint32_t seed = 1;
    uint32_t run = 1;

    /// Reads and checks a config: unknown keys, wrong types and out-of-range values are
    /// JsonConfigError naming the file and the dotted field. Paths are relative to the file.
    /// sets: "dotted.key=value" overrides applied to the JSON before it is checked (value is
    /// read as JSON when it parses, else as a string): "cell.bandwidth_mhz=20".
    static ScenarioConfig Load(const std::string& path, const std::vector<std::string>& sets = {});
    /// The same from JSON already read from path; errors in the "policy" object name it as
    /// policyField (a comparison names the list entry it came from).
    static ScenarioConfig FromJson(const std::string& path,
                                   const nlohmann::json& json,
                                   const std::vector<std::string>& sets = {},
                                   const std::string& policyField = "policy");
    /// Checks relations between fields (radius > minimum distance, failure devices exist,
    /// the profiles are found...).
    void Validate() const;
    /// The policy's name for results: policy.name, else built from its rules.
    std::string PolicyName() const;
    /// The device groups: deviceGroups, or the object form as one group of `devices`.
    std::vector<DeviceGroup> Groups() const;
    /// Every device of the cell, in order, with the cell's defaults filled in.
    std::vector<CellDevice> CellDevices() const;
    /// Whether the run writes LTE trace files (lte.pcap, lte.netanim or lte.stats) into
    /// traceDir.
    bool WritesLteTraces() const;
};

/// Applies "dotted.key=value" overrides to a config (value read as JSON when it parses, else
/// as a string), creating missing objects on the way; a key that is not a path of objects is a
/// JsonConfigError naming the file.
void ApplyConfigSets(nlohmann::json& config,
                     const std::vector<std::string>& sets,
                     const std::string& path);

// The values above in result files are their names (found by nlohmann::json through ADL).
#define WDMOE_CONFIG_NAME_TO_JSON(Enum)                                                            \
    template <class BasicJsonType>                                                                 \
    void to_json(BasicJsonType& j, const Enum& value)                                              \
    {                                                                                              \
        j = Enum##Name(value);                                                                     \
    }
WDMOE_CONFIG_NAME_TO_JSON(CellPropagation)
WDMOE_CONFIG_NAME_TO_JSON(LinkMappingPreset)
WDMOE_CONFIG_NAME_TO_JSON(TransportKind)
WDMOE_CONFIG_NAME_TO_JSON(LteRlc)
WDMOE_CONFIG_NAME_TO_JSON(PlacementAlgorithm)
WDMOE_CONFIG_NAME_TO_JSON(GatingRule)
WDMOE_CONFIG_NAME_TO_JSON(SelectionRule)
WDMOE_CONFIG_NAME_TO_JSON(AllocationRule)
WDMOE_CONFIG_NAME_TO_JSON(CacheAllocationRule)
WDMOE_CONFIG_NAME_TO_JSON(StragglerLayerWeights)
#undef WDMOE_CONFIG_NAME_TO_JSON

} // namespace ns3

#endif
