// The BS's serving front end: requests arrive (Poisson or a trace), wait for admission
// (RequestQueue), and run in steps that the prefill rule composes from the admitted requests.
#ifndef WDMOE_REQUEST_SCHEDULER_H
#define WDMOE_REQUEST_SCHEDULER_H

#include "batch-step.h"
#include "request-queue.h"
#include "serving-workload.h"

#include "ns3/callback.h"
#include "ns3/random-variable-stream.h"

#include <map>
#include <memory>
#include <vector>

namespace wdmoe
{
namespace llm
{
class MixtralModel;
} // namespace llm
} // namespace wdmoe

namespace ns3
{

/**
 * \ingroup wdmoe
 * Arrivals, admission and step composition of a serving BS. Request i scores its own window of
 * the text: the windows (prompt + output tokens each) follow one another from the text's start
 * and wrap to its start when the next one would run past its end. Service order: admission is
 * first come, first served (RequestQueue); then the prefill rule composes the step from the
 * running requests, in admission order:
 * - prefill-first (chunkTokens 0): when admitted requests wait for their prefill, the step is
 *   all of their whole prefills, else it is one decode step of every running request;
 * - chunked (chunkTokens > 0, Sarathi-Serve's stall-free batching): the step carries one
 *   decode token of every request whose prefill is done, and the rest of the token budget
 *   goes to prefill chunks, request by request in admission order (each takes what is left of
 *   its prompt or of the budget, whichever is less); a prompt may thus span several steps, and
 *   its first output token comes with its last chunk. The budget must be at least the batch
 *   size, so that a waiting prefill always gets a token.
 * A request leaves after its last output token.
 */
class RequestScheduler
{
  public:
    /// kvBudgetBytes: the BS's KV memory; kvBytesPerToken: what one token holds of it;
    /// chunkTokens: the token budget of a step of chunked prefill (0: prefill-first). Throws
    /// std::invalid_argument for a budget below maxBatch.
    void Configure(std::shared_ptr<wdmoe::llm::MixtralModel> model,
                   const std::vector<int>& tokens,
                   const ServingWorkload& workload,
                   std::size_t maxBatch,
                   double kvBudgetBytes,
                   double kvBytesPerToken,
                   int chunkTokens = 0);
    /// The Poisson process's gaps (its Mean is set to 1 / rate here) and the draws of uniform
    /// prompt and output lengths.
    void SetRandomVariables(Ptr<ExponentialRandomVariable> gaps,
                            Ptr<UniformRandomVariable> promptLengths,
                            Ptr<UniformRandomVariable> outputLengths);
    /// Schedules the arrivals; `arrived` is called after each (the BS starts a step if idle).
    void Start(Callback<void> arrived);

    /// Admits what fits, then the lanes of the next step; empty when none is running.
    std::vector<Lane*> NextStep();
    /// The step of `lanes` finished now: notes first tokens and NLLs; the requests that gave
    /// their last token leave (their KV memory is freed) and are returned.
    std::vector<RequestRecord> StepDone(const std::vector<Lane*>& lanes);

    /// Every request has arrived and left.
    bool Finished() const;

    std::size_t Waiting() const { return m_queue.Waiting(); }

    std::size_t Running() const { return m_running.size(); }

    /// KV bytes a request of these lengths reserves.
    double FootprintBytes(int promptTokens, int outputTokens) const;

  private:
    void ScheduleNextPoisson();
    void Arrive(RequestSpec spec);
    /// Where the next request's window of `length` tokens starts.
    std::size_t NextWindow(int length);
    /// The step's lanes by the prefill rule, from the running requests.
    std::vector<Lane*> PrefillFirstStep();
    std::vector<Lane*> ChunkedStep();

    std::shared_ptr<wdmoe::llm::MixtralModel> m_model;
    std::vector<int> m_tokens;
    ServingWorkload m_workload;
    double m_kvBytesPerToken = 0;
    int m_chunkTokens = 0;
    RequestQueue m_queue;
    /// A length of [low, high]: low when high <= low, else drawn uniformly.
    int Length(Ptr<UniformRandomVariable> draw, int low, int high) const;

    Ptr<ExponentialRandomVariable> m_gaps;
    Ptr<UniformRandomVariable> m_promptLengths;
    Ptr<UniformRandomVariable> m_outputLengths;
    Callback<void> m_arrived;
    Time m_lastArrival;
    int m_arrivals = 0;
    bool m_arrivalsOver = false;
    std::size_t m_cursor = 0;
    std::map<int, RequestRecord> m_records;       ///< of requests not yet finished
    std::vector<std::unique_ptr<Lane>> m_running; ///< admitted, in admission order
};

} // namespace ns3

#endif
