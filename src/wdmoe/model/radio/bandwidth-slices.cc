#include "bandwidth-slices.h"

#include <cmath>
#include <stdexcept>

namespace ns3
{

DuplexMode
DuplexModeFromString(const std::string& name)
{
    if (name == "shared")
    {
        return DuplexMode::SHARED;
    }
    if (name == "fdd")
    {
        return DuplexMode::FDD;
    }
    throw std::invalid_argument("unknown duplex mode '" + name + "' (expected shared or fdd)");
}

std::string
ToString(DuplexMode mode)
{
    return mode == DuplexMode::FDD ? "fdd" : "shared";
}

BandPlan
BandPlan::FromConfig(DuplexMode mode, double totalHz, double ulShare)
{
    if (!(totalHz > 0.0) || !std::isfinite(totalHz))
    {
        throw std::invalid_argument("total bandwidth must be a positive number of Hz, got " +
                                    std::to_string(totalHz));
    }
    if (mode == DuplexMode::SHARED)
    {
        return BandPlan{mode, totalHz, totalHz};
    }
    if (!(ulShare > 0.0 && ulShare < 1.0))
    {
        throw std::invalid_argument("FDD uplink share must lie in (0, 1), got " +
                                    std::to_string(ulShare));
    }
    const double ulHz = totalHz * ulShare;
    return BandPlan{mode, totalHz - ulHz, ulHz};
}

std::vector<double>
EqualBandwidthSlices(double totalHz, uint32_t devices)
{
    if (!(totalHz >= 0.0) || !std::isfinite(totalHz))
    {
        throw std::invalid_argument("bandwidth pool must be a non-negative number of Hz, got " +
                                    std::to_string(totalHz));
    }
    if (devices == 0)
    {
        return {};
    }
    return std::vector<double>(devices, totalHz / devices);
}

} // namespace ns3
