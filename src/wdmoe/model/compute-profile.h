// Compute and memory profile of one device or of the base station: the numbers the roofline
// cost of an expert (or of attention) and the storage load time of an expert are priced with.
#ifndef WDMOE_COMPUTE_PROFILE_H
#define WDMOE_COMPUTE_PROFILE_H

#include <string>

namespace ns3
{

/// A device's (or the base station's) accelerator, memory and storage, in SI units. Profiles
/// live in configs/profiles/<name>.json; helper/profile-reader.h reads and finds them.
struct ComputeProfile
{
    std::string name;
    double peakFlops = 0;            ///< dense FP16/BF16 matrix FLOP/s
    double memoryBandwidth = 0;      ///< B/s
    double memoryBytes = 0;          ///< total memory, bytes
    double storageReadBandwidth = 0; ///< sequential read of the expert storage, B/s
    double computeEfficiency = 1;    ///< fraction of peakFlops achieved, (0, 1]
    double memoryEfficiency = 1;     ///< fraction of memoryBandwidth achieved, (0, 1]
    // Energy (optional in a profile file; all four or none, HasEnergy).
    double activePowerW = 0;  ///< drawn while computing or loading an expert from storage, W
    double idlePowerW = 0;    ///< drawn while on and doing neither, W
    double paEfficiency = 0;  ///< transmit power over the power amplifier's draw, (0, 1]
    double radioRxPowerW = 0; ///< drawn by the radio while it receives, W
    std::string description;  ///< free text from the profile file (may be empty)

    /// Roofline time of a kernel doing `flops` FLOPs over `bytes` bytes of memory traffic:
    /// max(flops / (computeEfficiency * peakFlops), bytes / (memoryEfficiency * memoryBandwidth)).
    double RooflineSeconds(double flops, double bytes) const;
    /// True when the compute term of RooflineSeconds is the larger one.
    bool IsComputeBound(double flops, double bytes) const;
    /// Time to read `bytes` from storage: bytes / storageReadBandwidth.
    double StorageLoadSeconds(double bytes) const;

    /// True when the profile gives its powers (energy can be modelled on it).
    bool HasEnergy() const { return paEfficiency > 0; }
};

} // namespace ns3

#endif
