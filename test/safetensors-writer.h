// Test helpers: write safetensors files (well-formed or deliberately corrupt) and scratch
// folders that clean up after themselves.
#ifndef WDMOE_TEST_SAFETENSORS_WRITER_H
#define WDMOE_TEST_SAFETENSORS_WRITER_H

#include "dtype.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wdmoe
{
namespace test
{

/// One tensor to write. dtype is the safetensors spelling and is written as is, so a test can
/// write "I64" or "F8"; bytes are written as is too (their size need not match the shape).
struct TestTensor
{
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;
};

/// Converts floats to a tensor of the given type (little-endian, rounded as FromF32 does).
TestTensor MakeTensor(const std::string& name,
                      llm::DType dtype,
                      const std::vector<std::int64_t>& shape,
                      const std::vector<float>& values);

/// Raw little-endian bytes of values in dtype.
std::vector<std::uint8_t> EncodeValues(llm::DType dtype, const std::vector<float>& values);

/// Writes a well-formed safetensors file: tensors packed in the given order, header padded
/// with spaces to a multiple of 8 bytes (as the reference writer does). Throws
/// std::runtime_error when the file cannot be written.
void WriteSafetensors(const std::string& path,
                      const std::vector<TestTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Writes an 8-byte little-endian header length, headerJson, then data: for corrupt files.
/// headerLength overrides the length written (to claim more than there is).
void WriteRawSafetensors(const std::string& path,
                         const std::string& headerJson,
                         const std::vector<std::uint8_t>& data,
                         std::uint64_t headerLength = UINT64_MAX);

/// Writes bytes to path as they are.
void WriteFile(const std::string& path, const std::string& bytes);

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir
{
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& Path() const { return m_path; }

    /// Path() + "/" + name.
    std::string File(const std::string& name) const;

  private:
    std::string m_path;
};

} // namespace test
} // namespace wdmoe

#endif
