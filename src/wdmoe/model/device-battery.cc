#include "device-battery.h"

#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/simulator.h"
#include "ns3/trace-source-accessor.h"

#include <cmath>
#include <limits>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("DeviceBattery");
NS_OBJECT_ENSURE_REGISTERED(DeviceBattery);

TypeId
DeviceBattery::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::DeviceBattery")
            .SetParent<EnergySource>()
            .SetGroupName("Wdmoe")
            .AddConstructor<DeviceBattery>()
            .AddAttribute("Capacity",
                          "Energy when full (J); infinity: a battery that never empties",
                          DoubleValue(std::numeric_limits<double>::infinity()),
                          MakeDoubleAccessor(&DeviceBattery::m_capacityJ),
                          MakeDoubleChecker<double>(0.0, std::numeric_limits<double>::infinity()))
            .AddAttribute("SupplyVoltage",
                          "Supply voltage (V): converts the models' currents to power (3.7 V, "
                          "a Li-ion cell's nominal voltage; energies do not depend on it)",
                          DoubleValue(3.7),
                          MakeDoubleAccessor(&DeviceBattery::m_supplyVoltageV),
                          MakeDoubleChecker<double>(1e-3))
            .AddTraceSource("RemainingEnergy",
                            "Remaining energy (J)",
                            MakeTraceSourceAccessor(&DeviceBattery::m_remainingJ),
                            "ns3::TracedValueCallback::Double");
    return tid;
}

DeviceBattery::DeviceBattery()
    : m_capacityJ(std::numeric_limits<double>::infinity()),
      m_supplyVoltageV(3.7),
      m_remainingJ(0),
      m_lastUpdate(Simulator::Now())
{
}

void
DeviceBattery::DoDispose()
{
    m_depletion.Cancel();
    BreakDeviceEnergyModelRefCycle(); // as BasicEnergySource (the base's DoDispose is private)
}

double
DeviceBattery::GetInitialEnergy() const
{
    return m_capacityJ;
}

double
DeviceBattery::GetSupplyVoltage() const
{
    return m_supplyVoltageV;
}

double
DeviceBattery::GetRemainingEnergy()
{
    Integrate();
    return m_remainingJ;
}

double
DeviceBattery::GetEnergyFraction()
{
    return std::isinf(m_capacityJ) ? 1.0 : GetRemainingEnergy() / m_capacityJ;
}

void
DeviceBattery::Integrate()
{
    const Time now = Simulator::Now();
    if (!m_started) // full at creation (the capacity is an attribute, set after it)
    {
        m_started = true;
        m_remainingJ = m_capacityJ;
    }
    if (!m_depleted && now > m_lastUpdate)
    {
        const double power = CalculateTotalCurrent() * m_supplyVoltageV;
        m_remainingJ = m_remainingJ - power * (now - m_lastUpdate).GetSeconds();
    }
    m_lastUpdate = now;
}

void
DeviceBattery::UpdateEnergySource()
{
    Integrate();
    ScheduleDepletion();
}

void
DeviceBattery::Draw(double joules)
{
    Integrate();
    if (!m_depleted)
    {
        m_remainingJ = m_remainingJ - joules;
    }
    ScheduleDepletion();
}

void
DeviceBattery::ScheduleDepletion()
{
    m_depletion.Cancel();
    if (m_depleted || std::isinf(m_capacityJ))
    {
        return;
    }
    if (m_remainingJ <= 0)
    {
        Deplete();
        return;
    }
    const double power = CalculateTotalCurrent() * m_supplyVoltageV;
    if (power > 0)
    {
        m_depletion =
            Simulator::Schedule(Seconds(m_remainingJ / power), &DeviceBattery::Deplete, this);
    }
}

void
DeviceBattery::Deplete()
{
    Integrate();
    NS_LOG_INFO("battery empty at " << Simulator::Now().As(Time::S));
    m_depleted = true;
    m_depletedAt = Simulator::Now();
    m_remainingJ = 0;
    NotifyEnergyDrained();
}

} // namespace ns3
