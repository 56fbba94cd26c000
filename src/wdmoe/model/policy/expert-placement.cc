/*
 * Expert placement: round-robin and minimum-cost flow (Boost.Graph), replicas, replica choice.
 */
#include "expert-placement.h"

// clang-format off
// find_flow_cost.hpp is not self-contained: it needs the named-parameter machinery that the
// algorithm header pulls in first.
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/successive_shortest_path_nonnegative_weights.hpp>
#include <boost/graph/find_flow_cost.hpp>
// clang-format on

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ns3
{

void
ValidatePlacementProblem(const PlacementProblem& p)
{
    if (p.layers < 1 || p.experts < 1)
    {
        throw std::invalid_argument("placement: layers and experts must be >= 1 (got " +
                                    std::to_string(p.layers) + " x " + std::to_string(p.experts) +
                                    ")");
    }
    if (p.deviceCapacity.size() != p.deviceCost.size())
    {
        throw std::invalid_argument("placement: deviceCapacity has " +
                                    std::to_string(p.deviceCapacity.size()) +
                                    " entries, deviceCost " + std::to_string(p.deviceCost.size()) +
                                    "; need one per device");
    }
    long long total = 0;
    for (std::size_t d = 0; d < p.deviceCapacity.size(); ++d)
    {
        if (p.deviceCapacity[d] < 0)
        {
            throw std::invalid_argument("placement: deviceCapacity[" + std::to_string(d) +
                                        "] is negative");
        }
        if (!(p.deviceCost[d] >= 0.0) || !std::isfinite(p.deviceCost[d]))
        {
            throw std::invalid_argument("placement: deviceCost[" + std::to_string(d) +
                                        "] must be finite and >= 0");
        }
        total += p.deviceCapacity[d];
    }
    if (std::isnan(p.loadPenalty) || std::isinf(p.loadPenalty))
    {
        throw std::invalid_argument("placement: loadPenalty must be finite");
    }
    const long long needed = static_cast<long long>(p.layers) * p.experts;
    if (!p.popularity.empty())
    {
        if (static_cast<long long>(p.popularity.size()) != needed)
        {
            throw std::invalid_argument(
                "placement: popularity has " + std::to_string(p.popularity.size()) +
                " entries; need layers x experts = " + std::to_string(needed));
        }
        double sum = 0.0;
        for (double v : p.popularity)
        {
            if (!(v >= 0.0) || !std::isfinite(v))
            {
                throw std::invalid_argument("placement: popularity must be finite and >= 0");
            }
            sum += v;
        }
        if (!(sum > 0.0))
        {
            throw std::invalid_argument("placement: popularity is 0 for every expert");
        }
    }
    if (total < needed)
    {
        throw std::invalid_argument("placement: the devices can hold " + std::to_string(total) +
                                    " experts, the model has " + std::to_string(p.layers) + " x " +
                                    std::to_string(p.experts) + " = " + std::to_string(needed));
    }
}

namespace
{

// --- a small minimum-cost-flow wrapper over Boost.Graph ---------------------------------------

using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
using FlowGraph = boost::adjacency_list<
    boost::vecS,
    boost::vecS,
    boost::directedS,
    boost::no_property,
    boost::property<
        boost::edge_capacity_t,
        long,
        boost::property<boost::edge_residual_capacity_t,
                        long,
                        boost::property<boost::edge_reverse_t,
                                        Traits::edge_descriptor,
                                        boost::property<boost::edge_weight_t, long long>>>>>;

/// Scale of the integer costs: the largest arc cost of a pass becomes this many units.
constexpr double kCostUnits = 1e9;

/**
 * A flow network whose arcs carry real costs; Solve() scales them to integers, runs
 * successive_shortest_path_nonnegative_weights from node 0 (source) to node 1 (sink) and
 * returns the flow on each arc, in the order the arcs were added.
 */
class MinCostFlow
{
  public:
    explicit MinCostFlow(int nodes)
        : m_nodes(nodes)
    {
    }

    /// Adds an arc; returns its id.
    int AddArc(int from, int to, long capacity, double cost)
    {
        m_arcs.push_back(Arc{from, to, capacity, cost});
        return static_cast<int>(m_arcs.size()) - 1;
    }

    std::vector<long> Solve(long long* totalCost = nullptr) const
    {
        FlowGraph g(m_nodes);
        auto capacity = boost::get(boost::edge_capacity, g);
        auto reverse = boost::get(boost::edge_reverse, g);
        auto weight = boost::get(boost::edge_weight, g);
        auto residual = boost::get(boost::edge_residual_capacity, g);

        double maxCost = 0.0;
        for (const Arc& a : m_arcs)
        {
            maxCost = std::max(maxCost, a.cost);
        }
        const double scale = maxCost > 0.0 ? kCostUnits / maxCost : 1.0;

        std::vector<Traits::edge_descriptor> forward;
        forward.reserve(m_arcs.size());
        for (const Arc& a : m_arcs)
        {
            const long long w = std::llround(a.cost * scale);
            auto e = boost::add_edge(a.from, a.to, g).first;
            auto r = boost::add_edge(a.to, a.from, g).first;
            capacity[e] = a.capacity;
            capacity[r] = 0;
            weight[e] = w;
            weight[r] = -w;
            reverse[e] = r;
            reverse[r] = e;
            forward.push_back(e);
        }
        const auto s = boost::vertex(0, g);
        const auto t = boost::vertex(1, g);
        // Explicit distance maps of type double: Boost adds Dijkstra's "infinity" of the
        // vertices that the residual graph no longer reaches into their potentials, which
        // overflows (undefined behaviour) with the integer weight type but is harmless in double
        // (those vertices are never reached again). Every reachable distance is an integer below
        // 2^53, so the arithmetic stays exact.
        const auto index = boost::get(boost::vertex_index, g);
        std::vector<Traits::edge_descriptor> pred(m_nodes);
        std::vector<double> distance(m_nodes, 0.0);
        std::vector<double> potential(m_nodes, 0.0);
        boost::successive_shortest_path_nonnegative_weights(
            g,
            s,
            t,
            capacity,
            residual,
            weight,
            reverse,
            index,
            boost::make_iterator_property_map(pred.begin(), index),
            boost::make_iterator_property_map(distance.begin(), index),
            boost::make_iterator_property_map(potential.begin(), index));
        if (totalCost != nullptr)
        {
            *totalCost = boost::find_flow_cost(g);
        }
        std::vector<long> flow(m_arcs.size());
        for (std::size_t i = 0; i < m_arcs.size(); ++i)
        {
            flow[i] = capacity[forward[i]] - residual[forward[i]];
        }
        return flow;
    }

  private:
    struct Arc
    {
        int from;
        int to;
        long capacity;
        double cost;
    };

    int m_nodes;
    std::vector<Arc> m_arcs;
};

} // namespace

// --- ExpertPlacement --------------------------------------------------------------------------

ExpertPlacement::ExpertPlacement(int layers, int experts, int devices)
    : m_layers(layers),
      m_experts(experts),
      m_devices(devices)
{
    if (layers < 1 || experts < 1 || devices < 0)
    {
        throw std::invalid_argument(
            "ExpertPlacement: need layers >= 1, experts >= 1, devices >= 0");
    }
    m_holders.assign(static_cast<std::size_t>(layers) * experts, {});
    m_load.assign(devices, 0);
}

int
ExpertPlacement::Index(int layer, int expert) const
{
    if (layer < 0 || layer >= m_layers || expert < 0 || expert >= m_experts)
    {
        throw std::out_of_range("ExpertPlacement: (layer " + std::to_string(layer) + ", expert " +
                                std::to_string(expert) + ") outside " + std::to_string(m_layers) +
                                " x " + std::to_string(m_experts));
    }
    return layer * m_experts + expert;
}

void
ExpertPlacement::AddHolder(int layer, int expert, int device)
{
    if (layer < 0 || layer >= m_layers || expert < 0 || expert >= m_experts || device < 0 ||
        device >= m_devices)
    {
        throw std::invalid_argument("ExpertPlacement::AddHolder: index out of range");
    }
    auto& h = m_holders[Index(layer, expert)];
    if (std::find(h.begin(), h.end(), device) != h.end())
    {
        throw std::invalid_argument("ExpertPlacement::AddHolder: device " + std::to_string(device) +
                                    " already holds (layer " + std::to_string(layer) + ", expert " +
                                    std::to_string(expert) + ")");
    }
    h.push_back(device);
    ++m_load[device];
}

const std::vector<int>&
ExpertPlacement::Holders(int layer, int expert) const
{
    return m_holders[Index(layer, expert)];
}

std::vector<std::pair<int, int>>
ExpertPlacement::ExpertsOn(int device) const
{
    if (device < 0 || device >= m_devices)
    {
        throw std::out_of_range("ExpertPlacement::ExpertsOn: device " + std::to_string(device) +
                                " outside 0.." + std::to_string(m_devices - 1));
    }
    std::vector<std::pair<int, int>> out;
    for (int l = 0; l < m_layers; ++l)
    {
        for (int e = 0; e < m_experts; ++e)
        {
            const auto& h = m_holders[l * m_experts + e];
            if (std::find(h.begin(), h.end(), device) != h.end())
            {
                out.emplace_back(l, e);
            }
        }
    }
    return out;
}

int
ExpertPlacement::Load(int device) const
{
    if (device < 0 || device >= m_devices)
    {
        throw std::out_of_range("ExpertPlacement::Load: device out of range");
    }
    return m_load[device];
}

int
ExpertPlacement::Copies() const
{
    int n = 0;
    for (const auto& h : m_holders)
    {
        n += static_cast<int>(h.size());
    }
    return n;
}

std::string
ExpertPlacement::ToString() const
{
    std::ostringstream os;
    for (int l = 0; l < m_layers; ++l)
    {
        os << "layer " << l << ":";
        for (int e = 0; e < m_experts; ++e)
        {
            os << " e" << e << "->{";
            const auto& h = m_holders[l * m_experts + e];
            for (std::size_t i = 0; i < h.size(); ++i)
            {
                os << (i ? "," : "") << h[i];
            }
            os << "}";
        }
        os << "\n";
    }
    for (int d = 0; d < m_devices; ++d)
    {
        os << "device " << d << ": " << m_load[d] << " experts\n";
    }
    return os.str();
}

// --- algorithms -------------------------------------------------------------------------------

std::vector<double>
PairWeights(const PlacementProblem& p)
{
    const std::size_t pairs = static_cast<std::size_t>(std::max(p.layers, 0)) *
                              static_cast<std::size_t>(std::max(p.experts, 0));
    if (p.popularity.empty())
    {
        return std::vector<double>(pairs, 1.0);
    }
    double sum = 0.0;
    for (double v : p.popularity)
    {
        sum += v;
    }
    const double mean = sum / static_cast<double>(p.popularity.size());
    std::vector<double> w;
    w.reserve(p.popularity.size());
    for (double v : p.popularity)
    {
        w.push_back(mean > 0.0 ? v / mean : 1.0);
    }
    return w;
}

double
DefaultLoadPenalty(const PlacementProblem& p)
{
    if (p.loadPenalty >= 0.0)
    {
        return p.loadPenalty;
    }
    const long long n = static_cast<long long>(p.deviceCapacity.size());
    const long long pairs = static_cast<long long>(std::max(p.layers, 0)) * std::max(p.experts, 0);
    if (n == 0 || pairs == 0)
    {
        return 0.0;
    }
    const long long share = (pairs + n - 1) / n;
    return 1.0 / static_cast<double>(share);
}

ExpertPlacement
PlaceRoundRobin(const PlacementProblem& p)
{
    ValidatePlacementProblem(p);
    const int n = static_cast<int>(p.deviceCapacity.size());
    ExpertPlacement out(p.layers, p.experts, n);
    std::vector<int> room(p.deviceCapacity);

    int k = 0;
    for (int l = 0; l < p.layers; ++l)
    {
        for (int e = 0; e < p.experts; ++e, ++k)
        {
            for (int i = 0; i < n; ++i)
            {
                const int d = (k + i) % n;
                if (room[d] > 0)
                {
                    out.AddHolder(l, e, d);
                    --room[d];
                    break;
                }
            }
        }
    }
    if (!p.replicas)
    {
        return out;
    }
    for (int round = 1;; ++round)
    {
        bool placed = false;
        k = 0;
        for (int l = 0; l < p.layers; ++l)
        {
            for (int e = 0; e < p.experts; ++e, ++k)
            {
                const auto& h = out.Holders(l, e);
                for (int i = 0; i < n; ++i)
                {
                    const int d = static_cast<int>((static_cast<long long>(k) + round + i) % n);
                    if (room[d] > 0 && std::find(h.begin(), h.end(), d) == h.end())
                    {
                        out.AddHolder(l, e, d);
                        --room[d];
                        placed = true;
                        break;
                    }
                }
            }
        }
        if (!placed)
        {
            break;
        }
    }
    return out;
}

namespace
{

// Nodes of the placement flows: 0 source, 1 sink, 2 .. 2+pairs-1 the (layer, expert) pairs,
// then the devices.
int
PairNode(int i)
{
    return 2 + i;
}

int
DeviceNode(const PlacementProblem& p, int d)
{
    return 2 + p.layers * p.experts + d;
}

/// First pass: every expert exactly once, convex per-device load cost.
void
PlaceEveryExpertOnce(const PlacementProblem& p, ExpertPlacement& out)
{
    const int n = static_cast<int>(p.deviceCapacity.size());
    const int pairs = p.layers * p.experts;
    const double penalty = DefaultLoadPenalty(p);
    const std::vector<double> weight = PairWeights(p);
    MinCostFlow flow(2 + pairs + n);
    std::vector<std::vector<int>> arcOf(pairs, std::vector<int>(n, -1));
    for (int i = 0; i < pairs; ++i)
    {
        flow.AddArc(0, PairNode(i), 1, 0.0);
        for (int d = 0; d < n; ++d)
        {
            if (p.deviceCapacity[d] > 0)
            {
                arcOf[i][d] =
                    flow.AddArc(PairNode(i), DeviceNode(p, d), 1, weight[i] * p.deviceCost[d]);
            }
        }
    }
    for (int d = 0; d < n; ++d)
    {
        const int units = std::min(p.deviceCapacity[d], pairs);
        for (int j = 0; j < units; ++j)
        {
            flow.AddArc(DeviceNode(p, d), 1, 1, p.deviceCost[d] * j * penalty);
        }
    }
    const std::vector<long> f = flow.Solve();
    for (int i = 0; i < pairs; ++i)
    {
        for (int d = 0; d < n; ++d)
        {
            if (arcOf[i][d] >= 0 && f[arcOf[i][d]] > 0)
            {
                out.AddHolder(i / p.experts, i % p.experts, d);
                break;
            }
        }
        if (out.Holders(i / p.experts, i % p.experts).empty())
        {
            // Cannot happen when total capacity >= pairs (checked above).
            throw std::logic_error("PlaceMinCost: the flow left an expert unplaced");
        }
    }
}

/// Second pass: fill the memory left with copies.
void
AddReplicas(const PlacementProblem& p, const std::vector<int>& room, ExpertPlacement& out)
{
    const int n = static_cast<int>(p.deviceCapacity.size());
    const int pairs = p.layers * p.experts;
    // With weights 1 (no popularity) every expression below is the unweighted one exactly.
    const std::vector<double> weight = PairWeights(p);
    const double wMax = *std::max_element(weight.begin(), weight.end());
    const double cMax = *std::max_element(p.deviceCost.begin(), p.deviceCost.end());
    MinCostFlow flow(2 + pairs + n);
    std::vector<std::vector<int>> arcOf(pairs, std::vector<int>(n, -1));
    for (int i = 0; i < pairs; ++i)
    {
        const int primary = out.Holders(i / p.experts, i % p.experts)[0];
        const double b = p.deviceCost[primary];
        int candidates = 0;
        for (int d = 0; d < n; ++d)
        {
            if (d != primary && room[d] > 0)
            {
                arcOf[i][d] = flow.AddArc(PairNode(i),
                                          DeviceNode(p, d),
                                          1,
                                          wMax * cMax + weight[i] * std::min(b, p.deviceCost[d]) -
                                              weight[i] * b);
                ++candidates;
            }
        }
        for (int j = 0; j < candidates; ++j)
        {
            flow.AddArc(0, PairNode(i), 1, j * wMax * cMax);
        }
    }
    for (int d = 0; d < n; ++d)
    {
        if (room[d] > 0)
        {
            flow.AddArc(DeviceNode(p, d), 1, room[d], 0.0);
        }
    }
    const std::vector<long> f = flow.Solve();
    for (int i = 0; i < pairs; ++i)
    {
        for (int d = 0; d < n; ++d)
        {
            if (arcOf[i][d] >= 0 && f[arcOf[i][d]] > 0)
            {
                out.AddHolder(i / p.experts, i % p.experts, d);
            }
        }
    }
}

} // namespace

ExpertPlacement
PlaceMinCost(const PlacementProblem& p)
{
    ValidatePlacementProblem(p);
    const int n = static_cast<int>(p.deviceCapacity.size());
    ExpertPlacement out(p.layers, p.experts, n);
    PlaceEveryExpertOnce(p, out);
    if (!p.replicas)
    {
        return out;
    }
    std::vector<int> room(n);
    bool anyRoom = false;
    for (int d = 0; d < n; ++d)
    {
        room[d] = p.deviceCapacity[d] - out.Load(d);
        anyRoom = anyRoom || room[d] > 0;
    }
    if (anyRoom)
    {
        AddReplicas(p, room, out);
    }
    return out;
}

double
PlacementCost(const PlacementProblem& p, const ExpertPlacement& placement)
{
    const int n = static_cast<int>(p.deviceCost.size());
    if (placement.Layers() != p.layers || placement.Experts() != p.experts ||
        placement.Devices() != n)
    {
        throw std::invalid_argument("PlacementCost: the placement does not match the problem");
    }
    const double penalty = DefaultLoadPenalty(p);
    const std::vector<double> weight = PairWeights(p);
    std::vector<int> count(n, 0);
    double pairCost = 0.0;
    for (int l = 0; l < p.layers; ++l)
    {
        for (int e = 0; e < p.experts; ++e)
        {
            const auto& h = placement.Holders(l, e);
            if (h.empty())
            {
                throw std::invalid_argument("PlacementCost: an expert has no holder");
            }
            ++count[h[0]];
            pairCost += weight[l * p.experts + e] * p.deviceCost[h[0]];
        }
    }
    // Without popularity, the per-device form (as the flow's arcs add it up).
    double cost = p.popularity.empty() ? 0.0 : pairCost;
    for (int d = 0; d < n; ++d)
    {
        for (int j = 0; j < count[d]; ++j)
        {
            cost += p.deviceCost[d] * ((p.popularity.empty() ? 1.0 : 0.0) + j * penalty);
        }
    }
    return cost;
}

std::string
HostingShortfall(long long devices,
                 int slotsPerDevice,
                 const std::string& slotsName,
                 int layers,
                 int experts)
{
    if (devices * slotsPerDevice >= (long long)layers * experts)
    {
        return "";
    }
    return std::to_string(devices) + " x " + std::to_string(slotsPerDevice) + " " + slotsName +
           " < " + std::to_string(layers) + " layers x " + std::to_string(experts) + " experts";
}

int
ChooseReplica(const std::vector<int>& holders,
              const std::function<double(int device)>& predictedLatency)
{
    if (holders.empty())
    {
        throw std::invalid_argument("ChooseReplica: the expert has no holder");
    }
    int best = -1;
    double bestLatency = 0.0;
    for (int d : holders)
    {
        double v = predictedLatency(d);
        if (std::isnan(v))
        {
            v = std::numeric_limits<double>::infinity();
        }
        if (best < 0 || v < bestLatency || (v == bestLatency && d < best))
        {
            best = d;
            bestLatency = v;
        }
    }
    return best;
}

} // namespace ns3
