#include "tdd-pattern.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ns3
{

namespace
{

/// Appends [begin, end) to a direction's intervals, merging it with the last one if they touch.
void
AddInterval(std::vector<std::pair<double, double>>& intervals, double begin, double end)
{
    if (end <= begin)
    {
        return;
    }
    if (!intervals.empty() && intervals.back().second == begin)
    {
        intervals.back().second = end;
        return;
    }
    intervals.emplace_back(begin, end);
}

} // namespace

TddPattern::TddPattern(const std::string& pattern,
                       uint32_t numerology,
                       uint32_t dlSymbols,
                       uint32_t gapSymbols,
                       uint32_t ulSymbols)
    : m_pattern(pattern)
{
    if (pattern.empty() || pattern.size() > 320)
    {
        throw std::invalid_argument("a pattern of 1 to 320 slots, each D, U or S");
    }
    if (numerology > 4)
    {
        throw std::invalid_argument("a numerology from 0 to 4");
    }
    if (dlSymbols + gapSymbols + ulSymbols != kSymbolsPerSlot)
    {
        throw std::invalid_argument("special-slot symbols (downlink, guard, uplink) adding up "
                                    "to 14");
    }
    m_slot = NanoSeconds(1000000 >> numerology);
    const double slotS = m_slot.GetSeconds();
    const double symbolS = slotS / kSymbolsPerSlot;
    for (std::size_t i = 0; i < pattern.size(); ++i)
    {
        const double begin = double(i) * slotS;
        const double end = double(i + 1) * slotS;
        switch (pattern[i])
        {
        case 'D':
            AddInterval(m_intervals[0], begin, end);
            break;
        case 'U':
            AddInterval(m_intervals[1], begin, end);
            break;
        case 'S':
            AddInterval(m_intervals[0], begin, begin + dlSymbols * symbolS);
            AddInterval(m_intervals[1], end - ulSymbols * symbolS, end);
            break;
        default:
            throw std::invalid_argument("a pattern of slots D, U or S (found '" +
                                        std::string(1, pattern[i]) + "')");
        }
    }
    m_periodS = double(pattern.size()) * slotS;
    for (int dir = 0; dir < 2; ++dir)
    {
        m_ownPerPeriodS[dir] = 0;
        for (const auto& [begin, end] : m_intervals[dir])
        {
            m_ownPerPeriodS[dir] += end - begin;
        }
        if (m_ownPerPeriodS[dir] <= 0)
        {
            throw std::invalid_argument(std::string("a pattern in which the ") +
                                        (dir == 0 ? "downlink" : "uplink") +
                                        " holds some symbols (a D or U slot, or an S slot "
                                        "with such symbols)");
        }
    }
}

double
TddPattern::DutyCycle(bool uplink) const
{
    return m_ownPerPeriodS[uplink ? 1 : 0] / m_periodS;
}

double
TddPattern::Cumulative(double t, int dir) const
{
    const double periods = std::floor(t / m_periodS);
    const double within = t - periods * m_periodS;
    double own = periods * m_ownPerPeriodS[dir];
    for (const auto& [begin, end] : m_intervals[dir])
    {
        own += std::clamp(within - begin, 0.0, end - begin);
    }
    return own;
}

Time
TddPattern::OwnTime(Time from, Time to, bool uplink) const
{
    if (to <= from)
    {
        return Time(0);
    }
    const int dir = uplink ? 1 : 0;
    return Seconds(Cumulative(to.GetSeconds(), dir) - Cumulative(from.GetSeconds(), dir));
}

Time
TddPattern::WallEnd(Time from, Time airtime, bool uplink) const
{
    if (!airtime.IsStrictlyPositive())
    {
        return from;
    }
    const int dir = uplink ? 1 : 0;
    const double target = Cumulative(from.GetSeconds(), dir) + airtime.GetSeconds();
    double periods = std::floor(target / m_ownPerPeriodS[dir]);
    double rest = target - periods * m_ownPerPeriodS[dir];
    if (rest <= 0 && periods > 0)
    {
        // Exactly a whole number of periods' own time: it ends with the last own interval of
        // the previous period, not at the next period's start.
        periods -= 1;
        rest = m_ownPerPeriodS[dir];
    }
    double t = periods * m_periodS + m_intervals[dir].back().second; // rounding fallback
    for (const auto& [begin, end] : m_intervals[dir])
    {
        if (rest <= end - begin)
        {
            t = periods * m_periodS + begin + rest;
            break;
        }
        rest -= end - begin;
    }
    return std::max(from, Seconds(t));
}

} // namespace ns3
