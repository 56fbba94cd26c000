// Compute profiles (model/compute-profile.h) from JSON files, and where a profile name is looked
// up: the config's own profiles folder, then the project's configs/profiles.
#ifndef WDMOE_PROFILE_READER_H
#define WDMOE_PROFILE_READER_H

#include "compute-profile.h"

#include <string>
#include <vector>

namespace ns3
{

class JsonConfigReader;

/// Reads a profile from one object of a config: the top level of a profile file or an inline
/// profile inside a scenario. Fields (units in the names): "name", "description",
/// "peak_flops" (FLOP/s), "memory_bandwidth_gbps" (GB/s), "memory_gb" (GB),
/// "storage_read_gbps" (GB/s), "compute_efficiency", "memory_efficiency" (fractions in (0, 1])
/// and "sources" (field name -> citation). Every numeric field and "name" are required and
/// range-checked; "description" and "sources" (an object mapping numeric field names to
/// strings) are optional; unknown keys are rejected. GB/s and GB become B/s and bytes (x 1e9).
/// Errors are JsonConfigError naming the file and the dotted field.
ComputeProfile ReadComputeProfile(const JsonConfigReader& r);
/// Reads a profile file (see ReadComputeProfile).
ComputeProfile LoadComputeProfile(const std::string& path);
/// The numeric JSON field names, in file order (for checks that each has a source).
const std::vector<std::string>& ComputeProfileNumericFields();
/// The optional energy fields (all or none): "active_power_w", "idle_power_w" (W),
/// "pa_efficiency" (in (0, 1]), "radio_rx_power_w" (W); their sources may be cited too.
const std::vector<std::string>& ComputeProfileEnergyFields();

/// The profile names (file stems of *.json) in folder, sorted; none when it cannot be read.
std::vector<std::string> ComputeProfileNames(const std::string& folder);
/// The project's configs/profiles folder (of the source tree the module was built from).
std::string ProjectProfilesFolder();
/// Where a config's profile names are looked up, in order: "profiles" beside the config file,
/// then ProjectProfilesFolder() (once when both are the same folder).
std::vector<std::string> ProfileFolders(const std::string& configFile);
/// The file of a profile: nameOrPath ending in ".json" is the path of a profile file (returned
/// when it is a file); otherwise <folder>/<name>.json in the first of folders that has it. ""
/// when there is none.
std::string FindComputeProfile(const std::vector<std::string>& folders,
                               const std::string& nameOrPath);
/// Where FindComputeProfile looked, for messages: "A (available: x, y), B (none)", or "no
/// file <path>" for a path.
std::string ProfileSearchText(const std::vector<std::string>& folders,
                              const std::string& nameOrPath);
/// A profile field of a config (bs.profile, devices.profile, devices[i].profile): r's key, else
/// fallback; a value ending in ".json" is a path, made relative to root's file.
std::string ReadProfileField(const JsonConfigReader& root,
                             const JsonConfigReader& r,
                             const std::string& key,
                             const std::string& fallback);
/// The profile FindComputeProfile finds, read; one found by name must carry that "name". A
/// profile found nowhere is a JsonConfigError listing every place looked in and what each has.
ComputeProfile LoadComputeProfile(const std::vector<std::string>& folders,
                                  const std::string& nameOrPath);

} // namespace ns3

#endif
