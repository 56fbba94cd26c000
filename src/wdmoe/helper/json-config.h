// Reading JSON configs into typed values, with errors that name the file and the field.
#ifndef WDMOE_JSON_CONFIG_H
#define WDMOE_JSON_CONFIG_H

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace ns3
{

/// A config that cannot be used: what() is "<file>: field "<dotted.path>" <problem>". Values and
/// keys quoted in messages are cut short (a value may be a megabyte long).
class JsonConfigError : public std::runtime_error
{
  public:
    explicit JsonConfigError(const std::string& message)
        : std::runtime_error(message)
    {
    }
};

/// Parses a JSON config file with wdmoe::llm::ReadJsonFile: a missing file, one that is not a
/// regular file, invalid JSON, a number beyond a double, a key twice in one object or nesting
/// deeper than wdmoe::llm::kMaxJsonDepth is a JsonConfigError naming the file.
nlohmann::json ReadJsonConfigFile(const std::string& path);
/// The same, keeping objects in file order (a sweep's axes).
nlohmann::ordered_json ReadOrderedJsonConfigFile(const std::string& path);
/// A value from the command line (source, such as "file: --set key", starts every message):
/// JSON when the text is JSON, checked as a file is (depth, duplicate keys), else the text as
/// a string ("fdd"), which must be valid UTF-8.
nlohmann::json ParseJsonConfigValue(const std::string& source, const std::string& text);
/// A string from a config for a message: quoted, cut to about 80 characters.
std::string QuoteForMessage(const std::string& text);

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
