// Serving: request arrivals, admission under the BS's KV memory, continuous batching.
#include "error-message.h"
#include "request-queue.h"
#include "run-scenario.h"
#include "scenario-fixture.h"
#include "serving-config.h"

#include "ns3/config.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

using namespace ns3;
using wdmoe::test::ParseCsv;
using wdmoe::test::ScenarioFixture;

namespace
{

/// A serving run on the fixture's one-device cell: requests as a trace ("arrival,P,O" rows).
nlohmann::json
TraceRequests(ScenarioFixture& f, const std::string& rows, int maxBatch)
{
    wdmoe::test::WriteFile(f.dir.File("requests.csv"),
                           "arrival_s,prompt_tokens,output_tokens\n" + rows);
    f.config["workload"] = {{"text", "text.txt"},
                            {"requests", {{"arrivals", "trace"}, {"trace", "requests.csv"}}}};
    f.config["serving"] = {{"max_batch", maxBatch}};
    return f.config;
}

/// The experts dispatched per decode step (by the start of the step) of a run.
std::map<double, std::set<int>>
RunCountingDispatch(const std::string& config, ScenarioResult& result)
{
    std::map<double, std::set<int>> byStep;
    double stepStart = 0;
    result = RunScenario(ScenarioConfig::Load(config), [&](Ptr<MoeInferenceApp> bs) {
        bs->TraceConnectWithoutContext(
            "ExpertDispatch",
            MakeCallback(+[](std::pair<double*, std::map<double, std::set<int>>*> s,
                             uint32_t,
                             uint32_t expert,
                             uint32_t) {
                (*s.second)[*s.first].insert(int(expert));
            }).Bind(std::make_pair(&stepStart, &byStep)));
        bs->TraceConnectWithoutContext("StepDone",
                                       MakeCallback(+[](double* start, const StepRecord& step) {
                                           *start = (step.start + step.duration).GetSeconds();
                                       }).Bind(&stepStart));
    });
    return byStep;
}

/// A run's steps as "phase:tokens/requests" (trace StepDone), and the time each ended.
std::vector<std::string>
RunCountingSteps(const std::string& config, ScenarioResult& result, std::vector<double>& ends)
{
    std::vector<std::pair<std::string, double>> steps;
    result = RunScenario(ScenarioConfig::Load(config), [&](Ptr<MoeInferenceApp> bs) {
        bs->TraceConnectWithoutContext(
            "StepDone",
            MakeCallback(+[](std::vector<std::pair<std::string, double>>* out,
                             const StepRecord& step) {
                out->emplace_back(
                    std::string(PassPhaseName(step.phase)) + ":" + std::to_string(step.tokens) +
                        "/" + std::to_string(step.requests) + "/" + std::to_string(step.decodes),
                    (step.start + step.duration).GetSeconds());
            }).Bind(&steps));
    });
    std::vector<std::string> names;
    ends.clear();
    for (const auto& [name, end] : steps)
    {
        names.push_back(name);
        ends.push_back(end);
    }
    return names;
}

/// Chunked prefill with a budget of chunkTokens tokens per step.
void
Chunked(nlohmann::json& config, int chunkTokens)
{
    config["serving"]["prefill"] = "chunked";
    config["serving"]["chunk_tokens"] = chunkTokens;
}

} // namespace

TEST_CASE(
    "serving: admission reserves each request's whole KV footprint, to the byte, first come first "
    "served",
    "[serving]")
{
    // Mixtral-8x7B in 16 bits: 32 layers x 2 (K, V) x 8 KV heads x 128 x 2 bytes per token.
    REQUIRE(CostModel::Mixtral8x7B().KvBytesPerToken() == 131072.0);
    const double footprint = RequestKvTokens(32, 16) * 131072.0; // 47 tokens fed
    REQUIRE(footprint == 6160384.0);
    RequestQueue exact(8, 2 * footprint);
    for (int id = 0; id < 3; ++id)
    {
        exact.Push(id, footprint);
    }
    CHECK(exact.Admit() == std::vector<int>{0, 1});
    CHECK(exact.ReservedBytes() == 2 * footprint);
    CHECK(exact.Waiting() == 1);
    exact.Release(0);
    CHECK(exact.Admit() == std::vector<int>{2});

    RequestQueue oneByteShort(8, 2 * footprint - 1);
    oneByteShort.Push(0, footprint);
    oneByteShort.Push(1, footprint);
    CHECK(oneByteShort.Admit() == std::vector<int>{0});
    CHECK(oneByteShort.Admit().empty());

    // The batch size caps the running requests; a head that does not fit blocks the rest.
    RequestQueue batch(1, 10 * footprint);
    batch.Push(0, footprint);
    batch.Push(1, footprint);
    CHECK(batch.Admit() == std::vector<int>{0});
    CHECK(batch.Admit().empty());
    RequestQueue fifo(8, 3 * footprint);
    fifo.Push(0, 2 * footprint);
    fifo.Push(1, 2 * footprint);
    fifo.Push(2, footprint);
    CHECK(fifo.Admit() == std::vector<int>{0});
    CHECK(fifo.Waiting() == 2);
    CHECK_THROWS_WITH(fifo.Push(3, 4 * footprint), Catch::Contains("more than the"));
}

TEST_CASE(
    "serving: a batch's attention reads the weights once and adds FLOPs and KV reads, and one "
    "pass is BsLayerSeconds",
    "[serving]")
{
    const CostModel m = CostModel::Mixtral8x7B();
    ComputeProfile bs;
    bs.peakFlops = 1e14;
    bs.memoryBandwidth = 1e12;
    CHECK(m.BsBatchLayerSeconds(bs, {{7, 30}}) == m.BsLayerSeconds(bs, 7, 30));
    const double flops = m.AttentionGateFlops(1, 30) + m.AttentionGateFlops(1, 40);
    const double bytes = m.AttentionGateBytes(1, 30) + m.LayerKvBytes(41);
    CHECK(m.BsBatchLayerSeconds(bs, {{1, 30}, {1, 40}}) ==
          Approx(bs.RooflineSeconds(flops, bytes)).epsilon(1e-12));
}

TEST_CASE("serving: one request served alone reproduces the single stream", "[serving]")
{
    ScenarioFixture single;
    const std::string singleCsv = RunScenario(ScenarioConfig::Load(single.Write())).tokensCsv;
    ScenarioFixture f;
    TraceRequests(f, "0,8,6\n", 4);
    const ScenarioResult served = RunScenario(ScenarioConfig::Load(f.Write()));
    CHECK(served.tokensCsv == singleCsv);
    const auto tokens = ParseCsv(served.tokensCsv);
    const auto requests = ParseCsv(served.requestsCsv);
    REQUIRE(requests.size() == 1);
    REQUIRE(tokens.size() == 6); // the prefill's prediction, then 5 decode steps
    double decodeMs = 0;
    for (std::size_t i = 1; i < tokens.size(); ++i)
    {
        decodeMs += std::stod(tokens[i].at("latency_ms"));
    }
    CHECK(std::stod(requests[0].at("queueing_ms")) == 0);
    CHECK(std::stod(requests[0].at("ttft_ms")) ==
          Approx(std::stod(tokens[0].at("latency_ms"))).epsilon(1e-6));
    CHECK(std::stod(requests[0].at("tpot_ms")) == Approx(decodeMs / 5).epsilon(1e-6));
    CHECK(served.summary["serving"]["output_tokens"] == 6);
}

TEST_CASE(
    "serving: requests are served in the documented order: first come first served, prefill-first",
    "[serving]")
{
    // A arrives at 0; B and C arrive while A decodes. With a batch of 2, B's prefill runs
    // alone (A's decoding pauses), then A and B decode together; C waits until A leaves.
    ScenarioFixture f;
    TraceRequests(f, "0,8,6\n0.001,8,6\n0.002,8,6\n", 2);
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    const auto rows = ParseCsv(r.tokensCsv);
    std::vector<std::string> order;
    for (const auto& row : rows)
    {
        order.push_back(row.at("phase").substr(0, 1) + row.at("request"));
    }
    // Steps: A's prefill (B and C arrive during it); B's prefill; A and B decode together five
    // times and leave together; C's prefill; C's five decode steps.
    const std::vector<std::string> expected = {"p0",
                                               "p1",
                                               "d0",
                                               "d1",
                                               "d0",
                                               "d1",
                                               "d0",
                                               "d1",
                                               "d0",
                                               "d1",
                                               "d0",
                                               "d1",
                                               "p2",
                                               "d2",
                                               "d2",
                                               "d2",
                                               "d2",
                                               "d2"};
    CHECK(order == expected);
    const auto requests = ParseCsv(r.requestsCsv);
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].at("request") == "0");
    CHECK(requests[1].at("request") == "1");
    CHECK(requests[2].at("request") == "2");
    CHECK(std::stod(requests[2].at("admitted_s")) == std::stod(requests[1].at("finished_s")));
}

TEST_CASE(
    "serving: two requests decoding together read each expert once and each keeps its NLL alone",
    "[serving]")
{
    ScenarioFixture together;
    TraceRequests(together, "0,8,6\n0,8,6\n", 2);
    ScenarioResult batched;
    const auto batchedExperts = RunCountingDispatch(together.Write(), batched);
    ScenarioFixture apart;
    TraceRequests(apart, "0,8,6\n0,8,6\n", 1);
    ScenarioResult alone;
    const auto aloneExperts = RunCountingDispatch(apart.Write(), alone);

    // Priced as Mixtral-8x7B on a Jetson AGX Orin: an expert at 1 or 2 tokens is memory bound,
    // 3 * 4096 * 14336 * 2 bytes at 0.8 * 204.8 GB/s = 2.1504 ms, whatever the tokens.
    const double expertMs = 3.0 * 4096 * 14336 * 2 / (0.8 * 204.8e9) * 1e3;
    REQUIRE(expertMs == Approx(2.1504));
    const auto rowsTogether = ParseCsv(batched.tokensCsv);
    const auto rowsAlone = ParseCsv(alone.tokensCsv);
    REQUIRE(rowsTogether.size() == 12);
    REQUIRE(rowsAlone.size() == 12);
    // Alone: request 0's rows, then request 1's. Together: steps of both, in request order.
    std::vector<std::set<int>> aloneSets;
    for (const auto& [start, experts] : aloneExperts)
    {
        aloneSets.push_back(experts);
    }
    REQUIRE(aloneSets.size() == 12);
    REQUIRE(batchedExperts.size() == 6); // both prefills in one step, then five decode steps
    int shared = 0;
    std::size_t step = 0;
    for (const auto& [start, experts] : batchedExperts)
    {
        const std::size_t row = 2 * step; // each step writes two rows
        if (step > 0)                     // decode steps: the union of the two tokens' experts
        {
            std::set<int> both = aloneSets[step];
            both.insert(aloneSets[6 + step].begin(), aloneSets[6 + step].end());
            CHECK(experts == both);
            shared += int(aloneSets[step].size() + aloneSets[6 + step].size() - both.size());
            CHECK(std::stod(rowsTogether[row].at("device_compute_ms")) ==
                  Approx(expertMs * double(both.size())).epsilon(1e-9));
            CHECK(std::stod(rowsAlone[step].at("device_compute_ms")) ==
                  Approx(expertMs * 2).epsilon(1e-9));
        }
        ++step;
    }
    CHECK(shared > 0); // the case is informative: some experts served both tokens at once
    // Each request's NLLs are its own, bit for bit.
    for (std::size_t i = 0; i < 12; ++i)
    {
        const auto& t = rowsTogether[i];
        const auto& a = rowsAlone[(std::stoi(t.at("request")) * 6) + i / 2];
        CHECK(t.at("nll") == a.at("nll"));
        CHECK(t.at("kl") == a.at("kl"));
    }
}

TEST_CASE("serving: Poisson arrivals with deterministic service wait as M/D/1 at light load",
          "[serving]")
{
    // One-token prompts asking for one token: every request is one prefill step of one token,
    // on one device over a static channel, and a batch of one serves them one at a time.
    ScenarioFixture f;
    const double rho = 0.3;
    const int count = 4000;
    f.config["workload"] = {{"text", "text.txt"},
                            {"requests",
                             {{"arrivals", "poisson"},
                              {"rate_per_s", 1.0}, // set below from the service time
                              {"count", 2},
                              {"prompt_tokens", 1},
                              {"output_tokens", 1}}}};
    f.config["serving"] = {{"max_batch", 1}};
    const auto probe = ParseCsv(RunScenario(ScenarioConfig::Load(f.Write())).requestsCsv);
    const double service = std::stod(probe[0].at("e2e_ms")) - std::stod(probe[0].at("queueing_ms"));
    f.config["workload"]["requests"]["rate_per_s"] = rho / (service / 1e3);
    f.config["workload"]["requests"]["count"] = count;
    const auto rows = ParseCsv(RunScenario(ScenarioConfig::Load(f.Write())).requestsCsv);
    REQUIRE(rows.size() == std::size_t(count));
    // Deterministic service: every request's time from admission to its token is the same.
    std::vector<double> waits;
    for (const auto& r : rows)
    {
        CHECK(std::stod(r.at("e2e_ms")) - std::stod(r.at("queueing_ms")) ==
              Approx(service).margin(1e-5));
        waits.push_back(std::stod(r.at("queueing_ms")));
    }
    // Pollaczek-Khinchine for M/D/1: W = rho / (2 mu (1 - rho)) = rho D / (2 (1 - rho)).
    const double expected = rho * service / (2 * (1 - rho));
    // The sampling error from 20 batch means (the waits of neighbours are correlated).
    const int batches = 20;
    const int per = count / batches;
    std::vector<double> means(batches, 0.0);
    double mean = 0;
    for (int i = 0; i < batches * per; ++i)
    {
        means[i / per] += waits[i] / per;
        mean += waits[i] / (batches * per);
    }
    double var = 0;
    for (double m : means)
    {
        var += (m - mean) * (m - mean) / (batches - 1);
    }
    const double stderrMean = std::sqrt(var / batches);
    INFO("mean wait " << mean << " ms, M/D/1 " << expected << " ms, standard error " << stderrMean);
    CHECK(stderrMean < 0.1 * expected); // the run is long enough to tell
    CHECK(std::abs(mean - expected) < 3 * stderrMean);
}

TEST_CASE("serving: configs are checked", "[serving]")
{
    ScenarioFixture f;
    TraceRequests(f, "0,8,6\n", 1);
    f.config["workload"]["prompt_tokens"] = 8;
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("workload.prompt_tokens") &&
                          Catch::Contains("single stream"));
    TraceRequests(f, "0,8,6\n", 1);
    f.config["policy"] = {{"prefetch", true}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()), Catch::Contains("policy.prefetch"));
    f.config.erase("policy");
    TraceRequests(f, "0.5,8,6\n0.2,8,6\n", 1);
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("requests.csv: line 3") && Catch::Contains("decrease"));
    TraceRequests(f, "0,20,6\n", 1);
    CHECK_THROWS_WITH(RunScenario(ScenarioConfig::Load(f.Write())),
                      Catch::Contains("workload.requests.trace") &&
                          Catch::Contains("context of 24"));
    f.config["workload"] = {{"text", "text.txt"},
                            {"requests", {{"arrivals", "poisson"}, {"rate_per_s", 1}}}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()), Catch::Contains("duration_s"));
    f.config["workload"] = {{"text", "text.txt"}};
    f.config["serving"] = {{"max_batch", 2}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()), Catch::Contains("needs workload.requests"));
}

TEST_CASE("serving: Poisson prompt and output lengths drawn uniformly from min to max", "[serving]")
{
    ScenarioFixture f;
    const int count = 400;
    f.config["workload"] = {{"text", "text.txt"},
                            {"requests",
                             {{"arrivals", "poisson"},
                              {"rate_per_s", 1000},
                              {"count", count},
                              {"prompt_tokens", {{"min", 2}, {"max", 6}}},
                              {"output_tokens", {{"min", 1}, {"max", 3}}}}}};
    const auto rows = ParseCsv(RunScenario(ScenarioConfig::Load(f.Write())).requestsCsv);
    REQUIRE(rows.size() == std::size_t(count));
    std::map<int, int> prompts, outputs;
    double promptMean = 0, outputMean = 0;
    for (const auto& r : rows)
    {
        ++prompts[std::stoi(r.at("prompt_tokens"))];
        ++outputs[std::stoi(r.at("output_tokens"))];
        promptMean += std::stod(r.at("prompt_tokens")) / count;
        outputMean += std::stod(r.at("output_tokens")) / count;
    }
    // Every whole number of each range occurs, nothing outside it.
    CHECK(prompts.size() == 5);
    CHECK(prompts.begin()->first == 2);
    CHECK(prompts.rbegin()->first == 6);
    CHECK(outputs.size() == 3);
    CHECK(outputs.begin()->first == 1);
    CHECK(outputs.rbegin()->first == 3);
    // Uniform: means 4 and 2, standard deviations sqrt(2) and sqrt(2/3) per draw; four
    // standard errors of the mean of 400 draws.
    CHECK(std::abs(promptMean - 4) < 4 * std::sqrt(2.0 / count));
    CHECK(std::abs(outputMean - 2) < 4 * std::sqrt(2.0 / 3 / count));

    f.config["workload"]["requests"]["prompt_tokens"] = {{"min", 6}, {"max", 2}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("workload.requests.prompt_tokens.max"));
}

TEST_CASE("serving: chunked prefill serves the running decodes first and the budget's rest in "
          "prompt chunks, in the order worked out by hand",
          "[serving][chunked]")
{
    // A and B arrive together, 8-token prompts asking for 3 tokens; a batch of 2, a budget of 4
    // tokens per step. Step 1: A's prompt 0-3 (B gets nothing of the budget); step 2: A's 4-7,
    // its first token; step 3: A decodes (1 token) and B prefills 3; step 4: the same, and A
    // leaves after its third token; step 5: B's last 2 prompt tokens, its first token; steps 6
    // and 7: B decodes.
    ScenarioFixture f;
    TraceRequests(f, "0,8,3\n0,8,3\n", 2);
    Chunked(f.config, 4);
    ScenarioResult r;
    std::vector<double> ends;
    const auto steps = RunCountingSteps(f.Write(), r, ends);
    const std::vector<std::string> expected = {"prefill:4/1/0",
                                               "prefill:4/1/0",
                                               "mixed:4/2/1",
                                               "mixed:4/2/1",
                                               "prefill:2/1/0",
                                               "decode:1/1/1",
                                               "decode:1/1/1"};
    CHECK(steps == expected);
    // tokens.csv has the scored tokens only: a prompt's first output token comes with its
    // last chunk.
    std::vector<std::string> order;
    for (const auto& row : ParseCsv(r.tokensCsv))
    {
        order.push_back(row.at("phase").substr(0, 1) + row.at("request") + "@" +
                        row.at("position") + "x" + row.at("tokens_fed"));
    }
    CHECK(order ==
          std::vector<std::string>{"p0@7x4", "d0@8x1", "d0@9x1", "p1@7x2", "d1@8x1", "d1@9x1"});
    // TTFT runs to the end of the last chunk's step (both arrived at 0).
    const auto requests = ParseCsv(r.requestsCsv);
    REQUIRE(requests.size() == 2);
    REQUIRE(ends.size() == 7);
    CHECK(std::stod(requests[0].at("ttft_ms")) == Approx(ends[1] * 1e3).epsilon(1e-7));
    CHECK(std::stod(requests[1].at("ttft_ms")) == Approx(ends[4] * 1e3).epsilon(1e-7));
    CHECK(std::stod(requests[0].at("e2e_ms")) == Approx(ends[3] * 1e3).epsilon(1e-7));
    CHECK(std::stod(requests[1].at("e2e_ms")) == Approx(ends[6] * 1e3).epsilon(1e-7));
    CHECK(r.summary["serving"]["prefill"] == "chunked");
    CHECK(r.summary["serving"]["chunk_tokens"] == 4);
    // Decode passes per step with any: A alone, A, A, B, B (steps 3-7).
    CHECK(r.summary["serving"]["decode_batch_mean"] == Approx(1.0));
}

TEST_CASE("serving: chunked prefill keeps every step within its token budget and feeds each "
          "token once",
          "[serving][chunked]")
{
    ScenarioFixture f;
    const int count = 60;
    f.config["workload"] = {{"text", "text.txt"},
                            {"requests",
                             {{"arrivals", "poisson"},
                              {"rate_per_s", 1000},
                              {"count", count},
                              {"prompt_tokens", {{"min", 1}, {"max", 12}}},
                              {"output_tokens", {{"min", 1}, {"max", 4}}}}}};
    f.config["serving"] = {{"max_batch", 3}};
    Chunked(f.config, 5);
    ScenarioResult r;
    std::vector<double> ends;
    const auto steps = RunCountingSteps(f.Write(), r, ends);
    const auto requests = ParseCsv(r.requestsCsv);
    REQUIRE(requests.size() == std::size_t(count));
    long long fed = 0;
    int longPrompts = 0;
    for (const auto& q : requests)
    {
        fed += std::stoi(q.at("prompt_tokens")) + std::stoi(q.at("output_tokens")) - 1;
        longPrompts += std::stoi(q.at("prompt_tokens")) > 5;
    }
    CHECK(longPrompts > 0); // some prompts must span several steps
    long long stepTokens = 0;
    int full = 0;
    for (const std::string& step : steps)
    {
        const int tokens = std::stoi(step.substr(step.find(':') + 1));
        CHECK(tokens <= 5);
        full += tokens == 5;
        stepTokens += tokens;
    }
    CHECK(full > 0); // the budget binds
    CHECK(stepTokens == fed);
}

TEST_CASE("serving: chunked prefill scores every token as prefill-first does", "[serving][chunked]")
{
    // Chunks of 3, 3 and 2 tokens (budget 3) against whole prompts: the same per-request NLLs
    // to float rounding (attention over cached chunks is the prompt's attention).
    ScenarioFixture whole;
    TraceRequests(whole, "0,8,4\n0,8,4\n0.001,6,3\n", 2);
    const ScenarioResult a = RunScenario(ScenarioConfig::Load(whole.Write()));
    ScenarioFixture chunked;
    TraceRequests(chunked, "0,8,4\n0,8,4\n0.001,6,3\n", 2);
    Chunked(chunked.config, 3);
    const ScenarioResult b = RunScenario(ScenarioConfig::Load(chunked.Write()));
    std::map<std::pair<std::string, std::string>, double> nllA, nllB;
    for (const auto& row : ParseCsv(a.tokensCsv))
    {
        nllA[{row.at("request"), row.at("position")}] = std::stod(row.at("nll"));
    }
    for (const auto& row : ParseCsv(b.tokensCsv))
    {
        nllB[{row.at("request"), row.at("position")}] = std::stod(row.at("nll"));
    }
    REQUIRE(nllA.size() == 11);
    REQUIRE(nllB.size() == nllA.size());
    for (const auto& [key, nll] : nllA)
    {
        INFO("request " << key.first << " position " << key.second);
        REQUIRE(nllB.count(key) == 1);
        CHECK(nllB.at(key) == Approx(nll).epsilon(1e-5));
    }
    std::map<std::string, double> perRequestA;
    for (const auto& row : ParseCsv(a.requestsCsv))
    {
        perRequestA[row.at("request")] = std::stod(row.at("nll_per_token"));
    }
    const auto requestsB = ParseCsv(b.requestsCsv);
    REQUIRE(requestsB.size() == 3);
    for (const auto& row : requestsB)
    {
        CHECK(std::stod(row.at("nll_per_token")) ==
              Approx(perRequestA.at(row.at("request"))).epsilon(1e-5));
    }
}

TEST_CASE("serving: chunked prefill's config is checked", "[serving][chunked]")
{
    ScenarioFixture f;
    TraceRequests(f, "0,8,6\n", 2);
    f.config["serving"]["prefill"] = "chunked";
    CHECK(ScenarioConfig::Load(f.Write()).serving->chunkTokens == 512); // the default budget
    f.config["serving"]["max_batch"] = 600;
    CHECK(ScenarioConfig::Load(f.Write()).serving->chunkTokens == 600); // at least the batch
    f.config["serving"]["max_batch"] = 2;
    Chunked(f.config, 1);
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("serving.chunk_tokens") && Catch::Contains("2"));
    f.config["serving"] = {{"max_batch", 2}, {"chunk_tokens", 4}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("serving.chunk_tokens") && Catch::Contains("chunked"));
    f.config["serving"] = {{"max_batch", 2}, {"prefill", "sarathi"}};
    CHECK_THROWS_WITH(ScenarioConfig::Load(f.Write()),
                      Catch::Contains("serving.prefill") && Catch::Contains("chunked"));
}
