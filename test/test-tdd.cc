// Time-division duplex: the slot pattern's arithmetic (closed forms worked out by hand for DDDSU
// at 30 kHz with a 10:2:2 special slot), transfers that progress only in their own symbols, and
// reciprocal fading.

#include "bandwidth-slices.h"
#include "radio-fixture.h"
#include "tdd-pattern.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/double.h"
#include "ns3/nstime.h"
#include "ns3/pointer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::HandSnr;
using wdmoe::test::RngGuard;

namespace
{

// DDDSU, 0.5 ms slots, S = 10 downlink + 2 guard + 2 uplink symbols of 0.5/14 ms each. Per
// 2.5 ms period: downlink [0, 1.5 + 10/28) ms, uplink [2.5 - 1/14, 2.5) ms.
const double kSymbolMs = 0.5 / 14;
const double kDlPerPeriodMs = 1.5 + 10 * kSymbolMs;  // 1.857142857 ms
const double kUlStartMs = 2.5 - 0.5 - 2 * kSymbolMs; // the S slot's last 2 symbols: 1.928571 ms
const double kUlPerPeriodMs = 0.5 + 2 * kSymbolMs;   // 0.571428571 ms

TddPattern
Dddsu()
{
    return TddPattern("DDDSU", 1, 10, 2, 2);
}

double
Ms(Time t)
{
    return t.GetSeconds() * 1e3;
}

} // namespace

TEST_CASE("tdd: duty cycles and own time of DDDSU 10:2:2", "[radio][tdd]")
{
    const TddPattern p = Dddsu();
    CHECK(p.Slot() == MicroSeconds(500));
    CHECK(p.DutyCycle(false) == Approx(kDlPerPeriodMs / 2.5));
    CHECK(p.DutyCycle(true) == Approx(kUlPerPeriodMs / 2.5));
    CHECK(p.DutyCycle(false) == Approx(0.742857).epsilon(1e-6));
    CHECK(p.DutyCycle(true) == Approx(0.228571).epsilon(1e-5));
    // Four whole periods, then pieces of one.
    CHECK(Ms(p.OwnTime(Time(0), MilliSeconds(10), false)) == Approx(4 * kDlPerPeriodMs));
    CHECK(Ms(p.OwnTime(Time(0), MilliSeconds(10), true)) == Approx(4 * kUlPerPeriodMs));
    CHECK(Ms(p.OwnTime(MicroSeconds(1000), MicroSeconds(2000), false)) ==
          Approx(0.5 + 10 * kSymbolMs));
    CHECK(Ms(p.OwnTime(MicroSeconds(1000), MicroSeconds(2000), true)) == Approx(2 * kSymbolMs));
    CHECK(p.OwnTime(MicroSeconds(2000), MicroSeconds(1000), false) == Time(0));
}

TEST_CASE("tdd: a transfer's wall-clock end skips the other direction's symbols", "[radio][tdd]")
{
    const TddPattern p = Dddsu();
    // Inside the D slots.
    CHECK(Ms(p.WallEnd(Time(0), MilliSeconds(1), false)) == Approx(1.0));
    // 2 ms of downlink: the first period's 1.857 ms, the rest after the next period starts.
    // (Times are whole nanoseconds: margins of 1 ns.)
    CHECK(Ms(p.WallEnd(Time(0), MilliSeconds(2), false)) ==
          Approx(2.5 + (2.0 - kDlPerPeriodMs)).margin(1e-6));
    CHECK(Ms(p.WallEnd(Time(0), NanoSeconds(1857142), false)) == Approx(1.857142).margin(1e-6));
    // Exactly one period's downlink ends with the period's last downlink slot, not when the
    // next period starts.
    const TddPattern du("DU", 0, 14, 0, 0);
    CHECK(du.WallEnd(Time(0), MilliSeconds(1), false) == MilliSeconds(1));
    CHECK(du.WallEnd(Time(0), MilliSeconds(2), false) == MilliSeconds(3));
    CHECK(du.WallEnd(MilliSeconds(1), MilliSeconds(1), true) == MilliSeconds(2));
    // The uplink waits for the S slot's last symbols.
    CHECK(Ms(p.WallEnd(Time(0), MicroSeconds(100), true)) == Approx(kUlStartMs + 0.1));
    // From inside the U slot: what is left of it first.
    CHECK(Ms(p.WallEnd(MicroSeconds(2000), MicroSeconds(300), true)) == Approx(2.3));
    CHECK(Ms(p.WallEnd(MicroSeconds(2000), MicroSeconds(700), true)) ==
          Approx(2.5 + kUlStartMs + 0.2).margin(1e-6));
    CHECK(p.WallEnd(MicroSeconds(700), Time(0), true) == MicroSeconds(700));
}

TEST_CASE("tdd: WallEnd inverts OwnTime", "[radio][tdd]")
{
    const TddPattern p("DSUUDDSU", 2, 6, 4, 4);
    for (int i = 0; i < 200; ++i)
    {
        const Time from = NanoSeconds(37123 * i);
        const Time air = NanoSeconds(1000 + 91777 * (i % 13));
        for (bool uplink : {false, true})
        {
            const Time end = p.WallEnd(from, air, uplink);
            CHECK(end >= from + air);
            CHECK(std::abs((p.OwnTime(from, end, uplink) - air).GetSeconds()) < 2e-9);
        }
    }
}

TEST_CASE("tdd: patterns that cannot carry both directions are refused", "[radio][tdd]")
{
    CHECK_THROWS_AS(TddPattern("DDXU", 1, 10, 2, 2), std::invalid_argument);
    CHECK_THROWS_AS(TddPattern("", 1, 10, 2, 2), std::invalid_argument);
    CHECK_THROWS_AS(TddPattern("DDDSU", 1, 10, 2, 3), std::invalid_argument);
    CHECK_THROWS_AS(TddPattern("DDDD", 1, 10, 2, 2), std::invalid_argument);
    CHECK_THROWS_AS(TddPattern("DDDS", 1, 12, 2, 0), std::invalid_argument);
    CHECK_THROWS_AS(TddPattern("DDDSU", 5, 10, 2, 2), std::invalid_argument);
    CHECK_NOTHROW(TddPattern("DDDS", 1, 10, 2, 2)); // the S slot's 2 symbols carry the uplink
    CHECK_THROWS_AS(BandPlan::FromConfig(DuplexMode::TDD, 20e6, 0.5), std::invalid_argument);
    const BandPlan band = BandPlan::Tdd(20e6, Dddsu());
    CHECK(band.dlHz == 20e6);
    CHECK(band.ulHz == 20e6);
}

TEST_CASE("tdd: the channel's transfers take their airtime in their own symbols", "[radio][tdd]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = wdmoe::test::StaticOneDeviceChannel(200);
    ch->SetTddPattern(Dddsu());
    ch->AssignStreams(10);
    const double slice = 5e6;
    const double dlRate = slice * std::log2(1 + HandSnr(200, WdmoeChannel::DOWNLINK, slice));
    const double ulRate = slice * std::log2(1 + HandSnr(200, WdmoeChannel::UPLINK, slice));
    // 3 ms of downlink air from t = 0: one period's 1.857 ms, a second's 1.857 would pass it.
    const double dlBits = dlRate * 3e-3;
    CHECK(Ms(ch->TransferTime(0, WdmoeChannel::DOWNLINK, dlBits, slice, Time(0))) ==
          Approx(2.5 + (3.0 - kDlPerPeriodMs)).epsilon(1e-6));
    // 1 ms of uplink air from t = 0: the first period's 0.571 ms, then 0.429 ms of the next.
    const double ulBits = ulRate * 1e-3;
    CHECK(Ms(ch->TransferTime(0, WdmoeChannel::UPLINK, ulBits, slice, Time(0))) ==
          Approx(2.5 + kUlStartMs + (1.0 - kUlPerPeriodMs)).epsilon(1e-6));
    // The BS predicts the same without fading.
    CHECK(Ms(ch->PredictTransferTime(0, WdmoeChannel::UPLINK, ulBits, slice, Time(0))) ==
          Approx(2.5 + kUlStartMs + (1.0 - kUlPerPeriodMs)).epsilon(1e-6));
    CHECK(ch->DutyCycle(WdmoeChannel::UPLINK) == Approx(kUlPerPeriodMs / 2.5));
}

TEST_CASE("tdd: the uplink sees the downlink's fading (reciprocity)", "[radio][tdd]")
{
    RngGuard guard;
    auto make = [](bool tdd) {
        Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
        ch->SetAttribute("PropagationLossModel",
                         PointerValue(WdmoeChannel::CreateLogDistance128()));
        ch->SetAttribute("CoherenceBandwidth", DoubleValue(5e6)); // 4 subbands of 20 MHz
        if (tdd)
        {
            ch->SetTddPattern(Dddsu());
        }
        ch->SetBs(At(0, 0, 0));
        ch->AddDevice(At(200, 0, 0));
        ch->AssignStreams(10);
        return ch;
    };
    Ptr<WdmoeChannel> tdd = make(true);
    Ptr<WdmoeChannel> shared = make(false);
    int differ = 0;
    for (int b = 0; b < 50; ++b)
    {
        const Time t = MilliSeconds(10 * b + 3);
        for (uint32_t k = 0; k < 4; ++k)
        {
            const double down = tdd->SubbandFadingGain(0, WdmoeChannel::DOWNLINK, k, t);
            CHECK(tdd->SubbandFadingGain(0, WdmoeChannel::UPLINK, k, t) == down);
            // The same downlink draws as without TDD (the feature reshuffles nothing).
            CHECK(shared->SubbandFadingGain(0, WdmoeChannel::DOWNLINK, k, t) == down);
            differ += shared->SubbandFadingGain(0, WdmoeChannel::UPLINK, k, t) != down;
        }
    }
    CHECK(differ == 200); // without TDD the directions fade independently
}
