// A scenario: a JSON config parsed into typed fields, the cell it builds, and its results.
#ifndef WDMOE_SCENARIO_H
#define WDMOE_SCENARIO_H

#include "bandwidth-slices.h"
#include "moe-inference-app.h"
#include "priced-model.h"

#include "ns3/ptr.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ns3
{

class MoeInferenceApp;

/// Every field of a scenario config, in SI units (the JSON names carry their units).
struct ScenarioConfig
{
    std::string file; ///< the config file, for messages and the results folder name
    nlohmann::json echo = nlohmann::json::object(); ///< the config as read (with --set applied)

    // model that runs and routes
    std::string modelDir;
    std::string dtype; ///< "" (the file's), "f32", "bf16", "f16"
    int threads = 1;

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

    // model that is priced: "self", a preset, or inline dimensions, over all its layers or
    // only the routed ones
    PricedModel pricedModel = PricedModel{false, CostModel::Mixtral8x7B(), false};

    // cell
    double bandwidthHz = 100e6;
    DuplexMode duplex = DuplexMode::SHARED;
    double ulShare = 0.5;
    double radiusM = 500;
    double minDistanceM = 35;
    std::string propagation = "3gpp-uma"; ///< or "log-distance-128"
    double carrierHz = 3.5e9;
    double shadowingSigmaDb = 8;
    double coherenceTimeS = 0.01;
    bool fading = true;
    double bsPowerDbm = 43;
    double devicePowerDbm = 23;
    double noisePsdDbmHz = -174;
    double bsNoiseFigureDb = 5;
    double deviceNoiseFigureDb = 7;
    double efficiency = 1.0;
    double minRateBps = 0;
    std::string mobility = "static"; ///< or an ns-3 MobilityModel TypeId name
    double layerDeadlineS = 0;

    // nodes
    std::string profilesDir;
    std::string bsProfile = "edge-server-gpu";
    int devices = 8;
    std::string deviceProfile = "jetson-agx-orin";
    double memoryFraction = 0.75; ///< share of device memory for experts
    int storageSlots = 0;         ///< experts a device can host (on storage); 0: its memory slots
    bool warmCache = true;        ///< devices start with their placed experts in memory
    std::string placement = "min-cost"; ///< or "round-robin"
    bool replicas = false;

    struct Failure
    {
        int device;
        double atS;
    };

    std::vector<Failure> failures;

    // policies ("policy" object); the names as written, parsed into `policy`
    InferencePolicy policy;
    std::string gating = "topk";                       ///< or "adaptive"
    std::string selection = "all";                     ///< or "wlr", "straggler"
    std::string allocation = "equal";                  ///< or "proportional", "minmax", "joint"
    std::string cacheAllocation = "uniform";           ///< or "dp"
    std::string stragglerLayerWeights = "sensitivity"; ///< or "uniform"
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
    /// Checks relations between fields (radius > minimum distance, failure devices exist...).
    void Validate() const;
    /// The policy's name for results: policy.name, else built from its rules.
    std::string PolicyName() const;
};

/// Applies "dotted.key=value" overrides to a config (value read as JSON when it parses, else
/// as a string), creating missing objects on the way; a key that is not a path of objects is a
/// JsonConfigError naming the file.
void ApplyConfigSets(nlohmann::json& config,
                     const std::vector<std::string>& sets,
                     const std::string& path);

/// Summary of a finished run, as written to summary.json.
struct ScenarioResult
{
    nlohmann::ordered_json summary;
    std::string tokensCsv;
    std::vector<TokenRecord> records; ///< the rows of tokens.csv
};

/// Builds the cell of config on ns-3 nodes, runs the workload through the model and returns
/// the summary and the per-token table. Uses RngSeedManager seed/run from the config.
/// beforeRun, when given, is called with the application once it is installed and before the
/// simulation runs, e.g. to connect its trace sources.
ScenarioResult RunScenario(const ScenarioConfig& config,
                           const std::function<void(Ptr<MoeInferenceApp>)>& beforeRun = {});

/// Writes summary.json and tokens.csv into outDir, each atomically.
void WriteScenarioResult(const ScenarioResult& result, const std::string& outDir);

} // namespace ns3

#endif
