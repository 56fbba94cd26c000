// Compute and memory profile of one device or of the base station: the numbers the roofline
// cost of an expert (or of attention) and the storage load time of an expert are priced with.
#ifndef WDMOE_COMPUTE_PROFILE_H
#define WDMOE_COMPUTE_PROFILE_H

#include <string>
#include <vector>

namespace ns3
{

class JsonConfigReader;

/// A device's (or the base station's) accelerator, memory and storage, in SI units.
/// Profiles live in configs/profiles/<name>.json with the fields (units in the names)
/// "name", "description", "peak_flops" (FLOP/s), "memory_bandwidth_gbps" (GB/s),
/// "memory_gb" (GB), "storage_read_gbps" (GB/s), "compute_efficiency",
/// "memory_efficiency" (fractions in (0, 1]) and "sources" (field name -> citation).
/// GB/s and GB are converted to B/s and bytes (x 1e9) when a profile is read.
struct ComputeProfile
{
    std::string name;
    double peakFlops = 0;            ///< dense FP16/BF16 matrix FLOP/s
    double memoryBandwidth = 0;      ///< B/s
    double memoryBytes = 0;          ///< total memory, bytes
    double storageReadBandwidth = 0; ///< sequential read of the expert storage, B/s
    double computeEfficiency = 1;    ///< fraction of peakFlops achieved, (0, 1]
    double memoryEfficiency = 1;     ///< fraction of memoryBandwidth achieved, (0, 1]
    std::string description;         ///< free text from the profile file (may be empty)

    /// Roofline time of a kernel doing `flops` FLOPs over `bytes` bytes of memory traffic:
    /// max(flops / (computeEfficiency * peakFlops), bytes / (memoryEfficiency * memoryBandwidth)).
    double RooflineSeconds(double flops, double bytes) const;
    /// True when the compute term of RooflineSeconds is the larger one.
    bool IsComputeBound(double flops, double bytes) const;
    /// Time to read `bytes` from storage: bytes / storageReadBandwidth.
    double StorageLoadSeconds(double bytes) const;

    /// Reads a profile from one object of a config: the top level of a profile file or an
    /// inline profile inside a scenario. Every numeric field and "name" are required and
    /// range-checked; "description" (a string) and "sources" (an object mapping numeric field
    /// names to strings) are optional; unknown keys are rejected. Errors are JsonConfigError
    /// naming the file and the dotted field.
    static ComputeProfile FromConfig(const JsonConfigReader& r);
    /// Reads a profile file (see FromConfig).
    static ComputeProfile Load(const std::string& path);
    /// Reads <profilesDir>/<name>.json and checks that its "name" is `name`. An unknown name
    /// is a JsonConfigError listing the available profiles.
    static ComputeProfile LoadByName(const std::string& profilesDir, const std::string& name);
    /// The profile names (file stems of *.json) in profilesDir, sorted.
    static std::vector<std::string> AvailableNames(const std::string& profilesDir);

    /// The numeric JSON field names, in file order (for checks that each has a source).
    static const std::vector<std::string>& NumericFieldNames();
};

} // namespace ns3

#endif
