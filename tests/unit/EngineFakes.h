#pragma once

// Fakes of the unit tests of the engine and the sinks: scrapers that answer without any network (registered
// in a test ScraperRegistry), configs made in code, sinks that record what they get, and a temporary
// directory.

#include "config/Config.h"
#include "engine/ScraperRegistry.h"
#include "metrics/MetricsBuilder.h"
#include "sinks/ExpositionBody.h"
#include "sinks/Sink.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// A scraper of the tests, answered by a function of the targets.
class FakeScraper : public Scraper
{
public:
    using Answer = std::function<std::vector<ProbeResult>(const std::vector<ProbeTarget>&)>;

    explicit FakeScraper(Answer answer) : _answer(std::move(answer)) {}

    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal&) override
    {
        return _answer(targets);
    }

private:
    Answer _answer;
};

/// Every target answers the same result.
inline FakeScraper::Answer answerAll(const ProbeResult& result)
{
    return [result](const std::vector<ProbeTarget>& targets)
    { return std::vector<ProbeResult>(targets.size(), result); };
}

/// Registers a fake scraper `name` with one target per job (its host) whose probes `answer` (a new answer
/// function per instance).
inline void addFake(ScraperRegistry& registry, const std::string& name,
                    const std::function<FakeScraper::Answer()>& answer)
{
    ScraperDescriptor d;
    d.name = name;
    d.create = [answer] { return std::make_unique<FakeScraper>(answer()); };
    d.targets = [](std::size_t jobIndex, const JobConfig& job, const std::shared_ptr<const ScraperSettings>&,
                   std::chrono::milliseconds defaultTimeout)
    { return std::vector<ProbeTarget>{ProbeTarget::forJob(jobIndex, job.host, defaultTimeout)}; };
    registry.add(std::move(d));
}

/// A registry of fake scrapers:
/// - `up`: up, 2 ms; `down`: timeout; `denied`: reason permission;
/// - `throws`: probe() throws (a scraper's bug; its targets become reason error);
/// - `unknown`: up with a measurement no registered scraper declares (MetricsBuilder::record throws).
inline ScraperRegistry fakeRegistry()
{
    ScraperRegistry registry;
    addFake(registry, "up", [] { return answerAll(ProbeResult::success(0.002)); });
    addFake(registry, "down",
            [] { return answerAll(ProbeResult::failure(FailureReason::Timeout, "no answer")); });
    addFake(registry, "denied",
            [] { return answerAll(ProbeResult::failure(FailureReason::Permission, "no raw socket")); });
    addFake(registry, "throws",
            []
            {
                return FakeScraper::Answer([](const std::vector<ProbeTarget>&) -> std::vector<ProbeResult>
                                           { throw std::runtime_error("scraper bug"); });
            });
    addFake(registry, "unknown",
            []
            {
                ProbeResult r = ProbeResult::success(0.001);
                r.measurements.push_back({"no_such_measurement", {}, 1});
                return answerAll(r);
            });
    return registry;
}

/// A config made in code: job i is `device-i` at 192.0.2.(i+1) with the scrapers `metrics[i]`.
inline DeviceClassConfig configOf(const std::string& promId,
                                  const std::vector<std::vector<std::string>>& metrics,
                                  double intervalSeconds = 60)
{
    DeviceClassConfig config;
    config.file = promId + ".json";
    config.promId = promId;
    config.intervalSeconds = intervalSeconds;
    config.timeoutSeconds = 1;
    config.rttBuckets = defaultRttBuckets();
    for (std::size_t i = 0; i < metrics.size(); ++i)
    {
        JobConfig job;
        job.name = "device-" + std::to_string(i);
        job.address = job.host = "192.0.2." + std::to_string(i + 1);
        job.metrics = metrics[i];
        config.jobs.push_back(job);
    }
    return config;
}

/// What a FakeSink got, readable from the test thread while a runner's thread delivers. Thread-safe.
class SinkRecord
{
public:
    /// Appends an event ("deliver a", "catchUp a delivered", ...).
    void add(std::string event)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _events.push_back(std::move(event));
        _changed.notify_all();
    }

    std::vector<std::string> events() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _events;
    }

    /// How many events equal `event`.
    std::size_t count(const std::string& event) const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        std::size_t n = 0;
        for (const auto& e : _events)
            n += e == event;
        return n;
    }

    /// Waits until `count(event) >= n` or `timeout`; returns whether it happened.
    bool waitFor(const std::string& event, std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock<std::mutex> lock(_mutex);
        return _changed.wait_for(lock, timeout,
                                 [&]
                                 {
                                     std::size_t k = 0;
                                     for (const auto& e : _events)
                                         k += e == event;
                                     return k >= n;
                                 });
    }

private:
    mutable std::mutex _mutex;
    mutable std::condition_variable _changed;
    std::vector<std::string> _events;
};

/// A sink of the tests: records every call in a SinkRecord, keeps the last body and cycle it got, answers
/// `delivered`, or throws when `throws`. Counts its deliveries as Pushgateway pushes in SelfStats, as a real
/// push sink does.
class FakeSink : public Sink
{
public:
    FakeSink(std::string name, SinkRecord& record, bool delivered = true, bool throws = false)
        : _name(std::move(name)), _record(record), _delivered(delivered), _throws(throws)
    {
    }

    void prepare(SelfStats&) override { _record.add("prepare " + _name); }

    bool deliver(const FinishedCycle& cycle) override
    {
        if (onDeliver)
            onDeliver(cycle);
        lastBody = expositionBody(cycle.families).joined();
        lastTimeUnix = cycle.timeUnix;
        lastBudget = cycle.budget;
        lastGroup = cycle.group;
        _record.add("deliver " + _name);
        if (_throws)
            throw std::runtime_error("sink bug");
        ++cycle.self.pushOutcomes[0];
        return _delivered;
    }

    bool catchUp(const FinishedCycle&, bool delivered) override
    {
        _record.add("catchUp " + _name + (delivered ? " delivered" : " not delivered"));
        return true;
    }

    std::function<void(const FinishedCycle&)> onDeliver; ///< called first in deliver()
    std::string lastBody;
    double lastTimeUnix = 0;
    std::chrono::milliseconds lastBudget{0};
    CycleGroup lastGroup;

private:
    std::string _name;
    SinkRecord& _record;
    bool _delivered;
    bool _throws;
};

/// A fresh directory under /tmp, removed with everything in it afterwards.
class ScratchDir
{
public:
    ScratchDir()
    {
        char pattern[] = "/tmp/fleetprobe-unit-XXXXXX";
        if (!::mkdtemp(pattern))
            throw std::runtime_error("mkdtemp failed");
        _path = pattern;
    }
    ~ScratchDir() { std::filesystem::remove_all(_path); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::string& path() const { return _path; }

private:
    std::string _path;
};

/// True when `text` has the line `line`.
inline bool hasLine(const std::string& text, const std::string& line)
{
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line)
            return true;
    return false;
}

} // namespace fleetprobe::test
