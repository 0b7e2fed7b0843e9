#include "engine/ConfigRunner.h"

#include "engine/CycleScheduler.h"
#include "metrics/GroupingKey.h"
#include "metrics/MetricProfile.h"
#include "metrics/TextSerializer.h"
#include "store/StateStore.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <algorithm>
#include <cmath>

namespace fleetprobe
{

/// The sinks' read-only view of the runner's metrics: fleetprobe's own families, then those of the config's
/// metric profile (null: none).
class ConfigRunner::Families : public FamilySource
{
public:
    Families(const MetricsBuilder& metrics, const MetricProfile* profile)
        : _metrics(metrics), _profile(profile)
    {
    }

    std::size_t familyCount() const override
    {
        return _metrics.familyCount() + (_profile ? _profile->familyCount() : 0);
    }
    void buildFamily(std::size_t index, MetricFamily& family) const override
    {
        const std::size_t own = _metrics.familyCount();
        if (index < own)
            _metrics.buildFamily(index, family);
        else
            _profile->buildFamily(
                index - own, [this](const auto& visit) { _metrics.forEachProfileSeries(visit); }, family);
    }
    std::vector<std::pair<std::string, double>> devPing() const override { return _metrics.devPing(); }

private:
    const MetricsBuilder& _metrics;
    const MetricProfile* _profile;
};

namespace
{

std::chrono::milliseconds seconds(double s)
{
    return std::chrono::milliseconds(static_cast<long long>(std::llround(s * 1000.0)));
}

} // namespace

std::vector<ProbePlan> ConfigRunner::plansFor(const DeviceClassConfig& config,
                                              const ScraperRegistry& registry, MetricsBuilder& metrics)
{
    std::vector<ProbePlan> plans;
    const auto defaultTimeout = seconds(config.timeoutSeconds);
    std::size_t scraperUses = 0; // a lower bound of the series (a job's port scraper may have several)
    for (const auto& job : config.jobs)
        scraperUses += job.metrics.size();
    metrics.reserveSeries(scraperUses);
    for (std::size_t j = 0; j < config.jobs.size(); ++j)
    {
        const JobConfig& job = config.jobs[j];
        for (const auto& name : job.metrics)
        {
            const ScraperDescriptor* descriptor = registry.find(name);
            if (!descriptor)
                throw std::out_of_range("no scraper named \"" + name + "\"");
            auto it =
                std::find_if(plans.begin(), plans.end(), [&](const ProbePlan& p) { return p.name == name; });
            if (it == plans.end())
            {
                plans.push_back(ProbePlan{name, descriptor->create(), {}, {}, {}});
                it = plans.end() - 1;
            }
            const auto settings = job.settings.find(name);
            for (auto& target : descriptor->targets(
                     j, job, settings == job.settings.end() ? nullptr : settings->second, defaultTimeout))
            {
                it->series.push_back(metrics.addSeries(j, name, target.labels));
                it->targets.push_back(std::move(target));
            }
        }
    }
    return plans;
}

ConfigRunner::ConfigRunner(DeviceClassConfig config, const ScraperRegistry& registry,
                           std::vector<std::unique_ptr<Sink>> sinks, RunnerOptions options)
    : _config(std::move(config)), _options(std::move(options)), _metrics(_config, registry.measurements()),
      _sinks(std::move(sinks)),
      _families(std::make_unique<Families>(_metrics, MetricProfile::find(_config.compat)))
{
    _executor = std::make_unique<CycleExecutor>(_config, plansFor(_config, registry, _metrics), _metrics);
    _group = CycleGroup{_config.file,
                        _config.promId,
                        _options.instance,
                        _config.jobs.size(),
                        _config.jobsInFile > 0 ? _config.jobsInFile : _config.jobs.size(),
                        _config.groupLabels};
    _groupPath = _group.path();
    if (_config.onlineProfile)
    {
        std::vector<std::string> names;
        for (const auto& job : _config.jobs)
            names.push_back(job.name);
        _profiles = std::make_unique<OnlineProfiles>(_config.profile, std::move(names));
        _metrics.setProfiles(_profiles.get());
    }
    if (_options.state && _profiles)
    {
        std::string problem;
        // Read in place: a large fleet's profiles are not held twice.
        const auto header = _options.state->loadProfilesInto(
            _config.stateId(),
            [this](const std::string& zone, const std::string& device)
            { return _profiles->restoreSlot(zone, device); },
            problem);
        if (!problem.empty())
            log().error(_config.file + ": " + problem);
        const std::size_t restored = _profiles->finishRestore(header.has_value(), unixNow());
        if (header)
        {
            if (restored == 0 && header->devices > 0 && header->zone != _profiles->zone().name())
                log().warning(_config.file + ": online profiles were learned in time zone " + header->zone +
                              ", conf.timezone is now " + _profiles->zone().name() + ": they start again");
            else
                log().information(_config.file + ": online profiles restored for " +
                                  std::to_string(restored) + " devices");
        }
    }
    if (_options.state)
    {
        std::string problem;
        auto state = _options.state->load(_config.stateId(), problem);
        if (!problem.empty())
            log().error(_config.file + ": " + problem);
        if (state)
        {
            const std::size_t restored = _metrics.importState(*state);
            const auto saved = static_cast<std::size_t>(
                std::count_if(state->series.begin(), state->series.end(),
                              [](const auto& s) { return !MetricsBuilder::isAggregateKey(s.first); }));
            log().information(_config.file + ": state restored for " + std::to_string(restored) +
                              " series (" + std::to_string(saved - std::min(restored, saved)) +
                              " no longer configured, dropped)");
        }
    }
    _metrics.self().stateEnabled = _options.state != nullptr;
    for (auto& sink : _sinks)
        sink->prepare(_metrics.self());
}

ConfigRunner::~ConfigRunner()
{
    _sinks.clear(); // first: a sink's background push may still look at the stop signals below
}

void ConfigRunner::takeOver(ConfigRunner& previous)
{
    for (auto& plan : _executor->plans())
        for (auto& old : previous._executor->plans())
            if (old.name == plan.name && old.scraper && plan.scraper)
                plan.scraper->takeOver(*old.scraper);
}

std::string ConfigRunner::saveState()
{
    if (!_options.state)
        return {};
    std::string problem;
    try
    {
        _options.state->save(_config.stateId(), _metrics.rttBuckets(), _metrics.self(),
                             [this](const auto& visit) { _metrics.forEachSeries(visit); });
        const std::string clockProblem = TrueClock::process().save(_options.state->directory() + "/clock");
        if (!clockProblem.empty())
            log().warning(_config.file + ": cannot save the clock's state: " + clockProblem);
    }
    catch (const std::exception& e)
    {
        problem = e.what();
    }
    try
    {
        if (problem.empty())
        {
            if (_failedSavesInRow > 0)
                log().information(_config.file + ": state saved again to " +
                                  _options.state->pathFor(_config.promId) + " after " +
                                  std::to_string(_failedSavesInRow) + " failed save(s)");
            _failedSavesInRow = 0;
            _lastSaveProblem.clear();
            return {};
        }
        ++_metrics.self().stateSaveFailures;
        ++_failedSavesInRow;
        // Once per run of failures (and again when the reason changes), not at every cycle of a full disk.
        if (problem != _lastSaveProblem)
            log().error(_config.file + ": cannot save state: " + problem +
                        "; the counters go on in memory and are saved by the next cycle that can "
                        "(exporter_state_save_failures_total counts the failed saves)");
        _lastSaveProblem = problem;
    }
    catch (...)
    {
    }
    return problem;
}

void ConfigRunner::saveProfiles(bool now)
{
    if (!_options.state || !_profiles || !_profilesChanged)
        return; // (--once saves after the cycle and again after the sinks, which do not change the profiles)
    // A profile changes slowly: in loop mode it is written every few minutes (and at the end), not each
    // cycle.
    const auto t = std::chrono::steady_clock::now();
    if (!now && _profilesSaved.time_since_epoch().count() != 0 &&
        t - _profilesSaved < std::chrono::minutes(5))
        return;
    try
    {
        _options.state->saveProfiles(_config.stateId(), _profiles->view());
        _profilesSaved = t;
        _profilesChanged = false;
    }
    catch (const std::exception& e)
    {
        log().error(_config.file + ": cannot save the online profiles: " + e.what());
    }
}

void ConfigRunner::cycleFault(const char* where, const char* what)
{
    try
    {
        log().error(
            _config.file + ": " + where + " failed: " + what +
            "; the cycle is counted in exporter_cycle_errors_total, the config goes on at its next tick");
    }
    catch (...)
    {
    }
}

namespace
{

/// The clocks' self-metrics as the process's TrueClock and the kernel see them now.
void clockStats(SelfStats& self)
{
    const TrueClock& clock = TrueClock::process();
    const KernelClockSync kernel = TrueClock::kernelSync();
    self.clockKnown = clock.knowsTrueTime();
    self.clockSkewSeconds = clock.skewSeconds();
    self.clockSynchronized = kernel.synchronized ? 1 : 0;
    self.clockMaxErrorSeconds = kernel.maxErrorSeconds;
    self.clockSteps = clock.steps();
}

} // namespace

bool ConfigRunner::deliver(const TrueClock::Stamp& stamp, double timeUnix, std::chrono::milliseconds budget,
                           bool& faulted)
{
    const StopSignal& stop = _options.stop ? *_options.stop : _neverStop;
    const FinishedCycle cycle{*_families,   _group,         timeUnix,        std::chrono::steady_clock::now(),
                              budget,       stop,           _metrics.self(), stamp.bootSeconds,
                              stamp.bootId, stamp.confirmed};
    // Each sink on its own: one that throws is a fault of this cycle, and the others still get it.
    const auto guarded = [this, &faulted](Sink& sink, auto&& call)
    {
        try
        {
            return call(sink);
        }
        catch (const std::exception& e)
        {
            cycleFault("a sink", e.what());
        }
        catch (...)
        {
            cycleFault("a sink", "unknown exception");
        }
        faulted = true;
        return false;
    };
    std::vector<char> delivered(_sinks.size(), 0);
    bool all = true;
    for (std::size_t i = 0; i < _sinks.size(); ++i)
    {
        clockStats(_metrics.self()); // what the sinks before this one learned of the receivers' clocks
        delivered[i] =
            static_cast<char>(guarded(*_sinks[i], [&cycle](Sink& sink) { return sink.deliver(cycle); }));
        all = all && delivered[i];
    }
    for (std::size_t i = 0; i < _sinks.size(); ++i)
        all = guarded(*_sinks[i],
                      [&cycle, done = delivered[i] != 0](Sink& sink) { return sink.catchUp(cycle, done); }) &&
              all;
    return all;
}

CycleOutcome ConfigRunner::runCycle(std::chrono::milliseconds budget)
{
    CycleOutcome outcome;
    bool measured = false;
    bool counted = false;
    bool errorCounted = false;
    const auto countError = [&]
    {
        outcome.failed = true;
        if (!errorCounted)
            ++_metrics.self().cycleErrors;
        errorCounted = true;
    };
    const auto fault = [&](const char* what)
    {
        cycleFault("the cycle", what);
        outcome.pushed = false;
        if (!counted)
            ++_metrics.self().cycles; // a failed cycle is a cycle run, too
        countError();
    };
    try
    {
        if (log().debug())
            log().debug(_config.file + ": cycle starts");
        const StopSignal& stop = _options.stop ? *_options.stop : _neverStop;
        std::vector<char> probeJobs;
        if (_profiles)
        {
            probeJobs = _profiles->plan(unixNow()); // (adaptive probing counts the cycles it skips)
            _profilesChanged = true;
        }
        const CycleMeasurement m = _executor->run(stop, _profiles ? &probeJobs : nullptr);
        if (_profiles)
            _profiles->record(m.probed, m.online, m.stamp.wallUnix); // hours of the local clock, as plan()
        measured = true;
        outcome.up = m.up;
        outcome.down = m.down;
        outcome.permissionDenied = m.permissionDenied;
        outcome.probeSeconds = m.probeSeconds;
        SelfStats& self = _metrics.self();
        ++self.cycles;
        counted = true;
        self.configReloadSuccess = _reloadSuccess.load();
        self.lastDurationSeconds = m.probeSeconds;
        self.rttDiscarded += m.rttDiscarded;
        clockStats(self);
        if (m.scraperFaults > 0)
            countError();
        // The state first, so that a slow sink never holds back what was measured; the sinks' counters go
        // with the next save (runOnce and the end of runLoop save once more).
        outcome.stateProblem = saveState();
        saveProfiles(false);
        bool sinkFault = false;
        outcome.pushed =
            deliver(m.stamp, m.timeUnix, budget.count() > 0 ? budget : _options.pushTimeout, sinkFault);
        if (sinkFault)
            countError();
    }
    catch (const std::exception& e)
    {
        fault(e.what());
    }
    catch (...)
    {
        fault("unknown exception");
    }
    try
    {
        std::shared_ptr<const std::vector<DeviceStatus>> devices;
        std::shared_ptr<const ProfilesSnapshot> profiles;
        std::shared_ptr<std::vector<MetricFamily>> profile;
        if (_options.deviceStatus && measured)
        {
            devices = deviceStatuses();
            profiles = deviceProfiles();
            const std::size_t own = _metrics.familyCount();
            if (_families->familyCount() > own)
            {
                profile = std::make_shared<std::vector<MetricFamily>>();
                for (std::size_t i = own; i < _families->familyCount(); ++i)
                {
                    MetricFamily f;
                    _families->buildFamily(i, f);
                    if (!f.metrics.empty())
                        profile->push_back(std::move(f));
                }
            }
        }
        {
            std::lock_guard<std::mutex> lock(_snapshotMutex);
            _snapshot.self = _metrics.self();
            _snapshot.lastCycle = outcome;
            _snapshot.lastCycleEndUnix = unixNow();
            if (devices)
                _snapshot.devices = std::move(devices);
            if (profiles)
                _snapshot.profiles = std::move(profiles);
            if (profile)
                _snapshot.profileFamilies = std::move(profile);
        }
        if (log().debug())
            log().debug(_config.file + ": cycle " + std::to_string(_metrics.self().cycles) + ": " +
                        std::to_string(outcome.up) + " up, " + std::to_string(outcome.down) +
                        " down, probes " + std::to_string(outcome.probeSeconds) + " s, push " +
                        (outcome.pushed ? "ok" : "failed"));
    }
    catch (const std::exception& e)
    {
        cycleFault("the status snapshot", e.what());
        countError();
    }
    return outcome;
}

CycleOutcome ConfigRunner::runOnce()
{
    CycleOutcome outcome = runCycle();
    outcome.stateProblem = saveState();
    saveProfiles(true);
    if (!outcome.stateProblem.empty())
    {
        try
        {
            log().error(_config.file + ": the state of this run was not saved (" + outcome.stateProblem +
                        "); its counters are lost and the next run starts from the state file as it was; "
                        "exit code 4");
        }
        catch (...)
        {
        }
    }
    return outcome;
}

std::shared_ptr<const ConfigRunner::ProfilesSnapshot> ConfigRunner::deviceProfiles() const
{
    if (!_profiles)
        return nullptr;
    auto out = std::make_shared<ProfilesSnapshot>();
    out->zone = _config.profile.zone ? _config.profile.zone : TimeZone::load("UTC");
    out->windowThreshold = _config.profile.windowThreshold;
    out->adaptive = _config.profile.adaptive;
    out->devices.resize(_profiles->size());
    for (std::size_t j = 0; j < _profiles->size(); ++j)
    {
        DeviceProfile& d = out->devices[j];
        d.device = _config.jobs[j].name;
        d.summary = _profiles->summaries()[j];
        const OnlineProfile& p = _profiles->profile(j);
        for (std::size_t h = 0; h < p.cells.size(); ++h)
        {
            d.probability[h] = p.cells[h].probability().value_or(-1);
            d.probes[h] = p.cells[h].probes;
        }
    }
    return out;
}

std::shared_ptr<const std::vector<ConfigRunner::DeviceStatus>> ConfigRunner::deviceStatuses() const
{
    // Rows in config order: a job's series together, its scrapers in the order the job names them.
    const std::vector<ProbePlan>& plans = _executor->plans();
    std::vector<std::pair<std::size_t, std::size_t>> order; // (plan, target)
    for (std::size_t p = 0; p < plans.size(); ++p)
        for (std::size_t t = 0; t < plans[p].targets.size(); ++t)
            order.emplace_back(p, t);
    std::stable_sort(
        order.begin(), order.end(),
        [&plans](const auto& a, const auto& b)
        { return plans[a.first].targets[a.second].jobIndex < plans[b.first].targets[b.second].jobIndex; });
    auto out = std::make_shared<std::vector<DeviceStatus>>();
    out->reserve(order.size());
    for (const auto& [p, t] : order)
    {
        const ProbePlan& plan = plans[p];
        const ProbeResult& r = plan.results[t];
        const SeriesStats& stats = _metrics.stats(plan.series[t]);
        const JobConfig& job = _config.jobs[plan.targets[t].jobIndex];
        DeviceStatus d;
        d.device = job.name;
        d.address = job.address;
        d.scraper = plan.name;
        d.target = plan.targets[t].labels;
        d.labels = _config.labels;
        for (const auto& label : job.labels)
        {
            auto same = std::find_if(d.labels.begin(), d.labels.end(),
                                     [&](const auto& l) { return l.first == label.first; });
            if (same != d.labels.end())
                same->second = label.second;
            else
                d.labels.push_back(label);
        }
        d.up = r.up;
        if (!r.up)
        {
            d.reason = failureReasonName(r.reason);
            d.detail = r.detail;
        }
        else if (r.rttMeasured)
            d.lastRttSeconds = r.rttSeconds;
        d.lastSeenUnix = stats.lastSeenUnix;
        d.stateChanges = stats.stateChanges;
        out->push_back(std::move(d));
    }
    return out;
}

ConfigRunner::Snapshot ConfigRunner::snapshot() const
{
    std::lock_guard<std::mutex> lock(_snapshotMutex);
    return _snapshot;
}

void ConfigRunner::runLoop(StopSignal& stop)
{
    while (!stop.requested())
    {
        try
        {
            runSchedule(stop);
        }
        catch (const std::exception& e)
        {
            cycleFault("the schedule", e.what());
            ++_metrics.self().cycleErrors;
        }
        catch (...)
        {
            cycleFault("the schedule", "unknown exception");
            ++_metrics.self().cycleErrors;
        }
        // Only after a fault outside the cycles: a fresh schedule, from the next interval.
        if (!stop.requested())
            stop.waitUntil(std::chrono::steady_clock::now() +
                           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(_config.intervalSeconds)));
    }
    for (auto& sink : _sinks)
    {
        try
        {
            sink->finish(_metrics.self());
        }
        catch (const std::exception& e)
        {
            cycleFault("a sink's finish", e.what());
        }
    }
    saveState();
    saveProfiles(true);
}

bool ConfigRunner::waitRefreshing(StopSignal& stop, std::chrono::steady_clock::time_point until)
{
    // A push in the background may end while the loop waits: what it counted goes into the snapshot (the
    // prober's /metrics) now, not only with the next cycle.
    using Clock = std::chrono::steady_clock;
    for (;;)
    {
        if (stop.waitUntil(std::min(until, Clock::now() + std::chrono::milliseconds(250))))
            return true;
        if (Clock::now() >= until)
            return false;
        bool changed = false;
        for (auto& sink : _sinks)
        {
            try
            {
                changed = sink->refresh(_metrics.self()) || changed;
            }
            catch (const std::exception& e)
            {
                cycleFault("a sink's refresh", e.what());
            }
        }
        if (changed)
        {
            std::lock_guard<std::mutex> lock(_snapshotMutex);
            _snapshot.self = _metrics.self();
        }
    }
}

void ConfigRunner::runSchedule(StopSignal& stop)
{
    using Clock = std::chrono::steady_clock;
    const auto interval =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(_config.intervalSeconds));
    CycleScheduler schedule(Clock::now(), interval);
    // Missed ticks (an overrun, or a late wake-up after SIGSTOP or a frozen host) are counted and skipped.
    const auto countMissed = [this](const std::string& why, std::uint64_t skipped)
    {
        ++_metrics.self().overruns;
        {
            std::lock_guard<std::mutex> lock(_snapshotMutex);
            _snapshot.self.overruns = _metrics.self().overruns;
        }
        log().warning(_config.file + ": " + why + "; " + std::to_string(skipped) + " tick(s) skipped");
        saveState();
    };
    while (!stop.requested())
    {
        const auto now = Clock::now();
        const double late = std::chrono::duration<double>(now - schedule.tickStart()).count();
        const auto woke = schedule.wake(now);
        if (woke.overrun)
        {
            countMissed("woke up " + TextSerializer::formatValue(std::round(late * 10) / 10) +
                            " s after its tick (was the process stopped?)",
                        woke.skipped);
            if (stop.waitUntil(woke.start))
                break;
            continue;
        }
        const auto nextTick = schedule.tickStart() + interval;
        auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(nextTick - Clock::now());
        budget = std::clamp(budget, std::chrono::milliseconds(1000), _options.pushTimeout);
        runCycle(budget);
        const auto next = schedule.advance(Clock::now());
        if (next.overrun)
            countMissed("cycle overran the interval of " +
                            TextSerializer::formatValue(_config.intervalSeconds) + " s",
                        next.skipped);
        if (waitRefreshing(stop, next.start))
            break;
    }
}

} // namespace fleetprobe
