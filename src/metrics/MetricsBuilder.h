#pragma once

#include "config/Config.h"
#include "engine/ScraperDescriptor.h"
#include "metrics/MetricFamily.h"
#include "metrics/MetricProfile.h"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Cumulative statistics of one probed series (one job x scraper x target). Plain data.
struct SeriesStats
{
    std::uint64_t probes = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(FailureReason::Count)>
        failures{};                          ///< by FailureReason
    std::vector<std::uint64_t> bucketCounts; ///< non-cumulative, one per finite bucket bound
    double rttSum = 0;
    std::uint64_t rttCount = 0;
    double lastSeenUnix = 0; ///< 0 until the first success
    int lastUp = -1;         ///< -1 before the first probe
    std::uint64_t stateChanges = 0;
    double lastRttSeconds = 0;
    std::map<std::string, double> counters; ///< measurement counters by measurementKey()
};

/// The prober's own counters for one config. Plain data.
/// The self counters of one remote-write receiver (`--remote-write URL`), kept per URL. Plain data.
struct ReceiverStats
{
    std::string url;                         ///< the receiver, as given on the command line (persisted)
    std::array<std::uint64_t, 4> outcomes{}; ///< requests by result, as SelfStats::pushOutcomes (persisted)
    double lastSuccessUnix = 0;              ///< 0 until a request succeeded (persisted)
    std::uint64_t replayedSamples = 0;       ///< samples delivered from the spool (persisted)
    std::map<std::string, std::uint64_t> droppedSamples; ///< samples dropped, by reason (persisted)
    std::uint64_t spoolBytes = 0;                        ///< the spool's size now
    double spoolOldestUnix = 0;                          ///< the oldest spooled cycle's time; 0 when empty
    bool active = false; ///< configured in this process (only those are written)
};

/// The reasons a timestamped sink drops samples, in the order the dropped-samples families list them:
/// `spool_full`, `no_spool`, `spool_error`, `rejected`, `too_old`, `future`, `unsynced`.
const std::vector<const char*>& droppedReasons();

struct SelfStats
{
    double lastDurationSeconds = 0;
    std::uint64_t cycles = 0;
    std::uint64_t overruns = 0;
    std::uint64_t cycleErrors = 0; ///< cycles in which the prober itself failed (not persisted)
    std::uint64_t pushFailures = 0;
    std::array<std::uint64_t, 4>
        pushOutcomes{};             ///< indexed by PushOutcome::Result: ok, http_4xx, http_5xx, transport
    double lastPushSuccessUnix = 0; ///< 0 until a push succeeded
    std::uint64_t pushBytes = 0;    ///< request bytes of every push attempt put on the wire (not persisted)
    int configReloadSuccess = -1;   ///< -1 before the first SIGHUP, then 1 or 0

    // The state directory; its family is written only when `stateEnabled`.
    bool stateEnabled = false;
    std::uint64_t stateSaveFailures = 0; ///< state saves that failed (disk full...) (persisted)

    // The VictoriaMetrics sink; its families are written only when `importEnabled`.
    bool importEnabled = false;
    std::array<std::uint64_t, 4> importOutcomes{}; ///< import requests by result, as pushOutcomes (persisted)
    double lastImportSuccessUnix = 0;              ///< 0 until an import succeeded (persisted)
    std::map<std::string, std::uint64_t>
        spoolDropped;                       ///< samples the receiver will never get, by reason (persisted)
    std::uint64_t spoolReplayedSamples = 0; ///< samples delivered from the spool (persisted)
    std::uint64_t spoolBytes = 0;           ///< the spool's size now
    double spoolOldestUnix = 0;             ///< the oldest spooled cycle's time; 0 when empty

    std::vector<ReceiverStats> remoteWrite; ///< one per remote-write receiver (and per URL a state file had)

    // The clocks (TrueClock), set every cycle; not in the state file (the steps are, in `<state-dir>/clock`).
    std::uint64_t rttDiscarded = 0; ///< RTTs outside [0, timeout] discarded (not persisted)
    bool clockKnown = false;        ///< a receiver's Date was seen: clockSkewSeconds is valid
    double clockSkewSeconds = 0;    ///< the last answer's Date minus the local wall clock
    int clockSynchronized = -1;     ///< adjtimex: 1, 0; -1 before the first cycle
    double clockMaxErrorSeconds = 0;
    std::uint64_t clockSteps = 0;
};

struct PersistedState;
class OnlineProfiles;

/// Turns probe results into metric families for one config: owns the cumulative per-series statistics, the
/// per-config RTT histogram of each scraper (the sum of its series' observations, kept on its own so that a
/// device dropped by a reload does not take its share away) and the self statistics. Used by one thread at a
/// time (the config's loop); not synchronized.
class MetricsBuilder
{
public:
    /// Copies what it needs of the config (labels, buckets, jobs). `measurements` (the registry's: the kinds
    /// scrapers may report) must outlive the builder.
    explicit MetricsBuilder(const DeviceClassConfig& config,
                            const MeasurementCatalog& measurements = MeasurementCatalog::empty());

    /// Makes room for `count` series in all, so that declaring them does not copy the table as it grows.
    void reserveSeries(std::size_t count) { _series.reserve(count); }

    /// Declares a series and returns its index. `targetLabels` are the scraper's labels (port, protocol).
    std::size_t addSeries(std::size_t jobIndex, const std::string& scraper, const Labels& targetLabels);

    /// Records one probe result of a series, made at `nowUnix` (seconds since the epoch).
    void record(std::size_t series, const ProbeResult& result, double nowUnix);

    /// Also writes the measurement kinds marked MeasurementKind::probeOnly (for a `/probe` answer); off by
    /// default.
    void setIncludeProbeOnly(bool include) { _includeProbeOnly = include; }

    /// Writes the online-profile families of `profiles` (one series per device; null: none). `profiles` must
    /// hold one profile per job and outlive the builder.
    void setProfiles(const OnlineProfiles* profiles) { _profiles = profiles; }

    /// The self statistics, to be updated by the engine.
    SelfStats& self() { return _self; }
    const SelfStats& self() const { return _self; }

    /// The statistics of a series (for tests and compat output).
    const SeriesStats& stats(std::size_t series) const { return _series.at(series).stats; }

    /// The identity of a series across restarts and reloads: device, scraper and target labels.
    static std::string seriesKey(const std::string& device, const std::string& scraper,
                                 const Labels& targetLabels);

    /// The state key of the per-config RTT histogram of `scraper`: a series key with an empty device part,
    /// which no job has (job names are never empty).
    static std::string aggregateKey(const std::string& scraper);

    /// True when `key` is an aggregateKey().
    static bool isAggregateKey(const std::string& key);

    /// The per-config RTT statistics of `scraper` (bucketCounts, rttSum and rttCount), or null when the
    /// config has no series of it.
    const SeriesStats* aggregateStats(const std::string& scraper) const;

    /// The identity of a measurement within a series: its key and labels, length-prefixed.
    static std::string measurementKey(const std::string& key, const Labels& labels);

    /// Splits a measurementKey() back into key and labels; throws std::runtime_error when malformed.
    static std::pair<std::string, Labels> splitMeasurementKey(const std::string& encoded);

    /// Copies the cumulative statistics of every series and the self counters.
    PersistedState exportState() const;

    /// Hands every series' identity (seriesKey) and statistics to `visit`, in declaration order, then every
    /// per-config RTT histogram (aggregateKey), without copying: what the state file keeps.
    void
    forEachSeries(const std::function<void(const std::string& key, const SeriesStats& stats)>& visit) const;

    /// The bounds of fleetprobe_rtt_seconds.
    const std::vector<double>& rttBuckets() const { return _buckets; }

    /// Restores statistics saved by exportState: series are matched by key (series no longer configured are
    /// dropped); histogram counts are kept only when the bucket bounds are unchanged. The per-config
    /// histograms are restored whether or not their devices still are, and kept (not written) for a scraper
    /// no series has now, so that they never decrease; a state without one (of an older version) starts it as
    /// the sum of the restored series. Returns how many series (not counting the per-config histograms) were
    /// restored.
    std::size_t importState(const PersistedState& state);

    /// Every family of the push body: device families first, then self-metrics, each contiguous; families
    /// without samples are left out.
    std::vector<MetricFamily> collect() const;

    /// The same families, handed to `visit` one at a time (only one is held in memory).
    void collect(const std::function<void(const MetricFamily&)>& visit) const;

    /// How many families buildFamily() knows (some may be empty in a given cycle).
    std::size_t familyCount() const;

    /// Fills `family` with family number `index` (0 to familyCount() - 1), in output order; its metrics are
    /// empty when it has no sample now. With this a body can be produced on demand, piece by piece.
    void buildFamily(std::size_t index, MetricFamily& family) const;

    /// PingExporter's per-device `dev_ping` values of the last cycle: (job name, average RTT in ms, or
    /// value_dev_down when down) for every job with a ping series.
    std::vector<std::pair<std::string, double>> devPing() const;

    /// Hands every series to `visit` as a metric profile reads it (MetricProfile), in declaration order.
    void forEachProfileSeries(const std::function<void(const ProfileSeries&)>& visit) const;

private:
    struct Series
    {
        std::size_t jobIndex;
        std::string scraper;
        std::string key;
        Labels targetLabels;
        std::shared_ptr<const std::string> labelText; ///< the full label set, rendered once
        SeriesStats stats;
        bool upNow = false;
        bool rttNow = false;                  ///< the last result had a round trip
        std::map<std::string, double> gauges; ///< measurement gauges of the last cycle, by measurementKey()
        std::size_t aggregate = 0;            ///< index in _aggregates of its scraper's histogram
    };

    /// The per-config RTT histogram of one scraper.
    struct Aggregate
    {
        std::string scraper;
        std::shared_ptr<const std::string> labelText; ///< scraper and conf labels, rendered once
        SeriesStats stats;                            ///< bucketCounts, rttSum and rttCount only
        bool configured = false;                      ///< a series of the config has this scraper
    };

    std::size_t aggregateOf(const std::string& scraper);

    static Metric sample(const Series& s, double value);

    const MeasurementCatalog& _measurements;
    std::vector<std::string> _jobNames;
    std::vector<double> _buckets;
    RttHistogram _histogram;
    bool _includeProbeOnly = false;
    double _valueDevDown;
    Labels _confLabels;
    std::vector<Labels> _jobLabels;
    std::vector<std::string> _jobAddresses;
    std::vector<std::shared_ptr<const std::string>> _jobLabelText; ///< device (address) and labels of a job
    /// device and address of each job for fleetprobe_device_info; empty when the address is on every series
    std::vector<std::shared_ptr<const std::string>> _jobInfoText;
    bool _addressOnSeries = false; ///< conf.address_label "series", or a job name repeated
    const OnlineProfiles* _profiles = nullptr;
    std::vector<std::string> _jobHosts;
    std::vector<Labels> _jobProfileLabels;
    std::vector<std::string> _jobKeyNames; ///< the device part of series keys (see the constructor)
    std::size_t _jobsInFile = 0;
    std::vector<Series> _series;
    std::vector<Aggregate> _aggregates; ///< in the order their scrapers were first declared
    SelfStats _self;
};

} // namespace fleetprobe
