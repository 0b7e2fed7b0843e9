#pragma once

#include "metrics/MetricFamily.h"

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe
{

class StopSignal;
struct SelfStats;

/// The metric families of a finished cycle, built one at a time on demand so that a large fleet's families
/// are never all held, and built again for each retry. Read-only; valid while the cycle is handed to the
/// sinks. Implemented over the config's MetricsBuilder.
class FamilySource
{
public:
    virtual ~FamilySource() = default;

    /// How many families there are (some may have no sample in a given cycle).
    virtual std::size_t familyCount() const = 0;

    /// Fills `family` with family number `index` (0 to familyCount() - 1), in output order; its metrics are
    /// empty when it has no sample now (such a family is not written).
    virtual void buildFamily(std::size_t index, MetricFamily& family) const = 0;

    /// PingExporter's `dev_ping` of the cycle: (job name, average RTT in ms, or value_dev_down when down) for
    /// every job with a ping series.
    virtual std::vector<std::pair<std::string, double>> devPing() const = 0;
};

/// Whose cycle it is: what a sink needs to name its groups and to log. Plain data.
struct CycleGroup
{
    std::string origin;         ///< the config file, at the start of every log line
    std::string promId;         ///< `conf.prom_id`: the `job` of the grouping key
    std::string instance;       ///< the `instance` of the grouping key
    std::size_t jobs = 0;       ///< jobs (devices) in the config
    std::size_t jobsInFile = 0; ///< jobs as the file lists them, repeats included (`exporter_jobs`)
    Labels extraKey;            ///< grouping-key labels after `instance` (DeviceClassConfig::groupLabels)

    /// The main group's path: `/metrics/job/<promId>/instance/<instance>` and then `extraKey`.
    std::string path() const;
    /// `/metrics/job/<name>` and then `extraKey` (PingExporter's own groups).
    std::string pathOf(const std::string& job) const;
};

/// One finished cycle as every sink gets it. The families and the group are read-only. `self` is the
/// config's persisted self record: a sink updates only its own counters there, and the sinks after it read
/// them through `families`, so the order of the sinks is part of their bodies. Valid during the call.
struct FinishedCycle
{
    const FamilySource& families;
    const CycleGroup& group;
    double timeUnix; ///< wall time at the end of the probes: the time of every result, the samples' timestamp
    std::chrono::steady_clock::time_point budgetStart; ///< when the sinks' time began
    std::chrono::milliseconds budget; ///< the time the sinks of this cycle share, from budgetStart
    const StopSignal& stop; ///< a stop request: finish within the sink's grace, start no new attempt
    SelfStats& self;
    double bootSeconds = 0; ///< CLOCK_BOOTTIME when timeUnix was taken (TrueClock::Stamp)
    std::string bootId{};   ///< the boot of bootSeconds; empty: unknown
    bool confirmed = false; ///< timeUnix was confirmed by a receiver's clock or the kernel's sync
};

/// Where finished cycles go (a Pushgateway, VictoriaMetrics, stdout): an independent writer of the cycles of
/// one config, like Icinga 2's writers of check results. Each owns its transport, its share of the budget,
/// its retries and the self counters it updates; what it cannot deliver is its own business (logged,
/// counted, perhaps spooled). Made for one config and called by that config's thread only; not thread-safe.
class Sink
{
public:
    virtual ~Sink() = default;

    /// Once, before the first cycle and after the state was loaded: puts the values the sink stands for
    /// (a spool's size) into `self`, so that the first bodies have them.
    virtual void prepare(SelfStats& self) { (void)self; }

    /// Delivers the cycle within the sink's share of the budget. Returns false when it could not (after its
    /// retries); the sink has logged and counted that. An exception is a fault of the prober: the runner
    /// logs it and counts a cycle error.
    virtual bool deliver(const FinishedCycle& cycle) = 0;

    /// After every sink's deliver(): work that may wait for the others (replaying a backlog), in what is
    /// left of the sink's share. `delivered` is what this sink's deliver() returned for the cycle. Returns
    /// false when it dropped part of the backlog for good (counted and logged by the sink): `--once` then
    /// fails as when a cycle is not delivered.
    virtual bool catchUp(const FinishedCycle& cycle, bool delivered)
    {
        (void)cycle;
        (void)delivered;
        return true;
    }

    /// Between cycles, a few times a second: puts what deliveries in the background counted since the last
    /// call into `self`, so that the prober's own view (`/metrics`, the status page) has it before the next
    /// cycle. Returns true when it changed `self`.
    virtual bool refresh(SelfStats& self)
    {
        (void)self;
        return false;
    }

    /// After the last cycle (loop mode's end): waits for deliveries still in flight, within the stop grace,
    /// and puts what they counted into `self` before the state is saved for the last time.
    virtual void finish(SelfStats& self) { (void)self; }
};

} // namespace fleetprobe
