// Memory-mapped, fully validated reading of Hugging Face safetensors files.
#ifndef WDMOE_LLM_SAFETENSORS_H
#define WDMOE_LLM_SAFETENSORS_H

#include "dtype.h"
#include "json-input.h" // DescribeJson, for the files that used it through this header
#include "load-error.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

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

/// The largest header a safetensors file may have (the reference implementation's cap).
constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100000000;

/// One .safetensors file, mmapped read-only. Open() checks everything before returning, by the
/// rules of the reference implementation (huggingface/safetensors): the 8-byte header length is
/// at most kMaxSafetensorsHeaderBytes and within the file; the header is a JSON object
/// (ParseJsonInput: no duplicate key, bounded depth); each entry has a safetensors dtype, a
/// shape of non-negative integers and data_offsets [begin, end] with end - begin == numel *
/// dtype size; sorted by offset, the tensors cover the data section exactly: the first begins
/// at 0, each begins where the one before ends (no gap, no overlap), the last ends the file.
/// "__metadata__" is kept as string pairs. Tensors of a dtype the engine does not read (BOOL,
/// U8, I8, I16, U16, I32, U32, I64, U64, F64, F8_E4M3, F8_E5M2) are checked the same way and
/// listed in Skipped() instead of Tensors(). Every failure is a LoadError.
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

    /// Tensors of dtypes the engine does not read: name -> dtype as written ("I64").
    const std::map<std::string, std::string>& Skipped() const { return m_skipped; }

  private:
    SafetensorsFile() = default;
    std::string m_path;
    void* m_map = nullptr;
    std::size_t m_mapSize = 0;
    std::map<std::string, TensorView> m_tensors;
    std::map<std::string, std::string> m_metadata;
    std::map<std::string, std::string> m_skipped;
};

/// All weights of a model folder: either model.safetensors, or the shards named by
/// model.safetensors.index.json ("weight_map": tensor name -> shard file, a relative path that
/// stays inside the folder: no "..", no absolute path). A tensor the index names must exist in
/// its shard; a name in two files is an error.
class WeightStore
{
  public:
    static WeightStore Open(const std::string& modelDir);

    bool Has(const std::string& name) const;
    /// The tensor, checked to have exactly this shape. A missing tensor, another shape or a
    /// dtype the engine does not read is a LoadError naming the file (or the folder, when
    /// missing), the tensor and the problem.
    const TensorView& Get(const std::string& name, const std::vector<std::int64_t>& shape) const;
    /// Names of all tensors, sorted.
    std::vector<std::string> Names() const;

    const std::string& Dir() const { return m_dir; }

    /// One line per tensor skipped because of its dtype, naming the file, the tensor and the
    /// dtype (for the programs to print as notes).
    std::vector<std::string> Notes() const;

  private:
    /// model.safetensors.index.json: shard file -> the tensors it holds.
    static std::map<std::string, std::vector<std::string>> ReadIndex(const std::string& indexPath);
    void AddFile(std::shared_ptr<SafetensorsFile> file);

    std::string m_dir;
    std::vector<std::shared_ptr<SafetensorsFile>> m_files;
    std::map<std::string, const TensorView*> m_index;
    std::map<std::string, std::string> m_owner; ///< every tensor name, read or skipped -> file
    std::vector<std::string> m_notes;
};

} // namespace llm
} // namespace wdmoe

#endif
