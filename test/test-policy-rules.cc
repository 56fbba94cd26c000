// Policy rules as ns-3 objects: every built-in selection and allocation rule gives exactly what
// the functions it wraps give on hand cases (with its attributes as their arguments), and the
// registries map names to TypeIds, take a program's own rule and reject unknown names with the
// list of the known ones.
#include "bandwidth-allocation-rule.h"
#include "expert-selection-rule.h"
#include "slowest-of.h"

#include "ns3/double.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ns3;
using wdmoe::test::SlowestOf;

namespace
{

using Keep = std::vector<bool>;

SelectionContext
Context(const std::vector<double>& roundTrips, double layerScale = 1.0)
{
    SelectionContext c;
    c.layerScale = layerScale;
    c.roundTrips = [roundTrips]() { return roundTrips; };
    c.layerLatency = SlowestOf(roundTrips);
    return c;
}

/// A context whose predictions fail the test if a rule asks for them.
SelectionContext
Untouchable()
{
    SelectionContext c;
    c.roundTrips = []() -> std::vector<double> { throw std::logic_error("round trips asked"); };
    c.layerLatency = [](const std::vector<bool>&) -> double {
        throw std::logic_error("layer latency asked");
    };
    return c;
}

Ptr<ExpertSelectionRule>
Wlr(double theta)
{
    Ptr<ExpertSelectionRule> r = ExpertSelectionRule::CreateRule("wlr");
    r->SetAttribute("Theta", DoubleValue(theta));
    return r;
}

Ptr<ExpertSelectionRule>
Straggler(const StragglerBounds& b)
{
    Ptr<ExpertSelectionRule> r = ExpertSelectionRule::CreateRule("straggler");
    r->SetAttribute("WeightMax", DoubleValue(b.weightMax));
    r->SetAttribute("GainMin", DoubleValue(b.gainMin));
    r->SetAttribute("Tradeoff", DoubleValue(b.tradeoff));
    return r;
}

/// RT_i(s) = fixed_i + bits_i / s.
std::vector<RoundTripOfShare>
Devices(const std::vector<std::pair<double, double>>& fixedAndBits)
{
    std::vector<RoundTripOfShare> f;
    for (const auto& [fixed, bits] : fixedAndBits)
    {
        f.push_back([fixed = fixed, bits = bits](double s) { return fixed + bits / s; });
    }
    return f;
}

/// Only a program's own rule: a test double for the registry.
class KeepFirstRule : public ExpertSelectionRule
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("ns3::TestKeepFirstRule")
                                .SetParent<ExpertSelectionRule>()
                                .SetGroupName("Wdmoe")
                                .AddConstructor<KeepFirstRule>();
        return tid;
    }

    std::vector<bool> Select(const std::vector<double>& weights, const SelectionContext&) override
    {
        std::vector<bool> keep(weights.size(), false);
        keep[0] = true;
        return keep;
    }
};

NS_OBJECT_ENSURE_REGISTERED(KeepFirstRule);

} // namespace

TEST_CASE("policy rules: the selection rule objects equal the selection functions", "[policy]")
{
    const std::vector<std::vector<double>> weights =
        {{0.7, 0.3}, {0.6, 0.4}, {0.5, 0.25}, {0.5, 0.3, 0.2}, {0.3, 0.7}, {0.875, 0.125}, {1.0}};
    const std::vector<std::vector<double>> roundTrips =
        {{1, 1}, {1, 4}, {1, 2}, {1, 1, 10}, {100, 1}, {3, 4}, {9}};
    const std::vector<StragglerBounds> bounds = {{0.3, 0.2, 1},
                                                 {0.25, 0.5, 1},
                                                 {0.5, 0, 0.0625},
                                                 {0.5, 0, 0.0624},
                                                 {1, 0, 1e6},
                                                 {0, 0, 1e6}};
    for (std::size_t i = 0; i < weights.size(); ++i)
    {
        const std::vector<double>& w = weights[i];
        const std::vector<double>& t = roundTrips[i];
        CHECK(ExpertSelectionRule::CreateRule("all")->Select(w, Context(t)) ==
              Keep(w.size(), true));
        for (double theta : {0.0, 0.25, 0.2500001, 0.4, 0.5, 1.0})
        {
            CHECK(Wlr(theta)->Select(w, Context(t)) == SelectWeightToLatency(w, t, theta));
        }
        for (const StragglerBounds& b : bounds)
        {
            for (double scale : {1.0, 0.5, 4.0})
            {
                CHECK(Straggler(b)->Select(w, Context(t, scale)) ==
                      SelectStragglers(w, SlowestOf(t), b, scale));
            }
        }
    }
}

TEST_CASE("policy rules: selection defaults, and what each rule asks of its context", "[policy]")
{
    // The defaults are InferencePolicy's: theta 0.5 and StragglerBounds().
    const std::vector<double> w = {0.8, 0.2};
    const std::vector<double> t = {1, 3};
    CHECK(ExpertSelectionRule::CreateRule("wlr")->Select(w, Context(t)) ==
          SelectWeightToLatency(w, t, 0.5));
    CHECK(ExpertSelectionRule::CreateRule("straggler")->Select(w, Context(t)) ==
          SelectStragglers(w, SlowestOf(t), StragglerBounds()));
    // "all" needs no prediction and tells the application so.
    Ptr<ExpertSelectionRule> all = ExpertSelectionRule::CreateRule("all");
    CHECK(all->KeepsEveryCandidate());
    CHECK(all->Select(w, Untouchable()) == Keep{true, true});
    CHECK_FALSE(Wlr(0.5)->KeepsEveryCandidate());
    CHECK_FALSE(Straggler(StragglerBounds())->KeepsEveryCandidate());
}

TEST_CASE("policy rules: the allocation rule objects equal the allocation functions", "[policy]")
{
    const std::vector<std::vector<std::pair<double, double>>> cells = {
        {{1e-3, 2e-3}},
        {{1e-3, 2e-3}, {2e-3, 6e-3}},
        {{0, 1}, {0, 3}},
        {{1e-3, 1e-3}, {3e-3, 5e-4}, {0, 8e-3}, {2e-3, 2e-3}}};
    for (const auto& cell : cells)
    {
        const std::vector<RoundTripOfShare> f = Devices(cell);
        const std::size_t n = f.size();
        CHECK(BandwidthAllocationRule::CreateRule("equal")->Allocate(f) == EqualShares(n));
        std::vector<double> load;
        for (const RoundTripOfShare& g : f)
        {
            load.push_back(g(1.0 / n));
        }
        CHECK(BandwidthAllocationRule::CreateRule("proportional")->Allocate(f) ==
              ProportionalShares(load));
        // Floor 0 is MinMaxShares itself (at the rule's default tolerance, 1e-4).
        CHECK(BandwidthAllocationRule::CreateRule("minmax")->Allocate(f) ==
              MinMaxShares(f, 1e-4).shares);
    }
}

TEST_CASE("policy rules: minmax's floor keeps a fraction of the equal share", "[policy]")
{
    // RT = 1/s and 3/s: with floor 0.5 each device keeps 0.25 of the band and minmax splits the
    // other half as it would the whole band of RT'(x) = RT(0.25 + 0.5 x).
    const std::vector<RoundTripOfShare> f = Devices({{0, 1}, {0, 3}});
    Ptr<BandwidthAllocationRule> rule = BandwidthAllocationRule::CreateRule("minmax");
    rule->SetAttribute("Floor", DoubleValue(0.5));
    std::vector<RoundTripOfShare> rest;
    for (const RoundTripOfShare& g : f)
    {
        rest.push_back([g](double x) { return g(0.25 + 0.5 * x); });
    }
    std::vector<double> expected = MinMaxShares(rest, 1e-4).shares;
    for (double& s : expected)
    {
        s = 0.25 + 0.5 * s;
    }
    const std::vector<double> shares = rule->Allocate(f);
    CHECK(shares == expected);
    REQUIRE(shares.size() == 2);
    CHECK(shares[0] >= 0.25);
    CHECK(shares[0] + shares[1] == Approx(1.0).epsilon(1e-12));
    // Floor 1 is the equal split.
    rule->SetAttribute("Floor", DoubleValue(1.0));
    CHECK(rule->Allocate(f) == std::vector<double>{0.5, 0.5});
}

TEST_CASE("policy rules: the registries map names and TypeId names to rule types", "[policy]")
{
    // The built-in names (a program's own come on top of them).
    const std::vector<std::string> selection = ExpertSelectionRule::Names();
    const std::vector<std::string> allocation = BandwidthAllocationRule::Names();
    for (const char* name : {"all", "straggler", "wlr"})
    {
        CHECK(std::count(selection.begin(), selection.end(), name) == 1);
    }
    for (const char* name : {"equal", "minmax", "proportional"})
    {
        CHECK(std::count(allocation.begin(), allocation.end(), name) == 1);
    }
    CHECK(std::is_sorted(selection.begin(), selection.end()));
    CHECK(ExpertSelectionRule::LookupRule("wlr") == WlrSelectionRule::GetTypeId());
    CHECK(ExpertSelectionRule::LookupRule("ns3::StragglerSelectionRule") ==
          StragglerSelectionRule::GetTypeId());
    CHECK(BandwidthAllocationRule::LookupRule("minmax") == MinMaxAllocationRule::GetTypeId());
    CHECK(BandwidthAllocationRule::LookupRule("ns3::EqualAllocationRule") ==
          EqualAllocationRule::GetTypeId());
    for (const std::string& name : BandwidthAllocationRule::Names())
    {
        CHECK(BandwidthAllocationRule::CreateRule(name));
    }
    // A TypeId of the other kind is no rule of this kind.
    CHECK_THROWS_AS(ExpertSelectionRule::LookupRule("ns3::EqualAllocationRule"),
                    std::invalid_argument);
}

TEST_CASE("policy rules: an unknown name is an error that lists the known names", "[policy]")
{
    CHECK_THROWS_WITH(ExpertSelectionRule::CreateRule("fastest"),
                      Catch::Contains("unknown expert selection rule 'fastest' (known: all, ") &&
                          Catch::Contains(", straggler, ") && Catch::Contains("wlr"));
    CHECK_THROWS_WITH(BandwidthAllocationRule::CreateRule("joint"),
                      Catch::Contains("unknown bandwidth allocation rule 'joint' (known: ") &&
                          Catch::Contains("equal, minmax, proportional"));
}

TEST_CASE("policy rules: a program registers a rule of its own", "[policy]")
{
    ExpertSelectionRule::Register("test-keep-first", "ns3::TestKeepFirstRule");
    ExpertSelectionRule::Register("test-keep-first", "ns3::TestKeepFirstRule"); // again: no-op
    const std::vector<std::string> names = ExpertSelectionRule::Names();
    CHECK(std::find(names.begin(), names.end(), "test-keep-first") != names.end());
    Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("test-keep-first");
    CHECK(rule->GetInstanceTypeId() == KeepFirstRule::GetTypeId());
    CHECK(rule->Select({0.6, 0.4}, Untouchable()) == Keep{true, false});
    // A taken name cannot change its type; a name for a type that is no rule fails on use.
    CHECK_THROWS_AS(ExpertSelectionRule::Register("wlr", "ns3::TestKeepFirstRule"),
                    std::invalid_argument);
    CHECK_THROWS_AS(ExpertSelectionRule::Register("", "ns3::TestKeepFirstRule"),
                    std::invalid_argument);
    ExpertSelectionRule::Register("test-not-a-rule", "ns3::EqualAllocationRule");
    CHECK_THROWS_WITH(ExpertSelectionRule::CreateRule("test-not-a-rule"),
                      Catch::Contains("is not a ns3::ExpertSelectionRule"));
    ExpertSelectionRule::Register("test-no-type", "ns3::NoSuchTypeAnywhere");
    CHECK_THROWS_WITH(ExpertSelectionRule::CreateRule("test-no-type"),
                      Catch::Contains("no registered TypeId"));
}
