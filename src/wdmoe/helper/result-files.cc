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
    const auto dot = base.rfind(".json");
    return "results/" + (dot == std::string::npos ? base : base.substr(0, dot));
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

void
WriteFileAtomically(const std::string& path, const std::string& content)
{
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        out.flush();
        if (!out)
        {
            std::remove(tmp.c_str());
            throw std::runtime_error(tmp + ": write failed");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
    {
        std::remove(tmp.c_str());
        throw std::runtime_error(path + ": cannot move the finished file into place");
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
