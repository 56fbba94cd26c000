// Device energy: one device, one expert, a transport with known airtime: the energy of each part
// to the microjoule by hand; a battery that empties switches its device off at the instant the
// hand sum gives; the energy rule picks the lower-energy expert when the latency slack allows
// and the faster one otherwise; a scenario reports its energy per output token.

#include "compute-profile.h"
#include "cost-model.h"
#include "device-energy-helper.h"
#include "expert-device-app.h"
#include "expert-selection-rule.h"
#include "expert-transport.h"
#include "json-config.h"
#include "profile-reader.h"
#include "run-scenario.h"
#include "scenario-fixture.h"

#include "ns3/double.h"
#include "ns3/node.h"
#include "ns3/simulator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

using namespace ns3;

namespace
{

/// Every transfer is on the air for exactly 1 ms and arrives when it leaves the air.
class OneMillisecondTransport : public ExpertTransport
{
  public:
    void SetShares(const std::vector<uint32_t>&, const std::vector<double>&) override {}

    bool InCoverage(uint32_t) override { return true; }

    void Send(uint32_t device, Direction direction, double, Callback<void> arrived) override
    {
        Simulator::Schedule(MilliSeconds(1),
                            &OneMillisecondTransport::OffAir,
                            this,
                            device,
                            direction,
                            arrived);
    }

    void SendControl(uint32_t, double, Callback<void>) override {}

  private:
    void OffAir(uint32_t device, Direction direction, Callback<void> arrived)
    {
        NotifyAirtime(device, direction, 1e-3);
        arrived();
    }
};

/// One device (expert loads in 10 ms, computes in 2 ms per token), active 10 W, idle 2 W,
/// PA efficiency 0.25, receive 0.5 W, radiated 0.2 W.
struct EnergyFixture
{
    Ptr<OneMillisecondTransport> transport = CreateObject<OneMillisecondTransport>();
    Ptr<ExpertDeviceApp> device = CreateObject<ExpertDeviceApp>();
    DeviceEnergyHelper energy;
    int answers = 0;

    explicit EnergyFixture(double batteryJ)
    {
        const CostModel cost = CostModel::Mixtral8x7B();
        ComputeProfile p;
        p.name = "hand";
        p.peakFlops = cost.ExpertFlopsPerToken() / 2e-3;
        p.memoryBandwidth = 1e30;
        p.memoryBytes = 64e9;
        p.storageReadBandwidth = cost.ExpertBytes() / 10e-3;
        p.activePowerW = 10;
        p.idlePowerW = 2;
        p.paEfficiency = 0.25;
        p.radioRxPowerW = 0.5;
        device->SetTransport(transport, 0);
        device->SetCosts(p, cost);
        device->SetMemory(ExpertMemory({1}));
        device->SetAnswerCallback(MakeCallback(&EnergyFixture::Answer, this));
        CreateObject<Node>()->AddApplication(device);
        energy.Install({device}, transport, {0.2}, batteryJ);
    }

    void Answer(uint32_t, ExpertRequestPtr) { ++answers; }

    /// At 0 the BS sends expert 3 of layer 0 (not in memory): downlink 0-1 ms, load 1-11 ms,
    /// compute 11-13 ms, uplink 13-14 ms; the run stops at 20 ms.
    void Run()
    {
        auto r = std::make_shared<ExpertRequest>();
        r->work.experts = {3};
        r->work.tokensOf = {1};
        r->work.tokens = 1;
        transport->Send(0,
                        ExpertTransport::DOWNLINK,
                        1,
                        MakeCallback(&ExpertDeviceApp::Receive, device).Bind(r));
        Simulator::Stop(MilliSeconds(20));
        Simulator::Run();
    }
};

} // namespace

TEST_CASE("energy: one device, one expert, by hand to the microjoule", "[energy]")
{
    EnergyFixture f(std::numeric_limits<double>::infinity());
    f.Run();
    REQUIRE(f.answers == 1);
    const double total = f.energy.UpdateTotal();
    const Ptr<ExpertDeviceEnergyModel> m = f.energy.GetModel(0);
    using M = ExpertDeviceEnergyModel;
    // Active 1-13 ms (loading, then computing): 10 W x 12 ms; idle 0-1 and 13-20 ms: 2 W x 8 ms;
    // transmit 0.2 W / 0.25 x 1 ms; receive 0.5 W x 1 ms.
    CHECK(m->Energy(M::COMPUTE_ACTIVE) == Approx(0.120).margin(1e-6));
    CHECK(m->Energy(M::COMPUTE_IDLE) == Approx(0.016).margin(1e-6));
    CHECK(m->Energy(M::RADIO_TX) == Approx(0.0008).margin(1e-6));
    CHECK(m->Energy(M::RADIO_RX) == Approx(0.0005).margin(1e-6));
    CHECK(total == Approx(0.1373).margin(1e-6));
    CHECK(m->Airtime(ExpertTransport::UPLINK) == Approx(1e-3).margin(1e-12));
    CHECK(m->Airtime(ExpertTransport::DOWNLINK) == Approx(1e-3).margin(1e-12));
    CHECK(std::isinf(f.energy.GetBattery(0)->GetRemainingEnergy()));
    CHECK_FALSE(f.energy.GetBattery(0)->IsDepleted());

    const nlohmann::ordered_json s = f.energy.Summary(2, std::numeric_limits<double>::infinity());
    CHECK(s["per_output_token_j"].get<double>() == Approx(0.1373 / 2).margin(1e-6));
    CHECK(s["per_output_token_radio_j"].get<double>() == Approx(0.0013 / 2).margin(1e-6));
    CHECK(s["battery_j"].is_null());
    CHECK(s["per_device"][0]["battery_depleted_at_s"].is_null());
    Simulator::Destroy();
}

TEST_CASE("energy: a battery that empties switches its device off when the hand sum says",
          "[energy]")
{
    // 0.05 J: idle 2 W for 1 ms (0.002 J), the downlink's 0.0005 J at 1 ms, then 10 W from 1 ms:
    // the 0.0475 J left last 4.75 ms, so the device dies at 5.75 ms while it loads, and never
    // answers.
    EnergyFixture f(0.05);
    f.Run();
    CHECK(f.answers == 0);
    const Ptr<DeviceBattery> battery = f.energy.GetBattery(0);
    REQUIRE(battery->IsDepleted());
    CHECK(std::abs((battery->DepletedAt() - MicroSeconds(5750)).GetSeconds()) <= 1e-9);
    CHECK(f.device->IsOff());
    CHECK(f.device->OffAt() == battery->DepletedAt());
    CHECK(battery->GetRemainingEnergy() == 0.0);
    // Nothing is drawn after the switch-off.
    CHECK(f.energy.UpdateTotal() == Approx(0.05).margin(1e-9));
    Simulator::Destroy();
}

TEST_CASE("energy rule: the lower-energy expert within the latency slack, else the faster",
          "[energy][selection]")
{
    // Candidates A (weight 0.6) and B (0.4): A alone 10 ms and 2 J, B alone 12 ms and 1 J, both
    // 12 ms and 3 J. The fastest admissible subset is {A} (10 ms).
    const std::vector<double> weights = {0.6, 0.4};
    const LayerLatencyOf latency = [](const std::vector<bool>& k) {
        return k[0] && !k[1] ? 10e-3 : 12e-3;
    };
    const LayerEnergyOf energy = [](const std::vector<bool>& k) {
        return (k[0] ? 2.0 : 0.0) + (k[1] ? 1.0 : 0.0);
    };
    // Slack 0.25: B's 12 ms is within 12.5 ms, and B spends least.
    CHECK(SelectMinEnergy(weights, latency, energy, {0.3, 0.25}) == std::vector<bool>{false, true});
    // Slack 0.1: only A (10 ms) is within 11 ms.
    CHECK(SelectMinEnergy(weights, latency, energy, {0.3, 0.1}) == std::vector<bool>{true, false});
    // B's weight 0.4 is below half: B alone is not admissible whatever the slack.
    CHECK(SelectMinEnergy(weights, latency, energy, {0.5, 1.0}) == std::vector<bool>{true, false});
    // Every weight kept: both run.
    CHECK(SelectMinEnergy(weights, latency, energy, {1.0, 1.0}) == std::vector<bool>{true, true});

    // The registered rule, its knobs as attributes, asks the context's predictions.
    Ptr<ExpertSelectionRule> rule = ExpertSelectionRule::CreateRule("energy");
    rule->SetAttribute("WeightMin", DoubleValue(0.3));
    rule->SetAttribute("LatencySlack", DoubleValue(0.25));
    SelectionContext context;
    context.layerLatency = latency;
    context.layerEnergy = energy;
    CHECK(rule->Select(weights, context) == std::vector<bool>{false, true});
    CHECK(ExpertSelectionRule::NameOf(rule) == "energy");
}

TEST_CASE("energy: profiles give all four energy fields, cited, or none", "[energy][config]")
{
    for (const char* name : {"jetson-agx-orin", "jetson-orin-nano", "smartphone-soc"})
    {
        INFO("profile " << name);
        const ComputeProfile p = LoadComputeProfile({wdmoe::test::kProfiles}, name);
        CHECK(p.HasEnergy());
        CHECK(p.idlePowerW < p.activePowerW);
        const nlohmann::json j = ReadJsonConfigFile(wdmoe::test::kProfiles + "/" + name + ".json");
        for (const auto& field : ComputeProfileEnergyFields())
        {
            CHECK(j.at("sources").at(field).get<std::string>().size() > 20);
        }
    }
    nlohmann::json partial = ReadJsonConfigFile(wdmoe::test::kProfiles + "/jetson-agx-orin.json");
    partial.erase("radio_rx_power_w");
    CHECK_THROWS_WITH(ReadComputeProfile(JsonConfigReader("p.json", partial)),
                      Catch::Contains("radio_rx_power_w") && Catch::Contains("all or none"));
}

TEST_CASE("energy: a scenario reports its devices' energy per output token", "[energy][scenario]")
{
    wdmoe::test::ScenarioFixture f(1);
    f.config["energy"] = {{"enabled", true}};
    const ScenarioResult result = RunScenario(ScenarioConfig::Load(f.Write()));
    const auto& e = result.summary.at("energy");
    const double total = e.at("device_total_j").get<double>();
    REQUIRE(total > 0);
    // 6 passes (a prefill and 5 decode steps), each yields one output token.
    CHECK(e.at("output_tokens").get<int>() == 6);
    CHECK(e.at("per_output_token_j").get<double>() == Approx(total / 6));
    CHECK(e.at("device_compute_j").get<double>() + e.at("device_radio_j").get<double>() ==
          Approx(total));
    CHECK(e.at("device_radio_j").get<double>() > 0);
    // Idle power runs from 0 to the end of the run; the passes' energy covers all of it.
    double requests = 0;
    for (const auto& r : e.at("per_request"))
    {
        requests += r.at("device_j").get<double>();
    }
    CHECK(requests == Approx(total));
    // Without energy.enabled the summary has no energy.
    f.config.erase("energy");
    CHECK_FALSE(RunScenario(ScenarioConfig::Load(f.Write())).summary.contains("energy"));
}
