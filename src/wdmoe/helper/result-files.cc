#include "result-files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace ns3
{

std::string
DefaultResultDirectory(const std::string& configPath)
{
    const auto slash = configPath.rfind('/');
    std::string base = slash == std::string::npos ? configPath : configPath.substr(slash + 1);
    // Only a trailing ".json" goes (as basename NAME .json in the driver): "a.json.bak" stays.
    const std::string suffix = ".json";
    const bool json = base.size() > suffix.size() &&
                      base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0;
    return "results/" + (json ? base.substr(0, base.size() - suffix.size()) : base);
}

void
CreateResultDirectory(const std::string& dir)
{
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error)
    {
        throw std::runtime_error(dir + ": cannot create folder: " + error.message());
    }
}

std::string
CsvField(const std::string& text)
{
    if (text.find_first_of(",\"\r\n") == std::string::npos)
    {
        return text;
    }
    std::string quoted = "\"";
    for (char c : text)
    {
        quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    }
    return quoted + "\"";
}

} // namespace ns3
