// "workload.requests" and "serving" of a scenario config: the requests a serving cell receives
// and how the BS batches and admits them; and the request trace file format.
#ifndef WDMOE_SERVING_CONFIG_H
#define WDMOE_SERVING_CONFIG_H

#include "json-config.h"
#include "serving-workload.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ns3
{

/// A serving run's requests and the BS's batching and admission.
struct ServingConfig
{
    ServingWorkload workload;
    std::string tracePath;         ///< "requests.trace" (arrivals "trace"), resolved
    uint32_t maxBatch = 8;         ///< "serving.max_batch": requests running at once
    double kvMemoryFraction = 0.5; ///< "serving.kv_memory_fraction" of the BS profile's memory
    std::string prefill = "prefill-first"; ///< "serving.prefill": the step composition rule
    /// "serving.chunk_tokens": a step's token budget with prefill "chunked" (0 otherwise)
    uint32_t chunkTokens = 0;
};

/// The workload's "requests" object and the top-level "serving" object, or none when
/// workload.requests is absent (then "serving" must be absent too). Errors name the field.
std::optional<ServingConfig> ReadServing(const JsonConfigReader& root,
                                         const JsonConfigReader& workload);

/// A request trace: CSV with the header "arrival_s,prompt_tokens,output_tokens" and one request
/// per line (arrival in seconds from the start, non-decreasing; token counts >= 1). Blank lines
/// and lines starting with '#' are skipped. Errors name the file and the line.
std::vector<RequestSpec> ReadRequestTrace(const std::string& path);

/// The longest request (prompt + output tokens) of a workload: what the text and the model's
/// context must hold.
int LongestRequestTokens(const ServingWorkload& workload);

} // namespace ns3

#endif
