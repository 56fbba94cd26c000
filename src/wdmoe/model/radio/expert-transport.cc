#include "expert-transport.h"

namespace ns3
{

NS_OBJECT_ENSURE_REGISTERED(ExpertTransport);

TypeId
ExpertTransport::GetTypeId()
{
    static TypeId tid = TypeId("ns3::ExpertTransport").SetParent<Object>().SetGroupName("Wdmoe");
    return tid;
}

} // namespace ns3
