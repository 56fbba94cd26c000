// Bandwidth allocation: equal and proportional shares, and min-max checked against a brute-force
// grid search on round trips built like the simulator's (Shannon rate on a slice, noise growing
// with the slice), closed forms, monotonicity in the channel and the compute, and the guards.
#include "bandwidth-allocation.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

/// One transfer of a round trip: `bits` over a pool of `bandHz`; with a share s of the pool the
/// SNR is snr / s when the noise grows with the slice (uplink, fixed transmit power), snr
/// otherwise (downlink, power spread at constant PSD).
struct Transfer
{
    double bits;
    double bandHz;
    double snr; ///< with the whole pool
    bool noiseScales = true;
};

/// A device: fixed time (compute, queueing) plus its transfers.
struct Device
{
    double fixedSeconds;
    std::vector<Transfer> transfers;
};

/// RT(s) = c + sum_t bits_t / (s B_t log2(1 + SNR_t(s))), written out independently of the code
/// under test.
double
RoundTrip(const Device& d, double s)
{
    double t = d.fixedSeconds;
    for (const Transfer& x : d.transfers)
    {
        const double snr = x.noiseScales ? x.snr / s : x.snr;
        t += x.bits / (s * x.bandHz * std::log2(1.0 + snr));
    }
    return t;
}

std::vector<RoundTripOfShare>
Functions(const std::vector<Device>& devices)
{
    std::vector<RoundTripOfShare> f;
    for (const Device& d : devices)
    {
        f.push_back([d](double s) { return RoundTrip(d, s); });
    }
    return f;
}

constexpr double kBits = 4096 * 16 + 64 * 8; // one Mixtral hidden state plus a header
constexpr double kBand = 20e6;

/// Shared duplex: downlink and uplink on the device's share of the one pool.
Device
Shared(double compute, double snrDl, double snrUl)
{
    return Device{compute, {{kBits, kBand, snrDl, false}, {kBits, kBand, snrUl, true}}};
}

/// FDD: the same share of each pool (downlink 60 %, uplink 40 % of the band).
Device
Fdd(double compute, double snrDl, double snrUl)
{
    return Device{compute, {{kBits, 0.6 * kBand, snrDl, false}, {kBits, 0.4 * kBand, snrUl, true}}};
}

/// The simplest shape of the brief: one transfer whose noise grows with the slice.
Device
OneWay(double compute, double snr)
{
    return Device{compute, {{kBits, kBand, snr, true}}};
}

struct GridBest
{
    double maxRoundTrip = std::numeric_limits<double>::infinity();
    std::vector<double> shares;
};

/// Every share vector on the grid {1, 2, ...} / units summing to 1 (no device left without
/// band), the one with the smallest maximum round trip.
GridBest
BruteForce(const std::vector<Device>& devices, int units)
{
    const std::size_t n = devices.size();
    GridBest best;
    std::vector<int> k(n, 1);
    // Recursive enumeration of compositions of `units` into n positive parts.
    std::function<void(std::size_t, int)> walk = [&](std::size_t i, int left) {
        if (i + 1 == n)
        {
            k[i] = left;
            double worst = 0.0;
            for (std::size_t d = 0; d < n; ++d)
            {
                worst = std::max(worst, RoundTrip(devices[d], double(k[d]) / units));
            }
            if (worst < best.maxRoundTrip)
            {
                best.maxRoundTrip = worst;
                best.shares.assign(n, 0.0);
                for (std::size_t d = 0; d < n; ++d)
                {
                    best.shares[d] = double(k[d]) / units;
                }
            }
            return;
        }
        for (int c = 1; c <= left - int(n - 1 - i); ++c)
        {
            k[i] = c;
            walk(i + 1, left - c);
        }
    };
    walk(0, units);
    return best;
}

double
Sum(const std::vector<double>& v)
{
    double s = 0.0;
    for (double x : v)
    {
        s += x;
    }
    return s;
}

/// Least share with RT(s) <= target, by a bisection written here (RT decreases in s).
double
LeastShareFor(const Device& d, double target)
{
    double lo = 0.0;
    double hi = 1.0;
    for (int k = 0; k < 100; ++k)
    {
        const double m = 0.5 * (lo + hi);
        (RoundTrip(d, m) <= target ? hi : lo) = m;
    }
    return hi;
}

/// MinMaxShares against the grid: no worse than the grid's best G, shares summing to 1,
/// roundTrip the max under the shares. Closeness to the grid's argmin: every allocation whose
/// max is at most G (the grid's argmin and ours) gives device i at least m_i = s_i(G) and at
/// most m_i + (1 - sum_j m_j), so both lie in that interval. With two devices the grid's argmin
/// is one of the two grid points around the optimum: within one step. With more, it can be
/// further: the grid rounds the small, steep shares of good channels up and takes the
/// difference from the flat share of a bad one (1.5 steps in the first 4-device case).
void
CheckAgainstGrid(const std::vector<Device>& devices, int units)
{
    const std::size_t n = devices.size();
    const MinMaxAllocation a = MinMaxShares(Functions(devices));
    const GridBest g = BruteForce(devices, units);
    REQUIRE(a.shares.size() == n);
    CHECK(Sum(a.shares) == Approx(1.0).margin(1e-12));
    double worst = 0.0;
    for (std::size_t i = 0; i < n; ++i)
    {
        CHECK(a.shares[i] > 0.0);
        worst = std::max(worst, RoundTrip(devices[i], a.shares[i]));
    }
    CHECK(a.roundTrip == Approx(worst).epsilon(1e-12));
    CHECK(a.roundTrip <= g.maxRoundTrip * (1.0 + 1e-6));
    // A sanity check of the brute force itself: the grid's best is close to the optimum.
    CHECK(a.roundTrip >= g.maxRoundTrip * 0.8);

    std::vector<double> least(n);
    for (std::size_t i = 0; i < n; ++i)
    {
        least[i] = LeastShareFor(devices[i], g.maxRoundTrip);
    }
    const double slack = 1.0 - Sum(least);
    CHECK(slack >= -1e-12);
    for (std::size_t i = 0; i < n; ++i)
    {
        INFO("device " << i << ": minmax " << a.shares[i] << ", grid " << g.shares[i]
                       << ", allowed [" << least[i] << ", " << least[i] + slack << "]");
        CHECK(a.shares[i] >= least[i] - 1e-9);
        CHECK(a.shares[i] <= least[i] + slack + 1e-9);
        CHECK(g.shares[i] >= least[i] - 1e-9);
        CHECK(g.shares[i] <= least[i] + slack + 1e-9);
        if (n == 2)
        {
            CHECK(std::abs(a.shares[i] - g.shares[i]) <= 1.0 / units + 1e-9);
        }
    }
}

} // namespace

TEST_CASE("bandwidth: equal shares", "[policy]")
{
    CHECK(EqualShares(0).empty());
    CHECK(EqualShares(1) == std::vector<double>{1.0});
    const auto s = EqualShares(4);
    REQUIRE(s.size() == 4);
    for (double x : s)
    {
        CHECK(x == 0.25);
    }
}

TEST_CASE("bandwidth: proportional shares and their errors", "[policy]")
{
    CHECK(ProportionalShares({2.0}) == std::vector<double>{1.0});
    const auto s = ProportionalShares({1.0, 3.0});
    REQUIRE(s.size() == 2);
    CHECK(s[0] == Approx(0.25).epsilon(1e-15));
    CHECK(s[1] == Approx(0.75).epsilon(1e-15));
    const auto t = ProportionalShares({1.0, 2.0, 2.0, 5.0});
    CHECK(t[0] == Approx(0.1).epsilon(1e-15));
    CHECK(t[3] == Approx(0.5).epsilon(1e-15));
    CHECK(Sum(t) == Approx(1.0).epsilon(1e-15));
    // Loads whose sum overflows a double still split.
    const auto big = ProportionalShares({1e308, 1e308});
    CHECK(big[0] == Approx(0.5));
    CHECK(big[1] == Approx(0.5));

    CHECK_THROWS_AS(ProportionalShares({}), std::invalid_argument);
    CHECK_THROWS_AS(ProportionalShares({1.0, 0.0}), std::invalid_argument);
    CHECK_THROWS_AS(ProportionalShares({1.0, -2.0}), std::invalid_argument);
    CHECK_THROWS_AS(ProportionalShares({std::nan(""), 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(ProportionalShares({std::numeric_limits<double>::infinity()}),
                    std::invalid_argument);
}

TEST_CASE("bandwidth: minmax on closed forms", "[policy]")
{
    // RT_i = k_i / s: the optimum equalises, T = sum k, s_i = k_i / T.
    {
        const std::vector<RoundTripOfShare> f = {[](double s) { return 1.0 / s; },
                                                 [](double s) { return 3.0 / s; }};
        const MinMaxAllocation a = MinMaxShares(f);
        CHECK(a.roundTrip == Approx(4.0).epsilon(1e-6));
        CHECK(a.roundTrip >= 4.0 * (1.0 - 1e-12));
        CHECK(a.shares[0] == Approx(0.25).epsilon(1e-6));
        CHECK(a.shares[1] == Approx(0.75).epsilon(1e-6));
        CHECK(a.bisections > 0);
        CHECK(a.bisections < 200);
    }
    // RT_0 = 1 / s, RT_1 = 1 + 1 / s: 1/T + 1/(T - 1) = 1, T = (3 + sqrt 5) / 2.
    {
        const std::vector<RoundTripOfShare> f = {[](double s) { return 1.0 / s; },
                                                 [](double s) { return 1.0 + 1.0 / s; }};
        const double t = (3.0 + std::sqrt(5.0)) / 2.0;
        const MinMaxAllocation a = MinMaxShares(f);
        CHECK(a.roundTrip == Approx(t).epsilon(1e-6));
        CHECK(a.shares[0] == Approx(1.0 / t).epsilon(1e-5));
        // A looser tolerance stays within it of the optimum and needs fewer steps.
        const MinMaxAllocation loose = MinMaxShares(f, 1e-2);
        CHECK(loose.roundTrip <= t * (1.0 + 1e-2));
        CHECK(loose.roundTrip >= t * (1.0 - 1e-12));
        CHECK(loose.bisections < a.bisections);
    }
}

TEST_CASE("bandwidth: minmax equals the grid optimum, 2 devices", "[policy]")
{
    CheckAgainstGrid({OneWay(2e-3, 100.0), OneWay(2e-3, 2.0)}, 100);
    CheckAgainstGrid({OneWay(1e-3, 1000.0), OneWay(6e-3, 1000.0)}, 100);
    CheckAgainstGrid({Shared(2e-3, 300.0, 20.0), Shared(2e-3, 30.0, 0.5)}, 100);
    CheckAgainstGrid({Fdd(3e-3, 300.0, 20.0), Fdd(1e-3, 10.0, 0.3)}, 100);
}

TEST_CASE("bandwidth: minmax equals the grid optimum, 3 devices", "[policy]")
{
    CheckAgainstGrid({OneWay(1e-3, 1000.0), OneWay(5e-3, 30.0), OneWay(2e-3, 3.0)}, 100);
    CheckAgainstGrid({Shared(2e-3, 1e3, 50.0), Shared(2e-3, 100.0, 5.0), Shared(4e-3, 20.0, 0.8)},
                     100);
    CheckAgainstGrid({Fdd(2e-3, 1e3, 50.0), Fdd(1e-3, 100.0, 2.0), Fdd(3e-3, 5.0, 0.2)}, 100);
}

TEST_CASE("bandwidth: minmax equals the grid optimum, 4 devices", "[policy]")
{
    CheckAgainstGrid(
        {OneWay(1e-3, 500.0), OneWay(1e-3, 50.0), OneWay(4e-3, 5.0), OneWay(2e-3, 0.5)},
        50);
    CheckAgainstGrid({Shared(2e-3, 2e3, 100.0),
                      Shared(2e-3, 200.0, 10.0),
                      Shared(3e-3, 50.0, 1.0),
                      Shared(1e-3, 10.0, 0.5)},
                     50);
    CheckAgainstGrid(
        {Fdd(2e-3, 2e3, 100.0), Fdd(2e-3, 200.0, 10.0), Fdd(3e-3, 50.0, 1.0), Fdd(1e-3, 10.0, 0.5)},
        50);
}

TEST_CASE("bandwidth: minmax gives more band to worse channels and to slower devices", "[policy]")
{
    // Same compute, SNR 30 dB vs 3 dB: the worse channel needs more band.
    {
        const auto a = MinMaxShares(Functions({OneWay(2e-3, 1000.0), OneWay(2e-3, 2.0)}));
        CHECK(a.shares[1] > a.shares[0]);
        CHECK(a.shares[1] > 0.5);
    }
    {
        const auto a = MinMaxShares(Functions({Fdd(2e-3, 100.0, 1.0), Fdd(2e-3, 100.0, 10.0)}));
        CHECK(a.shares[0] > a.shares[1]);
    }
    // Same channel, one device computes 5 ms longer: it needs a faster link to catch up.
    {
        const auto a =
            MinMaxShares(Functions({Shared(1e-3, 100.0, 10.0), Shared(6e-3, 100.0, 10.0)}));
        CHECK(a.shares[1] > a.shares[0]);
    }
    // Whenever the optimum is interior the round trips are equalised.
    {
        const std::vector<Device> d = {OneWay(1e-3, 100.0), OneWay(3e-3, 10.0), OneWay(2e-3, 1.0)};
        const auto a = MinMaxShares(Functions(d));
        for (std::size_t i = 0; i < d.size(); ++i)
        {
            CHECK(RoundTrip(d[i], a.shares[i]) == Approx(a.roundTrip).epsilon(1e-5));
        }
    }
}

TEST_CASE("bandwidth: minmax with identical devices gives equal shares", "[policy]")
{
    for (std::size_t n : {2u, 3u, 5u, 8u})
    {
        const std::vector<Device> d(n, Shared(2e-3, 100.0, 10.0));
        const auto a = MinMaxShares(Functions(d));
        REQUIRE(a.shares.size() == n);
        for (double s : a.shares)
        {
            CHECK(s == Approx(1.0 / n).epsilon(1e-6));
        }
        CHECK(a.roundTrip == Approx(RoundTrip(d[0], 1.0 / n)).epsilon(1e-6));
    }
}

TEST_CASE("bandwidth: minmax edge cases and errors", "[policy]")
{
    // One device: the whole band.
    {
        const auto a = MinMaxShares({[](double s) { return 2.0 / s; }});
        CHECK(a.shares == std::vector<double>{1.0});
        CHECK(a.roundTrip == 2.0);
        CHECK(a.bisections == 0);
    }
    CHECK_THROWS_AS(MinMaxShares({}), std::invalid_argument);
    const std::vector<RoundTripOfShare> two = {[](double s) { return 1.0 / s; },
                                               [](double s) { return 1.0 / s; }};
    CHECK_THROWS_AS(MinMaxShares(two, 0.0), std::invalid_argument);
    CHECK_THROWS_AS(MinMaxShares(two, -1e-3), std::invalid_argument);
    CHECK_THROWS_AS(MinMaxShares(two, std::nan("")), std::invalid_argument);

    // A device that cannot finish below 60 % of the band (infinite round trip on an equal
    // share): the target is first found by doubling. Optimum: 1 / s0 = 0.1 / s1, s0 = 1 / 1.1.
    {
        const std::vector<RoundTripOfShare> f = {
            [](double s) { return s < 0.6 ? std::numeric_limits<double>::infinity() : 1.0 / s; },
            [](double s) { return 0.1 / s; }};
        const auto a = MinMaxShares(f);
        CHECK(a.roundTrip == Approx(1.1).epsilon(1e-5));
        CHECK(a.shares[0] == Approx(1.0 / 1.1).epsilon(1e-5));
        CHECK(Sum(a.shares) == Approx(1.0).margin(1e-12));
    }
    // A device that cannot finish at all: the equal split, with an infinite round trip.
    {
        const std::vector<RoundTripOfShare> f = {
            [](double) { return std::numeric_limits<double>::infinity(); },
            [](double s) { return 1.0 / s; }};
        const auto a = MinMaxShares(f);
        CHECK(a.shares == EqualShares(2));
        CHECK(std::isinf(a.roundTrip));
    }
    // A function that is not monotone must not hang the search; the result is still a split.
    {
        const std::vector<RoundTripOfShare> f = {[](double s) { return 2.0 + std::sin(97.0 * s); },
                                                 [](double s) { return 1.0 / s; },
                                                 [](double s) { return 2.0 + std::cos(31.0 * s); }};
        const auto a = MinMaxShares(f, 1e-12);
        CHECK(a.bisections <= 200);
        CHECK(Sum(a.shares) == Approx(1.0).margin(1e-12));
    }
}
