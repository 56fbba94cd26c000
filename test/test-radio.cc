// The radio links of the cell (WdmoeChannel) and the bandwidth pools. Every expected number is
// computed here from the closed forms of the system model, not by the code under test.

#include "bandwidth-slices.h"
#include "channel-path-gain-loss-model.h"
#include "radio-fixture.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/channel-condition-model.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/node-container.h"
#include "ns3/node.h"
#include "ns3/nstime.h"
#include "ns3/pointer.h"
#include "ns3/propagation-loss-model.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"
#include "ns3/three-gpp-propagation-loss-model.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::Loss128;
using wdmoe::test::RngGuard;

namespace
{

/// A channel with the 128.1/37.6 model, the BS at the origin and devices on the x axis.
Ptr<WdmoeChannel>
LogDistanceChannel(const std::vector<double>& distances, bool fading, double sigmaDb)
{
    Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel", PointerValue(WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("FadingEnabled", BooleanValue(fading));
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(sigmaDb));
    ch->SetBs(At(0, 0, 0));
    for (double d : distances)
    {
        ch->AddDevice(At(d, 0, 0));
    }
    return ch;
}

/// The fading gains of blocks 0..n-1 of one link, queried in the middle of each block.
std::vector<double>
Blocks(Ptr<WdmoeChannel> ch, uint32_t dev, WdmoeChannel::Direction dir, uint32_t n)
{
    std::vector<double> out;
    for (uint32_t b = 0; b < n; ++b)
    {
        out.push_back(ch->FadingGain(dev, dir, MilliSeconds(10 * b + 5)));
    }
    return out;
}

struct Draw
{
    uint32_t dev;
    WdmoeChannel::Direction dir;
    uint64_t block;
    double gain;
};

std::vector<Draw> g_draws;

void
RecordDraw(uint32_t dev, WdmoeChannel::Direction dir, uint64_t block, double gain)
{
    g_draws.push_back(Draw{dev, dir, block, gain});
}

} // namespace

TEST_CASE("radio: 128.1 + 37.6 log10(d/km) at known distances", "[radio]")
{
    const std::vector<double> d = {35.0, 100.0, 250.0, 500.0, 1000.0};
    Ptr<WdmoeChannel> ch = LogDistanceChannel(d, false, 0.0);
    for (uint32_t i = 0; i < d.size(); ++i)
    {
        INFO("d = " << d[i] << " m");
        CHECK(std::abs(ch->PathGainDb(i) - (-Loss128(d[i]))) < 1e-9);
    }
    // The closed form at known points: 1 km -> 128.1 dB; 100 m -> 128.1 - 37.6 dB.
    CHECK(std::abs(ch->PathGainDb(4) + 128.1) < 1e-9);
    CHECK(std::abs(ch->PathGainDb(1) + 90.5) < 1e-9);

    // Closer than the 35 m reference distance: the loss at 35 m (ns-3's LogDistance clamp).
    Ptr<WdmoeChannel> close = LogDistanceChannel({10.0}, false, 0.0);
    CHECK(std::abs(close->PathGainDb(0) + Loss128(35.0)) < 1e-9);

    // Another minimum distance moves the clamp but not the law.
    Ptr<WdmoeChannel> ch10 = LogDistanceChannel({20.0, 300.0}, false, 0.0);
    ch10->SetAttribute("PropagationLossModel",
                       PointerValue(WdmoeChannel::CreateLogDistance128(10.0)));
    CHECK(std::abs(ch10->PathGainDb(0) + Loss128(20.0)) < 1e-9);
    CHECK(std::abs(ch10->PathGainDb(1) + Loss128(300.0)) < 1e-9);
    CHECK_FALSE(ch->LossModelHasShadowing());
}

TEST_CASE("radio: positions are read at every query", "[radio]")
{
    Ptr<WdmoeChannel> ch = LogDistanceChannel({100.0}, false, 0.0);
    Ptr<MobilityModel> dev = At(100, 0, 0);
    const uint32_t i = ch->AddDevice(dev);
    CHECK(i == 1);
    CHECK(ch->GetNDevices() == 2);
    CHECK(std::abs(ch->PathGainDb(i) + Loss128(100.0)) < 1e-9);
    DynamicCast<ConstantPositionMobilityModel>(dev)->SetPosition(Vector(0, 400, 0));
    CHECK(std::abs(ch->PathGainDb(i) + Loss128(400.0)) < 1e-9);
}

TEST_CASE("radio: static log-normal shadowing when the loss model has none", "[radio]")
{
    RngGuard guard;
    const uint32_t n = 2000;
    Ptr<WdmoeChannel> ch = LogDistanceChannel(std::vector<double>(n, 200.0), false, 8.0);
    ch->AssignStreams(1000);
    std::vector<double> shadow;
    for (uint32_t i = 0; i < n; ++i)
    {
        const double s = ch->PathGainDb(i) + Loss128(200.0);
        CHECK(s == Approx(ch->ShadowingDb(i)).margin(1e-9));
        shadow.push_back(s);
    }
    const double mean = std::accumulate(shadow.begin(), shadow.end(), 0.0) / n;
    double var = 0.0;
    for (double s : shadow)
    {
        var += (s - mean) * (s - mean);
    }
    var /= (n - 1);
    // sigma 8 dB: the mean's standard error is 0.18 dB, the variance's about 2 dB^2.
    CHECK(std::abs(mean) < 0.8);
    CHECK(std::abs(var - 64.0) < 10.0);
    // Static: the same on a later query.
    for (uint32_t i = 0; i < 5; ++i)
    {
        CHECK(ch->PathGainDb(i) + Loss128(200.0) == Approx(shadow[i]).margin(1e-9));
    }
    // Scales with the attribute (the draw z is kept, sigma * z is applied).
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(4.0));
    CHECK(ch->PathGainDb(0) + Loss128(200.0) == Approx(shadow[0] / 2).margin(1e-9));
}

TEST_CASE("radio: SNR and rate of one link against the closed form", "[radio]")
{
    const double d = 200.0;
    Ptr<WdmoeChannel> ch = LogDistanceChannel({d}, false, 0.0);
    const Time t = MilliSeconds(3);
    const double pl = Loss128(d);
    const double n0 = std::pow(10.0, -17.4); // mW/Hz
    const double bTotal = 20e6;
    const double bi = 5e6;

    // Downlink: 43 dBm over 20 MHz, device NF 7 dB.
    const double dlSnr =
        std::pow(10.0, (43.0 - pl) / 10.0) * (bi / bTotal) / (n0 * std::pow(10.0, 0.7) * bi);
    CHECK(ch->DownlinkSnr(0, bi, t) == Approx(dlSnr).epsilon(1e-9));
    CHECK(ch->DownlinkRate(0, bi, t) == Approx(bi * std::log2(1.0 + dlSnr)).epsilon(1e-9));
    // ... independent of the slice (constant PSD).
    CHECK(ch->DownlinkSnr(0, 1e6, t) == Approx(dlSnr).epsilon(1e-9));
    CHECK(ch->DownlinkSnr(0, 20e6, t) == Approx(dlSnr).epsilon(1e-9));
    CHECK(ch->DownlinkRate(0, 0.0, t) == 0.0);

    // Uplink: 23 dBm whatever the slice, BS NF 5 dB.
    const double ulSnr = std::pow(10.0, (23.0 - pl) / 10.0) / (n0 * std::pow(10.0, 0.5) * bi);
    CHECK(ch->UplinkSnr(0, bi, t) == Approx(ulSnr).epsilon(1e-9));
    CHECK(ch->UplinkRate(0, bi, t) == Approx(bi * std::log2(1.0 + ulSnr)).epsilon(1e-9));
    // ... halves (linear) when the slice doubles.
    CHECK(ch->UplinkSnr(0, 2 * bi, t) == Approx(ulSnr / 2).epsilon(1e-9));
    CHECK(ch->UplinkRate(0, 2 * bi, t) ==
          Approx(2 * bi * std::log2(1.0 + ulSnr / 2)).epsilon(1e-9));
    CHECK(ch->UplinkRate(0, 0.0, t) == 0.0);

    // Sanity of the numbers themselves: about 60 dB DL and 45 dB UL at 200 m.
    CHECK(10 * std::log10(dlSnr) == Approx(43 - pl + 174 - 7 - 10 * std::log10(20e6)));

    // Efficiency, powers, noise figure and TotalBandwidth are the attributes used.
    ch->SetAttribute("Efficiency", DoubleValue(0.5));
    CHECK(ch->DownlinkRate(0, bi, t) == Approx(0.5 * bi * std::log2(1.0 + dlSnr)).epsilon(1e-9));
    ch->SetAttribute("TotalBandwidth", DoubleValue(40e6));
    CHECK(ch->DownlinkSnr(0, bi, t) == Approx(dlSnr / 2).epsilon(1e-9));
    ch->SetAttribute("BsTxPowerDbm", DoubleValue(46.0));
    ch->SetAttribute("DeviceNoiseFigureDb", DoubleValue(9.0));
    CHECK(ch->DownlinkSnr(0, bi, t) ==
          Approx(dlSnr / 2 * std::pow(10.0, 0.3) / std::pow(10.0, 0.2)).epsilon(1e-9));
    ch->SetAttribute("DeviceTxPowerDbm", DoubleValue(20.0));
    ch->SetAttribute("BsNoiseFigureDb", DoubleValue(3.0));
    ch->SetAttribute("NoisePsdDbmPerHz", DoubleValue(-170.0));
    CHECK(ch->UplinkSnr(0, bi, t) ==
          Approx(ulSnr * std::pow(10.0, -0.3) * std::pow(10.0, 0.2) * std::pow(10.0, -0.4))
              .epsilon(1e-9));
}

TEST_CASE("radio: fading multiplies the SNR of its own direction", "[radio]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = LogDistanceChannel({300.0}, true, 0.0);
    ch->AssignStreams(7);
    Ptr<WdmoeChannel> flat = LogDistanceChannel({300.0}, false, 0.0);
    for (int b = 0; b < 5; ++b)
    {
        const Time t = MilliSeconds(10 * b + 1);
        const double hDl = ch->FadingGain(0, WdmoeChannel::DOWNLINK, t);
        const double hUl = ch->FadingGain(0, WdmoeChannel::UPLINK, t);
        CHECK(hDl != hUl);
        CHECK(ch->DownlinkSnr(0, 4e6, t) == Approx(flat->DownlinkSnr(0, 4e6, t) * hDl));
        CHECK(ch->UplinkSnr(0, 4e6, t) == Approx(flat->UplinkSnr(0, 4e6, t) * hUl));
        CHECK(flat->FadingGain(0, WdmoeChannel::UPLINK, t) == 1.0);
    }
}

TEST_CASE("radio: 3GPP UMa through the channel equals ns-3's model", "[radio]")
{
    RngGuard guard;
    NodeContainer nodes;
    nodes.Create(3);
    Ptr<MobilityModel> bs = At(0, 0, 25);
    Ptr<MobilityModel> ue = At(150, 100, 1.5);
    Ptr<MobilityModel> ue2 = At(-300, 50, 1.5);
    nodes.Get(0)->AggregateObject(bs);
    nodes.Get(1)->AggregateObject(ue);
    nodes.Get(2)->AggregateObject(ue2);

    SECTION("default UMa: its own shadowing, the carrier set, same gain as calling ns-3")
    {
        Ptr<PropagationLossModel> model = WdmoeChannel::CreateThreeGppUma(3.5e9);
        Ptr<ThreeGppUmaPropagationLossModel> uma =
            DynamicCast<ThreeGppUmaPropagationLossModel>(model);
        REQUIRE(uma);
        CHECK(uma->GetFrequency() == 3.5e9);
        DoubleValue f;
        uma->GetAttribute("Frequency", f);
        CHECK(f.Get() == 3.5e9);
        REQUIRE(DynamicCast<ThreeGppUmaChannelConditionModel>(uma->GetChannelConditionModel()));

        Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
        ch->SetAttribute("PropagationLossModel", PointerValue(model));
        ch->SetAttribute("ShadowingSigmaDb", DoubleValue(8.0)); // must not be added
        ch->SetBs(bs);
        ch->AddDevice(ue);
        ch->AddDevice(ue2);
        CHECK(ch->AssignStreams(0) > 6);
        CHECK(ch->LossModelHasShadowing());
        const double g0 = ch->PathGainDb(0);
        const double g1 = ch->PathGainDb(1);
        // The model caches each link's condition and shadowing, so a direct call must agree.
        CHECK(g0 == Approx(model->CalcRxPower(0.0, bs, ue)).margin(1e-9));
        CHECK(g1 == Approx(model->CalcRxPower(0.0, bs, ue2)).margin(1e-9));
        CHECK(ch->ShadowingDb(0) == 0.0);
        CHECK(ch->PathGainDb(0) == Approx(g0).margin(1e-9));
        CHECK(g0 < -60.0);
        CHECK(g0 > -160.0);
    }

    SECTION("LOS, no shadowing: the TR 38.901 UMa LOS formula at the carrier set")
    {
        for (double fc : {3.5e9, 28e9})
        {
            Ptr<PropagationLossModel> model = WdmoeChannel::CreateThreeGppUma(fc);
            model->SetAttribute("ShadowingEnabled", BooleanValue(false));
            DynamicCast<ThreeGppPropagationLossModel>(model)->SetChannelConditionModel(
                CreateObject<AlwaysLosChannelConditionModel>());
            Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
            ch->SetAttribute("PropagationLossModel", PointerValue(model));
            ch->SetAttribute("ShadowingSigmaDb", DoubleValue(0.0));
            ch->SetBs(bs);
            ch->AddDevice(ue);
            CHECK_FALSE(ch->LossModelHasShadowing());
            // d2D = 180 m is inside the breakpoint distance 4 (25-1)(1.5-1) fc / c (>= 560 m),
            // so PL = 28 + 22 log10(d3D) + 20 log10(fc / GHz).
            const double d3 = std::sqrt(150.0 * 150.0 + 100.0 * 100.0 + 23.5 * 23.5);
            const double pl = 28.0 + 22.0 * std::log10(d3) + 20.0 * std::log10(fc / 1e9);
            INFO("fc = " << fc);
            CHECK(ch->PathGainDb(0) == Approx(-pl).margin(1e-9));
            CHECK(ch->PathGainDb(0) == Approx(model->CalcRxPower(0.0, bs, ue)).margin(1e-9));
        }
    }

    SECTION("3GPP with its shadowing off: the channel adds its own")
    {
        Ptr<PropagationLossModel> model = WdmoeChannel::CreateThreeGppUma(3.5e9);
        model->SetAttribute("ShadowingEnabled", BooleanValue(false));
        Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
        ch->SetAttribute("PropagationLossModel", PointerValue(model));
        ch->SetAttribute("ShadowingSigmaDb", DoubleValue(8.0));
        ch->SetBs(bs);
        ch->AddDevice(ue);
        ch->AssignStreams(0);
        CHECK_FALSE(ch->LossModelHasShadowing());
        const double g = ch->PathGainDb(0);
        const double direct = model->CalcRxPower(0.0, bs, ue);
        CHECK(ch->ShadowingDb(0) != 0.0);
        CHECK(g - direct == Approx(ch->ShadowingDb(0)).margin(1e-9));
    }

    SECTION("the LTE transport's loss model: the channel's path gain, both ways")
    {
        // Log-distance with the channel's own shadowing (which the loss model alone lacks), and
        // UMa with its LOS state and shadowing drawn once: LTE must see what the link sees.
        for (bool uma : {false, true})
        {
            Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
            ch->SetAttribute("PropagationLossModel",
                             PointerValue(uma ? WdmoeChannel::CreateThreeGppUma(3.5e9)
                                              : WdmoeChannel::CreateLogDistance128()));
            ch->SetAttribute("ShadowingSigmaDb", DoubleValue(8.0));
            ch->SetBs(bs);
            ch->AddDevice(ue);
            ch->AddDevice(ue2);
            ch->AssignStreams(0);
            Ptr<ChannelPathGainLossModel> lte = CreateObject<ChannelPathGainLossModel>();
            lte->SetChannel(ch);
            INFO("uma " << uma);
            CHECK(lte->AssignStreams(100) == 0);
            CHECK(lte->CalcRxPower(23.0, bs, ue) == 23.0 + ch->PathGainDb(0));
            CHECK(lte->CalcRxPower(23.0, ue, bs) == 23.0 + ch->PathGainDb(0));
            CHECK(lte->CalcRxPower(46.0, bs, ue2) == 46.0 + ch->PathGainDb(1));
            CHECK(uma == (ch->ShadowingDb(0) == 0.0));
            if (!uma) // (the UMa model takes only BS-UE pairs)
            {
                // A pair without the BS (UE to UE) gets the loss model alone.
                CHECK(lte->CalcRxPower(0.0, ue, ue2) ==
                      ch->GetLossModel()->CalcRxPower(0.0, ue, ue2));
            }
        }
    }
    Simulator::Destroy();
}

TEST_CASE("radio: Rayleigh block fading statistics and blocks", "[radio]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = LogDistanceChannel({100.0}, true, 0.0);
    ch->AssignStreams(42);
    const uint32_t n = 20000;
    const std::vector<double> h = Blocks(ch, 0, WdmoeChannel::DOWNLINK, n);
    double sum = 0.0;
    uint32_t belowMedian = 0;
    uint32_t above3 = 0;
    for (double x : h)
    {
        REQUIRE(x >= 0.0);
        sum += x;
        belowMedian += x < std::log(2.0) ? 1 : 0;
        above3 += x > 3.0 ? 1 : 0;
    }
    // Exp(1): mean 1, median ln 2, P(x > 3) = e^-3 = 0.0498.
    CHECK(std::abs(sum / n - 1.0) < 0.03);
    CHECK(std::abs(double(belowMedian) / n - 0.5) < 0.02);
    CHECK(std::abs(double(above3) / n - std::exp(-3.0)) < 0.008);

    // Constant within a block, block index = floor(now / CoherenceTime).
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, Seconds(0)) == h[0]);
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, MicroSeconds(9999)) == h[0]);
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(10)) == h[1]);
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(19)) == h[1]);
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(125)) == h[12]);
    // Changes across blocks.
    uint32_t changes = 0;
    for (uint32_t b = 1; b < 100; ++b)
    {
        changes += h[b] != h[b - 1] ? 1 : 0;
    }
    CHECK(changes == 99);
    // Disabled: 1.
    ch->SetAttribute("FadingEnabled", BooleanValue(false));
    CHECK(ch->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(5)) == 1.0);

    // Another coherence time regroups the same time axis.
    Ptr<WdmoeChannel> slow = LogDistanceChannel({100.0}, true, 0.0);
    slow->SetAttribute("CoherenceTime", TimeValue(MilliSeconds(50)));
    slow->AssignStreams(42);
    const double first = slow->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(1));
    CHECK(slow->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(49)) == first);
    CHECK(slow->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(50)) != first);
}

TEST_CASE("radio: fading is reproducible by RngRun and independent of query order", "[radio]")
{
    RngGuard guard;
    const std::vector<double> d = {100.0, 200.0, 300.0};
    auto make = [&d]() {
        Ptr<WdmoeChannel> ch = LogDistanceChannel(d, true, 8.0);
        ch->AssignStreams(500);
        return ch;
    };
    const uint32_t blocks = 50;

    RngSeedManager::SetRun(3);
    Ptr<WdmoeChannel> a = make();
    std::vector<std::vector<double>> seqA;
    for (uint32_t i = 0; i < d.size(); ++i)
    {
        seqA.push_back(Blocks(a, i, WdmoeChannel::DOWNLINK, blocks));
        seqA.push_back(Blocks(a, i, WdmoeChannel::UPLINK, blocks));
    }
    const double shadowA = a->ShadowingDb(1);

    SECTION("same run, other objects drawn in between: identical")
    {
        RngSeedManager::SetRun(3);
        Ptr<UniformRandomVariable> other = CreateObject<UniformRandomVariable>();
        other->GetValue();
        Ptr<WdmoeChannel> b = make();
        for (uint32_t i = 0; i < d.size(); ++i)
        {
            CHECK(Blocks(b, i, WdmoeChannel::DOWNLINK, blocks) == seqA[2 * i]);
            CHECK(Blocks(b, i, WdmoeChannel::UPLINK, blocks) == seqA[2 * i + 1]);
        }
        CHECK(b->ShadowingDb(1) == shadowA);
    }

    SECTION("another run: different")
    {
        RngSeedManager::SetRun(4);
        Ptr<WdmoeChannel> b = make();
        for (uint32_t i = 0; i < d.size(); ++i)
        {
            CHECK(Blocks(b, i, WdmoeChannel::DOWNLINK, blocks) != seqA[2 * i]);
            CHECK(Blocks(b, i, WdmoeChannel::UPLINK, blocks) != seqA[2 * i + 1]);
        }
        CHECK(b->ShadowingDb(1) != shadowA);
    }

    SECTION("devices, directions and blocks queried in another order: the same values")
    {
        RngSeedManager::SetRun(3);
        Ptr<WdmoeChannel> b = make();
        // Jump straight to a late block of device 2's uplink first: skipped blocks are drawn.
        CHECK(b->FadingGain(2, WdmoeChannel::UPLINK, MilliSeconds(10 * 37 + 2)) == seqA[5][37]);
        CHECK(b->ShadowingDb(1) == shadowA);
        // Then interleave devices and directions backwards, block by block.
        for (uint32_t blk = 0; blk < blocks; ++blk)
        {
            for (int i = int(d.size()) - 1; i >= 0; --i)
            {
                const Time t = MilliSeconds(10 * blk + 9);
                CHECK(b->FadingGain(i, WdmoeChannel::UPLINK, t) == seqA[2 * i + 1][blk]);
                CHECK(b->FadingGain(i, WdmoeChannel::DOWNLINK, t) == seqA[2 * i][blk]);
            }
        }
    }

    // Distinct links draw distinct sequences.
    CHECK(seqA[0] != seqA[1]);
    CHECK(seqA[0] != seqA[2]);
}

TEST_CASE("radio: AssignStreams counts and the FadingDraw trace", "[radio]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = LogDistanceChannel({100.0, 200.0}, true, 8.0);
    // LogDistance has no random variable: 3 streams per device.
    CHECK(ch->AssignStreams(10) == 6);

    g_draws.clear();
    REQUIRE(ch->TraceConnectWithoutContext("FadingDraw", MakeCallback(&RecordDraw)));
    const double g = ch->FadingGain(1, WdmoeChannel::UPLINK, MilliSeconds(25)); // block 2
    REQUIRE(g_draws.size() == 3);                                               // blocks 0, 1, 2
    for (uint64_t b = 0; b < 3; ++b)
    {
        CHECK(g_draws[b].dev == 1);
        CHECK(g_draws[b].dir == WdmoeChannel::UPLINK);
        CHECK(g_draws[b].block == b);
        CHECK(g_draws[b].gain == ch->FadingGain(1, WdmoeChannel::UPLINK, MilliSeconds(10 * b)));
    }
    CHECK(g_draws[2].gain == g);
    // Kept blocks are not drawn again.
    ch->FadingGain(1, WdmoeChannel::UPLINK, MilliSeconds(21));
    CHECK(g_draws.size() == 3);
    ch->FadingGain(0, WdmoeChannel::DOWNLINK, MilliSeconds(1));
    REQUIRE(g_draws.size() == 4);
    CHECK(g_draws[3].dev == 0);
    CHECK(g_draws[3].dir == WdmoeChannel::DOWNLINK);
    g_draws.clear();
}

TEST_CASE("radio: equal slices and band plans", "[radio]")
{
    for (uint32_t n : {1u, 3u, 7u, 10u})
    {
        const std::vector<double> s = EqualBandwidthSlices(20e6, n);
        REQUIRE(s.size() == n);
        CHECK(std::accumulate(s.begin(), s.end(), 0.0) == Approx(20e6).epsilon(1e-12));
        for (double x : s)
        {
            CHECK(x == Approx(20e6 / n).epsilon(1e-15));
        }
    }
    CHECK(EqualBandwidthSlices(20e6, 0).empty());
    CHECK_THROWS_AS(EqualBandwidthSlices(-1.0, 2), std::invalid_argument);

    const BandPlan fdd = BandPlan::FromConfig(DuplexMode::FDD, 20e6, 0.25);
    CHECK(fdd.mode == DuplexMode::FDD);
    CHECK(fdd.ulHz == Approx(5e6));
    CHECK(fdd.dlHz == Approx(15e6));
    CHECK(fdd.dlHz + fdd.ulHz == Approx(20e6).epsilon(1e-15));

    const BandPlan shared = BandPlan::FromConfig(DuplexMode::SHARED, 20e6, 0.25);
    CHECK(shared.mode == DuplexMode::SHARED);
    CHECK(shared.dlHz == 20e6);
    CHECK(shared.ulHz == 20e6);

    CHECK_THROWS_AS(BandPlan::FromConfig(DuplexMode::FDD, 20e6, 0.0), std::invalid_argument);
    CHECK_THROWS_AS(BandPlan::FromConfig(DuplexMode::FDD, 20e6, 1.0), std::invalid_argument);
    CHECK_THROWS_AS(BandPlan::FromConfig(DuplexMode::SHARED, 0.0, 0.5), std::invalid_argument);
    CHECK(DuplexModeFromString("fdd") == DuplexMode::FDD);
    CHECK(DuplexModeFromString("shared") == DuplexMode::SHARED);
    CHECK(ToString(DuplexMode::FDD) == "fdd");
    CHECK(DuplexModeFromString("tdd") == DuplexMode::TDD);
    CHECK(ToString(DuplexMode::TDD) == "tdd");
    CHECK_THROWS_AS(DuplexModeFromString("tdm"), std::invalid_argument);
}
