// Reading JSON configs into typed values, with errors that name the file and the field.
#ifndef WDMOE_JSON_CONFIG_H
#define WDMOE_JSON_CONFIG_H

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace ns3
{

/// A config that cannot be used: what() is "<file>: field "<dotted.path>" <problem>".
class JsonConfigError : public std::runtime_error
{
  public:
    explicit JsonConfigError(const std::string& message)
        : std::runtime_error(message)
    {
    }
};

/// Parses a JSON file; a missing file or invalid JSON is a JsonConfigError naming the file.
nlohmann::json ReadJsonConfigFile(const std::string& path);

/// Typed, checked access to one JSON object of a config file. Every error names the file and
/// the dotted path of the field ("cell.bandwidth_mhz") and says what was expected.
class JsonConfigReader
{
  public:
    /// path: the dotted path of this object inside the file ("" for the top level).
    JsonConfigReader(std::string file, const nlohmann::json& object, std::string path = "");

    /// Rejects keys outside this list (typos must not be silently ignored).
    void AllowOnly(const std::vector<std::string>& keys) const;
    bool Has(const std::string& key) const;

    std::string String(const std::string& key) const; ///< required
    std::string String(const std::string& key, const std::string& fallback) const;
    /// A string that must be one of `allowed` (the error lists them).
    std::string Choice(const std::string& key,
                       const std::string& fallback,
                       const std::vector<std::string>& allowed) const;
    long long Integer(const std::string& key,
                      long long fallback,
                      long long min,
                      long long max) const;
    double Number(const std::string& key, double fallback, double min, double max) const;
    bool Bool(const std::string& key, bool fallback) const;
    /// The nested object (an empty one when absent).
    JsonConfigReader Object(const std::string& key) const;

    /// A path written in the config, relative to the config file's folder.
    std::string PathRelativeToFile(const std::string& path) const;

    [[noreturn]] void Fail(const std::string& key, const std::string& problem) const;
    std::string Dotted(const std::string& key) const;

    const std::string& File() const { return m_file; }

    /// The object this reader reads.
    const nlohmann::json& Json() const { return m_json; }

  private:
    std::string m_file;
    const nlohmann::json& m_json;
    std::string m_path;
};

} // namespace ns3

#endif
