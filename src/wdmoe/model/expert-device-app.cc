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
                            "An expert asked for was not in memory: its load from storage "
                            "starts (queued on the reader): layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_cacheMissTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("LoadDone",
                            "An on-demand load (a CacheMiss) finished: the expert is in memory: "
                            "layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_loadDoneTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("ComputeStarted",
                            "An expert of a request starts computing (loaded, and the one before "
                            "it done): layer, expert, device",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_computeStartTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("ComputeDone",
                            "The request's experts are computed: layer, expert, device (per "
                            "expert)",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_computeDoneTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("AnswerSent",
                            "The answer leaves the device: layer, expert, device (per expert)",
                            MakeTraceSourceAccessor(&ExpertDeviceApp::m_answerTrace),
                            "ns3::ExpertDeviceApp::ExpertTracedCallback")
            .AddTraceSource("Prefetch",
                            "A prefetch hint started a load from storage: layer, expert, device",
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

void
ExpertDeviceApp::Receive(ExpertRequestPtr r)
{
    if (r->withdrawn || IsOff())
    {
        return;
    }
    const Time now = Simulator::Now();
    r->receivedAt = now;
    Time t = std::max(now, m_computeFreeAt);
    r->queue = t - now;
    const Time loadTime = LoadTime();
    // Every expert is asked for now (loads queue on the storage reader); each computes when it
    // is ready and the one before it is done. Waiting for a load is load time.
    for (std::size_t k = 0; k < r->work.experts.size(); ++k)
    {
        const uint32_t layer = uint32_t(r->layer);
        const uint32_t expert = uint32_t(r->work.experts[k]);
        m_requestTrace(layer, expert, m_index);
        const ExpertMemory::Demand demand =
            m_memory.Use(r->layer, r->work.experts[k], now, loadTime);
        if (demand.resident)
        {
            ++r->hits;
            m_cacheHitTrace(layer, expert, m_index);
        }
        else
        {
            ++r->misses;
            m_cacheMissTrace(layer, expert, m_index);
        }
        if (!demand.resident)
        {
            TraceLater(demand.readyAt - now, m_loadDoneTrace, layer, expert);
        }
        if (demand.readyAt > t)
        {
            r->load += demand.readyAt - t;
            t = demand.readyAt;
        }
        TraceLater(t - now, m_computeStartTrace, layer, expert);
        const Time compute = ExpertTime(r->work.tokensOf[k]);
        r->compute += compute;
        t += compute;
    }
    m_computeFreeAt = t;
    Simulator::Schedule(t - now, &ExpertDeviceApp::ComputeDone, this, r);
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
        m_computeDoneTrace(uint32_t(r->layer), uint32_t(e), m_index);
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
    if (m_memory.Prefetch(layer, expert, Simulator::Now(), LoadTime()))
    {
        m_prefetchTrace(uint32_t(layer), uint32_t(expert), m_index);
    }
}

} // namespace ns3
