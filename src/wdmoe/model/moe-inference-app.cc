#include "moe-inference-app.h"

#include "gating.h"
#include "mixtral-model.h"
#include "routing.h"
#include "token-scoring.h"

#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/nstime.h"
#include "ns3/simulator.h"
#include "ns3/trace-source-accessor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("MoeInferenceApp");
NS_OBJECT_ENSURE_REGISTERED(MoeInferenceApp);

using wdmoe::llm::KvCache;
using wdmoe::llm::LayerStepper;
using wdmoe::llm::MixtralModel;
using wdmoe::llm::RoutingDecision;
using wdmoe::llm::RoutingRequest;

/// One device's share of the current layer.
struct MoeInferenceApp::Work
{
    bool active = false;
    bool returned = false;
    bool lost = false;
    std::vector<std::pair<int, int>> items; ///< (token, expert) pairs it serves
    std::vector<int> experts;               ///< distinct experts, in dispatch order
    std::vector<int> tokensOf;              ///< tokens routed to each of experts
    int uniqueTokens = 0;                   ///< distinct tokens carried on the air
    double dlHz = 0;
    double ulHz = 0;
    Time downlink, queue, load, compute, uplink;
};

TypeId
MoeInferenceApp::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::MoeInferenceApp")
            .SetParent<Application>()
            .SetGroupName("Wdmoe")
            .AddConstructor<MoeInferenceApp>()
            .AddAttribute("LayerDeadline",
                          "Longest wait for the experts of one layer after dispatch; experts "
                          "not back by then are dropped and the remaining weights "
                          "renormalised. 0 waits for all.",
                          TimeValue(Seconds(0)),
                          MakeTimeAccessor(&MoeInferenceApp::m_deadline),
                          MakeTimeChecker(Seconds(0)))
            .AddAttribute("MinRate",
                          "Coverage floor (bit/s): a device whose downlink or uplink rate on "
                          "its slice is below it at dispatch is out of coverage and its "
                          "experts are dropped.",
                          DoubleValue(0.0),
                          MakeDoubleAccessor(&MoeInferenceApp::m_minRateBps),
                          MakeDoubleChecker<double>(0.0))
            .AddTraceSource("TokenLatency",
                            "A token (or prefill) finished: its index and latency",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_tokenLatencyTrace),
                            "ns3::MoeInferenceApp::TokenTracedCallback")
            .AddTraceSource("ExpertDispatch",
                            "An expert's input left the BS: layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_dispatchTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("ExpertReturn",
                            "An expert's output reached the BS: layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_returnTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("CacheMiss",
                            "A device loaded an expert from storage: layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_cacheMissTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("ExpertDropped",
                            "A dispatched expert was lost (deadline, switch-off, coverage): "
                            "layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_droppedTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("PrefetchHint",
                            "A prefetch hint reached a device, which starts loading the expert: "
                            "layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_hintTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback");
    return tid;
}

MoeInferenceApp::MoeInferenceApp() = default;
MoeInferenceApp::~MoeInferenceApp() = default;

void
MoeInferenceApp::DoDispose()
{
    m_pass.reset();
    m_cache.reset();
    m_referenceCache.reset();
    m_model.reset();
    m_channel = nullptr;
    Application::DoDispose();
}

void
MoeInferenceApp::SetModel(std::shared_ptr<MixtralModel> model)
{
    m_model = std::move(model);
}

void
MoeInferenceApp::SetWorkload(const std::vector<int>& tokens, int promptTokens, int scoredTokens)
{
    if (promptTokens < 1 || scoredTokens < 1 ||
        std::size_t(promptTokens) + std::size_t(scoredTokens) > tokens.size())
    {
        throw std::invalid_argument(
            "the workload needs prompt_tokens + scored_tokens <= the text's tokens (" +
            std::to_string(promptTokens) + " + " + std::to_string(scoredTokens) + " > " +
            std::to_string(tokens.size()) + ")");
    }
    m_tokens = tokens;
    m_promptTokens = promptTokens;
    m_scoredTokens = scoredTokens;
}

void
MoeInferenceApp::SetCell(Ptr<WdmoeChannel> channel,
                         const BandPlan& band,
                         std::vector<ExpertDevice> devices,
                         const ExpertPlacement& placement)
{
    m_channel = channel;
    m_band = band;
    m_devices = std::move(devices);
    m_placement = placement;
    m_work.assign(m_devices.size(), Work());
}

void
MoeInferenceApp::SetCosts(const CostModel& cost, const ComputeProfile& bs)
{
    m_cost = cost;
    m_bs = bs;
}

void
MoeInferenceApp::SetPolicy(const InferencePolicy& policy)
{
    m_policy = policy;
}

void
MoeInferenceApp::ScheduleSwitchOff(uint32_t device, Time at)
{
    NS_ABORT_MSG_IF(device >= m_devices.size(), "no device " << device);
    m_devices[device].offAt = std::min(m_devices[device].offAt, at);
    Simulator::Schedule(at - Simulator::Now(), &MoeInferenceApp::OnSwitchOff, this, device);
}

void
MoeInferenceApp::StartApplication()
{
    NS_ABORT_MSG_IF(!m_model || !m_channel || m_tokens.empty(),
                    "MoeInferenceApp needs SetModel, SetCell and SetWorkload before it starts");
    const int context = m_model->Config().maxPositionEmbeddings;
    NS_ABORT_MSG_IF(m_promptTokens >= context,
                    "prompt of " << m_promptTokens << " tokens leaves no room in a context of "
                                 << context);
    for (const ExpertDevice& d : m_devices)
    {
        NS_ABORT_MSG_IF(d.offAt != Time::Max() && !m_deadline.IsStrictlyPositive(),
                        "a device is switched off but LayerDeadline is 0: the layer would wait "
                        "for it forever");
    }
    const int layers = m_model->Config().numHiddenLayers;
    if (m_policy.adaptiveGating)
    {
        NS_ABORT_MSG_IF(int(m_policy.sensitivity.size()) != layers,
                        "adaptive gating needs one sensitivity per layer ("
                            << m_policy.sensitivity.size() << " for " << layers << " layers)");
        m_gating = std::make_unique<wdmoe::llm::AdaptiveGating>(m_policy.sensitivity,
                                                                m_policy.adaptiveThreshold,
                                                                m_policy.adaptivePrefill);
    }
    else
    {
        m_gating = std::make_unique<wdmoe::llm::TopKRouting>();
    }
    NS_ABORT_MSG_IF(
        !m_policy.stragglerLayerScale.empty() && int(m_policy.stragglerLayerScale.size()) != layers,
        "the straggler rule needs one layer scale per layer ("
            << m_policy.stragglerLayerScale.size() << " for " << layers << " layers) or none");
    m_layerStats.assign(layers, LayerStats());
    m_prediction.assign(layers, {});
    // The caches hold what the first window feeds (the prompt, then one token per further
    // scored token) or a context's worth when the text needs more windows: a short run of a
    // long-context model allocates no cache of the whole context.
    const int capacity =
        int(std::min<long long>(context, (long long)m_promptTokens + m_scoredTokens));
    m_cache = std::make_unique<KvCache>(m_model->NewCache(capacity));
    m_referenceCache = std::make_unique<KvCache>(m_model->NewCache(capacity));
    m_nextToken = 0;
    m_scored = 0;
    StartPass();
}

void
MoeInferenceApp::StopApplication()
{
    Simulator::Cancel(m_deadlineEvent);
}

void
MoeInferenceApp::StartPass()
{
    // A new request (context window) when the cache cannot take one more token: prefill the
    // prompt, then one decode step per scored token.
    m_passTokens.clear();
    m_current = TokenRecord();
    if (m_request < 0 || m_cache->Length() >= m_cache->Capacity())
    {
        // The first window starts at the text's beginning; a later one re-reads the last
        // promptTokens - 1 tokens fed and feeds the next token with them.
        const int begin = m_request < 0 ? 0 : m_nextToken - m_promptTokens + 1;
        ++m_request;
        m_cache->Clear();
        m_referenceCache->Clear();
        m_referenceLags = true;
        m_passTokens.assign(m_tokens.begin() + begin, m_tokens.begin() + begin + m_promptTokens);
        m_nextToken = begin + m_promptTokens;
        m_current.phase = "prefill";
    }
    else
    {
        m_passTokens.push_back(m_tokens[m_nextToken]); // teacher forcing: the true token
        ++m_nextToken;
        m_current.phase = "decode";
    }
    m_current.request = m_request;
    m_current.tokensFed = int(m_passTokens.size());
    m_current.position = m_cache->Length() + int(m_passTokens.size()) - 1;
    m_current.start = Simulator::Now();
    m_lengthBeforePass = m_cache->Length();
    m_pass = std::make_unique<LayerStepper>(*m_model,
                                            *m_cache,
                                            m_passTokens.data(),
                                            int(m_passTokens.size()));
    StartLayer();
}

void
MoeInferenceApp::StartLayer()
{
    m_layerStart = Simulator::Now();
    ++m_generation;
    m_pass->Attend(); // real attention + router at the BS
    const Time bs = Seconds(m_cost.BsLayerSeconds(m_bs, m_pass->Tokens(), m_pass->FirstPosition()));
    m_current.bsCompute += bs;
    Simulator::Schedule(bs, &MoeInferenceApp::DispatchLayer, this);
}

double
MoeInferenceApp::PredictedRoundTrip(uint32_t device, int tokens) const
{
    // An equal share of the band among all devices, the channel as it is now.
    const double share = 1.0 / std::max<std::size_t>(1, m_devices.size());
    const Time now = Simulator::Now();
    const uint32_t ch = m_devices[device].channelIndex;
    const double bits = m_cost.HiddenStateBits(tokens);
    const double dl = bits / m_channel->DownlinkRate(ch, m_band.dlHz * share, now);
    const double ul = bits / m_channel->UplinkRate(ch, m_band.ulHz * share, now);
    return dl + m_cost.ExpertSeconds(m_devices[device].profile, tokens) + ul;
}

std::vector<uint32_t>
MoeInferenceApp::BuildWork(const std::vector<RoutingDecision>& decisions,
                           const std::vector<std::vector<int>>& deviceOf)
{
    for (auto& w : m_work)
    {
        w = Work();
    }
    std::vector<uint32_t> active;
    for (std::size_t i = 0; i < decisions.size(); ++i)
    {
        for (std::size_t k = 0; k < decisions[i].experts.size(); ++k)
        {
            const int d = deviceOf[i][k];
            const int e = decisions[i].experts[k];
            Work& w = m_work[d];
            if (!w.active)
            {
                w.active = true;
                active.push_back(uint32_t(d));
            }
            w.items.push_back({int(i), e});
            auto it = std::find(w.experts.begin(), w.experts.end(), e);
            if (it == w.experts.end())
            {
                w.experts.push_back(e);
                w.tokensOf.push_back(1);
            }
            else
            {
                ++w.tokensOf[it - w.experts.begin()];
            }
        }
    }
    std::sort(active.begin(), active.end());
    for (uint32_t d : active)
    {
        Work& w = m_work[d];
        std::vector<bool> tokenSeen(decisions.size(), false);
        for (const auto& item : w.items)
        {
            w.uniqueTokens += !tokenSeen[item.first];
            tokenSeen[item.first] = true;
        }
    }
    return active;
}

double
MoeInferenceApp::PredictDevice(uint32_t device, double share) const
{
    // What the BS expects of one device's part of the layer if it gets `share` of the band:
    // downlink (the channel it knows now, then the expected one), the device's compute queue, loads
    // it must wait for (its memory state is mirrored at the BS), the expert computations, uplink.
    const Work& w = m_work[device];
    const ExpertDevice& dev = m_devices[device];
    const Time now = Simulator::Now();
    const uint32_t ch = dev.channelIndex;
    const double bits = m_cost.HiddenStateBits(w.uniqueTokens);
    const Time arrive =
        now +
        m_channel->PredictTransferTime(ch, WdmoeChannel::DOWNLINK, bits, share * m_band.dlHz, now);
    const Time loadTime = Seconds(dev.profile.StorageLoadSeconds(m_cost.ExpertBytes()));
    Time t = std::max(arrive, dev.computeFreeAt);
    Time storageFree = std::max(arrive, dev.memory.StorageFreeAt());
    for (std::size_t k = 0; k < w.experts.size(); ++k)
    {
        const ExpertMemory::Demand d =
            dev.memory.Peek(m_pass->Layer(), w.experts[k], arrive, loadTime);
        Time ready = d.readyAt;
        if (!d.resident)
        {
            ready = storageFree + loadTime; // queued behind the loads before it
            storageFree = ready;
        }
        t = std::max(t, ready) + Seconds(m_cost.ExpertSeconds(dev.profile, w.tokensOf[k]));
    }
    // The uplink starts after the computation: on the known channel while that is still in
    // the current coherence block, else at the expected rate.
    const Time ul =
        m_channel->PredictTransferTime(ch, WdmoeChannel::UPLINK, bits, share * m_band.ulHz, now, t);
    return (t + ul - now).GetSeconds();
}

double
MoeInferenceApp::PredictLayer(const std::vector<uint32_t>& active,
                              const std::vector<double>& shares) const
{
    double slowest = 0;
    for (std::size_t k = 0; k < active.size(); ++k)
    {
        slowest = std::max(slowest, PredictDevice(active[k], shares[k]));
    }
    return slowest;
}

std::vector<double>
MoeInferenceApp::AllocateShares(const std::vector<uint32_t>& active) const
{
    if (active.empty())
    {
        return {};
    }
    switch (m_policy.joint ? AllocationRule::MINMAX : m_policy.allocation)
    {
    case AllocationRule::PROPORTIONAL:
    {
        // Expected load of a device: its predicted round trip at an equal share.
        const double equal = 1.0 / active.size();
        std::vector<double> load;
        for (uint32_t d : active)
        {
            load.push_back(PredictDevice(d, equal));
        }
        return ProportionalShares(load);
    }
    case AllocationRule::MINMAX:
    {
        // Every device keeps `floor` of the band (a fraction of its equal share); minmax splits
        // the rest. The floor guards devices the optimum would starve against fading the BS
        // cannot foresee.
        const double floor = m_policy.minmaxFloor / active.size();
        const double rest = 1.0 - floor * active.size();
        std::vector<RoundTripOfShare> roundTrip;
        for (uint32_t d : active)
        {
            roundTrip.push_back([this, d, floor, rest](double share) {
                return PredictDevice(d, floor + rest * share);
            });
        }
        std::vector<double> shares = MinMaxShares(roundTrip, 1e-4).shares;
        for (double& s : shares)
        {
            s = floor + rest * s;
        }
        return shares;
    }
    case AllocationRule::EQUAL:
    default:
        return EqualShares(active.size());
    }
}

std::vector<uint32_t>
MoeInferenceApp::BuildCandidateWork(const std::vector<bool>& keep)
{
    // The work of the (one) decode token if only its kept candidates ran.
    std::vector<RoutingDecision> subset(1);
    std::vector<std::vector<int>> deviceOf(1);
    for (std::size_t k = 0; k < keep.size(); ++k)
    {
        if (keep[k])
        {
            subset[0].experts.push_back(m_decisions[0].experts[k]);
            subset[0].weights.push_back(m_decisions[0].weights[k]);
            deviceOf[0].push_back(m_deviceOf[0][k]);
        }
    }
    return BuildWork(subset, deviceOf);
}

double
MoeInferenceApp::PredictSelection(const std::vector<bool>& keep)
{
    // The layer's predicted latency if only the kept candidates ran, with the band allocated
    // among their devices by the configured rule.
    const std::vector<uint32_t> active = BuildCandidateWork(keep);
    return PredictLayer(active, AllocateShares(active));
}

void
MoeInferenceApp::SelectExperts()
{
    // Decode steps only (one token): which of the gated candidates run.
    RoutingDecision& candidates = m_decisions[0];
    const std::size_t n = candidates.experts.size();
    std::vector<double> weights(candidates.weights.begin(), candidates.weights.end());
    std::vector<bool> keep(n, true);
    int rounds = 0;
    const int maxRounds = m_policy.joint ? std::max(1, m_policy.jointMaxIterations) : 1;
    while (rounds < maxRounds)
    {
        ++rounds;
        std::vector<bool> next;
        if (m_policy.selection == SelectionRule::WLR)
        {
            // tau under the allocation of the current selection; a candidate outside it is
            // priced on the share it would get as one more device of an equal split.
            const std::vector<uint32_t> active = BuildCandidateWork(keep);
            const std::vector<double> shares = AllocateShares(active);
            std::vector<double> tau(n);
            for (std::size_t k = 0; k < n; ++k)
            {
                const uint32_t d = uint32_t(m_deviceOf[0][k]);
                const auto at = std::find(active.begin(), active.end(), d);
                if (at != active.end())
                {
                    tau[k] = PredictDevice(d, shares[at - active.begin()]);
                }
                else
                {
                    std::vector<bool> alone(n, false);
                    alone[k] = true;
                    BuildCandidateWork(alone);
                    tau[k] = PredictDevice(d, 1.0 / (active.size() + 1));
                    BuildCandidateWork(keep);
                }
            }
            next = SelectWeightToLatency(weights, tau, m_policy.wlrTheta);
        }
        else if (m_policy.selection == SelectionRule::STRAGGLER)
        {
            next = SelectStragglers(
                weights,
                [this](const std::vector<bool>& k) { return PredictSelection(k); },
                m_policy.straggler,
                m_policy.stragglerLayerScale.empty()
                    ? 1.0
                    : m_policy.stragglerLayerScale[m_pass->Layer()]);
        }
        else
        {
            next = keep;
        }
        if (next == keep)
        {
            break;
        }
        keep = next;
    }
    m_current.jointIterations += rounds;
    if (std::find(keep.begin(), keep.end(), false) == keep.end())
    {
        return; // nothing dropped: the gating's weights stand as they are
    }
    const std::vector<double> kept = RenormalisedKept(weights, keep);
    RoutingDecision selected;
    std::vector<int> devices;
    for (std::size_t k = 0, j = 0; k < n; ++k)
    {
        if (keep[k])
        {
            selected.experts.push_back(candidates.experts[k]);
            selected.weights.push_back(float(kept[j++]));
            devices.push_back(m_deviceOf[0][k]);
        }
    }
    candidates = selected;
    m_deviceOf[0] = devices;
}

void
MoeInferenceApp::SendPrefetchHints()
{
    // AdapMoE's prediction: the next layer's gate on this layer's MoE input; the holders of
    // the predicted experts that are not resident get a hint and start loading.
    const int next = m_pass->Layer() + 1;
    const int experts = m_model->Config().numLocalExperts;
    std::vector<float> probs(experts);
    m_pass->PredictNextLayer(0, probs.data());
    RoutingDecision predicted;
    wdmoe::llm::TopKDecision(probs.data(), experts, m_model->Config().numExpertsPerTok, predicted);
    m_prediction[next] = predicted.experts;
    const Time now = Simulator::Now();
    for (int e : predicted.experts)
    {
        const std::vector<int>& holders = m_placement.Holders(next, e);
        const int d = holders.size() == 1 ? holders[0] : ChooseReplica(holders, [this](int dev) {
            return PredictedRoundTrip(dev, 1);
        });
        if (m_devices[d].memory.Contains(next, e) || m_devices[d].memory.Slots(next) == 0)
        {
            continue;
        }
        // A small control message on an equal share of the downlink.
        const double rate =
            m_channel->DownlinkRate(m_devices[d].channelIndex, m_band.dlHz / m_devices.size(), now);
        ++m_layerStats[next].hintsSent;
        Simulator::Schedule(Seconds(m_policy.hintBits / rate),
                            &MoeInferenceApp::OnHint,
                            this,
                            uint32_t(d),
                            next,
                            e);
    }
}

void
MoeInferenceApp::OnHint(uint32_t device, int layer, int expert)
{
    ExpertDevice& dev = m_devices[device];
    if (Simulator::Now() >= dev.offAt)
    {
        return;
    }
    const Time loadTime = Seconds(dev.profile.StorageLoadSeconds(m_cost.ExpertBytes()));
    if (dev.memory.Prefetch(layer, expert, Simulator::Now(), loadTime))
    {
        m_hintTrace(uint32_t(layer), uint32_t(expert), device);
    }
}

void
MoeInferenceApp::DispatchLayer()
{
    const int layer = m_pass->Layer();
    const int n = m_pass->Tokens();
    const bool decode = m_current.phase == "decode";
    const Time now = Simulator::Now();
    m_dispatchAt = now;
    m_decisions.assign(n, RoutingDecision());
    m_deviceOf.assign(n, {});
    // Gating decides the candidates; each goes to its least loaded replica.
    for (int i = 0; i < n; ++i)
    {
        m_gating->Decide(m_pass->Request(i), m_decisions[i]);
        for (int e : m_decisions[i].experts)
        {
            // Only replicated experts need a choice (it costs two channel evaluations each).
            const std::vector<int>& holders = m_placement.Holders(layer, e);
            m_deviceOf[i].push_back(holders.size() == 1 ? holders[0]
                                                        : ChooseReplica(holders, [this](int dev) {
                                                              return PredictedRoundTrip(dev, 1);
                                                          }));
        }
    }
    if (decode)
    {
        LayerStats& stats = m_layerStats[layer];
        ++stats.tokenLayers;
        stats.singleExpert += m_decisions[0].experts.size() == 1;
        if (m_policy.selection != SelectionRule::ALL)
        {
            SelectExperts();
        }
        if (m_policy.prefetch && layer > 0)
        {
            for (int e : m_decisions[0].experts)
            {
                const auto& p = m_prediction[layer];
                stats.predicted += std::find(p.begin(), p.end(), e) != p.end();
                ++stats.predictable;
            }
        }
        if (m_policy.prefetch && layer + 1 < m_model->Config().numHiddenLayers)
        {
            SendPrefetchHints();
        }
    }
    const std::vector<uint32_t> active = BuildWork(m_decisions, m_deviceOf);
    // The BS cannot tell a switched-off device from a slow one: it gets its slice too, and only
    // the deadline ends the wait for it.
    const std::vector<double> shares = AllocateShares(active);
    m_pending = 0;
    for (std::size_t k = 0; k < active.size(); ++k)
    {
        const uint32_t d = active[k];
        Work& w = m_work[d];
        w.dlHz = shares[k] * m_band.dlHz;
        w.ulHz = shares[k] * m_band.ulHz;
        const uint32_t ch = m_devices[d].channelIndex;
        for (int e : w.experts)
        {
            m_dispatchTrace(layer, e, d);
        }
        const double dlRate = m_channel->DownlinkRate(ch, w.dlHz, now);
        const double ulRate = m_channel->UplinkRate(ch, w.ulHz, now);
        if (dlRate < m_minRateBps || ulRate < m_minRateBps)
        {
            w.lost = true;
            LoseDevice(d, "out of coverage");
            continue;
        }
        ++m_pending;
        w.downlink = m_channel->TransferTime(ch,
                                             WdmoeChannel::DOWNLINK,
                                             m_cost.HiddenStateBits(w.uniqueTokens),
                                             w.dlHz,
                                             now);
        Simulator::Schedule(w.downlink, &MoeInferenceApp::OnDownlinkDone, this, m_generation, d);
    }
    if (m_deadline.IsStrictlyPositive())
    {
        m_deadlineEvent =
            Simulator::Schedule(m_deadline, &MoeInferenceApp::OnDeadline, this, m_generation);
    }
    if (m_pending == 0)
    {
        FinishLayer();
    }
}

void
MoeInferenceApp::OnDownlinkDone(uint32_t generation, uint32_t device)
{
    Work& w = m_work[device];
    if (generation != m_generation || w.lost || Simulator::Now() >= m_devices[device].offAt)
    {
        return; // stale, or the device is gone: nothing comes back (the deadline drops it)
    }
    ExpertDevice& dev = m_devices[device];
    const Time now = Simulator::Now();
    Time t = std::max(now, dev.computeFreeAt);
    w.queue = t - now;
    const int layer = m_pass->Layer();
    const bool decode = m_current.phase == "decode";
    const Time loadTime = Seconds(dev.profile.StorageLoadSeconds(m_cost.ExpertBytes()));
    // Every expert is asked for now (loads queue on the storage reader); each computes when it
    // is ready and the one before it is done. Waiting for a load is load time.
    for (std::size_t k = 0; k < w.experts.size(); ++k)
    {
        const ExpertMemory::Demand demand = dev.memory.Use(layer, w.experts[k], now, loadTime);
        if (demand.resident)
        {
            ++m_current.cacheHits;
            m_layerStats[layer].cacheHits += decode;
        }
        else
        {
            ++m_current.cacheMisses;
            m_layerStats[layer].cacheMisses += decode;
            m_cacheMissTrace(layer, w.experts[k], device);
        }
        if (demand.readyAt > t)
        {
            w.load += demand.readyAt - t;
            t = demand.readyAt;
        }
        const Time compute = Seconds(m_cost.ExpertSeconds(dev.profile, w.tokensOf[k]));
        w.compute += compute;
        t += compute;
    }
    dev.computeFreeAt = t;
    Simulator::Schedule(t - now, &MoeInferenceApp::OnComputeDone, this, generation, device);
}

void
MoeInferenceApp::OnComputeDone(uint32_t generation, uint32_t device)
{
    Work& w = m_work[device];
    if (generation != m_generation || w.lost || Simulator::Now() >= m_devices[device].offAt)
    {
        return;
    }
    w.uplink = m_channel->TransferTime(m_devices[device].channelIndex,
                                       WdmoeChannel::UPLINK,
                                       m_cost.HiddenStateBits(w.uniqueTokens),
                                       w.ulHz,
                                       Simulator::Now());
    Simulator::Schedule(w.uplink, &MoeInferenceApp::OnUplinkDone, this, generation, device);
}

void
MoeInferenceApp::OnUplinkDone(uint32_t generation, uint32_t device)
{
    Work& w = m_work[device];
    if (generation != m_generation || w.lost || Simulator::Now() >= m_devices[device].offAt)
    {
        return;
    }
    w.returned = true;
    for (int e : w.experts)
    {
        m_returnTrace(m_pass->Layer(), e, device);
    }
    if (--m_pending == 0)
    {
        FinishLayer();
    }
}

void
MoeInferenceApp::LoseDevice(uint32_t device, const char* reason)
{
    Work& w = m_work[device];
    NS_LOG_LOGIC("layer " << m_pass->Layer() << ": device " << device << " lost (" << reason
                          << ")");
    for (int e : w.experts)
    {
        m_droppedTrace(m_pass->Layer(), e, device);
    }
    m_current.expertsDropped += int(w.items.size());
}

void
MoeInferenceApp::OnDeadline(uint32_t generation)
{
    if (generation != m_generation || m_pending == 0)
    {
        return;
    }
    for (uint32_t d = 0; d < m_work.size(); ++d)
    {
        Work& w = m_work[d];
        if (w.active && !w.returned && !w.lost)
        {
            w.lost = true;
            LoseDevice(d, "deadline");
        }
    }
    m_pending = 0;
    FinishLayer();
}

void
MoeInferenceApp::OnSwitchOff(uint32_t device)
{
    // Nothing the BS can see: the device's transfers and results stop, and the layer deadline
    // (required by the config when failures are scheduled) drops its experts.
    NS_LOG_INFO("device " << device << " switched off");
}

void
MoeInferenceApp::FinishLayer()
{
    Simulator::Cancel(m_deadlineEvent);
    const Time now = Simulator::Now();
    // Keep the experts whose device came back, in the decision's order; renormalise the
    // weights of a token that lost some (one that lost none keeps its weights bit for bit).
    std::vector<RoutingDecision> final(m_decisions.size());
    for (std::size_t token = 0; token < m_decisions.size(); ++token)
    {
        const RoutingDecision& chosen = m_decisions[token];
        RoutingDecision& kept = final[token];
        for (std::size_t k = 0; k < chosen.experts.size(); ++k)
        {
            if (m_work[m_deviceOf[token][k]].returned)
            {
                kept.experts.push_back(chosen.experts[k]);
                kept.weights.push_back(chosen.weights[k]);
            }
        }
        m_current.expertsRun += int(kept.experts.size());
        m_layerStats[m_pass->Layer()].expertsRun +=
            m_current.phase == "decode" ? kept.experts.size() : 0;
        if (kept.experts.empty())
        {
            ++m_current.emptyLayers; // the residual stream alone goes on
        }
        else if (kept.experts.size() < chosen.experts.size())
        {
            float sum = 0;
            for (float w : kept.weights)
            {
                sum += w;
            }
            for (float& w : kept.weights)
            {
                w /= sum;
            }
        }
    }
    // The layer's critical path: the device that returned last (all parts), else nothing.
    const Work* critical = nullptr;
    Time criticalEnd;
    for (const Work& w : m_work)
    {
        if (w.returned)
        {
            const Time end = w.downlink + w.queue + w.load + w.compute + w.uplink;
            if (!critical || end > criticalEnd)
            {
                critical = &w;
                criticalEnd = end;
            }
        }
    }
    Time accounted;
    if (critical)
    {
        m_current.downlink += critical->downlink;
        m_current.load += critical->load;
        m_current.deviceCompute += critical->compute;
        m_current.uplink += critical->uplink;
        m_current.waiting += critical->queue;
        accounted = criticalEnd;
    }
    m_current.waiting += (now - m_dispatchAt) - accounted; // e.g. a deadline wait
    m_current.routedLikeTopK = m_current.routedLikeTopK && RoutesLikeTopK(final);
    m_pass->RunExperts(final);
    if (!m_pass->Done())
    {
        StartLayer();
        return;
    }
    const Time head = Seconds(m_cost.LmHeadSeconds(m_bs, m_pass->Tokens()));
    m_current.bsCompute += head;
    Simulator::Schedule(head, &MoeInferenceApp::FinishPass, this);
}

bool
MoeInferenceApp::RoutesLikeTopK(const std::vector<RoutingDecision>& decisions) const
{
    RoutingDecision topK;
    for (std::size_t i = 0; i < decisions.size(); ++i)
    {
        const wdmoe::llm::RoutingRequest request = m_pass->Request(int(i));
        wdmoe::llm::TopKDecision(request.gateProbs, request.numExperts, request.topK, topK);
        if (decisions[i].experts != topK.experts || decisions[i].weights != topK.weights)
        {
            return false;
        }
    }
    return true;
}

const float*
MoeInferenceApp::ReferenceLogits(const float* logits, std::vector<float>& reference)
{
    // A pass that routed like top-k on a cache that holds what the top-k model's would is the
    // top-k model's pass: its logits are the reference's, bit for bit.
    if (m_referenceLags && m_current.routedLikeTopK)
    {
        return logits;
    }
    if (m_referenceLags)
    {
        // The first pass of this window to route otherwise: until it, the run's cache held the
        // top-k model's keys and values.
        *m_referenceCache = *m_cache;
        m_referenceCache->Truncate(m_lengthBeforePass);
        m_referenceLags = false;
    }
    reference.resize(std::size_t(m_passTokens.size()) * m_model->Config().vocabSize);
    m_model->Forward(*m_referenceCache, m_passTokens.data(), int(m_passTokens.size()),
                     reference.data());
    return reference.data();
}

void
MoeInferenceApp::FinishPass()
{
    const int vocab = m_model->Config().vocabSize;
    const int n = m_pass->Tokens();
    std::vector<float> logits(std::size_t(n) * vocab);
    m_pass->Logits(logits.data());
    m_pass.reset();
    std::vector<float> reference;
    const float* referenceLogits = ReferenceLogits(logits.data(), reference);
    const float* last = &logits[std::size_t(n - 1) * vocab];
    const float* refLast = &referenceLogits[std::size_t(n - 1) * vocab];
    m_current.nll = wdmoe::llm::NegativeLogLikelihood(last, vocab, m_tokens[m_nextToken]);
    m_current.kl = wdmoe::llm::KlDivergence(refLast, last, vocab);
    m_current.agreesWithTopK =
        wdmoe::llm::ArgMax(last, vocab) == wdmoe::llm::ArgMax(refLast, vocab);
    m_current.latency = Simulator::Now() - m_current.start;
    m_tokenLatencyTrace(uint32_t(m_records.size()), m_current.latency);
    m_records.push_back(m_current);
    ++m_scored;
    if (m_scored >= m_scoredTokens || m_nextToken + 1 >= int(m_tokens.size()))
    {
        m_finished = true;
        Simulator::Stop(); // other objects (a random walk) would keep the event queue busy
        return;
    }
    StartPass();
}

} // namespace ns3
