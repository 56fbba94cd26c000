// Fuzz target: a scenario config, read and checked as wdmoe-run does before it runs anything
// (the model, profiles and texts it names resolve in the sandbox as for configs/*.json). Every
// input must either pass or fail with a JsonConfigError naming the file.
#include "fuzz-sandbox.h"
#include "json-config.h"
#include "wdmoe-scenario.h"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("configs/fuzz-scenario.json", data, size);
    try
    {
        ns3::ScenarioConfig::Load(path).Validate();
    }
    catch (const ns3::JsonConfigError& e)
    {
        if (std::string(e.what()).find(path) == std::string::npos)
        {
            wdmoe::fuzz::Unexpected("scenario-config", e.what()); // a message must name the file
        }
    }
    catch (const std::exception& e)
    {
        wdmoe::fuzz::Unexpected("scenario-config", e.what());
    }
    return 0;
}
