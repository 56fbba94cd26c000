// An eNB MAC scheduler that sizes a power-limited UE's uplink allocation to what its power can
// carry, around any of ns-3's schedulers (which size every uplink allocation by the number of
// UEs only, and never grant a UE whose full-band sounding SINR maps to CQI 0).
#ifndef WDMOE_UPLINK_POWER_AWARE_SCHEDULER_H
#define WDMOE_UPLINK_POWER_AWARE_SCHEDULER_H

#include "ns3/ff-mac-sched-sap.h"
#include "ns3/ff-mac-scheduler.h"
#include "ns3/traced-callback.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace ns3
{

class LteAmc;

/**
 * \ingroup wdmoe
 * An ns3::FfMacScheduler that wraps another (attribute Inner, ns-3's proportional fair by
 * default) and adds what ns-3's schedulers leave out: uplink link adaptation for a
 * power-limited UE. A UE sounds the whole uplink carrier (srsBlocks resource blocks) at full
 * power when its power control asks more than Pcmax; on M < srsBlocks blocks the same power
 * gives a spectral density, and an SINR, higher by 10 log10(srsBlocks / M) dB, up to the power
 * control's open-loop target (MaxSinrDb). For every sounding report the scheduler picks the
 * allocation M in [3, srsBlocks] (3: ns-3's smallest uplink grant) whose transport block, at
 * the MCS that SINR allows, is largest (ties: the fewest blocks), then
 *
 *  - tells the inner scheduler the SINR the UE will have on M blocks (the report plus
 *    10 log10(srsBlocks / M), capped), so that it grants the UE and picks the MCS for it;
 *  - cuts each new uplink grant of the UE to at most M blocks (a retransmission gets the same
 *    cut as its first transmission), with the transport block of its MCS on them.
 *
 * A UE that no allocation of at least 3 blocks gives CQI 1 gets no change (the inner scheduler
 * never grants it) and GetAllocation reports 0 blocks: it is out of uplink coverage. Blocks a
 * cut frees stay unused in that TTI. The SINR to CQI mapping is ns-3's schedulers' own (Shannon
 * with a 5e-5 BER gap, TS 36.213 Table 7.2.3-1 efficiencies).
 */
class UplinkPowerAwareScheduler : public FfMacScheduler
{
  public:
    static TypeId GetTypeId();
    UplinkPowerAwareScheduler();
    ~UplinkPowerAwareScheduler() override;

    void SetFfMacCschedSapUser(FfMacCschedSapUser* s) override;
    void SetFfMacSchedSapUser(FfMacSchedSapUser* s) override;
    FfMacCschedSapProvider* GetFfMacCschedSapProvider() override;
    FfMacSchedSapProvider* GetFfMacSchedSapProvider() override;
    void SetLteFfrSapProvider(LteFfrSapProvider* s) override;
    LteFfrSapUser* GetLteFfrSapUser() override;

    /// A UE's uplink allocation: resource blocks (0: none carries the lowest MCS) and the SINR
    /// expected on them (dB).
    struct Allocation
    {
        uint16_t resourceBlocks = 0;
        double sinrDb = 0;
    };

    /// The allocation chosen from the UE's last sounding report; false before its first one.
    bool GetAllocation(uint16_t rnti, Allocation& out) const;

    /// The best allocation for a sounding SINR srsSinrDb measured on srsBlocks blocks at full
    /// power (see the class text), with amc's MCS and transport block tables.
    static Allocation BestAllocation(double srsSinrDb,
                                     uint16_t srsBlocks,
                                     double maxSinrDb,
                                     Ptr<LteAmc> amc);
    /// CQI of an uplink SINR as ns-3's schedulers map it (0: out of range).
    static int CqiOf(double sinrDb, Ptr<LteAmc> amc);

  protected:
    void DoInitialize() override;
    void DoDispose() override;

  private:
    class Provider;
    class User;

    FfMacScheduler& Inner();
    void UlCqiInfoReq(const FfMacSchedSapProvider::SchedUlCqiInfoReqParameters& params);
    void UlConfigInd(const FfMacSchedSapUser::SchedUlConfigIndParameters& params);

    std::string m_innerType;
    double m_maxSinrDb;
    Ptr<FfMacScheduler> m_inner;
    Ptr<LteAmc> m_amc;
    std::unique_ptr<Provider> m_provider;
    std::unique_ptr<User> m_user;
    FfMacSchedSapProvider* m_innerProvider;
    FfMacSchedSapUser* m_macUser;
    std::map<uint16_t, Allocation> m_allocation;
    /// The cut grant of each (rnti, first block, blocks, MCS) the inner scheduler sent, for
    /// its retransmissions.
    std::map<std::tuple<uint16_t, uint8_t, uint8_t, uint8_t>, UlDciListElement_s> m_cut;

    /// (rnti, resource blocks, SINR dB on them) at every sounding report.
    TracedCallback<uint16_t, uint16_t, double> m_allocationTrace;
};

} // namespace ns3

#endif
