#include "serving-config.h"

#include "file-io.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

namespace ns3
{

namespace
{

[[noreturn]] void
TraceFail(const std::string& path, int line, const std::string& problem)
{
    throw JsonConfigError(path + ": line " + std::to_string(line) + ": " + problem);
}

/// One data line of a trace: three numbers.
RequestSpec
ParseTraceLine(const std::string& path, int line, const std::string& text)
{
    std::vector<std::string> fields;
    std::istringstream in(text);
    for (std::string f; std::getline(in, f, ',');)
    {
        fields.push_back(f);
    }
    if (fields.size() != 3)
    {
        TraceFail(path,
                  line,
                  "expected 3 fields (arrival_s,prompt_tokens,output_tokens), got " +
                      std::to_string(fields.size()));
    }
    RequestSpec spec;
    try
    {
        std::size_t used = 0;
        const double arrival = std::stod(fields[0], &used);
        if (used != fields[0].size() || !std::isfinite(arrival) || arrival < 0)
        {
            throw std::invalid_argument("arrival");
        }
        spec.arrival = Seconds(arrival);
        for (int k = 1; k <= 2; ++k)
        {
            const long long n = std::stoll(fields[k], &used);
            if (used != fields[k].size() || n < 1 || n > (1 << 20))
            {
                throw std::invalid_argument("count");
            }
            (k == 1 ? spec.promptTokens : spec.outputTokens) = int(n);
        }
    }
    catch (const std::exception&)
    {
        TraceFail(path,
                  line,
                  "expected arrival_s >= 0 and whole token counts in [1, 1048576], "
                  "got " +
                      QuoteForMessage(text));
    }
    return spec;
}

/// A Poisson request's length: a whole number (fixed; second 0), or {"min": a, "max": b}, drawn
/// uniformly from the whole numbers a..b.
std::pair<int, int>
ReadLength(const JsonConfigReader& r, const std::string& key, int fallback)
{
    if (!r.Has(key) || !r.Json().at(key).is_object())
    {
        return {int(r.Integer(key, fallback, 1, 1 << 20)), 0};
    }
    const JsonConfigReader range = r.Object(key);
    range.AllowOnly({"min", "max"});
    for (const char* bound : {"min", "max"})
    {
        if (!range.Has(bound))
        {
            range.Fail(bound, "is required (lengths are drawn uniformly from min to max)");
        }
    }
    const int low = int(range.Integer("min", 1, 1, 1 << 20));
    return {low, int(range.Integer("max", low, low, 1 << 20))};
}

/// The "serving" object: the batch, the prefill rule (and chunked prefill's budget) and the
/// KV memory share.
void
ReadBatching(const JsonConfigReader& b, ServingConfig& s)
{
    constexpr int64_t kDefaultChunkTokens = 512;
    b.AllowOnly({"max_batch", "prefill", "chunk_tokens", "kv_memory_fraction"});
    s.maxBatch = uint32_t(b.Integer("max_batch", 8, 1, 1 << 16));
    s.prefill = b.Choice("prefill", "prefill-first", {"prefill-first", "chunked"});
    if (s.prefill == "chunked")
    {
        // At least the batch size: the decode tokens of a full batch but one leave a waiting
        // prefill at least one token of every step. The default is a budget Sarathi-Serve
        // evaluates (512 tokens), or the batch size when that is larger.
        s.chunkTokens = uint32_t(b.Integer("chunk_tokens",
                                           std::max<int64_t>(kDefaultChunkTokens, s.maxBatch),
                                           s.maxBatch,
                                           1 << 20));
    }
    else if (b.Has("chunk_tokens"))
    {
        b.Fail("chunk_tokens", "is for prefill \"chunked\"");
    }
    s.kvMemoryFraction = b.Number("kv_memory_fraction", 0.5, 1e-12, 1);
}

} // namespace

std::vector<RequestSpec>
ReadRequestTrace(const std::string& path)
{
    const std::optional<std::string> text = wdmoe::llm::ReadWholeFile(path);
    if (!text)
    {
        throw JsonConfigError(path + ": the request trace cannot be read");
    }
    std::istringstream in(*text);
    std::vector<RequestSpec> trace;
    bool header = false;
    int line = 0;
    for (std::string row; std::getline(in, row);)
    {
        ++line;
        row.erase(std::remove(row.begin(), row.end(), '\r'), row.end());
        if (row.empty() || row[0] == '#')
        {
            continue;
        }
        if (!header)
        {
            if (row != "arrival_s,prompt_tokens,output_tokens")
            {
                TraceFail(path, line, "expected the header arrival_s,prompt_tokens,output_tokens");
            }
            header = true;
            continue;
        }
        trace.push_back(ParseTraceLine(path, line, row));
        if (trace.size() > 1 && trace.back().arrival < trace[trace.size() - 2].arrival)
        {
            TraceFail(path, line, "arrivals must not decrease");
        }
    }
    if (trace.empty())
    {
        throw JsonConfigError(path + ": the request trace has no request");
    }
    return trace;
}

std::optional<ServingConfig>
ReadServing(const JsonConfigReader& root, const JsonConfigReader& workload)
{
    if (!workload.Has("requests"))
    {
        if (root.Has("serving"))
        {
            root.Fail("serving", "needs workload.requests (the requests it serves)");
        }
        return std::nullopt;
    }
    for (const char* single : {"prompt_tokens", "scored_tokens"})
    {
        if (workload.Has(single))
        {
            workload.Fail(single,
                          "is the single stream's; with workload.requests each request "
                          "has its own (requests.prompt_tokens, output_tokens or trace)");
        }
    }
    ServingConfig s;
    const JsonConfigReader r = workload.Object("requests");
    r.AllowOnly({"arrivals",
                 "rate_per_s",
                 "count",
                 "duration_s",
                 "prompt_tokens",
                 "output_tokens",
                 "trace"});
    ServingWorkload& w = s.workload;
    w.poisson = r.Choice("arrivals", "poisson", {"poisson", "trace"}) == "poisson";
    if (w.poisson)
    {
        if (r.Has("trace"))
        {
            r.Fail("trace", "is for arrivals \"trace\"");
        }
        if (r.Has("count") == r.Has("duration_s"))
        {
            r.Fail("count", "or duration_s (exactly one of them) ends Poisson arrivals");
        }
        if (!r.Has("rate_per_s"))
        {
            r.Fail("rate_per_s", "is required for Poisson arrivals (requests per second)");
        }
        w.ratePerS = r.Number("rate_per_s", 1, 1e-9, 1e9);
        w.count = int(r.Integer("count", 0, 1, 1 << 24));
        w.duration = Seconds(r.Number("duration_s", 0, 1e-9, 1e9));
        std::tie(w.promptTokens, w.promptMax) = ReadLength(r, "prompt_tokens", 32);
        std::tie(w.outputTokens, w.outputMax) = ReadLength(r, "output_tokens", 16);
    }
    else
    {
        for (const char* key :
             {"rate_per_s", "count", "duration_s", "prompt_tokens", "output_tokens"})
        {
            if (r.Has(key))
            {
                r.Fail(key, "is for Poisson arrivals; the trace gives each request's");
            }
        }
        s.tracePath = root.PathRelativeToFile(r.String("trace"));
        w.trace = ReadRequestTrace(s.tracePath);
    }
    ReadBatching(root.Object("serving"), s);
    return s;
}

int
LongestRequestTokens(const ServingWorkload& workload)
{
    if (workload.poisson)
    {
        return std::max(workload.promptTokens, workload.promptMax) +
               std::max(workload.outputTokens, workload.outputMax);
    }
    int longest = 0;
    for (const RequestSpec& r : workload.trace)
    {
        longest = std::max(longest, r.promptTokens + r.outputTokens);
    }
    return longest;
}

} // namespace ns3
