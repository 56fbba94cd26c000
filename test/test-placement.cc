// Expert placement: round-robin and min-cost flow (checked against exhaustive enumeration),
// capacities, replicas, the capacity error and replica choice.
#include "expert-placement.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

/// The first-pass cost written out independently of the library: the j-th expert on device d
/// (j = 0, 1, ...) costs cost[d] * (1 + j * penalty).
double
CostOfCounts(const std::vector<int>& count, const std::vector<double>& cost, double penalty)
{
    double total = 0.0;
    for (std::size_t d = 0; d < count.size(); ++d)
    {
        for (int j = 0; j < count[d]; ++j)
        {
            total += cost[d] * (1.0 + j * penalty);
        }
    }
    return total;
}

/// Minimum first-pass cost over every assignment of the L*E pairs to devices that respects the
/// capacities (N^(L*E) assignments); +infinity when none is feasible.
double
ExhaustiveOptimum(const PlacementProblem& p, double penalty)
{
    const int pairs = p.layers * p.experts;
    const int n = static_cast<int>(p.deviceCapacity.size());
    std::vector<int> choice(pairs, 0);
    double best = std::numeric_limits<double>::infinity();
    while (true)
    {
        std::vector<int> count(n, 0);
        for (int d : choice)
        {
            ++count[d];
        }
        bool feasible = true;
        for (int d = 0; d < n; ++d)
        {
            feasible = feasible && count[d] <= p.deviceCapacity[d];
        }
        if (feasible)
        {
            best = std::min(best, CostOfCounts(count, p.deviceCost, penalty));
        }
        int i = 0;
        while (i < pairs && ++choice[i] == n)
        {
            choice[i++] = 0;
        }
        if (i == pairs)
        {
            break;
        }
    }
    return best;
}

/// First-pass (primary) counts per device.
std::vector<int>
PrimaryCounts(const ExpertPlacement& pl)
{
    std::vector<int> count(pl.Devices(), 0);
    for (int l = 0; l < pl.Layers(); ++l)
    {
        for (int e = 0; e < pl.Experts(); ++e)
        {
            ++count[pl.Holders(l, e).at(0)];
        }
    }
    return count;
}

/// Every expert held at least once, no device twice for one expert, capacities respected, and
/// ExpertsOn / Load / Copies consistent with Holders.
void
CheckValid(const PlacementProblem& p, const ExpertPlacement& pl)
{
    const int n = static_cast<int>(p.deviceCapacity.size());
    REQUIRE(pl.Layers() == p.layers);
    REQUIRE(pl.Experts() == p.experts);
    REQUIRE(pl.Devices() == n);
    std::vector<int> load(n, 0);
    int copies = 0;
    for (int l = 0; l < p.layers; ++l)
    {
        for (int e = 0; e < p.experts; ++e)
        {
            const auto& h = pl.Holders(l, e);
            REQUIRE(!h.empty());
            REQUIRE(std::set<int>(h.begin(), h.end()).size() == h.size());
            if (!p.replicas)
            {
                REQUIRE(h.size() == 1);
            }
            for (int d : h)
            {
                REQUIRE(d >= 0);
                REQUIRE(d < n);
                ++load[d];
                ++copies;
            }
        }
    }
    CHECK(pl.Copies() == copies);
    for (int d = 0; d < n; ++d)
    {
        REQUIRE(load[d] <= p.deviceCapacity[d]);
        CHECK(pl.Load(d) == load[d]);
        const auto on = pl.ExpertsOn(d);
        REQUIRE(static_cast<int>(on.size()) == load[d]);
        for (const auto& le : on)
        {
            const auto& h = pl.Holders(le.first, le.second);
            CHECK(std::find(h.begin(), h.end(), d) != h.end());
        }
    }
}

PlacementProblem
RandomProblem(std::mt19937& rng, bool replicas)
{
    PlacementProblem p;
    p.layers = std::uniform_int_distribution<int>(1, 4)(rng);
    p.experts = std::uniform_int_distribution<int>(1, 8)(rng);
    const int n = std::uniform_int_distribution<int>(1, 6)(rng);
    const int pairs = p.layers * p.experts;
    std::uniform_real_distribution<double> cost(0.0, 0.05);
    for (int d = 0; d < n; ++d)
    {
        p.deviceCapacity.push_back(std::uniform_int_distribution<int>(0, pairs)(rng));
        p.deviceCost.push_back(cost(rng));
    }
    // Make the instance feasible: top up random devices until the capacity suffices.
    int total = 0;
    for (int c : p.deviceCapacity)
    {
        total += c;
    }
    while (total < pairs)
    {
        ++p.deviceCapacity[std::uniform_int_distribution<int>(0, n - 1)(rng)];
        ++total;
    }
    p.replicas = replicas;
    return p;
}

} // namespace

TEST_CASE("placement: every expert placed, capacities respected (random)", "[placement]")
{
    std::mt19937 rng(12345);
    for (int trial = 0; trial < 200; ++trial)
    {
        const PlacementProblem p = RandomProblem(rng, trial % 2 == 1);
        INFO("trial " << trial << ": " << p.layers << " x " << p.experts << " on "
                      << p.deviceCapacity.size() << " devices, replicas " << p.replicas);
        CheckValid(p, PlaceRoundRobin(p));
        CheckValid(p, PlaceMinCost(p));
    }
}

TEST_CASE("placement: round-robin order on a hand case", "[placement]")
{
    // 2 layers x 3 experts on 3 devices; device 0 holds one expert only.
    PlacementProblem p{2, 3, {1, 4, 4}, {0.0, 0.0, 0.0}, false};
    const ExpertPlacement pl = PlaceRoundRobin(p);
    // k = 0..5 -> device k mod 3, device 0 full after k = 0 so k = 3 moves on to device 1.
    const std::vector<int> expected = {0, 1, 2, 1, 1, 2};
    for (int k = 0; k < 6; ++k)
    {
        INFO("k = " << k);
        CHECK(pl.Holders(k / 3, k % 3) == std::vector<int>{expected[k]});
    }
    CHECK(pl.ExpertsOn(1) == std::vector<std::pair<int, int>>{{0, 1}, {1, 0}, {1, 1}});
    CHECK(pl.Copies() == 6);

    // Without full devices it is exactly k mod N.
    PlacementProblem q{2, 2, {2, 2, 2}, {0.0, 0.0, 0.0}, false};
    const ExpertPlacement ql = PlaceRoundRobin(q);
    CHECK(ql.Holders(0, 0) == std::vector<int>{0});
    CHECK(ql.Holders(0, 1) == std::vector<int>{1});
    CHECK(ql.Holders(1, 0) == std::vector<int>{2});
    CHECK(ql.Holders(1, 1) == std::vector<int>{0});
}

TEST_CASE("placement: round-robin replicas, hand case", "[placement]")
{
    // 1 layer x 2 experts on 3 devices of capacity 2: primaries on 0 and 1; round 1 offers
    // expert 0 to device 1, expert 1 to device 2; round 2 offers expert 0 to device 2.
    PlacementProblem p{1, 2, {2, 2, 2}, {0.0, 0.0, 0.0}, true};
    const ExpertPlacement pl = PlaceRoundRobin(p);
    CHECK(pl.Holders(0, 0) == std::vector<int>{0, 1, 2});
    CHECK(pl.Holders(0, 1) == std::vector<int>{1, 2, 0});
    CHECK(pl.Copies() == 6);
}

TEST_CASE("placement: min-cost equals the exhaustive optimum on small instances", "[placement]")
{
    // The hand case of the brief: 2 layers x 2 experts, 3 devices, tiny capacities.
    {
        PlacementProblem p{2, 2, {1, 2, 2}, {0.010, 0.004, 0.020}, false};
        const double penalty = DefaultLoadPenalty(p);
        CHECK(penalty == Approx(0.5)); // 1 / ceil(4 / 3)
        const ExpertPlacement pl = PlaceMinCost(p);
        CheckValid(p, pl);
        const double opt = ExhaustiveOptimum(p, penalty);
        CHECK(CostOfCounts(PrimaryCounts(pl), p.deviceCost, penalty) == Approx(opt).epsilon(1e-9));
        // By hand: the four cheapest marginal costs are device 1's 0.004 and 0.006 (its
        // capacity), device 0's 0.010 (its capacity) and device 2's 0.020.
        CHECK(PrimaryCounts(pl) == std::vector<int>{1, 2, 1});
        CHECK(PlacementCost(p, pl) == Approx(opt).epsilon(1e-9));
    }
    std::mt19937 rng(777);
    for (int trial = 0; trial < 60; ++trial)
    {
        PlacementProblem p;
        p.layers = std::uniform_int_distribution<int>(1, 2)(rng);
        p.experts = std::uniform_int_distribution<int>(1, 3)(rng);
        const int n = std::uniform_int_distribution<int>(2, 4)(rng);
        const int pairs = p.layers * p.experts;
        int total = 0;
        for (int d = 0; d < n; ++d)
        {
            p.deviceCapacity.push_back(std::uniform_int_distribution<int>(0, 3)(rng));
            p.deviceCost.push_back(std::uniform_real_distribution<double>(0.001, 0.1)(rng));
            total += p.deviceCapacity.back();
        }
        while (total < pairs)
        {
            ++p.deviceCapacity[std::uniform_int_distribution<int>(0, n - 1)(rng)];
            ++total;
        }
        // Default, none, and strong load penalties.
        const double penalties[] = {-1.0, 0.0, 2.0};
        p.loadPenalty = penalties[trial % 3];
        const double penalty = DefaultLoadPenalty(p);
        INFO("trial " << trial << ": " << p.layers << " x " << p.experts << " on " << n
                      << " devices, penalty " << penalty);
        const ExpertPlacement pl = PlaceMinCost(p);
        CheckValid(p, pl);
        const double opt = ExhaustiveOptimum(p, penalty);
        CHECK(CostOfCounts(PrimaryCounts(pl), p.deviceCost, penalty) ==
              Approx(opt).epsilon(1e-8).margin(1e-7));
        // Round-robin is feasible, never better.
        CHECK(CostOfCounts(PrimaryCounts(PlaceRoundRobin(p)), p.deviceCost, penalty) >=
              opt * (1 - 1e-12));
    }
}

TEST_CASE("placement: min-cost prefers cheap devices but spreads load", "[placement]")
{
    // 4 layers x 8 experts on 2 devices with room for all: default penalty 1/16.
    PlacementProblem p{4, 8, {32, 32}, {0.010, 0.015}, false};
    const ExpertPlacement pl = PlaceMinCost(p);
    CheckValid(p, pl);
    // Marginal costs meet where 1 + a/16 = 1.5 (1 + (32 - a)/16): a = 22.4.
    CHECK(pl.Load(0) > pl.Load(1));
    CHECK(pl.Load(1) > 0);
    CHECK(pl.Load(0) + pl.Load(1) == 32);
    CHECK(std::abs(pl.Load(0) - 22) <= 1);

    // A much more expensive device gets nothing when the cheap one has room.
    PlacementProblem q{4, 8, {32, 32}, {0.010, 0.100}, false};
    const ExpertPlacement ql = PlaceMinCost(q);
    CHECK(ql.Load(0) == 32);
    CHECK(ql.Load(1) == 0);

    // Without a load penalty the cheap device is filled blindly.
    p.loadPenalty = 0.0;
    CHECK(PlaceMinCost(p).Load(0) == 32);

    // Equal costs: an even split.
    PlacementProblem r{4, 8, {32, 32, 32}, {0.01, 0.01, 0.01}, false};
    const ExpertPlacement rl = PlaceMinCost(r);
    const int lo = std::min({rl.Load(0), rl.Load(1), rl.Load(2)});
    const int hi = std::max({rl.Load(0), rl.Load(1), rl.Load(2)});
    CHECK(hi - lo <= 1);
}

TEST_CASE("placement: replicas fill capacity without duplicates", "[placement]")
{
    std::mt19937 rng(4242);
    for (int trial = 0; trial < 100; ++trial)
    {
        const PlacementProblem p = RandomProblem(rng, true);
        const int pairs = p.layers * p.experts;
        INFO("trial " << trial);
        for (int algo = 0; algo < 2; ++algo)
        {
            const ExpertPlacement pl = algo == 0 ? PlaceRoundRobin(p) : PlaceMinCost(p);
            CheckValid(p, pl); // includes: no device holds two copies of one expert
            int copies = 0;
            for (std::size_t d = 0; d < p.deviceCapacity.size(); ++d)
            {
                INFO("algorithm " << algo << ", device " << d);
                CHECK(pl.Load(static_cast<int>(d)) == std::min(p.deviceCapacity[d], pairs));
                copies += std::min(p.deviceCapacity[d], pairs);
            }
            CHECK(pl.Copies() == copies);
        }
        // The primaries of PlaceMinCost with replicas are those without.
        PlacementProblem single = p;
        single.replicas = false;
        const ExpertPlacement a = PlaceMinCost(single);
        const ExpertPlacement b = PlaceMinCost(p);
        CHECK(PrimaryCounts(a) == PrimaryCounts(b));
    }

    // Hand case: 3 experts; primaries on device 0 (cost 1), 2 (cost 5) and 1 (cost 10), forced
    // by a strong load penalty. Device 0 has one free slot: it must hold a copy of the expert
    // whose only holder is the expensive device 1 (saving 9), not of the one on device 2 (4).
    PlacementProblem h{1, 3, {2, 1, 1}, {1.0, 10.0, 5.0}, true, 100.0};
    const ExpertPlacement hl = PlaceMinCost(h);
    CheckValid(h, hl);
    int onExpensive = -1;
    int onMiddle = -1;
    for (int e = 0; e < 3; ++e)
    {
        const int primary = hl.Holders(0, e)[0];
        onExpensive = primary == 1 ? e : onExpensive;
        onMiddle = primary == 2 ? e : onMiddle;
    }
    REQUIRE(onExpensive >= 0);
    REQUIRE(onMiddle >= 0);
    CHECK(hl.Holders(0, onExpensive) == std::vector<int>{1, 0});
    CHECK(hl.Holders(0, onMiddle) == std::vector<int>{2});
    CHECK(hl.Load(0) == 2);

    // Copies spread over experts before any expert gets a third holder.
    PlacementProblem s{1, 4, {4, 2, 2, 2}, {0.01, 0.01, 0.01, 0.01}, true, 0.0};
    const ExpertPlacement sl = PlaceMinCost(s);
    CheckValid(s, sl);
    for (int e = 0; e < 4; ++e)
    {
        CHECK(sl.Holders(0, e).size() >= 2);
    }
}

TEST_CASE("placement: too little capacity is a clear error", "[placement]")
{
    PlacementProblem p{2, 2, {1, 2}, {0.01, 0.02}, false};
    const std::string msg = "the devices can hold 3 experts, the model has 2 x 2 = 4";
    CHECK_THROWS_WITH(PlaceMinCost(p), Catch::Contains(msg));
    CHECK_THROWS_WITH(PlaceRoundRobin(p), Catch::Contains(msg));
    CHECK_THROWS_AS(PlaceMinCost(p), std::invalid_argument);
    p.replicas = true;
    CHECK_THROWS_WITH(PlaceMinCost(p), Catch::Contains(msg));

    PlacementProblem none{1, 1, {}, {}, false};
    CHECK_THROWS_WITH(PlaceMinCost(none), Catch::Contains("can hold 0 experts"));

    PlacementProblem mismatched{1, 1, {1, 1}, {0.01}, false};
    CHECK_THROWS_AS(PlaceRoundRobin(mismatched), std::invalid_argument);
    PlacementProblem negative{1, 1, {1}, {-0.01}, false};
    CHECK_THROWS_AS(PlaceMinCost(negative), std::invalid_argument);
}

TEST_CASE("placement: ChooseReplica picks the fastest holder, ties to the lowest index",
          "[placement]")
{
    const std::vector<double> latency = {0.5, 0.2, 0.3, 0.2, 0.1};
    const auto predicted = [&](int d) { return latency.at(d); };
    CHECK(ChooseReplica({0, 1, 2}, predicted) == 1);
    CHECK(ChooseReplica({2, 0}, predicted) == 2);
    CHECK(ChooseReplica({4, 1, 3}, predicted) == 4);
    // Devices 1 and 3 tie at 0.2: the lower index wins whatever the order.
    CHECK(ChooseReplica({3, 1}, predicted) == 1);
    CHECK(ChooseReplica({1, 3}, predicted) == 1);
    CHECK(ChooseReplica({3, 0, 1}, predicted) == 1);
    CHECK(ChooseReplica({2}, predicted) == 2);
    // NaN counts as infinitely slow.
    const auto withNan = [](int d) { return d == 0 ? std::nan("") : 1.0; };
    CHECK(ChooseReplica({0, 5}, withNan) == 5);
    CHECK_THROWS_AS(ChooseReplica({}, predicted), std::invalid_argument);
}

TEST_CASE("placement: ToString names every expert and device", "[placement]")
{
    PlacementProblem p{1, 2, {1, 1}, {0.01, 0.02}, false};
    const std::string s = PlaceRoundRobin(p).ToString();
    CHECK(s.find("layer 0: e0->{0} e1->{1}") != std::string::npos);
    CHECK(s.find("device 1: 1 experts") != std::string::npos);
}

TEST_CASE("placement: on a constructed cell min-cost expects a lower latency than round-robin",
          "[placement]")
{
    // Four devices, one of them ten times slower than the others; room for everything
    // anywhere. Round-robin gives the slow device a quarter of the experts; min-cost avoids it.
    PlacementProblem problem{4, 8, {32, 32, 32, 32}, {0.010, 0.010, 0.010, 0.100}, false};
    const ExpertPlacement rr = PlaceRoundRobin(problem);
    const ExpertPlacement mc = PlaceMinCost(problem);
    // Expected latency of serving one uniformly chosen expert from its primary holder.
    auto expected = [&](const ExpertPlacement& p) {
        double sum = 0;
        for (int l = 0; l < problem.layers; ++l)
        {
            for (int e = 0; e < problem.experts; ++e)
            {
                sum += problem.deviceCost[p.Holders(l, e)[0]];
            }
        }
        return sum / (problem.layers * problem.experts);
    };
    CHECK(expected(rr) == Approx(0.25 * 0.100 + 0.75 * 0.010));
    CHECK(expected(mc) < expected(rr));
    CHECK(mc.ExpertsOn(3).size() < rr.ExpertsOn(3).size());
}

TEST_CASE("placement: devices whose slots cannot host every expert are told by how much",
          "[placement]")
{
    CHECK(HostingShortfall(4, 4, "slots", 2, 8).empty());
    CHECK(HostingShortfall(4, 3, "slots", 2, 8) == "4 x 3 slots < 2 layers x 8 experts");
    // Counts that overflow an int are still compared exactly.
    CHECK(HostingShortfall(1000000, 3000, "slots", 32, 8).empty());
}
