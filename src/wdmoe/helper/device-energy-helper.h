// DeviceEnergyHelper: gives every device node of a cell a battery (DeviceBattery) and an
// ExpertDeviceEnergyModel fed by its application's and the transport's traces, and reports
// the energy per device, per request and per output token.
#ifndef WDMOE_DEVICE_ENERGY_HELPER_H
#define WDMOE_DEVICE_ENERGY_HELPER_H

#include "device-battery.h"
#include "expert-device-app.h"
#include "expert-device-energy-model.h"
#include "expert-transport.h"
#include "inference-records.h"
#include "moe-inference-app.h"

#include <map>
#include <nlohmann/json.hpp>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * Installs the energy model of a cell (as ns-3's BasicEnergySourceHelper and
 * WifiRadioEnergyModelHelper do for Wi-Fi nodes): per device app a DeviceBattery aggregated to
 * its node (in an EnergySourceContainer) and an ExpertDeviceEnergyModel on it. A battery that
 * empties switches its device off through ExpertDeviceApp::ScheduleSwitchOff (the failure
 * path) at that instant; a device switched off otherwise (scheduled failures) stops drawing
 * then. Install after the failures are scheduled and before Simulator::Run.
 */
class DeviceEnergyHelper
{
  public:
    /**
     * \param devices the device apps, in the transport's device order
     * \param transport their transport (its Airtime trace feeds the radio energy)
     * \param txPowerW each device's radiated transmit power (W), by device
     * \param batteryJ the battery capacity (J); infinity: none
     */
    void Install(const std::vector<Ptr<ExpertDeviceApp>>& devices,
                 Ptr<ExpertTransport> transport,
                 const std::vector<double>& txPowerW,
                 double batteryJ);
    /// Attributes each pass's device energy (all devices, since the previous pass ended) to
    /// its request (TokenRecord::request), from the BS application's TokenDone trace.
    void ConnectPasses(Ptr<MoeInferenceApp> bs);

    uint32_t Devices() const { return uint32_t(m_models.size()); }

    Ptr<ExpertDeviceEnergyModel> GetModel(uint32_t device) const { return m_models.at(device); }

    Ptr<DeviceBattery> GetBattery(uint32_t device) const { return m_batteries.at(device); }

    /// Every model brought up to now; the devices' total energy (J).
    double UpdateTotal() const;

    /**
     * summary.json's "energy" (after Simulator::Run): the total, compute and radio energy of the
     * devices per output token (outputTokens: the passes, each of which
     * yields one next token: a prefill's first and every decode step's), each device's parts,
     * airtime and battery, and the energy per request.
     */
    nlohmann::ordered_json Summary(std::size_t outputTokens, double batteryJ) const;

  private:
    void Airtime(uint32_t device, ExpertTransport::Direction direction, double seconds);
    /// The device's battery is empty: it switches off now.
    void Depleted(uint32_t device);
    void PassDone(const TokenRecord& record);

    std::vector<Ptr<ExpertDeviceApp>> m_apps;
    std::vector<Ptr<ExpertDeviceEnergyModel>> m_models;
    std::vector<Ptr<DeviceBattery>> m_batteries;
    std::map<int, double> m_requestJ; ///< by request index
    bool m_perRequest = false;        ///< ConnectPasses was called: energy per request is reported
    double m_accountedJ = 0;          ///< device energy already given to a request
};

} // namespace ns3

#endif
