#include "batch-step.h"

#include "mixtral-model.h"
#include "teacher-forced-stream.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace ns3
{

using wdmoe::llm::LayerStepper;
using wdmoe::llm::RoutingDecision;

Lane::Lane() = default;
Lane::~Lane() = default;
Lane::Lane(Lane&&) noexcept = default;
Lane& Lane::operator=(Lane&&) noexcept = default;

void
BatchStep::Start(std::vector<Lane*> lanes)
{
    if (lanes.empty())
    {
        throw std::logic_error("BatchStep::Start needs at least one lane");
    }
    m_lanes = std::move(lanes);
    m_first.assign(1, 0);
    for (Lane* lane : m_lanes)
    {
        const LayerStepper& pass = lane->stream->StartPass(lane->prefillChunk);
        ++lane->passes;
        lane->predicts = lane->stream->PassPredicts();
        TokenRecord& r = lane->record;
        r = TokenRecord();
        r.phase = lane->stream->PassIsPrefill() ? PassPhase::PREFILL : PassPhase::DECODE;
        r.request = lane->request < 0 ? lane->stream->Window() : lane->request;
        r.tokensFed = lane->stream->TokensFed();
        r.position = lane->stream->LastPosition();
        m_first.push_back(m_first.back() + pass.Tokens());
    }
}

LayerStepper&
BatchStep::PassOf(std::size_t lane) const
{
    return m_lanes[lane]->stream->Pass();
}

int
BatchStep::Layer() const
{
    return PassOf(0).Layer();
}

PassPhase
BatchStep::Phase() const
{
    const PassPhase first = m_lanes[0]->record.phase;
    for (const Lane* lane : m_lanes)
    {
        if (lane->record.phase != first)
        {
            return PassPhase::MIXED;
        }
    }
    return first;
}

void
BatchStep::Attend()
{
    for (std::size_t i = 0; i < m_lanes.size(); ++i)
    {
        PassOf(i).Attend();
    }
}

std::size_t
BatchStep::LaneOfToken(int token) const
{
    // m_first is ascending: the lane is the last one starting at or before the token.
    return std::size_t(std::upper_bound(m_first.begin(), m_first.end(), token) - m_first.begin()) -
           1;
}

wdmoe::llm::RoutingRequest
BatchStep::Request(int token) const
{
    const std::size_t lane = LaneOfToken(token);
    return PassOf(lane).Request(token - m_first[lane]);
}

TokenRecord&
BatchStep::RecordOf(int token)
{
    return m_lanes[LaneOfToken(token)]->record;
}

double
BatchStep::BsLayerSeconds(const CostModel& cost, const ComputeProfile& bs) const
{
    std::vector<std::pair<int, int>> passes; // (tokens, context)
    for (std::size_t i = 0; i < m_lanes.size(); ++i)
    {
        passes.emplace_back(PassOf(i).Tokens(), PassOf(i).FirstPosition());
    }
    return cost.BsBatchLayerSeconds(bs, passes);
}

double
BatchStep::LmHeadSeconds(const CostModel& cost, const ComputeProfile& bs) const
{
    return cost.LmHeadSeconds(bs, Tokens());
}

std::vector<RoutingDecision>
BatchStep::ShareOf(std::size_t lane, const std::vector<RoutingDecision>& decisions) const
{
    return std::vector<RoutingDecision>(decisions.begin() + m_first[lane],
                                        decisions.begin() + m_first[lane + 1]);
}

void
BatchStep::NoteTopK(const std::vector<RoutingDecision>& decisions)
{
    for (std::size_t i = 0; i < m_lanes.size(); ++i)
    {
        TokenRecord& r = m_lanes[i]->record;
        r.routedLikeTopK =
            r.routedLikeTopK && m_lanes[i]->stream->RoutesLikeTopK(ShareOf(i, decisions));
    }
}

void
BatchStep::RunExperts(const std::vector<RoutingDecision>& decisions)
{
    for (std::size_t i = 0; i < m_lanes.size(); ++i)
    {
        PassOf(i).RunExperts(m_lanes.size() == 1 ? decisions : ShareOf(i, decisions));
    }
}

bool
BatchStep::Done() const
{
    return PassOf(0).Done();
}

StepRecord
BatchStep::Finish(const TokenRecord& timing)
{
    StepRecord step;
    step.phase = timing.phase;
    step.requests = int(m_lanes.size());
    step.tokens = Tokens();
    step.start = timing.start;
    step.duration = timing.latency;
    step.bsCompute = timing.bsCompute;
    for (Lane* lane : m_lanes)
    {
        TokenRecord& r = lane->record;
        step.decodes += r.phase == PassPhase::DECODE;
        const wdmoe::llm::PassScore score = lane->stream->FinishPass(r.routedLikeTopK);
        r.nll = score.nll;
        r.kl = score.kl;
        r.agreesWithTopK = score.agreesWithTopK;
        r.start = timing.start;
        r.latency = timing.latency;
        r.bsCompute = timing.bsCompute;
        r.downlink = timing.downlink;
        r.load = timing.load;
        r.deviceCompute = timing.deviceCompute;
        r.uplink = timing.uplink;
        r.waiting = timing.waiting;
    }
    return step;
}

} // namespace ns3
