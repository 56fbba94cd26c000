// Placements that know how often each expert is used: the channel-aware rule (hand cases, and
// a constructed cell where the hot experts must land on the near devices) and the min-cost flow
// with per-expert costs (popularity x device cost), checked by enumerating every placement.
#include "channel-aware-placement.h"
#include "expert-placement.h"
#include "run-scenario.h"
#include "scenario-fixture.h"
#include "scenario-inputs.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <random>
#include <vector>

using namespace ns3;
using wdmoe::test::ScenarioFixture;

namespace
{

/// The per-expert objective written out independently of the library: pair i on device d costs
/// (popularity_i / mean popularity) * cost[d]; the j-th expert on d adds cost[d] * j * penalty.
double
PopularityCost(const std::vector<int>& deviceOf,
               const std::vector<double>& popularity,
               const std::vector<double>& cost,
               double penalty)
{
    double mean = 0;
    for (double p : popularity)
    {
        mean += p / popularity.size();
    }
    std::vector<int> count(cost.size(), 0);
    double total = 0;
    for (std::size_t i = 0; i < deviceOf.size(); ++i)
    {
        const int d = deviceOf[i];
        total += popularity[i] / mean * cost[d] + cost[d] * count[d] * penalty;
        ++count[d];
    }
    return total;
}

/// Each pair's primary holder, layer-major.
std::vector<int>
Primaries(const ExpertPlacement& p)
{
    std::vector<int> out;
    for (int l = 0; l < p.Layers(); ++l)
    {
        for (int e = 0; e < p.Experts(); ++e)
        {
            out.push_back(p.Holders(l, e)[0]);
        }
    }
    return out;
}

/// The lowest per-expert objective over every assignment within the capacities (N^pairs).
double
EnumeratedOptimum(const PlacementProblem& p, double penalty)
{
    const int pairs = p.layers * p.experts;
    const int n = int(p.deviceCost.size());
    std::vector<int> choice(pairs, 0);
    double best = std::numeric_limits<double>::infinity();
    while (true)
    {
        std::vector<int> count(n, 0);
        bool feasible = true;
        for (int d : choice)
        {
            feasible = feasible && ++count[d] <= p.deviceCapacity[d];
        }
        if (feasible)
        {
            best = std::min(best, PopularityCost(choice, p.popularity, p.deviceCost, penalty));
        }
        int k = 0;
        while (k < pairs && ++choice[k] == n)
        {
            choice[k++] = 0;
        }
        if (k == pairs)
        {
            return best;
        }
    }
}

} // namespace

TEST_CASE("channel-aware placement: a layer's experts by use go to the devices by cost",
          "[placement]")
{
    // Device ranks by cost: 1 (10 ms), 3 (20 ms), 2 (30 ms), 0 (50 ms).
    PlacementProblem p{2, 4, {2, 2, 2, 2}, {0.05, 0.01, 0.03, 0.02}, false};
    p.popularity = {0.1, 0.4, 0.2, 0.3, 0.5, 0.1, 0.1, 0.3};
    const ExpertPlacement out = PlaceChannelAware(p);
    // Layer 0 by use: e1, e3, e2, e0; layer 1: e0, e3, then e1 and e2 (a tie, by index).
    CHECK(out.Holders(0, 1) == std::vector<int>{1});
    CHECK(out.Holders(0, 3) == std::vector<int>{3});
    CHECK(out.Holders(0, 2) == std::vector<int>{2});
    CHECK(out.Holders(0, 0) == std::vector<int>{0});
    CHECK(out.Holders(1, 0) == std::vector<int>{1});
    CHECK(out.Holders(1, 3) == std::vector<int>{3});
    CHECK(out.Holders(1, 1) == std::vector<int>{2});
    CHECK(out.Holders(1, 2) == std::vector<int>{0});

    // A full best device passes its turn to the next best; replicas: the most used experts
    // (0.5, 0.4, 0.3, 0.3, ...) get copies on the best devices with room.
    PlacementProblem small{2, 4, {1, 3, 3, 3}, {0.05, 0.01, 0.03, 0.02}, true};
    small.popularity = p.popularity;
    const ExpertPlacement r = PlaceChannelAware(small);
    CHECK(r.Holders(0, 1)[0] == 1);
    CHECK(r.Holders(0, 0)[0] == 0);
    CHECK(r.Holders(1, 2)[0] == 1); // device 0 is full: rank 3's turn goes on to rank 0
    for (int d = 0; d < 4; ++d)
    {
        CHECK(r.Load(d) == small.deviceCapacity[d]);
    }
    // Room left: devices 2 and 3 one slot each. The hottest (layer 1, e0 on device 1) is copied
    // to the next best, device 3; the second (layer 0, e1) to the best with room left, device 2.
    CHECK(r.Holders(1, 0) == std::vector<int>{1, 3});
    CHECK(r.Holders(0, 1) == std::vector<int>{1, 2});
}

TEST_CASE("channel-aware placement: on a constructed cell the hot experts sit on the near devices",
          "[placement][mixed]")
{
    // Four alike devices at 180, 40, 120 and 80 m; the model's routing measured on a profile
    // text. The rule must put each layer's most used expert on the 40 m device and its second
    // on the 80 m one (the channel is the only difference between the devices).
    ScenarioFixture f(2);
    f.config["cell"] = {{"bandwidth_mhz", 20},
                        {"propagation", "log-distance-128"},
                        {"min_distance_m", 35},
                        {"radius_m", 200},
                        {"fading", false},
                        {"shadowing_sigma_db", 0}};
    nlohmann::json groups = nlohmann::json::array();
    for (double d : {180.0, 40.0, 120.0, 80.0})
    {
        groups.push_back({{"profile", "jetson-agx-orin"}, {"count", 1}, {"distance_m", d}});
    }
    f.config["devices"] = groups;
    f.config["placement"] = {{"algorithm", "channel-aware"}};
    std::string profile;
    for (int i = 0; i < 300; ++i)
    {
        profile += char('a' + (i * 3 + i / 5) % 26);
    }
    wdmoe::test::WriteFile(f.dir.File("profile.txt"), profile);
    f.config["policy"] = {{"profile_text", "profile.txt"}};
    const ScenarioConfig c = ScenarioConfig::Load(f.Write());
    const ScenarioInputs in = LoadInputs(c, JsonConfigReader(c.file, c.echo));

    struct DestroyAtExit
    {
        ~DestroyAtExit() { Simulator::Destroy(); }
    } destroy;

    WdmoeScenario scenario(c);
    Simulator::Run();
    scenario.Collect();
    const ExpertPlacement& placement = scenario.Helper().GetPlacement();
    const std::vector<double>& cost = scenario.Helper().GetPlacementCosts();
    CHECK(cost[1] < cost[3]); // nearer is cheaper
    CHECK(cost[3] < cost[2]);
    CHECK(cost[2] < cost[0]);
    for (int l = 0; l < 2; ++l)
    {
        std::vector<int> byUse = {0, 1, 2, 3};
        const std::vector<double>& rate = in.routingProfile.expertRate[l];
        std::stable_sort(byUse.begin(), byUse.end(), [&](int a, int b) {
            return rate[a] > rate[b];
        });
        INFO("layer " << l);
        REQUIRE(rate[byUse[0]] > rate[byUse[1]]); // a measured hottest expert
        CHECK(placement.Holders(l, byUse[0]) == std::vector<int>{1});
        CHECK(placement.Holders(l, byUse[1]) == std::vector<int>{3});
        CHECK(placement.Holders(l, byUse[3]) == std::vector<int>{0});
    }
}

TEST_CASE("min-cost placement: per-expert costs beat per-device costs, checked by enumeration",
          "[placement]")
{
    // One layer of four experts, one used 97 % of the time; a device of 1 s and one of 3 s,
    // room for all four on each; load penalty 1/2. Per device, the cheapest counts are 4 + 0
    // (cost 1 + 1.5 + 2 + 2.5 = 7, against 3 + 1: 4.5 + 3 = 7.5), so every expert goes to the
    // fast device. Per expert, the three rare ones cost little anywhere, and 3 + 1 with the hot
    // one on the fast device wins: 3.88 + 0.04 x (1 + 1 + 3) + (0 + 0.5 + 1) = 5.58 against
    // 3.88 + 0.12 + 3 = 7 for 4 + 0.
    PlacementProblem p{1, 4, {4, 4}, {1.0, 3.0}, false};
    p.loadPenalty = 0.5;
    const ExpertPlacement perDevice = PlaceMinCost(p);
    p.popularity = {0.01, 0.01, 0.97, 0.01};
    const ExpertPlacement perExpert = PlaceMinCost(p);

    const double optimum = EnumeratedOptimum(p, 0.5);
    CHECK(optimum == Approx(5.58));
    const double withPopularity =
        PopularityCost(Primaries(perExpert), p.popularity, p.deviceCost, 0.5);
    const double withoutPopularity =
        PopularityCost(Primaries(perDevice), p.popularity, p.deviceCost, 0.5);
    CHECK(withPopularity == Approx(optimum));
    CHECK(PlacementCost(p, perExpert) == Approx(optimum));
    CHECK(withoutPopularity == Approx(7.0));
    CHECK(withoutPopularity > withPopularity + 1.0);
    CHECK(perExpert.Holders(0, 2) == std::vector<int>{0});
    CHECK(perExpert.Load(1) == 1);
}

TEST_CASE("min-cost placement: per-expert costs equal the enumerated optimum on random cases",
          "[placement]")
{
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> cost(0.001, 0.1);
    std::uniform_real_distribution<double> use(0.0, 1.0);
    for (int trial = 0; trial < 20; ++trial)
    {
        PlacementProblem p{2, 3, {2, 3, 4}, {cost(rng), cost(rng), cost(rng)}, false};
        for (int i = 0; i < 6; ++i)
        {
            p.popularity.push_back(use(rng));
        }
        const double penalty = DefaultLoadPenalty(p);
        const ExpertPlacement out = PlaceMinCost(p);
        INFO("trial " << trial);
        CHECK(PopularityCost(Primaries(out), p.popularity, p.deviceCost, penalty) ==
              Approx(EnumeratedOptimum(p, penalty)).epsilon(1e-7));
    }
}

TEST_CASE("min-cost placement: equal popularity is the per-device placement exactly", "[placement]")
{
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> cost(0.001, 0.1);
    for (int trial = 0; trial < 20; ++trial)
    {
        PlacementProblem p{3, 4, {5, 6, 7, 8}, {cost(rng), cost(rng), cost(rng), cost(rng)}, true};
        const ExpertPlacement plain = PlaceMinCost(p);
        p.popularity.assign(12, 0.25);
        CHECK(PlaceMinCost(p).ToString() == plain.ToString());
    }
}

TEST_CASE("placement: a popularity of the wrong shape or all zero is refused", "[placement]")
{
    PlacementProblem p{1, 2, {2, 2}, {0.1, 0.2}, false};
    p.popularity = {1.0};
    CHECK_THROWS_WITH(PlaceMinCost(p), Catch::Contains("popularity has 1 entries"));
    p.popularity = {0.0, 0.0};
    CHECK_THROWS_WITH(PlaceChannelAware(p), Catch::Contains("popularity is 0 for every expert"));
    p.popularity = {-1.0, 2.0};
    CHECK_THROWS_WITH(PlaceMinCost(p), Catch::Contains("finite and >= 0"));
}
