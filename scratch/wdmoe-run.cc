// wdmoe-run: one scenario config through the cell. ns-3 CommandLine overrides the fields users
// change most, so sweep tools can run `wdmoe-run --config=X --devices=N --RngRun=R`.

#include "json-config.h"
#include "policy-comparison.h"
#include "result-files.h"
#include "run-overrides.h"
#include "wdmoe-scenario.h"

#include "ns3/command-line.h"
#include "ns3/simulator.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

/// One scenario to its end: the library builds the cell, this program runs the simulation.
ScenarioResult
RunToEnd(const ScenarioConfig& config)
{
    WdmoeScenario scenario(config);
    Simulator::Run();
    ScenarioResult result = scenario.Collect();
    Simulator::Destroy();
    return result;
}

/// The run's warnings (summary.json's "warnings") on stderr too.
void
PrintWarnings(const ScenarioResult& result)
{
    for (const auto& w : result.summary["warnings"])
    {
        std::fprintf(stderr, "wdmoe run: warning: %s\n", w.get<std::string>().c_str());
    }
}

/// A latency's percentiles from summary.json ("-" when no request had one).
void
PrintPercentiles(const char* name, const nlohmann::ordered_json& p)
{
    if (p.is_null())
    {
        std::printf("  %-18s -\n", name);
        return;
    }
    std::printf("  %-18s mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f\n",
                name,
                p["mean"].get<double>(),
                p["p50"].get<double>(),
                p["p90"].get<double>(),
                p["p99"].get<double>());
}

/// summary.json's "serving": the requests' latencies, throughput and utilisation.
void
PrintServing(const nlohmann::ordered_json& v)
{
    std::printf("  serving     %zu requests (%s, max batch %u, %s), output %lld tokens in "
                "%.3f s\n",
                v["requests"].get<std::size_t>(),
                v["arrivals"].get<std::string>().c_str(),
                v["max_batch"].get<unsigned>(),
                v["prefill"].get<std::string>().c_str(),
                v["output_tokens"].get<long long>(),
                v["span_s"].get<double>());
    std::printf("  throughput        %.3f output tokens/s  %.4f requests/s  mean decode batch "
                "%.2f\n",
                v["throughput_tokens_per_s"].get<double>(),
                v["throughput_requests_per_s"].get<double>(),
                v["decode_batch_mean"].get<double>());
    PrintPercentiles("queueing ms", v["queueing_ms"]);
    PrintPercentiles("TTFT ms", v["ttft_ms"]);
    PrintPercentiles("TPOT ms", v["tpot_ms"]);
    PrintPercentiles("end-to-end ms", v["e2e_ms"]);
    if (!v["utilisation"].is_null())
    {
        double devices = 0;
        for (const auto& d : v["utilisation"]["devices"])
        {
            devices += d.get<double>() / double(v["utilisation"]["devices"].size());
        }
        std::printf("  utilisation       BS %.5f  devices (mean) %.5f  band %.3f\n",
                    v["utilisation"]["bs"].get<double>(),
                    devices,
                    v["utilisation"]["band"].get<double>());
    }
}

/// Every policy of a comparison over its runs; prints the table and writes policies.json,
/// policies.csv and <policy>/run-<R>/ folders.
int
RunComparison(const PolicyComparison& comparison,
              const std::string& configPath,
              const std::string& outDir)
{
    const ScenarioConfig& first = comparison.entries.front();
    std::printf("wdmoe run %s: %zu policies x %d runs (seed %u, runs %u-%u)\n",
                configPath.c_str(),
                comparison.entries.size(),
                comparison.runs,
                first.seed,
                first.run,
                first.run + comparison.runs - 1);
    std::printf("  cell  %d x %s, %.0f MHz, BS %s, placement %s\n",
                first.devices,
                first.deviceProfile.c_str(),
                first.bandwidthHz / 1e6,
                first.bsProfile.c_str(),
                PlacementAlgorithmName(first.placement).c_str());
    std::vector<std::vector<ScenarioResult>> results(comparison.entries.size());
    for (std::size_t p = 0; p < comparison.entries.size(); ++p)
    {
        for (int r = 0; r < comparison.runs; ++r)
        {
            const ScenarioConfig config = comparison.RunOf(p, r);
            std::fprintf(stderr, "  running %s, run %u\n", config.policy.name.c_str(), config.run);
            results[p].push_back(RunToEnd(config));
            PrintWarnings(results[p].back());
        }
    }
    const std::vector<PolicyRow> rows =
        ComparePolicies(results, comparison.baseline, comparison.statistics);
    const auto& s = results[0][0].summary;
    std::printf("  routed by %s; priced as %s; %s; %zu tokens scored per run (%d decode)\n",
                s["model_routed"]["dir"].get<std::string>().c_str(),
                s["model_priced"]["name"].get<std::string>().c_str(),
                s["latency_covers"].get<std::string>().c_str(),
                s["tokens_scored"].get<std::size_t>(),
                s["decode_tokens"].get<int>());
    std::printf("  against %s: latency intervals across %d runs, accuracy intervals by a "
                "paired bootstrap over tokens (%d resamples)\n\n",
                rows[comparison.baseline].policy.c_str(),
                comparison.runs,
                comparison.statistics.resamples);
    std::printf("%s\n", PolicyTableText(rows, comparison.baseline).c_str());
    for (std::size_t p = 0; p < results.size(); ++p)
    {
        for (const ScenarioResult& result : results[p])
        {
            WriteScenarioResult(result,
                                outDir + "/" + PolicyFolderName(rows[p].policy) + "/run-" +
                                    std::to_string(result.summary["run"].get<uint32_t>()));
        }
    }
    CreateResultDirectory(outDir);
    WriteFileAtomically(outDir + "/policies.csv", PolicyTableCsv(rows, comparison.baseline));
    WriteFileAtomically(outDir + "/policies.json",
                        PolicyTableJson(rows, comparison.baseline, comparison.statistics).dump(2) +
                            "\n");
    std::printf("  results  %s/policies.csv, policies.json, <policy>/run-<R>/summary.json\n",
                outDir.c_str());
    return 0;
}

} // namespace

int
main(int argc, char** argv)
{
    std::string configPath = "configs/default.json";
    std::string outDir;
    bool printOutDir = false;

    // --set dotted.key=value (repeatable), --dotted.key=value and the shortcuts --devices,
    // --bandwidthMHz and --RngRun all edit the config before it is checked (the same checks,
    // and the config echo shows them); CommandLine keeps one value per name and ns-3 would abort
    // on --RngRun=abc, so they are taken out of argv first.
    std::vector<std::string> args(argv, argv + argc);
    const std::vector<RunOverride> overrides = TakeRunOverrides(args);
    const std::vector<std::string> sets = OverrideSets(overrides);
    std::vector<char*> rest;
    for (std::string& a : args)
    {
        rest.push_back(a.data());
    }
    argc = int(rest.size());
    argv = rest.data();

    CommandLine cmd(__FILE__);
    cmd.Usage("Runs one wdmoe scenario config: the real MoE model scoring a text through a "
              "simulated cell; writes summary.json and tokens.csv. Any config field can be "
              "changed with --set dotted.key=value (repeatable), e.g. "
              "--set cell.bandwidth_mhz=20 --set cell.duplex=fdd, or as --cell.bandwidth_mhz=20; "
              "--devices=N, --bandwidthMHz=B and --RngRun=R set devices.count, "
              "cell.bandwidth_mhz and run. Without --outDir a run with such changes writes to "
              "results/<config name>+<changes>/, a run without to results/<config name>/.");
    cmd.AddValue("config", "scenario JSON file", configPath);
    cmd.AddValue("outDir",
                 "results folder (default results/<config name>/, or "
                 "results/<config name>+<changes>/ with --set, --devices, ...)",
                 outDir);
    // Listed for --PrintHelp; TakeRunOverrides took them out of argv already.
    std::string devices, bandwidthMhz;
    cmd.AddValue("devices", "set devices.count (as --set devices.count=N)", devices);
    cmd.AddValue("bandwidthMHz",
                 "set cell.bandwidth_mhz (as --set cell.bandwidth_mhz=B)",
                 bandwidthMhz);
    cmd.AddValue("printOutDir",
                 "print the results folder this run would write, and exit",
                 printOutDir);
    cmd.Parse(argc, argv);
    if (outDir.empty())
    {
        outDir = DefaultRunDirectory(configPath, overrides);
    }
    if (printOutDir)
    {
        std::printf("%s\n", outDir.c_str());
        return 0;
    }

    std::string traceDir; // lte.pcap, lte.netanim, lte.stats: the run's provisional trace folder
    try
    {
        if (IsPolicyComparison(configPath))
        {
            PolicyComparison comparison = PolicyComparison::Load(configPath, sets);
            return RunComparison(comparison, configPath, outDir);
        }
        ScenarioConfig config = ScenarioConfig::Load(configPath, sets);
        if (config.WritesLteTraces())
        {
            // Written under a provisional name; WriteScenarioResult renames it once the run
            // succeeded, and a failed run removes it.
            config.traceDir = outDir + "/lte-traces.partial";
            traceDir = config.traceDir;
        }
        const ScenarioResult result = RunToEnd(config);
        WriteScenarioResult(result, outDir);
        PrintWarnings(result);

        const auto& s = result.summary;
        std::printf("wdmoe run %s (seed %u, run %u)\n",
                    configPath.c_str(),
                    config.seed,
                    config.run);
        std::printf("  routed by   %s; priced as %s\n",
                    s["model_routed"]["dir"].get<std::string>().c_str(),
                    s["model_priced"]["name"].get<std::string>().c_str());
        std::printf("  cell        %d x %s, %.0f MHz, BS %s, placement %s\n",
                    config.devices,
                    config.deviceProfile.c_str(),
                    config.bandwidthHz / 1e6,
                    config.bsProfile.c_str(),
                    PlacementAlgorithmName(config.placement).c_str());
        std::printf("  policy      %s\n", config.policy.name.c_str());
        std::printf("  %s\n", s["latency_covers"].get<std::string>().c_str());
        if (config.tuning)
        {
            std::printf("  workload    tuning: the text the policy was fitted on may be scored "
                        "(for choosing knobs; not a result)\n");
        }
        if (config.serving)
        {
            PrintServing(s["serving"]);
        }
        std::printf("  token latency ms  mean %.3f  p50 %.3f  p95 %.3f  p99 %.3f\n",
                    s["latency_ms"]["mean"].get<double>(),
                    s["latency_ms"]["p50"].get<double>(),
                    s["latency_ms"]["p95"].get<double>(),
                    s["latency_ms"]["p99"].get<double>());
        const auto& b = s["latency_breakdown_ms"];
        std::printf("  breakdown ms      bs %.3f  dl %.3f  load %.3f  compute %.3f  ul %.3f  "
                    "wait %.3f\n",
                    b["bs_compute"].get<double>(),
                    b["downlink"].get<double>(),
                    b["load"].get<double>(),
                    b["device_compute"].get<double>(),
                    b["uplink"].get<double>(),
                    b["waiting"].get<double>());
        std::printf("  decode: experts/token-layer %.3f  dropped %lld  cache hit rate %.3f\n",
                    s["experts_per_token_layer"].get<double>(),
                    s["experts_dropped_decode"].get<long long>(),
                    s["cache_hit_rate"].get<double>());
        std::printf("  prefill: dropped %lld\n", s["experts_dropped_prefill"].get<long long>());
        std::printf("  accuracy    perplexity %.4f  KL from top-k %.5f nats  top-1 agreement "
                    "%.4f  (%zu tokens scored)\n",
                    s["perplexity"].get<double>(),
                    s["kl_divergence_from_topk"].get<double>(),
                    s["top1_agreement_with_topk"].get<double>(),
                    s["tokens_scored"].get<std::size_t>());
        if (s.contains("energy"))
        {
            const auto& e = s["energy"];
            std::printf("  energy J    per output token %.4f  (compute %.4f  radio %.4f)  devices "
                        "total %.1f\n",
                        e["per_output_token_j"].get<double>(),
                        e["per_output_token_compute_j"].get<double>(),
                        e["per_output_token_radio_j"].get<double>(),
                        e["device_total_j"].get<double>());
        }
        std::printf("  speed       %.0f simulated s per wall s\n",
                    s["timing"]["sim_speed"].get<double>());
        std::printf("  results     %s/summary.json, tokens.csv, devices.csv%s%s\n",
                    outDir.c_str(),
                    config.serving ? ", requests.csv" : "",
                    result.traceFiles.empty() ? "" : ", lte-traces/");
        return 0;
    }
    catch (const std::exception& e)
    {
        if (!traceDir.empty())
        {
            std::filesystem::remove_all(traceDir);
        }
        std::cerr << "wdmoe run: error: " << NameOverridesIn(e.what(), overrides) << "\n";
        return 1;
    }
}
