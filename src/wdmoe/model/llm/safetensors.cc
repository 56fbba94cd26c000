// Safetensors reading. The file is untrusted input: every length, offset and shape is checked
// against the file before a TensorView pointing into the mapping is handed out, and every
// failure is a LoadError (no assert, no crash, no out-of-range pointer).
#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace wdmoe
{
namespace llm
{

namespace
{

using Json = nlohmann::json;

std::string
Quote(const std::string& name)
{
    // Names come from the file; cap them so a hostile header cannot make huge messages.
    return QuoteForMessage(name, 200);
}

std::string
ShapeToString(const std::vector<std::int64_t>& shape)
{
    std::ostringstream os;
    os << "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
    {
        os << (i ? ", " : "") << shape[i];
    }
    os << "]";
    return os.str();
}

/// A JSON integer >= 0 that fits in int64; false for anything else (floats, negatives,
/// booleans, strings, integers too large).
bool
NonNegativeInt(const Json& j, std::int64_t* out)
{
    if (j.is_number_unsigned())
    {
        const auto v = j.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        {
            return false;
        }
        *out = static_cast<std::int64_t>(v);
        return true;
    }
    if (j.is_number_integer())
    {
        const auto v = j.get<std::int64_t>();
        if (v < 0)
        {
            return false;
        }
        *out = v;
        return true;
    }
    return false;
}

std::string
JoinPath(const std::string& dir, const std::string& name)
{
    if (dir.empty())
    {
        return name;
    }
    if (dir.back() == '/')
    {
        return dir + name;
    }
    return dir + "/" + name;
}

bool
IsRegularFile(const std::string& path)
{
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool
IsDirectory(const std::string& path)
{
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// Bytes per element of every safetensors dtype, whether the engine reads it or not; 0 for a
/// name that is no safetensors dtype.
std::uint64_t
AnyDTypeSize(const std::string& dtype)
{
    static const std::map<std::string, std::uint64_t> sizes = {{"BOOL", 1},
                                                               {"U8", 1},
                                                               {"I8", 1},
                                                               {"F8_E4M3", 1},
                                                               {"F8_E5M2", 1},
                                                               {"I16", 2},
                                                               {"U16", 2},
                                                               {"F16", 2},
                                                               {"BF16", 2},
                                                               {"I32", 4},
                                                               {"U32", 4},
                                                               {"F32", 4},
                                                               {"I64", 8},
                                                               {"U64", 8},
                                                               {"F64", 8}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

/// One tensor entry of a header, checked on its own: dtype, shape and byte range.
struct HeaderEntry
{
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
};

/// The entry's shape, and its size in bytes for elements of elemSize bytes.
std::uint64_t
ParseShape(const std::string& path,
           const std::string& where,
           const Json& entry,
           std::uint64_t elemSize,
           std::vector<std::int64_t>* shape)
{
    const auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array())
    {
        throw LoadError(path,
                        where + "\"shape\" must be an array of non-negative integers, got " +
                            (sh == entry.end() ? std::string("nothing") : DescribeJson(*sh)));
    }
    const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t numel = 1;
    for (const Json& d : *sh)
    {
        std::int64_t dim = 0;
        if (!NonNegativeInt(d, &dim))
        {
            throw LoadError(path,
                            where + "\"shape\" must be an array of non-negative integers, " +
                                "got an element " + DescribeJson(d));
        }
        shape->push_back(dim);
        const auto udim = static_cast<std::uint64_t>(dim);
        if (udim != 0 && numel > max / udim)
        {
            throw LoadError(path, where + "shape has too many elements (numel overflow)");
        }
        numel *= udim;
    }
    if (numel > std::numeric_limits<std::uint64_t>::max() / elemSize)
    {
        throw LoadError(path, where + "shape has too many elements (numel overflow)");
    }
    return numel * elemSize;
}

HeaderEntry
ParseEntry(const std::string& path,
           const std::string& name,
           const Json& entry,
           std::uint64_t dataSize)
{
    const std::string where = "tensor " + Quote(name) + ": ";
    if (!entry.is_object())
    {
        throw LoadError(path, where + "entry must be a JSON object, got " + DescribeJson(entry));
    }
    HeaderEntry e;
    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string())
    {
        throw LoadError(path,
                        where + "\"dtype\" must be a string, got " +
                            (dt == entry.end() ? std::string("nothing") : DescribeJson(*dt)));
    }
    e.dtype = dt->get<std::string>();
    const std::uint64_t elemSize = AnyDTypeSize(e.dtype);
    if (elemSize == 0)
    {
        throw LoadError(path,
                        where + "unsupported dtype " + DescribeJson(*dt) +
                            " (safetensors dtypes: BOOL, U8, I8, I16, U16, I32, U32, I64, U64, "
                            "F8_E4M3, F8_E5M2, F16, BF16, F32, F64; the engine reads F32, BF16, "
                            "F16)");
    }
    const std::uint64_t needed = ParseShape(path, where, entry, elemSize, &e.shape);
    const auto off = entry.find("data_offsets");
    std::int64_t begin = 0;
    std::int64_t end = 0;
    if (off == entry.end() || !off->is_array() || off->size() != 2 ||
        !NonNegativeInt((*off)[0], &begin) || !NonNegativeInt((*off)[1], &end))
    {
        throw LoadError(path,
                        where +
                            "\"data_offsets\" must be two non-negative integers [begin, end], "
                            "got " +
                            (off == entry.end() ? std::string("nothing") : DescribeJson(*off)));
    }
    e.begin = static_cast<std::uint64_t>(begin);
    e.end = static_cast<std::uint64_t>(end);
    if (e.begin > e.end)
    {
        throw LoadError(path,
                        where + "data_offsets begin " + std::to_string(e.begin) +
                            " is greater than end " + std::to_string(e.end));
    }
    if (e.end > dataSize)
    {
        throw LoadError(path,
                        where + "data_offsets end " + std::to_string(e.end) +
                            " is past the end of the data section (" + std::to_string(dataSize) +
                            " bytes)");
    }
    if (e.end - e.begin != needed)
    {
        throw LoadError(path,
                        where + "data_offsets cover " + std::to_string(e.end - e.begin) +
                            " bytes but shape " + ShapeToString(e.shape) + " of " + e.dtype +
                            " needs " + std::to_string(needed) + " bytes (size mismatch)");
    }
    return e;
}

std::string
Bytes(std::uint64_t n)
{
    return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

/// (begin, end, name) of every tensor: sorted by offset they must tile the data section.
using ByteRanges = std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>>;

/// The reference reader's layout rules: the tensors' bytes follow each other from the start of
/// the data section with no gap and no overlap, and the last one ends the file.
void
CheckDataLayout(const std::string& path, ByteRanges ranges, std::uint64_t dataSize)
{
    std::sort(ranges.begin(), ranges.end());
    std::uint64_t covered = 0; // the data section is tiled up to here
    for (std::size_t i = 0; i < ranges.size(); ++i)
    {
        const auto& [begin, end, name] = ranges[i];
        if (begin < covered)
        {
            throw LoadError(path,
                            "tensors " + Quote(std::get<2>(ranges[i - 1])) + " and " + Quote(name) +
                                " overlap in the data section");
        }
        if (begin > covered)
        {
            throw LoadError(path,
                            "the data section has a gap of " + Bytes(begin - covered) +
                                " at byte " + std::to_string(covered) + ", before tensor " +
                                Quote(name) + " (tensors must follow each other without gaps)");
        }
        covered = end;
    }
    if (covered != dataSize)
    {
        throw LoadError(path,
                        "the data section has " + Bytes(dataSize - covered) +
                            " after the last tensor's end at byte " + std::to_string(covered) +
                            " (the last tensor must end the file)");
    }
}

/// Maps the whole file read-only; *size gets its size (at least the 8-byte header length).
void*
MapFile(const std::string& path, std::uint64_t* size)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
    {
        throw LoadError(path, std::string("cannot open: ") + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0)
    {
        const int err = errno;
        ::close(fd);
        throw LoadError(path, std::string("cannot stat: ") + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode))
    {
        ::close(fd);
        throw LoadError(path, "not a regular file");
    }
    *size = static_cast<std::uint64_t>(st.st_size);
    if (*size < 8)
    {
        ::close(fd);
        throw LoadError(path,
                        "file is too small (" + std::to_string(*size) +
                            " bytes) to hold the 8-byte header length");
    }
    void* map = ::mmap(nullptr, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int mapErr = errno;
    // The mapping keeps the file alive; the descriptor is no longer needed.
    ::close(fd);
    if (map == MAP_FAILED)
    {
        throw LoadError(path, std::string("cannot mmap: ") + std::strerror(mapErr));
    }
    return map;
}

/// The header's length from its first 8 bytes (little endian), checked against the file.
std::uint64_t
HeaderLength(const std::string& path, const std::uint8_t* base, std::uint64_t fileSize)
{
    std::uint64_t headerLen = 0;
    for (int i = 7; i >= 0; --i)
    {
        headerLen = (headerLen << 8) | base[i];
    }
    if (headerLen > fileSize - 8)
    {
        throw LoadError(path,
                        "header length " + std::to_string(headerLen) +
                            " runs past the end of the file (" + std::to_string(fileSize) +
                            " bytes)");
    }
    if (headerLen > kMaxSafetensorsHeaderBytes)
    {
        throw LoadError(path,
                        "header length " + std::to_string(headerLen) + " is more than the " +
                            std::to_string(kMaxSafetensorsHeaderBytes) +
                            " bytes a safetensors header may have");
    }
    return headerLen;
}

/// "__metadata__": an object of strings.
std::map<std::string, std::string>
ParseMetadata(const std::string& path, const Json& entry)
{
    if (!entry.is_object())
    {
        throw LoadError(path,
                        "\"__metadata__\" must be an object of strings, got " +
                            DescribeJson(entry));
    }
    std::map<std::string, std::string> metadata;
    for (const auto& kv : entry.items())
    {
        if (!kv.value().is_string())
        {
            throw LoadError(path,
                            "\"__metadata__\" value for " + Quote(kv.key()) +
                                " must be a string, got " + DescribeJson(kv.value()));
        }
        metadata[kv.key()] = kv.value().get<std::string>();
    }
    return metadata;
}

/// A shard name from the index: a relative path that stays inside the model folder.
bool
StaysInsideFolder(const std::string& name)
{
    if (name.empty() || name[0] == '/')
    {
        return false;
    }
    std::size_t begin = 0;
    while (begin <= name.size())
    {
        const std::size_t slash = std::min(name.find('/', begin), name.size());
        const std::string part = name.substr(begin, slash - begin);
        if (part.empty() || part == "." || part == "..")
        {
            return false;
        }
        begin = slash + 1;
    }
    return true;
}

} // namespace

std::int64_t
TensorView::Numel() const
{
    std::int64_t n = 1;
    for (std::int64_t d : shape)
    {
        n *= d;
    }
    return n;
}

std::string
TensorView::ShapeString() const
{
    return ShapeToString(shape);
}

std::unique_ptr<SafetensorsFile>
SafetensorsFile::Open(const std::string& path)
{
    // Owned from the start so that the destructor unmaps on any error below.
    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->m_path = path;
    std::uint64_t fileSize = 0;
    f->m_map = MapFile(path, &fileSize);
    f->m_mapSize = fileSize;
    const auto* base = static_cast<const std::uint8_t*>(f->m_map);

    const std::uint64_t headerLen = HeaderLength(path, base, fileSize);
    const auto* headerBegin = reinterpret_cast<const char*>(base + 8);
    const Json header = ParseJsonInput(path, headerBegin, headerBegin + headerLen, "header");
    if (!header.is_object())
    {
        throw LoadError(path, "header must be a JSON object, got " + DescribeJson(header));
    }

    const std::uint8_t* data = base + 8 + headerLen;
    const std::uint64_t dataSize = fileSize - 8 - headerLen;
    ByteRanges ranges;
    for (const auto& item : header.items())
    {
        const std::string& name = item.key();
        if (name == "__metadata__")
        {
            f->m_metadata = ParseMetadata(path, item.value());
            continue;
        }
        const HeaderEntry e = ParseEntry(path, name, item.value(), dataSize);
        ranges.emplace_back(e.begin, e.end, name);
        TensorView v;
        if (!ParseSafetensorsDType(e.dtype, &v.dtype))
        {
            f->m_skipped.emplace(name, e.dtype);
            continue;
        }
        v.name = name;
        v.file = path;
        v.shape = e.shape;
        v.data = data + e.begin;
        v.nbytes = static_cast<std::size_t>(e.end - e.begin);
        f->m_tensors.emplace(name, std::move(v));
    }
    CheckDataLayout(path, std::move(ranges), dataSize);
    return f;
}

SafetensorsFile::~SafetensorsFile()
{
    if (m_map != nullptr)
    {
        ::munmap(m_map, m_mapSize);
    }
}

const TensorView*
SafetensorsFile::Find(const std::string& name) const
{
    const auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second;
}

WeightStore
WeightStore::Open(const std::string& modelDir)
{
    WeightStore ws;
    ws.m_dir = modelDir;
    if (!IsDirectory(modelDir))
    {
        throw LoadError(modelDir, "model folder does not exist or is not a folder");
    }
    const std::string indexPath = JoinPath(modelDir, "model.safetensors.index.json");
    if (IsRegularFile(indexPath))
    {
        for (const auto& [shard, names] : ReadIndex(indexPath))
        {
            std::shared_ptr<SafetensorsFile> file =
                SafetensorsFile::Open(JoinPath(modelDir, shard));
            for (const std::string& name : names)
            {
                if (file->Find(name) == nullptr && file->Skipped().count(name) == 0)
                {
                    throw LoadError(file->Path(),
                                    "tensor " + Quote(name) +
                                        " is listed in model.safetensors.index.json but is "
                                        "absent from this shard");
                }
            }
            ws.AddFile(std::move(file));
        }
        return ws;
    }
    const std::string single = JoinPath(modelDir, "model.safetensors");
    if (!IsRegularFile(single))
    {
        throw LoadError(modelDir,
                        "no model.safetensors or model.safetensors.index.json in this folder");
    }
    ws.AddFile(SafetensorsFile::Open(single));
    return ws;
}

std::map<std::string, std::vector<std::string>>
WeightStore::ReadIndex(const std::string& indexPath)
{
    const Json index = ReadJsonFile(indexPath);
    if (!index.is_object())
    {
        throw LoadError(indexPath, "index must be a JSON object, got " + DescribeJson(index));
    }
    const auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object())
    {
        throw LoadError(indexPath,
                        "\"weight_map\" must be an object of tensor name -> shard file, got " +
                            (wm == index.end() ? std::string("nothing") : DescribeJson(*wm)));
    }
    // Shard file -> the tensors the index says it holds.
    std::map<std::string, std::vector<std::string>> shards;
    for (const auto& kv : wm->items())
    {
        if (!kv.value().is_string())
        {
            throw LoadError(indexPath,
                            "\"weight_map\" entry for " + Quote(kv.key()) +
                                " must be a shard file name, got " + DescribeJson(kv.value()));
        }
        const std::string shard = kv.value().get<std::string>();
        if (!StaysInsideFolder(shard))
        {
            throw LoadError(indexPath,
                            "\"weight_map\" entry for " + Quote(kv.key()) +
                                " must be a file name relative to the model folder and inside "
                                "it (no absolute path, no \".\" or \"..\"), got " +
                                Quote(shard));
        }
        shards[shard].push_back(kv.key());
    }
    if (shards.empty())
    {
        throw LoadError(indexPath, "\"weight_map\" is empty");
    }
    return shards;
}

void
WeightStore::AddFile(std::shared_ptr<SafetensorsFile> file)
{
    // Every name, read or skipped, may be in one file only.
    auto claim = [&](const std::string& name) {
        const auto it = m_owner.find(name);
        if (it != m_owner.end())
        {
            throw LoadError(file->Path(),
                            "tensor " + Quote(name) + " is also in " + it->second +
                                " (same name in two shards)");
        }
        m_owner.emplace(name, file->Path());
    };
    for (const auto& kv : file->Tensors())
    {
        claim(kv.first);
        m_index.emplace(kv.first, &kv.second);
    }
    for (const auto& kv : file->Skipped())
    {
        claim(kv.first);
        m_notes.push_back(file->Path() + ": tensor " + Quote(kv.first) + " (" + kv.second +
                          ") skipped: the engine reads F32, BF16 and F16 tensors only");
    }
    m_files.push_back(std::move(file));
}

bool
WeightStore::Has(const std::string& name) const
{
    return m_index.count(name) != 0;
}

const TensorView&
WeightStore::Get(const std::string& name, const std::vector<std::int64_t>& shape) const
{
    const auto it = m_index.find(name);
    if (it == m_index.end())
    {
        const auto owner = m_owner.find(name);
        if (owner != m_owner.end())
        {
            throw LoadError(owner->second,
                            "tensor " + Quote(name) +
                                " has a dtype the engine does not read (it reads F32, BF16 and "
                                "F16)");
        }
        throw LoadError(m_dir,
                        "tensor " + Quote(name) + " not found (expected shape " +
                            ShapeToString(shape) + ")");
    }
    const TensorView& v = *it->second;
    if (v.shape != shape)
    {
        throw LoadError(v.file,
                        "tensor " + Quote(name) + " has shape " + v.ShapeString() + ", expected " +
                            ShapeToString(shape));
    }
    return v;
}

std::vector<std::string>
WeightStore::Names() const
{
    std::vector<std::string> names;
    names.reserve(m_index.size());
    for (const auto& kv : m_index)
    {
        names.push_back(kv.first);
    }
    return names;
}

std::vector<std::string>
WeightStore::Notes() const
{
    return m_notes;
}

} // namespace llm
} // namespace wdmoe
