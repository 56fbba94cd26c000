// Cache slots and expert memory: AdapMoE's expected on-demand loads on hand values, the slot DP
// against exhaustive enumeration, the uniform split, and ExpertMemory's LRU per layer, storage
// reader and prefetch timing.
#include "cache-allocation.h"
#include "expert-cache.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

using namespace ns3;

namespace
{

/// Least total cost over every slots vector with slots[l] < cost[l].size() and sum <= budget.
double
ExhaustiveMin(const std::vector<std::vector<double>>& cost, int budget)
{
    const std::size_t n = cost.size();
    std::vector<int> k(n, 0);
    double best = std::numeric_limits<double>::infinity();
    while (true)
    {
        int used = 0;
        double total = 0.0;
        for (std::size_t l = 0; l < n; ++l)
        {
            used += k[l];
            total += cost[l][k[l]];
        }
        if (used <= budget)
        {
            best = std::min(best, total);
        }
        std::size_t i = 0;
        while (i < n && ++k[i] == int(cost[i].size()))
        {
            k[i++] = 0;
        }
        if (i == n)
        {
            break;
        }
    }
    return best;
}

/// AdapMoE's cost table of one layer: k = 0..hosted slots.
std::vector<double>
LayerCosts(double r, double a, int hosted, int experts, int topK)
{
    std::vector<double> row;
    for (int k = 0; k <= hosted; ++k)
    {
        row.push_back(ExpectedOnDemandLoads(r, a, hosted, experts, topK, k));
    }
    return row;
}

} // namespace

TEST_CASE("cache: expected on-demand loads, closed form on hand values", "[policy]")
{
    // Activations (2 - 0.5) * 4 / 8 = 0.75; misses 1 - 1/4 = 0.75; not prefetched 0.2.
    CHECK(ExpectedOnDemandLoads(0.5, 0.8, 4, 8, 2, 1) == Approx(0.1125).epsilon(1e-12));
    // Every expert hosted, nothing kept or prefetched, always top-2: 2 loads per token.
    CHECK(ExpectedOnDemandLoads(0.0, 0.0, 8, 8, 2, 0) == Approx(2.0).epsilon(1e-12));
    // Always a single expert: one activation per token spread over the hosted share.
    CHECK(ExpectedOnDemandLoads(1.0, 0.0, 2, 8, 2, 0) == Approx(0.25).epsilon(1e-12));
    // Top-1 ignores the single-expert rate.
    CHECK(ExpectedOnDemandLoads(0.7, 0.0, 4, 8, 1, 2) == Approx(0.25).epsilon(1e-12));
    // Top-3 with r = 0.5: 3 - 2 * 0.5 = 2 activations over all experts, 3 of 6 slots.
    CHECK(ExpectedOnDemandLoads(0.5, 0.5, 6, 6, 3, 3) == Approx(0.5).epsilon(1e-12));
    // Nothing hosted or everything kept: no loads.
    CHECK(ExpectedOnDemandLoads(0.3, 0.5, 0, 8, 2, 0) == 0.0);
    CHECK(ExpectedOnDemandLoads(0.3, 0.5, 4, 8, 2, 4) == 0.0);
    CHECK(ExpectedOnDemandLoads(0.3, 0.5, 4, 8, 2, 9) == 0.0);
    // Without a slot a prefetch has nowhere to go: (2 - 0.3) x 4/8 x 1 x (1 - 0).
    CHECK(ExpectedOnDemandLoads(0.3, 1.0, 4, 8, 2, 0) == Approx(0.85).epsilon(1e-12));
    // With one: 1.7 x 0.5 x (1 - 1/4) x (1 - 0.6) = 0.255.
    CHECK(ExpectedOnDemandLoads(0.3, 0.6, 4, 8, 2, 1) == Approx(0.255).epsilon(1e-12));

    CHECK_THROWS_AS(ExpectedOnDemandLoads(-0.1, 0.5, 4, 8, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 1.5, 4, 8, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 0.5, 9, 8, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 0.5, -1, 8, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 0.5, 4, 0, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 0.5, 4, 8, 0, 1), std::invalid_argument);
    CHECK_THROWS_AS(ExpectedOnDemandLoads(0.1, 0.5, 4, 8, 2, -1), std::invalid_argument);
}

TEST_CASE("cache: slot DP equals exhaustive enumeration", "[policy]")
{
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<int> layersDist(1, 4);
    std::uniform_int_distribution<int> slotsDist(0, 4);
    std::uniform_int_distribution<int> budgetDist(0, 10);
    std::uniform_real_distribution<double> costDist(0.0, 3.0);
    std::uniform_int_distribution<int> intCost(0, 3); // ties on purpose
    for (int trial = 0; trial < 400; ++trial)
    {
        const int layers = layersDist(rng);
        std::vector<std::vector<double>> cost(layers);
        for (auto& row : cost)
        {
            const int maxK = slotsDist(rng);
            for (int k = 0; k <= maxK; ++k)
            {
                row.push_back(trial % 2 ? costDist(rng) : double(intCost(rng)));
            }
        }
        const int budget = budgetDist(rng);
        const std::vector<int> slots = AllocateSlotsDp(cost, budget);
        REQUIRE(slots.size() == cost.size());
        int used = 0;
        double total = 0.0;
        for (int l = 0; l < layers; ++l)
        {
            REQUIRE(slots[l] >= 0);
            REQUIRE(slots[l] < int(cost[l].size()));
            used += slots[l];
            total += cost[l][slots[l]];
        }
        INFO("trial " << trial << ", budget " << budget);
        CHECK(used <= budget);
        CHECK(total == Approx(ExhaustiveMin(cost, budget)).margin(1e-12));
    }
}

TEST_CASE("cache: slot DP on AdapMoE costs, by hand", "[policy]")
{
    // Two layers, 4 of 8 experts hosted, top-2, no prefetch. Layer 0 runs a single expert half
    // the time (0.75 activations, each slot saves 0.1875 loads), layer 1 never (1 activation,
    // each slot saves 0.25): layer 1's slots are worth more and fill first.
    const std::vector<std::vector<double>> cost = {LayerCosts(0.5, 0.0, 4, 8, 2),
                                                   LayerCosts(0.0, 0.0, 4, 8, 2)};
    CHECK(cost[0][1] == Approx(0.5625));
    CHECK(cost[1][1] == Approx(0.75));
    CHECK(AllocateSlotsDp(cost, 0) == std::vector<int>{0, 0});
    CHECK(AllocateSlotsDp(cost, 2) == std::vector<int>{0, 2});
    CHECK(AllocateSlotsDp(cost, 4) == std::vector<int>{0, 4});
    CHECK(AllocateSlotsDp(cost, 6) == std::vector<int>{2, 4});
    CHECK(AllocateSlotsDp(cost, 100) == std::vector<int>{4, 4});

    // A layer whose misses are mostly prefetched in time needs fewer slots: with a = 0.9 at
    // layer 1 its slots save only 0.025 each, so layer 0 fills first.
    const std::vector<std::vector<double>> prefetched = {LayerCosts(0.5, 0.0, 4, 8, 2),
                                                         LayerCosts(0.0, 0.9, 4, 8, 2)};
    CHECK(AllocateSlotsDp(prefetched, 5) == std::vector<int>{4, 1});

    // Ties: the last layer takes the fewest slots of the optima.
    CHECK(AllocateSlotsDp({{1.0, 0.0}, {1.0, 0.0}}, 1) == std::vector<int>{1, 0});
    // Slots that save nothing are not handed out.
    CHECK(AllocateSlotsDp({{1.0, 1.0, 1.0}}, 2) == std::vector<int>{0});
    // +infinity forbids a choice.
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(AllocateSlotsDp({{inf, 2.0}, {1.0, 0.0}}, 1) == std::vector<int>{1, 0});

    CHECK(AllocateSlotsDp({}, 3).empty());
    CHECK_THROWS_AS(AllocateSlotsDp({{1.0}}, -1), std::invalid_argument);
    CHECK_THROWS_AS(AllocateSlotsDp({{1.0}, {}}, 1), std::invalid_argument);
    CHECK_THROWS_AS(AllocateSlotsDp({{1.0, std::nan("")}}, 1), std::invalid_argument);
}

TEST_CASE("cache: uniform slots with caps and remainders", "[policy]")
{
    CHECK(AllocateSlotsUniform({8, 8, 8, 8}, 8) == std::vector<int>{2, 2, 2, 2});
    // Remainder 2 to the lowest layers.
    CHECK(AllocateSlotsUniform({8, 8, 8, 8}, 10) == std::vector<int>{3, 3, 2, 2});
    // Layer 0 capped at 1: its part goes to the others (4 each, remainder 1 to layer 1).
    CHECK(AllocateSlotsUniform({1, 8, 8}, 10) == std::vector<int>{1, 5, 4});
    CHECK(AllocateSlotsUniform({0, 4, 4}, 5) == std::vector<int>{0, 3, 2});
    // More budget than room.
    CHECK(AllocateSlotsUniform({2, 3}, 10) == std::vector<int>{2, 3});
    CHECK(AllocateSlotsUniform({2, 3}, 0) == std::vector<int>{0, 0});
    CHECK(AllocateSlotsUniform({}, 4).empty());
    CHECK_THROWS_AS(AllocateSlotsUniform({2, 3}, -1), std::invalid_argument);
    CHECK_THROWS_AS(AllocateSlotsUniform({2, -3}, 1), std::invalid_argument);

    // Random: all the budget that fits is used, caps hold, uncapped layers differ by <= 1 and
    // a layer below its cap never has fewer than any other layer minus one.
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> nDist(1, 6);
    std::uniform_int_distribution<int> capDist(0, 6);
    std::uniform_int_distribution<int> budgetDist(0, 40);
    for (int trial = 0; trial < 200; ++trial)
    {
        std::vector<int> caps(nDist(rng));
        int room = 0;
        for (int& c : caps)
        {
            c = capDist(rng);
            room += c;
        }
        const int budget = budgetDist(rng);
        const auto s = AllocateSlotsUniform(caps, budget);
        REQUIRE(s.size() == caps.size());
        int sum = 0;
        for (std::size_t l = 0; l < caps.size(); ++l)
        {
            CHECK(s[l] >= 0);
            CHECK(s[l] <= caps[l]);
            sum += s[l];
            for (std::size_t m = 0; m < caps.size(); ++m)
            {
                if (s[l] < caps[l])
                {
                    CHECK(s[l] >= s[m] - 1);
                }
            }
        }
        CHECK(sum == std::min(budget, room));
    }
}

TEST_CASE("cache: ExpertMemory keeps an LRU per layer", "[policy]")
{
    ExpertMemory mem({2, 3});
    const Time load = MilliSeconds(10);
    CHECK(mem.Layers() == 2);
    CHECK(mem.Slots(0) == 2);
    CHECK(mem.Slots(1) == 3);
    mem.Use(0, 1, Seconds(0), load);
    mem.Use(0, 2, Seconds(0), load);
    CHECK(mem.Contents(0) == std::vector<int>{2, 1});
    // A hit moves 1 to the front; the next miss evicts 2.
    CHECK(mem.Use(0, 1, Seconds(1), load).resident);
    CHECK(mem.Contents(0) == std::vector<int>{1, 2});
    CHECK_FALSE(mem.Use(0, 3, Seconds(1), load).resident);
    CHECK(mem.Contents(0) == std::vector<int>{3, 1});
    CHECK_FALSE(mem.Contains(0, 2));
    // An evicted expert costs a full load again.
    const auto again = mem.Use(0, 2, Seconds(2), load);
    CHECK_FALSE(again.resident);
    CHECK(again.readyAt == Seconds(2) + load);
    CHECK(mem.Contents(0) == std::vector<int>{2, 3});

    // Layer 1 is independent: filling it evicts nothing of layer 0, and the same expert index
    // in two layers is two experts.
    for (int e : {3, 4, 5, 6})
    {
        mem.Use(1, e, Seconds(3), load);
    }
    CHECK(mem.Contents(1) == std::vector<int>{6, 5, 4});
    CHECK(mem.Contents(0) == std::vector<int>{2, 3});
    CHECK(mem.Contains(0, 3));
    CHECK_FALSE(mem.Contains(1, 3));

    CHECK_THROWS_AS(mem.Slots(2), std::out_of_range);
    CHECK_THROWS_AS(mem.Use(-1, 0, Seconds(0), load), std::out_of_range);
    CHECK_THROWS_AS(mem.Use(0, 0, Seconds(0), MilliSeconds(-1)), std::invalid_argument);
    CHECK_THROWS_AS(ExpertMemory({1, -1}), std::invalid_argument);
    CHECK(ExpertMemory().Layers() == 0);
}

TEST_CASE("cache: a copied ExpertMemory is an LRU of its own", "[policy]")
{
    // A memory is filled (a warm start), then copied into the device that uses it, and the
    // original goes away: the copy must keep its own order, and its capacity.
    const Time load = MilliSeconds(10);
    std::unique_ptr<ExpertMemory> original = std::make_unique<ExpertMemory>(std::vector<int>{2});
    original->Preload(0, 1);
    original->Preload(0, 2);
    ExpertMemory copy(*original);
    ExpertMemory assigned;
    assigned = *original;
    original.reset();
    for (ExpertMemory* mem : {&copy, &assigned})
    {
        CHECK(mem->Contents(0) == std::vector<int>{2, 1});
        CHECK(mem->Use(0, 1, Seconds(1), load).resident); // 1 becomes most recent
        CHECK(mem->Contents(0) == std::vector<int>{1, 2});
        CHECK_FALSE(mem->Use(0, 3, Seconds(1), load).resident); // evicts 2, the least recent
        CHECK(mem->Contents(0) == std::vector<int>{3, 1});
        CHECK_FALSE(mem->Contains(0, 2));
    }
}

TEST_CASE("cache: ExpertMemory's storage reader serialises loads", "[policy]")
{
    ExpertMemory mem({4});
    const Time load = MilliSeconds(10);
    const auto first = mem.Use(0, 1, Seconds(0), load);
    const auto second = mem.Use(0, 2, Seconds(0), load);
    CHECK(first.readyAt == MilliSeconds(10));
    CHECK(second.readyAt == MilliSeconds(20));
    CHECK_FALSE(first.resident);
    CHECK_FALSE(second.resident);
    CHECK(mem.StorageFreeAt() == MilliSeconds(20));
    // Asked again while still loading: resident, ready when its load ends.
    const auto during = mem.Use(0, 2, MilliSeconds(5), load);
    CHECK(during.resident);
    CHECK(during.readyAt == MilliSeconds(20));
    // Once loaded: ready at once.
    CHECK(mem.Use(0, 1, MilliSeconds(50), load).readyAt == MilliSeconds(50));
    // A load requested after the reader went idle starts at the request.
    CHECK(mem.Use(0, 3, MilliSeconds(50), load).readyAt == MilliSeconds(60));
}

TEST_CASE("cache: ExpertMemory prefetch", "[policy]")
{
    const Time load = MilliSeconds(10);
    SECTION("arrived before the demand: no load time")
    {
        ExpertMemory mem({2});
        CHECK(mem.Prefetch(0, 4, Seconds(0), load));
        CHECK(mem.Contains(0, 4));
        CHECK(mem.StorageFreeAt() == MilliSeconds(10));
        const auto d = mem.Use(0, 4, MilliSeconds(30), load);
        CHECK(d.readyAt == MilliSeconds(30));
        CHECK(d.resident);
        CHECK(d.wasPrefetched);
        // Used once: no longer counted as prefetched.
        CHECK_FALSE(mem.Use(0, 4, MilliSeconds(31), load).wasPrefetched);
    }
    SECTION("still loading: only the remainder")
    {
        ExpertMemory mem({2});
        CHECK(mem.Prefetch(0, 4, MilliSeconds(2), load));
        const Time now = MilliSeconds(6);
        const auto d = mem.Use(0, 4, now, load);
        CHECK(d.readyAt == MilliSeconds(12)); // prefetch start + load
        CHECK(d.readyAt < now + load);
        CHECK(d.resident);
        CHECK(d.wasPrefetched);
    }
    SECTION("queued on the storage reader like a demand")
    {
        ExpertMemory mem({3});
        mem.Use(0, 1, Seconds(0), load);                  // 0 .. 10 ms
        CHECK(mem.Prefetch(0, 2, MilliSeconds(2), load)); // 10 .. 20 ms
        const auto d = mem.Use(0, 3, MilliSeconds(3), load);
        CHECK(d.readyAt == MilliSeconds(30)); // behind the prefetch
        CHECK(mem.Use(0, 2, MilliSeconds(4), load).readyAt == MilliSeconds(20));
    }
    SECTION("makes the expert most recently used and evicts the LRU one")
    {
        ExpertMemory mem({2});
        mem.Use(0, 1, Seconds(0), load);
        mem.Use(0, 2, Seconds(0), load);
        CHECK(mem.Prefetch(0, 3, Seconds(1), load));
        CHECK(mem.Contents(0) == std::vector<int>{3, 2});
        // A prefetched expert evicted before its use is a full demand load later.
        mem.Use(0, 1, Seconds(2), load);
        mem.Use(0, 2, Seconds(2), load);
        const auto d = mem.Use(0, 3, Seconds(3), load);
        CHECK_FALSE(d.resident);
        CHECK_FALSE(d.wasPrefetched);
        CHECK(d.readyAt == Seconds(3) + load);
    }
    SECTION("a resident expert or a 0-slot layer: nothing happens")
    {
        ExpertMemory mem({2, 0});
        mem.Use(0, 1, Seconds(0), load);
        mem.Use(0, 2, Seconds(0), load);
        const Time free = mem.StorageFreeAt();
        CHECK_FALSE(mem.Prefetch(0, 1, Seconds(0), load));
        CHECK(mem.Contents(0) == std::vector<int>{2, 1}); // order unchanged: no touch
        CHECK_FALSE(mem.Prefetch(1, 5, Seconds(0), load));
        CHECK_FALSE(mem.Contains(1, 5));
        CHECK(mem.StorageFreeAt() == free);
        CHECK_FALSE(mem.Use(0, 1, Seconds(1), load).wasPrefetched);
    }
}

TEST_CASE("cache: ExpertMemory with 0 slots keeps nothing", "[policy]")
{
    ExpertMemory mem({0, 1});
    const Time load = MilliSeconds(10);
    const auto a = mem.Use(0, 1, Seconds(0), load);
    CHECK_FALSE(a.resident);
    CHECK(a.readyAt == MilliSeconds(10));
    CHECK_FALSE(mem.Contains(0, 1));
    CHECK(mem.Contents(0).empty());
    // The reader was still busy for that load.
    CHECK(mem.StorageFreeAt() == MilliSeconds(10));
    const auto b = mem.Use(0, 1, MilliSeconds(1), load);
    CHECK_FALSE(b.resident);
    CHECK(b.readyAt == MilliSeconds(20));
    CHECK_FALSE(mem.Preload(0, 1));
    CHECK(mem.Contents(0).empty());
}

TEST_CASE("cache: ExpertMemory Peek changes nothing", "[policy]")
{
    ExpertMemory mem({2});
    const Time load = MilliSeconds(10);
    mem.Use(0, 1, Seconds(0), load);
    CHECK(mem.Prefetch(0, 2, Seconds(0), load));
    CHECK(mem.Contents(0) == std::vector<int>{2, 1});

    // A miss: the answer Use would give, but no load is queued and nothing is evicted.
    const auto miss = mem.Peek(0, 3, MilliSeconds(5), load);
    CHECK_FALSE(miss.resident);
    CHECK(miss.readyAt == MilliSeconds(30));
    CHECK(mem.StorageFreeAt() == MilliSeconds(20));
    CHECK(mem.Contents(0) == std::vector<int>{2, 1});
    CHECK_FALSE(mem.Contains(0, 3));

    // A hit: no touch, and the prefetched flag survives.
    const auto hit = mem.Peek(0, 1, MilliSeconds(5), load);
    CHECK(hit.resident);
    CHECK(hit.readyAt == MilliSeconds(10));
    CHECK(mem.Contents(0) == std::vector<int>{2, 1});
    CHECK(mem.Peek(0, 2, MilliSeconds(15), load).wasPrefetched);
    CHECK(mem.Peek(0, 2, MilliSeconds(15), load).wasPrefetched);
    CHECK(mem.Peek(0, 2, MilliSeconds(15), load).readyAt == MilliSeconds(20));

    // Peek and Use agree.
    const auto use = mem.Use(0, 2, MilliSeconds(15), load);
    CHECK(use.readyAt == MilliSeconds(20));
    CHECK(use.resident);
    CHECK(use.wasPrefetched);
    const auto peek3 = mem.Peek(0, 3, MilliSeconds(25), load);
    const auto use3 = mem.Use(0, 3, MilliSeconds(25), load);
    CHECK(peek3.readyAt == use3.readyAt);
    CHECK(peek3.resident == use3.resident);
}

TEST_CASE("cache: ExpertMemory Preload respects the slots", "[policy]")
{
    ExpertMemory mem({2, 1});
    const Time load = MilliSeconds(10);
    CHECK(mem.Preload(0, 1));
    CHECK(mem.Preload(0, 2));
    CHECK_FALSE(mem.Preload(0, 3)); // full: no eviction
    CHECK_FALSE(mem.Preload(0, 1)); // already there
    CHECK(mem.Contents(0) == std::vector<int>{2, 1});
    CHECK(mem.Preload(1, 1));
    CHECK_FALSE(mem.Preload(1, 2));
    CHECK(mem.StorageFreeAt() == Seconds(0));
    // Ready from time 0, not counted as prefetched.
    const auto d = mem.Use(0, 1, MilliSeconds(5), load);
    CHECK(d.resident);
    CHECK(d.readyAt == MilliSeconds(5));
    CHECK_FALSE(d.wasPrefetched);
    CHECK(mem.StorageFreeAt() == Seconds(0));
}
