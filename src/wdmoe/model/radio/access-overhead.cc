#include "access-overhead.h"

#include <cmath>

namespace ns3
{

bool
AccessOverhead::IsIdeal() const
{
    return slot.IsZero() && uplinkGrant.IsZero() && harqBler == 0 && packetBytes == 0;
}

double
AccessOverhead::OnAirBits(double payloadBits) const
{
    if (packetBytes == 0 || payloadBits <= 0)
    {
        return payloadBits;
    }
    const double packets = std::ceil(std::ceil(payloadBits / 8) / packetBytes);
    return payloadBits + packets * headerBytes * 8.0;
}

Time
AccessOverhead::Start(Time ready, bool uplink) const
{
    return SlotBoundary(uplink ? ready + uplinkGrant : ready);
}

Time
AccessOverhead::SlotBoundary(Time t) const
{
    if (!slot.IsStrictlyPositive())
    {
        return t;
    }
    const int64_t step = slot.GetTimeStep();
    return TimeStep((t.GetTimeStep() + step - 1) / step * step);
}

Time
AccessOverhead::WholeSlots(Time airtime) const
{
    if (!slot.IsStrictlyPositive())
    {
        return airtime;
    }
    const int64_t step = slot.GetTimeStep();
    return TimeStep((airtime.GetTimeStep() + step - 1) / step * step);
}

uint32_t
AccessOverhead::Retransmissions(double u) const
{
    // P(k >= n) = bler^n: k is the number of n >= 1 with bler^n >= u.
    uint32_t k = 0;
    for (double tail = harqBler; tail >= u && k < 1000; tail *= harqBler)
    {
        ++k;
    }
    return k;
}

double
AccessOverhead::ExpectedRetransmissions() const
{
    return harqBler / (1.0 - harqBler);
}

} // namespace ns3
