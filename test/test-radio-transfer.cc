// Transfers over the fading channel: WdmoeChannel::TransferTime walks the coherence blocks,
// ExpectedRate is the ergodic Rayleigh rate, PredictTransferTime mixes the known block with the
// expected rate. Every expected number is computed here from the closed forms of the system
// model (or from the fading gains read back from the channel), not by the code under test.

#include "radio-fixture.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/nstime.h"
#include "ns3/pointer.h"
#include "ns3/rng-seed-manager.h"

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

constexpr double kTotalHz = 20e6; // the channel's default TotalBandwidth

/// A channel with the 128.1/37.6 model, no shadowing, the BS at the origin and devices on the
/// x axis; fading streams fixed.
Ptr<WdmoeChannel>
Channel(const std::vector<double>& distances, bool fading)
{
    Ptr<WdmoeChannel> ch = CreateObject<WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel", PointerValue(WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("FadingEnabled", BooleanValue(fading));
    ch->SetAttribute("ShadowingSigmaDb", DoubleValue(0.0));
    ch->SetBs(At(0, 0, 0));
    for (double d : distances)
    {
        ch->AddDevice(At(d, 0, 0));
    }
    ch->AssignStreams(100);
    return ch;
}

/// E[log2(1 + rho h)] with h ~ Exp(1), by quadrature: with h = e^u the integrand
/// log2(1 + rho e^u) e^{-e^u} e^u is smooth on the real line and negligible outside
/// [-40, 5]; composite Simpson with 40000 intervals.
double
ErgodicSpectralEfficiency(double rho)
{
    const double a = -40.0;
    const double b = 5.0;
    const int n = 40000;
    const double step = (b - a) / n;
    auto f = [rho](double u) {
        const double h = std::exp(u);
        return std::log2(1.0 + rho * h) * std::exp(-h) * h;
    };
    double sum = f(a) + f(b);
    for (int i = 1; i < n; ++i)
    {
        sum += f(a + i * step) * (i % 2 ? 4.0 : 2.0);
    }
    return sum * step / 3.0;
}

double
RateAt(Ptr<WdmoeChannel> ch, uint32_t dev, WdmoeChannel::Direction dir, double hz, Time t)
{
    return dir == WdmoeChannel::DOWNLINK ? ch->DownlinkRate(dev, hz, t)
                                         : ch->UplinkRate(dev, hz, t);
}

/// The transfer walked by hand, block by block (10 ms blocks), from the fading gains the channel
/// reports for each block: block b carries hz log2(1 + rho h_b) bit/s for the part of it the
/// transfer spends in it. Returns seconds.
double
HandWalk(Ptr<WdmoeChannel> ch,
         uint32_t dev,
         double d,
         WdmoeChannel::Direction dir,
         double bits,
         double hz,
         double startS)
{
    const double block = 0.01;
    const double rho = HandSnr(d, dir, hz);
    double t = startS;
    double remaining = bits;
    long b = long(std::floor(startS / block + 1e-12));
    while (true)
    {
        const double h = ch->FadingGain(dev, dir, Seconds(block * b + block / 2));
        const double rate = hz * std::log2(1.0 + rho * h);
        const double end = block * (b + 1);
        const double carried = rate * (end - t);
        if (carried >= remaining)
        {
            return t + remaining / rate - startS;
        }
        remaining -= carried;
        t = end;
        ++b;
    }
}

} // namespace

TEST_CASE("radio transfer: without fading a transfer takes bits / rate", "[radio]")
{
    const double d = 250.0;
    Ptr<WdmoeChannel> ch = Channel({d}, false);
    const double bits = 4096 * 16 + 8 * 64; // one Mixtral hidden state in bf16 + header
    for (double hz : {1e6, 5e6, 20e6})
    {
        for (const Time& start : {Seconds(0), MicroSeconds(9999), MilliSeconds(123)})
        {
            INFO("slice " << hz << " Hz, start " << start.GetSeconds() << " s");
            const double dl = bits / (hz * std::log2(1.0 + HandSnr(d, WdmoeChannel::DOWNLINK, hz)));
            const double ul = bits / (hz * std::log2(1.0 + HandSnr(d, WdmoeChannel::UPLINK, hz)));
            CHECK(ch->TransferTime(0, WdmoeChannel::DOWNLINK, bits, hz, start).GetSeconds() ==
                  Approx(dl).epsilon(1e-9).margin(1e-9));
            CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, bits, hz, start).GetSeconds() ==
                  Approx(ul).epsilon(1e-9).margin(1e-9));
        }
    }
    // Many blocks long: still one rate (no fading), so still bits / rate.
    const double big = 5e9;
    const double rate = 2e6 * std::log2(1.0 + HandSnr(d, WdmoeChannel::UPLINK, 2e6));
    CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, big, 2e6, MilliSeconds(3)).GetSeconds() ==
          Approx(big / rate).epsilon(1e-12));
    CHECK(ch->TransferTime(0, WdmoeChannel::DOWNLINK, 0.0, 2e6, MilliSeconds(3)) == Seconds(0));
}

TEST_CASE("radio transfer: with fading the transfer walks the coherence blocks", "[radio]")
{
    RngGuard guard;
    const std::vector<double> distances = {120.0, 400.0};
    Ptr<WdmoeChannel> ch = Channel(distances, true);
    int multiBlock = 0;
    for (uint32_t dev = 0; dev < distances.size(); ++dev)
    {
        for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
        {
            const double hz = 4e6;
            // About 3.5 blocks' worth at the mean rate, so most transfers cross several blocks.
            const double meanRate =
                hz * std::log2(1.0 + HandSnr(distances[dev], dir, hz)); // rho, no fading
            const double bits = meanRate * 0.035;
            for (const Time& start :
                 {Seconds(0), MilliSeconds(10), MicroSeconds(13700), MicroSeconds(59999)})
            {
                INFO("device " << dev << " dir " << dir << " start " << start.GetSeconds());
                const double walked =
                    HandWalk(ch, dev, distances[dev], dir, bits, hz, start.GetSeconds());
                const double got = ch->TransferTime(dev, dir, bits, hz, start).GetSeconds();
                CHECK(got == Approx(walked).epsilon(1e-9).margin(2e-9));
                multiBlock += walked > 0.02;
                // It really depends on the blocks: a flat channel at rho gives another time.
                CHECK(std::abs(got - bits / meanRate) > 1e-6);
            }
        }
    }
    CHECK(multiBlock > 0);
}

TEST_CASE("radio transfer: a transfer that starts mid-block uses the rest of that block at its "
          "rate",
          "[radio]")
{
    RngGuard guard;
    const double d = 300.0;
    Ptr<WdmoeChannel> ch = Channel({d}, true);
    const double hz = 5e6;
    const double rho = HandSnr(d, WdmoeChannel::UPLINK, hz);
    const Time start = MicroSeconds(23400); // block 2, 6.6 ms before its end
    const double h2 = ch->FadingGain(0, WdmoeChannel::UPLINK, MilliSeconds(25));
    const double h3 = ch->FadingGain(0, WdmoeChannel::UPLINK, MilliSeconds(35));
    const double r2 = hz * std::log2(1.0 + rho * h2);
    const double r3 = hz * std::log2(1.0 + rho * h3);
    REQUIRE(r2 != Approx(r3).epsilon(1e-3)); // two blocks that differ

    // Fits in the rest of block 2: bits / r2, whatever block 3 holds.
    const double small = r2 * 0.004;
    CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, small, hz, start).GetSeconds() ==
          Approx(0.004).epsilon(1e-9).margin(2e-9));
    // Exactly the rest of block 2 plus 1 ms of block 3: 6.6 ms + 1 ms.
    const double spanning = r2 * 0.0066 + r3 * 0.001;
    CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, spanning, hz, start).GetSeconds() ==
          Approx(0.0076).epsilon(1e-9).margin(2e-9));
    // The same bits started at the beginning of block 2 see a full 10 ms of r2 first.
    const double fromBlockStart =
        spanning <= r2 * 0.01 ? spanning / r2 : 0.01 + (spanning - r2 * 0.01) / r3;
    CHECK(ch->TransferTime(0, WdmoeChannel::UPLINK, spanning, hz, MilliSeconds(20)).GetSeconds() ==
          Approx(fromBlockStart).epsilon(1e-9).margin(2e-9));
}

TEST_CASE("radio transfer: the expected rate is the ergodic Rayleigh rate", "[radio]")
{
    RngGuard guard;
    const std::vector<double> distances = {60.0, 250.0, 700.0};
    Ptr<WdmoeChannel> ch = Channel(distances, true);
    Ptr<WdmoeChannel> flat = Channel(distances, false);
    const uint32_t blocks = 20000;
    for (uint32_t dev = 0; dev < distances.size(); ++dev)
    {
        for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
        {
            for (double hz : {1e6, 20e6})
            {
                INFO("device at " << distances[dev] << " m, dir " << dir << ", " << hz << " Hz");
                const double rho = HandSnr(distances[dev], dir, hz);
                const double expected = ch->ExpectedRate(dev, dir, hz);
                // e^{1/rho} E1(1/rho) / ln 2 = E[log2(1 + rho h)], integrated here.
                CHECK(expected == Approx(hz * ErgodicSpectralEfficiency(rho)).epsilon(1e-6));
                // Below the rate at the mean SNR (Jensen), but not far below.
                CHECK(expected < hz * std::log2(1.0 + rho));
                // Without fading: the instantaneous rate.
                CHECK(flat->ExpectedRate(dev, dir, hz) ==
                      Approx(RateAt(flat, dev, dir, hz, MilliSeconds(7))).epsilon(1e-12));
                if (hz == 1e6)
                {
                    // The mean of the instantaneous rate over many coherence blocks.
                    double sum = 0;
                    for (uint32_t b = 0; b < blocks; ++b)
                    {
                        sum += RateAt(ch, dev, dir, hz, MicroSeconds(10000 * b + 5000));
                    }
                    CHECK(sum / blocks == Approx(expected).epsilon(0.02));
                }
            }
        }
    }
    // Low SNR: E[log2(1 + rho h)] -> rho / ln 2 (first order), and the integral agrees.
    CHECK(ErgodicSpectralEfficiency(1e-4) == Approx(1e-4 / std::log(2.0)).epsilon(1e-3));
    CHECK(ch->ExpectedRate(0, WdmoeChannel::UPLINK, 0.0) == 0.0);
}

TEST_CASE("radio transfer: PredictTransferTime uses the known block, then the expected rate",
          "[radio]")
{
    RngGuard guard;
    const double d = 350.0;
    Ptr<WdmoeChannel> ch = Channel({d}, true);
    Ptr<WdmoeChannel> flat = Channel({d}, false);
    const double bits = 2e5;
    const Time now = MicroSeconds(41000); // block 4: 9 ms of it left
    for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
    {
        INFO("dir " << dir);
        const double hz = 2e6;
        const double known = RateAt(ch, 0, dir, hz, now);
        const double mean = ch->ExpectedRate(0, dir, hz);
        // Starts and ends inside the current block: the known rate.
        const double fits = known * 0.002;
        CHECK(ch->PredictTransferTime(0, dir, fits, hz, now).GetSeconds() ==
              Approx(fits / known).epsilon(1e-9).margin(2e-9));
        // Starts after the current block: all at the expected rate.
        CHECK(ch->PredictTransferTime(0, dir, bits, hz, now, MilliSeconds(55)).GetSeconds() ==
              Approx(bits / mean).epsilon(1e-9).margin(2e-9));
        // Starts 4 ms before the block ends and needs more: 4 ms known, the rest expected.
        const double spanning = known * 0.004 + mean * 0.003;
        CHECK(ch->PredictTransferTime(0, dir, spanning, hz, now, MilliSeconds(46)).GetSeconds() ==
              Approx(0.007).epsilon(1e-9).margin(2e-9));
        // A start before now means now.
        CHECK(ch->PredictTransferTime(0, dir, fits, hz, now, MilliSeconds(1)) ==
              ch->PredictTransferTime(0, dir, fits, hz, now));
        // Without fading: bits / rate, wherever it starts.
        const double rate = RateAt(flat, 0, dir, hz, now);
        CHECK(flat->PredictTransferTime(0, dir, bits, hz, now, MilliSeconds(90)).GetSeconds() ==
              Approx(bits / rate).epsilon(1e-9).margin(2e-9));
    }
}

TEST_CASE("radio transfer: PredictTransferTime does not grow with the bandwidth", "[radio]")
{
    RngGuard guard;
    const std::vector<double> distances = {80.0, 450.0};
    for (bool fading : {false, true})
    {
        Ptr<WdmoeChannel> ch = Channel(distances, fading);
        for (uint32_t dev = 0; dev < distances.size(); ++dev)
        {
            for (auto dir : {WdmoeChannel::DOWNLINK, WdmoeChannel::UPLINK})
            {
                for (const Time& start : {MilliSeconds(3), MilliSeconds(9), MilliSeconds(30)})
                {
                    INFO("fading " << fading << " device " << dev << " dir " << dir << " start "
                                   << start.GetSeconds());
                    Time previous = Time::Max();
                    int decreases = 0;
                    for (double hz = 0.1e6; hz <= kTotalHz; hz += 0.1e6)
                    {
                        const Time t =
                            ch->PredictTransferTime(dev, dir, 3e5, hz, MilliSeconds(2), start);
                        CHECK(t <= previous);
                        decreases += t < previous;
                        previous = t;
                    }
                    CHECK(decreases > 100); // strictly better most of the time
                }
            }
        }
    }
}
