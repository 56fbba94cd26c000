#include "expert-device-app.h"

#include "ns3/log.h"
#include "ns3/simulator.h"
#include "ns3/trace-source-accessor.h"

#include <algorithm>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("ExpertDeviceApp");
NS_OBJECT_ENSURE_REGISTERED(ExpertDeviceApp);

TypeId
ExpertDeviceApp::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::ExpertDeviceApp")
            .SetParent<Application>()
            .SetGroupName("Wdmoe")
            .AddConstructor<ExpertDeviceApp>()
            .AddTraceSource("RequestReceived",
                            "A request reached the device: layer, expert, device (per expert)",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_requestTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("CacheHit",
                            "An expert asked for was in memory (or on its way): layer, expert, "
                            "device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_cacheHitTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("CacheMiss",
                            "An expert asked for was not in memory: an on-demand load is queued "
                            "on the storage reader: layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_cacheMissTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("LoadStarted",
                            "The storage reader starts loading an expert (on demand or for a "
                            "prefetch hint): layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_loadStartTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("LoadDone",
                            "A load (on demand or prefetched) finished: the expert is in "
                            "memory: layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_loadDoneTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("ComputeStarted",
                            "An expert of a request starts computing (loaded, and the one before "
                            "it done): layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_computeStartTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("ComputeDone",
                            "An expert of a request finished computing (also when the BS has "
                            "withdrawn the request meanwhile: the device computes it anyway): "
                            "layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_computeDoneTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("AnswerSent",
                            "The answer leaves the device: layer, expert, device (per expert)",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_answerTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource(
                "Prefetch",
                "A prefetch hint queued a load on the storage reader: layer, expert, device",
                MakeTraceSourceAccessor(&ExpertDeviceApp::m_prefetchTrace),
                "ns3::ExpertDeviceApp::ExpertTracedCallback");
    return tid;
}

ExpertDeviceApp::ExpertDeviceApp()
    : m_computeFreeAt(Seconds(0)),
      m_offAt(Time::Max())
{
}

void
ExpertDeviceApp::DoDispose()
{
    // Transfers still in flight when the run ends hold callbacks to this app; the transport
    // holds them, and this app held the transport: release it so the cycle is broken (a run
    // whose deadline dropped every expert leaked the channel, the pools and the requests).
    m_transport = nullptr;
    m_answered = MakeNullCallback<void, uint32_t, ExpertRequestPtr>();
    Application::DoDispose();
}

void
ExpertDeviceApp::SetTransport(Ptr<ExpertTransport> transport, uint32_t index)
{
    m_transport = transport;
    m_index = index;
}

void
ExpertDeviceApp::SetCosts(const ComputeProfile& profile, const CostModel& cost)
{
    m_profile = profile;
    m_cost = cost;
}

void
ExpertDeviceApp::SetMemory(const ExpertMemory& memory)
{
    m_memory = memory;
}

void
ExpertDeviceApp::SetAnswerCallback(Callback<void, uint32_t, ExpertRequestPtr> answered)
{
    m_answered = answered;
}

Time
ExpertDeviceApp::LoadTime() const
{
    return Seconds(m_profile.StorageLoadSeconds(m_cost.ExpertBytes()));
}

Time
ExpertDeviceApp::ExpertTime(int tokens) const
{
    return Seconds(m_cost.ExpertSeconds(m_profile, tokens));
}

bool
ExpertDeviceApp::IsOff() const
{
    return Simulator::Now() >= m_offAt;
}

void
ExpertDeviceApp::StartApplication()
{
}

void
ExpertDeviceApp::StopApplication()
{
}

void
ExpertDeviceApp::ScheduleSwitchOff(Time at)
{
    m_offAt = std::min(m_offAt, at);
}

std::vector<ExpertTiming>
ExpertDeviceApp::Timeline(const DeviceWork& work,
                          Time arrive,
                          const std::vector<Time>& readyAt) const
{
    std::vector<ExpertTiming> timeline;
    Time t = std::max(arrive, m_computeFreeAt);
    for (std::size_t k = 0; k < work.experts.size(); ++k)
    {
        const Time start = std::max(t, readyAt[k]);
        t = start + ExpertTime(work.tokensOf[k]);
        timeline.push_back({readyAt[k], start, t});
    }
    return timeline;
}

void
ExpertDeviceApp::TraceLoad(Time readyAt, Time loadTime, uint32_t layer, uint32_t expert)
{
    const Time now = Simulator::Now();
    TraceLater(readyAt - loadTime - now, m_loadStartTrace, layer, expert);
    TraceLater(readyAt - now, m_loadDoneTrace, layer, expert);
}

void
ExpertDeviceApp::Receive(ExpertRequestPtr r)
{
    if (r->withdrawn || IsOff())
    {
        return;
    }
    const Time now = Simulator::Now();
    r->receivedAt = now;
    r->queue = std::max(now, m_computeFreeAt) - now;
    const Time loadTime = LoadTime();
    const uint32_t layer = uint32_t(r->layer);
    // Every expert is asked for now (loads queue on the storage reader).
    std::vector<Time> readyAt;
    for (int e : r->work.experts)
    {
        m_requestTrace(layer, uint32_t(e), m_index);
        const ExpertMemory::Demand demand = m_memory.Use(r->layer, e, now, loadTime);
        readyAt.push_back(demand.readyAt);
        r->hits += demand.resident;
        r->misses += !demand.resident;
        (demand.resident ? m_cacheHitTrace : m_cacheMissTrace)(layer, uint32_t(e), m_index);
        if (!demand.resident)
        {
            TraceLoad(demand.readyAt, loadTime, layer, uint32_t(e));
        }
    }
    // Waiting for a load, once the device is free, is load time.
    Time previousEnd = now + r->queue;
    const std::vector<ExpertTiming> timeline = Timeline(r->work, now, readyAt);
    for (std::size_t k = 0; k < timeline.size(); ++k)
    {
        const uint32_t expert = uint32_t(r->work.experts[k]);
        r->load += timeline[k].start - previousEnd;
        r->compute += timeline[k].end - timeline[k].start;
        previousEnd = timeline[k].end;
        TraceLater(timeline[k].start - now, m_computeStartTrace, layer, expert);
        TraceLater(timeline[k].end - now, m_computeDoneTrace, layer, expert);
    }
    m_computeFreeAt = previousEnd;
    Simulator::Schedule(previousEnd - now, &ExpertDeviceApp::ComputeDone, this, r);
}

void
ExpertDeviceApp::ComputeDone(ExpertRequestPtr r)
{
    if (r->withdrawn || IsOff())
    {
        return;
    }
    r->answeredAt = Simulator::Now();
    for (int e : r->work.experts)
    {
        m_answerTrace(uint32_t(r->layer), uint32_t(e), m_index);
    }
    m_transport->Send(m_index,
                      ExpertTransport::UPLINK,
                      m_cost.HiddenStateBits(r->work.tokens),
                      MakeCallback(&ExpertDeviceApp::AnswerArrived, this).Bind(r));
}

void
ExpertDeviceApp::AnswerArrived(ExpertRequestPtr r)
{
    // A device switched off while sending: the rest of its answer never comes.
    if (!IsOff() && !m_answered.IsNull())
    {
        m_answered(m_index, r);
    }
}

void
ExpertDeviceApp::TraceLater(Time at,
                            TracedCallback<uint32_t, uint32_t, uint32_t>& trace,
                            uint32_t layer,
                            uint32_t expert)
{
    // Only a connected trace costs an event: an unobserved run keeps its event queue.
    if (!trace.IsEmpty())
    {
        Simulator::Schedule(at, &ExpertDeviceApp::FireTrace, this, &trace, layer, expert);
    }
}

void
ExpertDeviceApp::FireTrace(TracedCallback<uint32_t, uint32_t, uint32_t>* trace,
                           uint32_t layer,
                           uint32_t expert)
{
    if (!IsOff())
    {
        (*trace)(layer, expert, m_index);
    }
}

void
ExpertDeviceApp::Hint(int layer, int expert)
{
    if (IsOff())
    {
        return;
    }
    const Time now = Simulator::Now();
    if (m_memory.Prefetch(layer, expert, now, LoadTime()))
    {
        m_prefetchTrace(uint32_t(layer), uint32_t(expert), m_index);
        const Time readyAt = m_memory.Peek(layer, expert, now, LoadTime()).readyAt;
        TraceLoad(readyAt, LoadTime(), uint32_t(layer), uint32_t(expert));
    }
}

} // namespace ns3
