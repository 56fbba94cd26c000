#include "channel-path-gain-loss-model.h"

#include "wdmoe-channel.h"

#include "ns3/abort.h"
#include "ns3/log.h"

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("ChannelPathGainLossModel");
NS_OBJECT_ENSURE_REGISTERED(ChannelPathGainLossModel);

TypeId
ChannelPathGainLossModel::GetTypeId()
{
    static TypeId tid = TypeId("ns3::ChannelPathGainLossModel")
                            .SetParent<PropagationLossModel>()
                            .SetGroupName("Wdmoe")
                            .AddConstructor<ChannelPathGainLossModel>();
    return tid;
}

ChannelPathGainLossModel::ChannelPathGainLossModel() = default;
ChannelPathGainLossModel::~ChannelPathGainLossModel() = default;

void
ChannelPathGainLossModel::SetChannel(Ptr<WdmoeChannel> channel)
{
    m_channel = channel;
}

double
ChannelPathGainLossModel::DoCalcRxPower(double txPowerDbm,
                                        Ptr<MobilityModel> a,
                                        Ptr<MobilityModel> b) const
{
    NS_ABORT_MSG_UNLESS(m_channel,
                        "ChannelPathGainLossModel: no channel set before the simulation ran");
    uint32_t dev = 0;
    if (m_channel->IsBs(a) && m_channel->FindDevice(b, dev))
    {
        return txPowerDbm + m_channel->PathGainDb(dev);
    }
    if (m_channel->IsBs(b) && m_channel->FindDevice(a, dev))
    {
        return txPowerDbm + m_channel->PathGainDb(dev);
    }
    return m_channel->GetLossModel()->CalcRxPower(txPowerDbm, a, b);
}

int64_t
ChannelPathGainLossModel::DoAssignStreams(int64_t /* stream */)
{
    return 0;
}

void
ChannelPathGainLossModel::DoDispose()
{
    m_channel = nullptr;
    PropagationLossModel::DoDispose();
}

} // namespace ns3
