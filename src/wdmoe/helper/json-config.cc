#include "json-config.h"

#include "json-input.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <sstream>

namespace ns3
{

using wdmoe::llm::ShortJson;

nlohmann::json
ReadJsonConfigFile(const std::string& path)
{
    try
    {
        return wdmoe::llm::ReadJsonFile(path);
    }
    catch (const wdmoe::llm::LoadError& e)
    {
        throw JsonConfigError(e.what());
    }
}

nlohmann::ordered_json
ReadOrderedJsonConfigFile(const std::string& path)
{
    try
    {
        return wdmoe::llm::ReadOrderedJsonFile(path);
    }
    catch (const wdmoe::llm::LoadError& e)
    {
        throw JsonConfigError(e.what());
    }
}

nlohmann::json
ParseJsonConfigValue(const std::string& source, const std::string& text)
{
    if (!nlohmann::json::accept(text))
    {
        // Not JSON (accept() builds nothing, so any depth is safe to look at): a plain string
        // such as fdd, which must be UTF-8 to be echoed into summary.json.
        nlohmann::json value = text;
        try
        {
            value.dump();
        }
        catch (const nlohmann::json::exception&)
        {
            throw JsonConfigError(source + ": the value is not valid UTF-8");
        }
        return value;
    }
    try
    {
        return wdmoe::llm::ParseJsonInput(source, text.data(), text.data() + text.size());
    }
    catch (const wdmoe::llm::LoadError& e)
    {
        throw JsonConfigError(e.what());
    }
}

std::string
QuoteForMessage(const std::string& text)
{
    return wdmoe::llm::QuoteForMessage(text);
}

JsonConfigReader::JsonConfigReader(std::string file, const nlohmann::json& object, std::string path)
    : m_file(std::move(file)),
      m_json(object),
      m_path(std::move(path))
{
    if (!m_json.is_object())
    {
        throw JsonConfigError(m_file + ": " +
                              (m_path.empty() ? "the top level" : "field \"" + m_path + "\"") +
                              " must be a JSON object, got " + ShortJson(m_json));
    }
}

void
JsonConfigReader::AllowOnly(const std::vector<std::string>& keys) const
{
    for (auto it = m_json.begin(); it != m_json.end(); ++it)
    {
        bool known = false;
        std::string expected;
        for (const auto& k : keys)
        {
            known = known || k == it.key();
            expected += (expected.empty() ? "" : ", ") + k;
        }
        if (!known)
        {
            Fail(it.key(), "is not a known key (expected one of: " + expected + ")");
        }
    }
}

bool
JsonConfigReader::Has(const std::string& key) const
{
    return m_json.contains(key);
}

std::string
JsonConfigReader::String(const std::string& key) const
{
    if (!m_json.contains(key))
    {
        Fail(key, "is required (a string)");
    }
    return String(key, "");
}

std::string
JsonConfigReader::String(const std::string& key, const std::string& fallback) const
{
    if (!m_json.contains(key))
    {
        return fallback;
    }
    if (!m_json[key].is_string())
    {
        Fail(key, "must be a string, got " + ShortJson(m_json[key]));
    }
    return m_json[key].get<std::string>();
}

std::string
JsonConfigReader::Choice(const std::string& key,
                         const std::string& fallback,
                         const std::vector<std::string>& allowed) const
{
    const std::string value = String(key, fallback);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
    {
        std::string list;
        for (std::size_t i = 0; i < allowed.size(); ++i)
        {
            list += (i == 0                    ? ""
                     : i + 1 == allowed.size() ? " or "
                                               : ", ") +
                    ("\"" + allowed[i] + "\"");
        }
        Fail(key, "must be " + list + ", got " + QuoteForMessage(value));
    }
    return value;
}

long long
JsonConfigReader::Integer(const std::string& key,
                          long long fallback,
                          long long min,
                          long long max) const
{
    if (!m_json.contains(key))
    {
        return fallback;
    }
    const nlohmann::json& v = m_json[key];
    // An unsigned value above LLONG_MAX would wrap to a negative long long.
    const bool fits = v.is_number_integer() &&
                      !(v.is_number_unsigned() && v.get<unsigned long long>() > LLONG_MAX);
    if (!fits || v.get<long long>() < min || v.get<long long>() > max)
    {
        Fail(key,
             "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                 "], got " + ShortJson(v));
    }
    return v.get<long long>();
}

double
JsonConfigReader::Number(const std::string& key, double fallback, double min, double max) const
{
    if (!m_json.contains(key))
    {
        return fallback;
    }
    const nlohmann::json& v = m_json[key];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < min ||
        v.get<double>() > max)
    {
        std::ostringstream range;
        range << "[" << min << ", " << max << "]";
        Fail(key, "must be a number in " + range.str() + ", got " + ShortJson(v));
    }
    return v.get<double>();
}

bool
JsonConfigReader::Bool(const std::string& key, bool fallback) const
{
    if (!m_json.contains(key))
    {
        return fallback;
    }
    if (!m_json[key].is_boolean())
    {
        Fail(key, "must be true or false, got " + ShortJson(m_json[key]));
    }
    return m_json[key].get<bool>();
}

JsonConfigReader
JsonConfigReader::Object(const std::string& key) const
{
    static const nlohmann::json empty = nlohmann::json::object();
    return JsonConfigReader(m_file, m_json.contains(key) ? m_json[key] : empty, Dotted(key));
}

std::string
JsonConfigReader::PathRelativeToFile(const std::string& path) const
{
    if (path.empty() || path[0] == '/')
    {
        return path;
    }
    const auto slash = m_file.rfind('/');
    return (slash == std::string::npos ? std::string(".") : m_file.substr(0, slash)) + "/" + path;
}

void
JsonConfigReader::Fail(const std::string& key, const std::string& problem) const
{
    // Keys come from the file too (an unknown key can be as long as the file).
    const std::string dotted = Dotted(key);
    throw JsonConfigError(m_file + ": field " + wdmoe::llm::QuoteForMessage(dotted, 200) + " " +
                          problem);
}

std::string
JsonConfigReader::Dotted(const std::string& key) const
{
    return m_path.empty() ? key : m_path + "." + key;
}

} // namespace ns3
