/*
 * Bandwidth pools of a wdmoe cell and the equal split of a pool among devices.
 */
#ifndef WDMOE_BANDWIDTH_SLICES_H
#define WDMOE_BANDWIDTH_SLICES_H

#include "tdd-pattern.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ns3
{

/**
 * \ingroup wdmoe
 * How the downlink and the uplink share the band.
 */
enum class DuplexMode
{
    SHARED, ///< one pool; a device's slice carries both directions (one after the other)
    FDD,    ///< separate downlink and uplink pools
    TDD     ///< one pool used by each direction in its own slots (WdmoeChannel::SetTddPattern)
};

/**
 * \param name "shared", "fdd" or "tdd"
 * \return the mode
 * \throws std::invalid_argument for any other name
 */
DuplexMode DuplexModeFromString(const std::string& name);

/**
 * \param mode a mode
 * \return "shared", "fdd" or "tdd"
 */
std::string ToString(DuplexMode mode);

/**
 * \ingroup wdmoe
 * The bandwidth pools (Hz) the allocator splits among devices.
 */
struct BandPlan
{
    DuplexMode mode; ///< how the pools are used
    double dlHz;     ///< downlink pool (SHARED, TDD: the one pool of both directions)
    double ulHz;     ///< uplink pool (SHARED, TDD: equal to dlHz, the same pool)
    std::optional<TddPattern> tdd{}; ///< TDD: when each direction holds the air

    /**
     * \param mode the duplex mode
     * \param totalHz the whole band (Hz, > 0)
     * \param ulShare FDD only: the uplink's share of totalHz, in (0, 1); ignored otherwise
     * \return SHARED, TDD: dlHz = ulHz = totalHz; FDD: ulHz = ulShare * totalHz,
     *         dlHz = totalHz - ulHz
     * \throws std::invalid_argument for a non-positive total, an FDD share outside (0, 1) or
     *         TDD (which needs its pattern: Tdd)
     */
    static BandPlan FromConfig(DuplexMode mode, double totalHz, double ulShare);

    /**
     * \param totalHz the whole band (Hz, > 0), used by each direction in its own slots
     * \param pattern the slot pattern
     * \return a TDD plan: dlHz = ulHz = totalHz
     */
    static BandPlan Tdd(double totalHz, const TddPattern& pattern);
};

/**
 * \param totalHz the pool (Hz, >= 0)
 * \param devices the number of devices
 * \return devices slices of totalHz / devices each (empty for 0 devices)
 * \throws std::invalid_argument for a negative or non-finite total
 */
std::vector<double> EqualBandwidthSlices(double totalHz, uint32_t devices);

} // namespace ns3

#endif // WDMOE_BANDWIDTH_SLICES_H
