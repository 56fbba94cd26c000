#include "expert-device-energy-model.h"

#include "ns3/log.h"
#include "ns3/simulator.h"

#include <numeric>
#include <stdexcept>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("ExpertDeviceEnergyModel");
NS_OBJECT_ENSURE_REGISTERED(ExpertDeviceEnergyModel);

TypeId
ExpertDeviceEnergyModel::GetTypeId()
{
    static TypeId tid = TypeId("ns3::ExpertDeviceEnergyModel")
                            .SetParent<DeviceEnergyModel>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<ExpertDeviceEnergyModel>();
    return tid;
}

ExpertDeviceEnergyModel::ExpertDeviceEnergyModel()
    : m_lastUpdate(Simulator::Now())
{
}

void
ExpertDeviceEnergyModel::SetPowers(const ComputeProfile& profile, double txPowerW)
{
    if (!profile.HasEnergy())
    {
        throw std::invalid_argument("compute profile \"" + profile.name +
                                    "\" has no energy fields (active_power_w, idle_power_w, "
                                    "pa_efficiency, radio_rx_power_w)");
    }
    m_profile = profile;
    m_txPowerW = txPowerW;
}

void
ExpertDeviceEnergyModel::SetDepletionCallback(Callback<void> depleted)
{
    m_depleted = depleted;
}

void
ExpertDeviceEnergyModel::SetEnergySource(Ptr<EnergySource> source)
{
    m_battery = DynamicCast<DeviceBattery>(source);
    if (!m_battery)
    {
        throw std::invalid_argument("ExpertDeviceEnergyModel draws on a DeviceBattery (it books "
                                    "radio energy as lumps)");
    }
}

double
ExpertDeviceEnergyModel::GetTotalEnergyConsumption() const
{
    return std::accumulate(m_energy.begin(), m_energy.end(), 0.0);
}

double
ExpertDeviceEnergyModel::Power() const
{
    if (m_off)
    {
        return 0.0;
    }
    return m_busy > 0 ? m_profile.activePowerW : m_profile.idlePowerW;
}

double
ExpertDeviceEnergyModel::DoGetCurrentA() const
{
    return m_battery ? Power() / m_battery->GetSupplyVoltage() : 0.0;
}

void
ExpertDeviceEnergyModel::Update()
{
    const Time now = Simulator::Now();
    const double seconds = (now - m_lastUpdate).GetSeconds();
    if (!m_off && seconds > 0)
    {
        m_energy[m_busy > 0 ? COMPUTE_ACTIVE : COMPUTE_IDLE] += Power() * seconds;
    }
    m_lastUpdate = now;
}

void
ExpertDeviceEnergyModel::ChangeState(int newState)
{
    // The battery integrates the old power up to now, then learns the new one.
    Update();
    if (m_battery)
    {
        m_battery->UpdateEnergySource();
    }
    m_busy += newState == 1 ? 1 : -1;
    NS_ASSERT_MSG(m_busy >= 0, "ExpertDeviceEnergyModel: more ends than starts");
    if (m_battery)
    {
        m_battery->UpdateEnergySource();
    }
}

void
ExpertDeviceEnergyModel::SwitchOff()
{
    if (m_off)
    {
        return;
    }
    Update();
    if (m_battery)
    {
        m_battery->UpdateEnergySource();
    }
    m_off = true;
    if (m_battery)
    {
        m_battery->UpdateEnergySource();
    }
}

void
ExpertDeviceEnergyModel::HandleEnergyDepletion()
{
    NS_LOG_INFO("battery empty at " << Simulator::Now().As(Time::S));
    Update();
    m_off = true;
    if (!m_depleted.IsNull())
    {
        m_depleted();
    }
}

void
ExpertDeviceEnergyModel::HandleEnergyRecharged()
{
}

void
ExpertDeviceEnergyModel::HandleEnergyChanged()
{
}

void
ExpertDeviceEnergyModel::LoadStarted(uint32_t, uint32_t, uint32_t)
{
    ChangeState(1);
}

void
ExpertDeviceEnergyModel::LoadDone(uint32_t, uint32_t, uint32_t)
{
    ChangeState(0);
}

void
ExpertDeviceEnergyModel::ComputeStarted(uint32_t, uint32_t, uint32_t)
{
    ChangeState(1);
}

void
ExpertDeviceEnergyModel::ComputeDone(uint32_t, uint32_t, uint32_t)
{
    ChangeState(0);
}

void
ExpertDeviceEnergyModel::TransferAirtime(ExpertTransport::Direction direction, double seconds)
{
    if (m_off)
    {
        return;
    }
    Update();
    const bool up = direction == ExpertTransport::UPLINK;
    const double joules =
        seconds * (up ? m_txPowerW / m_profile.paEfficiency : m_profile.radioRxPowerW);
    m_energy[up ? RADIO_TX : RADIO_RX] += joules;
    m_airtime[direction] += seconds;
    if (m_battery)
    {
        m_battery->Draw(joules);
    }
}

} // namespace ns3
