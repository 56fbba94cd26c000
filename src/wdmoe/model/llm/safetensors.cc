// Safetensors reading. The file is untrusted input: every length, offset and shape is checked
// against the file before a TensorView pointing into the mapping is handed out, and every
// failure is a LoadError (no assert, no crash, no out-of-range pointer).
#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
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
    if (name.size() > 200)
    {
        return "\"" + name.substr(0, 197) + "...\"";
    }
    return "\"" + name + "\"";
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

/// Parses JSON text. A key given twice in one object is reported in *duplicate: nlohmann
/// would silently keep the last one, and two entries for one tensor are ambiguous.
Json
ParseJson(const std::string& file,
          const char* begin,
          const char* end,
          const std::string& what,
          std::string* duplicate)
{
    std::vector<std::set<std::string>> open; // keys seen so far in each enclosing object
    Json::parser_callback_t cb = [&](int, Json::parse_event_t event, Json& parsed) {
        switch (event)
        {
        case Json::parse_event_t::object_start:
            open.emplace_back();
            break;
        case Json::parse_event_t::object_end:
            if (!open.empty())
            {
                open.pop_back();
            }
            break;
        case Json::parse_event_t::key:
            if (!open.empty() && duplicate->empty() && parsed.is_string())
            {
                const auto& k = parsed.get_ref<const std::string&>();
                if (!open.back().insert(k).second)
                {
                    *duplicate = k;
                }
            }
            break;
        default:
            break;
        }
        return true;
    };
    try
    {
        return Json::parse(begin, end, cb, true);
    }
    catch (const Json::exception& e)
    {
        throw LoadError(file, what + " is not valid JSON: " + e.what());
    }
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

} // namespace

LoadError::LoadError(const std::string& file, const std::string& problem)
    : std::runtime_error(file + ": " + problem),
      m_file(file)
{
}

std::string
DescribeJson(const nlohmann::json& j)
{
    if (j.is_object())
    {
        return "an object";
    }
    if (j.is_array())
    {
        return "an array";
    }
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (s.size() > 60)
    {
        s = s.substr(0, 57) + "...";
    }
    return s;
}

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
    const auto fileSize = static_cast<std::uint64_t>(st.st_size);
    if (fileSize < 8)
    {
        ::close(fd);
        throw LoadError(path,
                        "file is too small (" + std::to_string(fileSize) +
                            " bytes) to hold the 8-byte header length");
    }
    void* map = ::mmap(nullptr, fileSize, PROT_READ, MAP_PRIVATE, fd, 0);
    const int mapErr = errno;
    // The mapping keeps the file alive; the descriptor is no longer needed.
    ::close(fd);
    if (map == MAP_FAILED)
    {
        throw LoadError(path, std::string("cannot mmap: ") + std::strerror(mapErr));
    }
    f->m_map = map;
    f->m_mapSize = fileSize;
    const auto* base = static_cast<const std::uint8_t*>(map);

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
    const auto* headerBegin = reinterpret_cast<const char*>(base + 8);
    std::string duplicate;
    const Json header = ParseJson(path, headerBegin, headerBegin + headerLen, "header", &duplicate);
    if (!header.is_object())
    {
        throw LoadError(path, "header must be a JSON object, got " + DescribeJson(header));
    }
    if (!duplicate.empty())
    {
        throw LoadError(path, "key " + Quote(duplicate) + " appears twice in one object");
    }

    const std::uint8_t* data = base + 8 + headerLen;
    const std::uint64_t dataSize = fileSize - 8 - headerLen;
    // (begin, end, name) of every tensor, for the overlap check.
    std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> ranges;

    for (const auto& item : header.items())
    {
        const std::string& name = item.key();
        const Json& entry = item.value();
        if (name == "__metadata__")
        {
            if (!entry.is_object())
            {
                throw LoadError(path,
                                "\"__metadata__\" must be an object of strings, got " +
                                    DescribeJson(entry));
            }
            for (const auto& kv : entry.items())
            {
                if (!kv.value().is_string())
                {
                    throw LoadError(path,
                                    "\"__metadata__\" value for " + Quote(kv.key()) +
                                        " must be a string, got " + DescribeJson(kv.value()));
                }
                f->m_metadata[kv.key()] = kv.value().get<std::string>();
            }
            continue;
        }
        const std::string where = "tensor " + Quote(name) + ": ";
        if (!entry.is_object())
        {
            throw LoadError(path,
                            where + "entry must be a JSON object, got " + DescribeJson(entry));
        }

        TensorView v;
        v.name = name;
        v.file = path;

        const auto dt = entry.find("dtype");
        if (dt == entry.end() || !dt->is_string())
        {
            throw LoadError(path,
                            where + "\"dtype\" must be a string, got " +
                                (dt == entry.end() ? std::string("nothing") : DescribeJson(*dt)));
        }
        if (!ParseSafetensorsDType(dt->get<std::string>(), &v.dtype))
        {
            throw LoadError(path,
                            where + "unsupported dtype " + DescribeJson(*dt) +
                                " (supported: F32, BF16, F16)");
        }

        const auto sh = entry.find("shape");
        if (sh == entry.end() || !sh->is_array())
        {
            throw LoadError(path,
                            where + "\"shape\" must be an array of non-negative integers, got " +
                                (sh == entry.end() ? std::string("nothing") : DescribeJson(*sh)));
        }
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
            v.shape.push_back(dim);
            const auto udim = static_cast<std::uint64_t>(dim);
            if (udim != 0 &&
                numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / udim)
            {
                throw LoadError(path, where + "shape has too many elements (numel overflow)");
            }
            numel *= udim;
        }
        const std::uint64_t elemSize = DTypeSize(v.dtype);
        if (numel > std::numeric_limits<std::uint64_t>::max() / elemSize)
        {
            throw LoadError(path, where + "shape has too many elements (numel overflow)");
        }
        const std::uint64_t needed = numel * elemSize;

        const auto off = entry.find("data_offsets");
        std::int64_t begin = 0;
        std::int64_t end = 0;
        if (off == entry.end() || !off->is_array() || off->size() != 2 ||
            !NonNegativeInt((*off)[0], &begin) || !NonNegativeInt((*off)[1], &end))
        {
            throw LoadError(path,
                            where +
                                "\"data_offsets\" must be two non-negative integers "
                                "[begin, end], got " +
                                (off == entry.end() ? std::string("nothing") : DescribeJson(*off)));
        }
        const auto ubegin = static_cast<std::uint64_t>(begin);
        const auto uend = static_cast<std::uint64_t>(end);
        if (ubegin > uend)
        {
            throw LoadError(path,
                            where + "data_offsets begin " + std::to_string(ubegin) +
                                " is greater than end " + std::to_string(uend));
        }
        if (uend > dataSize)
        {
            throw LoadError(path,
                            where + "data_offsets end " + std::to_string(uend) +
                                " is past the end of the data section (" +
                                std::to_string(dataSize) + " bytes)");
        }
        if (uend - ubegin != needed)
        {
            throw LoadError(path,
                            where + "data_offsets cover " + std::to_string(uend - ubegin) +
                                " bytes but shape " + ShapeToString(v.shape) + " of " +
                                DTypeName(v.dtype) + " needs " + std::to_string(needed) +
                                " bytes (size mismatch)");
        }
        v.data = data + ubegin;
        v.nbytes = static_cast<std::size_t>(needed);
        if (needed > 0)
        {
            // Empty tensors occupy no bytes, so they cannot overlap anything.
            ranges.emplace_back(ubegin, uend, name);
        }
        f->m_tensors.emplace(name, std::move(v));
    }

    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
    {
        // Sorted by begin, so any overlap shows up between neighbours.
        if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
        {
            throw LoadError(path,
                            "tensors " + Quote(std::get<2>(ranges[i - 1])) + " and " +
                                Quote(std::get<2>(ranges[i])) + " overlap in the data section");
        }
    }
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

    // Adds every tensor of a file to the index, refusing a name held by two files.
    auto addFile = [&ws](std::shared_ptr<SafetensorsFile> file) {
        for (const auto& kv : file->Tensors())
        {
            const auto it = ws.m_index.find(kv.first);
            if (it != ws.m_index.end())
            {
                throw LoadError(file->Path(),
                                "tensor " + Quote(kv.first) + " is also in " + it->second->file +
                                    " (same name in two shards)");
            }
            ws.m_index.emplace(kv.first, &kv.second);
        }
        ws.m_files.push_back(std::move(file));
    };

    const std::string indexPath = JoinPath(modelDir, "model.safetensors.index.json");
    if (IsRegularFile(indexPath))
    {
        std::ifstream in(indexPath, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        if (!in)
        {
            throw LoadError(indexPath, "cannot read the file");
        }
        const std::string text = ss.str();
        std::string duplicate;
        const Json index =
            ParseJson(indexPath, text.data(), text.data() + text.size(), "index", &duplicate);
        if (!index.is_object())
        {
            throw LoadError(indexPath, "index must be a JSON object, got " + DescribeJson(index));
        }
        const auto wm = index.find("weight_map");
        if (wm == index.end() || !wm->is_object())
        {
            throw LoadError(indexPath,
                            "\"weight_map\" must be an object of tensor name -> shard file, "
                            "got " +
                                (wm == index.end() ? std::string("nothing") : DescribeJson(*wm)));
        }
        if (!duplicate.empty())
        {
            throw LoadError(indexPath, "key " + Quote(duplicate) + " appears twice in one object");
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
            if (shard.empty() || shard[0] == '/')
            {
                throw LoadError(indexPath,
                                "\"weight_map\" entry for " + Quote(kv.key()) +
                                    " must be a file name relative to the folder, got " +
                                    Quote(shard));
            }
            shards[shard].push_back(kv.key());
        }
        if (shards.empty())
        {
            throw LoadError(indexPath, "\"weight_map\" is empty");
        }
        for (const auto& s : shards)
        {
            std::shared_ptr<SafetensorsFile> file =
                SafetensorsFile::Open(JoinPath(modelDir, s.first));
            for (const std::string& name : s.second)
            {
                if (file->Find(name) == nullptr)
                {
                    throw LoadError(file->Path(),
                                    "tensor " + Quote(name) +
                                        " is listed in model.safetensors.index.json but is "
                                        "absent from this shard");
                }
            }
            addFile(std::move(file));
        }
        return ws;
    }

    const std::string single = JoinPath(modelDir, "model.safetensors");
    if (!IsRegularFile(single))
    {
        throw LoadError(modelDir,
                        "no model.safetensors or model.safetensors.index.json in this folder");
    }
    addFile(SafetensorsFile::Open(single));
    return ws;
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

} // namespace llm
} // namespace wdmoe
