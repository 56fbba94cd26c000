// What each device did in a run, from its ExpertDeviceApp's trace sources: how long it computed
// and loaded experts, and devices.csv (its profile, power, position, experts held, utilisation).
#ifndef WDMOE_DEVICE_ACTIVITY_H
#define WDMOE_DEVICE_ACTIVITY_H

#include "expert-device-app.h"

#include "ns3/nstime.h"
#include "ns3/ptr.h"

#include <deque>
#include <string>
#include <vector>

namespace ns3
{

class WdmoeHelper;
struct ScenarioConfig;
struct DeviceSlots;

/**
 * \ingroup wdmoe
 * Sums each device's busy time. A device computes one expert at a time and its storage reader
 * loads one at a time, so each ComputeDone ends the oldest open ComputeStarted of its device
 * (LoadDone likewise), whatever order same-time events run in; an expert a switched-off device
 * never finished is not counted.
 */
class DeviceActivity
{
  public:
    /// What one device did.
    struct Totals
    {
        Time computeBusy;              ///< sum of its experts' compute times
        Time loadBusy;                 ///< sum of its storage reader's loads
        long long expertsComputed = 0; ///< experts it finished computing
        long long loads = 0;           ///< loads it finished (on demand and prefetched)
    };

    /// Connects to every device application of the helper (after Install, before the run)
    /// and keeps each device's horizontal distance from the BS at time 0.
    void Connect(WdmoeHelper& helper, uint32_t devices);

    const std::vector<Totals>& PerDevice() const { return m_totals; }

    /// devices.csv after the run: one row per device (index, group, profile, transmit power,
    /// distance at the start, expert slots, experts held, the placement's expected round trip,
    /// busy times, utilisation = compute busy / simulated time, experts computed, loads).
    std::string Csv(const ScenarioConfig& c,
                    const WdmoeHelper& helper,
                    const DeviceSlots& slots,
                    Time runTime) const;

  private:
    void ComputeStarted(uint32_t layer, uint32_t expert, uint32_t device);
    void ComputeDone(uint32_t layer, uint32_t expert, uint32_t device);
    void LoadStarted(uint32_t layer, uint32_t expert, uint32_t device);
    void LoadDone(uint32_t layer, uint32_t expert, uint32_t device);

    std::vector<Totals> m_totals;
    std::vector<std::deque<Time>> m_computing; ///< open compute starts, oldest first
    std::vector<std::deque<Time>> m_loading;   ///< open load starts, oldest first
    std::vector<double> m_distanceM;           ///< from the BS at time 0
};

} // namespace ns3

#endif
