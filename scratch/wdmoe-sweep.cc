// wdmoe-sweep: runs every point of a sweep file as its own wdmoe-run process, N at a time,
// skips points already complete (resume), and merges the summaries into sweep.csv.
//
// Started by mpirun (and built with MPI), each rank runs its share of the points the same way
// (point i on rank i % size), the ranks agree on success, and rank 0 merges sweep.csv. All MPI
// calls live in SweepRanks below; the runner loop only sees the list of points it is given.

#include "json-config.h"
#include "result-files.h"
#include "sweep.h"

#ifdef WDMOE_HAVE_MPI
#include <mpi.h>
#endif

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace ns3;

namespace
{

#ifndef WDMOE_HAVE_MPI
/// An environment variable as a number, or -1 when it is unset or not a number.
long
EnvNumber(const char* name)
{
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0')
    {
        return -1;
    }
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    return *end == '\0' ? n : -1;
}
#endif

/// True when an MPI launcher (Open MPI's mpirun, or a PMI/PMIx one such as MPICH's or Slurm's)
/// started this process: only then may it call MPI_Init, so that a plain run needs no MPI.
bool
StartedByMpiLauncher()
{
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    {
        if (std::getenv(name) != nullptr)
        {
            return true;
        }
    }
    return false;
}

/// The runners of this sweep: the ranks of an MPI job, or this process alone. Every MPI call of
/// the program is here; without MPI (not built with it, or not started by a launcher) the
/// collective operations are those of a single rank.
class SweepRanks
{
  public:
    SweepRanks(int& argc, char**& argv)
    {
        if (!StartedByMpiLauncher())
        {
            return;
        }
#ifdef WDMOE_HAVE_MPI
        // Plain MPI_Init: only the main thread calls MPI (the points are child processes).
        MPI_Init(&argc, &argv);
        m_mpi = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &m_size);
#else
        (void)argc;
        (void)argv;
        // Without MPI every process would run every point into the same folders.
        const long size = std::max(EnvNumber("OMPI_COMM_WORLD_SIZE"), EnvNumber("PMI_SIZE"));
        const long rank = std::max(EnvNumber("OMPI_COMM_WORLD_RANK"), EnvNumber("PMIX_RANK"));
        if (size > 1 || rank > 0)
        {
            m_launchedWithoutMpi = true;
        }
#endif
    }

    ~SweepRanks()
    {
#ifdef WDMOE_HAVE_MPI
        if (m_mpi)
        {
            MPI_Finalize();
        }
#endif
    }

    SweepRanks(const SweepRanks&) = delete;
    SweepRanks& operator=(const SweepRanks&) = delete;

    /// True when this process is one rank of an MPI job (MPI_Init was called).
    bool UnderMpi() const
    {
        return m_mpi;
    }

    int Rank() const
    {
        return m_rank;
    }

    int Size() const
    {
        return m_size;
    }

    /// True when an MPI launcher started several copies of a wdmoe-sweep built without MPI.
    bool LaunchedWithoutMpi() const
    {
        return m_launchedWithoutMpi;
    }

    /// Each value summed over all ranks; every rank gets the sums. Also waits for every rank.
    std::vector<long> SumOverRanks(std::vector<long> values) const
    {
#ifdef WDMOE_HAVE_MPI
        if (m_mpi)
        {
            std::vector<long> sums(values.size());
            MPI_Allreduce(values.data(),
                          sums.data(),
                          int(values.size()),
                          MPI_LONG,
                          MPI_SUM,
                          MPI_COMM_WORLD);
            return sums;
        }
#endif
        return values;
    }

    /// The lowest rank for which the condition holds, or Size() when it holds on none: the one
    /// rank that reports an error every rank may have met (such as a bad sweep file).
    int LowestRankWhere(bool condition) const
    {
        int lowest = condition ? m_rank : m_size;
#ifdef WDMOE_HAVE_MPI
        if (m_mpi)
        {
            const int mine = lowest;
            MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        }
#endif
        return lowest;
    }

  private:
    bool m_mpi = false;
    bool m_launchedWithoutMpi = false;
    int m_rank = 0;
    int m_size = 1;
};

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

std::string
HostName()
{
    char name[256] = "";
    ::gethostname(name, sizeof name - 1);
    return name;
}

/// Starts wdmoe-run for one point, its output going to the point folder's run.log, whose first
/// line says which runner started it and how (to rerun a failed point by hand).
pid_t
Launch(const std::string& runProgram,
       const Sweep& sweep,
       std::size_t index,
       const std::string& runnerName)
{
    const std::string dir = sweep.PointDirectory(index);
    std::vector<std::string> args{runProgram, "--config=" + sweep.baseConfig, "--outDir=" + dir};
    for (const std::string& set : sweep.points[index].Sets())
    {
        args.push_back("--set");
        args.push_back(set);
    }
    // Everything the child needs is made before fork(): an MPI process has threads, and the
    // child of a threaded process should do little more than exec.
    std::string header = "# wdmoe-sweep " + runnerName + ":";
    for (const std::string& a : args)
    {
        // Shell single quotes, an embedded ' as '\'': the line can be pasted to rerun the point.
        std::string quoted;
        for (char ch : a)
        {
            quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
        }
        header += " '" + quoted + "'";
    }
    header += "\n";
    const std::string log = dir + "/run.log";
    const std::string cannotStart = "wdmoe-sweep: cannot start " + runProgram;
    std::vector<char*> argv;
    for (std::string& a : args)
    {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0)
    {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
        {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            if (::write(1, header.data(), header.size()) < 0)
            {
                // the header is a courtesy; the run itself matters
            }
        }
        ::execv(argv[0], argv.data());
        std::perror(cannotStart.c_str());
        ::_exit(127);
    }
    if (pid < 0)
    {
        throw std::runtime_error("cannot fork: " + std::string(std::strerror(errno)));
    }
    return pid;
}

/// What a runner prints about its progress.
struct ProgressLines
{
    std::string prefix; ///< "" alone, "rank R: " as one of several ranks
    bool sameLine;      ///< rewrite one line (a terminal, one runner) instead of adding lines
};

/// Runs the given points, each as its own wdmoe-run, up to jobs at a time; `complete` more
/// points of this runner's `share` were complete before. Returns the points that failed.
std::vector<std::size_t>
RunPoints(const Sweep& sweep,
          const std::vector<std::size_t>& todo,
          std::size_t complete,
          std::size_t share,
          int jobs,
          const std::string& runnerName,
          const ProgressLines& progress)
{
    const std::string runProgram = OwnDirectory() + "/wdmoe-run";
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
            running[Launch(runProgram, sweep, index, runnerName)] = index;
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
                     progress.sameLine ? "\r  %s%zu/%zu points done, elapsed %.0f s, ETA %.0f s   "
                                       : "  %s%zu/%zu points done, elapsed %.0f s, ETA %.0f s\n",
                     progress.prefix.c_str(),
                     complete + done,
                     share,
                     elapsed,
                     eta);
    }
    if (progress.sameLine && !todo.empty())
    {
        std::fprintf(stderr, "\n");
    }
    return failed;
}

void
Usage(std::ostream& out)
{
    out << "Usage: wdmoe-sweep SWEEP.json [--jobs N]\n"
           "       mpirun -np R wdmoe-sweep SWEEP.json [--jobs N]\n"
           "Runs every point of the sweep (its base scenario with the point's fields set) as a\n"
           "separate wdmoe-run process, N at a time (default: the number of cores; under mpirun,\n"
           "1 per rank, point i on rank i % R), into results/<sweep name>/points/NNNN/; points\n"
           "already complete are skipped; all summaries are merged into\n"
           "results/<sweep name>/sweep.csv (by rank 0, once every point succeeded).\n";
}

/// The command line: the sweep file and --jobs (unset: the caller's default).
struct Arguments
{
    std::string path;
    std::optional<int> jobs;
};

/// Parses the command line; returns an exit status when the program should stop (0 for --help),
/// printing what it has to say only when `speak` (rank 0 alone, under MPI).
std::optional<int>
ParseArguments(int argc, char** argv, bool speak, Arguments& parsed)
{
    for (int i = 1; i < argc; ++i)
    {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h")
        {
            if (speak)
            {
                Usage(std::cout);
            }
            return 0;
        }
        if ((a == "--jobs" && i + 1 < argc) || a.rfind("--jobs=", 0) == 0)
        {
            const std::string v = a == "--jobs" ? argv[++i] : a.substr(7);
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1024)
            {
                if (speak)
                {
                    std::cerr << "wdmoe-sweep: --jobs expects a number from 1 to 1024, got \"" << v
                              << "\"\n";
                }
                return 2;
            }
            parsed.jobs = int(n);
        }
        else if (!a.empty() && a[0] != '-' && parsed.path.empty())
        {
            parsed.path = a;
        }
        else
        {
            if (speak)
            {
                std::cerr << "wdmoe-sweep: unknown argument \"" << a << "\"\n";
                Usage(std::cerr);
            }
            return 2;
        }
    }
    if (parsed.path.empty())
    {
        if (speak)
        {
            Usage(std::cerr);
        }
        return 2;
    }
    return std::nullopt;
}

} // namespace

int
main(int argc, char** argv)
{
    SweepRanks ranks(argc, argv);
    if (ranks.LaunchedWithoutMpi())
    {
        std::cerr << "wdmoe-sweep: started by mpirun with several processes, but built without "
                     "MPI (no MPI found when CMake configured the build: install libopenmpi-dev "
                     "and reconfigure); run it without mpirun\n";
        return 1;
    }
    const bool several = ranks.Size() > 1;
    const bool rank0 = ranks.Rank() == 0;
    Arguments arguments;
    if (const auto status = ParseArguments(argc, argv, rank0, arguments))
    {
        return *status;
    }
    const std::string& path = arguments.path;
    // Under MPI the launcher sets the parallelism (and binds each rank to a core by default):
    // one point per rank at a time unless asked for more.
    const int jobs = std::max(
        1,
        arguments.jobs.value_or(ranks.UnderMpi() ? 1 : int(std::thread::hardware_concurrency())));

    // Every rank reads and checks the whole sweep before any rank runs anything; the same file
    // gives the same error on every rank, so the lowest failing rank alone reports it.
    Sweep sweep;
    std::string loadError;
    try
    {
        sweep = Sweep::Load(path);
    }
    catch (const std::exception& e)
    {
        loadError = e.what();
    }
    const int reporter = ranks.LowestRankWhere(!loadError.empty());
    if (reporter < ranks.Size())
    {
        if (reporter == ranks.Rank())
        {
            std::cerr << "wdmoe sweep: error: " << loadError << "\n";
        }
        return 1;
    }

    const std::string runnerName = "rank " + std::to_string(ranks.Rank()) + " of " +
                                   std::to_string(ranks.Size()) + " on " + HostName();
    const std::vector<std::size_t> share = sweep.PointsOfRank(ranks.Rank(), ranks.Size());
    std::vector<std::size_t> todo;
    for (std::size_t index : share)
    {
        if (!IsPointComplete(sweep.PointDirectory(index), sweep.points[index]))
        {
            todo.push_back(index);
        }
    }
    const std::size_t total = sweep.points.size();
    const long skipped = ranks.SumOverRanks({long(share.size() - todo.size())})[0];
    if (rank0)
    {
        const std::string perRank = several ? std::to_string(ranks.Size()) + " ranks, " +
                                                  std::to_string(jobs) + " at a time per rank"
                                            : std::to_string(jobs) + " at a time";
        std::fprintf(stderr,
                     "wdmoe sweep %s: %zu points, %ld already complete, %s\n",
                     path.c_str(),
                     total,
                     skipped,
                     perRank.c_str());
    }

    // Whatever happens here, every rank goes on to the agreement below (an MPI rank that left
    // early would leave the others waiting for it).
    std::vector<std::size_t> failed;
    bool runnerFailed = false;
    try
    {
        const ProgressLines progress{several ? "rank " + std::to_string(ranks.Rank()) + ": " : "",
                                     !several && ::isatty(2)};
        failed = RunPoints(sweep,
                           todo,
                           share.size() - todo.size(),
                           share.size(),
                           jobs,
                           runnerName,
                           progress);
    }
    catch (const std::exception& e)
    {
        std::cerr << "wdmoe sweep: " << (several ? runnerName + ": " : "") << "error: " << e.what()
                  << "\n";
        runnerFailed = true;
    }
    for (std::size_t index : failed)
    {
        std::fprintf(stderr,
                     "wdmoe sweep: point %zu (%s) failed; see %s/run.log\n",
                     index,
                     sweep.points[index].Describe().c_str(),
                     sweep.PointDirectory(index).c_str());
    }
    const std::vector<long> sums =
        ranks.SumOverRanks({long(failed.size()) + long(runnerFailed), long(todo.size())});
    if (sums[0] > 0)
    {
        if (rank0)
        {
            std::fprintf(stderr, "wdmoe sweep: sweep.csv not written; rerun to retry\n");
        }
        return 1;
    }

    // Every point is complete on every rank: rank 0 merges, and all ranks exit with its result.
    bool mergeFailed = false;
    if (rank0)
    {
        try
        {
            const std::string csv = sweep.ResultDirectory() + "/sweep.csv";
            // sweep-means.csv first: sweep.csv, written last, marks a complete merge.
            WriteFileAtomically(sweep.ResultDirectory() + "/sweep-means.csv",
                                MergeSweepMeans(sweep));
            WriteFileAtomically(csv, MergeSweepCsv(sweep));
            std::printf("wdmoe sweep %s: %zu points (%ld run, %ld skipped) -> %s\n",
                        path.c_str(),
                        total,
                        sums[1],
                        skipped,
                        csv.c_str());
        }
        catch (const std::exception& e)
        {
            std::cerr << "wdmoe sweep: error: " << e.what() << "\n";
            mergeFailed = true;
        }
    }
    return ranks.LowestRankWhere(mergeFailed) < ranks.Size() ? 1 : 0;
}
