// The fuzz harnesses' main() where libFuzzer is not linked in (builds without -DWDMOE_FUZZ=ON,
// with GCC, with or without the sanitizers): it takes the libFuzzer options the smoke tests use,
//   TARGET [-max_total_time=S] [-dict=FILE] [-seed=N] [-max_len=N] [-artifact_prefix=P]
//          CORPUS_DIR_OR_FILE...
// runs every corpus input through LLVMFuzzerTestOneInput, then, for S seconds, inputs made from
// them by random byte edits, splices and dictionary tokens (no coverage guidance: that is what
// the libFuzzer build adds). An input that crashes is written to P crash-<target>-<pid> first.
#include "fuzz-sandbox.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace
{

using Bytes = std::vector<std::uint8_t>;

struct Options
{
    double seconds = 0;
    std::string dict;
    unsigned seed = 1;
    std::size_t maxLen = 4096;
    std::string artifactPrefix;
    std::vector<std::string> corpus;
};

// The input being run, for the crash handler (async-signal-safe: write(2) of a plain buffer).
const std::uint8_t* g_current = nullptr;
std::size_t g_currentSize = 0;
char g_crashPath[256] = "crash-input";

void
OnCrash(int sig)
{
    const int fd = ::open(g_crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
    {
        if (::write(fd, g_current, g_currentSize) < 0)
        {
            // nothing more can be done inside a signal handler
        }
        ::close(fd);
    }
    const char note[] = "wdmoe fuzz replay: the input that crashed is in ";
    if (::write(2, note, sizeof note - 1) < 0 ||
        ::write(2, g_crashPath, std::strlen(g_crashPath)) < 0 || ::write(2, "\n", 1) < 0)
    {
    }
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

void
Run(const Bytes& input)
{
    g_current = input.data();
    g_currentSize = input.size();
    LLVMFuzzerTestOneInput(input.data(), input.size());
}

Bytes
ReadFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A libFuzzer/AFL dictionary: one "token" per line (name="..." or "..."), with \\, \" and
/// \xNN escapes; comments start with #.
std::vector<Bytes>
ReadDictionary(const std::string& path)
{
    std::vector<Bytes> tokens;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
    {
        const auto open = line.find('"');
        const auto close = line.rfind('"');
        if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open)
        {
            continue;
        }
        Bytes token;
        for (std::size_t i = open + 1; i < close; ++i)
        {
            if (line[i] == '\\' && i + 1 < close && line[i + 1] == 'x' && i + 3 < close)
            {
                token.push_back(std::uint8_t(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
                i += 3;
            }
            else if (line[i] == '\\' && i + 1 < close)
            {
                token.push_back(std::uint8_t(line[++i]));
            }
            else
            {
                token.push_back(std::uint8_t(line[i]));
            }
        }
        tokens.push_back(token);
    }
    return tokens;
}

/// One random edit of input: a byte changed, inserted or removed, a range removed or repeated,
/// a dictionary token inserted or written over, a cut, or a splice with another input.
void
Mutate(Bytes& input,
       const std::vector<Bytes>& corpus,
       const std::vector<Bytes>& dict,
       std::mt19937& rng)
{
    auto pick = [&](std::size_t n) { return n == 0 ? 0 : std::size_t(rng() % n); };
    const std::size_t at = pick(input.size() + 1);
    switch (rng() % 8)
    {
    case 0:
        if (!input.empty())
        {
            input[pick(input.size())] ^= std::uint8_t(1u << (rng() % 8));
        }
        break;
    case 1:
        input.insert(input.begin() + at, std::uint8_t(rng()));
        break;
    case 2:
        if (!input.empty())
        {
            const std::size_t from = pick(input.size());
            input.erase(input.begin() + from, input.begin() + from + 1 + pick(input.size() - from));
        }
        break;
    case 3:
        if (!input.empty())
        {
            const std::size_t from = pick(input.size());
            const Bytes part(input.begin() + from,
                             input.begin() + from + 1 + pick(input.size() - from));
            input.insert(input.begin() + pick(input.size() + 1), part.begin(), part.end());
        }
        break;
    case 4:
    case 5:
        if (!dict.empty())
        {
            const Bytes& token = dict[pick(dict.size())];
            if (rng() % 2 == 0 || at + token.size() > input.size())
            {
                input.insert(input.begin() + at, token.begin(), token.end());
            }
            else
            {
                std::copy(token.begin(), token.end(), input.begin() + at);
            }
        }
        break;
    case 6:
        input.resize(at);
        break;
    default:
        if (!corpus.empty())
        {
            const Bytes& other = corpus[pick(corpus.size())];
            const std::size_t from = pick(other.size() + 1);
            input.resize(at);
            input.insert(input.end(), other.begin() + from, other.end());
        }
        break;
    }
}

bool
ParseOption(const std::string& a, Options& o)
{
    auto value = [&](const char* name) -> const char* {
        const std::size_t n = std::strlen(name);
        return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = value("-max_total_time="))
    {
        o.seconds = std::atof(v);
    }
    else if (const char* v = value("-dict="))
    {
        o.dict = v;
    }
    else if (const char* v = value("-seed="))
    {
        o.seed = unsigned(std::strtoul(v, nullptr, 10));
    }
    else if (const char* v = value("-max_len="))
    {
        o.maxLen = std::size_t(std::strtoul(v, nullptr, 10));
    }
    else if (const char* v = value("-artifact_prefix="))
    {
        o.artifactPrefix = v;
    }
    else if (!a.empty() && a[0] == '-')
    {
        return false;
    }
    else
    {
        o.corpus.push_back(a);
    }
    return true;
}

} // namespace

int
main(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; ++i)
    {
        if (!ParseOption(argv[i], o))
        {
            std::fprintf(stderr,
                         "usage: %s [-max_total_time=S] [-dict=FILE] [-seed=N] [-max_len=N] "
                         "[-artifact_prefix=P] CORPUS_DIR_OR_FILE...\n(unknown option %s)\n",
                         argv[0],
                         argv[i]);
            return 2;
        }
    }
    const std::string name = std::filesystem::path(argv[0]).filename().string();
    std::snprintf(g_crashPath,
                  sizeof g_crashPath,
                  "%scrash-%s-%d",
                  o.artifactPrefix.c_str(),
                  name.c_str(),
                  int(::getpid()));
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    {
        std::signal(sig, OnCrash);
    }
    std::vector<Bytes> corpus;
    for (const std::string& c : o.corpus)
    {
        if (std::filesystem::is_directory(c))
        {
            for (const auto& entry : std::filesystem::directory_iterator(c))
            {
                corpus.push_back(ReadFile(entry.path().string()));
            }
        }
        else
        {
            corpus.push_back(ReadFile(c));
        }
    }
    for (const Bytes& input : corpus)
    {
        Run(input);
    }
    const std::vector<Bytes> dict = o.dict.empty() ? std::vector<Bytes>() : ReadDictionary(o.dict);
    std::mt19937 rng(o.seed);
    const auto start = std::chrono::steady_clock::now();
    long long mutated = 0;
    while (!corpus.empty() &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
               o.seconds)
    {
        Bytes input = corpus[rng() % corpus.size()];
        for (int edits = 1 + int(rng() % 8); edits > 0; --edits)
        {
            Mutate(input, corpus, dict, rng);
        }
        input.resize(std::min(input.size(), o.maxLen));
        Run(input);
        ++mutated;
    }
    std::printf("%s: replayed %zu corpus inputs, then ran %lld mutated inputs in %.1f s (%zu "
                "dictionary tokens); no crash\n",
                name.c_str(),
                corpus.size(),
                mutated,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                dict.size());
    return corpus.empty() ? 1 : 0;
}
