// The devices of a cell: "devices" as one object (every device alike) or as a list of groups,
// each with its own compute profile, count, transmit power and position, expanded into one
// entry per device in the order of the list.
#ifndef WDMOE_DEVICE_GROUPS_H
#define WDMOE_DEVICE_GROUPS_H

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ns3
{

class JsonConfigReader;

/// One group of alike devices (one entry of "devices" as a list; the object form is one group).
struct DeviceGroup
{
    /// "profile": a profile name, or the path of a profile file (resolved against the config).
    std::string profile = "jetson-agx-orin";
    int count = 1;                  ///< "count": devices in the group, >= 1
    std::optional<double> powerDbm; ///< "power_dbm": transmit power; none: cell.device_power_dbm
    /// "distance_m": every device of the group this far from the BS (horizontally); 0: uniform
    /// in area between minDistanceM and maxDistanceM
    double distanceM = 0;
    /// "angle_deg" (kept in radians): the direction of the group's devices; none: at a fixed
    /// distance, device i of N in the cell at 2 pi i / N, else drawn uniformly
    std::optional<double> angleRad;
    double minDistanceM = 0;      ///< "min_distance_m"; 0: cell.min_distance_m
    double maxDistanceM = 0;      ///< "max_distance_m"; 0: cell.radius_m
    double memoryFraction = 0.75; ///< "memory_fraction": share of device memory for experts
    int storageSlots = 0;         ///< "storage_slots": experts hosted; 0: its memory slots
    bool warmCache = true;        ///< "warm_cache": starts with its placed experts in memory
};

/// One device of the cell as its group makes it, the cell's defaults filled in.
struct CellDevice
{
    int group = 0;                  ///< its group's index in the list (0 for the object form)
    std::string profile;            ///< as DeviceGroup::profile
    double powerDbm = 23;           ///< transmit power
    double distanceM = 0;           ///< fixed distance, or 0: drawn in [minDistanceM, maxDistanceM]
    std::optional<double> angleRad; ///< fixed direction (else as DeviceGroup::angleRad says)
    double minDistanceM = 0;
    double maxDistanceM = 0;
    double memoryFraction = 0.75;
    int storageSlots = 0;
    bool warmCache = true;
};

/// Reads "devices" given as a list (root: the config's top level). Errors name the entry and
/// its field ("devices[1].count"): unknown keys, a missing profile or count, values out of
/// range, distance_m together with a distance range, an empty list, more than 4096 devices.
std::vector<DeviceGroup> ReadDeviceGroups(const JsonConfigReader& root, const nlohmann::json& list);

/// The groups' devices in order, group by group, with cell.device_power_dbm, cell.min_distance_m
/// and cell.radius_m where a group leaves them open.
std::vector<CellDevice> ExpandDeviceGroups(const std::vector<DeviceGroup>& groups,
                                           double devicePowerDbm,
                                           double cellMinDistanceM,
                                           double radiusM);

/// Refuses positions outside the cell, each naming its field ("devices[2].max_distance_m"):
/// a fixed distance or range bound outside [cell.min_distance_m, cell.radius_m], or a range
/// whose minimum is not below its maximum; listField names the list ("devices").
void CheckDeviceGroupPositions(const JsonConfigReader& root,
                               const std::vector<DeviceGroup>& groups,
                               double cellMinDistanceM,
                               double radiusM,
                               const std::string& listField);

/// "2 x smartphone-soc + 1 x jetson-agx-orin": the groups for messages and results.
std::string DeviceGroupsText(const std::vector<DeviceGroup>& groups);

} // namespace ns3

#endif
