// Link-to-system mapping: how a link's SINR becomes the rate a slice carries. The ideal Shannon
// bound (today's default), the attenuated and truncated Shannon bound of 3GPP TR 36.942 Annex A,
// and a CQI table with the SINR each entry needs at a BLER target.
#ifndef WDMOE_LINK_TO_SYSTEM_MAPPING_H
#define WDMOE_LINK_TO_SYSTEM_MAPPING_H

#include <string>
#include <vector>

namespace ns3
{

/// The three kinds of mapping.
enum class LinkMappingModel
{
    SHANNON,           ///< eta log2(1 + SINR), uncapped
    TRUNCATED_SHANNON, ///< TR 36.942 A.2: 0 below SINR_min, alpha log2(1 + SINR), capped
    CQI_TABLE          ///< the highest CQI whose SINR threshold is met, times (1 - BLER)
};

/**
 * \ingroup wdmoe
 * A link-to-system mapping: spectral efficiency (bit/s/Hz) from a linear SINR, and its mean over
 * Rayleigh fading (closed forms: E1 integrals for the Shannon kinds, bin probabilities for the
 * table). A spectral efficiency of zero is outage: the slice carries nothing in that block.
 */
class LinkToSystemMapping
{
  public:
    /// eta B log2(1 + SINR): the ideal bound at efficiency eta (the default, eta = 1).
    static LinkToSystemMapping Shannon(double efficiency = 1.0);
    /// 0 for SINR < minSinrDb; alpha log2(1 + SINR), at most maxEfficiency, above.
    static LinkToSystemMapping TruncatedShannon(double alpha,
                                                double minSinrDb,
                                                double maxEfficiency);
    /// tableSinrDb[k] is the least SINR (dB) at which the entry of efficiency tableEfficiency[k]
    /// meets the BLER target (both ascending); below the first, outage. The goodput is the
    /// entry's efficiency times (1 - blerTarget), the share of transport blocks that get through
    /// first time (retransmissions of the rest take the same airtime again).
    static LinkToSystemMapping CqiTable(std::vector<double> tableEfficiency,
                                        std::vector<double> tableSinrDb,
                                        double blerTarget);

    /// TR 36.942 Table A.2 (E-UTRA baseline, one stream): downlink alpha 0.6, SINR_min -10 dB,
    /// Thr_max 4.4 bit/s/Hz; uplink alpha 0.4, SINR_min -10 dB, Thr_max 2.0 bit/s/Hz.
    static LinkToSystemMapping LteDownlink();
    static LinkToSystemMapping LteUplink();
    /// LTE's attenuation and threshold with NR's 256-QAM cap (TS 38.214 Table 5.2.2.1-3,
    /// CQI 15: 7.4063 bit/s/Hz), both directions.
    static LinkToSystemMapping NrDownlink();
    static LinkToSystemMapping NrUplink();
    /// TS 36.213 Table 7.2.3-1 (4-bit CQI, up to 64-QAM) with the AWGN SINR each CQI needs for
    /// 10 % BLER (-6.7 ... 22.7 dB, as in the Vienna LTE link-level simulator's mapping).
    static LinkToSystemMapping LteCqi(double blerTarget = 0.1);

    LinkMappingModel Model() const { return m_model; }

    /// A truncated Shannon mapping's alpha, SINR_min (dB) and cap (bit/s/Hz).
    double Alpha() const { return m_efficiency; }

    double MinSinrDb() const;

    double MaxEfficiency() const { return m_maxEfficiency; }

    /// Rate (bit/s) of a slice of bandwidthHz at a linear SINR. The Shannon kind computes
    /// eta * B * log2(1 + SINR) in that order (results pinned by the golden test).
    double Rate(double sinr, double bandwidthHz) const;

    /// The mean rate over Rayleigh fading, E[Rate(rho h, B)] with h ~ Exp(1), rho the mean SINR.
    double ExpectedRate(double rho, double bandwidthHz) const;

    /// The least SINR (linear) with a positive rate: SINR_min, the table's first threshold; 0
    /// for Shannon (every SINR carries data).
    double Threshold() const;

    /**
     * A power-limited sender (an uplink) below the threshold t concentrates its power on the
     * part b = B SINR / t of its slice where it reaches t, down to minBandwidthHz (one resource
     * block), below which it is in outage: Rate(t, b) = SINR Rate(t, B) / t; at or above t,
     * Rate(SINR, B).
     */
    double ConcentratedRate(double sinr, double bandwidthHz, double minBandwidthHz) const;

    /// E[ConcentratedRate(rho h, B, b_min)] over Rayleigh fading: ExpectedRate plus the
    /// concentrated part, Rate(t, B) rho / t (e^{-h0} (1 + h0) - e^{-a} (1 + a)) with a = t / rho
    /// and h0 = a b_min / B.
    double ExpectedConcentratedRate(double rho, double bandwidthHz, double minBandwidthHz) const;

    /// What the results and errors call it ("shannon", "truncated-shannon", "cqi-table").
    std::string Name() const;

  private:
    LinkToSystemMapping() = default;
    double SpectralEfficiency(double sinr) const;

    LinkMappingModel m_model = LinkMappingModel::SHANNON;
    double m_efficiency = 1.0; ///< eta (Shannon) or alpha (truncated)
    double m_minSinr = 0;      ///< linear
    double m_maxEfficiency = 0;
    std::vector<double> m_tableEfficiency;
    std::vector<double> m_tableSinr; ///< linear
    double m_goodput = 1;            ///< 1 - BLER target
};

} // namespace ns3

#endif
