/*
 * Expert placement: which device holds which expert, for every (layer, expert) pair.
 *
 * Two algorithms: round-robin (the baseline) and a minimum-cost flow on a Boost.Graph graph
 * (sources -> (layer, expert) -> device -> sink) whose costs are the devices' expected latency
 * contribution, made convex in the number of experts a device holds so that load spreads.
 * Both can add replicas in the memory left over; ChooseReplica picks the holder to use for one
 * transfer. Plain C++17 and header-only Boost.Graph; no ns-3 header.
 */
#ifndef WDMOE_EXPERT_PLACEMENT_H
#define WDMOE_EXPERT_PLACEMENT_H

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

/**
 * \brief What a placement must satisfy and what it costs.
 *
 * Aggregate: PlacementProblem{layers, experts, capacities, costs, replicas} works; loadPenalty
 * keeps its default there.
 */
struct PlacementProblem
{
    int layers = 0;  //!< MoE layers of the model, >= 1
    int experts = 0; //!< experts per layer, >= 1
    /// Experts each device can hold in memory (memory_bytes / expert_bytes), >= 0; one entry
    /// per device.
    std::vector<int> deviceCapacity;
    /// Expected latency contribution of serving one expert from that device, in seconds (for
    /// example its predicted round trip), >= 0 and finite; one entry per device.
    std::vector<double> deviceCost;
    bool replicas = false; //!< place extra copies in the memory left after the first pass
    /**
     * Convex load cost of PlaceMinCost: the j-th expert (j = 0, 1, ...) that the first pass puts
     * on device d costs deviceCost[d] * (1 + j * loadPenalty). Negative (the default): use
     * DefaultLoadPenalty(), i.e. 1 / ceil(layers * experts / devices). 0 fills cheap devices
     * blindly.
     */
    double loadPenalty = -1.0;
    /**
     * How often each (layer, expert) pair is used, layer-major (layers * experts entries, >= 0,
     * not all 0), e.g. the share of decode tokens that ran it on a profile text; empty: every
     * pair equally. PlaceMinCost then prices pair i on device d at weight_i * deviceCost[d] with
     * weight_i = popularity[i] / mean(popularity) (so equal popularity is the per-device cost
     * exactly), and PlaceChannelAware ranks the pairs by it.
     */
    std::vector<double> popularity = {};
};

/**
 * \brief The result: the devices holding each (layer, expert) pair.
 *
 * Holders(l, e)[0] is the copy the first pass placed (the primary); further copies follow in
 * the order they were added (ascending device index for PlaceMinCost).
 */
class ExpertPlacement
{
  public:
    ExpertPlacement() = default;
    /// An empty placement of layers x experts over the given number of devices (no holders
    /// yet). Throws std::invalid_argument for layers or experts < 1 or devices < 0.
    ExpertPlacement(int layers, int experts, int devices);

    /// Adds device as a holder of (layer, expert). Throws std::invalid_argument when an index
    /// is out of range or the device already holds that expert.
    void AddHolder(int layer, int expert, int device);

    int Layers() const { return m_layers; }

    int Experts() const { return m_experts; }

    int Devices() const { return m_devices; }

    /// The devices holding (layer, expert); never empty in a placement built by PlaceRoundRobin
    /// or PlaceMinCost. Throws std::out_of_range for an index out of range.
    const std::vector<int>& Holders(int layer, int expert) const;
    /// The (layer, expert) pairs device holds, layer-major order. Throws std::out_of_range for
    /// a device out of range.
    std::vector<std::pair<int, int>> ExpertsOn(int device) const;
    /// Number of experts device holds (primaries and copies).
    int Load(int device) const;
    /// Total number of stored experts, primaries included: layers * experts without replicas.
    int Copies() const;
    /// One line per layer, e.g. "layer 0: e0->{2} e1->{0,1}", then one line per device with
    /// its load.
    std::string ToString() const;

  private:
    int Index(int layer, int expert) const;

    int m_layers = 0;
    int m_experts = 0;
    int m_devices = 0;
    std::vector<std::vector<int>> m_holders; //!< per layer * m_experts + expert
    std::vector<int> m_load;                 //!< per device
};

/// Throws std::invalid_argument for a malformed problem (shape, capacities, costs, popularity)
/// or one whose devices cannot hold every expert once.
void ValidatePlacementProblem(const PlacementProblem& problem);

/// The weight of each pair PlaceMinCost uses: popularity / mean(popularity), or 1 for every pair
/// when problem.popularity is empty.
std::vector<double> PairWeights(const PlacementProblem& problem);

/// The loadPenalty PlaceMinCost uses for problem: problem.loadPenalty when >= 0, else
/// 1 / ceil(layers * experts / devices) (the j-th expert beyond an even share of a cheap device
/// then costs about twice its first).
double DefaultLoadPenalty(const PlacementProblem& problem);

/**
 * The k-th (layer, expert) pair in layer-major order goes to device k mod N, or, when that
 * device is full, to the next device (cyclically) with room. With problem.replicas, copy round
 * r = 1, 2, ... then offers every pair, in the same order, to device (k + r) mod N and onwards,
 * skipping full devices and devices that already hold the pair; rounds repeat until a round
 * places nothing, so every device ends up holding min(capacity, layers * experts) experts.
 * Throws std::invalid_argument for a malformed problem or too little total capacity.
 */
ExpertPlacement PlaceRoundRobin(const PlacementProblem& problem);

/**
 * Minimum-cost flow placement (Boost's successive_shortest_path_nonnegative_weights).
 *
 * First pass: source -> (l, e) capacity 1; (l, e) -> d capacity 1, cost w_le * deviceCost[d]
 * (w_le the pair's weight, PairWeights: 1 without popularity); d -> sink: min(capacity, L * E)
 * parallel unit arcs, the j-th with cost deviceCost[d] * j * loadPenalty. The flow has value
 * L * E, so every expert is placed exactly once, and it minimises
 * sum_(l,e) w_le deviceCost[d(l,e)] + sum_d sum_{j < n_d} deviceCost[d] * j * loadPenalty with n_d
 * the experts on d (the marginal costs increase, so the cheapest unit arcs are used first).
 * Without popularity that is sum_d sum_{j < n_d} deviceCost[d] * (1 + j * loadPenalty): only how
 * many experts each device holds matters, not which.
 *
 * Second pass (problem.replicas): the memory left, rem_d = capacity - n_d, is filled with
 * copies by a maximum flow of minimum cost: source -> (l, e) unit arcs, the j-th extra copy
 * costing j * wMax * cMax (cMax the largest deviceCost, wMax the largest weight, so copies
 * spread over experts before any expert gets a third holder); (l, e) -> d capacity 1 for each
 * device d not already holding it, cost wMax * cMax + w_le * (min(b, deviceCost[d]) - b) with b
 * the cost of the expert's primary holder (minus the weighted latency saving of the copy,
 * shifted to be >= 0); d -> sink capacity rem_d. Each device
 * ends up holding min(capacity, L * E) experts; experts whose only holder is expensive get the
 * copies on cheap devices first.
 *
 * Costs are rounded to integers: each arc cost c becomes llround(c * 1e9 / cMaxArc), cMaxArc
 * the largest arc cost of that pass (relative resolution 1e-9; any unit of time works).
 * Throws std::invalid_argument for a malformed problem or too little total capacity.
 */
ExpertPlacement PlaceMinCost(const PlacementProblem& problem);

/// The cost the first pass of PlaceMinCost minimises, computed from the primaries
/// (Holders(l, e)[0]) of placement: sum_(l,e) w_le deviceCost[d(l,e)] +
/// sum_d sum_{j < n_d} deviceCost[d] * j * loadPenalty (w_le = 1 without popularity).
double PlacementCost(const PlacementProblem& problem, const ExpertPlacement& placement);

/// Why `devices` devices of `slotsPerDevice` slots each (named `slotsName` in the answer) cannot
/// host every expert of a model of `layers` x `experts` ("" when they can), e.g. "4 x 3 slots
/// < 2 layers x 8 experts".
std::string HostingShortfall(long long devices,
                             int slotsPerDevice,
                             const std::string& slotsName,
                             int layers,
                             int experts);

/// The holder with the lowest predicted latency now (NaN counts as +infinity); ties go to the
/// lowest device index. Throws std::invalid_argument when holders is empty.
int ChooseReplica(const std::vector<int>& holders,
                  const std::function<double(int device)>& predictedLatency);

} // namespace ns3

#endif // WDMOE_EXPERT_PLACEMENT_H
