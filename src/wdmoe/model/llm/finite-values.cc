#include "finite-values.h"

#include <cmath>
#include <cstring>

namespace wdmoe
{
namespace llm
{

namespace
{

/// First element whose exponent bits (mask) are all ones: infinite or NaN in IEEE formats.
template <class Bits>
std::int64_t
FirstAllOnes(const std::uint8_t* data, std::size_t count, Bits mask)
{
    // A branch-free pass over each block (which the compiler vectorises) before looking closer.
    constexpr std::size_t kBlock = 256;
    for (std::size_t begin = 0; begin < count; begin += kBlock)
    {
        const std::size_t end = begin + kBlock < count ? begin + kBlock : count;
        bool hit = false;
        for (std::size_t i = begin; i < end; ++i)
        {
            Bits v;
            std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
            hit |= (v & mask) == mask;
        }
        if (!hit)
        {
            continue;
        }
        for (std::size_t i = begin; i < end; ++i)
        {
            Bits v;
            std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
            if ((v & mask) == mask)
            {
                return std::int64_t(i);
            }
        }
    }
    return -1;
}

} // namespace

std::int64_t
FirstNonFinite(DType dtype, const std::uint8_t* data, std::size_t count)
{
    switch (dtype)
    {
    case DType::F32:
        return FirstAllOnes<std::uint32_t>(data, count, 0x7F800000u);
    case DType::BF16:
        return FirstAllOnes<std::uint16_t>(data, count, std::uint16_t(0x7F80));
    case DType::F16:
        return FirstAllOnes<std::uint16_t>(data, count, std::uint16_t(0x7C00));
    }
    return -1;
}

void
RequireFinite(const TensorView& tensor, std::size_t offset, std::size_t count)
{
    const std::size_t size = DTypeSize(tensor.dtype);
    const std::int64_t bad = FirstNonFinite(tensor.dtype, tensor.data + offset * size, count);
    if (bad < 0)
    {
        return;
    }
    const std::size_t element = offset + std::size_t(bad);
    float value = 0;
    ToF32(tensor.dtype, tensor.data + element * size, &value, 1);
    throw LoadError(tensor.file,
                    "tensor " + QuoteForMessage(tensor.name, 200) + " holds " +
                        (std::isnan(value) ? "NaN"
                         : value > 0       ? "+inf"
                                           : "-inf") +
                        " at element " + std::to_string(element) +
                        " (weights must be finite numbers: the file is corrupt)");
}

} // namespace llm
} // namespace wdmoe
