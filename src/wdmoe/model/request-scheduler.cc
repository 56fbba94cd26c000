#include "request-scheduler.h"

#include "mixtral-model.h"
#include "teacher-forced-stream.h"

#include "ns3/double.h"
#include "ns3/simulator.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ns3
{

void
RequestScheduler::Configure(std::shared_ptr<wdmoe::llm::MixtralModel> model,
                            const std::vector<int>& tokens,
                            const ServingWorkload& workload,
                            std::size_t maxBatch,
                            double kvBudgetBytes,
                            double kvBytesPerToken,
                            int chunkTokens)
{
    if (chunkTokens < 0 || (chunkTokens > 0 && std::size_t(chunkTokens) < maxBatch))
    {
        throw std::invalid_argument(
            "a chunked prefill's token budget (" + std::to_string(chunkTokens) +
            ") must be at least the batch size (" + std::to_string(maxBatch) + ")");
    }
    m_chunkTokens = chunkTokens;
    m_model = std::move(model);
    m_tokens = tokens;
    m_workload = workload;
    m_kvBytesPerToken = kvBytesPerToken;
    m_queue = RequestQueue(maxBatch, kvBudgetBytes);
}

void
RequestScheduler::SetRandomVariables(Ptr<ExponentialRandomVariable> gaps,
                                     Ptr<UniformRandomVariable> promptLengths,
                                     Ptr<UniformRandomVariable> outputLengths)
{
    m_gaps = gaps;
    m_promptLengths = promptLengths;
    m_outputLengths = outputLengths;
}

int
RequestScheduler::Length(Ptr<UniformRandomVariable> draw, int low, int high) const
{
    return high > low ? int(draw->GetInteger(uint32_t(low), uint32_t(high))) : low;
}

double
RequestScheduler::FootprintBytes(int promptTokens, int outputTokens) const
{
    return RequestKvTokens(promptTokens, outputTokens) * m_kvBytesPerToken;
}

void
RequestScheduler::Start(Callback<void> arrived)
{
    m_arrived = arrived;
    if (m_workload.poisson)
    {
        NS_ABORT_MSG_IF(!m_gaps || !(m_workload.ratePerS > 0),
                        "Poisson arrivals need a positive rate and their random variable");
        m_gaps->SetAttribute("Mean", DoubleValue(1.0 / m_workload.ratePerS));
        ScheduleNextPoisson();
        return;
    }
    NS_ABORT_MSG_IF(m_workload.trace.empty(), "a request trace needs at least one request");
    for (const RequestSpec& spec : m_workload.trace)
    {
        Simulator::Schedule(spec.arrival - Simulator::Now(), &RequestScheduler::Arrive, this, spec);
    }
}

void
RequestScheduler::ScheduleNextPoisson()
{
    const Time at = m_lastArrival + Seconds(m_gaps->GetValue());
    if (m_workload.count == 0 && at > m_workload.duration)
    {
        m_arrivalsOver = true; // no request arrives in the rest of the duration
        return;
    }
    m_lastArrival = at;
    RequestSpec spec;
    spec.arrival = at;
    spec.promptTokens = Length(m_promptLengths, m_workload.promptTokens, m_workload.promptMax);
    spec.outputTokens = Length(m_outputLengths, m_workload.outputTokens, m_workload.outputMax);
    Simulator::Schedule(at - Simulator::Now(), &RequestScheduler::Arrive, this, spec);
}

std::size_t
RequestScheduler::NextWindow(int length)
{
    if (std::size_t(length) > m_tokens.size())
    {
        throw std::invalid_argument("a request of " + std::to_string(length) +
                                    " tokens does not fit the text's " +
                                    std::to_string(m_tokens.size()));
    }
    if (m_cursor + length > m_tokens.size())
    {
        m_cursor = 0; // the text is scored again from its start
    }
    const std::size_t start = m_cursor;
    m_cursor += length;
    return start;
}

void
RequestScheduler::Arrive(RequestSpec spec)
{
    RequestRecord& r = m_records[m_arrivals];
    r.id = m_arrivals++;
    r.promptTokens = spec.promptTokens;
    r.outputTokens = spec.outputTokens;
    r.arrival = Simulator::Now();
    r.textOffset = NextWindow(spec.promptTokens + spec.outputTokens);
    m_queue.Push(r.id, FootprintBytes(spec.promptTokens, spec.outputTokens));
    if (m_workload.poisson && m_workload.count > 0)
    {
        m_arrivalsOver = m_arrivals >= m_workload.count;
    }
    if (!m_workload.poisson)
    {
        m_arrivalsOver = std::size_t(m_arrivals) >= m_workload.trace.size();
    }
    if (m_workload.poisson && !m_arrivalsOver)
    {
        ScheduleNextPoisson();
    }
    m_arrived();
}

std::vector<Lane*>
RequestScheduler::NextStep()
{
    for (int id : m_queue.Admit())
    {
        RequestRecord& r = m_records.at(id);
        r.admitted = Simulator::Now();
        auto lane = std::make_unique<Lane>();
        lane->request = id;
        const auto begin = m_tokens.begin() + std::ptrdiff_t(r.textOffset);
        lane->stream = std::make_unique<wdmoe::llm::TeacherForcedStream>(
            *m_model,
            std::vector<int>(begin, begin + r.promptTokens + r.outputTokens),
            r.promptTokens,
            r.outputTokens);
        m_running.push_back(std::move(lane));
    }
    return m_chunkTokens > 0 ? ChunkedStep() : PrefillFirstStep();
}

std::vector<Lane*>
RequestScheduler::PrefillFirstStep()
{
    // The admitted requests' whole prefills, else a decode step of everyone.
    std::vector<Lane*> prefills, decodes;
    for (const auto& lane : m_running)
    {
        (lane->stream->NextPassPrefillTokens() > 0 ? prefills : decodes).push_back(lane.get());
    }
    return prefills.empty() ? decodes : prefills;
}

std::vector<Lane*>
RequestScheduler::ChunkedStep()
{
    // Decode tokens first (stall-free: a running decode never waits for a prefill), then the
    // budget's rest in prefill chunks, first admitted first.
    int budget = m_chunkTokens;
    for (const auto& lane : m_running)
    {
        budget -= lane->stream->NextPassPrefillTokens() == 0;
    }
    std::vector<Lane*> step;
    for (const auto& lane : m_running)
    {
        const int prompt = lane->stream->NextPassPrefillTokens();
        if (prompt == 0)
        {
            step.push_back(lane.get());
        }
        else if (budget > 0)
        {
            lane->prefillChunk = std::min(prompt, budget);
            budget -= lane->prefillChunk;
            step.push_back(lane.get());
        }
    }
    return step;
}

std::vector<RequestRecord>
RequestScheduler::StepDone(const std::vector<Lane*>& lanes)
{
    std::vector<RequestRecord> done;
    for (const Lane* lane : lanes)
    {
        RequestRecord& r = m_records.at(lane->request);
        r.nll += lane->record.nll;
        if (lane->record.phase == PassPhase::PREFILL && lane->predicts)
        {
            r.firstToken = Simulator::Now(); // the prompt's last chunk predicted
        }
        if (lane->stream->Finished())
        {
            r.finished = Simulator::Now();
            done.push_back(r);
            m_queue.Release(r.id);
            m_records.erase(r.id);
        }
    }
    m_running.erase(
        std::remove_if(m_running.begin(),
                       m_running.end(),
                       [](const std::unique_ptr<Lane>& lane) { return lane->stream->Finished(); }),
        m_running.end());
    return done;
}

bool
RequestScheduler::Finished() const
{
    return m_arrivalsOver && m_records.empty();
}

} // namespace ns3
