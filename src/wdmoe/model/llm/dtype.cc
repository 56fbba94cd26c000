// Scalar dtype conversions. Portable integer bit manipulation only: the AVX2/F16C paths live
// in the expert kernel, and these functions are their reference.
#include "dtype.h"

#include <cstring>

namespace wdmoe
{
namespace llm
{

namespace
{

std::uint32_t
FloatBits(float f)
{
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float
BitsFloat(std::uint32_t u)
{
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Safetensors data is little-endian; assembling bytes keeps 16-bit types right on any host
// and at any alignment. (F32 is copied as is: every supported host is little-endian.)
std::uint16_t
Load16(const unsigned char* p)
{
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

void
Store16(unsigned char* p, std::uint16_t h)
{
    p[0] = static_cast<unsigned char>(h & 0xFF);
    p[1] = static_cast<unsigned char>(h >> 8);
}

std::string
ToLower(const std::string& s)
{
    std::string r = s;
    for (char& c : r)
    {
        if (c >= 'A' && c <= 'Z')
        {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return r;
}

} // namespace

std::size_t
DTypeSize(DType t)
{
    switch (t)
    {
    case DType::F32:
        return 4;
    case DType::BF16:
    case DType::F16:
        return 2;
    }
    return 0;
}

const char*
DTypeName(DType t)
{
    switch (t)
    {
    case DType::F32:
        return "F32";
    case DType::BF16:
        return "BF16";
    case DType::F16:
        return "F16";
    }
    return "?";
}

bool
ParseSafetensorsDType(const std::string& s, DType* out)
{
    // The safetensors spelling is case-sensitive upper case.
    if (s == "F32")
    {
        *out = DType::F32;
    }
    else if (s == "BF16")
    {
        *out = DType::BF16;
    }
    else if (s == "F16")
    {
        *out = DType::F16;
    }
    else
    {
        return false;
    }
    return true;
}

bool
ParseUserDType(const std::string& s, DType* out)
{
    const std::string l = ToLower(s);
    if (l == "f32")
    {
        *out = DType::F32;
    }
    else if (l == "bf16")
    {
        *out = DType::BF16;
    }
    else if (l == "f16")
    {
        *out = DType::F16;
    }
    else
    {
        return false;
    }
    return true;
}

float
Bf16ToF32(std::uint16_t h)
{
    return BitsFloat(static_cast<std::uint32_t>(h) << 16);
}

std::uint16_t
F32ToBf16(float f)
{
    const std::uint32_t u = FloatBits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
    {
        // NaN: truncating could clear every mantissa bit left and make an infinity; force the
        // quiet bit instead.
        return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    }
    // Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate. The largest
    // non-NaN input (0xFF800000) cannot overflow 32 bits; finite values past the largest
    // bf16 correctly carry into the infinity pattern.
    const std::uint32_t bias = 0x7FFFu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>((u + bias) >> 16);
}

float
F16ToF32(std::uint16_t h)
{
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    if (exp == 0)
    {
        if (mant == 0)
        {
            return BitsFloat(sign);
        }
        // Subnormal: normalise so the leading one becomes the implicit bit. mant * 2^-24 has
        // f32 exponent 127 - 24 + 10 = 113 once bit 10 is set, minus one per shift.
        std::uint32_t e = 113;
        while ((mant & 0x400u) == 0)
        {
            mant <<= 1;
            --e;
        }
        mant &= 0x3FFu;
        return BitsFloat(sign | (e << 23) | (mant << 13));
    }
    if (exp == 0x1F)
    {
        // Infinity or NaN; the payload (and so the quiet bit) maps straight across.
        return BitsFloat(sign | 0x7F800000u | (mant << 13));
    }
    return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

std::uint16_t
F32ToF16(float f)
{
    const std::uint32_t u = FloatBits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
    {
        // NaN: keep the top payload bits and force quiet so it cannot become infinity.
        return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    }
    if (a >= 0x477FF000u)
    {
        // 65520 is halfway between 65504 (largest f16, odd mantissa) and 65536: ties to even
        // go up, so everything from 65520 on (infinity included) becomes infinity.
        return static_cast<std::uint16_t>(sign | 0x7C00u);
    }
    const std::uint32_t e = a >> 23;
    if (a < 0x38800000u)
    {
        // Below 2^-14: an f16 subnormal m * 2^-24 with m = full * 2^(e - 126).
        if (e < 102)
        {
            // Less than 2^-25 (half the smallest subnormal): rounds to zero. Covers f32
            // subnormals and zero.
            return static_cast<std::uint16_t>(sign);
        }
        const std::uint32_t full = 0x800000u | (a & 0x7FFFFFu);
        const std::uint32_t shift = 126 - e; // 14..24
        std::uint32_t m = full >> shift;
        const std::uint32_t rem = full & ((1u << shift) - 1);
        const std::uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (m & 1u)))
        {
            ++m; // may carry to 0x400, which is exactly the smallest normal
        }
        return static_cast<std::uint16_t>(sign | m);
    }
    std::uint32_t r = ((e - 112) << 10) | ((a >> 13) & 0x3FFu);
    const std::uint32_t rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
    {
        ++r; // a mantissa carry moves into the exponent, which is the right answer
    }
    return static_cast<std::uint16_t>(sign | r);
}

void
ToF32(DType t, const void* src, float* dst, std::size_t n)
{
    if (n == 0)
    {
        return; // src/dst may be null then, and memcpy with null is undefined
    }
    const auto* p = static_cast<const unsigned char*>(src);
    switch (t)
    {
    case DType::F32:
        std::memcpy(dst, p, n * sizeof(float));
        return;
    case DType::BF16:
        for (std::size_t i = 0; i < n; ++i)
        {
            dst[i] = Bf16ToF32(Load16(p + 2 * i));
        }
        return;
    case DType::F16:
        for (std::size_t i = 0; i < n; ++i)
        {
            dst[i] = F16ToF32(Load16(p + 2 * i));
        }
        return;
    }
}

void
FromF32(DType t, const float* src, void* dst, std::size_t n)
{
    if (n == 0)
    {
        return;
    }
    auto* p = static_cast<unsigned char*>(dst);
    switch (t)
    {
    case DType::F32:
        std::memcpy(p, src, n * sizeof(float));
        return;
    case DType::BF16:
        for (std::size_t i = 0; i < n; ++i)
        {
            Store16(p + 2 * i, F32ToBf16(src[i]));
        }
        return;
    case DType::F16:
        for (std::size_t i = 0; i < n; ++i)
        {
            Store16(p + 2 * i, F32ToF16(src[i]));
        }
        return;
    }
}

} // namespace llm
} // namespace wdmoe
