// The abstract link's sharing of its pools (LinkTransport on BandwidthPool): static shares,
// work-conserving sharing, a device's transfers one after the other, prefetch hints on the
// downlink's airtime, outages, FDD's separate pools. Every expected time is worked out here from
// the rate formula of the system model (HandSnr: the large-scale SNR by hand), never read from
// the code under test.
#include "link-to-system-mapping.h"
#include "link-transport.h"
#include "radio-fixture.h"
#include "tdd-pattern.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/double.h"
#include "ns3/pointer.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::HandSnr;
using wdmoe::test::RngGuard;

namespace
{

constexpr double kBandHz = 20e6; // the channel's default TotalBandwidth, the shared pool

/// Arrival times by label.
std::map<std::string, double> g_arrivals;

void
Arrived(std::string label)
{
    g_arrivals[label] = Simulator::Now().GetSeconds();
}

Callback<void>
Mark(const std::string& label)
{
    return MakeBoundCallback(&Arrived, label);
}

/// Devices on the x axis at `distances` (128.1/37.6 loss, no shadowing), the BS at the origin.
Ptr<WdmoeChannel>
Channel(const std::vector<double>& distances, bool fading, double ulHz = 0)
{
    Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel", PointerValue(WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("FadingEnabled", BooleanValue(fading));
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(0.0));
    if (ulHz > 0)
    {
        ch->SetAttribute("UplinkBandwidth", DoubleValue(ulHz));
    }
    ch->SetBs(At(0, 0, 0));
    for (double d : distances)
    {
        ch->AddDevice(At(d, 0, 0));
    }
    ch->AssignStreams(100);
    return ch;
}

Ptr<LinkTransport>
Link(Ptr<WdmoeChannel> ch, const BandPlan& band, bool workConserving, bool hintAirtime = true)
{
    Ptr<LinkTransport> link = CreateObject<LinkTransport>();
    link->SetAttribute("WorkConserving", BooleanValue(workConserving));
    link->SetAttribute("HintAirtime", BooleanValue(hintAirtime));
    link->SetChannel(ch, band);
    return link;
}

/// Shannon's rate of a device at d metres on a slice of hz (no fading), by hand.
double
Rate(double d, WdmoeChannel::Direction dir, double hz)
{
    return hz * std::log2(1.0 + HandSnr(d, dir, hz));
}

/// Runs the simulation and returns the arrivals (cleared for the next run).
std::map<std::string, double>
RunAll()
{
    g_arrivals.clear();
    Simulator::Run();
    Simulator::Destroy();
    return g_arrivals;
}

const BandPlan kShared = BandPlan::FromConfig(DuplexMode::SHARED, kBandHz, 0.5);

} // namespace

TEST_CASE("work-conserving: when one transfer ends, the other gets the whole pool",
          "[radio][sharing]")
{
    const double d0 = 150;
    const double d1 = 320;
    for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
    {
        const auto tdir =
            dir == WdmoeChannel::DOWNLINK ? ExpertTransport::DOWNLINK : ExpertTransport::UPLINK;
        // The uplink's SNR falls with the slice: its rate on the whole pool is not twice the
        // rate on half of it, so each rate is worked out at its own width.
        const double r0Half = Rate(d0, dir, kBandHz / 2);
        const double r1Half = Rate(d1, dir, kBandHz / 2);
        const double r1Full = Rate(d1, dir, kBandHz);
        if (dir == WdmoeChannel::UPLINK)
        {
            REQUIRE(r1Full < 1.9 * r1Half);
        }
        const double b1 = 2e6;
        const double t1 = b1 / r0Half;
        const double b2 = 3.0 * r1Half * t1; // still running at t1
        const double t2 = t1 + (b2 - t1 * r1Half) / r1Full;
        for (bool wc : {true, false})
        {
            INFO("direction " << dir << ", work-conserving " << wc);
            Ptr<WdmoeChannel> ch = Channel({d0, d1}, false);
            Ptr<LinkTransport> link = Link(ch, kShared, wc);
            link->SetShares({0, 1}, {0.5, 0.5});
            link->Send(0, tdir, b1, Mark("first"));
            link->Send(1, tdir, b2, Mark("second"));
            const auto at = RunAll();
            REQUIRE(at.size() == 2);
            CHECK(at.at("first") == Approx(t1).epsilon(1e-9).margin(3e-9));
            // Static: the second keeps its half to the end, b2 / R(B/2).
            CHECK(at.at("second") == Approx(wc ? t2 : b2 / r1Half).epsilon(1e-9).margin(3e-9));
        }
    }
}

TEST_CASE("work-conserving: unequal shares split the pool in proportion, and a lone transfer "
          "gets all of it",
          "[radio][sharing]")
{
    const double d = 200;
    const auto dl = WdmoeChannel::DOWNLINK;
    // Shares 0.2 and 0.3 of three devices' split: the two sending share the pool 2:3.
    const double b = 1e6;
    const double tA = b / Rate(d, dl, 0.4 * kBandHz);
    const double bB = 5 * Rate(d, dl, 0.6 * kBandHz) * tA;
    const double tB = tA + (bB - Rate(d, dl, 0.6 * kBandHz) * tA) / Rate(d, dl, kBandHz);
    Ptr<WdmoeChannel> ch = Channel({d, d, d}, false);
    Ptr<LinkTransport> link = Link(ch, kShared, true);
    link->SetShares({0, 1, 2}, {0.2, 0.3, 0.5});
    link->Send(0, ExpertTransport::DOWNLINK, b, Mark("a"));
    link->Send(1, ExpertTransport::DOWNLINK, bB, Mark("b"));
    // Later, alone in the pool: the whole band, not its 0.5.
    const double bC = 1e5;
    Simulator::Schedule(Seconds(1.0),
                        [link, bC]() { link->Send(2, ExpertTransport::DOWNLINK, bC, Mark("c")); });
    const auto at = RunAll();
    REQUIRE(tB < 1.0);
    CHECK(at.at("a") == Approx(tA).epsilon(1e-9).margin(3e-9));
    CHECK(at.at("b") == Approx(tB).epsilon(1e-9).margin(3e-9));
    CHECK(at.at("c") == Approx(1.0 + bC / Rate(d, dl, kBandHz)).epsilon(1e-9).margin(3e-9));
}

TEST_CASE("work-conserving: with fading the bits of each stretch are walked over the blocks",
          "[radio][sharing]")
{
    RngGuard guard;
    const double d0 = 120;
    const double d1 = 380;
    const auto dl = WdmoeChannel::DOWNLINK;
    Ptr<WdmoeChannel> ch = Channel({d0, d1}, true);
    // By hand, block by block (10 ms blocks): hz log2(1 + rho h_b) from the gains the channel
    // reports for each block.
    auto rate = [&](uint32_t dev, double d, double hz, double t) {
        const double h = ch->FadingGain(dev, dl, Seconds(std::floor(t / 0.01) * 0.01 + 0.005));
        return hz * std::log2(1.0 + HandSnr(d, dl, hz) * h);
    };
    // From t, the time at which `bits` are through (bits < 0: none) and the bits by `until`.
    auto walk = [&](uint32_t dev, double d, double hz, double t, double bits, double until) {
        double carried = 0;
        while (true)
        {
            const double end = std::min((std::floor(t / 0.01 + 1e-9) + 1) * 0.01, until);
            const double r = rate(dev, d, hz, t);
            if (bits >= 0 && carried + r * (end - t) >= bits)
            {
                return std::make_pair(t + (bits - carried) / r, bits);
            }
            carried += r * (end - t);
            if (end >= until)
            {
                return std::make_pair(until, carried);
            }
            t = end;
        }
    };
    const double b1 = 0.035 * Rate(d0, dl, kBandHz / 2); // a few blocks
    const double t1 = walk(0, d0, kBandHz / 2, 0, b1, 1e9).first;
    const double c1 = walk(1, d1, kBandHz / 2, 0, -1, t1).second;
    const double b2 = c1 + 0.03 * Rate(d1, dl, kBandHz);
    const double t2 = walk(1, d1, kBandHz, t1, b2 - c1, 1e9).first;
    REQUIRE(t1 > 0.02);
    Ptr<LinkTransport> link = Link(ch, kShared, true);
    link->SetShares({0, 1}, {0.5, 0.5});
    link->Send(0, ExpertTransport::DOWNLINK, b1, Mark("first"));
    link->Send(1, ExpertTransport::DOWNLINK, b2, Mark("second"));
    const auto at = RunAll();
    CHECK(at.at("first") == Approx(t1).epsilon(1e-9).margin(3e-9));
    CHECK(at.at("second") == Approx(t2).epsilon(1e-9).margin(3e-9));
}

TEST_CASE("work-conserving: FDD pools are separate, the shared pool is one", "[radio][sharing]")
{
    const double d = 250;
    const auto ul = WdmoeChannel::UPLINK;
    const double dlBits = 1e5; // ends long before the uplinks
    const double b1 = 1e6;
    SECTION("FDD: a downlink's end does not speed up the uplinks")
    {
        const BandPlan fdd = BandPlan::FromConfig(DuplexMode::FDD, kBandHz, 0.3);
        const double ulHz = fdd.ulHz;
        const double t1 = b1 / Rate(d, ul, ulHz / 2);
        const double b2 = 2 * b1;
        const double t2 = t1 + (b2 - t1 * Rate(d, ul, ulHz / 2)) / Rate(d, ul, ulHz);
        Ptr<WdmoeChannel> ch = Channel({d, d, d}, false, ulHz);
        Ptr<LinkTransport> link = Link(ch, fdd, true);
        link->SetShares({0, 1, 2}, {1.0 / 3, 1.0 / 3, 1.0 / 3});
        link->Send(0, ExpertTransport::DOWNLINK, dlBits, Mark("dl"));
        link->Send(1, ExpertTransport::UPLINK, b1, Mark("ul1"));
        link->Send(2, ExpertTransport::UPLINK, b2, Mark("ul2"));
        const auto at = RunAll();
        // The downlink alone in its pool: all of it.
        CHECK(
            at.at("dl") ==
            Approx(dlBits / Rate(d, WdmoeChannel::DOWNLINK, fdd.dlHz)).epsilon(1e-9).margin(3e-9));
        REQUIRE(at.at("dl") < t1 / 2);
        CHECK(at.at("ul1") == Approx(t1).epsilon(1e-9).margin(3e-9));
        CHECK(at.at("ul2") == Approx(t2).epsilon(1e-9).margin(3e-9));
    }
    SECTION("shared: a downlink's end gives its slice to an uplink")
    {
        const double tDl = dlBits / Rate(d, WdmoeChannel::DOWNLINK, kBandHz / 2);
        const double t1 = tDl + (b1 - tDl * Rate(d, ul, kBandHz / 2)) / Rate(d, ul, kBandHz);
        Ptr<WdmoeChannel> ch = Channel({d, d}, false);
        Ptr<LinkTransport> link = Link(ch, kShared, true);
        link->SetShares({0, 1}, {0.5, 0.5});
        link->Send(0, ExpertTransport::DOWNLINK, dlBits, Mark("dl"));
        link->Send(1, ExpertTransport::UPLINK, b1, Mark("ul1"));
        const auto at = RunAll();
        CHECK(at.at("dl") == Approx(tDl).epsilon(1e-9).margin(3e-9));
        CHECK(at.at("ul1") == Approx(t1).epsilon(1e-9).margin(3e-9));
    }
    SECTION("TDD: a pool per direction, each the whole band in its own slots")
    {
        // "DU" at 1 ms slots: the downlink holds [0, 1) ms of every 2 ms, the uplink [1, 2).
        const TddPattern pattern("DU", 0, 14, 0, 0);
        Ptr<WdmoeChannel> ch = Channel({d, d}, false);
        ch->SetTddPattern(pattern);
        Ptr<LinkTransport> link = Link(ch, BandPlan::Tdd(kBandHz, pattern), true);
        link->SetShares({0, 1}, {0.5, 0.5});
        link->Send(0, ExpertTransport::DOWNLINK, dlBits, Mark("dl"));
        link->Send(1, ExpertTransport::UPLINK, b1, Mark("ul1"));
        const auto at = RunAll();
        // Each alone in its direction's pool: the whole band from the start, in its slots.
        const double dlAir = dlBits / Rate(d, WdmoeChannel::DOWNLINK, kBandHz);
        const double ulAir = b1 / Rate(d, ul, kBandHz);
        CHECK(at.at("dl") ==
              Approx(pattern.WallEnd(Time(0), Seconds(dlAir), false).GetSeconds()).margin(3e-9));
        CHECK(at.at("ul1") ==
              Approx(pattern.WallEnd(Time(0), Seconds(ulAir), true).GetSeconds()).margin(3e-9));
        REQUIRE(ulAir > 2e-3); // long enough to span several periods
    }
}

TEST_CASE("work-conserving: a prefetch hint takes downlink airtime", "[radio][sharing][hint]")
{
    const double d = 200;
    const auto dl = WdmoeChannel::DOWNLINK;
    const double hint = 4e4;
    const double data = 1e6;
    SECTION("a hint delays its device's concurrent data by its airtime, in both modes")
    {
        for (bool wc : {true, false})
        {
            INFO("work-conserving " << wc);
            // Static: the device's half of the pool; work-conserving: alone, all of it.
            const double r = Rate(d, dl, wc ? kBandHz : kBandHz / 2);
            Ptr<WdmoeChannel> ch = Channel({d, d}, false);
            Ptr<LinkTransport> link = Link(ch, kShared, wc);
            link->SetShares({0, 1}, {0.5, 0.5});
            link->SendControl(0, hint, Mark("hint"));
            link->Send(0, ExpertTransport::DOWNLINK, data, Mark("data"));
            const auto at = RunAll();
            CHECK(at.at("hint") == Approx(hint / r).epsilon(1e-9).margin(3e-9));
            CHECK(at.at("data") == Approx(hint / r + data / r).epsilon(1e-9).margin(3e-9));
        }
    }
    SECTION("work-conserving: a hint to another device takes its share while it runs")
    {
        // Half the pool each while the hint runs, then the data has all of it (the downlink's
        // rate is linear in the slice: the data ends hint / R(B/2) / 2 later than alone).
        const double th = hint / Rate(d, dl, kBandHz / 2);
        const double tData = th + (data - th * Rate(d, dl, kBandHz / 2)) / Rate(d, dl, kBandHz);
        Ptr<WdmoeChannel> ch = Channel({d, d}, false);
        Ptr<LinkTransport> link = Link(ch, kShared, true);
        link->SetShares({0, 1}, {0.5, 0.5});
        link->SendControl(1, hint, Mark("hint"));
        link->Send(0, ExpertTransport::DOWNLINK, data, Mark("data"));
        const auto at = RunAll();
        CHECK(at.at("hint") == Approx(th).epsilon(1e-9).margin(3e-9));
        CHECK(at.at("data") == Approx(tData).epsilon(1e-9).margin(3e-9));
        CHECK(at.at("data") > data / Rate(d, dl, kBandHz) + 1e-6);
    }
    SECTION("without hint airtime: bits / rate on an equal share, nothing delayed")
    {
        Ptr<WdmoeChannel> ch = Channel({d, d}, false);
        Ptr<LinkTransport> link = Link(ch, kShared, true, false);
        link->SetShares({0, 1}, {0.5, 0.5});
        link->SendControl(0, hint, Mark("hint"));
        link->Send(0, ExpertTransport::DOWNLINK, data, Mark("data"));
        const auto at = RunAll();
        CHECK(at.at("hint") == Approx(hint / Rate(d, dl, kBandHz / 2)).epsilon(1e-9).margin(3e-9));
        CHECK(at.at("data") == Approx(data / Rate(d, dl, kBandHz)).epsilon(1e-9).margin(3e-9));
    }
}

TEST_CASE("work-conserving: a transfer in outage never arrives, and its share goes to the others",
          "[radio][sharing]")
{
    RngGuard guard;
    // 100 km under the LTE mapping (nothing below -10 dB): a large-scale SNR near -66 dB, which
    // no Rayleigh fade lifts over the threshold (P(|h|^2 > 4e5) = e^-400000).
    const double far = 100e3;
    const double near = 200;
    const double bits = 1e6;
    for (bool fading : {false, true})
    {
        INFO("fading " << fading);
        Ptr<WdmoeChannel> ch = Channel({far, near}, fading);
        ch->SetLinkMapping(WdmoeChannel::DOWNLINK, LinkToSystemMapping::LteDownlink());
        ch->SetLinkMapping(WdmoeChannel::UPLINK, LinkToSystemMapping::LteUplink());
        REQUIRE(ch->DownlinkRate(0, kBandHz, Seconds(0)) == 0);
        Ptr<LinkTransport> link = Link(ch, kShared, true);
        link->SetShares({0, 1}, {0.5, 0.5});
        link->Send(0, ExpertTransport::DOWNLINK, bits, Mark("lost"));
        link->Send(1, ExpertTransport::DOWNLINK, bits, Mark("near"));
        g_arrivals.clear();
        Simulator::Run(); // returns: no event left at Time::Max()
        const double end = Simulator::Now().GetSeconds();
        Simulator::Destroy();
        CHECK(g_arrivals.count("lost") == 0);
        REQUIRE(g_arrivals.count("near") == 1);
        CHECK(end == g_arrivals.at("near"));
        if (!fading)
        {
            // Dropped at once: the near device has the whole pool from the start. LTE downlink:
            // 0.6 B log2(1 + SNR) up to 4.4 bit/s/Hz.
            const double snr = HandSnr(near, WdmoeChannel::DOWNLINK, kBandHz);
            const double rate = kBandHz * std::min(0.6 * std::log2(1.0 + snr), 4.4);
            CHECK(g_arrivals.at("near") == Approx(bits / rate).epsilon(1e-9).margin(3e-9));
        }
    }
}

TEST_CASE("work-conserving: slots and the uplink grant around the pool", "[radio][sharing][access]")
{
    // Two uplinks ready at 1.2 ms: the 4 ms grant and the 0.5 ms slot put both in the pool at
    // 5.5 ms; each arrives at the end of the slot holding its last bit.
    const double d = 180;
    const auto ul = WdmoeChannel::UPLINK;
    Ptr<WdmoeChannel> ch = Channel({d, d}, false);
    Ptr<LinkTransport> link = Link(ch, kShared, true);
    AccessOverhead a;
    a.slot = MicroSeconds(500);
    a.uplinkGrant = MilliSeconds(4);
    link->SetAccessOverhead(a);
    link->SetShares({0, 1}, {0.5, 0.5});
    const double b1 = 1e6;
    const double b2 = 3e6;
    const double t1 = 5.5e-3 + b1 / Rate(d, ul, kBandHz / 2);
    const double t2 = t1 + (b2 - (t1 - 5.5e-3) * Rate(d, ul, kBandHz / 2)) / Rate(d, ul, kBandHz);
    Simulator::Schedule(MicroSeconds(1200), [link, b1, b2]() {
        link->Send(0, ExpertTransport::UPLINK, b1, Mark("first"));
        link->Send(1, ExpertTransport::UPLINK, b2, Mark("second"));
    });
    const auto at = RunAll();
    CHECK(at.at("first") == Approx(std::ceil(t1 / 5e-4) * 5e-4).margin(1e-9));
    CHECK(at.at("second") == Approx(std::ceil(t2 / 5e-4) * 5e-4).margin(1e-9));
}
