// The config fields a wdmoe-run command line changes: --set dotted.key=value, --dotted.key=value
// and the shortcuts --devices, --bandwidthMHz and --RngRun. All of them go through the same
// checked path (ScenarioConfig's sets), and a run with overrides writes, by default, to a folder
// of its own instead of over the plain config's results.
#ifndef WDMOE_RUN_OVERRIDES_H
#define WDMOE_RUN_OVERRIDES_H

#include <string>
#include <vector>

namespace ns3
{

/// One override as given on the command line.
struct RunOverride
{
    std::string option; ///< as written and named in messages: "--devices=16", "--set run=2"
    std::string set;    ///< the ScenarioConfig set: "devices.count=16"
    std::string label;  ///< in the default folder's name: "devices=16", "cell.duplex=fdd"
};

/// The shortcut options and the config field each sets: --devices (devices.count),
/// --bandwidthMHz (cell.bandwidth_mhz), --RngRun (run).
const std::vector<std::pair<std::string, std::string>>& RunShortcuts();

/// Takes every override out of args (args[0], the program, stays), in the order given; what is
/// left is for ns-3's CommandLine. A "--set" without a value is left for it to refuse.
std::vector<RunOverride> TakeRunOverrides(std::vector<std::string>& args);

/// The sets of the overrides, for ScenarioConfig::Load and PolicyComparison::Load.
std::vector<std::string> OverrideSets(const std::vector<RunOverride>& overrides);

/// Where a run writes without --outDir: results/<config name>/ without overrides, else
/// results/<config name>+<label>+<label>... (characters outside [A-Za-z0-9._=-] as '_'; a name
/// over 150 characters ends in a hash of the whole), so that `--devices=16` does not overwrite
/// the results of the config as written.
std::string DefaultRunDirectory(const std::string& configPath,
                                const std::vector<RunOverride>& overrides);

/// message, followed by "(set by <option>)" for every override whose field it names
/// (field "devices.count"): the field's value came from the command line, not the file.
std::string NameOverridesIn(const std::string& message, const std::vector<RunOverride>& overrides);

} // namespace ns3

#endif
