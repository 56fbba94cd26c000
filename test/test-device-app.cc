// ExpertDeviceApp alone, driven by a fake BS through a fake transport with fixed delays: requests
// queue behind earlier work, a miss loads from storage at the profile's bandwidth, a hint starts a
// load, a switched-off device answers nothing. Then the whole cell through the same fake
// transport: a token's latency is the hand sum. Every time is worked out by hand.

#include "compute-profile.h"
#include "cost-model.h"
#include "expert-device-app.h"
#include "expert-transport.h"
#include "mixtral-model.h"
#include "profile-reader.h"
#include "scenario-fixture.h"
#include "wdmoe-helper.h"
#include "wdmoe-stats-collector.h"

#include "ns3/constant-position-mobility-model.h"
#include "ns3/double.h"
#include "ns3/node-container.h"
#include "ns3/node.h"
#include "ns3/pointer.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

using namespace ns3;

namespace
{

/// Every transfer takes 1 ms per direction; control messages 0.5 ms.
class FixedDelayTransport : public ExpertTransport
{
  public:
    void SetShares(const std::vector<uint32_t>&, const std::vector<double>&) override {}

    bool InCoverage(uint32_t) override { return true; }

    void Send(uint32_t, Direction, double bits, Callback<void> arrived) override
    {
        bitsSent.push_back(bits);
        Simulator::Schedule(MilliSeconds(1), &FixedDelayTransport::Deliver, arrived);
    }

    void SendControl(uint32_t, double, Callback<void> arrived) override
    {
        Simulator::Schedule(MicroSeconds(500), &FixedDelayTransport::Deliver, arrived);
    }

    static void Deliver(Callback<void> arrived) { arrived(); }

    std::vector<double> bitsSent;
};

/// A profile whose expert takes exactly 10 ms to load and 2 ms per token to compute.
struct Fixture
{
    Ptr<FixedDelayTransport> transport = CreateObject<FixedDelayTransport>();
    Ptr<ExpertDeviceApp> device = CreateObject<ExpertDeviceApp>();
    std::vector<std::pair<Time, ExpertRequestPtr>> answers;

    Fixture()
    {
        CostModel cost = CostModel::Mixtral8x7B();
        ComputeProfile profile;
        profile.name = "hand";
        profile.peakFlops = cost.ExpertFlopsPerToken() / 2e-3; // 2 ms per token (efficiency 1)
        profile.computeEfficiency = 1;
        profile.memoryBandwidth = 1e30; // compute-bound
        profile.memoryEfficiency = 1;
        profile.memoryBytes = 64e9;
        profile.storageReadBandwidth = cost.ExpertBytes() / 10e-3; // 10 ms per load
        device->SetTransport(transport, 0);
        device->SetCosts(profile, cost);
        device->SetMemory(ExpertMemory({1, 0})); // layer 0: one slot; layer 1: none
        device->SetAnswerCallback(MakeCallback(&Fixture::Answer, this));
        Ptr<Node> node = CreateObject<Node>();
        node->AddApplication(device);
    }

    void Answer(uint32_t, ExpertRequestPtr r) { answers.emplace_back(Simulator::Now(), r); }

    /// The BS side: the request travels 1 ms down before the device sees it.
    ExpertRequestPtr Send(Time at, int layer, std::vector<int> experts, int tokens = 1)
    {
        auto r = std::make_shared<ExpertRequest>();
        r->layer = layer;
        r->work.experts = experts;
        r->work.tokensOf.assign(experts.size(), tokens);
        r->work.tokens = tokens;
        Simulator::Schedule(at, [this, r]() {
            transport->Send(0,
                            ExpertTransport::DOWNLINK,
                            1,
                            MakeCallback(&ExpertDeviceApp::Receive, device).Bind(r));
        });
        return r;
    }
};

} // namespace

TEST_CASE("device app: a miss loads, a hit does not, and requests queue behind earlier work",
          "[device]")
{
    Fixture f;
    // t = 0: expert 3 of layer 0 (not in memory): arrives 1 ms, loads to 11 ms, computes to
    // 13 ms, answer back at 14 ms. t = 5 ms: expert 3 again (now resident, but the device is
    // busy until 13 ms): arrives 6 ms, waits 7 ms, computes to 15 ms, back at 16 ms.
    const ExpertRequestPtr first = f.Send(Seconds(0), 0, {3});
    const ExpertRequestPtr second = f.Send(MilliSeconds(5), 0, {3});
    Simulator::Run();
    REQUIRE(f.answers.size() == 2);
    CHECK(f.answers[0].first == MilliSeconds(14));
    CHECK(first->misses == 1);
    CHECK(first->load == MilliSeconds(10));
    CHECK(first->compute == MilliSeconds(2));
    CHECK(f.answers[1].first == MilliSeconds(16));
    CHECK(second->hits == 1);
    CHECK(second->queue == MilliSeconds(7));
    CHECK(second->load == Seconds(0));
    // Answers carry the hidden states of the request's tokens.
    CHECK(f.transport->bitsSent.back() == CostModel::Mixtral8x7B().HiddenStateBits(1));
    Simulator::Destroy();
}

TEST_CASE("device app: loads and computations start and end when the hand sum says", "[device]")
{
    Fixture f;
    std::vector<std::pair<std::string, Time>> events;
    auto record = [&events](std::string name) {
        return [&events, name](uint32_t, uint32_t, uint32_t) {
            events.emplace_back(name, Simulator::Now());
        };
    };
    const std::function<void(uint32_t, uint32_t, uint32_t)> miss = record("miss"),
                                                            loaded = record("loaded"),
                                                            start = record("start"),
                                                            done = record("done");
    f.device->TraceConnectWithoutContext("CacheMiss",
                                         MakeCallback(&decltype(miss)::operator(), &miss));
    f.device->TraceConnectWithoutContext("LoadDone",
                                         MakeCallback(&decltype(loaded)::operator(), &loaded));
    f.device->TraceConnectWithoutContext("ComputeStarted",
                                         MakeCallback(&decltype(start)::operator(), &start));
    f.device->TraceConnectWithoutContext("ComputeDone",
                                         MakeCallback(&decltype(done)::operator(), &done));
    // As above: the miss arrives at 1 ms and loads to 11 ms, computes 11-13 ms; the second
    // request (a hit) arrives at 6 ms and computes 13-15 ms.
    f.Send(Seconds(0), 0, {3});
    f.Send(MilliSeconds(5), 0, {3});
    Simulator::Run();
    const std::vector<std::pair<std::string, Time>> expected = {{"miss", MilliSeconds(1)},
                                                                {"loaded", MilliSeconds(11)},
                                                                {"start", MilliSeconds(11)},
                                                                {"done", MilliSeconds(13)},
                                                                {"start", MilliSeconds(13)},
                                                                {"done", MilliSeconds(15)}};
    CHECK(events == expected);
    Simulator::Destroy();
}

TEST_CASE("device app: two missing experts load one after the other and compute as they arrive",
          "[device]")
{
    Fixture f;
    std::vector<std::pair<std::string, Time>> events;
    auto record = [&events](std::string name) {
        return [&events, name](uint32_t, uint32_t expert, uint32_t) {
            events.emplace_back(name + std::to_string(expert), Simulator::Now());
        };
    };
    const std::vector<std::string> sources = {"LoadStarted",
                                              "LoadDone",
                                              "ComputeStarted",
                                              "ComputeDone"};
    std::vector<std::function<void(uint32_t, uint32_t, uint32_t)>> sinks;
    for (const std::string& source : sources)
    {
        sinks.push_back(record(source + " "));
    }
    for (std::size_t i = 0; i < sources.size(); ++i)
    {
        f.device->TraceConnectWithoutContext(
            sources[i],
            MakeCallback(&std::function<void(uint32_t, uint32_t, uint32_t)>::operator(),
                         &sinks[i]));
    }
    // (Events at one time come in the order they were scheduled: the loads when the request
    // arrived, then the computations.) Experts 3 and 4 of layer 0 arrive at 1 ms, neither in
    // memory: the reader loads 3 from 1 to 11 ms, then 4 from 11 to 21 ms; 3 computes 11-13 ms, 4
    // computes 21-23 ms.
    const ExpertRequestPtr r = f.Send(Seconds(0), 0, {3, 4});
    Simulator::Run();
    const std::vector<std::pair<std::string, Time>> expected = {
        {"LoadStarted 3", MilliSeconds(1)},
        {"LoadDone 3", MilliSeconds(11)},
        {"LoadStarted 4", MilliSeconds(11)},
        {"ComputeStarted 3", MilliSeconds(11)},
        {"ComputeDone 3", MilliSeconds(13)},
        {"LoadDone 4", MilliSeconds(21)},
        {"ComputeStarted 4", MilliSeconds(21)},
        {"ComputeDone 4", MilliSeconds(23)}};
    std::string seen;
    for (const auto& [name, at] : events)
    {
        seen += name + " at " + std::to_string(at.GetMicroSeconds()) + " us; ";
    }
    INFO(seen);
    CHECK(events == expected);
    CHECK(r->load == MilliSeconds(18)); // 10 ms before expert 3, 8 ms between the two
    CHECK(r->compute == MilliSeconds(4));
    REQUIRE(f.answers.size() == 1);
    CHECK(f.answers[0].first == MilliSeconds(24));
    Simulator::Destroy();
}

TEST_CASE("device app: a hint starts the load so the request finds the expert ready", "[device]")
{
    Fixture f;
    // The hint arrives at 0.5 ms and loads expert 5 of layer 0 to 10.5 ms; the request sent at
    // 20 ms arrives at 21 ms, finds it ready, computes to 23 ms, is back at 24 ms.
    Simulator::Schedule(Seconds(0), [&f]() {
        f.transport->SendControl(0, 256, MakeCallback(&ExpertDeviceApp::Hint, f.device).Bind(0, 5));
    });
    const ExpertRequestPtr r = f.Send(MilliSeconds(20), 0, {5});
    Simulator::Run();
    REQUIRE(f.answers.size() == 1);
    CHECK(f.answers[0].first == MilliSeconds(24));
    CHECK(r->hits == 1);
    CHECK(r->load == Seconds(0));
    // A layer without memory slots keeps nothing: a hint there does nothing, a use loads.
    CHECK_FALSE(f.device->Memory().Contains(1, 5));
    Simulator::Destroy();
}

TEST_CASE("device app: switched off, it answers nothing, and a withdrawn request is dropped",
          "[device]")
{
    Fixture f;
    f.device->ScheduleSwitchOff(MilliSeconds(12)); // while the first request computes
    f.Send(Seconds(0), 0, {3});                    // would be back at 14 ms
    f.Send(MilliSeconds(20), 0, {3});              // arrives after the switch-off
    Simulator::Run();
    CHECK(f.answers.empty());
    Simulator::Destroy();

    Fixture g;
    const ExpertRequestPtr r = g.Send(Seconds(0), 0, {3});
    r->withdrawn = true; // the BS gave up on it before it arrived
    Simulator::Run();
    CHECK(g.answers.empty());
    CHECK(r->misses == 0); // never received: its memory was not asked
    Simulator::Destroy();
}

TEST_CASE("transport seam: through a fixed-delay transport a token takes the hand sum", "[device]")
{
    // The fixture's one-layer model on one device 200 m away: every transfer takes 1 ms, so a
    // decode step is BS layer + 1 ms + two experts (top-2, both on the device) + 1 ms + LM head.
    wdmoe::test::ScenarioFixture f(1);
    auto model = std::shared_ptr<wdmoe::llm::MixtralModel>(
        wdmoe::llm::MixtralModel::Load(f.dir.File("model")));
    std::vector<int> tokens;
    for (int i = 0; i < 40; ++i)
    {
        tokens.push_back('a' + (i * 7) % 26);
    }
    NodeContainer nodes;
    nodes.Create(2);
    for (uint32_t i = 0; i < 2; ++i)
    {
        Ptr<ConstantPositionMobilityModel> m = CreateObject<ConstantPositionMobilityModel>();
        m->SetPosition(Vector(200.0 * i, 0, i ? 1.5 : 25));
        nodes.Get(i)->AggregateObject(m);
    }
    const CostModel cost = CostModel::Mixtral8x7B();
    const ComputeProfile bs = LoadComputeProfile({wdmoe::test::kProfiles}, "edge-server-gpu");
    const ComputeProfile orin = LoadComputeProfile({wdmoe::test::kProfiles}, "jetson-agx-orin");
    Ptr<FixedDelayTransport> transport = CreateObject<FixedDelayTransport>();
    WdmoeHelper helper;
    helper.SetChannelAttribute("PropagationLossModel",
                               PointerValue(WdmoeChannel::CreateLogDistance128(35)));
    helper.SetTransport(transport);
    helper.SetModel(model);
    helper.SetWorkload(tokens, 8, 4);
    helper.SetCostModel(cost);
    helper.SetBsProfile(bs);
    helper.SetDeviceProfile(orin);
    helper.SetExpertSlots(8, 8, true);
    // A rule chosen by name, as LteHelper's scheduler by TypeId: WLR at theta 0 drops nothing.
    CHECK_THROWS_WITH(helper.SetSelectionRule("fastest"),
                      Catch::Contains("known: all, energy, straggler, wlr"));
    helper.SetSelectionRule("wlr");
    helper.SetSelectionRuleAttribute("Theta", DoubleValue(0.0));
    helper.Install(nodes.Get(0), NodeContainer(nodes.Get(1)));
    helper.AssignStreams(0);
    WdmoeStatsCollector stats(1);
    stats.Connect();
    Simulator::Run();
    const Ptr<ExpertSelectionRule> rule = helper.GetBsApp()->Policy().selectionRule;
    CHECK(rule->GetInstanceTypeId().GetName() == "ns3::WlrSelectionRule");
    DoubleValue theta;
    rule->GetAttribute("Theta", theta);
    CHECK(theta.Get() == 0.0);
    Simulator::Destroy();
    REQUIRE(stats.Tokens().size() == 4);
    const TokenRecord& decode = stats.Tokens()[1]; // 1 token after 8 in the cache
    REQUIRE(decode.phase == PassPhase::DECODE);
    const double expected = cost.BsLayerSeconds(bs, 1, 8) + 1e-3 + 2 * cost.ExpertSeconds(orin, 1) +
                            1e-3 + cost.LmHeadSeconds(bs, 1);
    CHECK(decode.latency.GetSeconds() == Approx(expected).margin(5e-9));
    CHECK(decode.downlink == MilliSeconds(1));
    CHECK(decode.uplink == MilliSeconds(1));
    CHECK(decode.expertsRun == 2);
}
