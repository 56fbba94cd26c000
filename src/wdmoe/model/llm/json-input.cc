// Parsing untrusted JSON. nlohmann's parser is iterative, but it silently keeps the last of two
// equal keys, throws out_of_range (not parse_error) for numbers like 1e400, and builds documents
// of any depth that its recursive dump() and copy then overflow the stack on. The parser
// callback below refuses duplicate keys and deep nesting while parsing, and every exception
// becomes a LoadError.
#include "json-input.h"

#include "file-io.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <vector>

namespace wdmoe
{
namespace llm
{

namespace
{

/// Thrown by the parser callback; caught below and turned into a LoadError.
struct Refused
{
    std::string problem;
};

/// text cut to at most maxChars bytes at a character boundary, "..." marking a cut.
std::string
Cut(const std::string& text, std::size_t maxChars)
{
    if (text.size() <= maxChars)
    {
        return text;
    }
    std::size_t n = maxChars > 3 ? maxChars - 3 : 0;
    // Never split a UTF-8 sequence: messages end up in JSON result files too.
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    {
        --n;
    }
    return text.substr(0, n) + "...";
}

std::string
Prefix(const std::string& what)
{
    return what.empty() ? std::string() : what + ": ";
}

template <class Json>
Json
Parse(const std::string& source, const char* begin, const char* end, const std::string& what)
{
    std::vector<std::set<std::string>> open; // the keys seen so far in each enclosing object
    typename Json::parser_callback_t check = [&](int depth,
                                                 nlohmann::json::parse_event_t event,
                                                 Json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxJsonDepth)
        {
            throw Refused{"objects and arrays nest more than " + std::to_string(kMaxJsonDepth) +
                          " levels deep"};
        }
        if (event == Event::object_start)
        {
            open.emplace_back();
        }
        else if (event == Event::object_end && !open.empty())
        {
            open.pop_back();
        }
        else if (event == Event::key && !open.empty() && parsed.is_string())
        {
            const auto& key = parsed.template get_ref<const std::string&>();
            if (!open.back().insert(key).second)
            {
                throw Refused{"key " + QuoteForMessage(key) +
                              " appears twice in one object (which value is meant?)"};
            }
        }
        return true;
    };
    try
    {
        return Json::parse(begin, end, check, true);
    }
    catch (const Refused& r)
    {
        throw LoadError(source, Prefix(what) + r.problem);
    }
    catch (const nlohmann::json::out_of_range& e)
    {
        // 406: a number beyond the range of a double.
        throw LoadError(source,
                        Prefix(what) + "a number is too large for a double: " + Cut(e.what(), 200));
    }
    catch (const nlohmann::json::exception& e)
    {
        throw LoadError(source, Prefix(what) + "not valid JSON: " + Cut(e.what(), 200));
    }
}

/// A JSON file's text: a regular file of at most kMaxJsonFileBytes.
std::string
ReadJsonText(const std::string& path)
{
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
    {
        throw LoadError(path, std::string("cannot open the file: ") + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
    {
        throw LoadError(path,
                        S_ISDIR(st.st_mode) ? "is a folder, not a JSON file"
                                            : "is not a regular file (a JSON file is expected)");
    }
    if (std::uint64_t(st.st_size) > kMaxJsonFileBytes)
    {
        throw LoadError(path,
                        "is " + std::to_string(st.st_size) + " bytes, more than the " +
                            std::to_string(kMaxJsonFileBytes) + " a JSON file may have");
    }
    std::optional<std::string> text = ReadWholeFile(path);
    if (!text)
    {
        throw LoadError(path, "cannot open the file");
    }
    return std::move(*text);
}

template <class Json>
std::string
Short(const Json& value, std::size_t maxChars)
{
    return Cut(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), maxChars);
}

} // namespace

nlohmann::json
ParseJsonInput(const std::string& source,
               const char* begin,
               const char* end,
               const std::string& what)
{
    return Parse<nlohmann::json>(source, begin, end, what);
}

nlohmann::ordered_json
ParseOrderedJsonInput(const std::string& source,
                      const char* begin,
                      const char* end,
                      const std::string& what)
{
    return Parse<nlohmann::ordered_json>(source, begin, end, what);
}

nlohmann::json
ReadJsonFile(const std::string& path)
{
    const std::string text = ReadJsonText(path);
    return ParseJsonInput(path, text.data(), text.data() + text.size());
}

nlohmann::ordered_json
ReadOrderedJsonFile(const std::string& path)
{
    const std::string text = ReadJsonText(path);
    return ParseOrderedJsonInput(path, text.data(), text.data() + text.size());
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
    return Short(j, 60);
}

std::string
ShortJson(const nlohmann::json& value, std::size_t maxChars)
{
    return Short(value, maxChars);
}

std::string
ShortJson(const nlohmann::ordered_json& value, std::size_t maxChars)
{
    return Short(value, maxChars);
}

std::string
CutForMessage(const std::string& text, std::size_t maxChars)
{
    return Cut(text, maxChars);
}

std::string
QuoteForMessage(const std::string& text, std::size_t maxChars)
{
    return "\"" + Cut(text, maxChars) + "\"";
}

} // namespace llm
} // namespace wdmoe
