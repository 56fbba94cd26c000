// What the BS application reports through its trace sources: one record per token (or prefill)
// and the decode statistics of each token-layer. The stats collector builds the result files
// from them.
#ifndef WDMOE_INFERENCE_RECORDS_H
#define WDMOE_INFERENCE_RECORDS_H

#include "ns3/nstime.h"

#include <cstdint>
#include <string>

namespace ns3
{

/// Decode statistics of one layer: of one token-layer when the BS reports it (LayerDone), summed
/// over the run by the stats collector.
struct LayerStats
{
    long long tokenLayers = 0;  ///< decode tokens that passed the layer
    long long expertsRun = 0;   ///< experts whose output came back
    long long singleExpert = 0; ///< token-layers where gating chose one expert
    long long predicted = 0;    ///< experts run that a prefetch prediction covered
    long long predictable = 0;  ///< experts run at a layer that had a prediction
    long long hintsSent = 0;    ///< prefetch hints sent for this layer
    long long cacheHits = 0;
    long long cacheMisses = 0;
};

/// A pass of the model: a window's prompt (or a chunk of it), or one decode step. A step of
/// chunked prefill that carries both is MIXED (steps and their transfers only; a pass is
/// never mixed).
enum class PassPhase
{
    PREFILL,
    DECODE,
    MIXED
};

/// "prefill", "decode" or "mixed", as tokens.csv and transfers.csv write it.
inline const char*
PassPhaseName(PassPhase phase)
{
    return phase == PassPhase::PREFILL  ? "prefill"
           : phase == PassPhase::DECODE ? "decode"
                                        : "mixed";
}

/// What happened to one scored token (a decode step) or one prefill.
struct TokenRecord
{
    PassPhase phase = PassPhase::DECODE;
    int request = 0;  ///< context window (request) index
    int position = 0; ///< position of the (last) token fed
    int tokensFed = 1;
    Time start;
    Time latency;
    // Breakdown along each layer's critical path; the parts sum to the latency.
    Time bsCompute, downlink, load, deviceCompute, uplink, waiting;
    int expertsRun = 0;     ///< expert executions that returned, summed over layers and tokens
    int expertsDropped = 0; ///< dispatched but lost (deadline, switch-off, coverage)
    int emptyLayers = 0;    ///< token-layers in which every expert was lost
    int cacheMisses = 0;
    int cacheHits = 0;
    int jointIterations = 0; ///< selection/allocation rounds, summed over layers
    double nll = 0;          ///< of the true next token (decode) or of the last prompt token's next
    /// KL(unmodified top-k model || this run) of the next-token distribution, nats
    double kl = 0;
    bool agreesWithTopK = true; ///< argmax equals that of the unmodified top-k model
    bool routedLikeTopK = true; ///< every layer ran exactly the model's own top-k
};

/// One device's exchange of one layer that came back: the request's downlink transfer and the
/// answer's uplink transfer, each timed from the transport's Send to its arrival (queueing at
/// the transport included), so that every transport is measured by the same clock.
struct ExchangeRecord
{
    PassPhase phase = PassPhase::DECODE;
    int layer = 0;
    uint32_t device = 0;
    int tokens = 0;  ///< hidden states carried each way
    double bits = 0; ///< payload of each direction
    Time sentAt;     ///< when the BS sent the request
    Time downlink;   ///< Send of the request to its arrival at the device
    Time uplink;     ///< Send of the answer to its arrival at the BS
    Time answeredAt; ///< when the device sent the answer (the uplink's Send)
    Time compute;    ///< the device's computation of the request
};

/// One step of the BS: the passes it ran together (one per request in the batch; the single
/// stream's steps are its passes).
struct StepRecord
{
    PassPhase phase = PassPhase::DECODE;
    int requests = 0; ///< passes in the step
    int decodes = 0;  ///< of them decode steps (one token each)
    int tokens = 0;   ///< tokens fed, summed over its passes
    Time start;
    Time duration;
    Time bsCompute; ///< attention, gates and LM head at the BS
};

} // namespace ns3

#endif
