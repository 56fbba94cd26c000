// What the config-reader harnesses (scenario, comparison, sweep) share: the documented outcome
// of any input is success or a JsonConfigError naming the file; anything else is a finding.
#ifndef WDMOE_FUZZ_CONFIG_READER_H
#define WDMOE_FUZZ_CONFIG_READER_H

#include "fuzz-sandbox.h"
#include "json-config.h"

#include <functional>
#include <string>

namespace wdmoe
{
namespace fuzz
{

/// Runs read (a reader of the config at path) and aborts, naming the harness, on an exception
/// other than a JsonConfigError, or on one whose message does not name path.
inline void
RunConfigReader(const char* harness, const std::string& path, const std::function<void()>& read)
{
    try
    {
        read();
    }
    catch (const ns3::JsonConfigError& e)
    {
        if (std::string(e.what()).find(path) == std::string::npos)
        {
            Unexpected(harness, e.what()); // a message must name the file
        }
    }
    catch (const std::exception& e)
    {
        Unexpected(harness, e.what());
    }
}

} // namespace fuzz
} // namespace wdmoe

#endif
