// Fuzz target: a sweep file, read, expanded and checked point by point as wdmoe-sweep does
// before it runs anything (a base such as "default.json" resolves to configs/default.json).
// Every input must either pass or fail with a JsonConfigError naming the sweep file, in bounded
// time and memory (the point count is checked before the product is formed).
#include "fuzz-config-reader.h"
#include "sweep.h"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("configs/fuzz-sweep.json", data, size);
    wdmoe::fuzz::RunConfigReader("sweep-config", path, [&] { ns3::Sweep::Load(path); });
    return 0;
}
