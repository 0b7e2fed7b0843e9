#include "engine/CycleExecutor.h"

#include "metrics/MetricsBuilder.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <Poco/Runnable.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace fleetprobe
{
namespace
{

/// An RTT outside [0, timeout] is no measurement (a wall clock that jumped under a scraper, a bug): `result`
/// without it, the answer kept (up stays up). nullopt when every RTT of `result` is within.
std::optional<ProbeResult> withoutImpossibleRtts(const ProbeResult& result, double timeoutSeconds)
{
    if (!result.up || !result.rttMeasured)
        return std::nullopt;
    const auto bad = [timeoutSeconds](double rtt) { return !(rtt >= 0 && rtt <= timeoutSeconds); };
    const bool anyBad = result.rttSamples.empty()
                            ? bad(result.rttSeconds)
                            : std::any_of(result.rttSamples.begin(), result.rttSamples.end(), bad);
    if (!anyBad)
        return std::nullopt;
    ProbeResult kept = result;
    kept.rttSamples.erase(std::remove_if(kept.rttSamples.begin(), kept.rttSamples.end(), bad),
                          kept.rttSamples.end());
    if (kept.rttSamples.empty())
        kept.rttMeasured = false;
    else
    {
        double sum = 0;
        for (double rtt : kept.rttSamples)
            sum += rtt;
        kept.rttSeconds = sum / static_cast<double>(kept.rttSamples.size());
    }
    return kept;
}

} // namespace

/// Probes one plan on a pool thread. A scraper must not throw; when it does, no exception leaves the task.
struct CycleExecutor::Task : public Poco::Runnable
{
    ProbePlan* plan = nullptr;
    const StopSignal* stop = nullptr;
    bool faulted = false;
    /// The positions of the targets to probe in this cycle, in the order the scraper gets them; nullopt for
    /// every target in the plan's order.
    std::optional<std::vector<std::size_t>> order;

    void run() override
    {
        faulted = false;
        if (order && order->empty())
            return;
        try
        {
            if (!order)
                plan->results = plan->scraper->probe(plan->targets, *stop);
            else
                probeSubset();
        }
        catch (const std::exception& e)
        {
            fail(e.what());
        }
        catch (...)
        {
            fail("unknown exception");
        }
        if (plan->results.size() != plan->targets.size())
            plan->results.assign(plan->targets.size(),
                                 ProbeResult::failure(FailureReason::Error, "scraper failed"));
    }

    /// Probes the targets at `*order`, in that order; the results of the others stay as they were.
    void probeSubset()
    {
        std::vector<ProbeTarget> targets;
        targets.reserve(order->size());
        for (std::size_t i : *order)
            targets.push_back(plan->targets[i]);
        std::vector<ProbeResult> results = plan->scraper->probe(targets, *stop);
        if (results.size() != targets.size())
            throw std::logic_error("the scraper returned " + std::to_string(results.size()) +
                                   " results for " + std::to_string(targets.size()) + " targets");
        for (std::size_t k = 0; k < order->size(); ++k)
            plan->results[(*order)[k]] = std::move(results[k]);
    }

    void fail(const char* what) noexcept
    {
        faulted = true;
        try
        {
            plan->results.clear();
            log().error("scraper %s failed: %s", plan->name, std::string(what));
        }
        catch (...)
        {
        }
    }
};

std::optional<std::vector<std::size_t>> CycleExecutor::probeOrder(const ProbePlan& plan,
                                                                  const std::vector<char>& probed) const
{
    std::vector<std::size_t> down, others;
    for (std::size_t t = 0; t < plan.targets.size(); ++t)
        if (probed.at(plan.targets[t].jobIndex))
            (_metrics.stats(plan.series.at(t)).lastUp == 0 ? down : others).push_back(t);
    if (down.empty() && others.size() == plan.targets.size())
        return std::nullopt;
    down.insert(down.end(), others.begin(), others.end());
    return down;
}

CycleExecutor::CycleExecutor(const DeviceClassConfig& config, std::vector<ProbePlan> plans,
                             MetricsBuilder& metrics)
    : _config(config), _metrics(metrics), _plans(std::move(plans)), _pool(1, std::max(1, config.threads))
{
    for (auto& plan : _plans)
    {
        auto task = std::make_unique<Task>();
        task->plan = &plan;
        _tasks.push_back(std::move(task));
    }
}

CycleExecutor::~CycleExecutor()
{
    _pool.joinAll();
}

CycleMeasurement CycleExecutor::run(const StopSignal& stop, const std::vector<char>* probeJobs)
{
    CycleMeasurement measured;
    const auto start = std::chrono::steady_clock::now();
    const std::size_t jobs = _config.jobs.size();
    measured.probed.assign(jobs, 1);
    if (probeJobs)
        for (std::size_t j = 0; j < jobs && j < probeJobs->size(); ++j)
            measured.probed[j] = (*probeJobs)[j];
    measured.online.assign(jobs, 0);
    for (auto& task : _tasks)
    {
        ProbePlan& plan = *task->plan;
        if (plan.results.size() != plan.targets.size())
            plan.results.assign(plan.targets.size(),
                                ProbeResult::failure(FailureReason::Timeout, "not probed yet"));
        task->order = probeOrder(plan, measured.probed);
    }
    // Every scraper probes its whole batch at once; the last one runs on this thread.
    for (std::size_t i = 0; i < _tasks.size(); ++i)
    {
        _tasks[i]->stop = &stop;
        bool started = false;
        if (i + 1 < _tasks.size())
        {
            try
            {
                _pool.start(*_tasks[i]);
                started = true;
            }
            catch (...) // no thread free (Poco::NoThreadAvailableException) or none can be made: run it here
            {
            }
        }
        if (!started)
            _tasks[i]->run();
    }
    _pool.joinAll();
    for (const auto& task : _tasks)
        if (task->faulted)
            ++measured.scraperFaults;

    if (log().debug())
        log().debug(_config.file + ": probes done");
    measured.stamp = TrueClock::process().stamp();
    measured.timeUnix = measured.stamp.trueUnix;
    for (const auto& plan : _plans)
        for (std::size_t t = 0; t < plan.targets.size(); ++t)
        {
            const std::size_t job = plan.targets[t].jobIndex;
            if (!measured.probed.at(job))
                continue;
            const std::optional<ProbeResult> checked = withoutImpossibleRtts(
                plan.results[t], std::chrono::duration<double>(plan.targets[t].timeout).count());
            if (checked)
                ++measured.rttDiscarded;
            const ProbeResult& r = checked ? *checked : plan.results[t];
            if (r.up)
                measured.online[job] = 1;
            _metrics.record(plan.series[t], r, measured.timeUnix);
            if (!r.up && log().debug())
                log().debug(_config.file + ": " + plan.name + " " +
                            _config.jobs[plan.targets[t].jobIndex].name + ": " + failureReasonName(r.reason) +
                            (r.detail.empty() ? "" : " (" + r.detail + ")"));
            if (r.up)
                ++measured.up;
            else
                ++measured.down;
            if (r.reason == FailureReason::Permission)
                measured.permissionDenied = true;
        }
    measured.probeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return measured;
}

} // namespace fleetprobe
