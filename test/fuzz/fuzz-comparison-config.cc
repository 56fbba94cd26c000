// Fuzz target: a policy comparison config (a scenario with a "policies" list), read and checked
// as wdmoe-run does before the first policy runs. Every input must either pass or fail with a
// JsonConfigError naming the file.
#include "fuzz-config-reader.h"
#include "policy-comparison.h"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("configs/fuzz-comparison.json", data, size);
    wdmoe::fuzz::RunConfigReader("comparison-config", path, [&] {
        if (ns3::IsPolicyComparison(path))
        {
            ns3::PolicyComparison::Load(path);
        }
    });
    return 0;
}
