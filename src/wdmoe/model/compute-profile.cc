#include "compute-profile.h"

#include <algorithm>

namespace ns3
{

double
ComputeProfile::RooflineSeconds(double flops, double bytes) const
{
    const double compute = flops / (computeEfficiency * peakFlops);
    const double memory = bytes / (memoryEfficiency * memoryBandwidth);
    return std::max(compute, memory);
}

bool
ComputeProfile::IsComputeBound(double flops, double bytes) const
{
    return flops / (computeEfficiency * peakFlops) > bytes / (memoryEfficiency * memoryBandwidth);
}

double
ComputeProfile::StorageLoadSeconds(double bytes) const
{
    return bytes / storageReadBandwidth;
}

} // namespace ns3
