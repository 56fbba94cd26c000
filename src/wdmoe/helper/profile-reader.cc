#include "profile-reader.h"

#include "json-config.h"

#include <algorithm>
#include <filesystem>

namespace ns3
{

namespace
{

/// A required number in (0, max]: absent, non-numeric, <= 0 or above max is an error naming
/// the file and the field.
double
RequiredPositive(const JsonConfigReader& r, const std::string& key, double max)
{
    if (!r.Has(key))
    {
        r.Fail(key, "is required (a number > 0)");
    }
    const double v = r.Number(key, 0, 0, max);
    if (!(v > 0))
    {
        r.Fail(key, "must be > 0, got 0");
    }
    return v;
}

bool
IsProfilePath(const std::string& nameOrPath)
{
    const std::string suffix = ".json";
    return nameOrPath.size() > suffix.size() &&
           nameOrPath.compare(nameOrPath.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string
JoinNames(const std::vector<std::string>& names)
{
    std::string list;
    for (const auto& n : names)
    {
        list += (list.empty() ? "" : ", ") + n;
    }
    return list;
}

} // namespace

const std::vector<std::string>&
ComputeProfileNumericFields()
{
    static const std::vector<std::string> names = {"peak_flops",
                                                   "memory_bandwidth_gbps",
                                                   "memory_gb",
                                                   "storage_read_gbps",
                                                   "compute_efficiency",
                                                   "memory_efficiency"};
    return names;
}

const std::vector<std::string>&
ComputeProfileEnergyFields()
{
    static const std::vector<std::string> names = {"active_power_w",
                                                   "idle_power_w",
                                                   "pa_efficiency",
                                                   "radio_rx_power_w"};
    return names;
}

namespace
{

/// The optional energy fields: all of them or none; powers in (0, 1e4] W (idle may be 0), the
/// power amplifier's efficiency in (0, 1], idle at most active.
void
ReadEnergyFields(const JsonConfigReader& r, ComputeProfile& p)
{
    const auto& fields = ComputeProfileEnergyFields();
    const auto given = std::count_if(fields.begin(), fields.end(), [&r](const std::string& k) {
        return r.Has(k);
    });
    if (given == 0)
    {
        return;
    }
    for (const auto& k : fields)
    {
        if (!r.Has(k))
        {
            r.Fail(k,
                   "is required with the other energy fields (active_power_w, idle_power_w, "
                   "pa_efficiency, radio_rx_power_w: all or none)");
        }
    }
    p.activePowerW = RequiredPositive(r, "active_power_w", 1e4);
    p.idlePowerW = r.Number("idle_power_w", 0, 0, 1e4);
    p.paEfficiency = RequiredPositive(r, "pa_efficiency", 1);
    p.radioRxPowerW = r.Number("radio_rx_power_w", 0, 0, 1e4);
    if (p.idlePowerW > p.activePowerW)
    {
        r.Fail("idle_power_w",
               "must be at most active_power_w (" + std::to_string(p.activePowerW) + " W)");
    }
}

} // namespace

ComputeProfile
ReadComputeProfile(const JsonConfigReader& r)
{
    std::vector<std::string> numeric = ComputeProfileNumericFields();
    numeric.insert(numeric.end(),
                   ComputeProfileEnergyFields().begin(),
                   ComputeProfileEnergyFields().end());
    std::vector<std::string> allowed = {"name", "description", "sources"};
    allowed.insert(allowed.end(), numeric.begin(), numeric.end());
    r.AllowOnly(allowed);

    ComputeProfile p;
    p.name = r.String("name");
    if (p.name.empty())
    {
        r.Fail("name", "must not be empty");
    }
    p.description = r.String("description", "");
    // Upper bounds only catch unit slips (a number in B/s where GB/s is asked); they are far
    // above any real accelerator (1e18 FLOP/s, 1e5 GB/s, 1e5 GB).
    p.peakFlops = RequiredPositive(r, "peak_flops", 1e18);
    p.memoryBandwidth = RequiredPositive(r, "memory_bandwidth_gbps", 1e5) * 1e9;
    p.memoryBytes = RequiredPositive(r, "memory_gb", 1e5) * 1e9;
    p.storageReadBandwidth = RequiredPositive(r, "storage_read_gbps", 1e4) * 1e9;
    p.computeEfficiency = RequiredPositive(r, "compute_efficiency", 1);
    p.memoryEfficiency = RequiredPositive(r, "memory_efficiency", 1);
    ReadEnergyFields(r, p);

    if (r.Has("sources"))
    {
        const JsonConfigReader sources = r.Object("sources");
        sources.AllowOnly(numeric);
        for (const auto& k : numeric)
        {
            if (sources.Has(k) && sources.String(k).empty())
            {
                sources.Fail(k, "must not be empty");
            }
        }
    }
    return p;
}

ComputeProfile
LoadComputeProfile(const std::string& path)
{
    const nlohmann::json j = ReadJsonConfigFile(path);
    return ReadComputeProfile(JsonConfigReader(path, j));
}

std::vector<std::string>
ComputeProfileNames(const std::string& folder)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end;
         it.increment(ec))
    {
        if (it->path().extension() == ".json")
        {
            names.push_back(it->path().stem().string());
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::string
ProjectProfilesFolder()
{
    return WDMOE_PROJECT_PROFILES_DIR;
}

std::vector<std::string>
ProfileFolders(const std::string& configFile)
{
    const auto slash = configFile.rfind('/');
    const std::string own =
        (slash == std::string::npos ? std::string(".") : configFile.substr(0, slash)) + "/profiles";
    const std::string project = ProjectProfilesFolder();
    std::error_code ec;
    if (std::filesystem::equivalent(own, project, ec))
    {
        return {own};
    }
    return {own, project};
}

std::string
FindComputeProfile(const std::vector<std::string>& folders, const std::string& nameOrPath)
{
    std::error_code ec;
    if (IsProfilePath(nameOrPath))
    {
        return std::filesystem::is_regular_file(nameOrPath, ec) ? nameOrPath : "";
    }
    if (nameOrPath.empty() || nameOrPath.find('/') != std::string::npos)
    {
        return "";
    }
    for (const std::string& folder : folders)
    {
        const auto names = ComputeProfileNames(folder);
        if (std::find(names.begin(), names.end(), nameOrPath) != names.end())
        {
            return folder + "/" + nameOrPath + ".json";
        }
    }
    return "";
}

std::string
ProfileSearchText(const std::vector<std::string>& folders, const std::string& nameOrPath)
{
    if (IsProfilePath(nameOrPath))
    {
        return "no file " + nameOrPath;
    }
    std::string text;
    for (const std::string& folder : folders)
    {
        const std::string list = JoinNames(ComputeProfileNames(folder));
        text += (text.empty() ? "" : ", ") + folder + " (" +
                (list.empty() ? "none" : "available: " + list) + ")";
    }
    return text.empty() ? "no folder" : text;
}

ComputeProfile
LoadComputeProfile(const std::vector<std::string>& folders, const std::string& nameOrPath)
{
    const std::string path = FindComputeProfile(folders, nameOrPath);
    if (path.empty())
    {
        throw JsonConfigError("no compute profile " + QuoteForMessage(nameOrPath) + "; looked in " +
                              ProfileSearchText(folders, nameOrPath));
    }
    ComputeProfile p = LoadComputeProfile(path);
    if (!IsProfilePath(nameOrPath) && p.name != nameOrPath)
    {
        throw JsonConfigError(path + ": field \"name\" is \"" + p.name +
                              "\" but the file is named for \"" + nameOrPath + "\"");
    }
    return p;
}

std::string
ReadProfileField(const JsonConfigReader& root,
                 const JsonConfigReader& r,
                 const std::string& key,
                 const std::string& fallback)
{
    const std::string value = r.String(key, fallback);
    const std::string suffix = ".json";
    const bool isPath = value.size() > suffix.size() &&
                        value.compare(value.size() - suffix.size(), suffix.size(), suffix) == 0;
    return isPath ? root.PathRelativeToFile(value) : value;
}

} // namespace ns3
