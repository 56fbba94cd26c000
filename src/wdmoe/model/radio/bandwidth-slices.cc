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
    if (name == "tdd")
    {
        return DuplexMode::TDD;
    }
    throw std::invalid_argument("unknown duplex mode '" + name + "' (expected shared, fdd or tdd)");
}

std::string
ToString(DuplexMode mode)
{
    switch (mode)
    {
    case DuplexMode::FDD:
        return "fdd";
    case DuplexMode::TDD:
        return "tdd";
    default:
        return "shared";
    }
}

BandPlan
BandPlan::FromConfig(DuplexMode mode, double totalHz, double ulShare)
{
    if (!(totalHz > 0.0) || !std::isfinite(totalHz))
    {
        throw std::invalid_argument("total bandwidth must be a positive number of Hz, got " +
                                    std::to_string(totalHz));
    }
    if (mode == DuplexMode::TDD)
    {
        throw std::invalid_argument("a TDD band plan needs its slot pattern (BandPlan::Tdd)");
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

BandPlan
BandPlan::Tdd(double totalHz, const TddPattern& pattern)
{
    BandPlan band = FromConfig(DuplexMode::SHARED, totalHz, 0.5);
    band.mode = DuplexMode::TDD;
    band.tdd = pattern;
    return band;
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
