// The requests a serving cell receives (arrivals, prompt and output lengths), the BS's batching
// limits, and what the BS reports of each finished request.
#ifndef WDMOE_SERVING_WORKLOAD_H
#define WDMOE_SERVING_WORKLOAD_H

#include "ns3/nstime.h"

#include <cstddef>
#include <vector>

namespace ns3
{

/// One request: when it arrives, the prompt it brings and the tokens it asks for. Its first
/// output token is the prediction of its prefill; each further one is a decode step.
struct RequestSpec
{
    Time arrival;
    int promptTokens = 1;
    int outputTokens = 1;
};

/// Where the requests come from: a Poisson process at ratePerS (count requests, or every
/// arrival before duration when count is 0), each with promptTokens and outputTokens (or, when
/// promptMax (outputMax) is above it, a length drawn uniformly from the whole numbers
/// promptTokens..promptMax); or a trace of requests in arrival order.
struct ServingWorkload
{
    bool poisson = true;
    double ratePerS = 1;
    int count = 0;
    Time duration;
    int promptTokens = 16;
    int outputTokens = 16;
    int promptMax = 0; ///< above promptTokens: uniform lengths promptTokens..promptMax
    int outputMax = 0; ///< above outputTokens: uniform lengths outputTokens..outputMax
    std::vector<RequestSpec> trace;
};

/// The text tokens of one request: the prompt and every output token but the last are fed
/// (held in the KV cache); the last output token is predicted, never fed.
inline int
RequestKvTokens(int promptTokens, int outputTokens)
{
    return promptTokens + outputTokens - 1;
}

/// What one finished request went through (the rows of requests.csv).
struct RequestRecord
{
    int id = 0;
    int promptTokens = 0;
    int outputTokens = 0;
    std::size_t textOffset = 0; ///< where its window starts in the scored text (tokens)
    Time arrival;
    Time admitted;   ///< left the admission queue (its KV memory reserved)
    Time firstToken; ///< its prefill finished: the first output token is known
    Time finished;   ///< its last output token is known
    double nll = 0;  ///< summed over its output tokens, nats
};

} // namespace ns3

#endif
