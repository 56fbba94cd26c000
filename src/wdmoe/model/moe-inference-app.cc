#include "moe-inference-app.h"

#include "decode-selection.h"
#include "mixtral-model.h"
#include "teacher-forced-stream.h"

#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/nstime.h"
#include "ns3/simulator.h"
#include "ns3/trace-source-accessor.h"
#include "ns3/uinteger.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("MoeInferenceApp");
NS_OBJECT_ENSURE_REGISTERED(MoeInferenceApp);

using wdmoe::llm::LayerStepper;
using wdmoe::llm::MixtralModel;
using wdmoe::llm::RoutingDecision;

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
            .AddAttribute("MaxBatch",
                          "Serving: most requests running at once (the batch of a decode step)",
                          UintegerValue(8),
                          MakeUintegerAccessor(&MoeInferenceApp::m_maxBatch),
                          MakeUintegerChecker<uint32_t>(1))
            .AddAttribute("ChunkTokens",
                          "Serving: the token budget of a step of chunked prefill (decode tokens "
                          "plus prefill chunks); 0 schedules prefill-first",
                          UintegerValue(0),
                          MakeUintegerAccessor(&MoeInferenceApp::m_chunkTokens),
                          MakeUintegerChecker<uint32_t>())
            .AddAttribute("KvMemoryBytes",
                          "Serving: the BS memory for the requests' KV caches; a request waits "
                          "for admission until its whole footprint fits (0: unlimited)",
                          DoubleValue(0),
                          MakeDoubleAccessor(&MoeInferenceApp::m_kvMemoryBytes),
                          MakeDoubleChecker<double>(0))
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
                            "ns3::MoeInferenceApp::ExpertTracedCallback")
            .AddTraceSource("ExchangeDone",
                            "A device's answer of the layer in flight reached the BS: its "
                            "downlink and uplink transfer times (the rows of transfers.csv)",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_exchangeTrace),
                            "ns3::MoeInferenceApp::ExchangeTracedCallback")
            .AddTraceSource("RequestDone",
                            "Serving: a request gave its last output token (the rows of "
                            "requests.csv)",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_requestTrace),
                            "ns3::MoeInferenceApp::RequestTracedCallback")
            .AddTraceSource("StepDone",
                            "A step of the BS finished: its passes, tokens, duration and BS time",
                            MakeTraceSourceAccessor(&MoeInferenceApp::m_stepTrace),
                            "ns3::MoeInferenceApp::StepTracedCallback");
    return tid;
}

MoeInferenceApp::MoeInferenceApp()
    : m_interarrival(CreateObject<ExponentialRandomVariable>()),
      m_promptLengths(CreateObject<UniformRandomVariable>()),
      m_outputLengths(CreateObject<UniformRandomVariable>())
{
}

MoeInferenceApp::~MoeInferenceApp() = default;

void
MoeInferenceApp::DoDispose()
{
    m_single.reset();
    m_serving = RequestScheduler();
    m_interarrival = nullptr;
    m_promptLengths = nullptr;
    m_outputLengths = nullptr;
    m_model.reset();
    m_transport = nullptr;
    m_devices.clear();
    m_exchange.clear();
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
    NS_ABORT_MSG_IF(!m_model, "MoeInferenceApp needs SetModel before SetWorkload");
    m_single = std::make_unique<Lane>();
    m_single->request = -1;
    m_single->stream = std::make_unique<wdmoe::llm::TeacherForcedStream>(*m_model,
                                                                         tokens,
                                                                         promptTokens,
                                                                         scoredTokens);
    m_servingOn = false;
}

void
MoeInferenceApp::SetRequests(const std::vector<int>& tokens, const ServingWorkload& workload)
{
    NS_ABORT_MSG_IF(!m_model, "MoeInferenceApp needs SetModel before SetRequests");
    m_single.reset();
    m_servingOn = true;
    m_requestTokens = tokens;
    m_workload = workload;
}

int64_t
MoeInferenceApp::AssignStreams(int64_t stream)
{
    if (!m_servingOn)
    {
        return 0;
    }
    m_interarrival->SetStream(stream);
    m_promptLengths->SetStream(stream + 1);
    m_outputLengths->SetStream(stream + 2);
    return 3;
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
    m_exchange.assign(m_devices.size(), Exchange());
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

void
MoeInferenceApp::StartApplication()
{
    NS_ABORT_MSG_IF((!m_single && !m_servingOn) || !m_transport,
                    "MoeInferenceApp needs SetModel, SetWorkload (or SetRequests) and SetCell "
                    "before it starts");
    NS_ABORT_MSG_IF(m_servingOn && m_policy.prefetch,
                    "prefetch predicts from one token's gate: it is not defined for a batch of "
                    "served requests");
    for (const Ptr<ExpertDeviceApp>& d : m_devices)
    {
        NS_ABORT_MSG_IF(d->HasSwitchOff() && !m_deadline.IsStrictlyPositive(),
                        "a device is switched off but LayerDeadline is 0: the layer would wait "
                        "for it forever");
    }
    const int layers = m_model->Config().numHiddenLayers;
    m_gating = GatingOf(m_policy, layers);
    NS_ABORT_MSG_IF(
        !m_policy.stragglerLayerScale.empty() && int(m_policy.stragglerLayerScale.size()) != layers,
        "the straggler rule needs one layer scale per layer ("
            << m_policy.stragglerLayerScale.size() << " for " << layers << " layers) or none");
    // The rules are chosen once, here: the program's own objects or the policy's built-ins.
    m_policy.selectionRule = SelectionRuleOf(m_policy);
    m_policy.allocationRule = AllocationRuleOf(m_policy);
    m_prediction.assign(layers, {});
    if (!m_servingOn)
    {
        StartPass();
        return;
    }
    m_serving.Configure(m_model,
                        m_requestTokens,
                        m_workload,
                        m_maxBatch,
                        m_kvMemoryBytes > 0 ? m_kvMemoryBytes
                                            : std::numeric_limits<double>::infinity(),
                        m_cost.KvBytesPerToken(),
                        int(m_chunkTokens));
    m_serving.SetRandomVariables(m_interarrival, m_promptLengths, m_outputLengths);
    m_idle = true;
    m_serving.Start(MakeCallback(&MoeInferenceApp::OnArrival, this));
}

void
MoeInferenceApp::OnArrival()
{
    if (m_idle)
    {
        // After the events already due now: requests arriving at the same instant start
        // together.
        m_idle = false;
        Simulator::ScheduleNow(&MoeInferenceApp::StartPass, this);
    }
}

void
MoeInferenceApp::StopApplication()
{
    Simulator::Cancel(m_deadlineEvent);
}

void
MoeInferenceApp::StartPass()
{
    // The single stream: a new window when the cache cannot take one more token (prefill the
    // prompt), else one decode step. Serving: the scheduler's next step, or idle until the
    // next arrival.
    std::vector<Lane*> lanes{m_single.get()};
    if (m_servingOn)
    {
        lanes = m_serving.NextStep();
        if (lanes.empty())
        {
            m_idle = true;
            return;
        }
    }
    m_step.Start(lanes);
    m_current = TokenRecord();
    m_current.phase = m_step.Phase();
    m_current.start = Simulator::Now();
    StartLayer();
}

void
MoeInferenceApp::StartLayer()
{
    ++m_generation;
    m_step.Attend(); // real attention + router at the BS
    const Time bs = Seconds(m_step.BsLayerSeconds(m_cost, m_bs));
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

double
MoeInferenceApp::PredictRoundTrip(uint32_t device, const DeviceWork& work, double share) const
{
    return m_predictor.DeviceRoundTrip(device, work, m_step.Layer(), share);
}

WorkEnergy
MoeInferenceApp::EnergyPrediction() const
{
    if (!m_predictor.HasEnergy())
    {
        return WorkEnergy();
    }
    return [this](uint32_t d, const DeviceWork& w, double share) {
        return m_predictor.DeviceEnergy(d, w, m_step.Layer(), share);
    };
}

void
MoeInferenceApp::SendPrefetchHints()
{
    // AdapMoE's prediction: the next layer's gate on this layer's MoE input; the holders of
    // the predicted experts that are not resident get a hint and start loading.
    const int next = m_step.Layer() + 1;
    m_prediction[next] = m_step.LaneAt(0).stream->PredictNextLayerExperts();
    for (int e : m_prediction[next])
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
MoeInferenceApp::GateTokens()
{
    const int n = m_step.Tokens();
    const int layer = m_step.Layer();
    m_decisions.assign(n, RoutingDecision());
    m_deviceOf.assign(n, {});
    // Gating decides the candidates; each goes to its least loaded replica.
    for (int i = 0; i < n; ++i)
    {
        m_gating->Decide(m_step.Request(i), m_decisions[i]);
        for (int e : m_decisions[i].experts)
        {
            m_deviceOf[i].push_back(DeviceFor(layer, e));
        }
    }
}

void
MoeInferenceApp::DecideDecode(LayerStats& stats)
{
    // Every decode token of the step (one per request) is selected for on its own: the rule
    // prices the token's experts as if they were the layer's only work. A step's prefill chunks
    // (chunked prefill) keep their candidates, as a prefill step does.
    const int layer = m_step.Layer();
    for (int i = 0; i < m_step.Tokens(); ++i)
    {
        if (m_step.RecordOf(i).phase != PassPhase::DECODE)
        {
            continue;
        }
        ++stats.tokenLayers;
        stats.singleExpert += m_decisions[i].experts.size() == 1;
        if (m_policy.selectionRule->KeepsEveryCandidate())
        {
            continue;
        }
        const DecodeSelection selection = SelectDecodeExperts(
            m_policy,
            m_decisions[i],
            m_deviceOf[i],
            uint32_t(layer),
            m_devices.size(),
            [this](uint32_t d, const DeviceWork& w, double share) {
                return PredictRoundTrip(d, w, share);
            },
            EnergyPrediction());
        m_step.RecordOf(i).jointIterations += selection.rounds;
        m_decisions[i] = selection.decision;
        m_deviceOf[i] = selection.deviceOf;
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

void
MoeInferenceApp::DispatchLayer()
{
    m_dispatchAt = Simulator::Now();
    m_layer = LayerStats();
    GateTokens();
    if (m_current.phase != PassPhase::PREFILL)
    {
        DecideDecode(m_layer);
    }
    m_work = GroupByDevice(m_decisions, m_deviceOf, m_devices.size());
    SendRequests();
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
MoeInferenceApp::SendRequests()
{
    // The BS cannot tell a switched-off device from a slow one: it gets its slice too, and only
    // the deadline ends the wait for it.
    const std::vector<double> shares =
        AllocateShares(*m_policy.allocationRule,
                       m_work,
                       [this](uint32_t d, const DeviceWork& w, double share) {
                           return PredictRoundTrip(d, w, share);
                       });
    m_transport->SetShares(m_work.active, shares);
    const int layer = m_step.Layer();
    m_pending = 0;
    m_exchange.assign(m_devices.size(), Exchange());
    for (uint32_t d : m_work.active)
    {
        Exchange& x = m_exchange[d];
        for (int e : m_work.plans[d].experts)
        {
            m_dispatchTrace(layer, e, d);
        }
        if (!m_transport->InCoverage(d))
        {
            x.lost = true;
            LoseDevice(d, "out of coverage");
            continue;
        }
        ++m_pending;
        x.request = std::make_shared<ExpertRequest>();
        x.request->layer = layer;
        x.request->work = m_work.plans[d];
        x.sentAt = Simulator::Now();
        m_transport->Send(d,
                          ExpertTransport::DOWNLINK,
                          m_cost.HiddenStateBits(m_work.plans[d].tokens),
                          MakeCallback(&ExpertDeviceApp::Receive, m_devices[d]).Bind(x.request));
    }
}

void
MoeInferenceApp::OnAnswer(uint32_t device, ExpertRequestPtr request)
{
    Exchange& x = m_exchange[device];
    if (request != x.request || request->withdrawn)
    {
        return; // the BS gave up on it (the deadline dropped it)
    }
    x.returned = true;
    x.downlink = request->receivedAt - x.sentAt;
    x.uplink = Simulator::Now() - request->answeredAt;
    ExchangeRecord record;
    record.phase = m_current.phase;
    record.layer = request->layer;
    record.device = device;
    record.tokens = request->work.tokens;
    record.bits = m_cost.HiddenStateBits(request->work.tokens);
    record.sentAt = x.sentAt;
    record.downlink = x.downlink;
    record.uplink = x.uplink;
    record.answeredAt = request->answeredAt;
    record.compute = request->compute;
    m_exchangeTrace(record);
    for (int e : request->work.experts)
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
    const int layer = m_step.Layer();
    NS_LOG_LOGIC("layer " << layer << ": device " << device << " lost (" << reason << ")");
    for (int e : m_work.plans[device].experts)
    {
        m_droppedTrace(layer, e, device);
    }
    for (const auto& [token, expert] : m_work.items[device])
    {
        ++m_step.RecordOf(token).expertsDropped;
    }
}

void
MoeInferenceApp::OnDeadline(uint32_t generation)
{
    if (generation != m_generation || m_pending == 0)
    {
        return;
    }
    for (uint32_t d : m_work.active)
    {
        Exchange& x = m_exchange[d];
        if (!x.returned && !x.lost)
        {
            x.lost = true;
            x.request->withdrawn = true;
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
    // The layer's decode memory figures come from decode-only steps: a device's hits in a mixed
    // step (chunked prefill) served prefill and decode tokens at once and cannot be split.
    const bool decode = m_current.phase == PassPhase::DECODE;
    LayerStats& stats = m_layer;
    const Exchange* critical = nullptr;
    Time criticalEnd;
    for (const Exchange& x : m_exchange)
    {
        if (x.request)
        {
            // A batched request's memory figures count once, with the first request it served.
            TokenRecord& first = m_step.RecordOf(m_work.items[&x - m_exchange.data()][0].first);
            first.cacheHits += x.request->hits;
            first.cacheMisses += x.request->misses;
            stats.cacheHits += decode ? x.request->hits : 0;
            stats.cacheMisses += decode ? x.request->misses : 0;
        }
        if (x.returned)
        {
            const ExpertRequest& r = *x.request;
            const Time end = x.downlink + r.queue + r.load + r.compute + x.uplink;
            if (!critical || end > criticalEnd)
            {
                critical = &x;
                criticalEnd = end;
            }
        }
    }
    if (!critical)
    {
        return Time();
    }
    const ExpertRequest& r = *critical->request;
    m_current.downlink += critical->downlink;
    m_current.load += r.load;
    m_current.deviceCompute += r.compute;
    m_current.uplink += critical->uplink;
    m_current.waiting += r.queue;
    return criticalEnd;
}

std::vector<RoutingDecision>
MoeInferenceApp::ReturnedExperts()
{
    std::vector<bool> returned;
    for (const Exchange& x : m_exchange)
    {
        returned.push_back(x.returned);
    }
    std::vector<RoutingDecision> final = KeepReturned(m_decisions, m_deviceOf, returned);
    for (std::size_t token = 0; token < final.size(); ++token)
    {
        TokenRecord& record = m_step.RecordOf(int(token));
        const std::size_t kept = final[token].experts.size();
        record.expertsRun += int(kept);
        m_layer.expertsRun += record.phase == PassPhase::DECODE ? kept : 0;
        record.emptyLayers += kept == 0; // the residual stream alone goes on
    }
    return final;
}

void
MoeInferenceApp::FinishLayer()
{
    Simulator::Cancel(m_deadlineEvent);
    const std::vector<RoutingDecision> final = ReturnedExperts();
    const Time accounted = AccountDevices();
    m_current.waiting += (Simulator::Now() - m_dispatchAt) - accounted; // e.g. a deadline wait
    m_layerTrace(uint32_t(m_step.Layer()), m_layer);
    m_step.NoteTopK(final);
    m_step.RunExperts(final);
    if (!m_step.Done())
    {
        StartLayer();
        return;
    }
    const Time head = Seconds(m_step.LmHeadSeconds(m_cost, m_bs));
    m_current.bsCompute += head;
    Simulator::Schedule(head, &MoeInferenceApp::FinishPass, this);
}

void
MoeInferenceApp::FinishPass()
{
    m_current.latency = Simulator::Now() - m_current.start;
    const StepRecord step = m_step.Finish(m_current);
    std::vector<Lane*> lanes;
    for (std::size_t i = 0; i < m_step.Lanes(); ++i)
    {
        lanes.push_back(&m_step.LaneAt(i));
        if (!m_step.LaneAt(i).predicts)
        {
            continue; // a prefill's early chunk: no token yet (tokens.csv has scored tokens)
        }
        const TokenRecord& r = m_step.LaneAt(i).record;
        m_tokenLatencyTrace(m_tokensDone++, r.latency);
        m_tokenTrace(r);
    }
    m_stepTrace(step);
    if (m_servingOn)
    {
        for (const RequestRecord& r : m_serving.StepDone(lanes))
        {
            m_requestTrace(r);
        }
    }
    if (m_servingOn ? m_serving.Finished() : m_single->stream->Finished())
    {
        m_finished = true;
        Simulator::Stop(); // other objects (a random walk) would keep the event queue busy
        return;
    }
    StartPass();
}

} // namespace ns3
