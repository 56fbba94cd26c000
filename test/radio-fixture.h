// Helpers of the radio tests: the RNG seed/run guard, a static position, the 128.1 + 37.6
// log10(d) loss.
#ifndef WDMOE_TEST_RADIO_FIXTURE_H
#define WDMOE_TEST_RADIO_FIXTURE_H

#include "ns3/constant-position-mobility-model.h"
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

/// 128.1 + 37.6 log10(d / km), the loss in dB.
inline double
Loss128(double dMeters)
{
    return 128.1 + 37.6 * std::log10(dMeters / 1000.0);
}

} // namespace test
} // namespace wdmoe

#endif
