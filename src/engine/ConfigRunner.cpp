#include "engine/ConfigRunner.h"

#include "engine/CycleScheduler.h"
#include "metrics/GroupingKey.h"
#include "metrics/TextSerializer.h"
#include "sinks/GzipWriter.h"
#include "sinks/ImportShipper.h"
#include "store/Spool.h"
#include "store/StateStore.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <Poco/Exception.h>
#include <Poco/Runnable.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace fleetprobe
{

/// One scraper of the config with its targets for the cycle; runs on a pool thread.
struct ConfigRunner::Plan : public Poco::Runnable
{
    std::string name; ///< the scraper's registered name
    std::unique_ptr<Scraper> scraper;
    std::vector<ProbeTarget> targets;
    std::vector<std::size_t> series;
    std::vector<ProbeResult> results;
    const StopSignal* stop = nullptr;

    void run() override
    {
        try
        {
            results = scraper->probe(targets, *stop);
        }
        catch (const std::exception& e)
        {
            results.clear();
            log().error("scraper %s failed: %s", name, std::string(e.what()));
        }
        if (results.size() != targets.size())
        {
            results.assign(targets.size(), ProbeResult::failure(FailureReason::Error, "scraper failed"));
        }
    }
};

namespace
{

std::chrono::milliseconds seconds(double s)
{
    return std::chrono::milliseconds(static_cast<long long>(std::llround(s * 1000.0)));
}

} // namespace

ConfigRunner::ConfigRunner(DeviceClassConfig config, const ScraperRegistry& registry,
                           std::unique_ptr<MetricsSink> sink, RunnerOptions options,
                           std::unique_ptr<ImportSink> importer)
    : _config(std::move(config)), _metrics(_config, registry.measurements()), _sink(std::move(sink)),
      _options(std::move(options)), _pool(1, std::max(1, _config.threads))
{
    _groupPath = GroupingKey::path(_config.promId, {{"instance", _options.instance}});
    const auto defaultTimeout = seconds(_config.timeoutSeconds);
    for (std::size_t j = 0; j < _config.jobs.size(); ++j)
    {
        const JobConfig& job = _config.jobs[j];
        for (const auto& name : job.metrics)
        {
            auto it = std::find_if(_plans.begin(), _plans.end(),
                                   [&](const std::unique_ptr<Plan>& p) { return p->name == name; });
            const ScraperDescriptor& descriptor = *registry.find(name);
            if (it == _plans.end())
            {
                auto plan = std::make_unique<Plan>();
                plan->name = name;
                plan->scraper = descriptor.create();
                plan->stop = _options.stop ? _options.stop : &_neverStop;
                _plans.push_back(std::move(plan));
                it = _plans.end() - 1;
            }
            const auto settings = job.settings.find(name);
            for (auto& target : descriptor.targets(
                     j, job, settings == job.settings.end() ? nullptr : settings->second, defaultTimeout))
            {
                (*it)->series.push_back(_metrics.addSeries(j, name, target.labels));
                (*it)->targets.push_back(std::move(target));
            }
        }
    }
    if (_options.state)
    {
        std::string problem;
        auto state = _options.state->load(_config.promId, problem);
        if (!problem.empty())
            log().error(_config.file + ": " + problem);
        if (state)
        {
            const std::size_t restored = _metrics.importState(*state);
            log().information(
                _config.file + ": state restored for " + std::to_string(restored) + " series (" +
                std::to_string(state->series.size() - std::min(restored, state->series.size())) +
                " no longer configured, dropped)");
        }
    }
    if (auto* client = dynamic_cast<PushgatewayClient*>(_sink.get()))
        client->setAbortCheck([this] { return std::chrono::steady_clock::now() > stopDeadline(); });
    if (importer)
    {
        if (auto* client = dynamic_cast<VictoriaMetricsClient*>(importer.get()))
            client->setAbortCheck([this] { return std::chrono::steady_clock::now() > stopDeadline(); });
        std::unique_ptr<Spool> spool;
        if (!_options.spoolRoot.empty())
        {
            const std::string dir = _options.spoolRoot + "/" + GroupingKey::base64Url(_config.promId);
            try
            {
                spool = std::make_unique<Spool>(dir, _options.spoolMaxBytes, _options.spoolFsync);
            }
            catch (const std::exception& e)
            {
                log().error(_config.file + ": no spool (" + e.what() +
                            "): cycles that cannot be imported are lost");
            }
        }
        else
            log().warning(_config.file +
                          ": no state directory, so no spool: cycles that cannot be imported are "
                          "lost");
        _shipper = std::make_unique<ImportShipper>(
            std::move(importer), std::move(spool),
            Labels{{"job", _config.promId}, {"instance", _options.instance}}, _config.file);
        _shipper->updateStats(_metrics.self());
    }
}

std::string ConfigRunner::importBody(double nowUnix, std::uint64_t& samples) const
{
    const auto ms = static_cast<std::int64_t>(std::llround(nowUnix * 1000.0));
    GzipWriter gzip;
    std::string out;
    MetricFamily family;
    std::string piece;
    samples = 0;
    for (std::size_t i = 0; i < _metrics.familyCount(); ++i)
    {
        _metrics.buildFamily(i, family);
        if (family.metrics.empty())
            continue;
        TextSerializer::serializeHeader(piece, family);
        for (std::size_t from = 0; from < family.metrics.size(); from += 256)
        {
            samples += TextSerializer::serializeMetrics(piece, family, from, from + 256, ms);
            if (piece.size() >= Body::pieceBytes)
            {
                gzip.write(piece, out);
                piece.clear();
            }
        }
    }
    gzip.write(piece, out);
    gzip.finish(out);
    return out;
}

std::chrono::steady_clock::time_point ConfigRunner::stopDeadline() const
{
    if (!_options.stop || !_options.stop->requested())
        return std::chrono::steady_clock::time_point::max();
    return _options.stop->requestedAt() + _options.stopGrace;
}

void ConfigRunner::saveState()
{
    if (!_options.state)
        return;
    try
    {
        _options.state->save(_config.promId, _metrics.rttBuckets(), _metrics.self(),
                             [this](const auto& visit) { _metrics.forEachSeries(visit); });
    }
    catch (const std::exception& e)
    {
        log().error(_config.file + ": cannot save state: " + e.what());
    }
}

ConfigRunner::~ConfigRunner()
{
    _pool.joinAll();
}

bool ConfigRunner::push(const std::string& path, const Body& body,
                        std::chrono::steady_clock::time_point deadline)
{
    using namespace std::chrono;
    SelfStats& self = _metrics.self();
    auto delay = _options.retryDelay;
    PushOutcome outcome;
    for (int attempt = 1;; ++attempt)
    {
        const auto limit = std::min(deadline, stopDeadline());
        const auto left = duration_cast<milliseconds>(limit - steady_clock::now());
        if (left.count() <= 0)
        {
            if (attempt == 1)
                outcome.message = "no time left in the cycle's push budget";
            break;
        }
        outcome = _sink->put(path, body, left);
        if (outcome.ok())
        {
            ++self.pushOutcomes[static_cast<std::size_t>(PushOutcome::Result::Ok)];
            self.lastPushSuccessUnix = unixNow();
            return true;
        }
        if (outcome.result == PushOutcome::Result::Http4xx)
            break; // the body is refused: sending it again cannot help
        log().warning(_config.file + ": push to " + path + " failed (attempt " + std::to_string(attempt) +
                      ", " + outcome.resultName() + "): " + outcome.message);
        // Wait before the next attempt, but not past the budget; no new attempt after a stop request.
        const auto wake = steady_clock::now() + delay;
        if (wake >= deadline)
            break;
        if (_options.stop && _options.stop->waitUntil(wake))
            break;
        if (!_options.stop)
            std::this_thread::sleep_until(wake);
        delay = std::min(delay * 2, _options.retryDelayMax);
    }
    ++self.pushOutcomes[static_cast<std::size_t>(outcome.result)];
    ++self.pushFailures;
    log().warning(_config.file + ": push to " + path + " failed (" + outcome.resultName() +
                  "): " + outcome.message + "; the counters are kept and go with the next push");
    return false;
}

CycleOutcome ConfigRunner::runCycle(std::chrono::milliseconds pushTimeout)
{
    CycleOutcome outcome;
    const auto start = std::chrono::steady_clock::now();

    if (log().debug())
        log().debug(_config.file + ": cycle starts");
    // Every scraper probes its whole batch at once; the last one runs on this thread.
    for (std::size_t i = 0; i < _plans.size(); ++i)
    {
        bool started = false;
        if (i + 1 < _plans.size())
        {
            try
            {
                _pool.start(*_plans[i]);
                started = true;
            }
            catch (const Poco::NoThreadAvailableException&)
            {
            }
        }
        if (!started)
            _plans[i]->run();
    }
    _pool.joinAll();

    if (log().debug())
        log().debug(_config.file + ": probes done");
    const double now = unixNow();
    for (auto& plan : _plans)
        for (std::size_t t = 0; t < plan->targets.size(); ++t)
        {
            const ProbeResult& r = plan->results[t];
            _metrics.record(plan->series[t], r, now);
            if (!r.up && log().debug())
                log().debug(_config.file + ": " + plan->name + " " +
                            _config.jobs[plan->targets[t].jobIndex].name + ": " +
                            failureReasonName(r.reason) + (r.detail.empty() ? "" : " (" + r.detail + ")"));
            if (r.up)
                ++outcome.up;
            else
                ++outcome.down;
            if (r.reason == FailureReason::Permission)
                outcome.permissionDenied = true;
        }
    outcome.probeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    SelfStats& self = _metrics.self();
    ++self.cycles;
    self.configReloadSuccess = _reloadSuccess.load();
    self.lastDurationSeconds = outcome.probeSeconds;

    const auto pushStart = std::chrono::steady_clock::now();
    const auto budget = pushTimeout.count() > 0 ? pushTimeout : _options.pushTimeout;
    const auto deadline = pushStart + budget;
    bool imported = true;
    if (_shipper)
    {
        // The live cycle first, within half the budget; the spool's replay after the push, until three
        // quarters of the budget at most, so that a backlog never makes a live cycle late.
        std::uint64_t samples = 0;
        std::string gzipText = importBody(now, samples);
        imported =
            _shipper->deliver(now, samples, std::move(gzipText), pushStart + budget / 2, _metrics.self());
    }
    // The body is produced while it is sent: a family at a time, a few hundred series per step.
    const Body body(
        [this]
        {
            struct Pass
            {
                std::size_t nextFamily = 0;
                MetricFamily family;
                std::size_t nextMetric = 0;
                bool inFamily = false;
            };
            auto pass = std::make_shared<Pass>();
            return Body::Producer(
                [this, pass](std::string& piece)
                {
                    while (piece.size() < Body::pieceBytes)
                    {
                        if (!pass->inFamily)
                        {
                            if (pass->nextFamily >= _metrics.familyCount())
                                return !piece.empty();
                            _metrics.buildFamily(pass->nextFamily++, pass->family);
                            if (pass->family.metrics.empty())
                                continue; // a family without samples is not written
                            TextSerializer::serializeHeader(piece, pass->family);
                            pass->nextMetric = 0;
                            pass->inFamily = true;
                        }
                        const std::size_t to = std::min(pass->nextMetric + 256, pass->family.metrics.size());
                        TextSerializer::serializeMetrics(piece, pass->family, pass->nextMetric, to);
                        pass->nextMetric = to;
                        pass->inFamily = to < pass->family.metrics.size();
                    }
                    return true;
                });
        });
    outcome.pushed = _sink ? push(_groupPath, body, deadline) : true;

    if (_sink && _config.compatPingExporter && _sink->wantsCompatGroups())
    {
        for (const auto& [job, value] : _metrics.devPing())
        {
            MetricFamily f{"dev_ping", "Ping to device (ms)", MetricType::Gauge, {Metric::of(value)}};
            outcome.pushed = push(GroupingKey::path(job), Body(TextSerializer::serialize({f})), deadline) &&
                             outcome.pushed;
        }
        std::vector<MetricFamily> own = {{"exporter_duration",
                                          "Duration of the last cycle (s)",
                                          MetricType::Gauge,
                                          {Metric::of(self.lastDurationSeconds)}},
                                         {"exporter_jobs",
                                          "Jobs in the config",
                                          MetricType::Gauge,
                                          {Metric::of(static_cast<double>(_config.jobs.size()))}}};
        outcome.pushed =
            push(GroupingKey::path(_config.promId), Body(TextSerializer::serialize(own)), deadline) &&
            outcome.pushed;
    }
    if (_shipper)
    {
        if (imported) // else the link is down: the spool waits for a cycle that gets through
            _shipper->replay(std::min(deadline, pushStart + budget / 2 + budget / 4), _metrics.self());
        outcome.pushed = outcome.pushed && imported;
    }
    saveState();
    std::shared_ptr<const std::vector<DeviceStatus>> devices;
    if (_options.deviceStatus)
        devices = deviceStatuses();
    {
        std::lock_guard<std::mutex> lock(_snapshotMutex);
        _snapshot.self = _metrics.self();
        _snapshot.lastCycle = outcome;
        _snapshot.lastCycleEndUnix = unixNow();
        if (devices)
            _snapshot.devices = std::move(devices);
    }
    if (log().debug())
        log().debug(_config.file + ": cycle " + std::to_string(self.cycles) + ": " +
                    std::to_string(outcome.up) + " up, " + std::to_string(outcome.down) + " down, probes " +
                    std::to_string(outcome.probeSeconds) + " s, push " + (outcome.pushed ? "ok" : "failed"));
    return outcome;
}

std::shared_ptr<const std::vector<ConfigRunner::DeviceStatus>> ConfigRunner::deviceStatuses() const
{
    // Rows in config order: a job's series together, its scrapers in the order the job names them.
    std::vector<std::pair<std::size_t, std::size_t>> order; // (plan, target)
    for (std::size_t p = 0; p < _plans.size(); ++p)
        for (std::size_t t = 0; t < _plans[p]->targets.size(); ++t)
            order.emplace_back(p, t);
    std::stable_sort(order.begin(), order.end(),
                     [this](const auto& a, const auto& b) {
                         return _plans[a.first]->targets[a.second].jobIndex <
                                _plans[b.first]->targets[b.second].jobIndex;
                     });
    auto out = std::make_shared<std::vector<DeviceStatus>>();
    out->reserve(order.size());
    for (const auto& [p, t] : order)
    {
        const auto& plan = _plans[p];
        const ProbeResult& r = plan->results[t];
        const SeriesStats& stats = _metrics.stats(plan->series[t]);
        const JobConfig& job = _config.jobs[plan->targets[t].jobIndex];
        DeviceStatus d;
        d.device = job.name;
        d.address = job.address;
        d.scraper = plan->name;
        d.target = plan->targets[t].labels;
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
        if (stop.waitUntil(next.start))
            break;
    }
}

} // namespace fleetprobe
