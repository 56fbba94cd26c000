// What the benchmark programs share: medians and their command-line flags.
#ifndef WDMOE_BENCH_UTIL_H
#define WDMOE_BENCH_UTIL_H

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace wdmoe
{
namespace bench
{

inline double
Median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// Walks "--flag VALUE" arguments. Every mistake prints a message and the usage to stderr and
/// exits with code 2; --help/-h prints the usage and exits with 0.
class BenchArgs
{
  public:
    BenchArgs(std::string name, const char* usage, int argc, char** argv)
        : m_name(std::move(name)),
          m_usage(usage),
          m_argc(argc),
          m_argv(argv)
    {
    }

    /// Moves to the next flag; false when there is none.
    bool Next()
    {
        if (++m_index >= m_argc)
        {
            return false;
        }
        m_flag = m_argv[m_index];
        if (m_flag == "--help" || m_flag == "-h")
        {
            std::cout << m_usage;
            std::exit(0);
        }
        return true;
    }

    const std::string& Flag() const { return m_flag; }

    std::string Value()
    {
        if (m_index + 1 >= m_argc)
        {
            Fail(m_flag + " needs a value");
        }
        return m_argv[++m_index];
    }

    int PositiveInt()
    {
        const std::string v = Value();
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || n < 1)
        {
            Fail(m_flag + " expects a positive integer, got '" + v + "'");
        }
        return int(n);
    }

    [[noreturn]] void Unknown() { Fail("unknown option '" + m_flag + "'"); }

    [[noreturn]] void Fail(const std::string& message)
    {
        std::cerr << m_name << ": " << message << "\n" << m_usage;
        std::exit(2);
    }

  private:
    std::string m_name;
    const char* m_usage;
    int m_argc;
    char** m_argv;
    int m_index = 0;
    std::string m_flag;
};

} // namespace bench
} // namespace wdmoe

#endif
