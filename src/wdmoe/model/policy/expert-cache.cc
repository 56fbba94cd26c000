#include "expert-cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

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

ExpertCache::ExpertCache(const ExpertCache& other)
    : m_capacity(other.m_capacity),
      m_order(other.m_order)
{
    Reindex();
}

ExpertCache&
ExpertCache::operator=(const ExpertCache& other)
{
    if (this != &other)
    {
        m_capacity = other.m_capacity;
        m_order = other.m_order;
        Reindex();
    }
    return *this;
}

void
ExpertCache::Reindex()
{
    m_where.clear();
    for (auto it = m_order.begin(); it != m_order.end(); ++it)
    {
        m_where[*it] = it;
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

namespace ns3
{

ExpertMemory::ExpertMemory(std::vector<int> slotsPerLayer)
{
    m_layers.reserve(slotsPerLayer.size());
    for (int slots : slotsPerLayer)
    {
        // ExpertCache rejects a negative slot count.
        m_layers.emplace_back(slots);
    }
}

const ExpertCache&
ExpertMemory::Layer(int layer) const
{
    if (layer < 0 || layer >= int(m_layers.size()))
    {
        throw std::out_of_range("expert memory: layer " + std::to_string(layer) + " outside [0, " +
                                std::to_string(m_layers.size()) + ")");
    }
    return m_layers[layer];
}

int
ExpertMemory::Slots(int layer) const
{
    return Layer(layer).Capacity();
}

bool
ExpertMemory::Contains(int layer, int expert) const
{
    return Layer(layer).Contains(layer, expert);
}

bool
ExpertMemory::Preload(int layer, int expert)
{
    const ExpertCache& cache = Layer(layer);
    if (cache.Contains(layer, expert) || cache.Size() >= cache.Capacity())
    {
        return false;
    }
    m_layers[layer].Touch(layer, expert);
    m_entries[{layer, expert}] = Entry{Time(0), false};
    return true;
}

ExpertMemory::Demand
ExpertMemory::Peek(int layer, int expert, Time now, Time loadTime) const
{
    if (loadTime.IsStrictlyNegative())
    {
        throw std::invalid_argument("expert memory: negative load time");
    }
    if (Layer(layer).Contains(layer, expert))
    {
        const Entry& e = m_entries.at({layer, expert});
        return Demand{std::max(now, e.readyAt), true, e.prefetched};
    }
    return Demand{std::max(now, m_storageFreeAt) + loadTime, false, false};
}

ExpertMemory::Demand
ExpertMemory::Use(int layer, int expert, Time now, Time loadTime)
{
    const Demand d = Peek(layer, expert, now, loadTime);
    ExpertCache::Key evicted;
    m_layers[layer].Touch(layer, expert, &evicted);
    if (d.resident)
    {
        m_entries[{layer, expert}].prefetched = false;
        return d;
    }
    // The storage reader is busy for this load even when the layer keeps nothing.
    m_storageFreeAt = d.readyAt;
    m_entries.erase(evicted);
    if (m_layers[layer].Contains(layer, expert))
    {
        m_entries[{layer, expert}] = Entry{d.readyAt, false};
    }
    return d;
}

bool
ExpertMemory::Prefetch(int layer, int expert, Time now, Time loadTime)
{
    if (loadTime.IsStrictlyNegative())
    {
        throw std::invalid_argument("expert memory: negative load time");
    }
    const ExpertCache& cache = Layer(layer);
    if (cache.Capacity() == 0 || cache.Contains(layer, expert))
    {
        return false;
    }
    const Time readyAt = std::max(now, m_storageFreeAt) + loadTime;
    m_storageFreeAt = readyAt;
    ExpertCache::Key evicted;
    m_layers[layer].Touch(layer, expert, &evicted);
    m_entries.erase(evicted);
    m_entries[{layer, expert}] = Entry{readyAt, true};
    return true;
}

std::vector<int>
ExpertMemory::Contents(int layer) const
{
    std::vector<int> experts;
    for (const auto& key : Layer(layer).Contents())
    {
        experts.push_back(key.second);
    }
    return experts;
}

} // namespace ns3
