// The statistics of a run, made from the applications' trace sources (as lte's
// RadioBearerStatsCalculator is): a user's own sink on the same sources sees exactly the events
// that summary.json and tokens.csv are made of.
#ifndef WDMOE_STATS_COLLECTOR_H
#define WDMOE_STATS_COLLECTOR_H

#include "inference-records.h"
#include "serving-workload.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * Collects MoeInferenceApp's TokenDone, LayerDone, PrefetchHint and ExchangeDone trace sources and
 * computes the run's statistics: latency percentiles and breakdown over decode steps, per-layer
 * decode statistics, drops, cache hit rates, accuracy.
 */
class WdmoeStatsCollector
{
  public:
    /// layers: the routed model's depth (rows of the per-layer statistics).
    explicit WdmoeStatsCollector(int layers = 0);

    /// Connects the sinks by Config path to every MoeInferenceApp installed so far (call after
    /// the helper's Install). The collector must outlive the simulation.
    void Connect();

    /// The sinks (also usable directly, e.g. with TraceConnectWithoutContext).
    void TokenDone(const TokenRecord& record);
    void LayerDone(uint32_t layer, const LayerStats& stats);
    void PrefetchHint(uint32_t layer, uint32_t expert, uint32_t device);
    void ExchangeDone(const ExchangeRecord& record);
    void RequestDone(const RequestRecord& record);
    void StepDone(const StepRecord& record);

    /// Every token (and prefill) in the order they finished.
    const std::vector<TokenRecord>& Tokens() const { return m_tokens; }

    /// Serving: every request in the order they finished, and every step of the BS.
    const std::vector<RequestRecord>& Requests() const { return m_requests; }

    const std::vector<StepRecord>& Steps() const { return m_steps; }

    /// Every exchange that came back, in arrival order, with its token record's index.
    const std::vector<std::pair<std::size_t, ExchangeRecord>>& Exchanges() const
    {
        return m_exchanges;
    }

    /// Decode statistics per layer, summed over the run.
    const std::vector<LayerStats>& PerLayer() const { return m_perLayer; }

    /// Expert returns counted from the token records.
    long long ExpertsRun() const;

    /// tokens.csv: one row per token record.
    std::string TokensCsv() const;

    /// transfers.csv: one row per exchange that came back (ExchangeDone), in arrival order;
    /// its pass is the index of its token record in tokens.csv.
    std::string TransfersCsv() const;

    /// The run's statistics as summary.json fields, in its order. Latency: tokens_scored up to
    /// latency_breakdown_ms (before the policy).
    void Latency(nlohmann::ordered_json& summary) const;
    /// After the policy: the decode statistics. slotsDevice0: memory slots of device 0 per layer
    /// (per_layer's column); selects: the selection rule may drop candidates (selection rounds).
    void Decode(nlohmann::ordered_json& summary,
                const std::vector<int>& slotsDevice0,
                bool selects) const;
    /// Then drops, accuracy and the warnings.
    void DropsAndAccuracy(nlohmann::ordered_json& summary,
                          const std::vector<std::string>& warnings) const;

  private:
    std::vector<TokenRecord> m_tokens;
    std::vector<std::pair<std::size_t, ExchangeRecord>> m_exchanges; ///< (pass, exchange)
    std::vector<LayerStats> m_perLayer;
    std::vector<RequestRecord> m_requests;
    std::vector<StepRecord> m_steps;
};

} // namespace ns3

#endif
