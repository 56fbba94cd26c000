// One step of the BS: the passes of several requests (lanes) run together, layer by layer, as
// one batch of tokens; each lane keeps its own model state (stepper on its own KV cache).
#ifndef WDMOE_BATCH_STEP_H
#define WDMOE_BATCH_STEP_H

#include "compute-profile.h"
#include "cost-model.h"
#include "inference-records.h"
#include "routing.h"

#include <memory>
#include <vector>

namespace wdmoe
{
namespace llm
{
class TeacherForcedStream;
class LayerStepper;
} // namespace llm
} // namespace wdmoe

namespace ns3
{

/// One request's teacher-forced stream and the record of its pass in flight.
struct Lane
{
    Lane();
    ~Lane();
    Lane(Lane&&) noexcept;
    Lane& operator=(Lane&&) noexcept;

    int request = 0; ///< the request (serving) or -1: the single stream's windows
    std::unique_ptr<wdmoe::llm::TeacherForcedStream> stream;
    TokenRecord record; ///< its pass in flight: its own counts and score
    int passes = 0;     ///< passes started (0: its prefill has not started)
    /// The most prompt tokens its next pass may prefill (chunked prefill's share of the step's
    /// token budget); the default takes the whole prompt.
    int prefillChunk = 1 << 30;
    bool predicts = true; ///< its pass in flight predicts a token (not a prefill's early chunk)
};

/**
 * \ingroup wdmoe
 * The passes of a step: every lane's pass starts together, and the step's tokens are the lanes'
 * tokens one after the other (token t belongs to the lane whose range holds it). Attention runs
 * per lane on its own cache; the experts' decisions come for all tokens at once and each lane
 * runs its share, so that a lane computes exactly what it would alone. A step is all prefills,
 * all decode steps (prefill-first scheduling), or both (chunked prefill: MIXED).
 */
class BatchStep
{
  public:
    /// Starts every lane's next pass (their records reset to the pass's phase and tokens).
    void Start(std::vector<Lane*> lanes);

    std::size_t Lanes() const { return m_lanes.size(); }

    Lane& LaneAt(std::size_t i) { return *m_lanes[i]; }

    const Lane& LaneAt(std::size_t i) const { return *m_lanes[i]; }

    int Tokens() const { return m_first.back(); }

    int Layer() const;
    /// PREFILL or DECODE when every lane's pass is one, else MIXED.
    PassPhase Phase() const;

    /// Attention and router of the current layer, lane by lane.
    void Attend();
    /// After Attend(): what the MoE layer knows of the step's token t.
    wdmoe::llm::RoutingRequest Request(int token) const;
    /// The record of the lane that token t belongs to.
    TokenRecord& RecordOf(int token);

    /// BS time of the current layer: the batch's attention and gate (CostModel::
    /// BsBatchLayerSeconds; for one lane exactly BsLayerSeconds).
    double BsLayerSeconds(const CostModel& cost, const ComputeProfile& bs) const;
    /// BS time of the LM head over every token of the step (weights read once).
    double LmHeadSeconds(const CostModel& cost, const ComputeProfile& bs) const;

    /// Marks each lane whose share of `decisions` is not its model's own top-k.
    void NoteTopK(const std::vector<wdmoe::llm::RoutingDecision>& decisions);
    /// Each lane runs its share of `decisions` and moves to the next layer.
    void RunExperts(const std::vector<wdmoe::llm::RoutingDecision>& decisions);
    bool Done() const;
    /// After the last layer: each predicting lane's prediction scored into its record (a
    /// prefill's early chunk scores nothing: its record's NLL stays 0), and the step's
    /// timing (start, latency and its breakdown, from `timing`) copied into every lane's
    /// record, since the passes ran together. Returns the step's own record.
    StepRecord Finish(const TokenRecord& timing);

  private:
    wdmoe::llm::LayerStepper& PassOf(std::size_t lane) const;
    std::vector<wdmoe::llm::RoutingDecision> ShareOf(
        std::size_t lane,
        const std::vector<wdmoe::llm::RoutingDecision>& decisions) const;
    std::size_t LaneOfToken(int token) const;

    std::vector<Lane*> m_lanes;
    std::vector<int> m_first{0}; ///< lane i's tokens are [m_first[i], m_first[i + 1])
};

} // namespace ns3

#endif
