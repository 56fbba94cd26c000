// A persistent pool of worker threads for the expert kernel.
//
// Protocol: the caller publishes a job (function, chunk count, a fresh chunk counter) and bumps
// a generation counter; every worker notices the new generation, takes chunks from the shared
// atomic counter until none are left, and checks out by incrementing a done counter. The caller
// takes chunks too and returns only once every worker has checked out of this generation, so
// the job (which refers to the caller's stack) never outlives ParallelFor, and a worker that
// wakes late finds the counter exhausted and simply checks out.
//
// Waiting: a decode step calls ParallelFor twice in quick succession (gate/up rows, then down
// rows), so both sides spin briefly before blocking on a condition variable. The spin is short
// because the machine may have as many busy threads as cores; a long spin would steal the core
// from the very thread it is waiting for.

#include "thread-pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace wdmoe
{
namespace llm
{

namespace
{

/// How long a thread busy-waits before it blocks. Long enough to bridge the gap between the two
/// phases of one expert and between the experts of one layer (microseconds), short enough that
/// an idle pool gives its cores back almost at once. Measured by the clock rather than by a
/// count of pause instructions, whose cost ranges from a few to over a hundred cycles between
/// CPU generations.
constexpr std::chrono::microseconds kSpinTime{50};

inline void
CpuRelax()
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

/// Busy-waits until ready() holds or kSpinTime has passed; returns ready()'s last value.
template <typename Ready>
bool
SpinUntil(const Ready& ready)
{
    const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
    for (unsigned i = 1;; ++i)
    {
        if (ready())
        {
            return true;
        }
        CpuRelax();
        // Reading the clock costs about as much as a pause; do it every sixteenth round.
        if (i % 16 == 0 && std::chrono::steady_clock::now() >= deadline)
        {
            return ready();
        }
    }
}

} // namespace

struct ThreadPool::Impl
{
    int size = 1;
    std::vector<std::thread> workers;

    std::mutex mutex;
    std::condition_variable workAvailable; ///< workers wait here for a new generation
    std::condition_variable workFinished;  ///< the caller waits here for all check-outs

    /// Bumped (release) after the job fields below are written; a worker that observes the new
    /// value (acquire) therefore sees the whole job.
    std::atomic<std::uint64_t> generation{0};
    /// Set before the final generation bump (which is released), so a worker that observes
    /// that generation also observes the flag.
    std::atomic<bool> stopping{false};

    // The current job. Written by the caller only while no worker is inside a job (all have
    // checked out of the previous generation), read by workers after observing the generation.
    const std::function<void(int, int)>* job = nullptr;
    int jobChunks = 0;
    std::atomic<int> nextChunk{0};
    std::atomic<int> workersDone{0};

    std::mutex errorMutex;
    std::exception_ptr firstError;

    void RunChunks(int thread);
    void WorkerLoop(int thread);
};

void
ThreadPool::Impl::RunChunks(int thread)
{
    for (;;)
    {
        const int chunk = nextChunk.fetch_add(1, std::memory_order_relaxed);
        if (chunk >= jobChunks)
        {
            return;
        }
        try
        {
            (*job)(chunk, thread);
        }
        catch (...)
        {
            {
                std::lock_guard<std::mutex> lock(errorMutex);
                if (!firstError)
                {
                    firstError = std::current_exception();
                }
            }
            // Hand out no further chunks: the call is failing anyway.
            nextChunk.store(jobChunks, std::memory_order_relaxed);
            return;
        }
    }
}

void
ThreadPool::Impl::WorkerLoop(int thread)
{
    std::uint64_t seen = 0;
    for (;;)
    {
        // Wait for a new generation: spin first, then block.
        const auto newGeneration = [&] {
            return generation.load(std::memory_order_acquire) != seen;
        };
        if (!SpinUntil(newGeneration))
        {
            std::unique_lock<std::mutex> lock(mutex);
            workAvailable.wait(lock, newGeneration);
        }
        seen = generation.load(std::memory_order_acquire);

        if (stopping.load(std::memory_order_relaxed))
        {
            return;
        }

        RunChunks(thread);

        // The last worker to check out wakes the caller. Notifying under the mutex means the
        // caller either sees the final count when it tests its predicate or is already waiting.
        const int done = workersDone.fetch_add(1, std::memory_order_acq_rel) + 1;
        if (done == size - 1)
        {
            std::lock_guard<std::mutex> lock(mutex);
            workFinished.notify_one();
        }
    }
}

ThreadPool::ThreadPool(int threads)
    : m_impl(new Impl)
{
    if (threads <= 0)
    {
        const unsigned hw = std::thread::hardware_concurrency();
        threads = hw == 0 ? 1 : static_cast<int>(hw);
    }
    m_impl->size = threads;
    m_impl->workers.reserve(threads - 1);
    try
    {
        for (int t = 1; t < threads; ++t)
        {
            m_impl->workers.emplace_back([this, t] { m_impl->WorkerLoop(t); });
        }
    }
    catch (...)
    {
        // Thread creation failed part-way: stop the ones that started before rethrowing.
        m_impl->size = static_cast<int>(m_impl->workers.size()) + 1;
        StopWorkers();
        throw;
    }
}

ThreadPool::~ThreadPool()
{
    StopWorkers();
}

void
ThreadPool::StopWorkers()
{
    {
        std::lock_guard<std::mutex> lock(m_impl->mutex);
        m_impl->stopping.store(true, std::memory_order_relaxed);
        m_impl->generation.fetch_add(1, std::memory_order_release);
    }
    m_impl->workAvailable.notify_all();
    for (auto& w : m_impl->workers)
    {
        w.join();
    }
    delete m_impl;
}

int
ThreadPool::Size() const
{
    return m_impl->size;
}

void
ThreadPool::ParallelFor(int chunks, const std::function<void(int chunk, int thread)>& fn)
{
    if (chunks <= 0)
    {
        return;
    }
    Impl& p = *m_impl;
    if (p.size == 1 || chunks == 1)
    {
        // Nothing to share: waking the workers would only add latency.
        for (int c = 0; c < chunks; ++c)
        {
            fn(c, 0);
        }
        return;
    }

    p.job = &fn;
    p.jobChunks = chunks;
    p.firstError = nullptr;
    p.nextChunk.store(0, std::memory_order_relaxed);
    p.workersDone.store(0, std::memory_order_relaxed);
    {
        // The bump happens under the mutex so a worker between its predicate check and its
        // wait cannot miss the notification.
        std::lock_guard<std::mutex> lock(p.mutex);
        p.generation.fetch_add(1, std::memory_order_release);
    }
    p.workAvailable.notify_all();

    p.RunChunks(0);

    const int workerCount = p.size - 1;
    const auto allDone = [&] {
        return p.workersDone.load(std::memory_order_acquire) == workerCount;
    };
    if (!SpinUntil(allDone))
    {
        std::unique_lock<std::mutex> lock(p.mutex);
        p.workFinished.wait(lock, allDone);
    }
    p.job = nullptr;

    if (p.firstError)
    {
        std::exception_ptr error = p.firstError;
        p.firstError = nullptr;
        std::rethrow_exception(error);
    }
}

} // namespace llm
} // namespace wdmoe
