// Scalar dtype conversions: known bit patterns, rounding, and exhaustive round trips.
#include "dtype.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

using namespace wdmoe::llm;

namespace
{

std::uint32_t
Bits(float f)
{
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float
FromBits(std::uint32_t u)
{
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

const float kInf = std::numeric_limits<float>::infinity();

} // namespace

TEST_CASE("dtype sizes and names", "[dtype]")
{
    CHECK(DTypeSize(DType::F32) == 4);
    CHECK(DTypeSize(DType::BF16) == 2);
    CHECK(DTypeSize(DType::F16) == 2);
    CHECK(std::string(DTypeName(DType::F32)) == "F32");
    CHECK(std::string(DTypeName(DType::BF16)) == "BF16");
    CHECK(std::string(DTypeName(DType::F16)) == "F16");

    DType t = DType::F32;
    CHECK(ParseSafetensorsDType("BF16", &t));
    CHECK(t == DType::BF16);
    CHECK(ParseSafetensorsDType("F16", &t));
    CHECK(t == DType::F16);
    CHECK(ParseSafetensorsDType("F32", &t));
    CHECK(t == DType::F32);
    CHECK_FALSE(ParseSafetensorsDType("I64", &t));
    CHECK_FALSE(ParseSafetensorsDType("F8_E4M3", &t));
    CHECK_FALSE(ParseSafetensorsDType("bf16", &t)); // safetensors spelling is upper case
    CHECK_FALSE(ParseSafetensorsDType("", &t));

    CHECK(ParseUserDType("bf16", &t));
    CHECK(t == DType::BF16);
    CHECK(ParseUserDType("F16", &t));
    CHECK(t == DType::F16);
    CHECK(ParseUserDType("f32", &t));
    CHECK(t == DType::F32);
    CHECK(ParseUserDType("Bf16", &t));
    CHECK(t == DType::BF16);
    CHECK_FALSE(ParseUserDType("f64", &t));
    CHECK_FALSE(ParseUserDType("bf 16", &t));
}

TEST_CASE("bf16 known bit patterns", "[dtype]")
{
    CHECK(Bf16ToF32(0x3F80) == 1.0f);
    CHECK(Bf16ToF32(0xC000) == -2.0f);
    CHECK(Bf16ToF32(0x0000) == 0.0f);
    CHECK(Bits(Bf16ToF32(0x8000)) == 0x80000000u); // negative zero keeps its sign
    CHECK(Bf16ToF32(0x7F80) == kInf);
    CHECK(Bf16ToF32(0xFF80) == -kInf);
    CHECK(std::isnan(Bf16ToF32(0x7FC0)));
    CHECK(std::isnan(Bf16ToF32(0xFF81)));
    CHECK(Bf16ToF32(0x0001) == std::ldexp(1.0f, -133)); // smallest bf16 subnormal

    CHECK(F32ToBf16(1.0f) == 0x3F80);
    CHECK(F32ToBf16(-2.0f) == 0xC000);
    CHECK(F32ToBf16(kInf) == 0x7F80);
    CHECK(F32ToBf16(-kInf) == 0xFF80);
    CHECK(F32ToBf16(-0.0f) == 0x8000);
}

TEST_CASE("bf16 rounds to nearest even", "[dtype]")
{
    // bf16 keeps 7 mantissa bits, so near 1 the step is 2^-7 and 2^-8 is exactly halfway.
    CHECK(F32ToBf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);     // tie, 1.0 is even: down
    CHECK(F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82); // tie, 0x3F81 odd: up
    CHECK(F32ToBf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3F81); // above
    CHECK(F32ToBf16(1.0f + std::ldexp(1.0f, -9)) == 0x3F80); // below half: down
    CHECK(F32ToBf16(-(1.0f + 3 * std::ldexp(1.0f, -8))) == 0xBF82);
    // The largest finite float is past the largest bf16 plus half a step: infinity.
    CHECK(F32ToBf16(std::numeric_limits<float>::max()) == 0x7F80);
    // 0x7F7F is the largest finite bf16 and maps back to itself.
    CHECK(F32ToBf16(Bf16ToF32(0x7F7F)) == 0x7F7F);
}

TEST_CASE("bf16 keeps NaN a quiet NaN", "[dtype]")
{
    // A signalling NaN whose payload lives only in the low 16 bits would truncate to
    // infinity without the forced quiet bit.
    const float snan = FromBits(0x7F800001u);
    REQUIRE(std::isnan(snan));
    const std::uint16_t h = F32ToBf16(snan);
    CHECK((h & 0x7F80) == 0x7F80);
    CHECK((h & 0x0040) != 0);
    CHECK(std::isnan(Bf16ToF32(h)));
    CHECK((F32ToBf16(FromBits(0xFF800001u)) & 0x8000) != 0); // sign kept
    CHECK(std::isnan(Bf16ToF32(F32ToBf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("f16 known bit patterns", "[dtype]")
{
    CHECK(F16ToF32(0x3C00) == 1.0f);
    CHECK(F16ToF32(0xC000) == -2.0f);
    CHECK(F16ToF32(0x7BFF) == 65504.0f);
    CHECK(F16ToF32(0x0001) == std::ldexp(1.0f, -24));    // smallest subnormal
    CHECK(F16ToF32(0x03FF) == std::ldexp(1023.0f, -24)); // largest subnormal
    CHECK(F16ToF32(0x0400) == std::ldexp(1.0f, -14));    // smallest normal
    CHECK(F16ToF32(0x8001) == -std::ldexp(1.0f, -24));
    CHECK(F16ToF32(0x3555) == 1365.0f / 4096.0f); // ~1/3: exp 13, mantissa 0x155
    CHECK(F16ToF32(0x7C00) == kInf);
    CHECK(F16ToF32(0xFC00) == -kInf);
    CHECK(std::isnan(F16ToF32(0x7E00)));
    CHECK(std::isnan(F16ToF32(0x7C01)));
    CHECK(Bits(F16ToF32(0x8000)) == 0x80000000u);

    CHECK(F32ToF16(1.0f) == 0x3C00);
    CHECK(F32ToF16(-2.0f) == 0xC000);
    CHECK(F32ToF16(65504.0f) == 0x7BFF);
    CHECK(F32ToF16(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(F32ToF16(std::ldexp(1.0f, -14)) == 0x0400);
    CHECK(F32ToF16(kInf) == 0x7C00);
    CHECK(F32ToF16(-kInf) == 0xFC00);
    CHECK(F32ToF16(-0.0f) == 0x8000);
    CHECK((F32ToF16(std::numeric_limits<float>::quiet_NaN()) & 0x7C00) == 0x7C00);
    CHECK((F32ToF16(std::numeric_limits<float>::quiet_NaN()) & 0x03FF) != 0);
}

TEST_CASE("f16 rounding and overflow and underflow", "[dtype]")
{
    // Overflow: 65520 is halfway between 65504 (odd mantissa) and 65536, so it goes up.
    CHECK(F32ToF16(65520.0f) == 0x7C00);
    CHECK(F32ToF16(-65520.0f) == 0xFC00);
    CHECK(F32ToF16(65519.99f) == 0x7BFF);
    CHECK(F32ToF16(1e10f) == 0x7C00);
    CHECK(F32ToF16(std::numeric_limits<float>::max()) == 0x7C00);

    // Normal range: step near 1 is 2^-10.
    CHECK(F32ToF16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);     // tie to even: down
    CHECK(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02); // tie to even: up
    CHECK(F32ToF16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);
    // Mantissa carry into the exponent: just below 2 rounds to 2.
    CHECK(F32ToF16(2.0f - std::ldexp(1.0f, -12)) == 0x4000);

    // Subnormal range: step is 2^-24.
    CHECK(F32ToF16(std::ldexp(1.0f, -25)) == 0x0000);           // half of smallest: tie to 0 (even)
    CHECK(F32ToF16(std::ldexp(3.0f, -25)) == 0x0002);           // 1.5 steps: tie to 2 (even)
    CHECK(F32ToF16(std::ldexp(1.0f, -25) * 1.0001f) == 0x0001); // above half: up
    CHECK(F32ToF16(std::ldexp(1.0f, -26)) == 0x0000);
    CHECK(F32ToF16(-std::ldexp(1.0f, -26)) == 0x8000); // underflow keeps the sign
    CHECK(F32ToF16(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(F32ToF16(std::ldexp(5.0f, -24)) == 0x0005);
    // Largest subnormal plus half a step rounds up (1023 is odd) to the smallest normal.
    CHECK(F32ToF16(std::ldexp(1023.5f, -24)) == 0x0400);
}

TEST_CASE("f16 <-> f32 round trip of all 65536 patterns", "[dtype]")
{
    int nans = 0;
    for (std::uint32_t i = 0; i < 0x10000; ++i)
    {
        const auto h = static_cast<std::uint16_t>(i);
        const float f = F16ToF32(h);
        const bool isNan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
        if (isNan)
        {
            ++nans;
            REQUIRE(std::isnan(f));
            REQUIRE(std::isnan(F16ToF32(F32ToF16(f))));
            // Quiet NaNs keep their payload and sign bit exactly.
            if (h & 0x0200)
            {
                REQUIRE(F32ToF16(f) == h);
            }
        }
        else
        {
            REQUIRE(F32ToF16(f) == h);
        }
    }
    CHECK(nans == 2 * 1023);
}

TEST_CASE("bf16 <-> f32 round trip of all 65536 patterns", "[dtype]")
{
    for (std::uint32_t i = 0; i < 0x10000; ++i)
    {
        const auto h = static_cast<std::uint16_t>(i);
        const float f = Bf16ToF32(h);
        REQUIRE(Bits(f) == i << 16); // widening is exact
        const bool isNan = (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0;
        if (isNan)
        {
            REQUIRE(std::isnan(Bf16ToF32(F32ToBf16(f))));
        }
        else
        {
            REQUIRE(F32ToBf16(f) == h);
        }
    }
}

TEST_CASE("ToF32 and FromF32 on unaligned buffers", "[dtype]")
{
    const std::vector<float> values = {1.0f, -2.0f, 0.5f, 65504.0f, -0.25f, 3.0f};
    const std::size_t n = values.size();
    for (DType t : {DType::F32, DType::BF16, DType::F16})
    {
        // Offset by one byte so every element is misaligned.
        std::vector<unsigned char> buf(1 + n * DTypeSize(t) + 1, 0xAB);
        FromF32(t, values.data(), buf.data() + 1, n);
        CHECK(buf.front() == 0xAB); // nothing written outside the range
        CHECK(buf.back() == 0xAB);
        std::vector<float> back(n);
        ToF32(t, buf.data() + 1, back.data(), n);
        for (std::size_t i = 0; i < n; ++i)
        {
            // All values are exact in every type except 65504 in bf16 (8 significant bits).
            const float expected = t == DType::BF16 ? Bf16ToF32(F32ToBf16(values[i])) : values[i];
            CHECK(back[i] == expected);
        }
    }
    // Storage is little-endian regardless of the host: 1.0 in f16 is bytes 00 3C.
    unsigned char le[3] = {0, 0, 0};
    const float one = 1.0f;
    FromF32(DType::F16, &one, le + 1, 1);
    CHECK(le[1] == 0x00);
    CHECK(le[2] == 0x3C);
    FromF32(DType::BF16, &one, le + 1, 1);
    CHECK(le[1] == 0x80);
    CHECK(le[2] == 0x3F);
    // n == 0 touches nothing, even with null pointers.
    ToF32(DType::F16, nullptr, nullptr, 0);
    FromF32(DType::BF16, nullptr, nullptr, 0);
}

#ifdef __FLT16_MAX__
TEST_CASE("f32 -> f16 agrees with the _Float16 conversion of the compiler", "[dtype]")
{
    // An independent reference where the compiler has one (GCC >= 12 on x86-64): a strided
    // sweep over all f32 bit patterns, which covers every exponent and many mantissas.
    for (std::uint64_t i = 0; i <= 0xFFFFFFFFull; i += 4093)
    {
        const float f = FromBits(static_cast<std::uint32_t>(i));
        const auto ref = static_cast<_Float16>(f);
        std::uint16_t refBits;
        std::memcpy(&refBits, &ref, sizeof refBits);
        const std::uint16_t got = F32ToF16(f);
        if (std::isnan(f))
        {
            REQUIRE(std::isnan(F16ToF32(got)));
        }
        else
        {
            REQUIRE(got == refBits);
        }
    }
}
#endif
