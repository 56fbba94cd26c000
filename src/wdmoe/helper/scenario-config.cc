#include "scenario-config.h"

#include "cell-mobility.h"
#include "gating.h"
#include "json-config.h"
#include "lte-transport.h"
#include "model-config.h"
#include "profile-reader.h"

#include <sstream>

namespace ns3
{

namespace
{

/// A string field that must name one of values (the error lists their names, in this order).
template <class Enum>
Enum
ReadChoice(const JsonConfigReader& r,
           const std::string& key,
           Enum fallback,
           const std::vector<Enum>& values,
           std::string (*name)(Enum))
{
    std::vector<std::string> names;
    for (Enum v : values)
    {
        names.push_back(name(v));
    }
    const std::string chosen = r.Choice(key, name(fallback), names);
    for (Enum v : values)
    {
        if (name(v) == chosen)
        {
            return v;
        }
    }
    return fallback; // not reached: Choice accepts only the names
}

void
ReadModel(const JsonConfigReader& root, ScenarioConfig& c)
{
    const JsonConfigReader model = root.Object("model");
    model.AllowOnly({"path", "dtype", "threads", "kernel", "dense"});
    c.modelDir = root.PathRelativeToFile(model.String("path"));
    if (model.Has("dtype"))
    {
        const std::string dtype = model.String("dtype");
        wdmoe::llm::DType parsed;
        if (!wdmoe::llm::ParseUserDType(dtype, &parsed))
        {
            model.Fail("dtype",
                       "must be \"f32\", \"bf16\" or \"f16\", got " + QuoteForMessage(dtype));
        }
        c.dtype = parsed;
    }
    c.threads = int(model.Integer("threads", 1, 0, 256));
    const std::string kernel = model.String("kernel", "auto");
    wdmoe::llm::KernelIsa isa = wdmoe::llm::BestKernelIsa();
    if (kernel != "auto" && !wdmoe::llm::ParseKernelIsa(kernel, &isa))
    {
        model.Fail("kernel",
                   "must be \"auto\", \"avx512\", \"avx2\" or \"scalar\", got " +
                       QuoteForMessage(kernel));
    }
    try
    {
        wdmoe::llm::CheckKernelIsaSupported(isa);
    }
    catch (const std::invalid_argument& e)
    {
        model.Fail("kernel", e.what());
    }
    c.kernel = isa;
    const std::string dense = model.String("dense", "stored");
    if (!wdmoe::llm::ParseDenseWeights(dense, &c.dense))
    {
        model.Fail("dense", "must be \"stored\" or \"widened\", got " + QuoteForMessage(dense));
    }
}

void
ReadWorkload(const JsonConfigReader& root, ScenarioConfig& c)
{
    const JsonConfigReader workload = root.Object("workload");
    workload.AllowOnly(
        {"text", "prompt_tokens", "scored_tokens", "text_per_run", "purpose", "requests"});
    c.serving = ReadServing(root, workload);
    c.textPath = root.PathRelativeToFile(workload.String("text"));
    c.promptTokens = int(workload.Integer("prompt_tokens", 64, 1, 1 << 20));
    c.scoredTokens = int(workload.Integer("scored_tokens", 256, 1, 1 << 24));
    c.disjointTextPerRun =
        workload.Choice("text_per_run", "same", {"same", "disjoint"}) == "disjoint";
    c.tuning = workload.Choice("purpose", "evaluation", {"evaluation", "tuning"}) == "tuning";
    if (c.serving && c.disjointTextPerRun)
    {
        workload.Fail("text_per_run",
                      "must be \"same\" with workload.requests (the requests take consecutive "
                      "windows of the text)");
    }
}

/// "cell.access": the abstract link's slots, uplink grant, HARQ and packet headers; every
/// field absent is that overhead off.
AccessOverhead
ReadAccess(const JsonConfigReader& cell)
{
    AccessOverhead a;
    const JsonConfigReader r = cell.Object("access");
    r.AllowOnly({"numerology",
                 "uplink_grant_ms",
                 "harq_bler",
                 "harq_rtt_ms",
                 "packet_bytes",
                 "header_bytes"});
    if (r.Has("numerology"))
    {
        a.slot = NanoSeconds(1000000 >> r.Integer("numerology", 0, 0, 4)); // 1 ms / 2^mu
    }
    a.uplinkGrant = Seconds(r.Number("uplink_grant_ms", 0, 0, 100) * 1e-3);
    a.harqBler = r.Number("harq_bler", 0, 0, 0.9);
    if (a.harqBler > 0)
    {
        a.harqRtt = Seconds(r.Number("harq_rtt_ms", 8, 0.001, 100) * 1e-3);
    }
    else if (r.Has("harq_rtt_ms"))
    {
        r.Fail("harq_rtt_ms", "applies only with harq_bler > 0");
    }
    a.packetBytes = uint32_t(r.Integer("packet_bytes", 0, 0, 65535));
    if (a.packetBytes > 0)
    {
        // UDP 8 + IPv4 20 + PDCP 2 + RLC 2 + MAC 3 bytes.
        a.headerBytes = uint32_t(r.Integer("header_bytes", 35, 0, 1000));
    }
    else if (r.Has("header_bytes"))
    {
        r.Fail("header_bytes", "applies only with packet_bytes > 0");
    }
    return a;
}

/// "cell.tdd" (duplex "tdd" only): the slot pattern, its numerology and the special slot's
/// symbols. The numerology is the access overhead's slot too: cell.access gives none of its own.
void
ReadTdd(const JsonConfigReader& cell, ScenarioConfig& c)
{
    const JsonConfigReader r = cell.Object("tdd");
    r.AllowOnly({"pattern",
                 "numerology",
                 "special_dl_symbols",
                 "special_guard_symbols",
                 "special_ul_symbols"});
    if (c.duplex != DuplexMode::TDD)
    {
        if (cell.Has("tdd"))
        {
            cell.Fail("tdd", "applies to duplex \"tdd\" only");
        }
        return;
    }
    // DDDSU with a 10:2:2 special slot at 30 kHz: a common 3.5 GHz (n78) configuration.
    const std::string pattern = r.String("pattern", "DDDSU");
    const auto numerology = uint32_t(r.Integer("numerology", 1, 0, 4));
    const auto dl = uint32_t(r.Integer("special_dl_symbols", 10, 0, 14));
    const auto guard = uint32_t(r.Integer("special_guard_symbols", 2, 0, 14));
    const auto ul = uint32_t(r.Integer("special_ul_symbols", 2, 0, 14));
    if (dl + guard + ul != TddPattern::kSymbolsPerSlot)
    {
        r.Fail("special_dl_symbols",
               "with special_guard_symbols and special_ul_symbols must add up to 14 (one slot), "
               "got " +
                   std::to_string(dl + guard + ul));
    }
    try
    {
        c.tdd.emplace(pattern, numerology, dl, guard, ul);
    }
    catch (const std::invalid_argument& e)
    {
        r.Fail("pattern", std::string("expected ") + e.what() + ", got \"" + pattern + "\"");
    }
    if (cell.Object("access").Has("numerology"))
    {
        cell.Object("access").Fail("numerology",
                                   "does not apply with duplex \"tdd\" (the slots are "
                                   "cell.tdd.numerology's)");
    }
    if (cell.Has("access"))
    {
        c.access.slot = c.tdd->Slot();
    }
}

/// "cell.truncated_shannon": the preset's truncated-Shannon parameters per direction, each
/// field given replacing the preset's (after cell.link_mapping).
void
ReadTruncatedShannon(const JsonConfigReader& cell, ScenarioConfig& c)
{
    if (!cell.Has("truncated_shannon"))
    {
        return;
    }
    if (c.linkMapping != LinkMappingPreset::LTE && c.linkMapping != LinkMappingPreset::NR)
    {
        cell.Fail("truncated_shannon",
                  "applies to link_mapping \"lte\" or \"nr\" only (the truncated Shannon "
                  "bound), link_mapping is \"" +
                      LinkMappingPresetName(c.linkMapping) + "\"");
    }
    const JsonConfigReader t = cell.Object("truncated_shannon");
    t.AllowOnly({"downlink", "uplink"});
    auto read = [&t](const char* direction, const LinkToSystemMapping& preset) {
        const JsonConfigReader r = t.Object(direction);
        r.AllowOnly({"alpha", "min_sinr_db", "max_bps_hz"});
        return LinkToSystemMapping::TruncatedShannon(
            r.Number("alpha", preset.Alpha(), 0.01, 1),
            r.Number("min_sinr_db", preset.MinSinrDb(), -30, 30),
            r.Number("max_bps_hz", preset.MaxEfficiency(), 0.01, 30));
    };
    const auto preset = LinkMappingsOf(c.linkMapping, 1.0);
    c.truncatedShannon.emplace(read("downlink", preset.first), read("uplink", preset.second));
}

/// The fading's frequency selectivity, time correlation and the BS's CSI delay (after
/// cell.fading and cell.carrier_ghz).
void
ReadFadingDetail(const JsonConfigReader& cell, ScenarioConfig& c)
{
    c.coherenceBandwidthHz = cell.Number("coherence_bandwidth_mhz", 0, 1e-3, 1e5) * 1e6;
    c.dopplerCorrelation =
        cell.Choice("fading_correlation", "block", {"block", "doppler"}) == "doppler";
    // Static devices still see moving scatterers: IEEE 802.11 TGn's channel models (Erceg et
    // al., IEEE 802.11-03/940r4) use an environmental speed of 1.2 km/h.
    const double environmentHz = 1.2 / 3.6 * c.carrierHz / 299792458.0;
    c.minDopplerHz = cell.Number("min_doppler_hz", environmentHz, 0, 1e5);
    c.csiDelayS = cell.Number("csi_delay_ms", 0, 0, 1e6) * 1e-3;
    if (cell.Has("min_doppler_hz") && !c.dopplerCorrelation)
    {
        cell.Fail("min_doppler_hz", "applies to fading_correlation \"doppler\" only");
    }
    for (const char* key :
         {"coherence_bandwidth_mhz", "fading_correlation", "min_doppler_hz", "csi_delay_ms"})
    {
        if (cell.Has(key) && !c.fading)
        {
            cell.Fail(key, "applies only with cell.fading true");
        }
    }
}

void
ReadCell(const JsonConfigReader& root, ScenarioConfig& c)
{
    const JsonConfigReader cell = root.Object("cell");
    cell.AllowOnly({"bandwidth_mhz",
                    "duplex",
                    "ul_share",
                    "radius_m",
                    "min_distance_m",
                    "propagation",
                    "carrier_ghz",
                    "shadowing_sigma_db",
                    "coherence_time_ms",
                    "fading",
                    "coherence_bandwidth_mhz",
                    "fading_correlation",
                    "min_doppler_hz",
                    "csi_delay_ms",
                    "bs_power_dbm",
                    "device_power_dbm",
                    "noise_psd_dbm_hz",
                    "bs_noise_figure_db",
                    "device_noise_figure_db",
                    "efficiency",
                    "link_mapping",
                    "truncated_shannon",
                    "access",
                    "tdd",
                    "work_conserving",
                    "hint_airtime",
                    "min_rate_mbps",
                    "mobility",
                    "layer_deadline_ms"});
    c.bandwidthHz = cell.Number("bandwidth_mhz", 100, 1e-3, 1e5) * 1e6;
    c.duplex = DuplexModeFromString(cell.Choice("duplex", "shared", {"shared", "fdd", "tdd"}));
    c.ulShare = cell.Number("ul_share", 0.5, 0.01, 0.99);
    if (cell.Has("ul_share") && c.duplex != DuplexMode::FDD)
    {
        cell.Fail("ul_share", "applies to duplex \"fdd\" only (the other modes have one pool)");
    }
    c.radiusM = cell.Number("radius_m", 500, 1, 1e5);
    c.minDistanceM = cell.Number("min_distance_m", 35, 1, 1e5);
    c.propagation = ReadChoice(cell,
                               "propagation",
                               CellPropagation::THREE_GPP_UMA,
                               {CellPropagation::THREE_GPP_UMA, CellPropagation::LOG_DISTANCE_128},
                               &CellPropagationName);
    c.carrierHz = cell.Number("carrier_ghz", 3.5, 0.5, 100) * 1e9;
    c.shadowingSigmaDb = cell.Number("shadowing_sigma_db", 8, 0, 30);
    c.coherenceTimeS = cell.Number("coherence_time_ms", 10, 1e-3, 1e6) * 1e-3;
    c.fading = cell.Bool("fading", true);
    ReadFadingDetail(cell, c);
    c.bsPowerDbm = cell.Number("bs_power_dbm", 43, -30, 80);
    c.devicePowerDbm = cell.Number("device_power_dbm", 23, -30, 60);
    c.noisePsdDbmHz = cell.Number("noise_psd_dbm_hz", -174, -250, -100);
    c.bsNoiseFigureDb = cell.Number("bs_noise_figure_db", 5, 0, 30);
    c.deviceNoiseFigureDb = cell.Number("device_noise_figure_db", 7, 0, 30);
    c.efficiency = cell.Number("efficiency", 1.0, 1e-3, 1.0);
    c.linkMapping = ReadChoice(cell,
                               "link_mapping",
                               LinkMappingPreset::SHANNON,
                               {LinkMappingPreset::SHANNON,
                                LinkMappingPreset::LTE,
                                LinkMappingPreset::NR,
                                LinkMappingPreset::LTE_CQI},
                               &LinkMappingPresetName);
    if (c.linkMapping != LinkMappingPreset::SHANNON && cell.Has("efficiency"))
    {
        cell.Fail("efficiency",
                  "applies to link_mapping \"shannon\" only (the \"" +
                      LinkMappingPresetName(c.linkMapping) + "\" mapping has its own)");
    }
    ReadTruncatedShannon(cell, c);
    c.minRateBps = cell.Number("min_rate_mbps", 0, 0, 1e6) * 1e6;
    c.access = ReadAccess(cell);
    ReadTdd(cell, c);
    c.workConserving = cell.Bool("work_conserving", true);
    c.hintAirtime = cell.Bool("hint_airtime", true);
    c.mobility = cell.String("mobility", "static");
    c.layerDeadlineS = cell.Number("layer_deadline_ms", 0, 0, 1e9) * 1e-3;
}

/// With "transport": "lte", the cell fields of the abstract link only: ns-3's LTE has its own
/// channel, access and scheduler.
void
RefuseAbstractLinkFields(const JsonConfigReader& cell)
{
    for (const char* key :
         {"coherence_bandwidth_mhz", "fading_correlation", "min_doppler_hz", "csi_delay_ms"})
    {
        if (cell.Has(key))
        {
            cell.Fail(key,
                      "does not apply with \"transport\": \"lte\" (ns-3's LTE has its own "
                      "channel and CQI reports)");
        }
    }
    for (const char* key : {"work_conserving", "hint_airtime"})
    {
        if (cell.Has(key))
        {
            cell.Fail(key,
                      "does not apply with \"transport\": \"lte\" (the eNB's MAC scheduler "
                      "shares the resource blocks, and a hint is a datagram on the device's "
                      "bearer)");
        }
    }
}

/// "transport" and the "lte" object (after the cell and the devices, which LTE constrains).
void
ReadTransport(const JsonConfigReader& root, ScenarioConfig& c)
{
    c.transport = ReadChoice(root,
                             "transport",
                             TransportKind::LINK,
                             {TransportKind::LINK, TransportKind::LTE},
                             &TransportKindName);
    const JsonConfigReader lte = root.Object("lte");
    lte.AllowOnly({"scheduler", "packet_bytes", "rlc", "pcap", "netanim", "stats"});
    if (c.transport != TransportKind::LTE)
    {
        if (root.Has("lte"))
        {
            root.Fail("lte", "applies to \"transport\": \"lte\" only (transport is \"link\")");
        }
        return;
    }
    const std::vector<std::string> schedulers = LteTransport::Schedulers();
    c.lteScheduler = lte.Choice("scheduler", "ns3::PfFfMacScheduler", schedulers);
    c.ltePacketBytes =
        uint32_t(lte.Integer("packet_bytes", 1400, LteTransport::kHeaderBytes + 1, 1472));
    c.lteRlc = ReadChoice(lte, "rlc", LteRlc::AM, {LteRlc::AM, LteRlc::UM}, &LteRlcName);
    c.ltePcap = lte.Bool("pcap", false);
    c.lteNetAnim = lte.Bool("netanim", false);
    c.lteStats = lte.Bool("stats", false);
    const JsonConfigReader cell = root.Object("cell");
    if (c.duplex != DuplexMode::FDD)
    {
        cell.Fail("duplex", "must be \"fdd\" with \"transport\": \"lte\" (ns-3's LTE is FDD)");
    }
    if (LteTransport::ResourceBlocksOf(c.bandwidthHz) == 0)
    {
        std::ostringstream got;
        got << c.bandwidthHz / 1e6;
        cell.Fail("bandwidth_mhz",
                  "must be an LTE carrier with \"transport\": \"lte\": 1.4, 3, 5, 10, 15 or 20 "
                  "(MHz in each direction, FDD; ns-3 3.37's LTE carrier aggregation is not used), "
                  "got " +
                      got.str());
    }
    if (cell.Has("ul_share"))
    {
        cell.Fail("ul_share",
                  "does not apply with \"transport\": \"lte\" (each direction has its own "
                  "carrier of cell.bandwidth_mhz)");
    }
    if (cell.Has("min_rate_mbps"))
    {
        cell.Fail("min_rate_mbps",
                  "does not apply with \"transport\": \"lte\" (a UE is in coverage until its "
                  "radio link fails)");
    }
    RefuseAbstractLinkFields(cell);
    if (c.devices > 319)
    {
        root.Fail(c.deviceGroups.empty() ? "devices.count" : "devices",
                  "must be at most 319 with \"transport\": \"lte\" (one sounding slot per UE), "
                  "got " +
                      std::to_string(c.devices));
    }
}

/// "bs", "devices" and "placement".
void
ReadNodes(const JsonConfigReader& root, ScenarioConfig& c)
{
    const JsonConfigReader bs = root.Object("bs");
    bs.AllowOnly({"profile"});
    c.bsProfile = ReadProfileField(root, bs, "profile", "edge-server-gpu");

    if (c.echo.contains("devices") && c.echo["devices"].is_array())
    {
        c.deviceGroups = ReadDeviceGroups(root, c.echo["devices"]);
        c.devices = 0;
        for (const DeviceGroup& g : c.deviceGroups)
        {
            c.devices += g.count;
        }
        c.deviceProfile = DeviceGroupsText(c.deviceGroups);
    }
    else
    {
        const JsonConfigReader devices = root.Object("devices");
        devices.AllowOnly(
            {"count", "distance_m", "profile", "memory_fraction", "storage_slots", "warm_cache"});
        c.devices = int(devices.Integer("count", 8, 1, 4096));
        c.deviceDistanceM = devices.Number("distance_m", 0, 1, 1e5);
        c.deviceProfile = ReadProfileField(root, devices, "profile", "jetson-agx-orin");
        c.memoryFraction = devices.Number("memory_fraction", 0.75, 0, 1);
        c.storageSlots = int(devices.Integer("storage_slots", 0, 0, 1 << 20));
        c.warmCache = devices.Bool("warm_cache", true);
    }

    const JsonConfigReader placement = root.Object("placement");
    placement.AllowOnly({"algorithm", "replicas"});
    c.placement = ReadChoice(placement,
                             "algorithm",
                             PlacementAlgorithm::MIN_COST,
                             {PlacementAlgorithm::MIN_COST,
                              PlacementAlgorithm::ROUND_ROBIN,
                              PlacementAlgorithm::CHANNEL_AWARE,
                              PlacementAlgorithm::MIN_COST_POPULARITY},
                             &PlacementAlgorithmName);
    c.replicas = placement.Bool("replicas", false);
}

void
ReadFailures(const JsonConfigReader& root, ScenarioConfig& c)
{
    if (!c.echo.contains("failures"))
    {
        return;
    }
    const nlohmann::json& list = c.echo["failures"];
    if (!list.is_array())
    {
        root.Fail("failures", "must be a list of {\"device\": N, \"at_s\": T}");
    }
    for (std::size_t i = 0; i < list.size(); ++i)
    {
        const JsonConfigReader f(root.File(), list[i], "failures[" + std::to_string(i) + "]");
        f.AllowOnly({"device", "at_s"});
        if (!f.Has("device") || !f.Has("at_s"))
        {
            f.Fail("device", "and \"at_s\" are both required");
        }
        c.failures.push_back({int(f.Integer("device", 0, 0, 4095)), f.Number("at_s", 0, 0, 1e9)});
    }
}

/// "energy": whether the devices' energy is modelled, and their battery.
void
ReadEnergy(const JsonConfigReader& root, ScenarioConfig& c)
{
    const JsonConfigReader energy = root.Object("energy");
    energy.AllowOnly({"enabled", "battery_wh"});
    c.energyEnabled = energy.Bool("enabled", false);
    c.batteryWh = energy.Number("battery_wh", 0, 0, 1e6);
    if (energy.Has("battery_wh") && !(c.batteryWh > 0))
    {
        energy.Fail("battery_wh", "must be > 0 (leave it out for no battery limit)");
    }
    if (energy.Has("battery_wh") && !c.energyEnabled)
    {
        energy.Fail("battery_wh",
                    "needs energy.enabled true (a battery drains only while "
                    "energy is modelled)");
    }
}

/// The "policy" object (an empty one when absent), its errors named as policyField.
JsonConfigReader
PolicyReader(const JsonConfigReader& root, const ScenarioConfig& c, const std::string& policyField)
{
    static const nlohmann::json noPolicy = nlohmann::json::object();
    const JsonConfigReader policy(root.File(),
                                  c.echo.contains("policy") ? c.echo["policy"] : noPolicy,
                                  policyField);
    if (c.echo.contains("policy") && !c.echo["policy"].is_object())
    {
        root.Fail("policy", "must be an object");
    }
    policy.AllowOnly({"name",
                      "gating",
                      "adaptive_threshold",
                      "adaptive_prefill",
                      "selection",
                      "wlr_theta",
                      "straggler_weight_max",
                      "straggler_gain_min",
                      "straggler_tradeoff",
                      "straggler_layer_weights",
                      "energy_weight_min",
                      "energy_latency_slack",
                      "allocation",
                      "joint_max_iterations",
                      "minmax_floor",
                      "cache_allocation",
                      "prefetch",
                      "prefetch_hint_bits",
                      "profile_text",
                      "profile_tokens"});
    return policy;
}

/// The policy's rules and knobs into c.policy; the cache split and layer weights into c.
void
ReadPolicy(const JsonConfigReader& root, const JsonConfigReader& policy, ScenarioConfig& c)
{
    InferencePolicy& p = c.policy;
    p.gating = ReadChoice(policy,
                          "gating",
                          GatingRule::TOP_K,
                          {GatingRule::TOP_K, GatingRule::ADAPTIVE},
                          &GatingRuleName);
    p.adaptiveThreshold = policy.Number("adaptive_threshold", 0.005, 0, 1e6);
    p.adaptivePrefill = policy.Bool("adaptive_prefill", false);
    p.selection = ReadChoice(
        policy,
        "selection",
        SelectionRule::ALL,
        {SelectionRule::ALL, SelectionRule::WLR, SelectionRule::STRAGGLER, SelectionRule::ENERGY},
        &SelectionRuleName);
    p.wlrTheta = policy.Number("wlr_theta", 0.5, 0, 1e6);
    const StragglerBounds stragglerDefaults;
    p.straggler.weightMax =
        policy.Number("straggler_weight_max", stragglerDefaults.weightMax, 0, 1);
    p.straggler.gainMin = policy.Number("straggler_gain_min", stragglerDefaults.gainMin, 0, 1);
    p.straggler.tradeoff = policy.Number("straggler_tradeoff", stragglerDefaults.tradeoff, 0, 1e6);
    const EnergyBounds energyDefaults;
    p.energy.weightMin = policy.Number("energy_weight_min", energyDefaults.weightMin, 0, 1);
    p.energy.latencySlack =
        policy.Number("energy_latency_slack", energyDefaults.latencySlack, 0, 1e6);
    c.stragglerLayerWeights =
        ReadChoice(policy,
                   "straggler_layer_weights",
                   StragglerLayerWeights::SENSITIVITY,
                   {StragglerLayerWeights::SENSITIVITY, StragglerLayerWeights::UNIFORM},
                   &StragglerLayerWeightsName);
    p.allocation = ReadChoice(policy,
                              "allocation",
                              AllocationRule::EQUAL,
                              {AllocationRule::EQUAL,
                               AllocationRule::PROPORTIONAL,
                               AllocationRule::MINMAX,
                               AllocationRule::JOINT},
                              &AllocationRuleName);
    p.minmaxFloor = policy.Number("minmax_floor", 0, 0, 1);
    p.jointMaxIterations = int(policy.Integer("joint_max_iterations", 10, 1, 1000));
    c.cacheAllocation = ReadChoice(policy,
                                   "cache_allocation",
                                   CacheAllocationRule::UNIFORM,
                                   {CacheAllocationRule::UNIFORM, CacheAllocationRule::DP},
                                   &CacheAllocationRuleName);
    p.prefetch = policy.Bool("prefetch", false);
    p.hintBits = policy.Number("prefetch_hint_bits", 256, 1, 1e9);
    if (policy.Has("profile_text"))
    {
        c.profileTextPath = root.PathRelativeToFile(policy.String("profile_text"));
    }
    c.profileTokens = int(policy.Integer("profile_tokens", 1024, 1, 1 << 24));
    p.name = policy.String("name", "");
}

/// The model's calibrated sensitivities; a model without them fails the field that needs them.
wdmoe::llm::SensitivityTable
LoadSensitivities(const JsonConfigReader& policy,
                  const ScenarioConfig& c,
                  int layers,
                  bool stragglerNeedsSensitivity)
{
    try
    {
        return wdmoe::llm::SensitivityTable::Load(c.modelDir, layers);
    }
    catch (const std::exception& e)
    {
        if (c.policy.Adaptive())
        {
            policy.Fail("gating",
                        "\"adaptive\" needs the model's calibrated sensitivities (./wdmoe "
                        "calibrate " +
                            c.modelDir + " TEXT): " + e.what());
        }
        if (stragglerNeedsSensitivity)
        {
            policy.Fail("straggler_layer_weights",
                        "\"sensitivity\" needs the model's calibrated sensitivities "
                        "(./wdmoe calibrate " +
                            c.modelDir + " TEXT, or set \"uniform\"): " + e.what());
        }
        policy.Fail("profile_text",
                    "is needed by cache_allocation \"dp\" and by placement.algorithm "
                    "\"channel-aware\" and \"min-cost-popularity\" (the model has no "
                    "sensitivity.json naming a calibration text)");
    }
}

/// What the policy needs from the model folder, read now so that a comparison or a sweep fails
/// before its first run (a model that does not load is reported when it runs): the priced
/// depth checked against the routed one, adaptive gating's sensitivities, the straggler rule's
/// layer weights, and the calibration text they name (the dp allocation's default profile
/// text).
void
ReadModelFolderNeeds(const JsonConfigReader& root,
                     const JsonConfigReader& policy,
                     ScenarioConfig& c)
{
    wdmoe::llm::ModelConfig modelConfig;
    try
    {
        modelConfig = wdmoe::llm::ModelConfig::Load(c.modelDir + "/config.json");
    }
    catch (const std::exception&)
    {
        return;
    }
    // A depth mismatch fails now, before a comparison's or a sweep's first run.
    c.pricedModel.Resolve(root, CostModel(), modelConfig.numHiddenLayers);
    InferencePolicy& p = c.policy;
    // The dp cache split and the popularity placements measure routing on a profile text.
    const bool profileTextNeeded =
        (c.cacheAllocation == CacheAllocationRule::DP || PlacementUsesPopularity(c.placement)) &&
        c.profileTextPath.empty();
    const bool stragglerNeedsSensitivity =
        p.selection == SelectionRule::STRAGGLER &&
        c.stragglerLayerWeights == StragglerLayerWeights::SENSITIVITY;
    if (!p.Adaptive() && !profileTextNeeded && !stragglerNeedsSensitivity)
    {
        return;
    }
    const wdmoe::llm::SensitivityTable table =
        LoadSensitivities(policy, c, modelConfig.numHiddenLayers, stragglerNeedsSensitivity);
    if (p.Adaptive())
    {
        p.sensitivity = table.sensitivity;
    }
    if (stragglerNeedsSensitivity)
    {
        // F_l relative to the mean: the straggler rule's price of a drop at each layer.
        double mean = 0;
        for (double f : table.sensitivity)
        {
            mean += f / table.sensitivity.size();
        }
        for (double f : table.sensitivity)
        {
            p.stragglerLayerScale.push_back(mean > 0 ? f / mean : 1.0);
        }
    }
    c.calibrationTextPath = c.modelDir + "/" + table.calibrationText;
    if (profileTextNeeded)
    {
        c.profileTextPath = c.calibrationTextPath;
    }
}

} // namespace

std::string
CellPropagationName(CellPropagation value)
{
    return value == CellPropagation::THREE_GPP_UMA ? "3gpp-uma" : "log-distance-128";
}

std::string
LinkMappingPresetName(LinkMappingPreset value)
{
    switch (value)
    {
    case LinkMappingPreset::LTE:
        return "lte";
    case LinkMappingPreset::NR:
        return "nr";
    case LinkMappingPreset::LTE_CQI:
        return "lte-cqi";
    case LinkMappingPreset::SHANNON:
    default:
        return "shannon";
    }
}

std::pair<LinkToSystemMapping, LinkToSystemMapping>
LinkMappingsOf(LinkMappingPreset preset, double efficiency)
{
    switch (preset)
    {
    case LinkMappingPreset::LTE:
        return {LinkToSystemMapping::LteDownlink(), LinkToSystemMapping::LteUplink()};
    case LinkMappingPreset::NR:
        return {LinkToSystemMapping::NrDownlink(), LinkToSystemMapping::NrUplink()};
    case LinkMappingPreset::LTE_CQI:
        return {LinkToSystemMapping::LteCqi(), LinkToSystemMapping::LteCqi()};
    case LinkMappingPreset::SHANNON:
    default:
        return {LinkToSystemMapping::Shannon(efficiency), LinkToSystemMapping::Shannon(efficiency)};
    }
}

std::string
TransportKindName(TransportKind value)
{
    return value == TransportKind::LTE ? "lte" : "link";
}

std::string
LteRlcName(LteRlc value)
{
    return value == LteRlc::UM ? "um" : "am";
}

std::string
PlacementAlgorithmName(PlacementAlgorithm value)
{
    switch (value)
    {
    case PlacementAlgorithm::ROUND_ROBIN:
        return "round-robin";
    case PlacementAlgorithm::CHANNEL_AWARE:
        return "channel-aware";
    case PlacementAlgorithm::MIN_COST_POPULARITY:
        return "min-cost-popularity";
    case PlacementAlgorithm::MIN_COST:
    default:
        return "min-cost";
    }
}

bool
PlacementUsesPopularity(PlacementAlgorithm value)
{
    return value == PlacementAlgorithm::CHANNEL_AWARE ||
           value == PlacementAlgorithm::MIN_COST_POPULARITY;
}

std::string
CacheAllocationRuleName(CacheAllocationRule value)
{
    return value == CacheAllocationRule::DP ? "dp" : "uniform";
}

std::string
StragglerLayerWeightsName(StragglerLayerWeights value)
{
    return value == StragglerLayerWeights::UNIFORM ? "uniform" : "sensitivity";
}

void
ApplyConfigSets(nlohmann::json& config,
                const std::vector<std::string>& sets,
                const std::string& path)
{
    for (const std::string& set : sets)
    {
        const auto eq = set.find('=');
        if (eq == std::string::npos || eq == 0)
        {
            throw JsonConfigError("--set expects dotted.key=value, got " + QuoteForMessage(set));
        }
        const std::string key = set.substr(0, eq);
        const std::string text = set.substr(eq + 1);
        // JSON when it is JSON (checked like a file), else a plain string such as fdd.
        const nlohmann::json value = ParseJsonConfigValue(path + ": --set " + key, text);
        nlohmann::json* node = &config;
        std::size_t begin = 0;
        while (true)
        {
            const auto dot = key.find('.', begin);
            const std::string part = key.substr(begin, dot - begin);
            if (part.empty() || !node->is_object())
            {
                throw JsonConfigError(path + ": --set " + QuoteForMessage(set) + ": " +
                                      QuoteForMessage(key.substr(0, dot)) +
                                      " is not a path of objects in the config");
            }
            if (dot == std::string::npos)
            {
                (*node)[part] = value;
                break;
            }
            node = &(*node)[part];
            if (node->is_null())
            {
                *node = nlohmann::json::object();
            }
            begin = dot + 1;
        }
    }
}

ScenarioConfig
ScenarioConfig::Load(const std::string& path, const std::vector<std::string>& sets)
{
    return FromJson(path, ReadJsonConfigFile(path), sets);
}

ScenarioConfig
ScenarioConfig::FromJson(const std::string& path,
                         const nlohmann::json& json,
                         const std::vector<std::string>& sets,
                         const std::string& policyField)
{
    ScenarioConfig c;
    c.file = path;
    c.echo = json;
    ApplyConfigSets(c.echo, sets, path);
    const JsonConfigReader root(path, c.echo);
    root.AllowOnly({"description",
                    "model",
                    "workload",
                    "cost_model",
                    "cell",
                    "bs",
                    "devices",
                    "placement",
                    "failures",
                    "policy",
                    "seed",
                    "run",
                    "transport",
                    "lte",
                    "energy",
                    "serving"});
    root.String("description", "");
    ReadModel(root, c);
    ReadWorkload(root, c);
    c.pricedModel = PricedModel::Read(root);
    ReadCell(root, c);
    ReadNodes(root, c);
    ReadTransport(root, c);
    ReadFailures(root, c);
    ReadEnergy(root, c);
    const JsonConfigReader policy = PolicyReader(root, c, policyField);
    ReadPolicy(root, policy, c);
    if (c.serving && c.policy.prefetch)
    {
        policy.Fail("prefetch",
                    "predicts from one token's gate and is not defined for a batch of served "
                    "requests (workload.requests)");
    }
    c.policy.name = c.PolicyName();
    ReadModelFolderNeeds(root, policy, c);
    c.seed = uint32_t(root.Integer("seed", 1, 1, 0xffffffffLL));
    c.run = uint32_t(root.Integer("run", 1, 1, 0xffffffffLL));
    c.profileFolders = ProfileFolders(path);
    c.Validate();
    return c;
}

std::vector<DeviceGroup>
ScenarioConfig::Groups() const
{
    if (!deviceGroups.empty())
    {
        return deviceGroups;
    }
    DeviceGroup g;
    g.profile = deviceProfile;
    g.count = devices;
    g.distanceM = deviceDistanceM;
    g.memoryFraction = memoryFraction;
    g.storageSlots = storageSlots;
    g.warmCache = warmCache;
    return {g};
}

std::vector<CellDevice>
ScenarioConfig::CellDevices() const
{
    return ExpandDeviceGroups(Groups(), devicePowerDbm, minDistanceM, radiusM);
}

bool
ScenarioConfig::WritesLteTraces() const
{
    return ltePcap || lteNetAnim || lteStats;
}

std::string
ScenarioConfig::PolicyName() const
{
    if (!policy.name.empty())
    {
        return policy.name;
    }
    std::string name = policy.Adaptive() ? "adaptive" : "top-k";
    name +=
        policy.selection == SelectionRule::ALL ? "" : " + " + SelectionRuleName(policy.selection);
    name += " + " + AllocationRuleName(policy.allocation);
    if (cacheAllocation == CacheAllocationRule::DP)
    {
        name += " + cache dp";
    }
    if (policy.prefetch)
    {
        name += " + prefetch";
    }
    return name;
}

void
ScenarioConfig::Validate() const
{
    const JsonConfigReader root(file, nlohmann::json::object());
    if (radiusM <= minDistanceM)
    {
        root.Fail("cell.radius_m",
                  "must exceed cell.min_distance_m (" + std::to_string(minDistanceM) + " m), got " +
                      std::to_string(radiusM));
    }
    if (devices < 1)
    {
        root.Fail("devices.count", "must be at least 1, got " + std::to_string(devices));
    }
    CheckDeviceGroupPositions(root, deviceGroups, minDistanceM, radiusM, "devices");
    if (deviceGroups.empty() && deviceDistanceM > 0 &&
        (deviceDistanceM < minDistanceM || deviceDistanceM > radiusM))
    {
        std::ostringstream got;
        got << "must be in [cell.min_distance_m, cell.radius_m] = [" << minDistanceM << ", "
            << radiusM << "] m, got " << deviceDistanceM;
        root.Fail("devices.distance_m", got.str());
    }
    if (!failures.empty() && layerDeadlineS <= 0)
    {
        root.Fail("failures",
                  "need cell.layer_deadline_ms > 0: the BS learns that a device is "
                  "gone only when the layer deadline passes without its result");
    }
    for (std::size_t i = 0; i < failures.size(); ++i)
    {
        if (failures[i].device >= devices)
        {
            root.Fail("failures[" + std::to_string(i) + "].device",
                      "names device " + std::to_string(failures[i].device) + " but the cell has " +
                          std::to_string(devices) + " devices (0-based)");
        }
    }
    if (batteryWh > 0 && layerDeadlineS <= 0)
    {
        root.Fail("energy.battery_wh",
                  "needs cell.layer_deadline_ms > 0: a device whose battery empties switches "
                  "off, and the BS learns that it is gone only when the layer deadline passes");
    }
    if (energyEnabled && transport == TransportKind::LTE)
    {
        root.Fail("energy.enabled",
                  "is not supported with \"transport\": \"lte\" (the LTE transport does not "
                  "report its transfers' airtime, which the radio energy is booked from)");
    }
    CheckCellMobility(root, "cell.mobility", mobility);
    std::vector<std::pair<std::string, std::string>> profiles = {{"bs.profile", bsProfile}};
    const std::vector<DeviceGroup> groups = Groups();
    for (std::size_t i = 0; i < groups.size(); ++i)
    {
        profiles.emplace_back(deviceGroups.empty() ? std::string("devices.profile")
                                                   : "devices[" + std::to_string(i) + "].profile",
                              groups[i].profile);
    }
    for (const auto& [field, name] : profiles)
    {
        if (FindComputeProfile(profileFolders, name).empty())
        {
            root.Fail(field,
                      "names no profile: looked in " + ProfileSearchText(profileFolders, name) +
                          ", got " + QuoteForMessage(name));
        }
    }
}

} // namespace ns3
