#include "wdmoe-stats-collector.h"

#include "confidence-interval.h"

#include "ns3/callback.h"
#include "ns3/config.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace ns3
{

namespace
{

const char* const kApp = "/NodeList/*/ApplicationList/*/$ns3::MoeInferenceApp/";

double
Ms(Time t)
{
    return t.GetSeconds() * 1e3;
}

nlohmann::ordered_json
Ratio(long long a, long long b)
{
    return b ? nlohmann::ordered_json(double(a) / double(b)) : nlohmann::ordered_json();
}

} // namespace

WdmoeStatsCollector::WdmoeStatsCollector(int layers)
    : m_perLayer(std::max(0, layers))
{
}

void
WdmoeStatsCollector::Connect()
{
    Config::ConnectWithoutContext(std::string(kApp) + "TokenDone",
                                  MakeCallback(&WdmoeStatsCollector::TokenDone, this));
    Config::ConnectWithoutContext(std::string(kApp) + "LayerDone",
                                  MakeCallback(&WdmoeStatsCollector::LayerDone, this));
    Config::ConnectWithoutContext(std::string(kApp) + "PrefetchHint",
                                  MakeCallback(&WdmoeStatsCollector::PrefetchHint, this));
    Config::ConnectWithoutContext(std::string(kApp) + "ExchangeDone",
                                  MakeCallback(&WdmoeStatsCollector::ExchangeDone, this));
    Config::ConnectWithoutContext(std::string(kApp) + "RequestDone",
                                  MakeCallback(&WdmoeStatsCollector::RequestDone, this));
    Config::ConnectWithoutContext(std::string(kApp) + "StepDone",
                                  MakeCallback(&WdmoeStatsCollector::StepDone, this));
}

void
WdmoeStatsCollector::TokenDone(const TokenRecord& record)
{
    m_tokens.push_back(record);
}

void
WdmoeStatsCollector::LayerDone(uint32_t layer, const LayerStats& s)
{
    if (layer >= m_perLayer.size())
    {
        m_perLayer.resize(layer + 1);
    }
    LayerStats& sum = m_perLayer[layer];
    sum.tokenLayers += s.tokenLayers;
    sum.expertsRun += s.expertsRun;
    sum.singleExpert += s.singleExpert;
    sum.predicted += s.predicted;
    sum.predictable += s.predictable;
    sum.cacheHits += s.cacheHits;
    sum.cacheMisses += s.cacheMisses;
}

void
WdmoeStatsCollector::PrefetchHint(uint32_t layer, uint32_t, uint32_t)
{
    if (layer >= m_perLayer.size())
    {
        m_perLayer.resize(layer + 1);
    }
    ++m_perLayer[layer].hintsSent;
}

void
WdmoeStatsCollector::ExchangeDone(const ExchangeRecord& record)
{
    // The pass in flight finishes next: its record will be m_tokens[m_tokens.size()].
    m_exchanges.emplace_back(m_tokens.size(), record);
}

void
WdmoeStatsCollector::RequestDone(const RequestRecord& record)
{
    m_requests.push_back(record);
}

void
WdmoeStatsCollector::StepDone(const StepRecord& record)
{
    m_steps.push_back(record);
}

long long
WdmoeStatsCollector::ExpertsRun() const
{
    long long run = 0;
    for (const TokenRecord& r : m_tokens)
    {
        run += r.expertsRun;
    }
    return run;
}

std::string
WdmoeStatsCollector::TokensCsv() const
{
    std::ostringstream csv;
    csv << "index,phase,request,position,tokens_fed,start_s,latency_ms,bs_compute_ms,"
           "downlink_ms,load_ms,device_compute_ms,uplink_ms,waiting_ms,experts_run,"
           "experts_dropped,empty_layers,cache_hits,cache_misses,nll,agrees_with_topk,kl\n";
    csv << std::setprecision(9);
    for (std::size_t i = 0; i < m_tokens.size(); ++i)
    {
        const TokenRecord& r = m_tokens[i];
        csv << i << "," << PassPhaseName(r.phase) << "," << r.request << "," << r.position << ","
            << r.tokensFed << "," << r.start.GetSeconds() << "," << r.latency.GetSeconds() * 1e3
            << "," << r.bsCompute.GetSeconds() * 1e3 << "," << r.downlink.GetSeconds() * 1e3 << ","
            << r.load.GetSeconds() * 1e3 << "," << r.deviceCompute.GetSeconds() * 1e3 << ","
            << r.uplink.GetSeconds() * 1e3 << "," << r.waiting.GetSeconds() * 1e3 << ","
            << r.expertsRun << "," << r.expertsDropped << "," << r.emptyLayers << "," << r.cacheHits
            << "," << r.cacheMisses << "," << r.nll << "," << (r.agreesWithTopK ? 1 : 0) << ","
            << r.kl << "\n";
    }
    return csv.str();
}

std::string
WdmoeStatsCollector::TransfersCsv() const
{
    std::ostringstream csv;
    csv << "pass,phase,layer,device,tokens,bits,sent_s,downlink_ms,uplink_ms\n";
    csv << std::setprecision(9);
    for (const auto& [pass, x] : m_exchanges)
    {
        csv << pass << "," << PassPhaseName(x.phase) << "," << x.layer << "," << x.device << ","
            << x.tokens << "," << x.bits << "," << x.sentAt.GetSeconds() << "," << Ms(x.downlink)
            << "," << Ms(x.uplink) << "\n";
    }
    return csv.str();
}

void
WdmoeStatsCollector::Latency(nlohmann::ordered_json& s) const
{
    std::vector<double> latencyMs;
    double bs = 0, dl = 0, load = 0, compute = 0, ul = 0, wait = 0;
    for (const TokenRecord& r : m_tokens)
    {
        if (r.phase == PassPhase::DECODE)
        {
            latencyMs.push_back(Ms(r.latency));
            bs += Ms(r.bsCompute);
            dl += Ms(r.downlink);
            load += Ms(r.load);
            compute += Ms(r.deviceCompute);
            ul += Ms(r.uplink);
            wait += Ms(r.waiting);
        }
    }
    const double d = std::max<std::size_t>(1, latencyMs.size());
    double mean = 0;
    for (double v : latencyMs)
    {
        mean += v / d;
    }
    const auto percentile = [&latencyMs](double p) {
        return latencyMs.empty() ? 0.0 : Quantile(latencyMs, p / 100.0);
    };
    s["decode_tokens"] = latencyMs.size();
    s["latency_ms"] = {{"mean", mean},
                       {"p50", percentile(50)},
                       {"p95", percentile(95)},
                       {"p99", percentile(99)}};
    s["latency_breakdown_ms"] = {{"bs_compute", bs / d},
                                 {"downlink", dl / d},
                                 {"load", load / d},
                                 {"device_compute", compute / d},
                                 {"uplink", ul / d},
                                 {"waiting", wait / d}};
}

void
WdmoeStatsCollector::Decode(nlohmann::ordered_json& s,
                            const std::vector<int>& slotsDevice0,
                            bool selects) const
{
    // Policies act on decode steps: experts, cache and prefetch figures are over decode
    // token-layers (tokens.csv has every pass).
    LayerStats decode;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (std::size_t l = 0; l < m_perLayer.size(); ++l)
    {
        const LayerStats& ls = m_perLayer[l];
        decode.tokenLayers += ls.tokenLayers;
        decode.expertsRun += ls.expertsRun;
        decode.singleExpert += ls.singleExpert;
        decode.predicted += ls.predicted;
        decode.predictable += ls.predictable;
        layers.push_back({{"layer", l},
                          {"experts_per_token", Ratio(ls.expertsRun, ls.tokenLayers)},
                          {"single_expert_rate", Ratio(ls.singleExpert, ls.tokenLayers)},
                          {"cache_hit_rate", Ratio(ls.cacheHits, ls.cacheHits + ls.cacheMisses)},
                          {"prefetch_accuracy", Ratio(ls.predicted, ls.predictable)},
                          {"prefetch_hints", ls.hintsSent},
                          {"memory_slots_device0", l < slotsDevice0.size() ? slotsDevice0[l] : 0}});
    }
    long long rounds = 0;
    for (const TokenRecord& r : m_tokens)
    {
        rounds += r.phase == PassPhase::DECODE ? r.jointIterations : 0;
    }
    const double n = double(decode.tokenLayers);
    s["experts_per_token_layer"] = decode.tokenLayers ? double(decode.expertsRun) / n : 0.0;
    s["single_expert_rate"] = decode.tokenLayers ? double(decode.singleExpert) / n : 0.0;
    s["prefetch_accuracy"] = Ratio(decode.predicted, decode.predictable);
    s["selection_rounds_per_layer"] = decode.tokenLayers && selects ? double(rounds) / n : 0.0;
    s["per_layer"] = layers;
}

void
WdmoeStatsCollector::DropsAndAccuracy(nlohmann::ordered_json& s,
                                      const std::vector<std::string>& warnings) const
{
    double nll = 0, kl = 0;
    long long agree = 0, dropped = 0, droppedDecode = 0, empty = 0, hits = 0, misses = 0;
    for (const TokenRecord& r : m_tokens)
    {
        nll += r.nll;
        kl += r.kl;
        agree += r.agreesWithTopK;
        dropped += r.expertsDropped;
        droppedDecode += r.phase == PassPhase::DECODE ? r.expertsDropped : 0;
        empty += r.emptyLayers;
        hits += r.cacheHits;
        misses += r.cacheMisses;
    }
    long long decodeHits = 0, decodeMisses = 0;
    for (const LayerStats& ls : m_perLayer)
    {
        decodeHits += ls.cacheHits;
        decodeMisses += ls.cacheMisses;
    }
    const double n = double(m_tokens.size());
    s["experts_dropped"] = dropped;
    s["experts_dropped_prefill"] = dropped - droppedDecode;
    s["experts_dropped_decode"] = droppedDecode;
    s["warnings"] = warnings;
    s["empty_token_layers"] = empty;
    s["cache_hit_rate"] =
        decodeHits + decodeMisses ? double(decodeHits) / double(decodeHits + decodeMisses) : 1.0;
    s["cache_hit_rate_all_passes"] = hits + misses ? double(hits) / double(hits + misses) : 1.0;
    s["nll_per_token"] = nll / n;
    s["perplexity"] = std::exp(nll / n);
    s["top1_agreement_with_topk"] = agree / n;
    s["kl_divergence_from_topk"] = kl / n;
}

} // namespace ns3
