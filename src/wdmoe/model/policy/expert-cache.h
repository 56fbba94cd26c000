// Which experts a device holds in memory: least-recently-used eviction.
#ifndef WDMOE_EXPERT_CACHE_H
#define WDMOE_EXPERT_CACHE_H

#include <list>
#include <map>
#include <utility>
#include <vector>

namespace ns3
{

/// The experts (layer, expert) resident in one device's memory, at most Capacity() of them.
/// Touch() marks one as just used, loading it (and evicting the least recently used one when
/// full) if it was not resident.
class ExpertCache
{
  public:
    using Key = std::pair<int, int>; ///< (layer, expert)

    /// capacity >= 0; 0 means nothing stays in memory (every use is a load).
    explicit ExpertCache(int capacity = 0);

    int Capacity() const { return m_capacity; }

    int Size() const { return int(m_order.size()); }

    bool Contains(int layer, int expert) const;
    /// Uses (layer, expert). Returns true on a hit. On a miss the expert becomes resident (if
    /// the capacity is not 0) and *evicted, when given, receives the key pushed out or
    /// (-1, -1).
    bool Touch(int layer, int expert, Key* evicted = nullptr);
    /// Resident experts, most recently used first.
    std::vector<Key> Contents() const;

  private:
    int m_capacity;
    std::list<Key> m_order; ///< most recently used first
    std::map<Key, std::list<Key>::iterator> m_where;
};

} // namespace ns3

#endif
