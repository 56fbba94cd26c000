// A persistent pool of worker threads for the expert kernel.
#ifndef WDMOE_LLM_THREAD_POOL_H
#define WDMOE_LLM_THREAD_POOL_H

#include <functional>

namespace wdmoe
{
namespace llm
{

/// Runs chunks of a loop on a fixed set of threads that live as long as the pool, so a
/// decode step pays a wake-up, not a thread start. The calling thread takes part, so a pool
/// of n threads starts n - 1 workers. Chunks are handed out through an atomic counter.
class ThreadPool
{
  public:
    /// threads <= 0: one per hardware core.
    explicit ThreadPool(int threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int Size() const;

    /// Calls fn(chunk, thread) for every chunk in [0, chunks), each exactly once, and returns
    /// when all are done. thread is in [0, Size()) and identifies the executing thread (for
    /// per-thread scratch). Not reentrant: fn must not call ParallelFor on the same pool.
    void ParallelFor(int chunks, const std::function<void(int chunk, int thread)>& fn);

  private:
    struct Impl;
    /// Stops and joins the workers and frees the state (the destructor, or a failed start).
    void StopWorkers();
    Impl* m_impl;
};

} // namespace llm
} // namespace wdmoe

#endif
