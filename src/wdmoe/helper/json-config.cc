#include "json-config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace ns3
{

nlohmann::json
ReadJsonConfigFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw JsonConfigError(path + ": cannot open file");
    }
    std::ostringstream text;
    text << in.rdbuf();
    try
    {
        return nlohmann::json::parse(text.str());
    }
    catch (const nlohmann::json::parse_error& e)
    {
        throw JsonConfigError(path + ": not valid JSON: " + e.what());
    }
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
                              " must be a JSON object, got " + m_json.dump());
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
        Fail(key, "must be a string, got " + m_json[key].dump());
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
        Fail(key, "must be " + list + ", got \"" + value + "\"");
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
    if (!v.is_number_integer() || v.get<long long>() < min || v.get<long long>() > max)
    {
        Fail(key,
             "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                 "], got " + v.dump());
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
        Fail(key, "must be a number in " + range.str() + ", got " + v.dump());
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
        Fail(key, "must be true or false, got " + m_json[key].dump());
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
    throw JsonConfigError(m_file + ": field \"" + Dotted(key) + "\" " + problem);
}

std::string
JsonConfigReader::Dotted(const std::string& key) const
{
    return m_path.empty() ? key : m_path + "." + key;
}

} // namespace ns3
