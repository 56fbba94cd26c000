// The module is described twice: src/wdmoe/CMakeLists.txt (build_lib, CMake-era ns-3 and the
// standalone build) and src/wdmoe/wscript (waf-era ns-3). These tests keep the two file lists
// equal, check that every listed file exists, that the llm library stays free of ns-3, and
// that every test name survives ctest registration.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace
{

const fs::path kModuleDir = fs::path(WDMOE_SOURCE_DIR) / "src" / "wdmoe";

std::string
ReadFile(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in)
    {
        FAIL("cannot read " << p.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Removes comments that start with '#' and run to the end of the line (CMake and Python),
/// ignoring '#' inside quoted strings.
std::string
StripHashComments(const std::string& text)
{
    std::string out;
    out.reserve(text.size());
    char quote = 0;
    bool comment = false;
    for (std::size_t i = 0; i < text.size(); ++i)
    {
        const char c = text[i];
        if (comment)
        {
            if (c == '\n')
            {
                comment = false;
                out += c;
            }
            continue;
        }
        if (quote != 0)
        {
            if (c == '\\' && i + 1 < text.size())
            {
                out += c;
                out += text[++i];
                continue;
            }
            if (c == quote)
            {
                quote = 0;
            }
            out += c;
            continue;
        }
        if (c == '#')
        {
            comment = true;
            continue;
        }
        if (c == '"' || c == '\'')
        {
            quote = c;
        }
        out += c;
    }
    return out;
}

/// The quoted strings of the Python list assigned to `name` (e.g. "module.source") in a wscript.
std::vector<std::string>
WscriptList(const std::string& wscript, const std::string& name)
{
    const std::string text = StripHashComments(wscript);
    const std::regex start("(^|[^A-Za-z0-9_.])" +
                           std::regex_replace(name, std::regex("\\."), "\\.") + "\\s*=\\s*\\[");
    std::smatch m;
    if (!std::regex_search(text, m, start))
    {
        FAIL("wscript: no '" << name << " = [' found");
    }
    const std::size_t open = m.position(0) + m.length(0);
    const std::size_t close = text.find(']', open);
    if (close == std::string::npos)
    {
        FAIL("wscript: list '" << name << "' is not closed");
    }
    const std::string body = text.substr(open, close - open);
    std::vector<std::string> items;
    const std::regex item("'([^']*)'|\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), item);
         it != std::sregex_iterator();
         ++it)
    {
        items.push_back((*it)[1].matched ? (*it)[1].str() : (*it)[2].str());
    }
    return items;
}

/// The arguments following `keyword` in the (single) build_lib(...) call of a CMakeLists.txt, up
/// to the next build_lib keyword.
std::vector<std::string>
BuildLibList(const std::string& cmake, const std::string& keyword)
{
    const std::string text = StripHashComments(cmake);
    const std::regex call("(^|\\n)[ \\t]*build_lib[ \\t]*\\(");
    auto begin = std::sregex_iterator(text.begin(), text.end(), call);
    const auto calls = std::distance(begin, std::sregex_iterator());
    if (calls != 1)
    {
        FAIL("CMakeLists.txt: expected exactly one build_lib( call, found " << calls);
    }
    const std::size_t open = begin->position(0) + begin->length(0);
    const std::size_t close = text.find(')', open);
    if (close == std::string::npos)
    {
        FAIL("CMakeLists.txt: build_lib( call is not closed");
    }
    std::istringstream args(text.substr(open, close - open));
    static const std::set<std::string> keywords = {"LIBNAME",
                                                   "SOURCE_FILES",
                                                   "HEADER_FILES",
                                                   "LIBRARIES_TO_LINK",
                                                   "TEST_SOURCES",
                                                   "DEPRECATED_HEADER_FILES",
                                                   "MODULE_ENABLED_FEATURES",
                                                   "PRIVATE_HEADER_FILES",
                                                   "IGNORE_PCH"};
    std::vector<std::string> items;
    bool inside = false;
    bool seen = false;
    std::string token;
    while (args >> token)
    {
        if (keywords.count(token) != 0)
        {
            inside = (token == keyword);
            seen = seen || inside;
            continue;
        }
        if (inside)
        {
            if (token.size() >= 2 && token.front() == '"' && token.back() == '"')
            {
                token = token.substr(1, token.size() - 2);
            }
            items.push_back(token);
        }
    }
    if (!seen)
    {
        FAIL("CMakeLists.txt: build_lib( has no " << keyword);
    }
    return items;
}

/// "" when equal as sets, else a readable list of what is only on either side (and duplicates).
std::string
SetDifference(const std::vector<std::string>& a,
              const std::string& aName,
              const std::vector<std::string>& b,
              const std::string& bName)
{
    std::ostringstream msg;
    const std::set<std::string> sa(a.begin(), a.end());
    const std::set<std::string> sb(b.begin(), b.end());
    for (const auto& x : sa)
    {
        if (sb.count(x) == 0)
        {
            msg << "  only in " << aName << ": " << x << "\n";
        }
    }
    for (const auto& x : sb)
    {
        if (sa.count(x) == 0)
        {
            msg << "  only in " << bName << ": " << x << "\n";
        }
    }
    if (sa.size() != a.size())
    {
        msg << "  " << aName << " lists a file twice\n";
    }
    if (sb.size() != b.size())
    {
        msg << "  " << bName << " lists a file twice\n";
    }
    return msg.str();
}

std::string
Wscript()
{
    return ReadFile(kModuleDir / "wscript");
}

std::string
CMakeLists()
{
    return ReadFile(kModuleDir / "CMakeLists.txt");
}

} // namespace

TEST_CASE("build lists: wscript and CMakeLists.txt list the same sources", "[build]")
{
    const auto waf = WscriptList(Wscript(), "module.source");
    const auto cmake = BuildLibList(CMakeLists(), "SOURCE_FILES");
    REQUIRE_FALSE(waf.empty());
    REQUIRE_FALSE(cmake.empty());
    const std::string diff =
        SetDifference(cmake, "CMakeLists.txt SOURCE_FILES", waf, "wscript module.source");
    INFO("source lists differ:\n" << diff);
    CHECK(diff.empty());
}

TEST_CASE("build lists: wscript and CMakeLists.txt list the same headers", "[build]")
{
    const auto waf = WscriptList(Wscript(), "headers.source");
    const auto cmake = BuildLibList(CMakeLists(), "HEADER_FILES");
    REQUIRE_FALSE(waf.empty());
    REQUIRE_FALSE(cmake.empty());
    const std::string diff =
        SetDifference(cmake, "CMakeLists.txt HEADER_FILES", waf, "wscript headers.source");
    INFO("header lists differ:\n" << diff);
    CHECK(diff.empty());
}

TEST_CASE("build lists: every listed file exists", "[build]")
{
    std::vector<std::string> all;
    for (const auto& kw : {"SOURCE_FILES", "HEADER_FILES"})
    {
        const auto l = BuildLibList(CMakeLists(), kw);
        all.insert(all.end(), l.begin(), l.end());
    }
    for (const auto& name : {"module.source", "headers.source"})
    {
        const auto l = WscriptList(Wscript(), name);
        all.insert(all.end(), l.begin(), l.end());
    }
    std::set<std::string> missing;
    for (const auto& f : all)
    {
        if (!fs::is_regular_file(kModuleDir / f))
        {
            missing.insert(f);
        }
    }
    std::ostringstream msg;
    for (const auto& f : missing)
    {
        msg << "  src/wdmoe/" << f << "\n";
    }
    INFO("listed but missing:\n" << msg.str());
    CHECK(missing.empty());
}

namespace
{

/// The #include lines of the C++ files under dir that match pattern, as "file:line: text"
/// lines; files counts the C++ files read.
std::string
IncludesMatching(const fs::path& dir, const std::regex& pattern, std::size_t& files)
{
    std::ostringstream offenders;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
    {
        if (!entry.is_regular_file())
        {
            continue;
        }
        const std::string ext = entry.path().extension().string();
        if (ext != ".h" && ext != ".cc" && ext != ".hpp" && ext != ".cpp" && ext != ".inl")
        {
            continue;
        }
        ++files;
        std::istringstream in(ReadFile(entry.path()));
        std::string line;
        for (int n = 1; std::getline(in, line); ++n)
        {
            if (std::regex_search(line, pattern))
            {
                offenders << "  " << fs::relative(entry.path(), kModuleDir).string() << ":" << n
                          << ": " << line << "\n";
            }
        }
    }
    return offenders.str();
}

} // namespace

TEST_CASE("build lists: the llm library includes no ns-3 header", "[build]")
{
    const fs::path llm = kModuleDir / "model" / "llm";
    REQUIRE(fs::is_directory(llm));
    std::size_t files = 0;
    const std::string offenders =
        IncludesMatching(llm, std::regex("^\\s*#\\s*include\\s*[\"<]ns3/"), files);
    CHECK(files > 0);
    INFO("ns-3 includes in model/llm (it must stay plain C++17):\n" << offenders);
    CHECK(offenders.empty());
}

TEST_CASE("build lists: model/ includes no helper/ header", "[build]")
{
    // The include folders are flat, so a helper header is included by its bare name.
    std::string names;
    for (const auto& entry : fs::directory_iterator(kModuleDir / "helper"))
    {
        if (entry.path().extension() == ".h")
        {
            const std::string name = entry.path().filename().string();
            names +=
                (names.empty() ? "" : "|") + std::regex_replace(name, std::regex("\\."), "\\.");
        }
    }
    REQUIRE_FALSE(names.empty());
    std::size_t files = 0;
    const std::string offenders =
        IncludesMatching(kModuleDir / "model",
                         std::regex("^\\s*#\\s*include\\s*[\"<](ns3/|.*/)?(" + names + ")[\">]"),
                         files);
    CHECK(files > 0);
    INFO("helper/ headers included in model/ (the model layer sits below the helpers):\n"
         << offenders);
    CHECK(offenders.empty());
}

TEST_CASE("build lists: no test name holds a semicolon, which would split it in ctest", "[build]")
{
    // catch_discover_tests registers each name as a CMake list element: "a; b" became the two
    // tests "a" and " b", each matching no TEST_CASE, so the test never ran and always passed.
    const std::regex name("TEST_CASE\\(\\s*\"((?:[^\"\\\\]|\\\\.|\"\\s*\")*)\"");
    std::ostringstream offenders;
    std::size_t names = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(WDMOE_SOURCE_DIR) / "test"))
    {
        if (entry.path().extension() != ".cc")
        {
            continue;
        }
        const std::string text = ReadFile(entry.path());
        for (std::sregex_iterator m(text.begin(), text.end(), name), end; m != end; ++m)
        {
            ++names;
            if ((*m)[1].str().find(';') != std::string::npos)
            {
                offenders << "  " << entry.path().filename().string() << ": " << (*m)[1] << "\n";
            }
        }
    }
    CHECK(names > 100);
    INFO("test names with ';':\n" << offenders.str());
    CHECK(offenders.str().empty());
}
