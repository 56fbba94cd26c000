#include "expert-cache.h"

#include <stdexcept>

namespace ns3
{

ExpertCache::ExpertCache(int capacity)
    : m_capacity(capacity)
{
    if (capacity < 0)
    {
        throw std::invalid_argument("an expert cache cannot hold a negative number of experts");
    }
}

bool
ExpertCache::Contains(int layer, int expert) const
{
    return m_where.count({layer, expert}) > 0;
}

bool
ExpertCache::Touch(int layer, int expert, Key* evicted)
{
    const Key key{layer, expert};
    if (evicted)
    {
        *evicted = {-1, -1};
    }
    auto it = m_where.find(key);
    if (it != m_where.end())
    {
        m_order.splice(m_order.begin(), m_order, it->second);
        return true;
    }
    if (m_capacity == 0)
    {
        return false;
    }
    if (int(m_order.size()) == m_capacity)
    {
        if (evicted)
        {
            *evicted = m_order.back();
        }
        m_where.erase(m_order.back());
        m_order.pop_back();
    }
    m_order.push_front(key);
    m_where[key] = m_order.begin();
    return false;
}

std::vector<ExpertCache::Key>
ExpertCache::Contents() const
{
    return std::vector<Key>(m_order.begin(), m_order.end());
}

} // namespace ns3
