#include "expert-transport.h"

#include "ns3/trace-source-accessor.h"

namespace ns3
{

NS_OBJECT_ENSURE_REGISTERED(ExpertTransport);

TypeId
ExpertTransport::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::ExpertTransport")
            .SetParent<Object>()
            .SetGroupName("Wdmoe")
            .AddTraceSource("Airtime",
                            "A transfer left the air: device, direction (0 downlink, 1 uplink) "
                            "and the seconds the device's radio received or transmitted it",
                            MakeTraceSourceAccessor(&ExpertTransport::m_airtimeTrace),
                            "ns3::ExpertTransport::AirtimeTracedCallback");
    return tid;
}

void
ExpertTransport::NotifyAirtime(uint32_t device, Direction direction, double seconds)
{
    m_airtimeTrace(device, direction, seconds);
}

} // namespace ns3
