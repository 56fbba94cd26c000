// Finding NaN and infinite values in weights, so a corrupt checkpoint is refused at load instead
// of scoring every token as NaN (perplexity null, top-1 near 0, exit 0).
#ifndef WDMOE_LLM_FINITE_VALUES_H
#define WDMOE_LLM_FINITE_VALUES_H

#include "dtype.h"
#include "safetensors.h"

#include <cstddef>
#include <cstdint>

namespace wdmoe
{
namespace llm
{

/// The index of the first of count values of type dtype at data (any alignment) that is NaN or
/// infinite, or -1 when every value is finite. Reads the exponent bits only: one pass at memory
/// speed.
std::int64_t FirstNonFinite(DType dtype, const std::uint8_t* data, std::size_t count);

/// Throws a LoadError naming the tensor's file, the tensor and the element when one of the
/// count elements from element offset on is NaN or infinite.
void RequireFinite(const TensorView& tensor, std::size_t offset, std::size_t count);

} // namespace llm
} // namespace wdmoe

#endif
