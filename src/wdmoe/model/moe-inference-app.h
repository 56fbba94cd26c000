// The inference session at the base station: drives the real MoE model through the cell, one
// layer at a time, on ns-3's event queue.
#ifndef WDMOE_MOE_INFERENCE_APP_H
#define WDMOE_MOE_INFERENCE_APP_H

#include "batch-step.h"
#include "compute-profile.h"
#include "cost-model.h"
#include "decode-selection.h"
#include "expert-device-app.h"
#include "expert-placement.h"
#include "expert-request.h"
#include "expert-transport.h"
#include "inference-policy.h"
#include "inference-records.h"
#include "latency-predictor.h"
#include "layer-work.h"
#include "request-scheduler.h"
#include "serving-workload.h"

#include "ns3/application.h"
#include "ns3/event-id.h"
#include "ns3/nstime.h"
#include "ns3/traced-callback.h"

#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{
class MixtralModel;
class RoutingPolicy;
class TeacherForcedStream;
} // namespace llm
} // namespace wdmoe

namespace ns3
{

/// The base-station application: for every token and layer, BS attention + gate time, then the
/// policies decide the experts and the band split, and every device used gets one
/// ExpertRequest through the transport (its ExpertDeviceApp loads, computes and answers); the
/// layer ends when every answer is back or the deadline passes (missing experts are dropped and
/// the remaining weights renormalised). Serving many requests (SetRequests), a step batches
/// the running requests' passes (BatchStep): every layer's expert work of all their tokens is
/// grouped per device into that one ExpertRequest.
class MoeInferenceApp : public Application
{
  public:
    static TypeId GetTypeId();
    MoeInferenceApp();
    ~MoeInferenceApp() override;

    /// The model that runs (and routes) and a reference copy run with its own top-k for the
    /// agreement metric (may be the same object: it keeps separate caches).
    void SetModel(std::shared_ptr<wdmoe::llm::MixtralModel> model);
    /// Teacher forcing over `tokens`: windows of promptTokens prefill + decode steps until the
    /// context is full, until scoredTokens predictions have been scored.
    void SetWorkload(const std::vector<int>& tokens, int promptTokens, int scoredTokens);
    /// Serving instead: many requests over `tokens` (each its own window), batched per step up
    /// to the MaxBatch attribute, admitted while the KvMemoryBytes attribute holds their KV
    /// cache (RequestScheduler, set up when the application starts, with SetCosts's KV bytes per
    /// token). Call after SetModel, instead of SetWorkload.
    void SetRequests(const std::vector<int>& tokens, const ServingWorkload& workload);
    /// The serving draws' streams (Poisson gaps, prompt lengths, output lengths); returns the
    /// streams used (3 when serving, else 0, so that a run without requests draws nothing new).
    int64_t AssignStreams(int64_t stream);
    /// The devices (device d is transport device d and predictor device d), what they host,
    /// and the BS's latency predictions. Connects itself to the devices' answers.
    void SetCell(Ptr<ExpertTransport> transport,
                 std::vector<Ptr<ExpertDeviceApp>> devices,
                 const ExpertPlacement& placement,
                 const LatencyPredictor& predictor);
    void SetCosts(const CostModel& cost, const ComputeProfile& bs);
    void SetPolicy(const InferencePolicy& policy);
    /// Replace the policy's selection (allocation) rule by a rule object of the program's own
    /// (call after SetPolicy, before the application starts).
    void SetSelectionRule(Ptr<ExpertSelectionRule> rule);
    void SetAllocationRule(Ptr<BandwidthAllocationRule> rule);

    const InferencePolicy& Policy() const { return m_policy; }

    /// True once every prediction of the workload has been scored (serving: every request has
    /// arrived and finished).
    bool Finished() const { return m_finished; }

    typedef void (*TokenTracedCallback)(uint32_t index, Time latency);
    typedef void (*TokenRecordTracedCallback)(const TokenRecord& record);
    typedef void (*LayerStatsTracedCallback)(uint32_t layer, const LayerStats& stats);
    typedef void (*ExpertTracedCallback)(uint32_t layer, uint32_t expert, uint32_t device);
    typedef void (*ExchangeTracedCallback)(const ExchangeRecord& record);
    typedef void (*RequestTracedCallback)(const RequestRecord& record);
    typedef void (*StepTracedCallback)(const StepRecord& record);

  protected:
    void DoDispose() override;

  private:
    void StartApplication() override;
    void StopApplication() override;

    /// What came of one device's request in the layer in flight.
    struct Exchange
    {
        ExpertRequestPtr request; ///< what was sent (null: nothing)
        bool returned = false;
        bool lost = false;
        Time sentAt;
        Time downlink, uplink;
    };

    void StartPass();
    /// Serving: a request arrived; an idle BS starts a step.
    void OnArrival();
    void StartLayer();
    void DispatchLayer();
    /// Gating's candidates for every token of the pass, each on its holder (DeviceFor).
    void GateTokens();
    /// Decode only: the selection rule's experts, the prefetch statistics and next hints.
    void DecideDecode(LayerStats& stats);
    /// The devices' energy predictions for the current layer (LatencyPredictor::DeviceEnergy),
    /// or none when a device profile has no energy fields.
    WorkEnergy EnergyPrediction() const;
    /// The device's part of the current layer with `share` of the band (LatencyPredictor).
    double PredictRoundTrip(uint32_t device, const DeviceWork& work, double share) const;
    void SendPrefetchHints();
    void SendRequests();
    void OnAnswer(uint32_t device, ExpertRequestPtr request);
    void OnDeadline(uint32_t generation);
    void LoseDevice(uint32_t device, const char* reason);
    void FinishLayer();
    /// The decisions of the layer with the experts whose device came back (weights
    /// renormalised where some were lost); counts what ran into the token and the layer.
    std::vector<wdmoe::llm::RoutingDecision> ReturnedExperts();
    /// Adds what the devices found in memory to the token and the layer, and the critical
    /// path (the device that returned last) to the token's breakdown; returns its length.
    Time AccountDevices();
    void FinishPass();
    /// The holder of (layer, expert) the BS sends to: the one replica, or the fastest of several.
    int DeviceFor(int layer, int expert) const;

    // Configuration
    std::shared_ptr<wdmoe::llm::MixtralModel> m_model;
    Ptr<ExpertTransport> m_transport;
    std::vector<Ptr<ExpertDeviceApp>> m_devices;
    ExpertPlacement m_placement;
    LatencyPredictor m_predictor;
    CostModel m_cost;
    ComputeProfile m_bs;
    Time m_deadline;
    InferencePolicy m_policy;
    std::unique_ptr<wdmoe::llm::RoutingPolicy> m_gating;

    // The workload: one teacher-forced stream (m_single), or served requests (m_serving)
    std::unique_ptr<Lane> m_single;
    bool m_servingOn = false;
    std::vector<int> m_requestTokens;
    ServingWorkload m_workload;
    RequestScheduler m_serving;
    Ptr<ExponentialRandomVariable> m_interarrival;
    Ptr<UniformRandomVariable> m_promptLengths;
    Ptr<UniformRandomVariable> m_outputLengths;
    uint32_t m_maxBatch = 8;
    uint32_t m_chunkTokens = 0; ///< serving: chunked prefill's step budget (0: prefill-first)
    double m_kvMemoryBytes = 0;
    bool m_idle = false; ///< serving: no request to run; the next arrival starts a step

    // State of the step in flight (its passes, one per lane)
    BatchStep m_step;
    TokenRecord m_current; ///< the step's timing (shared by its passes) and phase
    Time m_dispatchAt;
    uint32_t m_generation = 0; ///< bumps at every layer; stale events compare against it
    LayerWork m_work;
    std::vector<Exchange> m_exchange; ///< by device
    std::vector<wdmoe::llm::RoutingDecision> m_decisions;
    std::vector<std::vector<int>> m_deviceOf; ///< [token][k]: device serving decision k
    int m_pending = 0;
    EventId m_deadlineEvent;
    bool m_finished = false;
    uint32_t m_tokensDone = 0;
    LayerStats m_layer; ///< the decode statistics of the token-layer in flight
    std::vector<std::vector<int>> m_prediction; ///< per layer: experts predicted for it (decode)

    TracedCallback<uint32_t, Time> m_tokenLatencyTrace;
    TracedCallback<const TokenRecord&> m_tokenTrace;
    TracedCallback<uint32_t, const LayerStats&> m_layerTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_dispatchTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_returnTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_droppedTrace;
    TracedCallback<uint32_t, uint32_t, uint32_t> m_hintTrace;
    TracedCallback<const ExchangeRecord&> m_exchangeTrace;
    TracedCallback<const RequestRecord&> m_requestTrace;
    TracedCallback<const StepRecord&> m_stepTrace;
};

} // namespace ns3

#endif
