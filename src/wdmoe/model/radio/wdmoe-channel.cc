#include "wdmoe-channel.h"

#include "ns3/abort.h"
#include "ns3/boolean.h"
#include "ns3/channel-condition-model.h"
#include "ns3/double.h"
#include "ns3/log.h"
#include "ns3/node.h"
#include "ns3/pointer.h"
#include "ns3/simulator.h"
#include "ns3/three-gpp-propagation-loss-model.h"
#include "ns3/trace-source-accessor.h"

#include <cmath>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sf_expint.h>
#include <limits>
#include <sstream>

namespace ns3
{

NS_LOG_COMPONENT_DEFINE("WdmoeChannel");

NS_OBJECT_ENSURE_REGISTERED(WdmoeChannel);

namespace
{

double
DbToLinear(double db)
{
    return std::pow(10.0, db / 10.0);
}

/// A predicted duration; one that never ends (a zero rate) is kUnreachableSeconds.
Time
Capped(double seconds)
{
    return seconds < WdmoeChannel::kUnreachableSeconds ? Seconds(seconds)
                                                       : Seconds(WdmoeChannel::kUnreachableSeconds);
}

const char*
DirectionName(WdmoeChannel::Direction dir)
{
    return dir == WdmoeChannel::DOWNLINK ? "DL" : "UL";
}

} // namespace

TypeId
WdmoeChannel::GetTypeId()
{
    static TypeId tid =
        TypeId("ns3::WdmoeChannel")
            .SetParent<Object>()
            .SetGroupName("Wdmoe")
            .AddConstructor<WdmoeChannel>()
            .AddAttribute("PropagationLossModel",
                          "The path loss model between the BS and the devices (no default: see "
                          "WdmoeChannel::CreateThreeGppUma and CreateLogDistance128).",
                          PointerValue(),
                          MakePointerAccessor(&WdmoeChannel::m_lossModel),
                          MakePointerChecker<PropagationLossModel>())
            .AddAttribute("ShadowingSigmaDb",
                          "Standard deviation (dB) of the static per-device log-normal shadowing, "
                          "applied only when the loss model has no shadowing of its own.",
                          DoubleValue(8.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_shadowingSigmaDb),
                          MakeDoubleChecker<double>(0.0))
            .AddAttribute("CoherenceTime",
                          "Length of a Rayleigh block-fading block (s); |h|^2 ~ Exp(1) is redrawn "
                          "every block.",
                          TimeValue(MilliSeconds(10)),
                          MakeTimeAccessor(&WdmoeChannel::m_coherenceTime),
                          MakeTimeChecker(TimeStep(1)))
            .AddAttribute("FadingEnabled",
                          "Whether Rayleigh block fading applies (|h|^2 = 1 otherwise).",
                          BooleanValue(true),
                          MakeBooleanAccessor(&WdmoeChannel::m_fadingEnabled),
                          MakeBooleanChecker())
            .AddAttribute("BsTxPowerDbm",
                          "BS transmit power over the whole TotalBandwidth (dBm).",
                          DoubleValue(43.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_bsTxPowerDbm),
                          MakeDoubleChecker<double>())
            .AddAttribute("DeviceTxPowerDbm",
                          "Device transmit power (dBm), whatever its bandwidth slice.",
                          DoubleValue(23.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_deviceTxPowerDbm),
                          MakeDoubleChecker<double>())
            .AddAttribute("NoisePsdDbmPerHz",
                          "Thermal noise power spectral density (dBm/Hz).",
                          DoubleValue(-174.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_noisePsdDbmPerHz),
                          MakeDoubleChecker<double>())
            .AddAttribute("BsNoiseFigureDb",
                          "Noise figure of the BS receiver, i.e. of the uplink (dB).",
                          DoubleValue(5.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_bsNoiseFigureDb),
                          MakeDoubleChecker<double>())
            .AddAttribute("DeviceNoiseFigureDb",
                          "Noise figure of the device receivers, i.e. of the downlink (dB).",
                          DoubleValue(7.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_deviceNoiseFigureDb),
                          MakeDoubleChecker<double>())
            .AddAttribute("Efficiency",
                          "eta in rate = eta * B * log2(1 + SNR) (dimensionless; 1 = Shannon).",
                          DoubleValue(1.0),
                          MakeDoubleAccessor(&WdmoeChannel::m_efficiency),
                          MakeDoubleChecker<double>(0.0))
            .AddAttribute("TotalBandwidth",
                          "The band (Hz) the BS spreads BsTxPowerDbm over at constant PSD: a "
                          "downlink slice B_i gets P_BS * B_i / TotalBandwidth (in FDD: the "
                          "downlink pool).",
                          DoubleValue(20e6),
                          MakeDoubleAccessor(&WdmoeChannel::m_totalBandwidthHz),
                          MakeDoubleChecker<double>(std::numeric_limits<double>::min()));
    static TypeId withFading = AddFadingAttributes(tid);
    return withFading;
}

TypeId
WdmoeChannel::AddFadingAttributes(TypeId tid)
{
    return tid
        .AddAttribute("CsiDelay",
                      "Age of the BS's channel knowledge: its predictions (KnownRate, "
                      "PredictTransferTime) use the fading of the block holding now - "
                      "CsiDelay; transfers use the true blocks. 0: the current block.",
                      TimeValue(Seconds(0)),
                      MakeTimeAccessor(&WdmoeChannel::m_csiDelay),
                      MakeTimeChecker(Seconds(0)))
        .AddAttribute("CoherenceBandwidth",
                      "Width (Hz) of a subband with its own fading; a slice is spread "
                      "uniformly over round(pool / CoherenceBandwidth) equal subbands. 0: "
                      "flat fading over the whole slice.",
                      DoubleValue(0.0),
                      MakeDoubleAccessor(&WdmoeChannel::m_coherenceBandwidthHz),
                      MakeDoubleChecker<double>(0.0))
        .AddAttribute("UplinkBandwidth",
                      "The uplink pool (Hz) the subbands of the uplink divide (0: "
                      "TotalBandwidth, as with the shared duplex).",
                      DoubleValue(0.0),
                      MakeDoubleAccessor(&WdmoeChannel::m_uplinkBandwidthHz),
                      MakeDoubleChecker<double>(0.0))
        .AddAttribute("DopplerCorrelation",
                      "Whether successive blocks follow an AR(1) process on the complex gain "
                      "with coefficient J0(2 pi f_D CoherenceTime) (else independent).",
                      BooleanValue(false),
                      MakeBooleanAccessor(&WdmoeChannel::m_doppler),
                      MakeBooleanChecker())
        .AddAttribute("CarrierFrequency",
                      "Carrier (Hz) of the Doppler shift f_D = v f_c / c.",
                      DoubleValue(3.5e9),
                      MakeDoubleAccessor(&WdmoeChannel::m_carrierHz),
                      MakeDoubleChecker<double>(0.0))
        .AddAttribute("MinDopplerHz",
                      "Floor of f_D (Hz): the Doppler of moving scatterers seen by a static "
                      "device.",
                      DoubleValue(0.0),
                      MakeDoubleAccessor(&WdmoeChannel::m_minDopplerHz),
                      MakeDoubleChecker<double>(0.0))
        .AddTraceSource("FadingDraw",
                        "A Rayleigh fading block was drawn: device index, direction, block "
                        "index, linear gain |h|^2.",
                        MakeTraceSourceAccessor(&WdmoeChannel::m_fadingDrawTrace),
                        "ns3::WdmoeChannel::FadingDrawTracedCallback");
}

WdmoeChannel::WdmoeChannel()
    : m_shadowingSigmaDb(8.0),
      m_coherenceTime(MilliSeconds(10)),
      m_fadingEnabled(true),
      m_csiDelay(Seconds(0)),
      m_bsTxPowerDbm(43.0),
      m_deviceTxPowerDbm(23.0),
      m_noisePsdDbmPerHz(-174.0),
      m_bsNoiseFigureDb(5.0),
      m_deviceNoiseFigureDb(7.0),
      m_efficiency(1.0),
      m_totalBandwidthHz(20e6)
{
    NS_LOG_FUNCTION(this);
}

WdmoeChannel::~WdmoeChannel()
{
    NS_LOG_FUNCTION(this);
}

void
WdmoeChannel::DoDispose()
{
    NS_LOG_FUNCTION(this);
    m_lossModel = nullptr;
    m_bs = nullptr;
    m_links.clear();
    m_deviceOfMobility.clear();
    Object::DoDispose();
}

Ptr<PropagationLossModel>
WdmoeChannel::CreateThreeGppUma(double carrierHz)
{
    NS_LOG_FUNCTION(carrierHz);
    NS_ABORT_MSG_IF(!(carrierHz >= 0.5e9 && carrierHz <= 100e9),
                    "WdmoeChannel::CreateThreeGppUma: carrier " << carrierHz
                                                                << " Hz outside 0.5-100 GHz");
    Ptr<ThreeGppUmaPropagationLossModel> model = CreateObject<ThreeGppUmaPropagationLossModel>();
    model->SetAttribute("Frequency", DoubleValue(carrierHz));
    model->SetChannelConditionModel(CreateObject<ThreeGppUmaChannelConditionModel>());
    return model;
}

Ptr<PropagationLossModel>
WdmoeChannel::CreateLogDistance128(double minDistanceM)
{
    NS_LOG_FUNCTION(minDistanceM);
    NS_ABORT_MSG_IF(!(minDistanceM > 0.0),
                    "WdmoeChannel::CreateLogDistance128: minimum distance must be > 0 m");
    // 128.1 + 37.6 log10(d / 1000) = L0 + 10 n log10(d / d0) with n = 3.76, d0 = minDistanceM
    // and L0 = 128.1 + 37.6 log10(d0 / 1000). ns-3 returns txPower - L0 for d <= d0.
    Ptr<LogDistancePropagationLossModel> model = CreateObject<LogDistancePropagationLossModel>();
    model->SetAttribute("Exponent", DoubleValue(3.76));
    model->SetAttribute("ReferenceDistance", DoubleValue(minDistanceM));
    model->SetAttribute("ReferenceLoss",
                        DoubleValue(128.1 + 37.6 * std::log10(minDistanceM / 1000.0)));
    return model;
}

void
WdmoeChannel::SetBs(Ptr<MobilityModel> bs)
{
    NS_LOG_FUNCTION(this << bs);
    NS_ABORT_MSG_IF(!bs, "WdmoeChannel::SetBs: null mobility model");
    m_bs = bs;
}

uint32_t
WdmoeChannel::AddDevice(Ptr<MobilityModel> device)
{
    NS_LOG_FUNCTION(this << device);
    NS_ABORT_MSG_IF(!device, "WdmoeChannel::AddDevice: null mobility model");
    DeviceLink link;
    link.mobility = device;
    for (auto& rv : link.fading)
    {
        rv = CreateObject<ExponentialRandomVariable>();
        rv->SetAttribute("Mean", DoubleValue(1.0)); // Bound 0 (default): no truncation
    }
    link.shadowing = CreateObject<NormalRandomVariable>();
    link.shadowing->SetAttribute("Mean", DoubleValue(0.0));
    link.shadowing->SetAttribute("Variance", DoubleValue(1.0));
    m_links.push_back(link);
    m_deviceOfMobility[PeekPointer(device)] = static_cast<uint32_t>(m_links.size() - 1);
    return static_cast<uint32_t>(m_links.size() - 1);
}

bool
WdmoeChannel::IsBs(Ptr<MobilityModel> mobility) const
{
    return m_bs && mobility == m_bs;
}

bool
WdmoeChannel::FindDevice(Ptr<MobilityModel> mobility, uint32_t& dev) const
{
    const auto it = m_deviceOfMobility.find(PeekPointer(mobility));
    if (it == m_deviceOfMobility.end())
    {
        return false;
    }
    dev = it->second;
    return true;
}

void
WdmoeChannel::SetDeviceTxPowerDbm(uint32_t dev, double dbm)
{
    NS_LOG_FUNCTION(this << dev << dbm);
    NS_ABORT_MSG_UNLESS(std::isfinite(dbm), "WdmoeChannel::SetDeviceTxPowerDbm: not finite");
    DeviceLink& link = GetLink(dev);
    link.ownTxPower = true;
    link.txPowerDbm = dbm;
}

double
WdmoeChannel::GetDeviceTxPowerDbm(uint32_t dev) const
{
    NS_ABORT_MSG_UNLESS(dev < m_links.size(),
                        "WdmoeChannel::GetDeviceTxPowerDbm: device " << dev << " out of range");
    const DeviceLink& link = m_links[dev];
    return link.ownTxPower ? link.txPowerDbm : m_deviceTxPowerDbm;
}

double
WdmoeChannel::GetDeviceTxPowerW(uint32_t dev) const
{
    return DbToLinear(GetDeviceTxPowerDbm(dev) - 30.0);
}

uint32_t
WdmoeChannel::GetNDevices() const
{
    return static_cast<uint32_t>(m_links.size());
}

Ptr<PropagationLossModel>
WdmoeChannel::GetLossModel() const
{
    NS_ABORT_MSG_IF(!m_lossModel,
                    "WdmoeChannel: no PropagationLossModel set (use "
                    "WdmoeChannel::CreateThreeGppUma(carrierHz) or CreateLogDistance128())");
    return m_lossModel;
}

WdmoeChannel::DeviceLink&
WdmoeChannel::GetLink(uint32_t dev)
{
    NS_ABORT_MSG_IF(dev >= m_links.size(),
                    "WdmoeChannel: device " << dev << " unknown (" << m_links.size()
                                            << " registered)");
    return m_links[dev];
}

void
WdmoeChannel::CheckBandwidth(double bandwidthHz) const
{
    NS_ABORT_MSG_IF(!(bandwidthHz >= 0.0) || !std::isfinite(bandwidthHz),
                    "WdmoeChannel: invalid bandwidth " << bandwidthHz << " Hz");
}

bool
WdmoeChannel::LossModelHasShadowing() const
{
    // Asked on every rate query; the attribute lookup by name is cached per model object (its
    // ShadowingEnabled is set when the model is made, before it is given to the channel).
    Ptr<PropagationLossModel> model = GetLossModel();
    if (model != m_shadowingCheckedModel)
    {
        m_modelHasShadowing = false;
        for (Ptr<PropagationLossModel> m = model; m; m = m->GetNext())
        {
            BooleanValue enabled;
            if (m->GetAttributeFailSafe("ShadowingEnabled", enabled) && enabled.Get())
            {
                m_modelHasShadowing = true;
            }
        }
        m_shadowingCheckedModel = model;
    }
    return m_modelHasShadowing;
}

double
WdmoeChannel::ShadowingDb(uint32_t dev)
{
    DeviceLink& link = GetLink(dev);
    if (LossModelHasShadowing())
    {
        return 0.0;
    }
    if (!link.shadowingDrawn)
    {
        link.shadowingZ = link.shadowing->GetValue();
        link.shadowingDrawn = true;
    }
    return m_shadowingSigmaDb * link.shadowingZ;
}

double
WdmoeChannel::PathGainDb(uint32_t dev)
{
    DeviceLink& link = GetLink(dev);
    Ptr<PropagationLossModel> model = GetLossModel();
    NS_ABORT_MSG_IF(!m_bs, "WdmoeChannel: SetBs was not called");
    const Vector bsPosition = m_bs->GetPosition();
    const Vector devicePosition = link.mobility->GetPosition();
    // The loss of a link whose ends have not moved is the one computed last time: the
    // simulator asks for every transfer, and the 3GPP models are costly to evaluate.
    if (link.cachedModel != model || !(link.cachedBs == bsPosition) ||
        !(link.cachedDevice == devicePosition))
    {
        for (Ptr<PropagationLossModel> m = model; m; m = m->GetNext())
        {
            if (DynamicCast<ThreeGppPropagationLossModel>(m))
            {
                NS_ABORT_MSG_IF(!m_bs->GetObject<Node>() || !link.mobility->GetObject<Node>(),
                                "WdmoeChannel: the 3GPP loss models need the BS and device "
                                "mobility models aggregated to Nodes");
                break;
            }
        }
        if (link.primedModel != model)
        {
            // ns-3 3.37's 3GPP models store the displacement (0,0,0) with a link's first
            // shadowing value, so their second evaluation sees the whole BS-device vector as a
            // move and redraws the shadowing; evaluate once and discard so every query returns
            // the stable one.
            model->CalcRxPower(0.0, m_bs, link.mobility);
            link.primedModel = model;
        }
        link.cachedLossDb = model->CalcRxPower(0.0, m_bs, link.mobility);
        link.cachedModel = model;
        link.cachedBs = bsPosition;
        link.cachedDevice = devicePosition;
    }
    const double lossGainDb = link.cachedLossDb;
    const double shadowDb = ShadowingDb(dev);
    NS_LOG_LOGIC("device " << dev << " distance " << m_bs->GetDistanceFrom(link.mobility)
                           << " m: loss model gain " << lossGainDb << " dB, shadowing " << shadowDb
                           << " dB");
    return lossGainDb + shadowDb;
}

const std::string&
WdmoeChannel::HistoryError() const
{
    return m_historyError;
}

double
WdmoeChannel::FadingGain(uint32_t dev, Direction dir, Time now)
{
    return SubbandFadingGain(dev, dir, 0, now);
}

uint32_t
WdmoeChannel::NSubbands(Direction dir) const
{
    if (m_coherenceBandwidthHz <= 0.0)
    {
        return 1;
    }
    // TDD: both directions use the whole band, in turns.
    const double pool = dir == UPLINK && m_uplinkBandwidthHz > 0.0 && !m_tdd ? m_uplinkBandwidthHz
                                                                             : m_totalBandwidthHz;
    return static_cast<uint32_t>(std::max(1.0, std::round(pool / m_coherenceBandwidthHz)));
}

double
WdmoeChannel::SubbandFadingGain(uint32_t dev, Direction dir, uint32_t subband, Time now)
{
    DeviceLink& link = GetLink(dev);
    if (!m_fadingEnabled)
    {
        return 1.0;
    }
    NS_ABORT_MSG_IF(now.IsStrictlyNegative(), "WdmoeChannel::FadingGain: negative time");
    if (m_tdd)
    {
        dir = DOWNLINK; // reciprocity: one channel, used by each direction in its slots
    }
    const uint32_t nSubbands = NSubbands(dir);
    NS_ABORT_MSG_IF(subband >= nSubbands,
                    "WdmoeChannel: subband " << subband << " of " << nSubbands);
    const uint64_t block = static_cast<uint64_t>(now.GetTimeStep()) /
                           static_cast<uint64_t>(m_coherenceTime.GetTimeStep());
    if (block >= kMaxFadingBlocksPerLink / nSubbands)
    {
        std::ostringstream why;
        why << "at " << now.GetSeconds() << " s of simulated time a link is in fading block "
            << block << " of CoherenceTime " << m_coherenceTime.GetSeconds() << " s, past the "
            << kMaxFadingBlocksPerLink / nSubbands << " blocks "
            << (nSubbands > 1 ? "(of " + std::to_string(nSubbands) + " subbands) " : "")
            << "a link keeps: use a longer CoherenceTime (or a shorter run)";
        if (m_historyError.empty())
        {
            m_historyError = why.str();
            Simulator::Stop(); // after this event: the rest of the run would be void
        }
        return 1.0;
    }
    const std::vector<double>& blocks = link.fadingBlocks[dir == DOWNLINK ? 0 : 1];
    while (blocks.size() <= block * nSubbands + subband)
    {
        DrawBlock(dev, dir);
    }
    return blocks[block * nSubbands + subband];
}

void
WdmoeChannel::MakeGaussians(DeviceLink& link)
{
    for (auto& rv : link.gauss)
    {
        if (!rv)
        {
            rv = CreateObject<NormalRandomVariable>();
            rv->SetAttribute("Mean", DoubleValue(0.0));
            rv->SetAttribute("Variance", DoubleValue(0.5)); // each part of CN(0,1)
        }
    }
}

double
WdmoeChannel::DopplerCoefficient(uint32_t dev)
{
    const Vector v = GetLink(dev).mobility->GetVelocity();
    const double speed = std::sqrt(v.x * v.x + v.y * v.y + v.z * v.z);
    const double dopplerHz = std::max(speed * m_carrierHz / 299792458.0, m_minDopplerHz);
    return gsl_sf_bessel_J0(2.0 * M_PI * dopplerHz * m_coherenceTime.GetSeconds());
}

void
WdmoeChannel::DrawBlock(uint32_t dev, Direction dir)
{
    DeviceLink& link = GetLink(dev);
    const int d = dir == DOWNLINK ? 0 : 1;
    const uint32_t nSubbands = NSubbands(dir);
    std::vector<double>& blocks = link.fadingBlocks[d];
    const uint64_t b = blocks.size() / nSubbands;
    const double r = m_doppler ? DopplerCoefficient(dev) : 0.0;
    if (m_doppler)
    {
        MakeGaussians(link);
        link.h[d].resize(nSubbands);
    }
    for (uint32_t k = 0; k < nSubbands; ++k)
    {
        double gain;
        if (m_doppler)
        {
            const double re = link.gauss[d]->GetValue();
            const std::complex<double> w(re, link.gauss[d]->GetValue());
            link.h[d][k] = b == 0 ? w : r * link.h[d][k] + std::sqrt(1.0 - r * r) * w;
            gain = std::norm(link.h[d][k]);
        }
        else
        {
            gain = link.fading[d]->GetValue();
        }
        blocks.push_back(gain);
        NS_LOG_LOGIC("device " << dev << " " << DirectionName(dir) << " fading block " << b
                               << " subband " << k << ": |h|^2 = " << gain);
        if (k == 0)
        {
            m_fadingDrawTrace(dev, dir, b, gain);
        }
    }
}

double
WdmoeChannel::DownlinkSnr(uint32_t dev, double bandwidthHz, Time now)
{
    CheckBandwidth(bandwidthHz);
    NS_ABORT_MSG_IF(bandwidthHz > m_totalBandwidthHz * (1.0 + 1e-9),
                    "WdmoeChannel::DownlinkSnr: slice "
                        << bandwidthHz << " Hz exceeds TotalBandwidth " << m_totalBandwidthHz
                        << " Hz");
    const double fading = FadingGain(dev, DOWNLINK, now);
    const double snr = LargeScaleSnr(dev, DOWNLINK, bandwidthHz) * fading;
    NS_LOG_LOGIC("DL device " << dev << " t=" << now.As(Time::MS) << ": |h|^2 " << fading
                              << ", SNR " << 10.0 * std::log10(snr) << " dB");
    return snr;
}

double
WdmoeChannel::UplinkSnr(uint32_t dev, double bandwidthHz, Time now)
{
    CheckBandwidth(bandwidthHz);
    const double fading = FadingGain(dev, UPLINK, now);
    if (bandwidthHz == 0.0)
    {
        return std::numeric_limits<double>::infinity();
    }
    const double snr = LargeScaleSnr(dev, UPLINK, bandwidthHz) * fading;
    NS_LOG_LOGIC("UL device " << dev << " t=" << now.As(Time::MS) << ": |h|^2 " << fading << " in "
                              << bandwidthHz << " Hz, SNR " << 10.0 * std::log10(snr) << " dB");
    return snr;
}

double
WdmoeChannel::LargeScaleSnr(uint32_t dev, Direction dir, double bandwidthHz)
{
    const double gainDb = PathGainDb(dev);
    if (dir == DOWNLINK)
    {
        // P_i = P_BS B_i / B_total and N = N0 NF B_i: B_i cancels.
        const double rxPsdDb = m_bsTxPowerDbm - 10.0 * std::log10(m_totalBandwidthHz) + gainDb;
        return DbToLinear(rxPsdDb - (m_noisePsdDbmPerHz + m_deviceNoiseFigureDb));
    }
    const double noiseDbm = m_noisePsdDbmPerHz + m_bsNoiseFigureDb + 10.0 * std::log10(bandwidthHz);
    return DbToLinear(GetDeviceTxPowerDbm(dev) + gainDb - noiseDbm);
}

void
WdmoeChannel::SetLinkMapping(Direction dir, const LinkToSystemMapping& mapping)
{
    m_mapping[dir] = mapping;
    for (DeviceLink& link : m_links)
    {
        link.rateMemo[dir].fill(SliceRateMemo{}); // rates of the old mapping
    }
}

double
WdmoeChannel::RateOf(Direction dir, double snr, double bandwidthHz) const
{
    if (bandwidthHz == 0.0)
    {
        return 0.0;
    }
    return m_mapping[dir] ? m_mapping[dir]->Rate(snr, bandwidthHz)
                          : m_efficiency * bandwidthHz * std::log2(1.0 + snr);
}

double
WdmoeChannel::SliceRate(uint32_t dev, Direction dir, double bandwidthHz, Time t)
{
    const uint32_t nSubbands = m_fadingEnabled ? NSubbands(dir) : 1;
    if (nSubbands > 1)
    {
        return SubbandSliceRate(dev, dir, bandwidthHz, t, nSubbands);
    }
    if (ConcentratesPower(dir))
    {
        CheckBandwidth(bandwidthHz);
        return bandwidthHz == 0.0
                   ? 0.0
                   : m_mapping[UPLINK]->ConcentratedRate(UplinkSnr(dev, bandwidthHz, t),
                                                         bandwidthHz,
                                                         kMinUplinkBandwidthHz);
    }
    const double snr =
        dir == DOWNLINK ? DownlinkSnr(dev, bandwidthHz, t) : UplinkSnr(dev, bandwidthHz, t);
    return RateOf(dir, snr, bandwidthHz);
}

double
WdmoeChannel::SubbandSliceRate(uint32_t dev,
                               Direction dir,
                               double bandwidthHz,
                               Time t,
                               uint32_t nSubbands)
{
    CheckBandwidth(bandwidthHz);
    NS_ABORT_MSG_IF(dir == DOWNLINK && bandwidthHz > m_totalBandwidthHz * (1.0 + 1e-9),
                    "WdmoeChannel::DownlinkRate: slice "
                        << bandwidthHz << " Hz exceeds TotalBandwidth " << m_totalBandwidthHz
                        << " Hz");
    if (bandwidthHz == 0.0)
    {
        return 0.0;
    }
    const double rho = LargeScaleSnr(dev, dir, bandwidthHz);
    const uint64_t block = static_cast<uint64_t>(t.GetTimeStep()) /
                           static_cast<uint64_t>(m_coherenceTime.GetTimeStep());
    SliceRateMemo& memo =
        GetLink(dev).rateMemo[dir][(block ^ std::hash<double>{}(bandwidthHz)) % kSliceRateMemoSize];
    if (memo.bandwidthHz == bandwidthHz && memo.block == block && memo.largeScaleSnr == rho)
    {
        return memo.rate;
    }
    const double rate = ConcentratesPower(dir)
                            ? PowerLimitedUplinkRate(dev, rho, bandwidthHz, t, nSubbands)
                            : SpreadRate(dev, dir, rho, bandwidthHz, t, nSubbands);
    if (m_historyError.empty()) // past the history the run is void: remember nothing
    {
        memo = SliceRateMemo{bandwidthHz, block, rho, rate};
    }
    return rate;
}

double
WdmoeChannel::SpreadRate(uint32_t dev,
                         Direction dir,
                         double rho,
                         double bandwidthHz,
                         Time t,
                         uint32_t nSubbands)
{
    // Spread uniformly over the pool: B_i / K in each subband, each at its own fade.
    const double piece = bandwidthHz / nSubbands;
    double rate = 0.0;
    for (uint32_t k = 0; k < nSubbands; ++k)
    {
        rate += RateOf(dir, rho * SubbandFadingGain(dev, dir, k, t), piece);
    }
    return rate;
}

bool
WdmoeChannel::ConcentratesPower(Direction dir) const
{
    return dir == UPLINK && m_mapping[UPLINK] && m_mapping[UPLINK]->Threshold() > 0;
}

double
WdmoeChannel::PowerLimitedUplinkRate(uint32_t dev,
                                     double rho,
                                     double bandwidthHz,
                                     Time t,
                                     uint32_t nSubbands)
{
    // The device uses a fraction f of its slice, spread over every subband (f B / K in each, at
    // SNR rho h_k / f): f = 1 when no subband is below the threshold, else the best of f = 1,
    // 1/2, 1/4, ... down to one resource block.
    const LinkToSystemMapping& mapping = *m_mapping[UPLINK];
    std::vector<double> snr(nSubbands);
    double weakest = std::numeric_limits<double>::infinity();
    for (uint32_t k = 0; k < nSubbands; ++k)
    {
        snr[k] = rho * SubbandFadingGain(dev, UPLINK, k, t);
        weakest = std::min(weakest, snr[k]);
    }
    double best = 0.0;
    for (double f = 1.0; f * bandwidthHz >= std::min(bandwidthHz, kMinUplinkBandwidthHz); f /= 2)
    {
        double rate = 0.0;
        for (uint32_t k = 0; k < nSubbands; ++k)
        {
            rate += mapping.Rate(snr[k] / f, f * bandwidthHz / nSubbands);
        }
        best = std::max(best, rate);
        if (weakest >= mapping.Threshold())
        {
            break; // every subband carries data on the whole slice: more power per Hz is less
        }
    }
    return best;
}

double
WdmoeChannel::DownlinkRate(uint32_t dev, double bandwidthHz, Time now)
{
    return SliceRate(dev, DOWNLINK, bandwidthHz, now);
}

double
WdmoeChannel::UplinkRate(uint32_t dev, double bandwidthHz, Time now)
{
    return SliceRate(dev, UPLINK, bandwidthHz, now);
}

Time
WdmoeChannel::CsiTime(Time now) const
{
    return now > m_csiDelay ? now - m_csiDelay : Time(0);
}

double
WdmoeChannel::KnownRate(uint32_t dev, Direction dir, double bandwidthHz, Time now)
{
    return SliceRate(dev, dir, bandwidthHz, CsiTime(now));
}

WdmoeChannel::Progress
WdmoeChannel::Integrate(uint32_t dev,
                        Direction dir,
                        double bits,
                        double bandwidthHz,
                        Time start,
                        Time until)
{
    auto rateAt = [&](Time t) {
        return dir == DOWNLINK ? DownlinkRate(dev, bandwidthHz, t)
                               : UplinkRate(dev, bandwidthHz, t);
    };
    if (!m_fadingEnabled)
    {
        const double rate = rateAt(start); // one rate throughout
        const double span = AirSeconds(dir, start, until);
        if (rate > 0 && bits / rate <= span)
        {
            return {AirEnd(dir, start, bits / rate), bits};
        }
        return {until, rate * span};
    }
    // Block by block: the rate of each coherence block carries what it can until the bits are
    // through (a transfer in a deep fade speeds up when the fade ends; one in outage waits).
    const int64_t step = m_coherenceTime.GetTimeStep();
    Time t = start;
    double remaining = bits;
    double carried = 0;
    for (uint64_t outage = 0; outage <= kMaxOutageBlocks;)
    {
        const Time blockEnd = TimeStep((t.GetTimeStep() / step + 1) * step);
        const Time end = std::min(blockEnd, until);
        const double rate = rateAt(t);
        const double blockBits = rate * AirSeconds(dir, t, end);
        if (!m_historyError.empty())
        {
            return {blockEnd, carried}; // past the fading history: the run is stopped and void
        }
        if (blockBits >= remaining && rate > 0)
        {
            return {AirEnd(dir, t, remaining / rate), bits};
        }
        remaining -= blockBits;
        carried += blockBits;
        if (end == until)
        {
            return {until, carried};
        }
        outage = rate > 0 ? 0 : outage + 1;
        t = blockEnd;
    }
    return {Time::Max(), carried};
}

Time
WdmoeChannel::TransferTime(uint32_t dev, Direction dir, double bits, double bandwidthHz, Time start)
{
    NS_ABORT_MSG_IF(bits < 0 || start.IsStrictlyNegative(),
                    "WdmoeChannel::TransferTime: negative bits or start");
    if (bits == 0)
    {
        return Seconds(0);
    }
    const Time end = Integrate(dev, dir, bits, bandwidthHz, start, Time::Max()).end;
    return end == Time::Max() ? end : end - start;
}

double
WdmoeChannel::BitsDelivered(uint32_t dev, Direction dir, double bandwidthHz, Time from, Time to)
{
    NS_ABORT_MSG_IF(from.IsStrictlyNegative(), "WdmoeChannel::BitsDelivered: negative start");
    if (to <= from)
    {
        return 0;
    }
    const double all = std::numeric_limits<double>::infinity();
    return Integrate(dev, dir, all, bandwidthHz, from, to).bits;
}

double
WdmoeChannel::ExpectedRate(uint32_t dev, Direction dir, double bandwidthHz)
{
    CheckBandwidth(bandwidthHz);
    if (bandwidthHz == 0.0)
    {
        return 0.0;
    }
    const double meanSnr = LargeScaleSnr(dev, dir, bandwidthHz); // no fading draw
    if (!m_fadingEnabled)
    {
        return ConcentratesPower(dir) ? m_mapping[UPLINK]->ConcentratedRate(meanSnr,
                                                                            bandwidthHz,
                                                                            kMinUplinkBandwidthHz)
                                      : RateOf(dir, meanSnr, bandwidthHz);
    }
    const LinkToSystemMapping shannon = LinkToSystemMapping::Shannon(m_efficiency);
    if (ConcentratesPower(dir))
    {
        return m_mapping[UPLINK]->ExpectedConcentratedRate(meanSnr,
                                                           bandwidthHz,
                                                           kMinUplinkBandwidthHz);
    }
    return m_mapping[dir].value_or(shannon).ExpectedRate(meanSnr, bandwidthHz);
}

Time
WdmoeChannel::PredictTransferTime(uint32_t dev,
                                  Direction dir,
                                  double bits,
                                  double bandwidthHz,
                                  Time now,
                                  Time start)
{
    // The BS knows the channel of the block holding `now`; later blocks are unknown and priced
    // at the expected rate.
    start = std::max(start, now);
    if (!m_fadingEnabled)
    {
        return AirDuration(dir, start, bits / KnownRate(dev, dir, bandwidthHz, now));
    }
    const int64_t step = m_coherenceTime.GetTimeStep();
    const Time blockEnd = TimeStep((now.GetTimeStep() / step + 1) * step);
    if (start >= blockEnd)
    {
        return AirDuration(dir, start, bits / ExpectedRate(dev, dir, bandwidthHz));
    }
    const double rate = KnownRate(dev, dir, bandwidthHz, now); // CsiDelay old
    const double blockBits = rate * AirSeconds(dir, start, blockEnd);
    if (blockBits >= bits && rate > 0)
    {
        return AirEnd(dir, start, bits / rate) - start;
    }
    return (blockEnd - start) +
           AirDuration(dir, blockEnd, (bits - blockBits) / ExpectedRate(dev, dir, bandwidthHz));
}

double
WdmoeChannel::AirSeconds(Direction dir, Time from, Time to) const
{
    return m_tdd ? m_tdd->OwnTime(from, to, dir == UPLINK).GetSeconds() : (to - from).GetSeconds();
}

Time
WdmoeChannel::AirEnd(Direction dir, Time from, double airtimeSeconds) const
{
    return m_tdd ? m_tdd->WallEnd(from, Seconds(airtimeSeconds), dir == UPLINK)
                 : from + Seconds(airtimeSeconds);
}

Time
WdmoeChannel::AirDuration(Direction dir, Time from, double airtimeSeconds) const
{
    if (!(airtimeSeconds < kUnreachableSeconds))
    {
        return Capped(airtimeSeconds);
    }
    return AirEnd(dir, from, airtimeSeconds) - from;
}

void
WdmoeChannel::SetTddPattern(const TddPattern& pattern)
{
    m_tdd = pattern;
}

double
WdmoeChannel::DutyCycle(Direction dir) const
{
    return m_tdd ? m_tdd->DutyCycle(dir == UPLINK) : 1.0;
}

int64_t
WdmoeChannel::AssignStreams(int64_t stream)
{
    NS_LOG_FUNCTION(this << stream);
    int64_t used = 0;
    for (DeviceLink& link : m_links)
    {
        link.fading[DOWNLINK]->SetStream(stream + used);
        link.fading[UPLINK]->SetStream(stream + used + 1);
        link.shadowing->SetStream(stream + used + 2);
        used += 3;
    }
    Ptr<PropagationLossModel> model = GetLossModel();
    used += model->AssignStreams(stream + used);
    // ThreeGppPropagationLossModel::DoAssignStreams leaves its channel condition model alone.
    for (Ptr<PropagationLossModel> m = model; m; m = m->GetNext())
    {
        Ptr<ThreeGppPropagationLossModel> tgpp = DynamicCast<ThreeGppPropagationLossModel>(m);
        if (tgpp && tgpp->GetChannelConditionModel())
        {
            used += tgpp->GetChannelConditionModel()->AssignStreams(stream + used);
        }
    }
    if (m_doppler) // after every existing stream, so that those keep their numbers
    {
        for (DeviceLink& link : m_links)
        {
            MakeGaussians(link);
            link.gauss[DOWNLINK]->SetStream(stream + used);
            link.gauss[UPLINK]->SetStream(stream + used + 1);
            used += 2;
        }
    }
    return used;
}

} // namespace ns3
