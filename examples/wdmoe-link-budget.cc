// Example: the link budget of a wdmoe cell, and what it means for one expert call.
//
// A base station (BS, 25 m high) and a few devices (1.5 m high) at given horizontal distances
// share a WdmoeChannel (DESIGN.md section 4). For every device the program prints the path
// gain, the downlink and uplink SNR and Shannon rate on an equal slice of the band, the time
// to carry one Mixtral-8x7B hidden state each way, and one Mixtral expert's compute time on a
// Jetson AGX Orin: the three parts of a decode step's expert round trip.
//
// Fading is off by default (|h|^2 = 1), so the numbers are the mean link budget; shadowing
// (the 3GPP model's own, or 8 dB log-normal with --propagation=log) is on.
//
//   build/bin/wdmoe-link-budget [--propagation=3gpp|log] [--bandwidthMHz=100]
//                               [--distances=50,150,300,500] [--fading=false]
//                               [--profiles=configs/profiles] [--RngRun=1]

#include "ns3/compute-profile.h"
#include "ns3/core-module.h"
#include "ns3/cost-model.h"
#include "ns3/mobility-module.h"
#include "ns3/network-module.h"
#include "ns3/profile-reader.h"
#include "ns3/wdmoe-channel.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

using namespace ns3;

NS_LOG_COMPONENT_DEFINE("WdmoeLinkBudget");

namespace
{

/// Parses "50,150,300" into distances in metres.
std::vector<double>
ParseDistances(const std::string& list)
{
    std::vector<double> distances;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ','))
    {
        const double d = std::stod(item);
        NS_ABORT_MSG_UNLESS(d > 0, "--distances: every distance must be positive, got " << item);
        distances.push_back(d);
    }
    NS_ABORT_MSG_IF(distances.empty(), "--distances: give at least one distance");
    return distances;
}

double
ToDb(double linear)
{
    return 10 * std::log10(linear);
}

} // namespace

int
main(int argc, char** argv)
{
    std::string propagation = "3gpp";
    double bandwidthMhz = 100;
    std::string distanceList = "50,150,300,500";
    bool fading = false;
    std::string profilesDir = "configs/profiles";

    CommandLine cmd(__FILE__);
    cmd.Usage("Prints the link budget of a few devices of a wdmoe cell and the time of one "
              "Mixtral-8x7B expert call over it (run from the repository root).");
    cmd.AddValue("propagation",
                 "path loss: 3gpp (UMa, 3.5 GHz) or log (128.1+37.6log10)",
                 propagation);
    cmd.AddValue("bandwidthMHz", "whole band, split equally among the devices", bandwidthMhz);
    cmd.AddValue("distances", "comma-separated BS-device horizontal distances (m)", distanceList);
    cmd.AddValue("fading", "draw Rayleigh block fading (false: mean link budget)", fading);
    cmd.AddValue("profiles", "folder of the compute profiles", profilesDir);
    cmd.Parse(argc, argv);

    NS_ABORT_MSG_UNLESS(propagation == "3gpp" || propagation == "log",
                        "--propagation must be 3gpp or log, got " << propagation);
    NS_ABORT_MSG_UNLESS(bandwidthMhz > 0, "--bandwidthMHz must be positive");
    const std::vector<double> distances = ParseDistances(distanceList);
    const double totalHz = bandwidthMhz * 1e6;

    // Nodes with fixed positions. The 3GPP loss model keys its caches by node id, so each
    // mobility model is aggregated to a Node; the taller end (25 m) is the BS.
    Ptr<Node> bs = CreateObject<Node>();
    Ptr<ConstantPositionMobilityModel> bsMobility = CreateObject<ConstantPositionMobilityModel>();
    bsMobility->SetPosition(Vector(0, 0, 25));
    bs->AggregateObject(bsMobility);
    NodeContainer devices;
    devices.Create(distances.size());
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        Ptr<ConstantPositionMobilityModel> m = CreateObject<ConstantPositionMobilityModel>();
        m->SetPosition(Vector(distances[i], 0, 1.5));
        devices.Get(i)->AggregateObject(m);
    }

    // The channel: loss model and attributes first, then the BS and the devices, then streams.
    Ptr<WdmoeChannel> channel = CreateObject<WdmoeChannel>();
    channel->SetAttribute("PropagationLossModel",
                          PointerValue(propagation == "3gpp"
                                           ? WdmoeChannel::CreateThreeGppUma(3.5e9)
                                           : WdmoeChannel::CreateLogDistance128()));
    channel->SetAttribute("TotalBandwidth", DoubleValue(totalHz));
    channel->SetAttribute("FadingEnabled", BooleanValue(fading));
    channel->SetBs(bsMobility);
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        channel->AddDevice(devices.Get(i)->GetObject<MobilityModel>());
    }
    channel->AssignStreams(0); // fixed streams: --RngRun alone changes the draws

    // What is priced: one Mixtral-8x7B decode token (a hidden state each way, one expert).
    const CostModel mixtral = CostModel::Mixtral8x7B();
    ComputeProfile orin;
    try
    {
        orin = LoadComputeProfile({profilesDir}, "jetson-agx-orin");
    }
    catch (const std::exception& e) // a missing folder or a bad profile file
    {
        std::fprintf(stderr, "wdmoe-link-budget: %s\n", e.what());
        return 1;
    }
    const double bits = mixtral.HiddenStateBits(1);
    const double computeMs = mixtral.ExpertSeconds(orin, 1) * 1e3;
    const double sliceHz = totalHz / devices.GetN(); // EqualBandwidthSlices(totalHz, n)[i]
    NS_LOG_INFO("slice " << sliceHz << " Hz, hidden state " << bits << " bits");

    std::printf("%s path loss, %.1f MHz shared equally by %u device%s (%.2f MHz each)%s\n",
                propagation == "3gpp" ? "3GPP UMa 3.5 GHz" : "128.1+37.6log10(d/km)",
                bandwidthMhz,
                devices.GetN(),
                devices.GetN() == 1 ? "" : "s",
                sliceHz / 1e6,
                fading ? ", Rayleigh fading of the first block" : ", no fading");
    std::printf("one hidden state = %.0f bits; one expert on %s = %.3f ms\n\n",
                bits,
                orin.name.c_str(),
                computeMs);
    std::printf("%6s %9s %8s %9s %8s %9s %8s %8s %8s %9s\n",
                "dev",
                "dist(m)",
                "gain_dB",
                "dlSNR_dB",
                "dl_Mbps",
                "ulSNR_dB",
                "ul_Mbps",
                "dl_ms",
                "ul_ms",
                "trip_ms");
    const Time now = Seconds(0);
    for (uint32_t i = 0; i < devices.GetN(); ++i)
    {
        const double dlRate = channel->DownlinkRate(i, sliceHz, now);
        const double ulRate = channel->UplinkRate(i, sliceHz, now);
        const double dlMs = bits / dlRate * 1e3;
        const double ulMs = bits / ulRate * 1e3;
        std::printf("%6u %9.0f %8.1f %9.1f %8.1f %9.1f %8.1f %8.3f %8.3f %9.3f\n",
                    i,
                    distances[i],
                    channel->PathGainDb(i),
                    ToDb(channel->DownlinkSnr(i, sliceHz, now)),
                    dlRate / 1e6,
                    ToDb(channel->UplinkSnr(i, sliceHz, now)),
                    ulRate / 1e6,
                    dlMs,
                    ulMs,
                    dlMs + computeMs + ulMs);
    }
    std::printf("\ntrip = downlink + expert compute + uplink (no queueing, expert in memory)\n");

    Simulator::Destroy();
    return 0;
}
