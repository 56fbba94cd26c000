// Element types of weight tensors and their scalar conversions.
#ifndef WDMOE_LLM_DTYPE_H
#define WDMOE_LLM_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace wdmoe
{
namespace llm
{

enum class DType
{
    F32,
    BF16,
    F16,
};

/// Bytes per element.
std::size_t DTypeSize(DType t);
/// The safetensors spelling: "F32", "BF16", "F16".
const char* DTypeName(DType t);
/// Parses a safetensors dtype string ("F32", "BF16", "F16"); false for anything else.
bool ParseSafetensorsDType(const std::string& s, DType* out);
/// Parses a user-facing dtype ("f32", "bf16", "f16", case-insensitive); false otherwise.
bool ParseUserDType(const std::string& s, DType* out);

/// bfloat16 -> float is exact (the upper half of an IEEE binary32).
float Bf16ToF32(std::uint16_t h);
/// float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN, infinities stay infinite.
std::uint16_t F32ToBf16(float f);
/// IEEE binary16 -> float, exact (subnormals, infinities and NaN included).
float F16ToF32(std::uint16_t h);
/// float -> IEEE binary16, round to nearest even; overflow gives infinity, NaN stays NaN.
std::uint16_t F32ToF16(float f);

/// Widens n elements of type t stored at src (any alignment) into dst.
void ToF32(DType t, const void* src, float* dst, std::size_t n);
/// Narrows n floats into type t at dst (any alignment).
void FromF32(DType t, const float* src, void* dst, std::size_t n);

} // namespace llm
} // namespace wdmoe

#endif
