// Fuzz target: a scenario config, read and checked as wdmoe-run does before it runs anything
// (the model, profiles and texts it names resolve in the sandbox as for configs/*.json). Every
// input must either pass or fail with a JsonConfigError naming the file.
#include "fuzz-config-reader.h"
#include "wdmoe-scenario.h"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("configs/fuzz-scenario.json", data, size);
    wdmoe::fuzz::RunConfigReader("scenario-config", path, [&] {
        ns3::ScenarioConfig::Load(path).Validate();
    });
    return 0;
}
