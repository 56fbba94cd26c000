// The link-to-system mappings: the truncation points, the cap and the table lookup by hand, the
// mean over Rayleigh fading against quadrature, and a transfer that waits through outage blocks
// walked by hand from the channel's fading gains.
#include "link-to-system-mapping.h"
#include "radio-fixture.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/double.h"
#include "ns3/nstime.h"
#include "ns3/pointer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::RngGuard;

namespace
{

double
Db(double db)
{
    return std::pow(10.0, db / 10.0);
}

/// E[rate(rho h)] with h ~ Exp(1) by composite Simpson over h in [0, 60], fine enough for the
/// steps of the truncation and the table (their jumps cost at most step x max rate).
double
MeanOverRayleigh(const std::function<double(double)>& rate, double rho)
{
    const int n = 600000;
    const double step = 60.0 / n;
    auto f = [&](double h) { return rate(rho * h) * std::exp(-h); };
    double sum = f(0) + f(60.0);
    for (int i = 1; i < n; ++i)
    {
        sum += f(i * step) * (i % 2 ? 4.0 : 2.0);
    }
    return sum * step / 3.0;
}

} // namespace

TEST_CASE("link mapping: Shannon is eta B log2(1 + SINR)", "[radio][link-mapping]")
{
    const LinkToSystemMapping m = LinkToSystemMapping::Shannon(0.75);
    CHECK(m.Rate(Db(10), 5e6) == 0.75 * 5e6 * std::log2(1.0 + 10.0));
    CHECK(m.Name() == "shannon");
}

TEST_CASE("link mapping: TR 36.942's truncated Shannon is 0 below SINR_min and capped",
          "[radio][link-mapping]")
{
    const LinkToSystemMapping dl = LinkToSystemMapping::LteDownlink();
    const double hz = 1e6;
    CHECK(dl.Rate(Db(-10.01), hz) == 0.0);
    CHECK(dl.Rate(Db(-10.0), hz) == Approx(hz * 0.6 * std::log2(1.1)).epsilon(1e-12));
    CHECK(dl.Rate(Db(10), hz) == Approx(hz * 0.6 * std::log2(11.0)).epsilon(1e-12));
    // The cap: 0.6 log2(1 + s) = 4.4 at s = 2^(4.4 / 0.6) - 1 (22.0 dB).
    const double capSinr = std::exp2(4.4 / 0.6) - 1;
    CHECK(10 * std::log10(capSinr) == Approx(22.05).margin(0.01));
    CHECK(dl.Rate(capSinr * 0.99, hz) < 4.4 * hz);
    CHECK(dl.Rate(capSinr * 1.01, hz) == 4.4 * hz);
    CHECK(dl.Rate(Db(40), hz) == 4.4 * hz);
    // The uplink's: alpha 0.4, cap 2.0 bit/s/Hz (reached at 2^5 - 1 = 31, 14.9 dB).
    const LinkToSystemMapping ul = LinkToSystemMapping::LteUplink();
    CHECK(ul.Rate(Db(10), hz) == Approx(hz * 0.4 * std::log2(11.0)).epsilon(1e-12));
    CHECK(ul.Rate(31.5, hz) == 2.0 * hz);
    CHECK(ul.Rate(Db(-11), hz) == 0.0);
    CHECK(LinkToSystemMapping::NrDownlink().Rate(Db(60), hz) == 7.4063 * hz);
}

TEST_CASE("link mapping: the CQI table gives the highest entry whose threshold is met",
          "[radio][link-mapping]")
{
    const LinkToSystemMapping cqi = LinkToSystemMapping::LteCqi(0.1);
    const double hz = 1e6;
    CHECK(cqi.Rate(Db(-6.8), hz) == 0.0);                                      // below CQI 1
    CHECK(cqi.Rate(Db(-6.7), hz) == Approx(0.1523 * 0.9 * hz).epsilon(1e-12)); // CQI 1
    CHECK(cqi.Rate(Db(10.0), hz) == Approx(1.9141 * 0.9 * hz).epsilon(1e-12)); // CQI 8
    CHECK(cqi.Rate(Db(10.3), hz) == Approx(2.4063 * 0.9 * hz).epsilon(1e-12)); // CQI 9
    CHECK(cqi.Rate(Db(40.0), hz) == Approx(5.5547 * 0.9 * hz).epsilon(1e-12)); // CQI 15
    CHECK(LinkToSystemMapping::LteCqi(0.0).Rate(Db(40.0), hz) == Approx(5.5547 * hz));
    CHECK_THROWS(LinkToSystemMapping::CqiTable({1.0}, {0.0, 1.0}, 0.1));
    CHECK_THROWS(LinkToSystemMapping::CqiTable({1.0}, {0.0}, 1.0));
}

TEST_CASE("link mapping: the mean over Rayleigh fading matches quadrature", "[radio][link-mapping]")
{
    const std::vector<LinkToSystemMapping> mappings = {LinkToSystemMapping::Shannon(1.0),
                                                       LinkToSystemMapping::LteDownlink(),
                                                       LinkToSystemMapping::LteUplink(),
                                                       LinkToSystemMapping::NrDownlink(),
                                                       LinkToSystemMapping::LteCqi(0.1)};
    for (const LinkToSystemMapping& m : mappings)
    {
        for (double rhoDb : {-15.0, -5.0, 0.0, 10.0, 20.0, 35.0})
        {
            INFO(m.Name() << " at a mean SINR of " << rhoDb << " dB");
            const double quadrature =
                MeanOverRayleigh([&m](double sinr) { return m.Rate(sinr, 1.0); }, Db(rhoDb));
            CHECK(m.ExpectedRate(Db(rhoDb), 1.0) == Approx(quadrature).epsilon(2e-4).margin(1e-9));
        }
    }
}

TEST_CASE("link mapping: a power-limited uplink concentrates its power below the threshold",
          "[radio][link-mapping]")
{
    const LinkToSystemMapping ul = LinkToSystemMapping::LteUplink(); // 0.4, -10 dB, 2.0
    const double t = 0.1;
    // At or above the threshold: the mapping's own rate on the whole slice.
    CHECK(ul.ConcentratedRate(0.5, 20e6, 180e3) == ul.Rate(0.5, 20e6));
    CHECK(ul.ConcentratedRate(t, 20e6, 180e3) == ul.Rate(t, 20e6));
    // SINR 0.05: its power reaches t on half the slice, 10 MHz at 0.4 log2(1.1).
    CHECK(ul.ConcentratedRate(0.05, 20e6, 180e3) == Approx(0.4 * 10e6 * std::log2(1.1)));
    // SINR 0.0005: 100 kHz, less than one 180 kHz resource block: outage.
    CHECK(ul.ConcentratedRate(0.0005, 20e6, 180e3) == 0);
    CHECK(ul.ConcentratedRate(0.001, 20e6, 180e3) == Approx(0.4 * 200e3 * std::log2(1.1)));
    // Shannon has no threshold: unchanged.
    const LinkToSystemMapping shannon = LinkToSystemMapping::Shannon();
    CHECK(shannon.ConcentratedRate(0.05, 20e6, 180e3) == shannon.Rate(0.05, 20e6));
    // The mean over Rayleigh fading against quadrature, both mappings with a threshold.
    for (const LinkToSystemMapping& m : {ul, LinkToSystemMapping::LteCqi()})
    {
        for (double rhoDb : {-30.0, -20.0, -10.0, 0.0, 10.0})
        {
            const double quadrature = MeanOverRayleigh(
                [&m](double sinr) { return m.ConcentratedRate(sinr, 20e6, 180e3); },
                Db(rhoDb));
            CHECK(m.ExpectedConcentratedRate(Db(rhoDb), 20e6, 180e3) ==
                  Approx(quadrature).epsilon(2e-4).margin(1e-3));
        }
    }
}

TEST_CASE("link mapping: a transfer in outage waits for a block with a positive rate",
          "[radio][link-mapping]")
{
    RngGuard guard;
    // A device 3 km away: its uplink on 20 MHz is around -26 dB. Below the LTE uplink's -10 dB
    // threshold it concentrates its power on part of its slice (ConcentratedRate); below one
    // resource block's worth (fades under about -4.7 dB) the block is in outage.
    Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel", PointerValue(WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(0.0));
    ch->SetBs(At(0, 0, 0));
    ch->AddDevice(At(3000, 0, 0));
    ch->AssignStreams(7);
    const LinkToSystemMapping ul = LinkToSystemMapping::LteUplink();
    ch->SetLinkMapping(WdmoeChannel::UPLINK, ul);
    const double hz = 20e6;
    const double bits = 2e5;
    int waited = 0;
    for (int start = 0; start < 40; ++start)
    {
        // By hand: walk the 10 ms blocks from the gains the channel reports.
        const double rho =
            ch->UplinkSnr(0, hz, Seconds(0)) / ch->FadingGain(0, WdmoeChannel::UPLINK, Seconds(0));
        double t = start * 0.01;
        double remaining = bits;
        bool outage = false;
        for (long b = start;; ++b)
        {
            const double h = ch->FadingGain(0, WdmoeChannel::UPLINK, Seconds(0.01 * b + 0.005));
            const double rate = ul.ConcentratedRate(rho * h, hz, 180e3);
            outage = outage || rate == 0;
            if (rate * 0.01 >= remaining)
            {
                t += remaining / rate;
                break;
            }
            remaining -= rate * 0.01;
            t = 0.01 * (b + 1);
        }
        waited += outage;
        const Time got = ch->TransferTime(0, WdmoeChannel::UPLINK, bits, hz, Seconds(start * 0.01));
        CHECK(got.GetSeconds() == Approx(t - start * 0.01).epsilon(1e-9).margin(2e-9));
    }
    CHECK(waited > 0);
    // Without fading, a link below the threshold never delivers, and a prediction is capped.
    ch->SetAttribute("FadingEnabled", BooleanValue(false));
    ch->SetLinkMapping(WdmoeChannel::UPLINK,
                       LinkToSystemMapping::TruncatedShannon(0.4, 10.0, 20.0));
    CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, bits, hz, Seconds(0)) == Time::Max());
    CHECK(ch->PredictTransferTime(0, WdmoeChannel::UPLINK, bits, hz, Seconds(0)) ==
          Seconds(WdmoeChannel::kUnreachableSeconds));
}
