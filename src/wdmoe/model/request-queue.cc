#include "request-queue.h"

#include <stdexcept>
#include <string>

namespace ns3
{

RequestQueue::RequestQueue(std::size_t maxRunning, double budgetBytes)
    : m_maxRunning(maxRunning),
      m_budget(budgetBytes)
{
    if (maxRunning < 1 || !(budgetBytes > 0))
    {
        throw std::invalid_argument("RequestQueue needs a batch of at least one request and a "
                                    "positive KV budget");
    }
}

void
RequestQueue::Push(int id, double bytes)
{
    if (bytes > m_budget)
    {
        // It could never be admitted: the queue would wait for it forever.
        throw std::invalid_argument("request " + std::to_string(id) + " needs " +
                                    std::to_string((long long)bytes) +
                                    " bytes of KV memory, more than the " +
                                    std::to_string((long long)m_budget) + " bytes of the budget");
    }
    m_waiting.emplace_back(id, bytes);
}

std::vector<int>
RequestQueue::Admit()
{
    std::vector<int> admitted;
    while (!m_waiting.empty() && m_running.size() < m_maxRunning &&
           m_reserved + m_waiting.front().second <= m_budget)
    {
        const auto [id, bytes] = m_waiting.front();
        m_waiting.pop_front();
        m_running[id] = bytes;
        m_reserved += bytes;
        admitted.push_back(id);
    }
    return admitted;
}

void
RequestQueue::Release(int id)
{
    auto it = m_running.find(id);
    if (it == m_running.end())
    {
        throw std::logic_error("RequestQueue::Release of request " + std::to_string(id) +
                               ", which is not running");
    }
    m_reserved -= it->second;
    m_running.erase(it);
    if (m_running.empty())
    {
        m_reserved = 0; // no rounding residue survives an empty batch
    }
}

} // namespace ns3
