// The fading's refinements: frequency-selective subbands, Doppler time correlation and the BS's
// CSI delay. Every expected number is computed here by hand from the system model (J0 by its
// power series, rates from the gains the channel reports), not by the code under test.

#include "radio-fixture.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/constant-velocity-mobility-model.h"
#include "ns3/double.h"
#include "ns3/nstime.h"
#include "ns3/pointer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::HandSnr;
using wdmoe::test::Loss128;
using wdmoe::test::RngGuard;

namespace
{

constexpr double kLight = 299792458.0;

/// The 128.1/37.6 channel without shadowing, the BS at the origin; attributes set before the
/// devices are added and the streams assigned.
Ptr<WdmoeChannel>
Channel(const std::vector<Ptr<MobilityModel>>& devices,
        const std::vector<std::pair<std::string, Ptr<AttributeValue>>>& attributes)
{
    Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel", PointerValue(WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(0.0));
    for (const auto& a : attributes)
    {
        ch->SetAttribute(a.first, *a.second);
    }
    ch->SetBs(At(0, 0, 0));
    for (const auto& m : devices)
    {
        ch->AddDevice(m);
    }
    ch->AssignStreams(100);
    return ch;
}

/// J0(x) by its power series sum_m (-1)^m (x^2 / 4)^m / (m!)^2 (x small here).
double
BesselJ0(double x)
{
    double term = 1.0;
    double sum = 1.0;
    for (int m = 1; m < 60; ++m)
    {
        term *= -(x * x / 4.0) / (double(m) * m);
        sum += term;
    }
    return sum;
}

Ptr<MobilityModel>
Moving(double x, double speed)
{
    Ptr<ConstantVelocityMobilityModel> m = CreateObject<ConstantVelocityMobilityModel>();
    m->SetPosition(Vector(x, 0, 0));
    m->SetVelocity(Vector(0, speed, 0));
    return m;
}

struct Moments
{
    double mean;
    double lag1; ///< lag-1 autocorrelation of |h|^2
};

/// Mean and lag-1 autocorrelation of a link's |h|^2 over n blocks.
Moments
Measure(Ptr<WdmoeChannel> ch, uint32_t dev, Time block, int n)
{
    std::vector<double> g(n);
    for (int b = 0; b < n; ++b)
    {
        g[b] = ch->FadingGain(dev, WdmoeChannel::DOWNLINK, block * b);
    }
    double mean = 0.0;
    for (double x : g)
    {
        mean += x / n;
    }
    double var = 0.0;
    double cov = 0.0;
    for (int b = 0; b < n; ++b)
    {
        var += (g[b] - mean) * (g[b] - mean);
        cov += b + 1 < n ? (g[b] - mean) * (g[b + 1] - mean) : 0.0;
    }
    return {mean, cov / var};
}

} // namespace

TEST_CASE("fading: a slice's rate is the sum over its subbands", "[radio][fading]")
{
    RngGuard guard;
    const double d = 300.0;
    // 20 MHz / 6 MHz rounds to 3 subbands in both directions (UplinkBandwidth 0: the same pool);
    // an uplink pool of 8 MHz gives round(8 / 6) = 1.
    Ptr<WdmoeChannel> ch =
        Channel({At(d, 0, 0)}, {{"CoherenceBandwidth", Create<DoubleValue>(6e6)}});
    REQUIRE(ch->NSubbands(WdmoeChannel::DOWNLINK) == 3);
    REQUIRE(ch->NSubbands(WdmoeChannel::UPLINK) == 3);
    Ptr<WdmoeChannel> narrowUl = Channel({At(d, 0, 0)},
                                         {{"CoherenceBandwidth", Create<DoubleValue>(6e6)},
                                          {"UplinkBandwidth", Create<DoubleValue>(8e6)}});
    CHECK(narrowUl->NSubbands(WdmoeChannel::UPLINK) == 1);
    const double hz = 4e6;
    for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
    {
        for (const Time& t : {MilliSeconds(3), MilliSeconds(47), MilliSeconds(123)})
        {
            INFO("dir " << dir << " t " << t.As(Time::MS));
            const double rho = HandSnr(d, dir, hz);
            double sum = 0.0;
            std::vector<double> gains;
            for (uint32_t k = 0; k < 3; ++k)
            {
                gains.push_back(ch->SubbandFadingGain(0, dir, k, t));
                sum += hz / 3 * std::log2(1.0 + rho * gains.back());
            }
            // Independent subbands: different gains; subband 0 is FadingGain.
            CHECK(gains[0] != gains[1]);
            CHECK(gains[1] != gains[2]);
            CHECK(ch->FadingGain(0, dir, t) == gains[0]);
            const double rate = dir == WdmoeChannel::DOWNLINK ? ch->DownlinkRate(0, hz, t)
                                                              : ch->UplinkRate(0, hz, t);
            CHECK(rate == Approx(sum).epsilon(1e-12));
            // Not the flat rate of subband 0 over the whole slice.
            CHECK(rate != Approx(hz * std::log2(1.0 + rho * gains[0])).epsilon(1e-6));
        }
    }
    // A transfer inside one block carries that sum: bits / rate.
    const double rate = ch->DownlinkRate(0, hz, MilliSeconds(51));
    CHECK(ch->TransferTime(0, WdmoeChannel::DOWNLINK, rate * 0.004, hz, MilliSeconds(51))
              .GetSeconds() == Approx(0.004).epsilon(1e-9));
}

TEST_CASE("fading: Doppler correlation of successive blocks follows J0", "[radio][fading]")
{
    RngGuard guard;
    // T = 1 ms at 3.5 GHz: 10 m/s gives f_D = 116.7 Hz, 3 m/s 35.0 Hz.
    const Time block = MilliSeconds(1);
    Ptr<WdmoeChannel> ch = Channel({Moving(200, 10.0), Moving(250, 3.0), At(300, 0, 0)},
                                   {{"CoherenceTime", Create<TimeValue>(block)},
                                    {"DopplerCorrelation", Create<BooleanValue>(true)},
                                    {"CarrierFrequency", Create<DoubleValue>(3.5e9)}});
    const int n = 200000;
    double measured[2];
    const double speeds[2] = {10.0, 3.0};
    for (int dev = 0; dev < 2; ++dev)
    {
        const double fd = speeds[dev] * 3.5e9 / kLight;
        const double r = BesselJ0(2 * M_PI * fd * block.GetSeconds());
        const Moments m = Measure(ch, dev, block, n);
        INFO("device " << dev << " r " << r << " model r^2 " << r * r << " measured " << m.lag1);
        // For h AR(1) with coefficient r, corr(|h_b|^2, |h_b+1|^2) = r^2.
        CHECK(m.lag1 == Approx(r * r).margin(0.01));
        CHECK(m.mean == Approx(1.0).margin(0.05));
        measured[dev] = m.lag1;
    }
    CHECK(measured[0] < measured[1] - 0.1); // faster decorrelates faster
    // Without a Doppler floor a static device's channel never changes (r = J0(0) = 1).
    for (int b = 1; b < 50; ++b)
    {
        CHECK(ch->FadingGain(2, WdmoeChannel::UPLINK, block * b) ==
              Approx(ch->FadingGain(2, WdmoeChannel::UPLINK, Seconds(0))).epsilon(1e-12));
    }
}

TEST_CASE("fading: a static device decorrelates at the Doppler floor", "[radio][fading]")
{
    RngGuard guard;
    const Time block = MilliSeconds(2);
    const double floorHz = 40.0; // r = J0(2 pi 40 0.002) = J0(0.503)
    Ptr<WdmoeChannel> ch = Channel({At(300, 0, 0)},
                                   {{"CoherenceTime", Create<TimeValue>(block)},
                                    {"DopplerCorrelation", Create<BooleanValue>(true)},
                                    {"MinDopplerHz", Create<DoubleValue>(floorHz)}});
    const double r = BesselJ0(2 * M_PI * floorHz * block.GetSeconds());
    const Moments m = Measure(ch, 0, block, 200000);
    INFO("model r^2 " << r * r << " measured " << m.lag1);
    CHECK(m.lag1 == Approx(r * r).margin(0.01));
    CHECK(m.mean == Approx(1.0).margin(0.05));
}

TEST_CASE("fading: independent blocks stay uncorrelated", "[radio][fading]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = Channel({Moving(200, 10.0)}, {});
    const Moments m = Measure(ch, 0, MilliSeconds(10), 100000);
    CHECK(std::abs(m.lag1) < 0.02);
    CHECK(m.mean == Approx(1.0).margin(0.02));
}

TEST_CASE("fading: the BS predicts with the block of now - CSI delay", "[radio][fading]")
{
    RngGuard guard;
    const double d = 350.0;
    const double hz = 2e6;
    Ptr<WdmoeChannel> ch =
        Channel({At(d, 0, 0)}, {{"CsiDelay", Create<TimeValue>(MilliSeconds(25))}});
    const Time now = MilliSeconds(41); // true block 4 (9 ms left); known block floor(16/10) = 1
    for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
    {
        INFO("dir " << dir);
        const double rho = HandSnr(d, dir, hz);
        const double g1 = ch->FadingGain(0, dir, MilliSeconds(15));
        const double g4 = ch->FadingGain(0, dir, now);
        REQUIRE(g1 != g4);
        const double known = hz * std::log2(1.0 + rho * g1);
        const double truth = hz * std::log2(1.0 + rho * g4);
        CHECK(ch->KnownRate(0, dir, hz, now) == Approx(known).epsilon(1e-12));
        const double bits = std::min(known, truth) * 0.002; // inside the current block
        CHECK(ch->PredictTransferTime(0, dir, bits, hz, now).GetSeconds() ==
              Approx(bits / known).epsilon(1e-9).margin(2e-9));
        CHECK(ch->TransferTime(0, dir, bits, hz, now).GetSeconds() ==
              Approx(bits / truth).epsilon(1e-9).margin(2e-9));
        // Spanning the end of the current block: 4 ms at the known rate, the rest expected.
        const double mean = ch->ExpectedRate(0, dir, hz);
        CHECK(
            ch->PredictTransferTime(0, dir, known * 0.004 + mean * 0.003, hz, now, MilliSeconds(46))
                .GetSeconds() == Approx(0.007).epsilon(1e-9).margin(2e-9));
        // Before the delay has passed the BS knows block 0.
        const double g0 = ch->FadingGain(0, dir, Seconds(0));
        CHECK(ch->KnownRate(0, dir, hz, MilliSeconds(7)) ==
              Approx(hz * std::log2(1.0 + rho * g0)).epsilon(1e-12));
    }
}
