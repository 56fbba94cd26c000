// Fuzz target: one .safetensors file. Every input must either open, with every view inside the
// mapping (each byte is read, so ASan sees a view that is not), or fail with a LoadError.
#include "fuzz-sandbox.h"
#include "safetensors.h"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string path = wdmoe::fuzz::WriteInput("model.safetensors", data, size);
    try
    {
        const auto file = wdmoe::llm::SafetensorsFile::Open(path);
        unsigned sum = 0;
        for (const auto& [name, view] : file->Tensors())
        {
            for (std::size_t i = 0; i < view.nbytes; ++i)
            {
                sum += view.data[i];
            }
        }
        volatile unsigned sink = sum;
        (void)sink;
    }
    catch (const wdmoe::llm::LoadError&)
    {
    }
    catch (const std::exception& e)
    {
        wdmoe::fuzz::Unexpected("safetensors", e.what());
    }
    return 0;
}
