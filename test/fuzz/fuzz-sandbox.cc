#include "fuzz-sandbox.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace wdmoe
{
namespace fuzz
{

namespace
{

namespace fs = std::filesystem;

void
RemoveSandbox()
{
    std::error_code ignored;
    fs::remove_all(SandboxDir(), ignored); // removes the links, never what they point to
}

std::string
MakeSandbox()
{
    char pattern[] = "/tmp/wdmoe-fuzz-XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
    {
        std::perror("wdmoe fuzz: mkdtemp");
        std::abort();
    }
    const fs::path dir(pattern);
    const fs::path source(WDMOE_SOURCE_DIR);
    fs::create_directory(dir / "configs");
    for (const auto& entry : fs::directory_iterator(source / "configs"))
    {
        fs::create_symlink(entry.path(), dir / "configs" / entry.path().filename());
    }
    fs::create_directory_symlink(source / "models", dir / "models");
    return dir.string();
}

} // namespace

const std::string&
SandboxDir()
{
    static const std::string dir = MakeSandbox();
    static const bool cleanup = std::atexit(RemoveSandbox) == 0;
    (void)cleanup;
    return dir;
}

std::string
WriteInput(const std::string& relativePath, const std::uint8_t* data, std::size_t size)
{
    const std::string path = SandboxDir() + "/" + relativePath;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    if (!out)
    {
        std::fprintf(stderr, "wdmoe fuzz: cannot write %s\n", path.c_str());
        std::abort();
    }
    return path;
}

void
Unexpected(const char* harness, const char* what)
{
    std::fprintf(stderr, "wdmoe fuzz %s: unexpected exception: %s\n", harness, what);
    std::abort();
}

} // namespace fuzz
} // namespace wdmoe
