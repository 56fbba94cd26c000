// The energy a device spends on expert work: compute (active while it computes or loads an
// expert from storage, idle otherwise) and radio (transmitting and receiving its transfers), as
// an ns-3 DeviceEnergyModel drawing on the device's battery.
#ifndef WDMOE_EXPERT_DEVICE_ENERGY_MODEL_H
#define WDMOE_EXPERT_DEVICE_ENERGY_MODEL_H

#include "compute-profile.h"
#include "device-battery.h"
#include "expert-transport.h"

#include "ns3/callback.h"
#include "ns3/device-energy-model.h"
#include "ns3/nstime.h"

#include <array>

namespace ns3
{

/**
 * \ingroup wdmoe
 * Power of a device (profile fields in W, ComputeProfile):
 *   P(t) = idle_power_w + (active_power_w - idle_power_w) 1[computing or loading at t]
 * drawn continuously from time 0 until the device is switched off, plus per transfer
 *   E_tx = P_tx / pa_efficiency x uplink airtime,   E_rx = radio_rx_power_w x downlink airtime,
 * booked when the transfer leaves the air (ExpertTransport's Airtime trace), P_tx the device's
 * radiated power. It is fed by the device application's LoadStarted/LoadDone and
 * ComputeStarted/ComputeDone traces and the transport's Airtime trace (DeviceEnergyHelper
 * connects them). The continuous part is a current (DoGetCurrentA) the battery integrates; the
 * radio lumps are DeviceBattery::Draw calls. When the battery empties the model switches off
 * (draws nothing more) and calls its depletion callback.
 */
class ExpertDeviceEnergyModel : public DeviceEnergyModel
{
  public:
    /// Where the energy went.
    enum Part
    {
        COMPUTE_ACTIVE, ///< active_power_w while computing or loading
        COMPUTE_IDLE,   ///< idle_power_w otherwise
        RADIO_TX,       ///< transmitting (uplink airtime)
        RADIO_RX,       ///< receiving (downlink airtime)
        PARTS
    };

    static TypeId GetTypeId();
    ExpertDeviceEnergyModel();

    /// The profile's powers (it must have them: ComputeProfile::HasEnergy) and the radiated
    /// power of the device's transmitter (W).
    void SetPowers(const ComputeProfile& profile, double txPowerW);
    /// Called once when the battery empties (e.g. to switch the device off).
    void SetDepletionCallback(Callback<void> depleted);

    void SetEnergySource(Ptr<EnergySource> source) override;
    /// Joules spent up to the last update (Update brings it to now).
    double GetTotalEnergyConsumption() const override;
    /// The busy state: 1 computing or loading, 0 idle (ChangeState(1) counts one more activity,
    /// ChangeState(0) one fewer).
    void ChangeState(int newState) override;
    void HandleEnergyDepletion() override;
    void HandleEnergyRecharged() override;
    void HandleEnergyChanged() override;

    /// Brings the energy up to now.
    void Update();

    /// Joules of one part, up to the last update.
    double Energy(Part part) const { return m_energy[part]; }

    /// Seconds of airtime booked, by direction.
    double Airtime(ExpertTransport::Direction direction) const { return m_airtime[direction]; }

    /// From now on the device draws nothing (its switch-off).
    void SwitchOff();

    bool IsOff() const { return m_off; }

    // Sinks of the device application's traces (layer, expert, device).
    void LoadStarted(uint32_t layer, uint32_t expert, uint32_t device);
    void LoadDone(uint32_t layer, uint32_t expert, uint32_t device);
    void ComputeStarted(uint32_t layer, uint32_t expert, uint32_t device);
    void ComputeDone(uint32_t layer, uint32_t expert, uint32_t device);
    /// A transfer of this device left the air after `seconds` of airtime.
    void TransferAirtime(ExpertTransport::Direction direction, double seconds);

  private:
    double DoGetCurrentA() const override;
    /// The continuous power now (W).
    double Power() const;

    Ptr<DeviceBattery> m_battery;
    ComputeProfile m_profile;
    double m_txPowerW = 0;
    int m_busy = 0; ///< activities in progress (loads and computations)
    bool m_off = false;
    Time m_lastUpdate;
    std::array<double, PARTS> m_energy{};
    std::array<double, 2> m_airtime{};
    Callback<void> m_depleted;
};

} // namespace ns3

#endif
