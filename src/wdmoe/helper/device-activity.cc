#include "device-activity.h"

#include "scenario-config.h"
#include "scenario-inputs.h"
#include "wdmoe-helper.h"

#include "ns3/mobility-model.h"
#include "ns3/node.h"
#include "ns3/simulator.h"

#include <cmath>
#include <sstream>

namespace ns3
{

void
DeviceActivity::Connect(WdmoeHelper& helper, uint32_t devices)
{
    m_totals.assign(devices, Totals());
    m_computing.assign(devices, {});
    m_loading.assign(devices, {});
    m_distanceM.assign(devices, 0.0);
    const Vector bs = helper.GetBsApp()->GetNode()->GetObject<MobilityModel>()->GetPosition();
    for (uint32_t i = 0; i < devices; ++i)
    {
        Ptr<ExpertDeviceApp> app = helper.GetDeviceApp(i);
        const Vector at = app->GetNode()->GetObject<MobilityModel>()->GetPosition();
        m_distanceM[i] = std::hypot(at.x - bs.x, at.y - bs.y);
        app->TraceConnectWithoutContext("ComputeStarted",
                                        MakeCallback(&DeviceActivity::ComputeStarted, this));
        app->TraceConnectWithoutContext("ComputeDone",
                                        MakeCallback(&DeviceActivity::ComputeDone, this));
        app->TraceConnectWithoutContext("LoadStarted",
                                        MakeCallback(&DeviceActivity::LoadStarted, this));
        app->TraceConnectWithoutContext("LoadDone", MakeCallback(&DeviceActivity::LoadDone, this));
    }
}

void
DeviceActivity::ComputeStarted(uint32_t, uint32_t, uint32_t device)
{
    m_computing.at(device).push_back(Simulator::Now());
}

void
DeviceActivity::ComputeDone(uint32_t, uint32_t, uint32_t device)
{
    std::deque<Time>& open = m_computing.at(device);
    if (open.empty())
    {
        return;
    }
    m_totals[device].computeBusy += Simulator::Now() - open.front();
    ++m_totals[device].expertsComputed;
    open.pop_front();
}

void
DeviceActivity::LoadStarted(uint32_t, uint32_t, uint32_t device)
{
    m_loading.at(device).push_back(Simulator::Now());
}

void
DeviceActivity::LoadDone(uint32_t, uint32_t, uint32_t device)
{
    std::deque<Time>& open = m_loading.at(device);
    if (open.empty())
    {
        return;
    }
    m_totals[device].loadBusy += Simulator::Now() - open.front();
    ++m_totals[device].loads;
    open.pop_front();
}

std::string
DeviceActivity::Csv(const ScenarioConfig& c,
                    const WdmoeHelper& helper,
                    const DeviceSlots& slots,
                    Time runTime) const
{
    const std::vector<CellDevice> devices = c.CellDevices();
    const std::vector<DeviceGroup> groups = c.Groups();
    const std::vector<double>& costs = helper.GetPlacementCosts();
    std::ostringstream csv;
    csv.precision(10);
    csv << "device,group,profile,power_dbm,distance_m,memory_slots,storage_slots,experts_held,"
           "placement_round_trip_ms,compute_busy_s,load_busy_s,utilisation,experts_computed,"
           "loads\n";
    const double run = runTime.GetSeconds();
    for (std::size_t i = 0; i < m_totals.size(); ++i)
    {
        const Totals& t = m_totals[i];
        csv << i << "," << devices[i].group << "," << groups[devices[i].group].profile << ","
            << devices[i].powerDbm << "," << m_distanceM[i] << "," << slots.memory[i] << ","
            << slots.storage[i] << "," << helper.GetPlacement().Load(int(i)) << ","
            << (i < costs.size() ? costs[i] * 1e3 : 0.0) << "," << t.computeBusy.GetSeconds() << ","
            << t.loadBusy.GetSeconds() << "," << (run > 0 ? t.computeBusy.GetSeconds() / run : 0.0)
            << "," << t.expertsComputed << "," << t.loads << "\n";
    }
    return csv.str();
}

} // namespace ns3
