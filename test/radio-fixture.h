// Helpers of the radio tests: the RNG seed/run guard, a static position, the 128.1 + 37.6
// log10(d) loss.
#ifndef WDMOE_TEST_RADIO_FIXTURE_H
#define WDMOE_TEST_RADIO_FIXTURE_H

#include "wdmoe-channel.h"

#include "ns3/boolean.h"
#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/pointer.h"
#include "ns3/rng-seed-manager.h"

#include <cmath>

namespace wdmoe
{
namespace test
{

/// Restores seed 1 / run 1 on entry and on exit of a test that depends on them.
struct RngGuard
{
    RngGuard()
    {
        ns3::RngSeedManager::SetSeed(1);
        ns3::RngSeedManager::SetRun(1);
    }

    ~RngGuard()
    {
        ns3::RngSeedManager::SetSeed(1);
        ns3::RngSeedManager::SetRun(1);
    }
};

inline ns3::Ptr<ns3::MobilityModel>
At(double x, double y, double z)
{
    ns3::Ptr<ns3::ConstantPositionMobilityModel> m =
        ns3::CreateObject<ns3::ConstantPositionMobilityModel>();
    m->SetPosition(ns3::Vector(x, y, z));
    return m;
}

/// A channel with the 128.1/37.6 loss, no shadowing and no fading, a 20 MHz band, the BS at the
/// origin and one device d metres away; the caller assigns its streams.
inline ns3::Ptr<ns3::WdmoeChannel>
StaticOneDeviceChannel(double d)
{
    ns3::Ptr<ns3::WdmoeChannel> ch = ns3::CreateObject<ns3::WdmoeChannel>();
    ch->SetAttribute("PropagationLossModel",
                     ns3::PointerValue(ns3::WdmoeChannel::CreateLogDistance128()));
    ch->SetAttribute("ShadowingSigmaDb", ns3::DoubleValue(0.0));
    ch->SetAttribute("FadingEnabled", ns3::BooleanValue(false));
    ch->SetAttribute("TotalBandwidth", ns3::DoubleValue(20e6));
    ch->SetBs(At(0, 0, 0));
    ch->AddDevice(At(d, 0, 0));
    return ch;
}

/// 128.1 + 37.6 log10(d / km), the loss in dB.
inline double
Loss128(double dMeters)
{
    return 128.1 + 37.6 * std::log10(dMeters / 1000.0);
}

/// The large-scale SNR rho (no fading) of a device at d metres on a slice of hz, by hand, with
/// the channel's defaults: downlink 43 dBm spread over 20 MHz at constant PSD, device noise
/// figure 7 dB; uplink 23 dBm, BS noise figure 5 dB; -174 dBm/Hz; the 128.1/37.6 loss.
inline double
HandSnr(double d, ns3::WdmoeChannel::Direction dir, double hz)
{
    const double totalHz = 20e6;             // the channel's default TotalBandwidth
    const double n0 = std::pow(10.0, -17.4); // mW/Hz
    const double g = std::pow(10.0, -Loss128(d) / 10.0);
    if (dir == ns3::WdmoeChannel::DOWNLINK)
    {
        return std::pow(10.0, 4.3) * g / (n0 * std::pow(10.0, 0.7) * totalHz);
    }
    return std::pow(10.0, 2.3) * g / (n0 * std::pow(10.0, 0.5) * hz);
}

} // namespace test
} // namespace wdmoe

#endif
