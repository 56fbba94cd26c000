// No config field is parsed and then ignored: every key a scenario config accepts (found by
// asking the reader itself, so a new key cannot slip past) changes the run's results when its
// value changes, in a context where it applies. The two fields that by design change no result
// (a description, and the kernel's thread count) are checked to change nothing.

#include "gating.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ns3;
using wdmoe::test::ScenarioFixture;

namespace
{

/// A cell where every policy can act: 3 Orin Nano devices with 2 expert memory slots each and 8
/// on storage (round-robin placement, room for replicas), fading, a 2-layer model with unequal
/// calibrated sensitivities and a second model and texts to switch to.
struct FieldsFixture : ScenarioFixture
{
    FieldsFixture()
        : ScenarioFixture(2)
    {
        std::string calibration;
        for (int i = 0; i < 300; ++i)
        {
            calibration += char('A' + (i * 5) % 26);
        }
        wdmoe::test::WriteFile(dir.File("model/calibration.txt"), calibration);
        wdmoe::llm::SensitivityTable table;
        table.calibrationText = "calibration.txt";
        table.calibrationTokens = 299;
        table.window = 24;
        table.meanDeltaNll = {0.05, 0.15};
        table.meanSecondWeightSq = {0.1, 0.1};
        table.sensitivity = {0.5, 1.5};
        table.Save(dir.File("model"));
        ::mkdir(dir.File("model2").c_str(), 0755);
        wdmoe::test::TinyModel other(99, 2, 256);
        other.context = 24;
        wdmoe::test::WriteFile(dir.File("model2/config.json"), other.Config().dump());
        wdmoe::test::WriteSafetensors(dir.File("model2/model.safetensors"),
                                      other.Classic(wdmoe::llm::DType::F32));
        std::string text2;
        for (int i = 0; i < 400; ++i)
        {
            text2 += char('a' + (i * 11 + i / 7) % 26);
        }
        wdmoe::test::WriteFile(dir.File("text2.txt"), text2);
        // One byte repeated: the routing profile at its extreme (the same experts every token).
        wdmoe::test::WriteFile(dir.File("profile.txt"), std::string(300, 'q'));
        config["workload"]["scored_tokens"] = 12;
        config["cell"] = {{"bandwidth_mhz", 20},
                          {"propagation", "log-distance-128"},
                          {"min_distance_m", 35},
                          {"radius_m", 500},
                          {"fading", true},
                          {"coherence_time_ms", 5}};
        config["devices"] = {{"count", 3},
                             {"profile", "jetson-orin-nano"},
                             {"memory_fraction", 0.1},
                             {"storage_slots", 8}};
    }

    /// Results without the echo of the config and the wall-clock timing.
    std::string Results(const std::vector<std::string>& sets)
    {
        ScenarioConfig config = ScenarioConfig::Load(Write(), sets);
        config.traceDir = dir.File("lte-traces"); // where lte.pcap and lte.netanim write
        const ScenarioResult r = RunScenario(config);
        nlohmann::ordered_json s = r.summary;
        s.erase("config_echo");
        s.erase("timing");
        return s.dump() + r.tokensCsv;
    }
};

/// The keys the reader accepts in the object at `dotted` ("" for the top level, set where it
/// applies by `context`), read from the error an unknown key gets.
std::set<std::string>
AcceptedKeys(FieldsFixture& f, const std::string& dotted, std::vector<std::string> context = {})
{
    context.push_back((dotted.empty() ? "" : dotted + ".") + "no_such_key=1");
    std::string message;
    try
    {
        ScenarioConfig::Load(f.Write(), context);
    }
    catch (const std::exception& e)
    {
        message = e.what();
    }
    const std::string marker = "expected one of: ";
    const auto begin = message.find(marker);
    REQUIRE(begin != std::string::npos);
    const auto end = message.find(')', begin);
    std::set<std::string> keys;
    std::string list = message.substr(begin + marker.size(), end - begin - marker.size());
    for (std::size_t at = 0; at < list.size();)
    {
        const auto comma = list.find(", ", at);
        keys.insert(list.substr(at, comma - at));
        at = comma == std::string::npos ? list.size() : comma + 2;
    }
    return keys;
}

struct Change
{
    std::vector<std::string> context; ///< --set values for both runs: where the field applies
    std::string value;                ///< the changed value (JSON)
};

/// Where the "lte" object applies: the LTE transport (FDD, a 20 MHz carrier each way).
const std::vector<std::string> kLteContext = {"transport=lte", "cell.duplex=fdd"};

const std::vector<std::string> kDpContext = {"policy.cache_allocation=dp",
                                             "policy.gating=adaptive",
                                             "policy.adaptive_threshold=0.05",
                                             "policy.prefetch=true",
                                             "devices.memory_fraction=0.15"};

/// Where "serving" applies: served requests instead of the single stream.
const std::vector<std::string> kServingContext = {
    R"(workload={"text": "text.txt", "requests": {"arrivals": "poisson", "rate_per_s": 50, )"
    R"("count": 4, "prompt_tokens": 6, "output_tokens": 4}})"};

/// The same with chunked prefill (where serving.chunk_tokens applies).
const std::vector<std::string> kChunkedContext = {kServingContext[0],
                                                  R"(serving.prefill="chunked")"};

/// For every accepted key: a change of its value that must show in the results.
const std::map<std::string, Change>&
Changes()
{
    static const std::map<std::string, Change> changes = {
        {"seed", {{}, "2"}},
        {"run", {{}, "2"}},
        {"failures", {{"cell.layer_deadline_ms=50"}, R"([{"device": 0, "at_s": 0}])"}},
        {"model.path", {{}, R"("model2")"}},
        {"model.dtype", {{}, R"("bf16")"}},
        // The scalar kernel sums in another order than the vector ones: NLL's last digits.
        {"model.kernel", {{}, R"("scalar")"}},
        // Eigen on float32 copies sums in another order than the stored-type kernels.
        {"model.dense", {{}, R"("widened")"}},
        {"workload.text", {{}, R"("text2.txt")"}},
        {"workload.prompt_tokens", {{}, "6"}},
        {"workload.scored_tokens", {{}, "10"}},
        {"workload.text_per_run", {{"run=2"}, R"("disjoint")"}},
        {"workload.purpose", {{}, R"("tuning")"}},
        {"cost_model", {{}, R"("self")"}},
        {"cell.bandwidth_mhz", {{}, "50"}},
        {"cell.duplex", {{}, R"("fdd")"}},
        {"cell.tdd", {{"cell.duplex=tdd"}, R"({"pattern": "DUUUU"})"}},
        {"cell.ul_share", {{"cell.duplex=fdd"}, "0.3"}},
        {"cell.radius_m", {{}, "900"}},
        {"cell.min_distance_m", {{}, "200"}},
        {"cell.propagation", {{}, R"("3gpp-uma")"}},
        {"cell.carrier_ghz", {{"cell.propagation=3gpp-uma"}, "28"}},
        {"cell.shadowing_sigma_db", {{}, "0"}},
        {"cell.coherence_time_ms", {{}, "1"}},
        {"cell.fading", {{}, "false"}},
        {"cell.coherence_bandwidth_mhz", {{}, "5"}},
        {"cell.fading_correlation", {{}, R"("doppler")"}},
        {"cell.min_doppler_hz", {{"cell.fading_correlation=doppler"}, "100"}},
        {"cell.csi_delay_ms", {{"policy.allocation=minmax"}, "20"}},
        {"cell.bs_power_dbm", {{}, "20"}},
        {"cell.device_power_dbm", {{}, "5"}},
        {"cell.noise_psd_dbm_hz", {{}, "-140"}},
        {"cell.bs_noise_figure_db", {{}, "25"}},
        {"cell.device_noise_figure_db", {{}, "25"}},
        {"cell.efficiency", {{}, "0.5"}},
        {"cell.link_mapping", {{}, "\"lte\""}},
        {"cell.truncated_shannon",
         {{"cell.link_mapping=lte"}, R"({"uplink": {"alpha": 0.1, "max_bps_hz": 0.5}})"}},
        {"cell.access", {{}, R"({"numerology": 0, "uplink_grant_ms": 4})"}},
        {"cell.work_conserving", {{}, "false"}},
        {"cell.hint_airtime", {{"policy.prefetch=true"}, "false"}},
        {"cell.min_rate_mbps", {{}, "100000"}},
        {"cell.mobility", {{}, R"("ns3::RandomWalk2dMobilityModel")"}},
        {"cell.layer_deadline_ms", {{}, "0.01"}},
        {"bs.profile", {{}, R"("jetson-agx-orin")"}},
        {"devices.count", {{}, "4"}},
        {"devices.distance_m", {{}, "100"}},
        {"devices.profile", {{}, R"("jetson-agx-orin")"}},
        {"devices.memory_fraction", {{}, "0.3"}},
        {"devices.storage_slots", {{}, "12"}},
        {"devices.warm_cache", {{}, "false"}},
        {"placement.algorithm", {{}, R"("min-cost")"}},
        {"placement.replicas", {{}, "true"}},
        {"policy.name", {{}, R"("another name")"}},
        {"policy.gating", {{}, R"("adaptive")"}},
        {"policy.adaptive_threshold", {{"policy.gating=adaptive"}, "0.5"}},
        {"policy.adaptive_prefill", {{"policy.gating=adaptive"}, "true"}},
        {"policy.selection", {{}, R"("wlr")"}},
        {"policy.wlr_theta", {{"policy.selection=wlr"}, "1e6"}},
        {"policy.straggler_weight_max",
         {{"policy.selection=straggler", "policy.straggler_tradeoff=1e6"}, "0"}},
        {"policy.straggler_gain_min",
         {{"policy.selection=straggler", "policy.straggler_tradeoff=1e6"}, "1"}},
        {"policy.straggler_tradeoff", {{"policy.selection=straggler"}, "0"}},
        {"policy.straggler_layer_weights",
         {{"policy.selection=straggler", "policy.straggler_tradeoff=0.5"}, R"("uniform")"}},
        {"policy.energy_weight_min", {{"policy.selection=energy"}, "0"}},
        {"policy.energy_latency_slack",
         {{"policy.selection=energy", "policy.energy_weight_min=0"}, "1e6"}},
        {"policy.allocation", {{}, R"("minmax")"}},
        {"policy.joint_max_iterations",
         {{"policy.selection=wlr", "policy.allocation=joint", "policy.wlr_theta=0.9"}, "1"}},
        {"policy.minmax_floor", {{"policy.allocation=minmax"}, "0.9"}},
        {"policy.cache_allocation", {{}, R"("dp")"}},
        {"policy.prefetch", {{}, "true"}},
        {"policy.prefetch_hint_bits", {{"policy.prefetch=true"}, "1e8"}},
        // The DP split reads single-expert rates and prefetch accuracies off the profile text.
        {"policy.profile_text", {kDpContext, R"("profile.txt")"}},
        {"policy.profile_tokens", {kDpContext, "1"}},
        {"transport", {{"cell.duplex=fdd"}, R"("lte")"}},
        {"lte.scheduler", {kLteContext, R"("ns3::RrFfMacScheduler")"}},
        {"lte.packet_bytes", {kLteContext, "200"}},
        {"lte.rlc", {kLteContext, R"("um")"}},
        // Files beside the results (test-lte-transport.cc reads them), listed in the summary.
        {"lte.pcap", {kLteContext, "true"}},
        {"lte.netanim", {kLteContext, "true"}},
        {"lte.stats", {kLteContext, "true"}},
        // The summary gains its "energy"; a battery this small switches the devices off.
        {"energy.enabled", {{}, "true"}},
        {"energy.battery_wh", {{"energy.enabled=true", "cell.layer_deadline_ms=50"}, "1e-6"}},
        // Another request in the workload; the batch; a KV memory for one request at a time.
        {"workload.requests",
         {kServingContext,
          R"({"arrivals": "poisson", "rate_per_s": 50, "count": 5, "prompt_tokens": 6, )"
          R"("output_tokens": 4})"}},
        {"serving.max_batch", {kServingContext, "1"}},
        // Chunked steps mix decodes with prefill chunks; a budget of 8 (the default is 512)
        // splits the four 6-token prompts over several steps.
        {"serving.prefill", {kServingContext, R"("chunked")"}},
        {"serving.chunk_tokens", {kChunkedContext, "8"}},
        {"serving.kv_memory_fraction", {kServingContext, "2e-5"}}, // 1.6 MB: one 1.18 MB request
    };
    return changes;
}

/// Fields that by design change no result (set where they apply).
const std::map<std::string, Change>&
Inert()
{
    static const std::map<std::string, Change> inert = {
        {"description", {{}, R"("another description")"}},
        {"model.threads", {{}, "2"}}, // kernel threads: speed only, the same numbers
    };
    return inert;
}

} // namespace

TEST_CASE("config fields: every accepted key changes the results (or is inert by design)",
          "[config]")
{
    FieldsFixture f;
    std::set<std::string> accepted;
    for (const std::string& key : AcceptedKeys(f, ""))
    {
        accepted.insert(key);
    }
    for (const char* object : {"model",
                               "workload",
                               "cell",
                               "bs",
                               "devices",
                               "placement",
                               "policy",
                               "lte",
                               "energy",
                               "serving"})
    {
        accepted.erase(object);
        const bool serving = std::string(object) == "serving";
        for (const std::string& key :
             AcceptedKeys(f, object, serving ? kServingContext : std::vector<std::string>()))
        {
            accepted.insert(std::string(object) + "." + key);
        }
    }
    std::set<std::string> listed;
    for (const auto& [key, change] : Changes())
    {
        listed.insert(key);
    }
    for (const auto& [key, value] : Inert())
    {
        listed.insert(key);
    }
    CHECK(accepted == listed); // a new key needs a line here, showing what it changes

    for (const auto& [key, change] : Changes())
    {
        INFO(key << " = " << change.value);
        std::vector<std::string> changed = change.context;
        changed.push_back(key + "=" + change.value);
        CHECK(f.Results(change.context) != f.Results(changed));
    }
    for (const auto& [key, change] : Inert())
    {
        INFO(key << " = " << change.value);
        std::vector<std::string> changed = change.context;
        changed.push_back(key + "=" + change.value);
        CHECK(f.Results(change.context) == f.Results(changed));
    }
}

TEST_CASE("config fields: every key of an inline cost model changes the priced costs", "[config]")
{
    FieldsFixture f;
    const nlohmann::json base = {{"name", "small"},
                                 {"d_model", 512},
                                 {"d_ff", 1024},
                                 {"layers", 2},
                                 {"experts", 8},
                                 {"top_k", 2},
                                 {"heads", 8},
                                 {"kv_heads", 2},
                                 {"head_dim", 64},
                                 {"vocab", 32000},
                                 {"weight_bytes_per_param", 2},
                                 {"activation_bits", 16},
                                 {"header_bytes", 64}};
    const std::map<std::string, nlohmann::json> changed = {{"name", "other"},
                                                           {"d_model", 1024},
                                                           {"d_ff", 2048},
                                                           {"experts", 16},
                                                           {"top_k", 1},
                                                           {"heads", 16},
                                                           {"kv_heads", 4},
                                                           {"head_dim", 32},
                                                           {"vocab", 64000},
                                                           {"weight_bytes_per_param", 1},
                                                           {"activation_bits", 8},
                                                           {"header_bytes", 0}};
    f.config["cost_model"] = base;
    const std::string reference = f.Results({});
    CHECK(changed.size() + 1 == base.size()); // every key but "layers" (tested by depth)
    for (const auto& [key, value] : changed)
    {
        INFO("cost_model." << key << " = " << value.dump());
        CHECK(f.Results({"cost_model." + key + "=" + value.dump()}) != reference);
    }
}

TEST_CASE("config fields: every key of workload.requests changes the results", "[config]")
{
    FieldsFixture f;
    wdmoe::test::WriteFile(f.dir.File("requests.csv"),
                           "arrival_s,prompt_tokens,output_tokens\n0,6,4\n0.01,5,3\n");
    wdmoe::test::WriteFile(f.dir.File("requests2.csv"),
                           "arrival_s,prompt_tokens,output_tokens\n0,6,4\n0.5,5,3\n");
    const std::string poisson = kServingContext[0];
    const std::string trace = R"(workload={"text": "text.txt", "requests": {"arrivals": "trace", )"
                              R"("trace": "requests.csv"}})";
    const std::string duration =
        R"(workload={"text": "text.txt", "requests": {"arrivals": "poisson", "rate_per_s": 50, )"
        R"("duration_s": 0.5, "prompt_tokens": 6, "output_tokens": 4}})";
    // key -> (the sets of one run, the sets of the other)
    const std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>>
        changes = {
            {"arrivals", {{poisson}, {trace}}},
            {"rate_per_s", {{poisson}, {poisson, "workload.requests.rate_per_s=1"}}},
            {"count", {{poisson}, {poisson, "workload.requests.count=3"}}},
            {"duration_s", {{duration}, {duration, "workload.requests.duration_s=0.2"}}},
            {"prompt_tokens", {{poisson}, {poisson, "workload.requests.prompt_tokens=5"}}},
            {"output_tokens", {{poisson}, {poisson, "workload.requests.output_tokens=3"}}},
            {"trace", {{trace}, {trace, R"(workload.requests.trace="requests2.csv")"}}},
        };
    std::set<std::string> listed;
    for (const auto& [key, sets] : changes)
    {
        listed.insert(key);
    }
    CHECK(AcceptedKeys(f, "workload.requests", kServingContext) == listed);
    for (const auto& [key, sets] : changes)
    {
        INFO(key);
        CHECK(f.Results(sets.first) != f.Results(sets.second));
    }
}
