#pragma once

#include "config/Config.h"
#include "engine/CycleExecutor.h"
#include "engine/ScraperRegistry.h"
#include "engine/StopSignal.h"
#include "metrics/MetricsBuilder.h"
#include "profile/OnlineProfile.h"
#include "sinks/Sink.h"

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fleetprobe
{

class StateStore;

/// Settings a runner takes from the command line.
struct RunnerOptions
{
    std::string instance;                         ///< the `instance` of the grouping key
    std::chrono::milliseconds pushTimeout{10000}; ///< the time the sinks of one cycle share, retries included
    StateStore* state = nullptr; ///< where the cumulative statistics are kept; null: not kept
    StopSignal* stop =
        nullptr; ///< stop requests (scrapers end their waits, sinks their transfers); null: none
    bool deviceStatus = false; ///< keep every series' status in snapshot() (the status page)
};

/// What one cycle did.
struct CycleOutcome
{
    bool pushed = true;            ///< every sink delivered the cycle
    bool permissionDenied = false; ///< a probe failed for lack of privilege (raw ICMP)
    bool failed = false; ///< the prober itself failed in this cycle (counted in exporter_cycle_errors_total)
    std::string stateProblem; ///< why the last save of the state failed (file and reason); empty: saved
    double probeSeconds = 0;
    std::size_t up = 0, down = 0;
};

/// Runs one device-class config: its CycleExecutor (scrapers on the config's thread pool), its cumulative
/// metrics, its sinks, its state and its schedule. Owns all of them. A cycle is: probe, record, save the
/// state, hand the finished cycle to each sink in order. A fault of the prober in a cycle (an exception) is
/// logged and counted, never propagated. runCycle/runOnce/runLoop are called by one thread at a time;
/// snapshot() and setReloadSuccess() from any thread.
class ConfigRunner
{
public:
    /// Creates the config's scrapers from the registry, declares every series, loads the state and prepares
    /// the sinks (in the order they get each cycle; may be empty).
    ConfigRunner(DeviceClassConfig config, const ScraperRegistry& registry,
                 std::vector<std::unique_ptr<Sink>> sinks, RunnerOptions options);
    ~ConfigRunner();

    /// The plans of a config: one scraper per name its jobs use, each with its targets, their series declared
    /// in `metrics`. Throws for an unknown scraper name.
    static std::vector<ProbePlan> plansFor(const DeviceClassConfig& config, const ScraperRegistry& registry,
                                           MetricsBuilder& metrics);

    /// Probes every target of the config at once, records the results, saves the state and hands the cycle
    /// to the sinks. `budget` is the time the sinks share (0: the options' push timeout). Never throws.
    CycleOutcome runCycle(std::chrono::milliseconds budget = std::chrono::milliseconds(0));

    /// One cycle, then the state saved again with what the sinks counted (`--once`); the outcome's
    /// stateProblem says why when that last save failed. Never throws.
    CycleOutcome runOnce();

    /// Runs cycles on a drift-free schedule until `stop` is requested; returns after the cycle in flight,
    /// whose sinks' counters are then saved. Never throws.
    void runLoop(StopSignal& stop);

    /// On a reload: lets each scraper take over what the same scraper of `previous` (the config's previous
    /// version, stopped) keeps from cycle to cycle (Scraper::takeOver). Call before the first cycle.
    void takeOver(ConfigRunner& previous);

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

    /// One device's online profile as the last cycle left it (the status page's heatmap). Plain data.
    struct DeviceProfile
    {
        std::string device; ///< `jobs[].job`
        ProfileSummary summary;
        std::array<double, 168> probability{};   ///< by hour of the week (0: Monday 00:00); -1: no cycle yet
        std::array<std::uint64_t, 168> probes{}; ///< cycles behind each hour
    };

    /// The online profiles of a config's devices and what they are read with. Plain data.
    struct ProfilesSnapshot
    {
        std::shared_ptr<const TimeZone> zone; ///< the zone of the hours (never null)
        double windowThreshold = 0.8;
        bool adaptive = false;
        std::vector<DeviceProfile> devices; ///< in config order
    };

    struct Snapshot
    {
        SelfStats self;
        CycleOutcome lastCycle;
        double lastCycleEndUnix = 0; ///< 0 before the first cycle
        /// Every series, in config order; null before the first cycle or without RunnerOptions::deviceStatus.
        std::shared_ptr<const std::vector<DeviceStatus>> devices;
        /// Every device's profile, in config order; null like `devices`, or when conf.online_profile is off.
        std::shared_ptr<const ProfilesSnapshot> profiles;
        /// The families of the config's metric profile after the last cycle (those with samples), for
        /// `--listen`'s /metrics; null without RunnerOptions::deviceStatus or a profile that adds families.
        std::shared_ptr<const std::vector<MetricFamily>> profileFamilies;
    };

    /// A copy of the self statistics, the last cycle's outcome and every series' status. Thread-safe.
    Snapshot snapshot() const;

    /// Sets `exporter_config_reload_success` (1 or 0) for the next cycles. Thread-safe.
    void setReloadSuccess(bool ok) { _reloadSuccess = ok ? 1 : 0; }

private:
    class Families;

    void runSchedule(StopSignal& stop);
    bool waitRefreshing(StopSignal& stop, std::chrono::steady_clock::time_point until);
    bool deliver(const TrueClock::Stamp& stamp, double timeUnix, std::chrono::milliseconds budget,
                 bool& faulted);
    void cycleFault(const char* where, const char* what);
    std::shared_ptr<const std::vector<DeviceStatus>> deviceStatuses() const;
    std::string saveState();
    /// Writes the profiles if they changed since their last save: at once with `now`, else every 5 minutes.
    void saveProfiles(bool now);
    std::shared_ptr<const ProfilesSnapshot> deviceProfiles() const;

    DeviceClassConfig _config;
    RunnerOptions _options;
    MetricsBuilder _metrics;
    std::unique_ptr<CycleExecutor> _executor;
    std::vector<std::unique_ptr<Sink>> _sinks;
    std::unique_ptr<Families> _families;
    std::unique_ptr<OnlineProfiles> _profiles; ///< null when conf.online_profile is off
    std::chrono::steady_clock::time_point _profilesSaved{};
    bool _profilesChanged = true; ///< the profiles changed since they were last saved (or were never saved)
    CycleGroup _group;
    std::string _groupPath;
    StopSignal _neverStop; ///< handed to the scrapers and sinks when RunnerOptions::stop is null
    std::atomic<int> _reloadSuccess{-1};
    std::uint64_t _failedSavesInRow = 0; ///< failed state saves since the last one that worked
    std::string _lastSaveProblem;        ///< logged once per run of failures with the same reason
    mutable std::mutex _snapshotMutex;
    Snapshot _snapshot;
};

} // namespace fleetprobe
