#include "memory-budget.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <sys/resource.h>

namespace wdmoe
{
namespace llm
{

namespace
{

constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();

/// The number after "<key>" in a "/proc" style file of "key value [kB]" lines, in bytes.
std::uint64_t
ProcField(const std::string& path, const std::string& key, std::uint64_t unit)
{
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
    {
        std::istringstream fields(line);
        std::string name;
        std::uint64_t value = 0;
        if (fields >> name && name == key && fields >> value)
        {
            return value * unit;
        }
    }
    return kUnknown;
}

/// A cgroup v2 file holding one number ("max" when unlimited).
std::uint64_t
CgroupNumber(const std::string& name)
{
    std::ifstream in("/sys/fs/cgroup/" + name);
    std::uint64_t value = 0;
    return in >> value ? value : kUnknown;
}

} // namespace

std::uint64_t
AvailableMemoryBytes()
{
    std::uint64_t available = ProcField("/proc/meminfo", "MemAvailable:", 1024);
    const std::uint64_t limit = CgroupNumber("memory.max");
    const std::uint64_t used = CgroupNumber("memory.current");
    if (limit != kUnknown && used != kUnknown)
    {
        available = std::min(available, limit > used ? limit - used : 0);
    }
    struct rlimit as;
    if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    {
        const std::uint64_t mapped = ProcField("/proc/self/status", "VmSize:", 1024);
        if (mapped != kUnknown)
        {
            const std::uint64_t cap = std::uint64_t(as.rlim_cur);
            available = std::min(available, cap > mapped ? cap - mapped : 0);
        }
    }
    return available;
}

std::string
FormatBytes(std::uint64_t bytes)
{
    const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1000 && u < 6)
    {
        v /= 1000;
        ++u;
    }
    char text[32];
    std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.3g %s", v, units[u]);
    return text;
}

void
RequireMemory(const std::string& what, std::uint64_t bytes)
{
    const std::uint64_t available = AvailableMemoryBytes();
    if (bytes > available)
    {
        throw std::runtime_error(what + " needs " + FormatBytes(bytes) + " (" +
                                 std::to_string(bytes) + " bytes), more than the " +
                                 FormatBytes(available) + " of memory available");
    }
}

} // namespace llm
} // namespace wdmoe
