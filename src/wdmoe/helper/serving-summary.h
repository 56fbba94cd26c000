// The results of a serving run: requests.csv and summary.json's "serving" (per-request latency
// percentiles, throughput, utilisation), from the stats collector's records.
#ifndef WDMOE_SERVING_SUMMARY_H
#define WDMOE_SERVING_SUMMARY_H

#include "serving-config.h"
#include "wdmoe-stats-collector.h"

#include <nlohmann/json.hpp>
#include <string>

namespace ns3
{

/// requests.csv: one row per finished request, in the order they finished: its times, lengths
/// and text window, and queueing (arrival to admission), TTFT (arrival to the first output
/// token), TPOT (first to last output token over the output tokens after the first; empty for
/// a one-token request) and end-to-end latency, all in ms, and its mean NLL per output token.
std::string RequestsCsv(const std::vector<RequestRecord>& requests);

/// The BS's and the cell's figures of a serving run over its span (first arrival to last
/// finish): the knobs, p50/p90/p99 and mean of queueing, TTFT, TPOT and end-to-end latency,
/// throughput in output tokens and requests per second, the mean batch of decode steps, and
/// the busy fractions of the BS (attention, gates, LM head), of each device (expert
/// computations that came back) and of the band (some transfer in the air).
nlohmann::ordered_json ServingSummary(const ServingConfig& config,
                                      double kvMemoryBytes,
                                      double kvBytesPerToken,
                                      const WdmoeStatsCollector& stats,
                                      std::size_t devices);

/// The busy time of a set of intervals [begin, end] in seconds: the length of their union.
double UnionSeconds(std::vector<std::pair<double, double>> intervals);

} // namespace ns3

#endif
