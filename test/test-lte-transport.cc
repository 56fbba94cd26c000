// The LTE transport (real ns-3 LTE packets): one transfer each way through LteTransport alone,
// a scenario on it against the closed-form link, and the config checks of "transport": "lte".
#include "error-message.h"
#include "lte-transport.h"
#include "run-scenario.h"
#include "scenario-fixture.h"
#include "uplink-power-aware-scheduler.h"

#include "ns3/boolean.h"
#include "ns3/config.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/lte-amc.h"
#include "ns3/node-container.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

/// Creates the BS node (25 m up, at the origin) and one device node at (x, 0, 1.5), each with a
/// fixed position.
void
PlaceOneDeviceCell(NodeContainer& bs, NodeContainer& devices, double x)
{
    bs.Create(1);
    devices.Create(1);
    Ptr<MobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bs.Get(0)->AggregateObject(bsMobility);
    Ptr<MobilityModel> deviceMobility = CreateObject<ConstantPositionMobilityModel>();
    deviceMobility->SetPosition(Vector(x, 0, 1.5));
    devices.Get(0)->AggregateObject(deviceMobility);
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
    PlaceOneDeviceCell(bs, devices, 150);

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

TEST_CASE("lte transport: a power-limited UE's uplink allocation, by hand", "[lte]")
{
    using A = UplinkPowerAwareScheduler;
    Ptr<LteAmc> amc = CreateObject<LteAmc>();
    // ns-3's schedulers: CQI 1 once log2(1 + SINR / gap) exceeds LteAmc's 0.15, gap =
    // -ln(5e-5 * 5) / 1.5 = 5.529: SINR > (2^0.15 - 1) * 5.529 = 0.6059, -2.176 dB.
    CHECK(A::CqiOf(-2.17, amc) == 1);
    CHECK(A::CqiOf(-2.18, amc) == 0);
    // Sounded at -16.625 dB on 100 blocks: 3 blocks give -16.625 + 10 log10(100 / 3) =
    // -1.396 dB (CQI 1), 4 blocks -2.645 dB (CQI 0): 3 is the only allocation.
    const A::Allocation edge = A::BestAllocation(-16.625, 100, 1e9, amc);
    CHECK(edge.resourceBlocks == 3);
    CHECK(edge.sinrDb == Approx(-16.625 + 10 * std::log10(100.0 / 3)).margin(1e-9));
    // -20 dB: even 3 blocks give -4.77 dB, CQI 0: out of uplink coverage.
    CHECK(A::BestAllocation(-20, 100, 1e9, amc).resourceBlocks == 0);
    // 30 dB, not power-limited (the open-loop target 36 dB caps nothing it does not reach):
    // CQI 15 on every allocation, so the widest: all 100 blocks, no gain.
    const A::Allocation strong = A::BestAllocation(30, 100, 36, amc);
    CHECK(strong.resourceBlocks == 100);
    CHECK(strong.sinrDb == 30);
}

namespace
{

/// One UE 480 m from the BS on the 3GPP UMa loss at 3.5 GHz, 20 MHz; uplink transfers of 3000
/// bytes at 0.5 s (the first sounding reports are long in); the stall watchdog after 2 s.
struct EdgeRun
{
    bool arrived = false;
    bool stalled = false;
    std::vector<uint16_t> blocks; ///< the allocations the sounding reports sized

    static void OnUp(EdgeRun* run) { run->arrived = true; }

    static void OnAllocation(EdgeRun* run, uint16_t, uint16_t blocks, double)
    {
        run->blocks.push_back(blocks);
    }
};

EdgeRun
RunEdge(bool powerAware)
{
    RngSeedManager::SetSeed(1);
    RngSeedManager::SetRun(1);
    NodeContainer bs;
    NodeContainer devices;
    PlaceOneDeviceCell(bs, devices, 480);
    EdgeRun run;
    Ptr<LteTransport> lte = CreateObject<LteTransport>();
    lte->SetAttribute("PowerAwareUplink", BooleanValue(powerAware));
    lte->SetAttribute("StallTimeout", TimeValue(Seconds(2)));
    lte->UseThreeGppUma(3.5e9);
    lte->Install(bs.Get(0), devices);
    lte->AssignStreams(0);
    Config::ConnectWithoutContextFailSafe(
        "/NodeList/*/DeviceList/*/ComponentCarrierMap/*/FfMacScheduler/$ns3::"
        "UplinkPowerAwareScheduler/Allocation",
        MakeBoundCallback(&EdgeRun::OnAllocation, &run));
    Simulator::Schedule(Seconds(0.5),
                        &LteTransport::Send,
                        lte,
                        0,
                        ExpertTransport::UPLINK,
                        8.0 * kAnswerBytes,
                        MakeBoundCallback(&EdgeRun::OnUp, &run));
    Simulator::Stop(Seconds(6));
    Simulator::Run();
    run.stalled = lte->Stalled();
    Simulator::Destroy();
    return run;
}

} // namespace

TEST_CASE("lte transport: a cell-edge UE on 3GPP UMa is granted the uplink it can carry", "[lte]")
{
    const EdgeRun plain = RunEdge(false);
    // ns-3's scheduler alone never grants it: the watchdog stops the run.
    CHECK_FALSE(plain.arrived);
    CHECK(plain.stalled);
    CHECK(plain.blocks.empty());

    const EdgeRun aware = RunEdge(true);
    CHECK(aware.arrived);
    CHECK_FALSE(aware.stalled);
    // Every sounding sized an allocation narrower than the carrier but not empty: the UE is
    // power-limited and in coverage.
    REQUIRE_FALSE(aware.blocks.empty());
    for (uint16_t b : aware.blocks)
    {
        CHECK(b >= 3);
        CHECK(b < 100);
    }
}

TEST_CASE("lte transport: the default cell's geometry at the edge runs to the end", "[lte]")
{
    // Two devices at 480 m on the 3GPP UMa loss at 3.5 GHz, two layers, two tokens.
    wdmoe::test::ScenarioFixture f(2);
    f.config["transport"] = "lte";
    f.config["workload"]["prompt_tokens"] = 2;
    f.config["workload"]["scored_tokens"] = 2;
    f.config["devices"]["count"] = 2;
    f.config["cell"]["duplex"] = "fdd";
    f.config["cell"]["propagation"] = "3gpp-uma";
    f.config["cell"]["carrier_ghz"] = 3.5;
    f.config["cell"]["min_distance_m"] = 480;
    f.config["cell"]["radius_m"] = 480.000001;
    f.config["cell"].erase("shadowing_sigma_db");
    const ScenarioResult r = RunScenario(ScenarioConfig::Load(f.Write()));
    CHECK(r.summary["tokens_scored"] == 2);
    CHECK(r.summary["lte"]["transfers_pending_at_end"] == 0);
    CHECK(r.summary["lte"]["uplink"]["transfers"].get<int>() > 0);
}

namespace
{

std::string
ReadAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The first four bytes as ns-3 writes them: the pcap magic number in the host's byte order.
uint32_t
MagicOf(const std::string& bytes)
{
    uint32_t magic = 0;
    std::memcpy(&magic, bytes.data(), std::min<std::size_t>(4, bytes.size()));
    return magic;
}

} // namespace

/// Runs the fixture's config as wdmoe run does with trace files: into folder/lte-traces.partial,
/// then the results written into folder (which renames it to folder/lte-traces).
ScenarioResult
RunTracedInto(LteFixture& f, const std::string& folder)
{
    ScenarioConfig config = ScenarioConfig::Load(f.Write());
    config.traceDir = f.dir.File(folder + "/lte-traces.partial");
    const ScenarioResult result = RunScenario(config);
    WriteScenarioResult(result, f.dir.File(folder));
    return result;
}

/// Sum of column `column` over the data bearer's rows (LCID 3) of one of ns-3's RLC/PDCP
/// statistics files (tab-separated, a header line starting with '%').
uint64_t
SumOfDataBearer(const std::string& path, std::size_t column)
{
    std::ifstream in(path);
    REQUIRE(in.good());
    std::string line;
    std::getline(in, line);
    REQUIRE(line.rfind("% start", 0) == 0);
    uint64_t sum = 0;
    while (std::getline(in, line))
    {
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string x; fields >> x;)
        {
            f.push_back(x);
        }
        REQUIRE(f.size() > column);
        if (f[5] == "3")
        {
            sum += std::stoull(f[column]);
        }
    }
    return sum;
}

TEST_CASE("lte transport: lte.stats writes ns-3's LTE statistics, one PDCP PDU per datagram",
          "[lte]")
{
    LteFixture f;
    f.config["transport"] = "lte";
    const ScenarioResult plain = RunScenario(ScenarioConfig::Load(f.Write()));
    f.config["lte"]["stats"] = true;
    const ScenarioResult traced = RunTracedInto(f, "stats");
    CHECK(traced.tokensCsv == plain.tokensCsv);
    const std::string dir = f.dir.File("stats/lte-traces/");
    for (const std::string& name : LteTransport::StatsFiles())
    {
        INFO(name);
        CHECK(std::filesystem::file_size(dir + name) > 0);
    }
    // Every datagram of a direction is one PDCP SDU on the data bearer (columns: start, end,
    // cell, IMSI, RNTI, LCID, nTxPDUs, TxBytes, nRxPDUs, ...), over all the epochs.
    const auto& lte = traced.summary["lte"];
    CHECK(SumOfDataBearer(dir + "DlPdcpStats.txt", 8) ==
          lte["downlink"]["datagrams"].get<uint64_t>());
    CHECK(SumOfDataBearer(dir + "UlPdcpStats.txt", 8) ==
          lte["uplink"]["datagrams"].get<uint64_t>());
    CHECK(traced.summary["lte"]["trace_files"].size() == LteTransport::StatsFiles().size());
}

TEST_CASE("lte transport: lte.pcap and lte.netanim write the cell's traces, and only then", "[lte]")
{
    LteFixture f;
    f.config["transport"] = "lte";
    const ScenarioResult plain = RunScenario(ScenarioConfig::Load(f.Write()));
    CHECK(plain.traceFiles.empty());
    CHECK_FALSE(plain.summary["lte"].contains("trace_files"));
    WriteScenarioResult(plain, f.dir.File("plain"));
    CHECK_FALSE(std::filesystem::exists(f.dir.File("plain/lte-traces")));

    f.config["lte"]["pcap"] = true;
    f.config["lte"]["netanim"] = true;
    const ScenarioResult traced = RunTracedInto(f, "traced");
    // The files watch the run without changing it.
    CHECK(traced.tokensCsv == plain.tokensCsv);
    CHECK_FALSE(std::filesystem::exists(f.dir.File("traced/lte-traces.partial")));
    const std::string dir = f.dir.File("traced/lte-traces/");
    CHECK(traced.summary["lte"]["trace_files"].size() == traced.traceFiles.size());
    // 24-byte global header, then 16 bytes per packet record and its (at most 128) bytes.
    const uint32_t magic = 0xa1b2c3d4;
    for (const char* name : {"ue0.pcap",
                             "ue1.pcap",
                             "ue2.pcap",
                             "pgw-edge.pcap",
                             "edge-pgw.pcap",
                             "enb-sgw.pcap",
                             "sgw-pgw.pcap"})
    {
        INFO(name);
        const std::string bytes = ReadAll(dir + name);
        CHECK(MagicOf(bytes) == magic);
        CHECK(bytes.size() > 24 + 16);
    }
    // Every datagram crossed the edge link: at least one 16-byte record per datagram.
    const uint64_t datagrams = traced.summary["lte"]["downlink"]["datagrams"].get<uint64_t>() +
                               traced.summary["lte"]["uplink"]["datagrams"].get<uint64_t>();
    CHECK(ReadAll(dir + "pgw-edge.pcap").size() >= 24 + datagrams * 16);
    const std::string xml = ReadAll(dir + "netanim.xml");
    REQUIRE(xml.find("<anim") != std::string::npos);
    CHECK(xml.rfind("</anim>") != std::string::npos);
    CHECK(xml.find("<anim") < xml.find("<node"));
    CHECK(xml.find("descr=\"enb\"") != std::string::npos);
    CHECK(xml.find("descr=\"ue2\"") != std::string::npos);

    // Without a folder from the program, the options are refused.
    const std::string none = ErrorOf([&] { RunScenario(ScenarioConfig::Load(f.Write())); });
    CHECK_THAT(none, Catch::Contains("lte.pcap, lte.netanim and lte.stats need a folder"));
}
