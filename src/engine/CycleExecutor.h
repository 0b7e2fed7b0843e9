#pragma once

#include "config/Config.h"
#include "engine/Scraper.h"
#include "engine/StopSignal.h"
#include "util/TrueClock.h"

#include <Poco/ThreadPool.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

class MetricsBuilder;

/// One scraper of a config with every target it probes in a cycle and the series each result goes into.
/// Made from a config by ConfigRunner::plansFor (or by hand in tests); owned by a CycleExecutor.
struct ProbePlan
{
    std::string name; ///< the scraper's registered name (the `scraper` label)
    std::unique_ptr<Scraper> scraper;
    std::vector<ProbeTarget> targets;
    std::vector<std::size_t> series;  ///< the MetricsBuilder series of each target, same order
    std::vector<ProbeResult> results; ///< of the last cycle, one per target (filled by CycleExecutor::run)
};

/// What one cycle measured. Plain data.
struct CycleMeasurement
{
    double timeUnix =
        0; ///< the best true time at the end of the probes (stamp.trueUnix): every result's time
    TrueClock::Stamp stamp; ///< that time with its wall and boot clocks and boot id
    std::size_t rttDiscarded =
        0;                   ///< results whose RTT was outside [0, the target's timeout]: RTT not recorded
    double probeSeconds = 0; ///< the probes and the recording of their results
    std::size_t up = 0, down = 0;
    bool permissionDenied = false; ///< a probe failed for lack of privilege (raw ICMP)
    std::size_t scraperFaults = 0; ///< scrapers that threw (each of their targets counts as reason error)
    std::vector<char> probed;      ///< per job: 1 when its targets were probed in this cycle
    std::vector<char> online;      ///< per job: 1 when any of its probes was up in this cycle
};

/// Runs the cycles of one config: every plan's scraper probes all its targets at once, the scrapers in
/// parallel on the executor's own Poco thread pool (`conf.threads`, the last scraper on the calling thread),
/// then every result is recorded into the MetricsBuilder. Knows nothing of sinks, state or schedules, so a
/// one-job config made in code runs the same way (`/probe`). Owns the plans and the pool; the config and the
/// metrics must outlive it. run() is called by one thread at a time.
class CycleExecutor
{
public:
    /// `metrics` holds the series of `plans`; `config` gives the thread count and names jobs in debug logs.
    CycleExecutor(const DeviceClassConfig& config, std::vector<ProbePlan> plans, MetricsBuilder& metrics);

    /// Waits for the pool's threads.
    ~CycleExecutor();

    CycleExecutor(const CycleExecutor&) = delete;
    CycleExecutor& operator=(const CycleExecutor&) = delete;

    /// Probes every target (a scraper that throws is logged and its targets fail with reason error), then
    /// records every result at one wall time. Each scraper gets the targets whose last result was down (in
    /// this process or restored from the state) before the others. Scrapers see `stop`. With `probeJobs` (one
    /// flag per job), the targets of jobs whose flag is 0 are left out: not probed, not recorded, their last
    /// results kept. Throws when a result cannot be recorded (a programming error of a scraper, such as an
    /// unknown measurement): what was recorded before stays.
    CycleMeasurement run(const StopSignal& stop, const std::vector<char>* probeJobs = nullptr);

    /// The plans, with the results of the last run.
    const std::vector<ProbePlan>& plans() const { return _plans; }

    /// The plans, to hand their scrapers over (ConfigRunner::takeOver); not while run() runs.
    std::vector<ProbePlan>& plans() { return _plans; }

private:
    struct Task;

    /// The targets of `plan` to probe (their jobs' flags in `probed` are 1) in the order the scraper gets
    /// them: those whose last result was down first, so that the timeouts of the likely silent ones start
    /// before the batch has opened its other sockets; nullopt when that is every target in the plan's order.
    std::optional<std::vector<std::size_t>> probeOrder(const ProbePlan& plan,
                                                       const std::vector<char>& probed) const;

    const DeviceClassConfig& _config;
    MetricsBuilder& _metrics;
    std::vector<ProbePlan> _plans;
    std::vector<std::unique_ptr<Task>> _tasks;
    Poco::ThreadPool _pool;
};

} // namespace fleetprobe
