// wdmoe-sweep: runs every point of a sweep file as its own wdmoe-run process, N at a time,
// skips points already complete (resume), and merges the summaries into sweep.csv.

#include "json-config.h"
#include "result-files.h"
#include "sweep.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace ns3;

namespace
{

/// The folder this program lives in (wdmoe-run is built beside it).
std::string
OwnDirectory()
{
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
    {
        return ".";
    }
    path[n] = '\0';
    const std::string p(path);
    return p.substr(0, p.rfind('/'));
}

/// Starts wdmoe-run for one point, its output going to the point folder's run.log.
pid_t
Launch(const std::string& runProgram, const Sweep& sweep, std::size_t index)
{
    const std::string dir = sweep.PointDirectory(index);
    std::vector<std::string> args{runProgram, "--config=" + sweep.baseConfig, "--outDir=" + dir};
    for (const std::string& set : sweep.points[index].Sets())
    {
        args.push_back("--set");
        args.push_back(set);
    }
    const pid_t pid = ::fork();
    if (pid == 0)
    {
        const int log = ::open((dir + "/run.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log >= 0)
        {
            ::dup2(log, 1);
            ::dup2(log, 2);
        }
        std::vector<char*> argv;
        for (std::string& a : args)
        {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(runProgram.c_str(), argv.data());
        std::perror(("wdmoe-sweep: cannot start " + runProgram).c_str());
        ::_exit(127);
    }
    if (pid < 0)
    {
        throw std::runtime_error("cannot fork: " + std::string(std::strerror(errno)));
    }
    return pid;
}

void
Usage(std::ostream& out)
{
    out << "Usage: wdmoe-sweep SWEEP.json [--jobs N]\n"
           "Runs every point of the sweep (its base scenario with the point's fields set) as a\n"
           "separate wdmoe-run process, N at a time (default: the number of cores), into\n"
           "results/<sweep name>/points/NNNN/; points already complete are skipped; all\n"
           "summaries are merged into results/<sweep name>/sweep.csv.\n";
}

} // namespace

int
main(int argc, char** argv)
{
    std::string path;
    int jobs = int(std::thread::hardware_concurrency());
    for (int i = 1; i < argc; ++i)
    {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h")
        {
            Usage(std::cout);
            return 0;
        }
        if ((a == "--jobs" && i + 1 < argc) || a.rfind("--jobs=", 0) == 0)
        {
            const std::string v = a == "--jobs" ? argv[++i] : a.substr(7);
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1024)
            {
                std::cerr << "wdmoe-sweep: --jobs expects a number from 1 to 1024, got \"" << v
                          << "\"\n";
                return 2;
            }
            jobs = int(n);
        }
        else if (!a.empty() && a[0] != '-' && path.empty())
        {
            path = a;
        }
        else
        {
            std::cerr << "wdmoe-sweep: unknown argument \"" << a << "\"\n";
            Usage(std::cerr);
            return 2;
        }
    }
    if (path.empty())
    {
        Usage(std::cerr);
        return 2;
    }
    jobs = std::max(1, jobs);
    try
    {
        const Sweep sweep = Sweep::Load(path); // every point checked before anything runs
        const std::string runProgram = OwnDirectory() + "/wdmoe-run";
        std::vector<std::size_t> todo;
        for (std::size_t i = 0; i < sweep.points.size(); ++i)
        {
            if (!IsPointComplete(sweep.PointDirectory(i), sweep.points[i]))
            {
                todo.push_back(i);
            }
        }
        const std::size_t total = sweep.points.size();
        const std::size_t skipped = total - todo.size();
        std::fprintf(stderr,
                     "wdmoe sweep %s: %zu points, %zu already complete, %d at a time\n",
                     path.c_str(),
                     total,
                     skipped,
                     jobs);
        const bool terminal = ::isatty(2);
        const auto start = std::chrono::steady_clock::now();
        std::map<pid_t, std::size_t> running;
        std::vector<std::size_t> failed;
        std::size_t next = 0, done = 0;
        while (done < todo.size())
        {
            while (running.size() < std::size_t(jobs) && next < todo.size())
            {
                const std::size_t index = todo[next++];
                const std::string dir = sweep.PointDirectory(index);
                CreateResultDirectory(dir);
                // A rerun starts clean: the old summary (if any) cannot mark it complete.
                std::remove((dir + "/summary.json").c_str());
                WriteFileAtomically(dir + "/point.json", PointJson(sweep.points[index]));
                running[Launch(runProgram, sweep, index)] = index;
            }
            int status = 0;
            const pid_t pid = ::wait(&status);
            if (pid < 0)
            {
                throw std::runtime_error("wait failed: " + std::string(std::strerror(errno)));
            }
            const std::size_t index = running.at(pid);
            running.erase(pid);
            ++done;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            {
                failed.push_back(index);
            }
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const double eta = elapsed / done * (todo.size() - done);
            std::fprintf(stderr,
                         terminal ? "\r  %zu/%zu points done, elapsed %.0f s, ETA %.0f s   "
                                  : "  %zu/%zu points done, elapsed %.0f s, ETA %.0f s\n",
                         skipped + done,
                         total,
                         elapsed,
                         eta);
        }
        if (terminal)
        {
            std::fprintf(stderr, "\n");
        }
        if (!failed.empty())
        {
            for (std::size_t index : failed)
            {
                std::fprintf(stderr,
                             "wdmoe sweep: point %zu (%s) failed; see %s/run.log\n",
                             index,
                             sweep.points[index].Describe().c_str(),
                             sweep.PointDirectory(index).c_str());
            }
            std::fprintf(stderr, "wdmoe sweep: sweep.csv not written; rerun to retry\n");
            return 1;
        }
        const std::string csv = sweep.ResultDirectory() + "/sweep.csv";
        WriteFileAtomically(csv, MergeSweepCsv(sweep));
        std::printf("wdmoe sweep %s: %zu points (%zu run, %zu skipped) -> %s\n",
                    path.c_str(),
                    total,
                    todo.size(),
                    skipped,
                    csv.c_str());
        return 0;
    }
    catch (const std::exception& e)
    {
        std::cerr << "wdmoe sweep: error: " << e.what() << "\n";
        return 1;
    }
}
