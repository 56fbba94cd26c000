// The slot pattern of a TDD carrier: which slots carry the downlink, which the uplink, how a
// special slot splits its symbols, and so how much wall-clock time a given airtime takes in one
// direction.
#ifndef WDMOE_TDD_PATTERN_H
#define WDMOE_TDD_PATTERN_H

#include "ns3/nstime.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * A periodic TDD slot pattern (3GPP TS 38.213 clause 11.1: a pattern of downlink 'D', uplink 'U'
 * and special 'S' slots repeated every period). A slot lasts 1 ms / 2^mu (numerology mu) and
 * holds 14 OFDM symbols (normal cyclic prefix); a special slot carries its first dl symbols in
 * the downlink, then a guard of gap symbols, then its last ul symbols in the uplink. Within its
 * symbols a direction holds the whole band.
 *
 * A direction's transfer progresses only while that direction holds the air: OwnTime counts
 * that time between two instants, WallEnd inverts it. Times are periodic from t = 0.
 */
class TddPattern
{
  public:
    /// Symbols per slot (normal cyclic prefix).
    static constexpr uint32_t kSymbolsPerSlot = 14;

    /**
     * \param pattern the slots of one period, each 'D', 'U' or 'S' (1 to 320 of them)
     * \param numerology mu, 0 to 4 (slot 1 ms / 2^mu)
     * \param dlSymbols downlink symbols of a special slot
     * \param gapSymbols guard symbols of a special slot
     * \param ulSymbols uplink symbols of a special slot (dl + gap + ul = 14)
     * \throws std::invalid_argument (saying what was expected) for another letter, an empty or
     *         too long pattern, symbols that do not add up to 14, or a pattern in which a
     *         direction never holds the air
     */
    TddPattern(const std::string& pattern,
               uint32_t numerology,
               uint32_t dlSymbols,
               uint32_t gapSymbols,
               uint32_t ulSymbols);

    /// The pattern as given ("DDDSU").
    const std::string& Pattern() const { return m_pattern; }

    /// The slot length.
    Time Slot() const { return m_slot; }

    /// The share of time the direction holds the air (DDDSU with 10:2:2: DL 0.743, UL 0.229).
    double DutyCycle(bool uplink) const;

    /// The time in [from, to) during which the direction holds the air (0 when to <= from).
    Time OwnTime(Time from, Time to, bool uplink) const;

    /**
     * The first instant t >= from with OwnTime(from, t) = airtime: when a transfer that needs
     * `airtime` of the direction's air, starting at `from`, ends.
     */
    Time WallEnd(Time from, Time airtime, bool uplink) const;

  private:
    /// The direction's own time in [0, t) (seconds).
    double Cumulative(double t, int dir) const;

    std::string m_pattern;
    Time m_slot;
    double m_periodS;                                      ///< pattern length x slot (s)
    std::vector<std::pair<double, double>> m_intervals[2]; ///< own [begin, end) in a period (s)
    double m_ownPerPeriodS[2];                             ///< their total (s)
};

} // namespace ns3

#endif
