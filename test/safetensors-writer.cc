#include "safetensors-writer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

namespace wdmoe
{
namespace test
{

std::vector<std::uint8_t>
EncodeValues(llm::DType dtype, const std::vector<float>& values)
{
    std::vector<std::uint8_t> bytes(values.size() * llm::DTypeSize(dtype));
    llm::FromF32(dtype, values.data(), bytes.data(), values.size());
    return bytes;
}

TestTensor
MakeTensor(const std::string& name,
           llm::DType dtype,
           const std::vector<std::int64_t>& shape,
           const std::vector<float>& values)
{
    return TestTensor{name, llm::DTypeName(dtype), shape, EncodeValues(dtype, values)};
}

void
WriteFile(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out)
    {
        throw std::runtime_error("cannot write " + path);
    }
}

void
WriteRawSafetensors(const std::string& path,
                    const std::string& headerJson,
                    const std::vector<std::uint8_t>& data,
                    std::uint64_t headerLength)
{
    const std::uint64_t n = headerLength == UINT64_MAX ? headerJson.size() : headerLength;
    std::string bytes;
    for (int i = 0; i < 8; ++i)
    {
        bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    bytes += headerJson;
    bytes.append(data.begin(), data.end());
    WriteFile(path, bytes);
}

void
WriteSafetensors(const std::string& path,
                 const std::vector<TestTensor>& tensors,
                 const std::map<std::string, std::string>& metadata)
{
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty())
    {
        header["__metadata__"] = metadata;
    }
    std::vector<std::uint8_t> data;
    for (const TestTensor& t : tensors)
    {
        const std::uint64_t begin = data.size();
        data.insert(data.end(), t.bytes.begin(), t.bytes.end());
        header[t.name] = {{"dtype", t.dtype},
                          {"shape", t.shape},
                          {"data_offsets", {begin, static_cast<std::uint64_t>(data.size())}}};
    }
    std::string text = header.dump();
    while (text.size() % 8 != 0)
    {
        text.push_back(' ');
    }
    WriteRawSafetensors(path, text, data);
}

TempDir::TempDir()
{
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/wdmoe-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr)
    {
        throw std::runtime_error("mkdtemp failed for " + tmpl);
    }
    m_path = buf.data();
}

TempDir::~TempDir()
{
    std::error_code ec; // never throw from a destructor
    std::filesystem::remove_all(m_path, ec);
}

std::string
TempDir::File(const std::string& name) const
{
    return m_path + "/" + name;
}

} // namespace test
} // namespace wdmoe
