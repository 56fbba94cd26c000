// The LTE transport (real ns-3 LTE packets): one transfer each way through LteTransport alone,
// a scenario on it against the closed-form link, and the config checks of "transport": "lte".
#include "error-message.h"
#include "lte-transport.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include "ns3/constant-position-mobility-model.h"
#include "ns3/node-container.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>

using namespace ns3;
using wdmoe::test::ErrorOf;
using wdmoe::test::ParseCsv;
using wdmoe::test::ScenarioFixture;

namespace
{

/// What the fixture program saw: send and arrival times, and the datagrams the receiving
/// sockets got, per direction (0 down, 1 up).
struct Seen
{
    Ptr<LteTransport> transport;
    double downSent = -1;
    double downArrived = -1;
    double upArrived = -1;
    int downArrivals = 0;
    int upArrivals = 0;
    uint32_t datagrams[2] = {0, 0};
    uint64_t bytes[2] = {0, 0};
};

const uint32_t kRequestBytes = 10000;
const uint32_t kAnswerBytes = 3000;

void
OnRx(Seen* seen, uint32_t device, ExpertTransport::Direction direction, uint32_t payload)
{
    REQUIRE(device == 0);
    ++seen->datagrams[direction];
    seen->bytes[direction] += payload;
}

void
OnUp(Seen* seen)
{
    ++seen->upArrivals;
    seen->upArrived = Simulator::Now().GetSeconds();
}

void
OnDown(Seen* seen)
{
    ++seen->downArrivals;
    seen->downArrived = Simulator::Now().GetSeconds();
    // The device answers as soon as the request is in.
    seen->transport->Send(0,
                          ExpertTransport::UPLINK,
                          8.0 * kAnswerBytes,
                          MakeBoundCallback(&OnUp, seen));
}

void
SendRequest(Seen* seen)
{
    seen->downSent = Simulator::Now().GetSeconds();
    seen->transport->Send(0,
                          ExpertTransport::DOWNLINK,
                          8.0 * kRequestBytes,
                          MakeBoundCallback(&OnDown, seen));
}

/// A BS at 25 m and one device 150 m away at 1.5 m, 20 MHz, the log-distance loss; the request
/// goes at 0.5 s, when the UE has long been attached.
Seen
RunOneExchange(uint32_t rngRun)
{
    RngSeedManager::SetSeed(1);
    RngSeedManager::SetRun(rngRun);
    NodeContainer bs;
    NodeContainer devices;
    bs.Create(1);
    devices.Create(1);
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bs.Get(0)->AggregateObject(bsMobility);
    Ptr<MobilityModel> deviceMobility = CreateObject<ConstantPositionMobilityModel>();
    deviceMobility->SetPosition(Vector(150, 0, 1.5));
    devices.Get(0)->AggregateObject(deviceMobility);

    Seen seen;
    seen.transport = CreateObject<LteTransport>();
    seen.transport->UseLogDistance128(35);
    seen.transport->Install(bs.Get(0), devices);
    seen.transport->AssignStreams(0);
    seen.transport->TraceConnectWithoutContext("Rx", MakeBoundCallback(&OnRx, &seen));
    Simulator::Schedule(Seconds(0.5), &SendRequest, &seen);
    Simulator::Stop(Seconds(0.7));
    Simulator::Run();
    CHECK(seen.transport->PendingTransfers() == 0);
    Simulator::Destroy();
    seen.transport = nullptr;
    return seen;
}

} // namespace

TEST_CASE("lte transport: one request down and one answer up, counted and floored", "[lte]")
{
    const Seen a = RunOneExchange(1);
    REQUIRE(a.downArrivals == 1);
    REQUIRE(a.upArrivals == 1);
    // Datagrams: 1400 bytes of payload, 12 of them our header, so 1388 data bytes each.
    const uint32_t chunk = 1400 - LteTransport::kHeaderBytes;
    const uint32_t downDatagrams = (kRequestBytes + chunk - 1) / chunk; // 8
    const uint32_t upDatagrams = (kAnswerBytes + chunk - 1) / chunk;    // 3
    CHECK(downDatagrams == 8);
    CHECK(upDatagrams == 3);
    CHECK(a.datagrams[ExpertTransport::DOWNLINK] == downDatagrams);
    CHECK(a.datagrams[ExpertTransport::UPLINK] == upDatagrams);
    CHECK(a.bytes[ExpertTransport::DOWNLINK] ==
          kRequestBytes + downDatagrams * LteTransport::kHeaderBytes);
    CHECK(a.bytes[ExpertTransport::UPLINK] ==
          kAnswerBytes + upDatagrams * LteTransport::kHeaderBytes);

    // Floors. Downlink: 10,096 bytes of UDP payload (plus UDP/IP/PDCP/RLC/MAC headers) exceed
    // the largest transport block of 100 resource blocks, 75,376 bits = 9,422 bytes (TS 36.213
    // Table 7.1.7.2.1-1, one layer), so at least two 1 ms TTIs. Uplink: the UE reports its
    // buffer, and its grant comes at the earliest in the next TTI and applies 4 subframes later
    // (FDD, ns-3's UL_PUSCH_TTIS_DELAY): more than 4 ms.
    const double down = a.downArrived - a.downSent;
    const double up = a.upArrived - a.downArrived;
    INFO("downlink " << down * 1e3 << " ms, uplink " << up * 1e3 << " ms");
    CHECK(down >= 2e-3);
    CHECK(up > 4e-3);
    CHECK(down < 0.05); // a 150 m link at 40 dB SNR: nothing waits for long
    CHECK(up < 0.05);

    const Seen b = RunOneExchange(1);
    CHECK(b.downArrived == a.downArrived); // the same run: the same times, to the tick
    CHECK(b.upArrived == a.upArrived);
}

namespace
{

/// Four layers, three devices, six scored tokens, FDD at 20 MHz.
struct LteFixture : ScenarioFixture
{
    LteFixture()
        : ScenarioFixture(4)
    {
        config["cell"]["duplex"] = "fdd";
        config["devices"]["count"] = 3;
        config["cell"]["min_distance_m"] = 100;
        config["cell"]["radius_m"] = 400;
    }
};

} // namespace

TEST_CASE("lte transport: a scenario scores every token, with the link's perplexity", "[lte]")
{
    LteFixture f;
    const ScenarioResult link = RunScenario(ScenarioConfig::Load(f.Write()));
    f.config["transport"] = "lte";
    const ScenarioResult lte = RunScenario(ScenarioConfig::Load(f.Write()));
    const nlohmann::ordered_json& s = lte.summary;
    CHECK(s["tokens_scored"] == 6);
    CHECK(s["cell"]["transport"] == "lte");
    CHECK(link.summary["cell"]["transport"] == "link");
    CHECK(s["lte"]["transfers_pending_at_end"] == 0);
    CHECK(s["lte"]["downlink"]["transfers"].get<int>() > 0);
    CHECK(s["lte"]["uplink"]["transfers"] == s["lte"]["downlink"]["transfers"]);
    // FlowMonitor saw at the IP layer what the sockets counted, and RLC AM lost nothing.
    for (const char* way : {"downlink", "uplink"})
    {
        INFO(way);
        const auto& flows = s["lte"]["flow_monitor"][way];
        CHECK(flows["flows"] == 3); // one per device
        CHECK(flows["packets_received"] == s["lte"][way]["datagrams"]);
        CHECK(flows["packets_sent"] == flows["packets_received"]);
        CHECK(flows["packets_lost"] == 0);
        CHECK(flows["delay_mean_ms"].get<double>() >= 1.0); // at least one TTI on the air
        CHECK(flows["throughput_mbps"].get<double>() > 0);
    }
    // Top-k routing does not depend on the transport, and every expert came back.
    CHECK(s["experts_dropped"] == 0);
    CHECK(s["perplexity"].get<double>() == link.summary["perplexity"].get<double>());
    CHECK(s["nll_per_token"].get<double>() == link.summary["nll_per_token"].get<double>());
    // The same config and RngRun: the same results, byte for byte.
    const ScenarioResult again = RunScenario(ScenarioConfig::Load(f.Write()));
    CHECK(again.tokensCsv == lte.tokensCsv);
    nlohmann::ordered_json a = s;
    nlohmann::ordered_json b = again.summary;
    a.erase("timing");
    b.erase("timing");
    CHECK(a.dump() == b.dump());
    // transfers.csv times every exchange from Send to arrival, as the transport's own counters
    // do: the same number of transfers and the same mean each way.
    const auto rows = ParseCsv(lte.transfersCsv);
    REQUIRE(rows.size() == s["lte"]["downlink"]["transfers"].get<std::size_t>());
    double dlSum = 0, ulSum = 0;
    for (const auto& row : rows)
    {
        dlSum += std::stod(row.at("downlink_ms"));
        ulSum += std::stod(row.at("uplink_ms"));
    }
    CHECK(dlSum / rows.size() ==
          Approx(s["lte"]["downlink"]["transfer_mean_ms"].get<double>()).epsilon(1e-6));
    CHECK(ulSum / rows.size() ==
          Approx(s["lte"]["uplink"]["transfer_mean_ms"].get<double>()).epsilon(1e-6));
    // Real packets take time the ideal Shannon link does not: the tokens are slower.
    CHECK(s["latency_ms"]["mean"].get<double>() !=
          link.summary["latency_ms"]["mean"].get<double>());
}

TEST_CASE("lte transport: config errors name the field and what is allowed", "[lte][config]")
{
    LteFixture f;
    const std::string path = f.Write();
    const std::string wide = ErrorOf([&] {
        ScenarioConfig::Load(path, {"transport=lte", "cell.bandwidth_mhz=100"});
    });
    CHECK_THAT(wide, Catch::Contains("cell.bandwidth_mhz"));
    CHECK_THAT(wide, Catch::Contains("1.4, 3, 5, 10, 15 or 20"));
    CHECK_THAT(wide, Catch::Contains("got 100"));
    const std::string stray = ErrorOf([&] { ScenarioConfig::Load(path, {"lte.rlc=um"}); });
    CHECK_THAT(stray, Catch::Contains("lte"));
    CHECK_THAT(stray, Catch::Contains("applies to \"transport\": \"lte\" only"));
    const std::string shared = ErrorOf([&] {
        ScenarioConfig::Load(path, {"transport=lte", "cell.duplex=shared"});
    });
    CHECK_THAT(shared, Catch::Contains("cell.duplex"));
    const std::string share = ErrorOf([&] {
        ScenarioConfig::Load(path, {"transport=lte", "cell.ul_share=0.3"});
    });
    CHECK_THAT(share, Catch::Contains("cell.ul_share"));
    const std::string scheduler = ErrorOf([&] {
        ScenarioConfig::Load(path, {"transport=lte", "lte.scheduler=ns3::NoSuch"});
    });
    CHECK_THAT(scheduler, Catch::Contains("ns3::PfFfMacScheduler"));
    CHECK_THAT(scheduler, Catch::Contains("ns3::RrFfMacScheduler"));
    const std::string bytes = ErrorOf([&] {
        ScenarioConfig::Load(path, {"transport=lte", "lte.packet_bytes=12"});
    });
    CHECK_THAT(bytes, Catch::Contains("lte.packet_bytes"));
    CHECK(ErrorOf([&] { ScenarioConfig::Load(path, {"transport=lte"}); }).empty());
}
