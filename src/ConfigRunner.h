#pragma once

#include "Config.h"
#include "MetricsBuilder.h"
#include "PushClient.h"
#include "ScraperRegistry.h"

#include <Poco/ThreadPool.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fleetprobe
{

/// A stop request shared by the loops of a process. Thread-safe.
class StopSignal
{
public:
    /// Asks every waiter to stop; wakes them at once.
    void request();
    /// True once stop was requested.
    bool requested() const;
    /// Waits until `deadline` or a stop request; returns true when stop was requested.
    bool waitUntil(std::chrono::steady_clock::time_point deadline);

private:
    mutable std::mutex _mutex;
    std::condition_variable _cv;
    bool _stop = false;
};

/// Settings a runner takes from the command line.
struct RunnerOptions
{
    std::string instance;                            ///< the `instance` of the grouping key
    std::chrono::milliseconds pushTimeout{10000};    ///< total limit of the pushes of one cycle
};

/// What one cycle did.
struct CycleOutcome
{
    bool pushed = true;           ///< every push of the cycle succeeded
    bool permissionDenied = false; ///< a probe failed for lack of privilege (raw ICMP)
    double probeSeconds = 0;
    std::size_t up = 0, down = 0;
};

/// Runs one device-class config: its scrapers on its own Poco thread pool (`conf.threads`), its cumulative
/// metrics, its push sink, its schedule. Owns all of them. runCycle/runLoop are called by one thread at a time.
class ConfigRunner
{
public:
    /// Creates the config's scrapers from the registry and declares every series.
    ConfigRunner(DeviceClassConfig config, const ScraperRegistry& registry, std::unique_ptr<MetricsSink> sink,
                 RunnerOptions options);
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

private:
    struct Plan;

    bool push(const std::string& path, const std::string& body, std::chrono::steady_clock::time_point deadline);

    DeviceClassConfig _config;
    MetricsBuilder _metrics;
    std::unique_ptr<MetricsSink> _sink;
    RunnerOptions _options;
    std::string _groupPath;
    std::vector<std::unique_ptr<Plan>> _plans;
    Poco::ThreadPool _pool;
};

} // namespace fleetprobe
