// ns-3's LTE channels priced by the abstract link's path gain: the LTE transport and the link
// see one loss object, with one draw of the 3GPP LOS state and shadowing per device.
#ifndef WDMOE_CHANNEL_PATH_GAIN_LOSS_MODEL_H
#define WDMOE_CHANNEL_PATH_GAIN_LOSS_MODEL_H

#include "ns3/propagation-loss-model.h"
#include "ns3/ptr.h"

namespace ns3
{

class WdmoeChannel;

/**
 * \ingroup wdmoe
 * A PropagationLossModel whose loss between the BS and a device is the WdmoeChannel's
 * PathGainDb: its loss model (3GPP UMa with its channel condition and shadowing, or the
 * log-distance model) plus the channel's own static shadowing where that applies; fast fading
 * excluded (ns-3's LTE adds its own or none). Set as LteHelper's path-loss model type, then
 * given the channel (SetChannel) before the simulation runs. A pair that is not the BS and a
 * device of that channel (UE to UE, which the LTE spectrum channels may also evaluate) gets
 * the channel's loss model directly.
 */
class ChannelPathGainLossModel : public PropagationLossModel
{
  public:
    static TypeId GetTypeId();
    ChannelPathGainLossModel();
    ~ChannelPathGainLossModel() override;

    /// The channel whose path gains this model returns.
    void SetChannel(Ptr<WdmoeChannel> channel);

  private:
    double DoCalcRxPower(double txPowerDbm,
                         Ptr<MobilityModel> a,
                         Ptr<MobilityModel> b) const override;
    /// No draws of its own: the channel's loss model has its streams from the channel.
    int64_t DoAssignStreams(int64_t stream) override;
    void DoDispose() override;

    Ptr<WdmoeChannel> m_channel;
};

} // namespace ns3

#endif
