#include "link-to-system-mapping.h"

#include <cmath>
#include <gsl/gsl_sf_expint.h>
#include <limits>
#include <stdexcept>

namespace ns3
{

namespace
{

double
DbToLinear(double db)
{
    return std::pow(10.0, db / 10.0);
}

} // namespace

LinkToSystemMapping
LinkToSystemMapping::Shannon(double efficiency)
{
    LinkToSystemMapping m;
    m.m_model = LinkMappingModel::SHANNON;
    m.m_efficiency = efficiency;
    return m;
}

LinkToSystemMapping
LinkToSystemMapping::TruncatedShannon(double alpha, double minSinrDb, double maxEfficiency)
{
    if (!(alpha > 0) || !(maxEfficiency > 0) || !std::isfinite(minSinrDb))
    {
        throw std::invalid_argument("truncated Shannon mapping: alpha and the cap must be > 0 and "
                                    "the minimum SINR finite");
    }
    LinkToSystemMapping m;
    m.m_model = LinkMappingModel::TRUNCATED_SHANNON;
    m.m_efficiency = alpha;
    m.m_minSinr = DbToLinear(minSinrDb);
    m.m_maxEfficiency = maxEfficiency;
    return m;
}

LinkToSystemMapping
LinkToSystemMapping::CqiTable(std::vector<double> tableEfficiency,
                              std::vector<double> tableSinrDb,
                              double blerTarget)
{
    if (tableEfficiency.empty() || tableEfficiency.size() != tableSinrDb.size() ||
        !(blerTarget >= 0 && blerTarget < 1))
    {
        throw std::invalid_argument("CQI table mapping: one SINR threshold per entry and a BLER "
                                    "target in [0, 1)");
    }
    LinkToSystemMapping m;
    m.m_model = LinkMappingModel::CQI_TABLE;
    m.m_tableEfficiency = std::move(tableEfficiency);
    for (double db : tableSinrDb)
    {
        m.m_tableSinr.push_back(DbToLinear(db));
    }
    m.m_goodput = 1.0 - blerTarget;
    return m;
}

double
LinkToSystemMapping::MinSinrDb() const
{
    return 10 * std::log10(m_minSinr);
}

LinkToSystemMapping
LinkToSystemMapping::LteDownlink()
{
    return TruncatedShannon(0.6, -10.0, 4.4);
}

LinkToSystemMapping
LinkToSystemMapping::LteUplink()
{
    return TruncatedShannon(0.4, -10.0, 2.0);
}

LinkToSystemMapping
LinkToSystemMapping::NrDownlink()
{
    return TruncatedShannon(0.6, -10.0, 7.4063);
}

LinkToSystemMapping
LinkToSystemMapping::NrUplink()
{
    return TruncatedShannon(0.4, -10.0, 7.4063);
}

LinkToSystemMapping
LinkToSystemMapping::LteCqi(double blerTarget)
{
    return CqiTable(
        {0.1523,
         0.2344,
         0.3770,
         0.6016,
         0.8770,
         1.1758,
         1.4766,
         1.9141,
         2.4063,
         2.7305,
         3.3223,
         3.9023,
         4.5234,
         5.1152,
         5.5547},
        {-6.7, -4.7, -2.3, 0.2, 2.4, 4.3, 5.9, 8.1, 10.3, 11.7, 14.1, 16.3, 18.7, 21.0, 22.7},
        blerTarget);
}

double
LinkToSystemMapping::SpectralEfficiency(double sinr) const
{
    switch (m_model)
    {
    case LinkMappingModel::TRUNCATED_SHANNON:
        return sinr < m_minSinr ? 0.0
                                : std::min(m_maxEfficiency, m_efficiency * std::log2(1.0 + sinr));
    case LinkMappingModel::CQI_TABLE:
    {
        double efficiency = 0;
        for (std::size_t k = 0; k < m_tableSinr.size() && sinr >= m_tableSinr[k]; ++k)
        {
            efficiency = m_tableEfficiency[k];
        }
        return efficiency * m_goodput;
    }
    case LinkMappingModel::SHANNON:
    default:
        return m_efficiency * std::log2(1.0 + sinr);
    }
}

double
LinkToSystemMapping::Rate(double sinr, double bandwidthHz) const
{
    if (m_model == LinkMappingModel::SHANNON)
    {
        return m_efficiency * bandwidthHz * std::log2(1.0 + sinr);
    }
    return bandwidthHz * SpectralEfficiency(sinr);
}

double
LinkToSystemMapping::ExpectedRate(double rho, double bandwidthHz) const
{
    if (m_model == LinkMappingModel::SHANNON)
    {
        // E[log2(1 + rho h)] with h ~ Exp(1) is e^{1/rho} E1(1/rho) / ln 2 (the ergodic capacity
        // of a Rayleigh channel); GSL's scaled E1 carries the e^x factor without overflow.
        return m_efficiency * bandwidthHz * gsl_sf_expint_E1_scaled(1.0 / rho) / std::log(2.0);
    }
    if (m_model == LinkMappingModel::CQI_TABLE)
    {
        // P(threshold_k <= rho h < threshold_k+1) = e^{-t_k / rho} - e^{-t_k+1 / rho}.
        double mean = 0;
        for (std::size_t k = 0; k < m_tableSinr.size(); ++k)
        {
            const double above = std::exp(-m_tableSinr[k] / rho);
            const double next =
                k + 1 < m_tableSinr.size() ? std::exp(-m_tableSinr[k + 1] / rho) : 0;
            mean += m_tableEfficiency[k] * (above - next);
        }
        return bandwidthHz * m_goodput * mean;
    }
    // alpha/ln2 * int_a^b ln(1 + rho h) e^{-h} dh + Thr_max e^{-b}, a = SINR_min / rho and b the
    // fade at which the cap is reached; by parts, with e^{1/rho} E1(x + 1/rho) = e^{-x}
    // E1s(x + 1/rho), the cap's term cancels: alpha/ln2 (e^{-a} (ln(1 + SINR_min) + E1s(a +
    // 1/rho)) - e^{-b} E1s(b + 1/rho)).
    const double capSinr = std::exp2(m_maxEfficiency / m_efficiency) - 1.0;
    const double a = m_minSinr / rho;
    if (capSinr <= m_minSinr)
    {
        return bandwidthHz * m_maxEfficiency * std::exp(-a); // a step from 0 to the cap
    }
    const double b = capSinr / rho;
    const double lower =
        std::exp(-a) * (std::log1p(m_minSinr) + gsl_sf_expint_E1_scaled(a + 1.0 / rho));
    const double upper = std::exp(-b) * gsl_sf_expint_E1_scaled(b + 1.0 / rho);
    return bandwidthHz * m_efficiency / std::log(2.0) * (lower - upper);
}

double
LinkToSystemMapping::Threshold() const
{
    switch (m_model)
    {
    case LinkMappingModel::TRUNCATED_SHANNON:
        return m_minSinr;
    case LinkMappingModel::CQI_TABLE:
        return m_tableSinr.front();
    default:
        return 0;
    }
}

double
LinkToSystemMapping::ConcentratedRate(double sinr, double bandwidthHz, double minBandwidthHz) const
{
    const double t = Threshold();
    if (t <= 0 || sinr >= t)
    {
        return Rate(sinr, bandwidthHz);
    }
    const double used = bandwidthHz * sinr / t; // the power's SINR is t on this part
    if (!(used >= std::min(bandwidthHz, minBandwidthHz)))
    {
        return 0;
    }
    return Rate(t, used);
}

double
LinkToSystemMapping::ExpectedConcentratedRate(double rho,
                                              double bandwidthHz,
                                              double minBandwidthHz) const
{
    const double t = Threshold();
    const double mean = ExpectedRate(rho, bandwidthHz);
    if (t <= 0 || !(rho > 0))
    {
        return mean;
    }
    const double a = t / rho;
    const double h0 = a * std::min(1.0, minBandwidthHz / bandwidthHz);
    // int_{h0}^{a} h e^{-h} dh = e^{-h0} (1 + h0) - e^{-a} (1 + a).
    const double below = std::exp(-h0) * (1 + h0) - std::exp(-a) * (1 + a);
    return mean + Rate(t, bandwidthHz) / t * rho * below;
}

std::string
LinkToSystemMapping::Name() const
{
    switch (m_model)
    {
    case LinkMappingModel::TRUNCATED_SHANNON:
        return "truncated-shannon";
    case LinkMappingModel::CQI_TABLE:
        return "cqi-table";
    case LinkMappingModel::SHANNON:
    default:
        return "shannon";
    }
}

} // namespace ns3
