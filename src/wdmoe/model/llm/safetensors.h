// Memory-mapped, fully validated reading of Hugging Face safetensors files.
#ifndef WDMOE_LLM_SAFETENSORS_H
#define WDMOE_LLM_SAFETENSORS_H

#include "dtype.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

/// A weights or config file that cannot be used. what() names the file and the problem.
class LoadError : public std::runtime_error
{
  public:
    LoadError(const std::string& file, const std::string& problem);

    const std::string& File() const { return m_file; }

  private:
    std::string m_file;
};

/// A short, safe rendering of a JSON value for LoadError messages: scalars as JSON (long ones
/// cut), containers by kind only (dumping them could be huge, and is recursive).
std::string DescribeJson(const nlohmann::json& value);

/// A tensor inside a mapped file: the bytes stay in the mapping (zero copy).
struct TensorView
{
    std::string name;
    std::string file; ///< path of the file that holds it, for error messages
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    const std::uint8_t* data = nullptr; ///< any alignment
    std::size_t nbytes = 0;

    std::int64_t Numel() const;
    /// "[14336, 4096]"
    std::string ShapeString() const;
};

/// One .safetensors file, mmapped read-only. Open() checks everything before returning: the
/// 8-byte header length against the file size, the header is a JSON object, each entry has
/// a known dtype (F32, BF16, F16), a shape of non-negative integers and data_offsets
/// [begin, end] with begin <= end <= data size and end - begin == numel * dtype size, no two
/// tensors overlap. "__metadata__" is kept as string pairs. Every failure is a LoadError.
class SafetensorsFile
{
  public:
    static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& Path() const { return m_path; }

    /// nullptr when absent.
    const TensorView* Find(const std::string& name) const;

    const std::map<std::string, TensorView>& Tensors() const { return m_tensors; }

    const std::map<std::string, std::string>& Metadata() const { return m_metadata; }

  private:
    SafetensorsFile() = default;
    std::string m_path;
    void* m_map = nullptr;
    std::size_t m_mapSize = 0;
    std::map<std::string, TensorView> m_tensors;
    std::map<std::string, std::string> m_metadata;
};

/// All weights of a model folder: either model.safetensors, or the shards named by
/// model.safetensors.index.json ("weight_map": tensor name -> shard file). A tensor the
/// index names must exist in its shard; a name in two files is an error.
class WeightStore
{
  public:
    static WeightStore Open(const std::string& modelDir);

    bool Has(const std::string& name) const;
    /// The tensor, checked to have exactly this shape. A missing tensor or another shape is
    /// a LoadError naming the file (or the folder, when missing), the tensor, the expected
    /// and the actual shape.
    const TensorView& Get(const std::string& name, const std::vector<std::int64_t>& shape) const;
    /// Names of all tensors, sorted.
    std::vector<std::string> Names() const;

    const std::string& Dir() const { return m_dir; }

  private:
    std::string m_dir;
    std::vector<std::shared_ptr<SafetensorsFile>> m_files;
    std::map<std::string, const TensorView*> m_index;
};

} // namespace llm
} // namespace wdmoe

#endif
