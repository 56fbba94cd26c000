#include "file-io.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace wdmoe
{
namespace llm
{

std::optional<std::string>
ReadWholeFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
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

} // namespace llm
} // namespace wdmoe
