#include "device-energy-helper.h"

#include "ns3/double.h"
#include "ns3/energy-source-container.h"
#include "ns3/node.h"
#include "ns3/simulator.h"

#include <cmath>

namespace ns3
{

void
DeviceEnergyHelper::Install(const std::vector<Ptr<ExpertDeviceApp>>& devices,
                            Ptr<ExpertTransport> transport,
                            const std::vector<double>& txPowerW,
                            double batteryJ)
{
    for (std::size_t d = 0; d < devices.size(); ++d)
    {
        Ptr<ExpertDeviceApp> app = devices[d];
        Ptr<DeviceBattery> battery = CreateObject<DeviceBattery>();
        battery->SetAttribute("Capacity", DoubleValue(batteryJ));
        Ptr<ExpertDeviceEnergyModel> model = CreateObject<ExpertDeviceEnergyModel>();
        model->SetPowers(app->Profile(), txPowerW.at(d));
        model->SetEnergySource(battery);
        battery->AppendDeviceEnergyModel(model);
        battery->UpdateEnergySource(); // the idle draw from now on may empty it too
        if (Ptr<Node> node = app->GetNode())
        {
            battery->SetNode(node);
            Ptr<EnergySourceContainer> sources = CreateObject<EnergySourceContainer>();
            sources->Add(battery);
            node->AggregateObject(sources);
        }
        model->SetDepletionCallback(
            MakeCallback(&DeviceEnergyHelper::Depleted, this).Bind(uint32_t(d)));
        app->TraceConnectWithoutContext("LoadStarted",
                                        MakeCallback(&ExpertDeviceEnergyModel::LoadStarted, model));
        app->TraceConnectWithoutContext("LoadDone",
                                        MakeCallback(&ExpertDeviceEnergyModel::LoadDone, model));
        app->TraceConnectWithoutContext(
            "ComputeStarted",
            MakeCallback(&ExpertDeviceEnergyModel::ComputeStarted, model));
        app->TraceConnectWithoutContext("ComputeDone",
                                        MakeCallback(&ExpertDeviceEnergyModel::ComputeDone, model));
        if (app->HasSwitchOff())
        {
            Simulator::Schedule(app->OffAt() - Simulator::Now(),
                                &ExpertDeviceEnergyModel::SwitchOff,
                                model);
        }
        m_apps.push_back(app);
        m_models.push_back(model);
        m_batteries.push_back(battery);
    }
    transport->TraceConnectWithoutContext("Airtime",
                                          MakeCallback(&DeviceEnergyHelper::Airtime, this));
}

void
DeviceEnergyHelper::Airtime(uint32_t device, ExpertTransport::Direction direction, double seconds)
{
    m_models.at(device)->TransferAirtime(direction, seconds);
}

void
DeviceEnergyHelper::Depleted(uint32_t device)
{
    m_apps.at(device)->ScheduleSwitchOff(Simulator::Now());
}

void
DeviceEnergyHelper::ConnectPasses(Ptr<MoeInferenceApp> bs)
{
    bs->TraceConnectWithoutContext("TokenDone", MakeCallback(&DeviceEnergyHelper::PassDone, this));
    m_perRequest = true;
}

double
DeviceEnergyHelper::UpdateTotal() const
{
    double total = 0;
    for (const auto& model : m_models)
    {
        model->Update();
        total += model->GetTotalEnergyConsumption();
    }
    return total;
}

void
DeviceEnergyHelper::PassDone(const TokenRecord& record)
{
    const double total = UpdateTotal();
    m_requestJ[record.request] += total - m_accountedJ;
    m_accountedJ = total;
}

} // namespace ns3

namespace ns3
{

namespace
{

/// Joules, or null when not finite (an unlimited battery's capacity).
nlohmann::ordered_json
JoulesOrNull(double joules)
{
    return std::isfinite(joules) ? nlohmann::ordered_json(joules) : nlohmann::ordered_json();
}

} // namespace

nlohmann::ordered_json
DeviceEnergyHelper::Summary(std::size_t outputTokens, double batteryJ) const
{
    using Part = ExpertDeviceEnergyModel;
    UpdateTotal();
    nlohmann::ordered_json devices = nlohmann::ordered_json::array();
    double compute = 0;
    double radio = 0;
    for (uint32_t d = 0; d < Devices(); ++d)
    {
        const Ptr<ExpertDeviceEnergyModel> m = m_models[d];
        const Ptr<DeviceBattery> b = m_batteries[d];
        const double c = m->Energy(Part::COMPUTE_ACTIVE) + m->Energy(Part::COMPUTE_IDLE);
        const double r = m->Energy(Part::RADIO_TX) + m->Energy(Part::RADIO_RX);
        compute += c;
        radio += r;
        devices.push_back({{"device", d},
                           {"total_j", c + r},
                           {"compute_active_j", m->Energy(Part::COMPUTE_ACTIVE)},
                           {"compute_idle_j", m->Energy(Part::COMPUTE_IDLE)},
                           {"radio_tx_j", m->Energy(Part::RADIO_TX)},
                           {"radio_rx_j", m->Energy(Part::RADIO_RX)},
                           {"uplink_airtime_s", m->Airtime(ExpertTransport::UPLINK)},
                           {"downlink_airtime_s", m->Airtime(ExpertTransport::DOWNLINK)},
                           {"battery_remaining_j", JoulesOrNull(b->GetRemainingEnergy())},
                           {"battery_depleted_at_s",
                            b->IsDepleted() ? nlohmann::ordered_json(b->DepletedAt().GetSeconds())
                                            : nlohmann::ordered_json()}});
    }
    const double perToken = outputTokens > 0 ? 1.0 / double(outputTokens) : 0.0;
    nlohmann::ordered_json requests = nlohmann::ordered_json::array();
    double requestSum = 0;
    for (const auto& [request, joules] : m_requestJ)
    {
        requests.push_back({{"request", request}, {"device_j", joules}});
        requestSum += joules;
    }
    nlohmann::ordered_json s;
    s["battery_j"] = JoulesOrNull(batteryJ);
    s["output_tokens"] = outputTokens;
    s["device_total_j"] = compute + radio;
    s["device_compute_j"] = compute;
    s["device_radio_j"] = radio;
    s["per_output_token_j"] = (compute + radio) * perToken;
    s["per_output_token_compute_j"] = compute * perToken;
    s["per_output_token_radio_j"] = radio * perToken;
    if (m_perRequest)
    {
        s["per_request_mean_j"] = requests.empty() ? 0.0 : requestSum / double(requests.size());
        s["per_request"] = requests;
    }
    s["per_device"] = devices;
    return s;
}

} // namespace ns3
