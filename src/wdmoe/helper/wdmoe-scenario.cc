#include "wdmoe-scenario.h"

#include "cache-allocation.h"
#include "calibration.h"
#include "cell-mobility.h"
#include "compute-profile.h"
#include "confidence-interval.h"
#include "cost-model-json.h"
#include "cost-model.h"
#include "expert-placement.h"
#include "gating.h"
#include "json-config.h"
#include "json-input.h"
#include "mixtral-model.h"
#include "model-config.h"
#include "moe-inference-app.h"
#include "profile-reader.h"
#include "result-files.h"
#include "scenario-warnings.h"
#include "tokenizer.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/mobility-model.h"
#include "ns3/node-container.h"
#include "ns3/pointer.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("WdmoeScenario");

namespace
{

std::string
ReadText(const std::string& path, const JsonConfigReader& where, const std::string& field)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        where.Fail(field, "names a file that cannot be read: " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// True when the texts share a passage: one of up to 32 windows of 64 bytes spread evenly over
/// `evaluation` occurs in `calibration` (a text scored with knowledge tuned on itself would
/// flatter the policy).
bool
TextsOverlap(const std::string& evaluation, const std::string& calibration)
{
    const std::size_t window = 64;
    if (evaluation.size() < window)
    {
        return calibration.find(evaluation) != std::string::npos;
    }
    const std::size_t probes = 32;
    for (std::size_t i = 0; i < probes; ++i)
    {
        const std::size_t at = (evaluation.size() - window) * i / (probes - 1);
        if (calibration.find(evaluation.substr(at, window)) != std::string::npos)
        {
            return true;
        }
    }
    return false;
}

/// Where run c.run starts scoring the text (workload.text_per_run).
std::size_t
TextStart(const ScenarioConfig& c)
{
    return c.disjointTextPerRun
               ? std::size_t(c.run - 1) * std::size_t(c.promptTokens + c.scoredTokens)
               : 0;
}

} // namespace

void
ApplyConfigSets(nlohmann::json& config, const std::vector<std::string>& sets, const std::string& path)
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
                    "run"});
    root.String("description", "");

    const JsonConfigReader model = root.Object("model");
    model.AllowOnly({"path", "dtype", "threads"});
    c.modelDir = root.PathRelativeToFile(model.String("path"));
    c.dtype = model.String("dtype", "");
    if (!c.dtype.empty() && c.dtype != "f32" && c.dtype != "bf16" && c.dtype != "f16")
    {
        model.Fail("dtype",
                   "must be \"f32\", \"bf16\" or \"f16\", got " + QuoteForMessage(c.dtype));
    }
    c.threads = int(model.Integer("threads", 1, 0, 256));

    const JsonConfigReader workload = root.Object("workload");
    workload.AllowOnly({"text", "prompt_tokens", "scored_tokens", "text_per_run", "purpose"});
    c.textPath = root.PathRelativeToFile(workload.String("text"));
    c.promptTokens = int(workload.Integer("prompt_tokens", 64, 1, 1 << 20));
    c.scoredTokens = int(workload.Integer("scored_tokens", 256, 1, 1 << 24));
    c.disjointTextPerRun =
        workload.Choice("text_per_run", "same", {"same", "disjoint"}) == "disjoint";
    c.tuning = workload.Choice("purpose", "evaluation", {"evaluation", "tuning"}) == "tuning";

    c.pricedModel = PricedModel::Read(root);

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
                    "bs_power_dbm",
                    "device_power_dbm",
                    "noise_psd_dbm_hz",
                    "bs_noise_figure_db",
                    "device_noise_figure_db",
                    "efficiency",
                    "min_rate_mbps",
                    "mobility",
                    "layer_deadline_ms"});
    c.bandwidthHz = cell.Number("bandwidth_mhz", 100, 1e-3, 1e5) * 1e6;
    const std::string duplex = cell.Choice("duplex", "shared", {"shared", "fdd"});
    c.duplex = duplex == "fdd" ? DuplexMode::FDD : DuplexMode::SHARED;
    c.ulShare = cell.Number("ul_share", 0.5, 0.01, 0.99);
    c.radiusM = cell.Number("radius_m", 500, 1, 1e5);
    c.minDistanceM = cell.Number("min_distance_m", 35, 1, 1e5);
    c.propagation = cell.Choice("propagation", "3gpp-uma", {"3gpp-uma", "log-distance-128"});
    c.carrierHz = cell.Number("carrier_ghz", 3.5, 0.5, 100) * 1e9;
    c.shadowingSigmaDb = cell.Number("shadowing_sigma_db", 8, 0, 30);
    c.coherenceTimeS = cell.Number("coherence_time_ms", 10, 1e-3, 1e6) * 1e-3;
    c.fading = cell.Bool("fading", true);
    c.bsPowerDbm = cell.Number("bs_power_dbm", 43, -30, 80);
    c.devicePowerDbm = cell.Number("device_power_dbm", 23, -30, 60);
    c.noisePsdDbmHz = cell.Number("noise_psd_dbm_hz", -174, -250, -100);
    c.bsNoiseFigureDb = cell.Number("bs_noise_figure_db", 5, 0, 30);
    c.deviceNoiseFigureDb = cell.Number("device_noise_figure_db", 7, 0, 30);
    c.efficiency = cell.Number("efficiency", 1.0, 1e-3, 1.0);
    c.minRateBps = cell.Number("min_rate_mbps", 0, 0, 1e6) * 1e6;
    c.mobility = cell.String("mobility", "static");
    c.layerDeadlineS = cell.Number("layer_deadline_ms", 0, 0, 1e9) * 1e-3;

    const JsonConfigReader bs = root.Object("bs");
    bs.AllowOnly({"profile"});
    c.bsProfile = bs.String("profile", "edge-server-gpu");

    const JsonConfigReader devices = root.Object("devices");
    devices.AllowOnly({"count", "profile", "memory_fraction", "storage_slots", "warm_cache"});
    c.devices = int(devices.Integer("count", 8, 1, 4096));
    c.deviceProfile = devices.String("profile", "jetson-agx-orin");
    c.memoryFraction = devices.Number("memory_fraction", 0.75, 0, 1);
    c.storageSlots = int(devices.Integer("storage_slots", 0, 0, 1 << 20));
    c.warmCache = devices.Bool("warm_cache", true);

    const JsonConfigReader placement = root.Object("placement");
    placement.AllowOnly({"algorithm", "replicas"});
    c.placement = placement.Choice("algorithm", "min-cost", {"min-cost", "round-robin"});
    c.replicas = placement.Bool("replicas", false);

    if (c.echo.contains("failures"))
    {
        const nlohmann::json& list = c.echo["failures"];
        if (!list.is_array())
        {
            root.Fail("failures", "must be a list of {\"device\": N, \"at_s\": T}");
        }
        for (std::size_t i = 0; i < list.size(); ++i)
        {
            const JsonConfigReader f(path, list[i], "failures[" + std::to_string(i) + "]");
            f.AllowOnly({"device", "at_s"});
            if (!f.Has("device") || !f.Has("at_s"))
            {
                f.Fail("device", "and \"at_s\" are both required");
            }
            c.failures.push_back(
                {int(f.Integer("device", 0, 0, 4095)), f.Number("at_s", 0, 0, 1e9)});
        }
    }
    const nlohmann::json noPolicy = nlohmann::json::object();
    const JsonConfigReader policy(path,
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
                      "allocation",
                      "joint_max_iterations",
                      "minmax_floor",
                      "cache_allocation",
                      "prefetch",
                      "prefetch_hint_bits",
                      "profile_text",
                      "profile_tokens"});
    InferencePolicy& p = c.policy;
    c.gating = policy.Choice("gating", "topk", {"topk", "adaptive"});
    p.adaptiveGating = c.gating == "adaptive";
    p.adaptiveThreshold = policy.Number("adaptive_threshold", 0.005, 0, 1e6);
    p.adaptivePrefill = policy.Bool("adaptive_prefill", false);
    c.selection = policy.Choice("selection", "all", {"all", "wlr", "straggler"});
    p.selection = c.selection == "wlr"         ? SelectionRule::WLR
                  : c.selection == "straggler" ? SelectionRule::STRAGGLER
                                               : SelectionRule::ALL;
    p.wlrTheta = policy.Number("wlr_theta", 0.5, 0, 1e6);
    const StragglerBounds stragglerDefaults;
    p.straggler.weightMax =
        policy.Number("straggler_weight_max", stragglerDefaults.weightMax, 0, 1);
    p.straggler.gainMin = policy.Number("straggler_gain_min", stragglerDefaults.gainMin, 0, 1);
    p.straggler.tradeoff = policy.Number("straggler_tradeoff", stragglerDefaults.tradeoff, 0, 1e6);
    c.stragglerLayerWeights =
        policy.Choice("straggler_layer_weights", "sensitivity", {"sensitivity", "uniform"});
    c.allocation =
        policy.Choice("allocation", "equal", {"equal", "proportional", "minmax", "joint"});
    p.allocation = c.allocation == "proportional" ? AllocationRule::PROPORTIONAL
                   : c.allocation == "equal"      ? AllocationRule::EQUAL
                                                  : AllocationRule::MINMAX;
    p.joint = c.allocation == "joint";
    p.minmaxFloor = policy.Number("minmax_floor", 0, 0, 1);
    p.jointMaxIterations = int(policy.Integer("joint_max_iterations", 10, 1, 1000));
    c.cacheAllocation = policy.Choice("cache_allocation", "uniform", {"uniform", "dp"});
    p.prefetch = policy.Bool("prefetch", false);
    p.hintBits = policy.Number("prefetch_hint_bits", 256, 1, 1e9);
    if (policy.Has("profile_text"))
    {
        c.profileTextPath = root.PathRelativeToFile(policy.String("profile_text"));
    }
    c.profileTokens = int(policy.Integer("profile_tokens", 1024, 1, 1 << 24));
    p.name = policy.String("name", "");
    p.name = c.PolicyName();
    // What the policy needs from the model folder, read now so that a comparison or a sweep
    // fails before its first run (a model that does not load is reported when it runs):
    // adaptive gating's sensitivities, and the calibration text they name (the dp allocation's
    // default profile text).
    wdmoe::llm::ModelConfig modelConfig;
    bool modelReadable = true;
    try
    {
        modelConfig = wdmoe::llm::ModelConfig::Load(c.modelDir + "/config.json");
    }
    catch (const std::exception&)
    {
        modelReadable = false;
    }
    if (modelReadable)
    {
        // A depth mismatch fails now, before a comparison's or a sweep's first run.
        c.pricedModel.Resolve(root, CostModel(), modelConfig.numHiddenLayers);
    }
    const bool dpNeedsText = c.cacheAllocation == "dp" && c.profileTextPath.empty();
    const bool stragglerNeedsSensitivity =
        p.selection == SelectionRule::STRAGGLER && c.stragglerLayerWeights == "sensitivity";
    if (modelReadable && (p.adaptiveGating || dpNeedsText || stragglerNeedsSensitivity))
    {
        wdmoe::llm::SensitivityTable table;
        try
        {
            table = wdmoe::llm::SensitivityTable::Load(c.modelDir, modelConfig.numHiddenLayers);
        }
        catch (const std::exception& e)
        {
            if (p.adaptiveGating)
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
                        "is needed by cache_allocation \"dp\" (the model has no sensitivity.json "
                        "naming a calibration text)");
        }
        if (p.adaptiveGating)
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
        if (dpNeedsText)
        {
            c.profileTextPath = c.calibrationTextPath;
        }
    }

    c.seed = uint32_t(root.Integer("seed", 1, 1, 0xffffffffLL));
    c.run = uint32_t(root.Integer("run", 1, 1, 0xffffffffLL));
    c.profilesDir = root.PathRelativeToFile("profiles");
    c.Validate();
    return c;
}

std::string
ScenarioConfig::PolicyName() const
{
    if (!policy.name.empty())
    {
        return policy.name;
    }
    std::string name = gating == "adaptive" ? "adaptive" : "top-k";
    name += selection == "all" ? "" : " + " + selection;
    name += " + " + allocation;
    if (cacheAllocation == "dp")
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
    CheckCellMobility(root, "cell.mobility", mobility);
    const auto names = ComputeProfileNames(profilesDir);
    for (const auto& [field, name] : {std::make_pair("bs.profile", bsProfile),
                                      std::make_pair("devices.profile", deviceProfile)})
    {
        if (std::find(names.begin(), names.end(), name) == names.end())
        {
            std::string list;
            for (const auto& n : names)
            {
                list += (list.empty() ? "" : ", ") + n;
            }
            root.Fail(field,
                      "names no profile in " + profilesDir + " (available: " + list + "), got " +
                          QuoteForMessage(name));
        }
    }
}

ScenarioResult
RunScenario(const ScenarioConfig& c, const std::function<void(Ptr<MoeInferenceApp>)>& beforeRun)
{
    RngSeedManager::SetSeed(c.seed);
    RngSeedManager::SetRun(c.run);
    int64_t stream = 0;

    // The model that runs and routes.
    wdmoe::llm::LoadOptions options;
    options.threads = c.threads;
    if (!c.dtype.empty())
    {
        options.overrideDType = true;
        wdmoe::llm::ParseUserDType(c.dtype, &options.dtype);
    }
    auto model = std::shared_ptr<wdmoe::llm::MixtralModel>(
        wdmoe::llm::MixtralModel::Load(c.modelDir, options));
    const wdmoe::llm::ModelConfig& mc = model->Config();
    auto tokenizer = wdmoe::llm::Tokenizer::ForModel(c.modelDir, mc);
    const JsonConfigReader root(c.file, c.echo);
    const std::string text = ReadText(c.textPath, root, "workload.text");
    const std::size_t textStart = TextStart(c);
    const std::vector<int> allTokens = tokenizer->Encode(text);
    if (textStart + c.promptTokens + c.scoredTokens > allTokens.size())
    {
        root.Fail(c.disjointTextPerRun ? "workload.text_per_run" : "workload.scored_tokens",
                  "needs " + std::to_string(textStart + c.promptTokens + c.scoredTokens) +
                      " tokens of " + c.textPath + " (run " + std::to_string(c.run) +
                      " starts at token " + std::to_string(textStart) + "), which has " +
                      std::to_string(allTokens.size()));
    }
    const std::vector<int> tokens(allTokens.begin() + textStart, allTokens.end());
    if (c.promptTokens >= mc.maxPositionEmbeddings)
    {
        root.Fail("workload.prompt_tokens",
                  "must be below the model's context of " +
                      std::to_string(mc.maxPositionEmbeddings) + " tokens, got " +
                      std::to_string(c.promptTokens));
    }

    // Neither the calibration text nor the text the cache allocation is profiled on may share
    // passages with the text that is scored.
    const InferencePolicy& policy = c.policy;
    if (!c.tuning && !c.calibrationTextPath.empty() &&
        TextsOverlap(text, ReadText(c.calibrationTextPath, root, "workload.text")))
    {
        root.Fail("workload.text",
                  "shares passages with the calibration text " + c.calibrationTextPath +
                      " that the sensitivities were fitted on; score another text (or set "
                      "workload.purpose to \"tuning\" to choose policy knobs on it)");
    }
    wdmoe::llm::RoutingProfile routingProfile;
    if (c.cacheAllocation == "dp")
    {
        const std::string profile = ReadText(c.profileTextPath, root, "policy.profile_text");
        if (!c.tuning && TextsOverlap(text, profile))
        {
            root.Fail("policy.profile_text",
                      "shares passages with workload.text; profile the routing on another text");
        }
        std::unique_ptr<wdmoe::llm::RoutingPolicy> gating;
        if (policy.adaptiveGating)
        {
            gating = std::make_unique<wdmoe::llm::AdaptiveGating>(policy.sensitivity,
                                                                  policy.adaptiveThreshold,
                                                                  policy.adaptivePrefill);
        }
        routingProfile = wdmoe::llm::ProfileRouting(*model,
                                                    tokenizer->Encode(profile),
                                                    mc.maxPositionEmbeddings,
                                                    c.promptTokens,
                                                    gating.get(),
                                                    c.profileTokens);
    }

    // The model that is priced.
    const CostModel routedDimensions =
        CostModel::FromDimensions("self (" + c.modelDir + ")",
                                  mc.hiddenSize,
                                  mc.intermediateSize,
                                  mc.numHiddenLayers,
                                  mc.numLocalExperts,
                                  mc.numExpertsPerTok,
                                  mc.numAttentionHeads,
                                  mc.numKeyValueHeads,
                                  mc.headDim,
                                  mc.vocabSize,
                                  double(DTypeSize(model->WeightDType())));
    const CostModel cost = c.pricedModel.Resolve(root, routedDimensions, mc.numHiddenLayers);
    const ComputeProfile bsProfile = LoadComputeProfile({c.profilesDir}, c.bsProfile);
    const ComputeProfile deviceProfile = LoadComputeProfile({c.profilesDir}, c.deviceProfile);

    // Nodes and positions: the BS at the centre (25 m high), devices uniform in the annulus
    // [min_distance, radius] at 1.5 m.
    NodeContainer bsNode;
    bsNode.Create(1);
    NodeContainer deviceNodes;
    deviceNodes.Create(c.devices);
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bsNode.Get(0)->AggregateObject(bsMobility);
    Ptr<UniformRandomVariable> radius2 = CreateObject<UniformRandomVariable>();
    radius2->SetAttribute("Min", DoubleValue(c.minDistanceM * c.minDistanceM));
    radius2->SetAttribute("Max", DoubleValue(c.radiusM * c.radiusM));
    Ptr<UniformRandomVariable> angle = CreateObject<UniformRandomVariable>();
    angle->SetAttribute("Max", DoubleValue(2 * M_PI));
    radius2->SetStream(stream++);
    angle->SetStream(stream++);
    std::vector<Ptr<MobilityModel>> deviceMobility;
    for (int i = 0; i < c.devices; ++i)
    {
        Ptr<MobilityModel> m = CreateCellMobility(c.mobility);
        const double r = std::sqrt(radius2->GetValue());
        const double a = angle->GetValue();
        // Moving devices stay inside the square around the cell.
        PlaceInCell(m, c.radiusM, Vector(r * std::cos(a), r * std::sin(a), 1.5), stream);
        deviceNodes.Get(i)->AggregateObject(m);
        deviceMobility.push_back(m);
    }

    // The radio links.
    Ptr<WdmoeChannel> channel = CreateObject<WdmoeChannel>();
    channel->SetAttribute("PropagationLossModel",
                          PointerValue(c.propagation == "3gpp-uma"
                                           ? WdmoeChannel::CreateThreeGppUma(c.carrierHz)
                                           : WdmoeChannel::CreateLogDistance128(c.minDistanceM)));
    channel->SetAttribute("ShadowingSigmaDb", DoubleValue(c.shadowingSigmaDb));
    channel->SetAttribute("CoherenceTime", TimeValue(Seconds(c.coherenceTimeS)));
    channel->SetAttribute("FadingEnabled", BooleanValue(c.fading));
    channel->SetAttribute("BsTxPowerDbm", DoubleValue(c.bsPowerDbm));
    channel->SetAttribute("DeviceTxPowerDbm", DoubleValue(c.devicePowerDbm));
    channel->SetAttribute("NoisePsdDbmPerHz", DoubleValue(c.noisePsdDbmHz));
    channel->SetAttribute("BsNoiseFigureDb", DoubleValue(c.bsNoiseFigureDb));
    channel->SetAttribute("DeviceNoiseFigureDb", DoubleValue(c.deviceNoiseFigureDb));
    channel->SetAttribute("Efficiency", DoubleValue(c.efficiency));
    const BandPlan band = BandPlan::FromConfig(c.duplex, c.bandwidthHz, c.ulShare);
    channel->SetAttribute("TotalBandwidth", DoubleValue(band.dlHz));
    channel->SetBs(bsMobility);
    for (const auto& m : deviceMobility)
    {
        channel->AddDevice(m);
    }
    stream += channel->AssignStreams(stream);

    // Devices, placement (over the layers and experts of the model that routes) and caches. A
    // device hosts up to storage_slots experts on storage and keeps memorySlots in memory.
    const int memorySlots =
        int(std::floor(c.memoryFraction * deviceProfile.memoryBytes / cost.ExpertBytes()));
    const int hostSlots = c.storageSlots > 0 ? c.storageSlots : memorySlots;
    PlacementProblem problem;
    problem.layers = mc.numHiddenLayers;
    problem.experts = mc.numLocalExperts;
    problem.replicas = c.replicas;
    std::vector<ExpertDevice> devices(c.devices);
    const double share = band.dlHz / c.devices;
    for (int i = 0; i < c.devices; ++i)
    {
        devices[i].channelIndex = uint32_t(i);
        devices[i].profile = deviceProfile;
        problem.deviceCapacity.push_back(std::min(hostSlots, problem.layers * problem.experts));
        const double bits = cost.HiddenStateBits(1);
        problem.deviceCost.push_back(bits / channel->DownlinkRate(i, share, Seconds(0)) +
                                     cost.ExpertSeconds(deviceProfile, 1) +
                                     bits / channel->UplinkRate(i, share, Seconds(0)));
    }
    if (hostSlots * c.devices < problem.layers * problem.experts)
    {
        root.Fail(c.storageSlots > 0 ? "devices.storage_slots" : "devices",
                  "cannot hold the model: " + std::to_string(c.devices) + " x " +
                      std::to_string(hostSlots) +
                      (c.storageSlots > 0
                           ? " storage slots"
                           : " expert slots (memory_fraction x memory of " + c.deviceProfile +
                                 " / " + std::to_string(cost.ExpertBytes()) +
                                 " bytes per priced expert)") +
                      " < " + std::to_string(problem.layers) + " layers x " +
                      std::to_string(problem.experts) + " experts");
    }
    const ExpertPlacement placement =
        c.placement == "min-cost" ? PlaceMinCost(problem) : PlaceRoundRobin(problem);
    std::vector<std::string> warnings = model->Notes();
    for (const std::string& w : FailureWarnings(c.failures, placement))
    {
        warnings.push_back(w);
    }
    // Memory slots per layer: each layer's LRU holds at most the experts the device hosts there.
    std::vector<std::vector<int>> slotsOf(c.devices);
    for (int i = 0; i < c.devices; ++i)
    {
        std::vector<int> hosted(problem.layers, 0);
        for (const auto& [layer, expert] : placement.ExpertsOn(i))
        {
            ++hosted[layer];
        }
        if (c.cacheAllocation == "dp")
        {
            std::vector<std::vector<double>> loads(problem.layers);
            for (int l = 0; l < problem.layers; ++l)
            {
                const double accuracy = policy.prefetch ? routingProfile.prefetchAccuracy[l] : 0.0;
                for (int slots = 0; slots <= hosted[l]; ++slots)
                {
                    loads[l].push_back(ExpectedOnDemandLoads(routingProfile.singleExpertRate[l],
                                                             accuracy,
                                                             hosted[l],
                                                             problem.experts,
                                                             mc.numExpertsPerTok,
                                                             slots));
                }
            }
            slotsOf[i] = AllocateSlotsDp(loads, memorySlots);
        }
        else
        {
            slotsOf[i] = AllocateSlotsUniform(hosted, memorySlots);
        }
        devices[i].memory = ExpertMemory(slotsOf[i]);
        if (c.warmCache)
        {
            for (const auto& [layer, expert] : placement.ExpertsOn(i))
            {
                devices[i].memory.Preload(layer, expert);
            }
        }
    }

    Ptr<MoeInferenceApp> app = CreateObject<MoeInferenceApp>();
    app->SetAttribute("LayerDeadline", TimeValue(Seconds(c.layerDeadlineS)));
    app->SetAttribute("MinRate", DoubleValue(c.minRateBps));
    app->SetModel(model);
    app->SetWorkload(tokens, c.promptTokens, c.scoredTokens);
    app->SetCell(channel, band, devices, placement);
    app->SetCosts(cost, bsProfile);
    app->SetPolicy(policy);
    bsNode.Get(0)->AddApplication(app);
    for (const auto& f : c.failures)
    {
        app->ScheduleSwitchOff(uint32_t(f.device), Seconds(f.atS));
    }
    app->SetStartTime(Seconds(0));
    if (beforeRun)
    {
        beforeRun(app);
    }
    const auto wallStart = std::chrono::steady_clock::now();
    Simulator::Run();
    const double wallSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wallStart).count();
    const double simulatedSeconds = Simulator::Now().GetSeconds();
    if (!channel->HistoryError().empty())
    {
        const std::string why = channel->HistoryError();
        Simulator::Destroy();
        root.Fail("cell.coherence_time_ms", "is too short for this run: " + why);
    }
    const std::vector<TokenRecord> records = app->Records();
    const std::vector<LayerStats> perLayer = app->PerLayer();
    const bool finished = app->Finished();
    Simulator::Destroy();
    if (!finished)
    {
        throw std::runtime_error(c.file + ": the simulation ended before every token was scored");
    }

    // Results.
    ScenarioResult result;
    std::vector<double> latencyMs;
    double nll = 0;
    double kl = 0;
    long long agree = 0, dropped = 0, droppedDecode = 0, empty = 0, hits = 0, misses = 0;
    double bsMs = 0, dlMs = 0, loadMs = 0, computeMs = 0, ulMs = 0, waitMs = 0;
    std::ostringstream csv;
    csv << "index,phase,request,position,tokens_fed,start_s,latency_ms,bs_compute_ms,"
           "downlink_ms,load_ms,device_compute_ms,uplink_ms,waiting_ms,experts_run,"
           "experts_dropped,empty_layers,cache_hits,cache_misses,nll,agrees_with_topk,kl\n";
    csv << std::setprecision(9);
    int decodes = 0;
    for (std::size_t i = 0; i < records.size(); ++i)
    {
        const TokenRecord& r = records[i];
        csv << i << "," << r.phase << "," << r.request << "," << r.position << "," << r.tokensFed
            << "," << r.start.GetSeconds() << "," << r.latency.GetSeconds() * 1e3 << ","
            << r.bsCompute.GetSeconds() * 1e3 << "," << r.downlink.GetSeconds() * 1e3 << ","
            << r.load.GetSeconds() * 1e3 << "," << r.deviceCompute.GetSeconds() * 1e3 << ","
            << r.uplink.GetSeconds() * 1e3 << "," << r.waiting.GetSeconds() * 1e3 << ","
            << r.expertsRun << "," << r.expertsDropped << "," << r.emptyLayers << "," << r.cacheHits
            << "," << r.cacheMisses << "," << r.nll << "," << (r.agreesWithTopK ? 1 : 0) << ","
            << r.kl << "\n";
        nll += r.nll;
        kl += r.kl;
        agree += r.agreesWithTopK;
        dropped += r.expertsDropped;
        empty += r.emptyLayers;
        hits += r.cacheHits;
        misses += r.cacheMisses;
        if (r.phase == "decode")
        {
            ++decodes;
            droppedDecode += r.expertsDropped;
            latencyMs.push_back(r.latency.GetSeconds() * 1e3);
            bsMs += r.bsCompute.GetSeconds() * 1e3;
            dlMs += r.downlink.GetSeconds() * 1e3;
            loadMs += r.load.GetSeconds() * 1e3;
            computeMs += r.deviceCompute.GetSeconds() * 1e3;
            ulMs += r.uplink.GetSeconds() * 1e3;
            waitMs += r.waiting.GetSeconds() * 1e3;
        }
    }
    const double n = double(records.size());
    const double d = std::max(1, decodes);
    double mean = 0;
    for (double v : latencyMs)
    {
        mean += v / d;
    }
    const auto percentile = [&latencyMs](double p) {
        return latencyMs.empty() ? 0.0 : Quantile(latencyMs, p / 100.0);
    };
    nlohmann::ordered_json& s = result.summary;
    s["config"] = c.file;
    s["config_echo"] = c.echo;
    s["seed"] = c.seed;
    s["run"] = c.run;
    s["model_routed"] = {{"dir", c.modelDir},
                         {"layers", mc.numHiddenLayers},
                         {"experts", mc.numLocalExperts},
                         {"top_k", mc.numExpertsPerTok},
                         {"d_model", mc.hiddenSize},
                         {"d_ff", mc.intermediateSize},
                         {"dtype", wdmoe::llm::DTypeName(model->WeightDType())}};
    s["model_priced"] = CostModelJson(cost);
    s["model_priced"]["priced_layers"] =
        c.pricedModel.routedLayersOnly ? "routed" : "all";
    s["layers_in_latency"] = mc.numHiddenLayers;
    s["latency_covers"] = PricedModel::CoverageText(mc.numHiddenLayers, cost.layers);
    s["cell"] = {{"devices", c.devices},
                 {"device_profile", c.deviceProfile},
                 {"bs_profile", c.bsProfile},
                 {"bandwidth_mhz", c.bandwidthHz / 1e6},
                 {"expert_memory_slots_per_device", memorySlots},
                 {"expert_storage_slots_per_device", hostSlots},
                 {"placement", c.placement}};
    s["tokens_scored"] = records.size();
    s["text_start_token"] = textStart;
    s["workload_purpose"] = c.tuning ? "tuning" : "evaluation";
    s["decode_tokens"] = decodes;
    s["latency_ms"] = {{"mean", mean},
                       {"p50", percentile(50)},
                       {"p95", percentile(95)},
                       {"p99", percentile(99)}};
    s["latency_breakdown_ms"] = {{"bs_compute", bsMs / d},
                                 {"downlink", dlMs / d},
                                 {"load", loadMs / d},
                                 {"device_compute", computeMs / d},
                                 {"uplink", ulMs / d},
                                 {"waiting", waitMs / d}};
    // Policies act on decode steps: experts, cache and prefetch figures are over decode
    // token-layers (tokens.csv has every pass).
    LayerStats decode;
    long long joint = 0;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (std::size_t l = 0; l < perLayer.size(); ++l)
    {
        const LayerStats& ls = perLayer[l];
        decode.tokenLayers += ls.tokenLayers;
        decode.expertsRun += ls.expertsRun;
        decode.singleExpert += ls.singleExpert;
        decode.predicted += ls.predicted;
        decode.predictable += ls.predictable;
        decode.cacheHits += ls.cacheHits;
        decode.cacheMisses += ls.cacheMisses;
        const auto ratio = [](long long a, long long b) -> nlohmann::ordered_json {
            return b ? nlohmann::ordered_json(double(a) / double(b)) : nlohmann::ordered_json();
        };
        layers.push_back({{"layer", l},
                          {"experts_per_token", ratio(ls.expertsRun, ls.tokenLayers)},
                          {"single_expert_rate", ratio(ls.singleExpert, ls.tokenLayers)},
                          {"cache_hit_rate", ratio(ls.cacheHits, ls.cacheHits + ls.cacheMisses)},
                          {"prefetch_accuracy", ratio(ls.predicted, ls.predictable)},
                          {"prefetch_hints", ls.hintsSent},
                          {"memory_slots_device0", slotsOf.empty() ? 0 : slotsOf[0][l]}});
    }
    for (const TokenRecord& r : records)
    {
        joint += r.phase == "decode" ? r.jointIterations : 0;
    }
    s["policy"] = {{"name", policy.name},
                   {"gating", c.gating},
                   {"adaptive_threshold", policy.adaptiveThreshold},
                   {"selection", c.selection},
                   {"allocation", c.allocation},
                   {"cache_allocation", c.cacheAllocation},
                   {"prefetch", policy.prefetch}};
    if (policy.selection == SelectionRule::STRAGGLER)
    {
        // The bounds in force (their defaults may change between versions).
        s["policy"]["straggler_weight_max"] = policy.straggler.weightMax;
        s["policy"]["straggler_gain_min"] = policy.straggler.gainMin;
        s["policy"]["straggler_tradeoff"] = policy.straggler.tradeoff;
        s["policy"]["straggler_layer_weights"] = c.stragglerLayerWeights;
    }
    if (!policy.stragglerLayerScale.empty())
    {
        s["policy"]["straggler_layer_scale"] = policy.stragglerLayerScale;
    }
    s["experts_per_token_layer"] =
        decode.tokenLayers ? double(decode.expertsRun) / decode.tokenLayers : 0.0;
    s["single_expert_rate"] =
        decode.tokenLayers ? double(decode.singleExpert) / decode.tokenLayers : 0.0;
    s["prefetch_accuracy"] =
        decode.predictable
            ? nlohmann::ordered_json(double(decode.predicted) / double(decode.predictable))
            : nlohmann::ordered_json();
    s["selection_rounds_per_layer"] =
        decode.tokenLayers && c.selection != "all" ? double(joint) / decode.tokenLayers : 0.0;
    s["per_layer"] = layers;
    s["experts_dropped"] = dropped;
    s["experts_dropped_prefill"] = dropped - droppedDecode;
    s["experts_dropped_decode"] = droppedDecode;
    s["warnings"] = warnings;
    s["empty_token_layers"] = empty;
    s["cache_hit_rate"] =
        decode.cacheHits + decode.cacheMisses
            ? double(decode.cacheHits) / double(decode.cacheHits + decode.cacheMisses)
            : 1.0;
    s["cache_hit_rate_all_passes"] = hits + misses ? double(hits) / double(hits + misses) : 1.0;
    s["nll_per_token"] = nll / n;
    s["perplexity"] = std::exp(nll / n);
    s["top1_agreement_with_topk"] = agree / n;
    s["kl_divergence_from_topk"] = kl / n;
    // The only field that differs between two runs of the same config: how long it took.
    s["timing"] = {{"simulated_s", simulatedSeconds},
                   {"wall_s", wallSeconds},
                   {"sim_speed", wallSeconds > 0 ? simulatedSeconds / wallSeconds : 0.0}};
    result.tokensCsv = csv.str();
    result.records = records;
    return result;
}

void
WriteScenarioResult(const ScenarioResult& result, const std::string& outDir)
{
    CreateResultDirectory(outDir);
    WriteFileAtomically(outDir + "/tokens.csv", result.tokensCsv);
    WriteFileAtomically(outDir + "/summary.json", result.summary.dump(2) + "\n");
}

} // namespace ns3
