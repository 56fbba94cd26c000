// The inference session at the base station: drives the real MoE model through the cell, one
// layer at a time, on ns-3's event queue.
#ifndef WDMOE_MOE_INFERENCE_APP_H
#define WDMOE_MOE_INFERENCE_APP_H

#include "bandwidth-allocation-rule.h"
#include "compute-profile.h"
#include "cost-model.h"
#include "expert-device-app.h"
#include "expert-placement.h"
#include "expert-request.h"
#include "expert-selection-rule.h"
#include "expert-transport.h"
#include "inference-records.h"
#include "latency-predictor.h"

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
class KvCache;
class LayerStepper;
class RoutingPolicy;
struct RoutingDecision;
} // namespace llm
} // namespace wdmoe

namespace ns3
{

/// The run-time policies of the BS (DESIGN.md section 5; doc/wdmoe.rst "Policies"). Gating
/// decides the candidates per token, selection which of them run (decode steps), allocation
/// how the band is split among the devices used, prefetch whether next-layer hints are sent.
/// The cache-slot allocation is part of the devices' ExpertMemory. Selection and allocation
/// are rule objects: selectionRule and allocationRule where set, else the built-in rules the
/// enum fields and their knobs name (SelectionRuleOf, AllocationRuleOf).
struct InferencePolicy
{
    std::string name = "top-2"; ///< as it appears in results
    bool adaptiveGating = false;
    std::vector<double> sensitivity; ///< F_l per layer (adaptive gating)
    double adaptiveThreshold = 0.005;
    bool adaptivePrefill = false; ///< apply adaptive gating to prefills too
    SelectionRule selection = SelectionRule::ALL;
    double wlrTheta = 0.5;
    StragglerBounds straggler;
    /// Straggler rule: F_l over the mean F per layer (from the calibrated sensitivities), or
    /// empty for every layer weighing 1.
    std::vector<double> stragglerLayerScale;
    AllocationRule allocation = AllocationRule::EQUAL;
    double minmaxFloor = 0;      ///< minmax: each device keeps this fraction of 1/n of the band
    bool joint = false;          ///< alternate selection and allocation until stable
    int jointMaxIterations = 10; ///< bound on the alternation
    bool prefetch = false;
    double hintBits = 256; ///< size of one prefetch hint on the downlink
    /// The selection rule object; null: SelectionRuleOf(*this).
    Ptr<ExpertSelectionRule> selectionRule;
    /// The allocation rule object; null: AllocationRuleOf(*this). The joint loop alternates it
    /// with the selection rule.
    Ptr<BandwidthAllocationRule> allocationRule;
};

/// The policy's selection rule: its selectionRule, or else a new built-in rule named by
/// `selection` with the policy's knobs (wlrTheta; straggler).
Ptr<ExpertSelectionRule> SelectionRuleOf(const InferencePolicy& policy);

/// The policy's allocation rule: its allocationRule, or else a new built-in rule named by
/// `allocation` (minmax when `joint`) with the policy's knobs (minmaxFloor).
Ptr<BandwidthAllocationRule> AllocationRuleOf(const InferencePolicy& policy);

/// The base-station application: for every token and layer, BS attention + gate time, then the
/// policies decide the experts and the band split, and every device used gets one
/// ExpertRequest through the transport (its ExpertDeviceApp loads, computes and answers); the
/// layer ends when every answer is back or the deadline passes (missing experts are dropped and
/// the remaining weights renormalised).
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

    /// True once every prediction of the workload has been scored.
    bool Finished() const { return m_finished; }

    typedef void (*TokenTracedCallback)(uint32_t index, Time latency);
    typedef void (*TokenRecordTracedCallback)(const TokenRecord& record);
    typedef void (*LayerStatsTracedCallback)(uint32_t layer, const LayerStats& stats);
    typedef void (*ExpertTracedCallback)(uint32_t layer, uint32_t expert, uint32_t device);

  protected:
    void DoDispose() override;

  private:
    void StartApplication() override;
    void StopApplication() override;

    struct Work; ///< one device's share of a layer
    void StartPass();
    void StartLayer();
    void DispatchLayer();
    std::vector<uint32_t> BuildWork(const std::vector<wdmoe::llm::RoutingDecision>& decisions,
                                    const std::vector<std::vector<int>>& deviceOf);
    std::vector<double> AllocateShares(const std::vector<uint32_t>& active) const;
    /// The device's part of the current layer with `share` of the band (LatencyPredictor).
    double PredictDevice(uint32_t device, double share) const;
    double PredictLayer(const std::vector<uint32_t>& active,
                        const std::vector<double>& shares) const;
    std::vector<uint32_t> BuildCandidateWork(const std::vector<bool>& keep);
    double PredictSelection(const std::vector<bool>& keep);
    std::vector<double> CandidateRoundTrips(const std::vector<bool>& keep);
    void SelectExperts();
    void SendPrefetchHints();
    void SendRequests(const std::vector<uint32_t>& active);
    void OnAnswer(uint32_t device, ExpertRequestPtr request);
    void OnDeadline(uint32_t generation);
    void LoseDevice(uint32_t device, const char* reason);
    void FinishLayer();
    /// Adds what the devices found in memory to the token and the layer, and the critical
    /// path (the device that returned last) to the token's breakdown; returns its length.
    Time AccountDevices();
    void FinishPass();
    bool RoutesLikeTopK(const std::vector<wdmoe::llm::RoutingDecision>& decisions) const;
    const float* ReferenceLogits(const float* logits, std::vector<float>& reference);
    /// The holder of (layer, expert) the BS sends to: the one replica, or the fastest of several.
    int DeviceFor(int layer, int expert) const;

    // Configuration
    std::shared_ptr<wdmoe::llm::MixtralModel> m_model;
    std::vector<int> m_tokens;
    int m_promptTokens = 0;
    int m_scoredTokens = 0;
    Ptr<ExpertTransport> m_transport;
    std::vector<Ptr<ExpertDeviceApp>> m_devices;
    ExpertPlacement m_placement;
    LatencyPredictor m_predictor;
    CostModel m_cost;
    ComputeProfile m_bs;
    Time m_deadline;
    InferencePolicy m_policy;
    std::unique_ptr<wdmoe::llm::RoutingPolicy> m_gating;

    // State of the pass in flight
    std::unique_ptr<wdmoe::llm::KvCache> m_cache;
    /// The unmodified top-k model's cache, for the reference pass. While every pass of the
    /// current window has routed like top-k, the two caches hold the same keys and values and
    /// the reference pass is skipped (its logits are the run's own); the reference cache is
    /// filled from the run's when the first pass that routes otherwise comes.
    std::unique_ptr<wdmoe::llm::KvCache> m_referenceCache;
    bool m_referenceLags = true;
    int m_lengthBeforePass = 0;
    std::unique_ptr<wdmoe::llm::LayerStepper> m_pass;
    std::vector<int> m_passTokens;
    int m_nextToken = 0; ///< index in m_tokens of the next token to feed (and to predict)
    int m_scored = 0;
    int m_request = -1;
    TokenRecord m_current;
    Time m_layerStart;
    Time m_dispatchAt;
    uint32_t m_generation = 0; ///< bumps at every layer; stale events compare against it
    std::vector<Work> m_work;  ///< by device
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
};

} // namespace ns3

#endif
