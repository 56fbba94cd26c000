/*
 * The link budget between the base station (BS) of a wdmoe cell and its devices: path loss from
 * an ns-3 PropagationLossModel, static log-normal shadowing where that model has none, Rayleigh
 * block fading, noise, powers, and the Shannon rate of a bandwidth slice.
 */
#ifndef WDMOE_CHANNEL_H
#define WDMOE_CHANNEL_H

#include "link-to-system-mapping.h"
#include "tdd-pattern.h"

#include "ns3/mobility-model.h"
#include "ns3/nstime.h"
#include "ns3/object.h"
#include "ns3/propagation-loss-model.h"
#include "ns3/random-variable-stream.h"
#include "ns3/traced-callback.h"

#include <array>
#include <complex>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ns3
{

/// The fading blocks one link and direction keeps (8 bytes each, 80 MB in all). A query past
/// them stops the simulation (Simulator::Stop) and sets WdmoeChannel::HistoryError: the run is
/// too long for its CoherenceTime, and its results must be discarded.
constexpr uint64_t kMaxFadingBlocksPerLink = 10000000;

/**
 * \ingroup wdmoe
 * \brief The radio links between the BS and N devices of a wdmoe cell (SI units inside).
 *
 * For device i with a bandwidth slice B_i (Hz):
 *
 * - path gain G_i (dB, negative) = rx power - tx power of the PropagationLossModel for the
 *   current positions of the BS and the device, plus a static log-normal shadowing term
 *   sigma * z_i (z_i ~ N(0,1), drawn once per device) ONLY when the loss model (or a model chained
 *   after it) has no shadowing of its own (a 3GPP model with ShadowingEnabled = true has it);
 * - fading |h|^2 ~ Exp(1), redrawn every CoherenceTime (block b = floor(now / CoherenceTime)),
 *   independently per device and direction; 1 when FadingEnabled is false;
 * - downlink: the BS spreads BsTxPower over TotalBandwidth at constant PSD, so slice i gets
 *   P_BS * B_i / B_total; noise N0 * NF_dev * B_i; SNR = P_BS G |h|^2 / (N0 NF_dev B_total),
 *   independent of B_i;
 * - uplink: fixed device power, noise N0 * NF_bs * B_i; SNR = P_dev G |h|^2 / (N0 NF_bs B_i);
 * - rate = Efficiency * B_i * log2(1 + SNR) (bit/s), or the direction's link-to-system mapping
 *   where one is set (SetLinkMapping): a truncated Shannon bound or a CQI table, whose rate may
 *   be zero (outage).
 *
 * Frequency selectivity (CoherenceBandwidth > 0): the pool of a direction (TotalBandwidth for
 * the downlink, UplinkBandwidth for the uplink) is split into K = max(1, round(pool /
 * CoherenceBandwidth)) equal subbands, each with its own |h_k|^2 per block; a slice of width B_i is
 * spread uniformly over the pool (B_i / K in every subband), so its rate is the sum over k of the
 * mapping's rate at SNR rho |h_k|^2 on B_i / K. K = 1 is today's flat fading.
 *
 * Time correlation (DopplerCorrelation true): per link, direction and subband the complex gain
 * follows h_b = r h_{b-1} + sqrt(1 - r^2) w_b (h_0 = w_0, w_b ~ CN(0,1)), r = J0(2 pi f_D T) with
 * T = CoherenceTime and f_D = max(v f_c / c, MinDopplerHz), v the device's speed (GetVelocity)
 * when the block is drawn; |h_b|^2 stays Exp(1). Otherwise the blocks are independent.
 *
 * TDD (SetTddPattern): both directions use the whole band (TotalBandwidth), each only in its
 * own symbols of the slot pattern: a transfer needs airtime bits / rate of its direction's air,
 * and its duration is the wall-clock time that airtime takes (TddPattern::WallEnd); the fading is
 * reciprocal, the uplink seeing the downlink's draws of the same block and subband (its own
 * fading stream is never drawn). Without a pattern a direction holds the air all the time.
 *
 * CSI delay (CsiDelay d): the BS's view of a slice's rate at time t (KnownRate, used by
 * PredictTransferTime and the predictors) is the rate with the fading of the block holding
 * max(0, t - d); TransferTime always uses the true blocks.
 *
 * Randomness: each device owns three streams (downlink fading, uplink fading, shadowing), so the
 * order in which devices or directions are queried never changes a draw. Fading block b of a link
 * is always the (b+1)-th draw of its stream: blocks skipped by the queries are drawn (and kept)
 * too, so a link's fading is a fixed function of (RngRun, stream, block), identical across
 * policies that query at different times. Drawn blocks are kept for the whole run (8 bytes per
 * block and link).
 *
 * The first query of a device evaluates the loss model twice and keeps the second value: ns-3
 * 3.37's ThreeGppPropagationLossModel stores a zero displacement on a link's first evaluation, so
 * its second evaluation redraws most of the link's shadowing (the displacement seen is the whole
 * BS-device vector); from the second evaluation on, a static link keeps its shadowing.
 *
 * Call order: set the attributes and the loss model, SetBs, AddDevice for every device, then
 * AssignStreams, then query. Devices added after AssignStreams get automatically assigned
 * streams, which depend on every other random variable created before them.
 */
class WdmoeChannel : public Object
{
  public:
    /// Link direction.
    enum Direction
    {
        DOWNLINK, ///< BS -> device
        UPLINK    ///< device -> BS
    };

    /**
     * TracedCallback signature of FadingDraw.
     * \param device the device index
     * \param direction the link direction
     * \param block the coherence block index (floor(now / CoherenceTime))
     * \param gain the linear fading power gain |h|^2 of that block
     */
    typedef void (*FadingDrawTracedCallback)(uint32_t device,
                                             Direction direction,
                                             uint64_t block,
                                             double gain);

    /**
     * \brief Get the type ID.
     * \return the object TypeId
     */
    static TypeId GetTypeId();

    WdmoeChannel();
    ~WdmoeChannel() override;

    /**
     * A ThreeGppUmaPropagationLossModel at the given carrier frequency with a
     * ThreeGppUmaChannelConditionModel attached (without a channel condition model the 3GPP
     * models fail). Its own shadowing is on (ShadowingEnabled default), so WdmoeChannel adds
     * none. The 3GPP models need the mobility models aggregated to Nodes (they key their caches
     * by node id) and assume the taller end is the BS (UMa: BS 25 m, devices 1.5-22.5 m).
     * \param carrierHz the carrier frequency in Hz (0.5e9 to 100e9)
     * \return the loss model
     */
    static Ptr<PropagationLossModel> CreateThreeGppUma(double carrierHz);

    /**
     * A LogDistancePropagationLossModel giving exactly 128.1 + 37.6 log10(d / 1 km) dB for
     * d >= minDistanceM. ns-3's LogDistance model returns txPower - ReferenceLoss for every
     * distance at or below ReferenceDistance, so the reference distance is set to the minimum
     * device distance (not to 1 km) with ReferenceLoss = 128.1 + 37.6 log10(minDistanceM / 1000)
     * and Exponent = 3.76; closer devices see the loss at minDistanceM.
     * \param minDistanceM the reference (= minimum device) distance in m
     * \return the loss model
     */
    static Ptr<PropagationLossModel> CreateLogDistance128(double minDistanceM = 35.0);

    /**
     * \param bs the mobility model of the BS
     */
    void SetBs(Ptr<MobilityModel> bs);

    /**
     * Registers a device. Its position is read from the mobility model at every query.
     * \param device the mobility model of the device
     * \return the device index (0, 1, ...)
     */
    uint32_t AddDevice(Ptr<MobilityModel> device);

    /// \return the number of registered devices
    uint32_t GetNDevices() const;

    /// \return whether mobility is the BS's mobility model
    bool IsBs(Ptr<MobilityModel> mobility) const;
    /**
     * \param mobility a mobility model
     * \param[out] dev the index of the device registered with it, when there is one
     * \return whether a device is registered with that mobility model
     */
    bool FindDevice(Ptr<MobilityModel> mobility, uint32_t& dev) const;

    /// \return the loss model (aborts when none is set)
    Ptr<PropagationLossModel> GetLossModel() const;

    /**
     * Gives one device its own transmit power instead of the DeviceTxPowerDbm attribute (a
     * cell of phones and Jetsons: each radio its own power class).
     * \param dev the device index (aborts when out of range)
     * \param dbm its transmit power in dBm (aborts when not finite)
     */
    void SetDeviceTxPowerDbm(uint32_t dev, double dbm);

    /// \return the device's transmit power in dBm: its own, else DeviceTxPowerDbm
    double GetDeviceTxPowerDbm(uint32_t dev) const;

    /// \return the same in watts (what the energy model and the energy rule price)
    double GetDeviceTxPowerW(uint32_t dev) const;

    /**
     * \param dev the device index
     * \return rx power - tx power in dB (negative) for the current positions: the loss model
     *         plus this channel's shadowing where it applies; fading excluded
     */
    double PathGainDb(uint32_t dev);

    /**
     * \param dev the device index
     * \return this channel's static shadowing of the device in dB (0 when the loss model has
     *         its own shadowing)
     */
    double ShadowingDb(uint32_t dev);

    /**
     * \param dev the device index
     * \param dir the direction
     * \param now the time (>= 0)
     * \return the linear fading power gain |h|^2 of the coherence block holding now; 1 when
     *         fading is disabled
     */
    double FadingGain(uint32_t dev, Direction dir, Time now);

    /**
     * \param dev the device index
     * \param dir the direction
     * \param subband the subband index (< NSubbands(dir))
     * \param now the time (>= 0)
     * \return the linear fading power gain |h_k|^2 of that subband in the block holding now; 1
     *         when fading is disabled. FadingGain is subband 0.
     */
    double SubbandFadingGain(uint32_t dev, Direction dir, uint32_t subband, Time now);

    /**
     * \param dir the direction
     * \return K, the number of subbands a slice of that direction is spread over (1: flat)
     */
    uint32_t NSubbands(Direction dir) const;

    /**
     * The time whose fading the BS knows at `now`: max(0, now - CsiDelay).
     * \param now the time
     * \return the time of the known block
     */
    Time CsiTime(Time now) const;

    /**
     * The rate the BS knows for a slice at `now`: the current path loss with the fading of the
     * block holding CsiTime(now) (the true rate when CsiDelay is 0).
     * \param dev the device index
     * \param dir the direction
     * \param bandwidthHz the slice B_i in Hz
     * \param now the time
     * \return the rate in bit/s
     */
    double KnownRate(uint32_t dev, Direction dir, double bandwidthHz, Time now);

    /// Empty, or why the simulation was stopped: a query past kMaxFadingBlocksPerLink (then
    /// FadingGain returned 1 and every later result of the run is void). An exception thrown
    /// through ns-3's event loop would leak the event that runs, so the caller checks this
    /// after Simulator::Run instead.
    const std::string& HistoryError() const;

    /**
     * \param dev the device index
     * \param bandwidthHz the device's slice B_i in Hz (0 < B_i <= TotalBandwidth)
     * \param now the time
     * \return the linear downlink SNR (does not depend on B_i); with subbands, subband 0's
     */
    double DownlinkSnr(uint32_t dev, double bandwidthHz, Time now);

    /**
     * \param dev the device index
     * \param bandwidthHz the device's slice B_i in Hz (> 0)
     * \param now the time
     * \return the linear uplink SNR (inversely proportional to B_i); with subbands, subband 0's
     */
    double UplinkSnr(uint32_t dev, double bandwidthHz, Time now);

    /**
     * \param dev the device index
     * \param bandwidthHz the device's slice B_i in Hz (0 gives rate 0)
     * \param now the time
     * \return Efficiency * B_i * log2(1 + downlink SNR) in bit/s (the direction's mapping where
     *         set; with subbands, the sum over them)
     */
    double DownlinkRate(uint32_t dev, double bandwidthHz, Time now);

    /**
     * \param dev the device index
     * \param bandwidthHz the device's slice B_i in Hz (0 gives rate 0)
     * \param now the time
     * \return Efficiency * B_i * log2(1 + uplink SNR) in bit/s (the direction's mapping where
     *         set; with subbands, the sum over them)
     */
    double UplinkRate(uint32_t dev, double bandwidthHz, Time now);

    /**
     * How long `bits` take on a slice from `start`: the rate changes at every coherence block
     * (fading), so the transfer is walked block by block, each block carrying rate x its
     * remaining duration; without fading, bits / rate. The path loss is the one of the
     * positions when the transfer starts (a transfer is short next to a device's movement).
     * \param dev the device index
     * \param dir the direction
     * \param bits what is sent (>= 0)
     * \param bandwidthHz the slice B_i in Hz (> 0)
     * \param start when the transfer starts
     * \return the transfer's duration; Time::Max() when it never ends (no block with a positive
     *         rate within kMaxOutageBlocks, or a rate of zero without fading)
     */
    Time TransferTime(uint32_t dev, Direction dir, double bits, double bandwidthHz, Time start);

    /**
     * The bits a slice carries from `from` to `to`: the integral of its rate, walked over the
     * coherence blocks as TransferTime walks them (the same walk: TransferTime(b) = t exactly
     * when BitsDelivered(from, from + t) reaches b). A transport whose slices change while a
     * transfer runs (work-conserving sharing) accounts each stretch with it.
     * \param dev the device index
     * \param dir the direction
     * \param bandwidthHz the slice B_i in Hz (>= 0)
     * \param from the stretch's start
     * \param to its end (<= from gives 0)
     * \return the bits carried, >= 0
     */
    double BitsDelivered(uint32_t dev, Direction dir, double bandwidthHz, Time from, Time to);

    /**
     * The rate a scheduler can expect beyond the current coherence block: the mean over the
     * Rayleigh fading of Efficiency * B_i * log2(1 + rho |h|^2) with rho the large-scale SNR
     * (path loss and shadowing), i.e. Efficiency * B_i * e^{1/rho} E1(1/rho) / ln 2; without
     * fading, the rate at rho. Draws no fading.
     * \param dev the device index
     * \param dir the direction
     * \param bandwidthHz the device's slice B_i in Hz (0 gives rate 0)
     * \return the expected rate in bit/s
     */
    double ExpectedRate(uint32_t dev, Direction dir, double bandwidthHz);

    /**
     * What the BS, which knows the channel of the coherence block holding `now` (as of CsiDelay
     * ago: KnownRate), can predict of a transfer starting at `start`: the part of it inside that
     * block at the known rate, the rest at ExpectedRate. Without fading, bits / rate.
     * \param dev the device index
     * \param dir the direction
     * \param bits what is sent
     * \param bandwidthHz the slice B_i in Hz (> 0)
     * \param now when the prediction is made
     * \param start when the transfer starts (an earlier value means now)
     * \return the predicted duration
     */
    Time PredictTransferTime(uint32_t dev,
                             Direction dir,
                             double bits,
                             double bandwidthHz,
                             Time now,
                             Time start = Time(0));

    /**
     * Replaces the ideal Shannon rate (Efficiency * B log2(1 + SNR)) of one direction.
     * \param dir the direction
     * \param mapping how that direction's SNR becomes a rate
     */
    void SetLinkMapping(Direction dir, const LinkToSystemMapping& mapping);

    /**
     * Time-division duplex: each direction transmits in its own symbols of the pattern, on the
     * whole band, with reciprocal fading (see the class description). Set before any query.
     * \param pattern the slot pattern
     */
    void SetTddPattern(const TddPattern& pattern);

    /// The share of time a direction holds the air: 1, or the TDD pattern's duty cycle.
    double DutyCycle(Direction dir) const;
    /// The time in [from, to) during which the direction holds the air (all of it without TDD):
    /// a transfer on the air over [from, to) transmits (or receives) for this long.
    double AirSeconds(Direction dir, Time from, Time to) const;

    /// The narrowest part of its slice a power-limited uplink concentrates its power on: one
    /// LTE/NR resource block at 15 kHz (12 subcarriers).
    static constexpr double kMinUplinkBandwidthHz = 180e3;

    /// The longest outage a transfer waits through, in coherence blocks: a transfer that finds
    /// no block with a positive rate within it never arrives (TransferTime returns Time::Max()).
    static constexpr uint64_t kMaxOutageBlocks = 100000;

    /// A prediction of a transfer that may never end (zero expected rate) is capped here.
    static constexpr double kUnreachableSeconds = 1e6;

    /**
     * Assigns fixed streams: device i uses stream + 3 i (downlink fading), + 3 i + 1 (uplink
     * fading), + 3 i + 2 (shadowing); the loss model (and its chain) starts at stream + 3 N, and a
     * 3GPP model's channel condition model follows it. With DopplerCorrelation, 2 N Gaussian
     * streams follow (device i: downlink, uplink); none otherwise. Add every device first.
     * \param stream the first stream index
     * \return the number of streams used
     */
    int64_t AssignStreams(int64_t stream);

    /**
     * \return true when the loss model or a model chained to it has its own shadowing (an
     *         attribute ShadowingEnabled that is true)
     */
    bool LossModelHasShadowing() const;

  protected:
    void DoDispose() override;

  private:
    /// GetTypeId's second half: CSI age, subbands, Doppler, and the FadingDraw trace source.
    static TypeId AddFadingAttributes(TypeId tid);

  protected:
  private:
    /// One remembered SliceRate over subbands: the same slice, block and large-scale SNR give
    /// the same rate (the fades of a block never change once drawn).
    struct SliceRateMemo
    {
        double bandwidthHz = -1; ///< -1: empty
        uint64_t block = 0;
        double largeScaleSnr = 0;
        double rate = 0;
    };

    static constexpr std::size_t kSliceRateMemoSize = 64;

    /// Per device state.
    struct DeviceLink
    {
        Ptr<MobilityModel> mobility;              ///< the device's position
        Ptr<ExponentialRandomVariable> fading[2]; ///< |h|^2 streams, by Direction
        std::vector<double> fadingBlocks[2];      ///< drawn gains, by Direction: block b
                                                  ///< subband k at b K + k
        Ptr<NormalRandomVariable> gauss[2];       ///< CN(0,1) parts with DopplerCorrelation
        std::vector<std::complex<double>> h[2];   ///< last block's h_k with DopplerCorrelation
        Ptr<NormalRandomVariable> shadowing;      ///< z ~ N(0,1)
        Ptr<PropagationLossModel> primedModel;    ///< the loss model evaluated once and discarded
        Ptr<PropagationLossModel> cachedModel;    ///< the model of cachedLossDb (null: none yet)
        Vector cachedBs;                          ///< BS position of cachedLossDb
        Vector cachedDevice;                      ///< device position of cachedLossDb
        double cachedLossDb{0.0};                 ///< loss model gain at those positions
        bool shadowingDrawn{false};               ///< z drawn yet?
        double shadowingZ{0.0};                   ///< the draw
        bool ownTxPower{false};                   ///< txPowerDbm set (else the attribute's)
        double txPowerDbm{0.0};                   ///< its own transmit power (dBm)
        /// Slice rates over subbands already computed, by Direction: the work-conserving pool
        /// re-walks the blocks a transfer was timed over when the shares change, and the BS's
        /// coverage checks ask for the block it last asked for.
        std::array<SliceRateMemo, kSliceRateMemoSize> rateMemo[2];
    };

    /// \param dev the device index (aborts when out of range)
    /// \return the device's state
    DeviceLink& GetLink(uint32_t dev);
    /// The SNR of a slice without fading (path loss and shadowing only).
    double LargeScaleSnr(uint32_t dev, Direction dir, double bandwidthHz);
    /// \param bandwidthHz a slice (aborts when negative or not finite)
    void CheckBandwidth(double bandwidthHz) const;
    /// The rate of a slice at an SNR in one direction: its mapping, or Efficiency x Shannon.
    double RateOf(Direction dir, double snr, double bandwidthHz) const;
    /// The true rate of a slice at t: one SNR (flat) or the sum over the subbands.
    double SliceRate(uint32_t dev, Direction dir, double bandwidthHz, Time t);
    /// Whether a direction's rate is a power-limited sender's (LinkToSystemMapping::
    /// ConcentratedRate): the uplink under a mapping with a threshold.
    bool ConcentratesPower(Direction dir) const;
    /// SliceRate over nSubbands > 1 subbands (remembered in the link's rateMemo).
    double SubbandSliceRate(uint32_t dev,
                            Direction dir,
                            double bandwidthHz,
                            Time t,
                            uint32_t nSubbands);
    /// A slice spread over the subbands at large-scale SNR rho, each piece at its own fade.
    double SpreadRate(uint32_t dev,
                      Direction dir,
                      double rho,
                      double bandwidthHz,
                      Time t,
                      uint32_t nSubbands);
    /// The same for an uplink whose mapping has a threshold: the device concentrates its power
    /// where it reaches the threshold (LinkToSystemMapping::ConcentratedRate).
    double PowerLimitedUplinkRate(uint32_t dev,
                                  double rho,
                                  double bandwidthHz,
                                  Time t,
                                  uint32_t nSubbands);

    /// How far a slice gets from a start: when its bits are through, or what it carried by then.
    struct Progress
    {
        Time end;    ///< when the bits are through; else `until` (Time::Max(): never)
        double bits; ///< the bits carried by `end`
    };

    /// The one rate integration of TransferTime and BitsDelivered: from `start`, each coherence
    /// block carries rate x the part of it the slice uses (one rate throughout without fading),
    /// until `bits` are through or `until` is reached, whichever comes first. A transfer that
    /// meets kMaxOutageBlocks blocks of zero rate in a row (or a zero rate without fading)
    /// never ends: {until, carried}. Past the fading history, {that block's end, carried}.
    Progress Integrate(uint32_t dev,
                       Direction dir,
                       double bits,
                       double bandwidthHz,
                       Time start,
                       Time until);
    /// Draws the next block of a link (all its subbands) into fadingBlocks.
    void DrawBlock(uint32_t dev, Direction dir);
    /// r = J0(2 pi f_D T) of a device now (see the class description).
    double DopplerCoefficient(uint32_t dev);
    /// Creates the Gaussian streams of a device where DopplerCorrelation needs them.
    void MakeGaussians(DeviceLink& link);
    /// When airtimeSeconds of the direction's air, starting at from, ends.
    Time AirEnd(Direction dir, Time from, double airtimeSeconds) const;
    /// AirEnd - from, capped at kUnreachableSeconds (a prediction, never Time::Max()).
    Time AirDuration(Direction dir, Time from, double airtimeSeconds) const;

    Ptr<PropagationLossModel> m_lossModel;                     ///< path loss (+ maybe shadowing)
    mutable Ptr<PropagationLossModel> m_shadowingCheckedModel; ///< model m_modelHasShadowing is of
    mutable bool m_modelHasShadowing{false};                   ///< cached LossModelHasShadowing
    Ptr<MobilityModel> m_bs;                                   ///< the BS position
    std::vector<DeviceLink> m_links;                           ///< by device index
    double m_shadowingSigmaDb;                                 ///< our shadowing sigma (dB)
    Time m_coherenceTime;                                      ///< fading block length
    std::string m_historyError;                                ///< see HistoryError
    bool m_fadingEnabled;                                      ///< Rayleigh block fading on?
    Time m_csiDelay;                                           ///< age of the BS's CSI
    double m_coherenceBandwidthHz{0.0};                        ///< subband width (0: flat)
    double m_uplinkBandwidthHz{0.0};                           ///< uplink pool (0: TotalBandwidth)
    bool m_doppler{false};                                     ///< AR(1) blocks (else independent)
    double m_carrierHz{3.5e9};                                 ///< for the Doppler shift
    double m_minDopplerHz{0.0};                                ///< Doppler floor
    double m_bsTxPowerDbm;        ///< BS power over the whole band (dBm)
    double m_deviceTxPowerDbm;    ///< device power (dBm)
    double m_noisePsdDbmPerHz;    ///< thermal noise PSD (dBm/Hz)
    double m_bsNoiseFigureDb;     ///< BS receiver noise figure (dB)
    double m_deviceNoiseFigureDb; ///< device receiver noise figure (dB)
    double m_efficiency;          ///< eta in rate = eta B log2(1 + SNR)
    double m_totalBandwidthHz;    ///< the band the BS power is spread over (Hz)
    /// FindDevice's index: each device by its mobility model (PathGainDb's callers from ns-3's
    /// LTE channels name a pair of mobility models, every TTI)
    std::map<const MobilityModel*, uint32_t> m_deviceOfMobility;
    /// By Direction: a mapping that replaces Efficiency x Shannon (none: Shannon).
    std::optional<LinkToSystemMapping> m_mapping[2];
    std::optional<TddPattern> m_tdd; ///< the slot pattern (none: each direction always on air)

    /// Fires once per drawn fading block.
    TracedCallback<uint32_t, Direction, uint64_t, double> m_fadingDrawTrace;
};

} // namespace ns3

#endif // WDMOE_CHANNEL_H
