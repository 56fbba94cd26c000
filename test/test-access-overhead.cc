// The abstract link's access overhead: packets' headers, slot alignment, the uplink grant and
// HARQ retransmissions, by hand; and a transfer through LinkTransport with all of them.
#include "access-overhead.h"
#include "link-transport.h"
#include "radio-fixture.h"
#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/double.h"
#include "ns3/pointer.h"
#include "ns3/random-variable-stream.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>

using namespace ns3;
using wdmoe::test::At;
using wdmoe::test::RngGuard;

TEST_CASE("access overhead: headers per packet, slots, the uplink grant", "[radio][access]")
{
    AccessOverhead a;
    CHECK(a.IsIdeal());
    CHECK(a.OnAirBits(96000) == 96000);
    CHECK(a.Start(MicroSeconds(1200), true) == MicroSeconds(1200));
    a.packetBytes = 1400;
    a.headerBytes = 35;
    // 12000 bytes in ceil(12000 / 1400) = 9 packets of 35 header bytes each.
    CHECK(a.OnAirBits(96000) == 96000 + 9 * 35 * 8);
    a.slot = MicroSeconds(500);
    a.uplinkGrant = MilliSeconds(4);
    CHECK_FALSE(a.IsIdeal());
    CHECK(a.Start(MicroSeconds(1200), false) == MicroSeconds(1500));
    CHECK(a.Start(MicroSeconds(1200), true) == MicroSeconds(5500));  // 5.2 ms, next slot
    CHECK(a.Start(MicroSeconds(1500), false) == MicroSeconds(1500)); // on a boundary already
    CHECK(a.WholeSlots(MicroSeconds(1100)) == MicroSeconds(1500));
    CHECK(a.WholeSlots(MicroSeconds(1000)) == MicroSeconds(1000));
}

TEST_CASE("access overhead: HARQ retransmissions are geometric with the BLER", "[radio][access]")
{
    RngGuard guard;
    AccessOverhead a;
    a.harqBler = 0.1;
    // P(k >= n) = 0.1^n: k counts the n >= 1 with 0.1^n >= u.
    CHECK(a.Retransmissions(0.5) == 0);
    CHECK(a.Retransmissions(0.1) == 1);
    CHECK(a.Retransmissions(0.05) == 1);
    CHECK(a.Retransmissions(0.01) == 2);
    CHECK(a.ExpectedRetransmissions() == Approx(0.1 / 0.9));
    Ptr<UniformRandomVariable> u = CreateObject<UniformRandomVariable>();
    u->SetStream(3);
    const int n = 200000;
    double sum = 0;
    for (int i = 0; i < n; ++i)
    {
        sum += a.Retransmissions(1.0 - u->GetValue());
    }
    // The geometric's standard deviation is sqrt(0.1) / 0.9 = 0.35: 5 standard errors is 0.004.
    CHECK(sum / n == Approx(0.1 / 0.9).margin(0.004));
}

TEST_CASE("access overhead: a link transfer pays grant, slots, headers and its retransmissions",
          "[radio][access]")
{
    RngGuard guard;
    Ptr<WdmoeChannel> ch = wdmoe::test::StaticOneDeviceChannel(200);
    Ptr<LinkTransport> link = CreateObject<LinkTransport>();
    link->SetChannel(ch, BandPlan::FromConfig(DuplexMode::SHARED, 20e6, 0.5));
    AccessOverhead a;
    a.slot = MicroSeconds(500);
    a.uplinkGrant = MilliSeconds(4);
    a.packetBytes = 1400;
    a.headerBytes = 35;
    a.harqBler = 0.5;
    a.harqRtt = MilliSeconds(8);
    link->SetAccessOverhead(a);
    ch->AssignStreams(10);
    CHECK(link->AssignStreams(20) == 3); // downlink, uplink, then the hints' (HintAirtime)
    // The same draws by hand: stream 21 is the device's uplink.
    Ptr<UniformRandomVariable> u = CreateObject<UniformRandomVariable>();
    u->SetStream(21);
    const double bits = 96000;
    const double rate = ch->UplinkRate(0, 20e6, Seconds(0)); // no fading: one rate
    // 12000 bytes: 9 packets of 35 header bytes; whole 0.5 ms slots.
    const double slots = std::ceil((bits + 9 * 35 * 8) / rate / 5e-4) * 5e-4;
    std::vector<double> expected;
    static std::vector<double> arrivals;
    arrivals.clear();

    struct Sink
    {
        static void Arrived() { arrivals.push_back(Simulator::Now().GetSeconds()); }
    };

    for (int i = 0; i < 6; ++i)
    {
        // Ready at 1.2 ms + 20 ms i: the grant takes 4 ms, the start waits for the 0.5 ms slot
        // boundary at 5.5 ms + 20 ms i, then the slots and k retransmissions of 8 ms.
        const Time ready = MicroSeconds(1200 + 20000 * i);
        Simulator::Schedule(ready, [link, bits]() {
            link->Send(0, ExpertTransport::UPLINK, bits, MakeCallback(&Sink::Arrived));
        });
        const uint32_t k = a.Retransmissions(1.0 - u->GetValue());
        expected.push_back(5.5e-3 + 0.02 * i + slots + 8e-3 * k);
    }
    Simulator::Run();
    Simulator::Destroy();
    REQUIRE(arrivals.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
    {
        CHECK(arrivals[i] == Approx(expected[i]).margin(1e-9));
    }
}
