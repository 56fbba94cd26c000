// The BS's admission queue: requests wait, in arrival order, until the batch has room and the
// KV-cache memory can hold all of their tokens.
#ifndef WDMOE_REQUEST_QUEUE_H
#define WDMOE_REQUEST_QUEUE_H

#include <cstddef>
#include <deque>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * First come, first served admission under two limits: at most maxRunning requests run at once
 * (the batch size), and the KV bytes reserved by the running requests never exceed the budget.
 * A request reserves its whole KV footprint (every token it will hold) when it is admitted and
 * frees it when it finishes, so that a running request never runs out of cache (no preemption).
 * A head of the queue that does not fit blocks the requests behind it (no overtaking).
 */
class RequestQueue
{
  public:
    explicit RequestQueue(std::size_t maxRunning = 1,
                          double budgetBytes = std::numeric_limits<double>::infinity());

    /// A request arrives needing `bytes` of KV memory (must not exceed the budget on its own).
    void Push(int id, double bytes);
    /// Admits from the head of the queue while fewer than maxRunning run and the head's bytes
    /// fit in what the running requests leave of the budget (reserved + bytes <= budget);
    /// returns the admitted ids in arrival order.
    std::vector<int> Admit();
    /// A running request finished: its bytes are free again.
    void Release(int id);

    std::size_t Waiting() const { return m_waiting.size(); }

    std::size_t Running() const { return m_running.size(); }

    double ReservedBytes() const { return m_reserved; }

    double BudgetBytes() const { return m_budget; }

  private:
    std::size_t m_maxRunning;
    double m_budget;
    double m_reserved = 0;
    std::deque<std::pair<int, double>> m_waiting; ///< (id, bytes) in arrival order
    std::map<int, double> m_running;              ///< id -> bytes reserved
};

} // namespace ns3

#endif
