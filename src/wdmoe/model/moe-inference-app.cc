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
    DeviceWork plan;                        ///< its experts and tokens
    ExpertRequestPtr request;               ///< what was sent (null: nothing)
    Time sentAt;
    Time downlink, uplink;
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
            .AddTraceSource("TokenLatency",
                            "A token (or prefill) finished: its index and latency",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_tokenLatencyTrace),
                            "ns3::MoeInferenceApp::TokenTracedCallback")
            .AddTraceSource("TokenDone",
                            "A token (or prefill) finished: what happened to it (the rows of "
                            "tokens.csv)",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_tokenTrace),
                            "ns3::MoeInferenceApp::TokenRecordTracedCallback")
            .AddTraceSource("LayerDone",
                            "A layer of a pass finished: the layer and its decode statistics "
                            "(zero for a prefill)",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_layerTrace),
                            "ns3::MoeInferenceApp::LayerStatsTracedCallback")
            .AddTraceSource("ExpertDispatch",
                            "An expert's input left the BS: layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_dispatchTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("ExpertReturn",
                            "An expert's output reached the BS: layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_returnTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("ExpertDropped",
                            "A dispatched expert was lost (deadline, switch-off, coverage): "
                            "layer, expert, device",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_droppedTrace),
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("PrefetchHint",
                            "A prefetch hint left for a device that holds the predicted expert "
                            "outside its memory: layer, expert, device",
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
    m_transport = nullptr;
    m_devices.clear();
    m_work.clear();
    m_policy.selectionRule = nullptr;
    m_policy.allocationRule = nullptr;
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
MoeInferenceApp::SetCell(Ptr<ExpertTransport> transport,
                         std::vector<Ptr<ExpertDeviceApp>> devices,
                         const ExpertPlacement& placement,
                         const LatencyPredictor& predictor)
{
    m_transport = transport;
    m_devices = std::move(devices);
    m_placement = placement;
    m_predictor = predictor;
    m_work.assign(m_devices.size(), Work());
    for (const Ptr<ExpertDeviceApp>& device : m_devices)
    {
        device->SetAnswerCallback(MakeCallback(&MoeInferenceApp::OnAnswer, this));
    }
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
MoeInferenceApp::SetSelectionRule(Ptr<ExpertSelectionRule> rule)
{
    m_policy.selectionRule = rule;
}

void
MoeInferenceApp::SetAllocationRule(Ptr<BandwidthAllocationRule> rule)
{
    m_policy.allocationRule = rule;
}

Ptr<ExpertSelectionRule>
SelectionRuleOf(const InferencePolicy& policy)
{
    if (policy.selectionRule)
    {
        return policy.selectionRule;
    }
    switch (policy.selection)
    {
    case SelectionRule::WLR:
    {
        Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("wlr");
        rule->SetAttribute("Theta", DoubleValue(policy.wlrTheta));
        return rule;
    }
    case SelectionRule::STRAGGLER:
    {
        Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("straggler");
        rule->SetAttribute("WeightMax", DoubleValue(policy.straggler.weightMax));
        rule->SetAttribute("GainMin", DoubleValue(policy.straggler.gainMin));
        rule->SetAttribute("Tradeoff", DoubleValue(policy.straggler.tradeoff));
        return rule;
    }
    case SelectionRule::ALL:
    default:
        return ExpertSelectionRule::CreateRule("all");
    }
}

Ptr<BandwidthAllocationRule>
AllocationRuleOf(const InferencePolicy& policy)
{
    if (policy.allocationRule)
    {
        return policy.allocationRule;
    }
    switch (policy.joint ? AllocationRule::MINMAX : policy.allocation)
    {
    case AllocationRule::PROPORTIONAL:
        return BandwidthAllocationRule::CreateRule("proportional");
    case AllocationRule::MINMAX:
    {
        Ptr<BandwidthAllocationRule> rule = BandwidthAllocationRule::CreateRule("minmax");
        rule->SetAttribute("Floor", DoubleValue(policy.minmaxFloor));
        return rule;
    }
    case AllocationRule::EQUAL:
    default:
        return BandwidthAllocationRule::CreateRule("equal");
    }
}

void
MoeInferenceApp::StartApplication()
{
    NS_ABORT_MSG_IF(!m_model || !m_transport || m_tokens.empty(),
                    "MoeInferenceApp needs SetModel, SetCell and SetWorkload before it starts");
    const int context = m_model->Config().maxPositionEmbeddings;
    NS_ABORT_MSG_IF(m_promptTokens >= context,
                    "prompt of " << m_promptTokens << " tokens leaves no room in a context of "
                                 << context);
    for (const Ptr<ExpertDeviceApp>& d : m_devices)
    {
        NS_ABORT_MSG_IF(d->HasSwitchOff() && !m_deadline.IsStrictlyPositive(),
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
    // The rules are chosen once, here: the program's own objects or the policy's built-ins.
    m_policy.selectionRule = SelectionRuleOf(m_policy);
    m_policy.allocationRule = AllocationRuleOf(m_policy);
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

int
MoeInferenceApp::DeviceFor(int layer, int expert) const
{
    // Only replicated experts need a choice (it costs two channel evaluations each).
    const std::vector<int>& holders = m_placement.Holders(layer, expert);
    if (holders.size() == 1)
    {
        return holders[0];
    }
    return ChooseReplica(holders, [this](int device) {
        return m_predictor.EqualShareRoundTrip(uint32_t(device), 1, Simulator::Now());
    });
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
            auto it = std::find(w.plan.experts.begin(), w.plan.experts.end(), e);
            if (it == w.plan.experts.end())
            {
                w.plan.experts.push_back(e);
                w.plan.tokensOf.push_back(1);
            }
            else
            {
                ++w.plan.tokensOf[it - w.plan.experts.begin()];
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
            w.plan.tokens += !tokenSeen[item.first];
            tokenSeen[item.first] = true;
        }
    }
    return active;
}

double
MoeInferenceApp::PredictDevice(uint32_t device, double share) const
{
    return m_predictor.DeviceRoundTrip(device, m_work[device].plan, m_pass->Layer(), share);
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
    std::vector<RoundTripOfShare> roundTrip;
    for (uint32_t d : active)
    {
        roundTrip.push_back([this, d](double share) { return PredictDevice(d, share); });
    }
    const std::vector<double> shares = m_policy.allocationRule->Allocate(roundTrip);
    NS_ABORT_MSG_IF(shares.size() != active.size(),
                    "the allocation rule gave " << shares.size() << " shares for " << active.size()
                                                << " devices");
    return shares;
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

std::vector<double>
MoeInferenceApp::CandidateRoundTrips(const std::vector<bool>& keep)
{
    // tau under the allocation of the current selection; a candidate outside it is priced on
    // the share it would get as one more device of an equal split.
    const std::size_t n = keep.size();
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
    return tau;
}

void
MoeInferenceApp::SelectExperts()
{
    // Decode steps only (one token): which of the gated candidates run.
    RoutingDecision& candidates = m_decisions[0];
    const std::size_t n = candidates.experts.size();
    std::vector<double> weights(candidates.weights.begin(), candidates.weights.end());
    std::vector<bool> keep(n, true);
    SelectionContext context;
    context.layer = uint32_t(m_pass->Layer());
    context.layerScale =
        m_policy.stragglerLayerScale.empty() ? 1.0 : m_policy.stragglerLayerScale[context.layer];
    context.roundTrips = [this, &keep]() { return CandidateRoundTrips(keep); };
    context.layerLatency = [this](const std::vector<bool>& k) { return PredictSelection(k); };
    int rounds = 0;
    const int maxRounds = m_policy.joint ? std::max(1, m_policy.jointMaxIterations) : 1;
    while (rounds < maxRounds)
    {
        ++rounds;
        const std::vector<bool> next = m_policy.selectionRule->Select(weights, context);
        NS_ABORT_MSG_IF(next.size() != n ||
                            (n > 0 && std::find(next.begin(), next.end(), true) == next.end()),
                        "the selection rule must keep at least one of its " << n << " candidates");
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
    for (int e : predicted.experts)
    {
        const int d = DeviceFor(next, e);
        const ExpertMemory& memory = m_devices[d]->Memory();
        if (memory.Contains(next, e) || memory.Slots(next) == 0)
        {
            continue;
        }
        m_hintTrace(uint32_t(next), uint32_t(e), uint32_t(d));
        m_transport->SendControl(uint32_t(d),
                                 m_policy.hintBits,
                                 MakeCallback(&ExpertDeviceApp::Hint, m_devices[d]).Bind(next, e));
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
    m_layer = LayerStats();
    m_decisions.assign(n, RoutingDecision());
    m_deviceOf.assign(n, {});
    // Gating decides the candidates; each goes to its least loaded replica.
    for (int i = 0; i < n; ++i)
    {
        m_gating->Decide(m_pass->Request(i), m_decisions[i]);
        for (int e : m_decisions[i].experts)
        {
            m_deviceOf[i].push_back(DeviceFor(layer, e));
        }
    }
    if (decode)
    {
        LayerStats& stats = m_layer;
        ++stats.tokenLayers;
        stats.singleExpert += m_decisions[0].experts.size() == 1;
        if (!m_policy.selectionRule->KeepsEveryCandidate())
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
    SendRequests(active);
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
MoeInferenceApp::SendRequests(const std::vector<uint32_t>& active)
{
    // The BS cannot tell a switched-off device from a slow one: it gets its slice too, and only
    // the deadline ends the wait for it.
    const std::vector<double> shares = AllocateShares(active);
    m_transport->SetShares(active, shares);
    const int layer = m_pass->Layer();
    m_pending = 0;
    for (uint32_t d : active)
    {
        Work& w = m_work[d];
        for (int e : w.plan.experts)
        {
            m_dispatchTrace(layer, e, d);
        }
        if (!m_transport->InCoverage(d))
        {
            w.lost = true;
            LoseDevice(d, "out of coverage");
            continue;
        }
        ++m_pending;
        w.request = std::make_shared<ExpertRequest>();
        w.request->layer = layer;
        w.request->experts = w.plan.experts;
        w.request->tokensOf = w.plan.tokensOf;
        w.request->tokens = w.plan.tokens;
        w.sentAt = Simulator::Now();
        m_transport->Send(d,
                          ExpertTransport::DOWNLINK,
                          m_cost.HiddenStateBits(w.plan.tokens),
                          MakeCallback(&ExpertDeviceApp::Receive, m_devices[d]).Bind(w.request));
    }
}

void
MoeInferenceApp::OnAnswer(uint32_t device, ExpertRequestPtr request)
{
    Work& w = m_work[device];
    if (request != w.request || request->withdrawn)
    {
        return; // the BS gave up on it (the deadline dropped it)
    }
    w.returned = true;
    w.downlink = request->receivedAt - w.sentAt;
    w.uplink = Simulator::Now() - request->answeredAt;
    for (int e : request->experts)
    {
        m_returnTrace(request->layer, e, device);
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
    for (int e : w.plan.experts)
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
            w.request->withdrawn = true;
            LoseDevice(d, "deadline");
        }
    }
    m_pending = 0;
    FinishLayer();
}

Time
MoeInferenceApp::AccountDevices()
{
    // What the devices found in their memories, and the layer's critical path: the device that
    // returned last (all parts), else nothing.
    const bool decode = m_current.phase == "decode";
    LayerStats& stats = m_layer;
    const Work* critical = nullptr;
    Time criticalEnd;
    for (const Work& w : m_work)
    {
        if (w.request)
        {
            m_current.cacheHits += w.request->hits;
            m_current.cacheMisses += w.request->misses;
            stats.cacheHits += decode ? w.request->hits : 0;
            stats.cacheMisses += decode ? w.request->misses : 0;
        }
        if (w.returned)
        {
            const ExpertRequest& r = *w.request;
            const Time end = w.downlink + r.queue + r.load + r.compute + w.uplink;
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
        const ExpertRequest& r = *critical->request;
        m_current.downlink += critical->downlink;
        m_current.load += r.load;
        m_current.deviceCompute += r.compute;
        m_current.uplink += critical->uplink;
        m_current.waiting += r.queue;
        accounted = criticalEnd;
    }
    return accounted;
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
        m_layer.expertsRun += m_current.phase == "decode" ? kept.experts.size() : 0;
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
    const Time accounted = AccountDevices();
    m_current.waiting += (now - m_dispatchAt) - accounted; // e.g. a deadline wait
    m_layerTrace(uint32_t(m_pass->Layer()), m_layer);
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
    m_model->Forward(*m_referenceCache,
                     m_passTokens.data(),
                     int(m_passTokens.size()),
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
    m_tokenLatencyTrace(m_tokensDone++, m_current.latency);
    m_tokenTrace(m_current);
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
