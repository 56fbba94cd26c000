#include "device-groups.h"

#include "json-config.h"
#include "profile-reader.h"

#include <cmath>
#include <sstream>

namespace ns3
{

namespace
{

/// The most devices a cell may have (as "devices.count").
constexpr long long kMaxDevices = 4096;

DeviceGroup
ReadGroup(const JsonConfigReader& root, const JsonConfigReader& g)
{
    g.AllowOnly({"profile",
                 "count",
                 "power_dbm",
                 "distance_m",
                 "angle_deg",
                 "min_distance_m",
                 "max_distance_m",
                 "memory_fraction",
                 "storage_slots",
                 "warm_cache"});
    for (const char* required : {"profile", "count"})
    {
        if (!g.Has(required))
        {
            g.Fail(required, "is required in each group of the \"devices\" list");
        }
    }
    DeviceGroup group;
    group.profile = ReadProfileField(root, g, "profile", "");
    group.count = int(g.Integer("count", 1, 1, kMaxDevices));
    if (g.Has("power_dbm"))
    {
        group.powerDbm = g.Number("power_dbm", 23, -30, 60);
    }
    group.distanceM = g.Number("distance_m", 0, 1, 1e5);
    if (g.Has("angle_deg"))
    {
        group.angleRad = g.Number("angle_deg", 0, 0, 360) * M_PI / 180.0;
    }
    group.minDistanceM = g.Number("min_distance_m", 0, 1, 1e5);
    group.maxDistanceM = g.Number("max_distance_m", 0, 1, 1e5);
    if (g.Has("distance_m") && (g.Has("min_distance_m") || g.Has("max_distance_m")))
    {
        g.Fail("distance_m",
               "is a fixed distance: give it or a range (min_distance_m, max_distance_m), not "
               "both");
    }
    group.memoryFraction = g.Number("memory_fraction", 0.75, 0, 1);
    group.storageSlots = int(g.Integer("storage_slots", 0, 0, 1 << 20));
    group.warmCache = g.Bool("warm_cache", true);
    return group;
}

/// Fails field of root unless lo <= value <= hi (the cell's annulus).
void
CheckInCell(const JsonConfigReader& root,
            const std::string& field,
            double value,
            double lo,
            double hi)
{
    if (value < lo || value > hi)
    {
        std::ostringstream got;
        got << "must be in [cell.min_distance_m, cell.radius_m] = [" << lo << ", " << hi
            << "] m, got " << value;
        root.Fail(field, got.str());
    }
}

} // namespace

std::vector<DeviceGroup>
ReadDeviceGroups(const JsonConfigReader& root, const nlohmann::json& list)
{
    if (list.empty())
    {
        root.Fail("devices", "as a list needs at least one group {\"profile\": ..., \"count\": N}");
    }
    std::vector<DeviceGroup> groups;
    long long total = 0;
    for (std::size_t i = 0; i < list.size(); ++i)
    {
        const JsonConfigReader g(root.File(), list[i], "devices[" + std::to_string(i) + "]");
        groups.push_back(ReadGroup(root, g));
        total += groups.back().count;
        if (total > kMaxDevices)
        {
            g.Fail("count",
                   "makes the cell " + std::to_string(total) + " devices; at most " +
                       std::to_string(kMaxDevices) + " in all");
        }
    }
    return groups;
}

std::vector<CellDevice>
ExpandDeviceGroups(const std::vector<DeviceGroup>& groups,
                   double devicePowerDbm,
                   double cellMinDistanceM,
                   double radiusM)
{
    std::vector<CellDevice> devices;
    for (std::size_t g = 0; g < groups.size(); ++g)
    {
        const DeviceGroup& group = groups[g];
        CellDevice d;
        d.group = int(g);
        d.profile = group.profile;
        d.powerDbm = group.powerDbm.value_or(devicePowerDbm);
        d.distanceM = group.distanceM;
        d.angleRad = group.angleRad;
        d.minDistanceM = group.minDistanceM > 0 ? group.minDistanceM : cellMinDistanceM;
        d.maxDistanceM = group.maxDistanceM > 0 ? group.maxDistanceM : radiusM;
        d.memoryFraction = group.memoryFraction;
        d.storageSlots = group.storageSlots;
        d.warmCache = group.warmCache;
        devices.insert(devices.end(), std::size_t(group.count), d);
    }
    return devices;
}

void
CheckDeviceGroupPositions(const JsonConfigReader& root,
                          const std::vector<DeviceGroup>& groups,
                          double cellMinDistanceM,
                          double radiusM,
                          const std::string& listField)
{
    for (std::size_t i = 0; i < groups.size(); ++i)
    {
        const DeviceGroup& g = groups[i];
        const std::string field = listField + "[" + std::to_string(i) + "].";
        if (g.distanceM > 0)
        {
            CheckInCell(root, field + "distance_m", g.distanceM, cellMinDistanceM, radiusM);
            continue;
        }
        if (g.minDistanceM > 0)
        {
            CheckInCell(root, field + "min_distance_m", g.minDistanceM, cellMinDistanceM, radiusM);
        }
        if (g.maxDistanceM > 0)
        {
            CheckInCell(root, field + "max_distance_m", g.maxDistanceM, cellMinDistanceM, radiusM);
        }
        const double lo = g.minDistanceM > 0 ? g.minDistanceM : cellMinDistanceM;
        const double hi = g.maxDistanceM > 0 ? g.maxDistanceM : radiusM;
        if (lo >= hi)
        {
            std::ostringstream got;
            got << "must exceed the group's minimum distance (" << lo << " m), got " << hi;
            root.Fail(field + "max_distance_m", got.str());
        }
    }
}

std::string
DeviceGroupsText(const std::vector<DeviceGroup>& groups)
{
    std::string text;
    for (const DeviceGroup& g : groups)
    {
        text += (text.empty() ? "" : " + ") + std::to_string(g.count) + " x " + g.profile;
    }
    return text;
}

} // namespace ns3
