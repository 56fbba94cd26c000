// A device's battery as an ns-3 EnergySource: it integrates the current its device energy
// models draw, takes lumps of energy booked after the fact (a transfer's radio energy), and
// knows exactly when it empties.
#ifndef WDMOE_DEVICE_BATTERY_H
#define WDMOE_DEVICE_BATTERY_H

#include "ns3/energy-source.h"
#include "ns3/event-id.h"
#include "ns3/nstime.h"
#include "ns3/traced-value.h"

namespace ns3
{

/**
 * \ingroup wdmoe
 * An ideal battery of a given capacity (attribute Capacity, J; infinite: never empties), full
 * when created (call UpdateEnergySource once its models are attached): the remaining energy falls
 * by the models' current x SupplyVoltage over time and by every Draw. Unlike BasicEnergySource,
 * which finds a depletion only at its periodic updates (and at a low battery threshold of 10 % by
 * default), it schedules the instant the remaining energy reaches zero at the present draw, and
 * reschedules it at every update; at that instant it notifies its models
 * (DeviceEnergyModel::HandleEnergyDepletion). A Draw larger than what is left empties it at once.
 * After depletion it stays empty (no recharging).
 */
class DeviceBattery : public EnergySource
{
  public:
    static TypeId GetTypeId();
    DeviceBattery();

    double GetInitialEnergy() const override;
    double GetSupplyVoltage() const override;
    double GetRemainingEnergy() override;
    double GetEnergyFraction() override;
    /// Integrates the models' current since the last update and reschedules the depletion.
    void UpdateEnergySource() override;

    /// Takes `joules` at once (after integrating up to now).
    void Draw(double joules);

    /// True once empty; DepletedAt is then when it emptied.
    bool IsDepleted() const { return m_depleted; }

    Time DepletedAt() const { return m_depletedAt; }

  protected:
    void DoDispose() override;

  private:
    void Integrate();
    void ScheduleDepletion();
    void Deplete();

    double m_capacityJ;
    double m_supplyVoltageV;
    TracedValue<double> m_remainingJ;
    Time m_lastUpdate;
    bool m_started = false; ///< m_remainingJ set (full since creation)
    bool m_depleted = false;
    Time m_depletedAt;
    EventId m_depletion;
};

} // namespace ns3

#endif
