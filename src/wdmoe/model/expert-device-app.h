// The application on every device node: it holds experts on storage and some in memory, and
// runs the expert requests the BS sends it.
#ifndef WDMOE_EXPERT_DEVICE_APP_H
#define WDMOE_EXPERT_DEVICE_APP_H

#include "compute-profile.h"
#include "cost-model.h"
#include "expert-cache.h"
#include "expert-request.h"
#include "expert-transport.h"

#include "ns3/application.h"
#include "ns3/callback.h"
#include "ns3/nstime.h"
#include "ns3/traced-callback.h"

namespace ns3
{

/// One expert of a request on a device: when it is loaded, starts and ends computing.
struct ExpertTiming
{
    Time ready;
    Time start;
    Time end;
};

/**
 * \ingroup wdmoe
 * A device that hosts experts: its expert memory (an LRU per layer, ExpertMemory), its storage
 * reader, a compute queue (one expert at a time), prefetch hints and switch-off. A request
 * arrives through the transport; every expert is asked of the memory at once (misses queue on
 * the storage reader), each computes when it is ready and the one before it is done (the
 * roofline of the device's profile), and the answer goes back through the transport. It knows
 * nothing of the BS's policies.
 */
class ExpertDeviceApp : public Application
{
  public:
    static TypeId GetTypeId();
    ExpertDeviceApp();

    /// Its number in the cell (the transport's device index) and the transport it answers on.
    void SetTransport(Ptr<ExpertTransport> transport, uint32_t index);
    /// Its compute and storage profile and the priced experts it runs.
    void SetCosts(const ComputeProfile& profile, const CostModel& cost);
    /// Its expert memory (slots per layer, warm contents).
    void SetMemory(const ExpertMemory& memory);
    /// Called with (device, request) when an answer has reached the BS.
    void SetAnswerCallback(Callback<void, uint32_t, ExpertRequestPtr> answered);

    uint32_t GetIndex() const { return m_index; }

    const ComputeProfile& Profile() const { return m_profile; }

    /// Its memory as it is now (the BS mirrors it for its predictions).
    const ExpertMemory& Memory() const { return m_memory; }

    /// When its compute queue empties.
    Time ComputeFreeAt() const { return m_computeFreeAt; }

    /// How long one expert takes to load from storage.
    Time LoadTime() const;
    /// How long one expert takes on `tokens` tokens.
    Time ExpertTime(int tokens) const;

    /// The device's one timing rule, for its own requests and the BS's predictions of them:
    /// work arriving at `arrive` waits for the compute queue, then expert k computes from when
    /// it is ready (readyAt[k]) and the one before it is done.
    std::vector<ExpertTiming> Timeline(const DeviceWork& work,
                                       Time arrive,
                                       const std::vector<Time>& readyAt) const;

    /// The request has arrived (the transport's downlink delivery).
    void Receive(ExpertRequestPtr request);
    /// A prefetch hint has arrived: start loading (layer, expert) unless resident.
    void Hint(int layer, int expert);
    /// Switches the device off at an absolute time: from then on it receives, computes and
    /// sends nothing.
    void ScheduleSwitchOff(Time at);

    /// True once switched off.
    bool IsOff() const;

    /// Whether a switch-off is scheduled at all.
    bool HasSwitchOff() const { return m_offAt != Time::Max(); }

    /// When it switches off (Time::Max() when never).
    Time OffAt() const { return m_offAt; }

    typedef void (*ExpertTracedCallback)(uint32_t layer, uint32_t expert, uint32_t device);

  protected:
    void DoDispose() override;

  private:
    void StartApplication() override;
    void StopApplication() override;
    void ComputeDone(ExpertRequestPtr request);
    /// LoadStarted and LoadDone of a load of loadTime that ends at readyAt.
    void TraceLoad(Time readyAt, Time loadTime, uint32_t layer, uint32_t expert);
    void AnswerArrived(ExpertRequestPtr request);
    /// Fires `trace` with (layer, expert, this device) at `at` from now, unless the device is
    /// off by then; schedules nothing when the trace has no sink.
    void TraceLater(Time at,
                    TracedCallback<uint32_t, uint32_t, uint32_t>& trace,
                    uint32_t layer,
                    uint32_t expert);
    void FireTrace(TracedCallback<uint32_t, uint32_t, uint32_t>* trace,
                   uint32_t layer,
                   uint32_t expert);

    Ptr<ExpertTransport> m_transport;
    uint32_t m_index = 0;
    ComputeProfile m_profile;
    CostModel m_cost;
    ExpertMemory m_memory;
    Time m_computeFreeAt;
    Time m_offAt;
    Callback<void, uint32_t, ExpertRequestPtr> m_answered;

    TracedCallback<uint32_t, uint32_t, uint32_t> m_requestTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_cacheHitTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_cacheMissTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_loadStartTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_loadDoneTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_computeStartTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_computeDoneTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_answerTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_prefetchTrace;
};

} // namespace ns3

#endif
