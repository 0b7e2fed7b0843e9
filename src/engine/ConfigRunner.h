#pragma once

#include "config/Config.h"
#include "engine/ScraperRegistry.h"
#include "engine/StopSignal.h"
#include "metrics/MetricsBuilder.h"
#include "sinks/PushClient.h"

#include <Poco/ThreadPool.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fleetprobe
{

class StateStore;
class ImportShipper;

/// Settings a runner takes from the command line.
struct RunnerOptions
{
    std::string instance; ///< the `instance` of the grouping key
    std::chrono::milliseconds pushTimeout{
        10000};                                ///< total limit of the pushes of one cycle, retries included
    std::chrono::milliseconds stopGrace{5000}; ///< how long a push may go on after a stop request
    std::chrono::milliseconds retryDelay{500}; ///< first delay between push attempts; doubles each retry
    std::chrono::milliseconds retryDelayMax{4000};
    StateStore* state = nullptr; ///< where the cumulative statistics are kept; null: not kept
    StopSignal* stop = nullptr;  ///< stop requests (bounds pushes by stopGrace); null: none
    bool deviceStatus = false;   ///< keep every series' status in snapshot() (the status page)
    std::string spoolRoot;       ///< where import spools live (`<state-dir>/spool`); empty: no spool
    std::uint64_t spoolMaxBytes = 256ull << 20; ///< cap of one config's spool
    bool spoolFsync = true;                     ///< fsync every spooled cycle
};

/// What one cycle did.
struct CycleOutcome
{
    bool pushed = true;            ///< every push of the cycle succeeded
    bool permissionDenied = false; ///< a probe failed for lack of privilege (raw ICMP)
    double probeSeconds = 0;
    std::size_t up = 0, down = 0;
};

/// Runs one device-class config: its scrapers on its own Poco thread pool (`conf.threads`), its cumulative
/// metrics, its push sink, its schedule. Owns all of them. runCycle/runLoop are called by one thread at a
/// time.
class ConfigRunner
{
public:
    /// Creates the config's scrapers from the registry and declares every series.
    /// `sink` (the Pushgateway or stdout) may be null when `importer` (VictoriaMetrics) is set.
    ConfigRunner(DeviceClassConfig config, const ScraperRegistry& registry, std::unique_ptr<MetricsSink> sink,
                 RunnerOptions options, std::unique_ptr<ImportSink> importer = nullptr);
    ~ConfigRunner();

    /// Probes every target of the config at once, records the results and pushes. `pushTimeout` bounds the
    /// pushes (0: the options' push timeout).
    CycleOutcome runCycle(std::chrono::milliseconds pushTimeout = std::chrono::milliseconds(0));

    /// Runs cycles on a drift-free schedule until `stop` is requested; returns after the cycle in flight.
    void runLoop(StopSignal& stop);

    /// The config this runner runs.
    const DeviceClassConfig& config() const { return _config; }

    /// The metrics (cumulative statistics) of this runner.
    const MetricsBuilder& metrics() const { return _metrics; }

    /// The grouping-key path of the main group.
    const std::string& groupPath() const { return _groupPath; }

    /// What the last finished cycle left, for readers on other threads (HTTP handlers).
    /// One probed series as the last cycle left it (a status page row). Plain data.
    struct DeviceStatus
    {
        std::string device;  ///< `jobs[].job`
        std::string address; ///< `jobs[].ip` as written
        std::string scraper; ///< e.g. "ping", "port"
        Labels target;       ///< the scraper's target labels (port, protocol); empty for ping
        Labels labels;       ///< `conf.labels` merged with `jobs[].labels`
        bool up = false;
        std::string reason;         ///< failure reason name when down ("timeout", ...), empty when up
        std::string detail;         ///< the scraper's detail of the failure, may be empty
        double lastRttSeconds = -1; ///< this cycle's RTT; -1 when there was none
        double lastSeenUnix = 0;    ///< last success, across restarts (state); 0: never
        std::uint64_t stateChanges = 0;
    };

    struct Snapshot
    {
        SelfStats self;
        CycleOutcome lastCycle;
        double lastCycleEndUnix = 0; ///< 0 before the first cycle
        /// Every series, in config order; null before the first cycle or without RunnerOptions::deviceStatus.
        std::shared_ptr<const std::vector<DeviceStatus>> devices;
    };

    /// A copy of the self statistics, the last cycle's outcome and every series' status. Thread-safe.
    Snapshot snapshot() const;

    /// Sets `exporter_config_reload_success` (1 or 0) for the next cycles. Thread-safe.
    void setReloadSuccess(bool ok) { _reloadSuccess = ok ? 1 : 0; }

private:
    struct Plan;

    std::shared_ptr<const std::vector<DeviceStatus>> deviceStatuses() const;
    std::string importBody(double nowUnix, std::uint64_t& samples) const;
    bool push(const std::string& path, const Body& body, std::chrono::steady_clock::time_point deadline);
    std::chrono::steady_clock::time_point stopDeadline() const;
    void saveState();

    DeviceClassConfig _config;
    MetricsBuilder _metrics;
    std::unique_ptr<MetricsSink> _sink;
    std::unique_ptr<ImportShipper> _shipper;
    RunnerOptions _options;
    std::string _groupPath;
    std::vector<std::unique_ptr<Plan>> _plans;
    StopSignal _neverStop; ///< handed to the scrapers when RunnerOptions::stop is null
    Poco::ThreadPool _pool;
    std::atomic<int> _reloadSuccess{-1};
    mutable std::mutex _snapshotMutex;
    Snapshot _snapshot;
};

} // namespace fleetprobe
