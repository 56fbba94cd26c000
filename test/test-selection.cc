// Expert selection rules on hand-made candidates: WDMoE's weight-to-latency ratio and our
// straggler rule, including ties and values exactly at their bounds.

#include "expert-selection.h"
#include "slowest-of.h"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace ns3;
using wdmoe::test::SlowestOf;

namespace
{

using Keep = std::vector<bool>;

} // namespace

TEST_CASE("selection: WLR drops a candidate whose weight per second is below theta x the top-1's",
          "[selection]")
{
    // 0.3 / 1 < 0.5 x 0.7 / 1 = 0.35: dropped; with theta 0.4 the bound is 0.28: kept.
    CHECK(SelectWeightToLatency({0.7, 0.3}, {1, 1}, 0.5) == Keep{true, false});
    CHECK(SelectWeightToLatency({0.7, 0.3}, {1, 1}, 0.4) == Keep{true, true});
    // A slow device lowers the ratio: 0.4 / 4 = 0.1 < 0.5 x 0.6 / 1.
    CHECK(SelectWeightToLatency({0.6, 0.4}, {1, 4}, 0.5) == Keep{true, false});
    // A slow top-1 raises the others' relative ratio: 0.4 / 1 >= 1 x 0.6 / 100.
    CHECK(SelectWeightToLatency({0.6, 0.4}, {100, 1}, 1.0) == Keep{true, true});
    // theta 0 keeps everything.
    CHECK(SelectWeightToLatency({0.9, 0.05, 0.05}, {1, 50, 50}, 0.0) == Keep{true, true, true});
}

TEST_CASE("selection: WLR keeps a ratio exactly at the bound and never drops the top-1",
          "[selection]")
{
    // 0.25 / 1 == 0.5 x 0.5 / 1 (exact in binary): kept.
    CHECK(SelectWeightToLatency({0.5, 0.25}, {1, 1}, 0.5) == Keep{true, true});
    // 0.25 / 2 == 0.25 x 0.5 / 1: kept; a hair more theta drops it.
    CHECK(SelectWeightToLatency({0.5, 0.25}, {1, 2}, 0.25) == Keep{true, true});
    CHECK(SelectWeightToLatency({0.5, 0.25}, {1, 2}, 0.2500001) == Keep{true, false});
    // Three candidates, only the slow light one goes.
    CHECK(SelectWeightToLatency({0.5, 0.3, 0.2}, {1, 1, 10}, 0.5) == Keep{true, true, false});
}

TEST_CASE("selection: WLR ties in weight make the first candidate the top-1", "[selection]")
{
    // Equal weights: candidate 0 is the top-1 whatever its latency.
    CHECK(SelectWeightToLatency({0.5, 0.5}, {1, 2}, 1.0) == Keep{true, false});
    CHECK(SelectWeightToLatency({0.5, 0.5}, {2, 1}, 1.0) == Keep{true, true});
    // A later candidate of larger weight is the top-1.
    CHECK(SelectWeightToLatency({0.3, 0.7}, {1, 1}, 0.5) == Keep{false, true});
}

StragglerBounds
Bounds(double weightMax, double gainMin, double tradeoff)
{
    return StragglerBounds{weightMax, gainMin, tradeoff};
}

TEST_CASE("selection: the straggler rule drops a light candidate that sets the layer's latency",
          "[selection]")
{
    // Share 0.2 <= 0.3; it saves 2 of 3 >= 0.2 x 3; its price 0.2^2 x 3 = 0.12 <= 1 x 2.
    CHECK(SelectStragglers({0.8, 0.2}, SlowestOf({1, 3}), Bounds(0.3, 0.2, 1)) ==
          Keep{true, false});
    // Too heavy to drop.
    CHECK(SelectStragglers({0.6, 0.4}, SlowestOf({1, 3}), Bounds(0.3, 0.2, 1)) == Keep{true, true});
    // Not the straggler: nothing to gain, whatever the bounds.
    CHECK(SelectStragglers({0.8, 0.2}, SlowestOf({3, 1}), Bounds(1, 0, 1e6)) == Keep{true, true});
    // Saves 0.1 of 1.1 < 0.2 x 1.1; with a gain bound of 0.05 it goes.
    CHECK(SelectStragglers({0.8, 0.2}, SlowestOf({1, 1.1}), Bounds(0.3, 0.2, 1e6)) ==
          Keep{true, true});
    CHECK(SelectStragglers({0.8, 0.2}, SlowestOf({1, 1.1}), Bounds(0.3, 0.05, 1e6)) ==
          Keep{true, false});
    // The top-1 is never dropped, however slow; a single candidate stays.
    CHECK(SelectStragglers({0.8, 0.2}, SlowestOf({9, 1}), Bounds(1, 0, 1e6)) == Keep{true, true});
    CHECK(SelectStragglers({1.0}, SlowestOf({9}), Bounds(1, 0, 1e6)) == Keep{true});
    // A weight bound of 0 drops nothing.
    CHECK(SelectStragglers({0.9, 0.1}, SlowestOf({1, 100}), Bounds(0, 0, 1e6)) == Keep{true, true});
}

TEST_CASE("selection: the straggler bounds are inclusive", "[selection]")
{
    // Weight exactly at the bound (0.25 <= 0.25) and gain exactly at it (1 >= 0.5 x 2).
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({1, 2}), Bounds(0.25, 0.5, 1)) ==
          Keep{true, false});
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({1, 2}), Bounds(0.2499, 0.5, 1)) ==
          Keep{true, true});
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({1, 2}), Bounds(0.25, 0.5001, 1)) ==
          Keep{true, true});
}

TEST_CASE("selection: the straggler trade-off prices a drop by its weight squared and the "
          "layer's sensitivity",
          "[selection]")
{
    // Dropping the second candidate saves 1 of 4. Share 1/8: price (1/8)^2 x 4 = 1/16, exactly
    // kappa x 1 at kappa = 1/16 (all exact in binary): dropped; a hair less kappa keeps it.
    CHECK(SelectStragglers({0.875, 0.125}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.0625)) ==
          Keep{true, false});
    CHECK(SelectStragglers({0.875, 0.125}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.0624)) ==
          Keep{true, true});
    // Twice the weight costs four times as much: share 1/4 needs kappa 1/4.
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.0625)) ==
          Keep{true, true});
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.25)) ==
          Keep{true, false});
    // A layer twice as sensitive as the mean doubles the price; half as sensitive halves it.
    CHECK(SelectStragglers({0.875, 0.125}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.0625), 2.0) ==
          Keep{true, true});
    CHECK(SelectStragglers({0.75, 0.25}, SlowestOf({3, 4}), Bounds(0.5, 0, 0.125), 0.5) ==
          Keep{true, false});
}

TEST_CASE("selection: the straggler rule repeats on the renormalised weights", "[selection]")
{
    // Round 1: dropping candidate 1 (tau 4) saves 1 of 4; dropping 2 saves nothing. Round 2:
    // candidate 2 weighs 0.25 / 0.75 = 0.333 of what is left and dropping it saves 2 of 3.
    CHECK(SelectStragglers({0.5, 0.25, 0.25}, SlowestOf({1, 4, 3}), Bounds(0.34, 0.2, 1)) ==
          Keep{true, false, false});
    // With a bound of 0.3 the renormalised 0.333 is too heavy for round 2.
    CHECK(SelectStragglers({0.5, 0.25, 0.25}, SlowestOf({1, 4, 3}), Bounds(0.3, 0.2, 1)) ==
          Keep{true, false, true});
}

TEST_CASE("selection: equal straggler gains go to the later candidate", "[selection]")
{
    // Candidates 1 and 2 run one after the other on the same device: dropping either saves 1.
    const LayerLatencyOf serial = [](const std::vector<bool>& keep) {
        return 1.0 + (keep[1] ? 1.0 : 0.0) + (keep[2] ? 1.0 : 0.0);
    };
    // Round 1 drops candidate 2; in round 2 candidate 1 weighs 0.2 / 0.8 = 0.25 > 0.22.
    CHECK(SelectStragglers({0.6, 0.2, 0.2}, serial, Bounds(0.22, 0.1, 1)) ==
          Keep{true, true, false});
}

TEST_CASE("selection: kept weights are renormalised in candidate order", "[selection]")
{
    const std::vector<double> w = RenormalisedKept({0.5, 0.3, 0.2}, {true, false, true});
    REQUIRE(w.size() == 2);
    CHECK(w[0] == Approx(0.5 / 0.7));
    CHECK(w[1] == Approx(0.2 / 0.7));
    CHECK(RenormalisedKept({0.6, 0.4}, {true, true}) == std::vector<double>{0.6, 0.4});
}
