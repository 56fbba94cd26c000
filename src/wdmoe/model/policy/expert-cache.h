// Which experts a device holds in memory: least-recently-used eviction.
#ifndef WDMOE_EXPERT_CACHE_H
#define WDMOE_EXPERT_CACHE_H

#include "ns3/nstime.h"

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
    /// A copy has its own index into its own list (the default copy would keep iterators into
    /// the original's list, and every later touch would splice the original's nodes).
    ExpertCache(const ExpertCache& other);
    ExpertCache& operator=(const ExpertCache& other);
    ExpertCache(ExpertCache&&) = default;
    ExpertCache& operator=(ExpertCache&&) = default;

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
    /// Rebuilds m_where from m_order.
    void Reindex();

    int m_capacity;
    std::list<Key> m_order; ///< most recently used first
    std::map<Key, std::list<Key>::iterator> m_where;
};

/// One device's expert memory: an LRU per layer with its own slot count (layers never evict
/// each other's experts), and one storage reader that loads one expert at a time, demands and
/// prefetches alike, in request order (a load starts at max(request time, end of the previous
/// load)). An expert being loaded holds its slot (it is resident from the moment its load
/// starts) and is usable from its ready time on, so a demand for an expert still being
/// prefetched waits only for the rest of that load. Times are simulation times; layers are
/// checked (std::out_of_range), experts are not. A negative loadTime is
/// std::invalid_argument.
class ExpertMemory
{
  public:
    ExpertMemory() = default;
    /// slotsPerLayer[l] >= 0: experts of layer l kept in memory (std::invalid_argument when
    /// negative).
    explicit ExpertMemory(std::vector<int> slotsPerLayer);

    int Layers() const { return int(m_layers.size()); }

    int Slots(int layer) const;
    /// Resident (loaded or loading) at layer.
    bool Contains(int layer, int expert) const;
    /// Makes (layer, expert) resident and ready at time 0 (a warm start; not counted as
    /// prefetched), most recently used; false, and nothing changes, when it is already
    /// resident or the layer has no free slot (a preload never evicts).
    bool Preload(int layer, int expert);

    /// What a demand at `now` found and when the expert is ready.
    struct Demand
    {
        Time readyAt;               ///< >= now
        bool resident = false;      ///< no on-demand load started: loaded, or already being loaded
        bool wasPrefetched = false; ///< it was brought in by Prefetch() and not yet used since
    };

    /// The device needs (layer, expert) at `now`: a resident one is touched (most recently
    /// used) and is ready at max(now, its ready time); otherwise a load of loadTime starts when
    /// the storage reader is free (evicting the least recently used expert of the layer when
    /// full; with 0 slots the expert is loaded for this use only, but the storage reader is
    /// still busy for the load). A use clears the prefetched flag.
    Demand Use(int layer, int expert, Time now, Time loadTime);
    /// The same answer as Use() without changing anything (for latency predictions).
    Demand Peek(int layer, int expert, Time now, Time loadTime) const;
    /// A hint arrived at `now`: starts loading (layer, expert) like a demand would (queued on
    /// the storage reader, evicting the layer's least recently used expert when full) and makes
    /// it most recently used, flagged as prefetched. When it is already resident or the layer
    /// has 0 slots nothing happens (not even a touch: a hint is not a use) and false is
    /// returned.
    bool Prefetch(int layer, int expert, Time now, Time loadTime);

    /// When the storage reader finishes its queued loads.
    Time StorageFreeAt() const { return m_storageFreeAt; }

    /// Resident experts of a layer, most recently used first.
    std::vector<int> Contents(int layer) const;

  private:
    struct Entry
    {
        Time readyAt;
        bool prefetched = false;
    };

    /// The layer's LRU; std::out_of_range for a layer outside [0, Layers()).
    const ExpertCache& Layer(int layer) const;

    std::vector<ExpertCache> m_layers;
    std::map<ExpertCache::Key, Entry> m_entries; ///< one per resident expert
    Time m_storageFreeAt;
};

} // namespace ns3

#endif
