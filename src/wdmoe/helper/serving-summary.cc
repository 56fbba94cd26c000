#include "serving-summary.h"

#include "confidence-interval.h"

#include <algorithm>
#include <iomanip>
#include <limits>
#include <sstream>

namespace ns3
{

namespace
{

double
Ms(Time t)
{
    return t.GetSeconds() * 1e3;
}

/// TPOT of a request: the time between its first and last output token per token after the
/// first (none for a one-token request).
bool
Tpot(const RequestRecord& r, double& ms)
{
    if (r.outputTokens < 2)
    {
        return false;
    }
    ms = Ms(r.finished - r.firstToken) / (r.outputTokens - 1);
    return true;
}

nlohmann::ordered_json
Percentiles(const std::vector<double>& values)
{
    if (values.empty())
    {
        return nullptr;
    }
    double mean = 0;
    for (double v : values)
    {
        mean += v / double(values.size());
    }
    return {{"mean", mean},
            {"p50", Quantile(values, 0.50)},
            {"p90", Quantile(values, 0.90)},
            {"p99", Quantile(values, 0.99)}};
}

/// The busy fractions of the BS, each device and the band over [start, start + span].
nlohmann::ordered_json
Utilisation(const WdmoeStatsCollector& stats, std::size_t devices, double span)
{
    double bs = 0;
    for (const StepRecord& step : stats.Steps())
    {
        bs += step.bsCompute.GetSeconds();
    }
    std::vector<double> device(devices, 0.0);
    std::vector<std::pair<double, double>> air;
    for (const auto& [pass, x] : stats.Exchanges())
    {
        if (x.device < devices)
        {
            device[x.device] += x.compute.GetSeconds();
        }
        air.emplace_back(x.sentAt.GetSeconds(), (x.sentAt + x.downlink).GetSeconds());
        air.emplace_back(x.answeredAt.GetSeconds(), (x.answeredAt + x.uplink).GetSeconds());
    }
    for (double& d : device)
    {
        d /= span;
    }
    return {{"bs", bs / span}, {"devices", device}, {"band", UnionSeconds(air) / span}};
}

} // namespace

double
UnionSeconds(std::vector<std::pair<double, double>> intervals)
{
    std::sort(intervals.begin(), intervals.end());
    double busy = 0;
    double end = -std::numeric_limits<double>::infinity();
    for (const auto& [b, e] : intervals)
    {
        if (e <= end)
        {
            continue;
        }
        busy += e - std::max(b, end);
        end = e;
    }
    return busy;
}

std::string
RequestsCsv(const std::vector<RequestRecord>& requests)
{
    std::ostringstream csv;
    csv << "request,arrival_s,admitted_s,first_token_s,finished_s,prompt_tokens,output_tokens,"
           "text_offset,queueing_ms,ttft_ms,tpot_ms,e2e_ms,nll_per_token\n";
    csv << std::setprecision(9);
    for (const RequestRecord& r : requests)
    {
        double tpot = 0;
        const bool hasTpot = Tpot(r, tpot);
        csv << r.id << "," << r.arrival.GetSeconds() << "," << r.admitted.GetSeconds() << ","
            << r.firstToken.GetSeconds() << "," << r.finished.GetSeconds() << "," << r.promptTokens
            << "," << r.outputTokens << "," << r.textOffset << "," << Ms(r.admitted - r.arrival)
            << "," << Ms(r.firstToken - r.arrival) << ",";
        if (hasTpot)
        {
            csv << tpot;
        }
        csv << "," << Ms(r.finished - r.arrival) << "," << r.nll / r.outputTokens << "\n";
    }
    return csv.str();
}

nlohmann::ordered_json
ServingSummary(const ServingConfig& config,
               double kvMemoryBytes,
               double kvBytesPerToken,
               const WdmoeStatsCollector& stats,
               std::size_t devices)
{
    std::vector<double> queueing, ttft, tpot, e2e;
    long long outputTokens = 0;
    Time first = Time::Max(), last;
    for (const RequestRecord& r : stats.Requests())
    {
        queueing.push_back(Ms(r.admitted - r.arrival));
        ttft.push_back(Ms(r.firstToken - r.arrival));
        e2e.push_back(Ms(r.finished - r.arrival));
        double t = 0;
        if (Tpot(r, t))
        {
            tpot.push_back(t);
        }
        outputTokens += r.outputTokens;
        first = std::min(first, r.arrival);
        last = std::max(last, r.finished);
    }
    const std::size_t n = stats.Requests().size();
    const double span = n ? (last - first).GetSeconds() : 0.0;
    long long decodeSteps = 0, decodePasses = 0;
    for (const StepRecord& step : stats.Steps())
    {
        decodeSteps += step.decodes > 0; // decode-only, or mixed with prefill chunks
        decodePasses += step.decodes;
    }
    const ServingWorkload& w = config.workload;
    nlohmann::ordered_json s;
    s["arrivals"] = w.poisson ? "poisson" : "trace";
    s["rate_per_s"] = w.poisson ? nlohmann::ordered_json(w.ratePerS) : nullptr;
    s["trace"] = w.poisson ? nullptr : nlohmann::ordered_json(config.tracePath);
    s["max_batch"] = config.maxBatch;
    s["prefill"] = config.prefill;
    s["chunk_tokens"] = config.prefill == "chunked" ? nlohmann::ordered_json(config.chunkTokens)
                                                    : nlohmann::ordered_json();
    s["kv_memory_bytes"] = kvMemoryBytes;
    s["kv_bytes_per_token"] = kvBytesPerToken;
    s["requests"] = n;
    s["output_tokens"] = outputTokens;
    s["span_s"] = span;
    s["throughput_tokens_per_s"] = span > 0 ? double(outputTokens) / span : 0.0;
    s["throughput_requests_per_s"] = span > 0 ? double(n) / span : 0.0;
    s["decode_batch_mean"] = decodeSteps ? double(decodePasses) / double(decodeSteps) : 0.0;
    s["queueing_ms"] = Percentiles(queueing);
    s["ttft_ms"] = Percentiles(ttft);
    s["tpot_ms"] = Percentiles(tpot);
    s["e2e_ms"] = Percentiles(e2e);
    s["utilisation"] = span > 0 ? Utilisation(stats, devices, span) : nullptr;
    return s;
}

} // namespace ns3
