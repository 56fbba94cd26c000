// The size of the CPU's last-level cache, as Linux reports it, for benchmarks that must run
// either inside it or well beyond it.
#ifndef WDMOE_BENCH_LAST_LEVEL_CACHE_H
#define WDMOE_BENCH_LAST_LEVEL_CACHE_H

#include <cstddef>
#include <fstream>
#include <string>
#include <unistd.h>

namespace wdmoe
{
namespace bench
{

struct LastLevelCache
{
    std::size_t bytes = 0; ///< 0 when nothing reported it
    int level = 0;
    std::string source; ///< where the figure came from, for the benchmark's output
};

/// Parses a sysfs cache size such as "491520K" or "32M"; 0 when it is not one.
inline std::size_t
ParseCacheSize(const std::string& text)
{
    std::size_t value = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
    {
        value = value * 10 + static_cast<std::size_t>(text[i] - '0');
    }
    if (i == 0)
    {
        return 0;
    }
    const char unit = i < text.size() ? text[i] : '\0';
    return unit == 'K' ? value << 10
                       : (unit == 'M' ? value << 20 : (unit == 'G' ? value << 30 : value));
}

/// The highest-level data or unified cache of CPU 0 in sysfs
/// (/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}); failing that, glibc's
/// sysconf(_SC_LEVEL3_CACHE_SIZE) and then _SC_LEVEL2_CACHE_SIZE.
inline LastLevelCache
DetectLastLevelCache()
{
    LastLevelCache best;
    const std::string root = "/sys/devices/system/cpu/cpu0/cache/index";
    for (int index = 0; index < 16; ++index)
    {
        const std::string dir = root + std::to_string(index) + "/";
        std::ifstream levelFile(dir + "level");
        std::ifstream typeFile(dir + "type");
        std::ifstream sizeFile(dir + "size");
        int level = 0;
        std::string type;
        std::string size;
        if (!(levelFile >> level) || !(typeFile >> type) || !(sizeFile >> size) ||
            type == "Instruction")
        {
            continue;
        }
        const std::size_t bytes = ParseCacheSize(size);
        if (bytes > 0 && level > best.level)
        {
            best = {bytes, level, dir + "size"};
        }
    }
    if (best.bytes > 0)
    {
        return best;
    }
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0)
    {
        return {static_cast<std::size_t>(l3), 3, "sysconf(_SC_LEVEL3_CACHE_SIZE)"};
    }
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 > 0)
    {
        return {static_cast<std::size_t>(l2), 2, "sysconf(_SC_LEVEL2_CACHE_SIZE)"};
    }
    return best;
}

} // namespace bench
} // namespace wdmoe

#endif
