#include "uplink-power-aware-scheduler.h"

#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/lte-amc.h"
#include "ns3/lte-common.h"
#include "ns3/lte-vendor-specific-parameters.h"
#include "ns3/object-factory.h"
#include "ns3/string.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("UplinkPowerAwareScheduler");
NS_OBJECT_ENSURE_REGISTERED(UplinkPowerAwareScheduler);

/// The MAC's calls into the scheduler: all to the inner one, the uplink CQIs through the owner.
class UplinkPowerAwareScheduler::Provider : public FfMacSchedSapProvider
{
  public:
    Provider(UplinkPowerAwareScheduler* owner, FfMacSchedSapProvider* inner)
        : m_owner(owner),
          m_inner(inner)
    {
    }

    void SchedDlRlcBufferReq(const SchedDlRlcBufferReqParameters& p) override
    {
        m_inner->SchedDlRlcBufferReq(p);
    }

    void SchedDlPagingBufferReq(const SchedDlPagingBufferReqParameters& p) override
    {
        m_inner->SchedDlPagingBufferReq(p);
    }

    void SchedDlMacBufferReq(const SchedDlMacBufferReqParameters& p) override
    {
        m_inner->SchedDlMacBufferReq(p);
    }

    void SchedDlTriggerReq(const SchedDlTriggerReqParameters& p) override
    {
        m_inner->SchedDlTriggerReq(p);
    }

    void SchedDlRachInfoReq(const SchedDlRachInfoReqParameters& p) override
    {
        m_inner->SchedDlRachInfoReq(p);
    }

    void SchedDlCqiInfoReq(const SchedDlCqiInfoReqParameters& p) override
    {
        m_inner->SchedDlCqiInfoReq(p);
    }

    void SchedUlTriggerReq(const SchedUlTriggerReqParameters& p) override
    {
        m_inner->SchedUlTriggerReq(p);
    }

    void SchedUlNoiseInterferenceReq(const SchedUlNoiseInterferenceReqParameters& p) override
    {
        m_inner->SchedUlNoiseInterferenceReq(p);
    }

    void SchedUlSrInfoReq(const SchedUlSrInfoReqParameters& p) override
    {
        m_inner->SchedUlSrInfoReq(p);
    }

    void SchedUlMacCtrlInfoReq(const SchedUlMacCtrlInfoReqParameters& p) override
    {
        m_inner->SchedUlMacCtrlInfoReq(p);
    }

    void SchedUlCqiInfoReq(const SchedUlCqiInfoReqParameters& p) override
    {
        m_owner->UlCqiInfoReq(p);
    }

  private:
    UplinkPowerAwareScheduler* m_owner;
    FfMacSchedSapProvider* m_inner;
};

/// The inner scheduler's answers to the MAC: the uplink grants through the owner.
class UplinkPowerAwareScheduler::User : public FfMacSchedSapUser
{
  public:
    explicit User(UplinkPowerAwareScheduler* owner)
        : m_owner(owner)
    {
    }

    void SchedDlConfigInd(const SchedDlConfigIndParameters& p) override
    {
        m_owner->m_macUser->SchedDlConfigInd(p);
    }

    void SchedUlConfigInd(const SchedUlConfigIndParameters& p) override { m_owner->UlConfigInd(p); }

  private:
    UplinkPowerAwareScheduler* m_owner;
};

TypeId
UplinkPowerAwareScheduler::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::UplinkPowerAwareScheduler")
            .SetParent<FfMacScheduler>()
            .SetGroupName("Wdmoe")
            .AddConstructor<UplinkPowerAwareScheduler>()
            .AddAttribute("Inner",
                          "TypeId name of the scheduler that does the scheduling (an "
                          "ns3::FfMacScheduler).",
                          StringValue("ns3::PfFfMacScheduler"),
                          MakeStringAccessor(&UplinkPowerAwareScheduler::m_innerType),
                          MakeStringChecker())
            .AddAttribute("MaxSinrDb",
                          "Uplink SINR per resource block a UE's power control aims at when not "
                          "power-limited (dB): P0 + alpha PL less the path loss and the noise "
                          "of a block, with alpha = 1.",
                          DoubleValue(std::numeric_limits<double>::infinity()),
                          MakeDoubleAccessor(&UplinkPowerAwareScheduler::m_maxSinrDb),
                          MakeDoubleChecker<double>())
            .AddTraceSource("Allocation",
                            "A sounding report sized a UE's uplink allocation (rnti, resource "
                            "blocks, SINR dB on them).",
                            MakeTraceSourceAccessor(&UplinkPowerAwareScheduler::m_allocationTrace),
                            "ns3::UplinkPowerAwareScheduler::AllocationTracedCallback");
    return tid;
}

UplinkPowerAwareScheduler::UplinkPowerAwareScheduler()
    : m_innerType("ns3::PfFfMacScheduler"),
      m_maxSinrDb(std::numeric_limits<double>::infinity()),
      m_amc(CreateObject<LteAmc>()),
      m_innerProvider(nullptr),
      m_macUser(nullptr)
{
}

UplinkPowerAwareScheduler::~UplinkPowerAwareScheduler() = default;

FfMacScheduler&
UplinkPowerAwareScheduler::Inner()
{
    if (!m_inner)
    {
        // Made on first use: the attributes are set after the constructor.
        ObjectFactory factory;
        factory.SetTypeId(m_innerType);
        m_inner = factory.Create<FfMacScheduler>();
        NS_ABORT_MSG_UNLESS(m_inner,
                            "UplinkPowerAwareScheduler: " << m_innerType
                                                          << " is no FfMacScheduler");
        m_innerProvider = m_inner->GetFfMacSchedSapProvider();
        m_provider = std::make_unique<Provider>(this, m_innerProvider);
        m_user = std::make_unique<User>(this);
        m_inner->SetFfMacSchedSapUser(m_user.get());
    }
    return *m_inner;
}

void
UplinkPowerAwareScheduler::SetFfMacCschedSapUser(FfMacCschedSapUser* s)
{
    Inner().SetFfMacCschedSapUser(s);
}

void
UplinkPowerAwareScheduler::SetFfMacSchedSapUser(FfMacSchedSapUser* s)
{
    Inner();
    m_macUser = s;
}

FfMacCschedSapProvider*
UplinkPowerAwareScheduler::GetFfMacCschedSapProvider()
{
    return Inner().GetFfMacCschedSapProvider();
}

FfMacSchedSapProvider*
UplinkPowerAwareScheduler::GetFfMacSchedSapProvider()
{
    Inner();
    return m_provider.get();
}

void
UplinkPowerAwareScheduler::SetLteFfrSapProvider(LteFfrSapProvider* s)
{
    Inner().SetLteFfrSapProvider(s);
}

LteFfrSapUser*
UplinkPowerAwareScheduler::GetLteFfrSapUser()
{
    return Inner().GetLteFfrSapUser();
}

void
UplinkPowerAwareScheduler::DoInitialize()
{
    Inner().Initialize();
    FfMacScheduler::DoInitialize();
}

void
UplinkPowerAwareScheduler::DoDispose()
{
    if (m_inner)
    {
        m_inner->Dispose();
    }
    m_inner = nullptr;
    m_amc = nullptr;
    m_allocation.clear();
    m_cut.clear();
    FfMacScheduler::DoDispose();
}

int
UplinkPowerAwareScheduler::CqiOf(double sinrDb, Ptr<LteAmc> amc)
{
    // PfFfMacScheduler::DoSchedUlTriggerReq's mapping (the same in all of ns-3's schedulers).
    const double gap = -std::log(5.0 * 0.00005) / 1.5;
    const double s = std::log2(1.0 + std::pow(10.0, sinrDb / 10.0) / gap);
    return amc->GetCqiFromSpectralEfficiency(s);
}

UplinkPowerAwareScheduler::Allocation
UplinkPowerAwareScheduler::BestAllocation(double srsSinrDb,
                                          uint16_t srsBlocks,
                                          double maxSinrDb,
                                          Ptr<LteAmc> amc)
{
    Allocation best;
    best.sinrDb = srsSinrDb;
    int bestBits = 0;
    for (uint16_t m = 3; m <= srsBlocks; ++m)
    {
        const double sinr =
            std::min(srsSinrDb + 10.0 * std::log10(double(srsBlocks) / m), maxSinrDb);
        const int cqi = CqiOf(sinr, amc);
        if (cqi == 0)
        {
            continue;
        }
        const int bits = amc->GetUlTbSizeFromMcs(amc->GetMcsFromCqi(cqi), m);
        if (bits > bestBits)
        {
            bestBits = bits;
            best = Allocation{m, sinr};
        }
    }
    return best;
}

bool
UplinkPowerAwareScheduler::GetAllocation(uint16_t rnti, Allocation& out) const
{
    const auto it = m_allocation.find(rnti);
    if (it == m_allocation.end())
    {
        return false;
    }
    out = it->second;
    return true;
}

void
UplinkPowerAwareScheduler::UlCqiInfoReq(
    const FfMacSchedSapProvider::SchedUlCqiInfoReqParameters& params)
{
    if (params.m_ulCqi.m_type != UlCqi_s::SRS || params.m_ulCqi.m_sinr.empty())
    {
        m_innerProvider->SchedUlCqiInfoReq(params);
        return;
    }
    uint16_t rnti = 0;
    for (const VendorSpecificListElement_s& v : params.m_vendorSpecificList)
    {
        if (v.m_type == SRS_CQI_RNTI_VSP)
        {
            rnti = DynamicCast<SrsCqiRntiVsp>(v.m_value)->GetRnti();
        }
    }
    double srsSinrDb = std::numeric_limits<double>::infinity();
    for (uint16_t fp : params.m_ulCqi.m_sinr)
    {
        srsSinrDb = std::min(srsSinrDb, LteFfConverter::fpS11dot3toDouble(fp));
    }
    const uint16_t blocks = uint16_t(params.m_ulCqi.m_sinr.size());
    const Allocation a = BestAllocation(srsSinrDb, blocks, m_maxSinrDb, m_amc);
    m_allocation[rnti] = a;
    m_allocationTrace(rnti, a.resourceBlocks, a.sinrDb);
    NS_LOG_LOGIC("RNTI " << rnti << ": sounding " << srsSinrDb << " dB on " << blocks
                         << " blocks, allocation " << a.resourceBlocks << " blocks at " << a.sinrDb
                         << " dB");
    const double gainDb = a.resourceBlocks > 0 ? a.sinrDb - srsSinrDb : 0.0;
    if (gainDb <= 0)
    {
        m_innerProvider->SchedUlCqiInfoReq(params);
        return;
    }
    FfMacSchedSapProvider::SchedUlCqiInfoReqParameters raised = params;
    for (uint16_t& fp : raised.m_ulCqi.m_sinr)
    {
        fp = LteFfConverter::double2fpS11dot3(LteFfConverter::fpS11dot3toDouble(fp) + gainDb);
    }
    m_innerProvider->SchedUlCqiInfoReq(raised);
}

void
UplinkPowerAwareScheduler::UlConfigInd(const FfMacSchedSapUser::SchedUlConfigIndParameters& params)
{
    FfMacSchedSapUser::SchedUlConfigIndParameters cut = params;
    for (UlDciListElement_s& dci : cut.m_dciList)
    {
        const auto key = std::make_tuple(dci.m_rnti, dci.m_rbStart, dci.m_rbLen, dci.m_mcs);
        if (dci.m_ndi == 0)
        {
            // A retransmission: the inner scheduler resends its own grant; send ours again.
            const auto it = m_cut.find(key);
            if (it != m_cut.end())
            {
                dci.m_rbLen = it->second.m_rbLen;
                dci.m_tbSize = it->second.m_tbSize;
            }
            continue;
        }
        const auto a = m_allocation.find(dci.m_rnti);
        if (a == m_allocation.end() || a->second.resourceBlocks == 0 ||
            dci.m_rbLen <= a->second.resourceBlocks)
        {
            m_cut.erase(key);
            continue;
        }
        dci.m_rbLen = uint8_t(a->second.resourceBlocks);
        dci.m_tbSize = uint16_t(m_amc->GetUlTbSizeFromMcs(dci.m_mcs, dci.m_rbLen) / 8);
        m_cut[key] = dci;
    }
    m_macUser->SchedUlConfigInd(cut);
}

} // namespace ns3
