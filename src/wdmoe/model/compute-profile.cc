#include "compute-profile.h"

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

} // namespace

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

const std::vector<std::string>&
ComputeProfile::NumericFieldNames()
{
    static const std::vector<std::string> names = {"peak_flops",
                                                   "memory_bandwidth_gbps",
                                                   "memory_gb",
                                                   "storage_read_gbps",
                                                   "compute_efficiency",
                                                   "memory_efficiency"};
    return names;
}

ComputeProfile
ComputeProfile::FromConfig(const JsonConfigReader& r)
{
    std::vector<std::string> allowed = {"name", "description", "sources"};
    for (const auto& k : NumericFieldNames())
    {
        allowed.push_back(k);
    }
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

    if (r.Has("sources"))
    {
        const JsonConfigReader sources = r.Object("sources");
        sources.AllowOnly(NumericFieldNames());
        for (const auto& k : NumericFieldNames())
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
ComputeProfile::Load(const std::string& path)
{
    const nlohmann::json j = ReadJsonConfigFile(path);
    return FromConfig(JsonConfigReader(path, j));
}

std::vector<std::string>
ComputeProfile::AvailableNames(const std::string& profilesDir)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(profilesDir, ec), end; !ec && it != end;
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

ComputeProfile
ComputeProfile::LoadByName(const std::string& profilesDir, const std::string& name)
{
    const std::string path = profilesDir + "/" + name + ".json";
    const std::vector<std::string> names = AvailableNames(profilesDir);
    if (name.empty() || name.find('/') != std::string::npos ||
        std::find(names.begin(), names.end(), name) == names.end())
    {
        std::string list;
        for (const auto& n : names)
        {
            list += (list.empty() ? "" : ", ") + n;
        }
        throw JsonConfigError(profilesDir + ": no compute profile named \"" + name +
                              "\" (available: " + (list.empty() ? "none" : list) + ")");
    }
    ComputeProfile p = Load(path);
    if (p.name != name)
    {
        throw JsonConfigError(path + ": field \"name\" is \"" + p.name +
                              "\" but the file is named for \"" + name + "\"");
    }
    return p;
}

} // namespace ns3
