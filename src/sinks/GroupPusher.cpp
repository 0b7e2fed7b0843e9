#include "sinks/GroupPusher.h"

#include "engine/StopSignal.h"
#include "metrics/MetricsBuilder.h"
#include "util/Clock.h"
#include "util/Log.h"
#include "util/TrueClock.h"

#include <algorithm>

namespace fleetprobe
{

GroupPusher::GroupPusher(std::unique_ptr<PushTransport> transport, RetryPolicy policy)
    : _transport(std::move(transport)), _policy(policy)
{
}

GroupPusher::~GroupPusher()
{
    if (!_worker.joinable())
        return;
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _quit = true;
    }
    _cv.notify_all();
    _worker.join();
}

void GroupPusher::pushInBackground(std::chrono::milliseconds pushTimeout)
{
    if (_worker.joinable())
        return;
    _pushTimeout = pushTimeout;
    _worker = std::thread([this] { work(); });
}

bool GroupPusher::pushNow(const std::string& origin, const std::string& path, const Body& body,
                          std::chrono::steady_clock::time_point deadline, const StopSignal& stop,
                          Tally& tally)
{
    using namespace std::chrono;
    const auto stopDeadline = [&stop, grace = _policy.stopGrace]
    { return stop.requested() ? stop.requestedAt() + grace : steady_clock::time_point::max(); };
    const AbortCheck abort = [this, &stopDeadline] { return _quit || steady_clock::now() > stopDeadline(); };
    auto delay = _policy.retryDelay;
    PushOutcome outcome;
    for (int attempt = 1;; ++attempt)
    {
        const auto limit = std::min(deadline, stopDeadline());
        const auto left = duration_cast<milliseconds>(limit - steady_clock::now());
        if (left.count() <= 0 || _quit)
        {
            if (attempt == 1)
                outcome.message = "no time left in the cycle's push budget";
            break;
        }
        outcome = _transport->put(path, body, left, abort);
        TrueClock::process().observeDate(outcome.serverDateUnix);
        tally.bytes += outcome.bytesSent;
        if (outcome.ok())
        {
            ++tally.outcomes[static_cast<std::size_t>(PushOutcome::Result::Ok)];
            tally.lastSuccessUnix = unixNow();
            return true;
        }
        if (outcome.result == PushOutcome::Result::Http4xx || outcome.local)
            break; // the body is refused or cannot be made: sending it again cannot help
        log().warning(origin + ": push to " + path + " failed (attempt " + std::to_string(attempt) + ", " +
                      outcome.resultName() + "): " + outcome.message);
        // Wait before the next attempt, but not past the budget; no new attempt after a stop request (nor
        // once the pusher is being destroyed: the wait is cut into short slices to see that).
        const auto wake = steady_clock::now() + delay;
        if (wake >= deadline)
            break;
        bool stopped = false;
        while (!stopped && !_quit && steady_clock::now() < wake)
            stopped = stop.waitUntil(std::min(wake, steady_clock::now() + milliseconds(100)));
        if (stopped || _quit)
            break;
        delay = std::min(delay * 2, _policy.retryDelayMax);
    }
    ++tally.outcomes[static_cast<std::size_t>(outcome.result)];
    ++tally.failures;
    const std::string text = origin + ": push to " + path + " failed (" + outcome.resultName() +
                             "): " + outcome.message + "; the counters are kept and go with the next push";
    if (outcome.local)
        log().error(text);
    else
        log().warning(text);
    return false;
}

bool GroupPusher::fold(SelfStats& self)
{
    const bool any = _tally.any;
    for (std::size_t i = 0; i < _tally.outcomes.size(); ++i)
        self.pushOutcomes[i] += _tally.outcomes[i];
    self.pushFailures += _tally.failures;
    self.pushBytes += _tally.bytes;
    self.lastPushSuccessUnix = std::max(self.lastPushSuccessUnix, _tally.lastSuccessUnix);
    _tally = Tally{};
    return any;
}

bool GroupPusher::push(const std::string& origin, const std::string& path, const Body& body,
                       std::chrono::steady_clock::time_point deadline, const StopSignal& stop,
                       SelfStats& self)
{
    if (!_worker.joinable())
    {
        std::lock_guard<std::mutex> lock(_mutex);
        const bool ok = pushNow(origin, path, body, deadline, stop, _tally);
        fold(self);
        return ok;
    }
    bool lastOk = true;
    {
        std::lock_guard<std::mutex> lock(_mutex);
        fold(self);
        auto waiting =
            std::find_if(_queue.begin(), _queue.end(), [&path](const Job& j) { return j.path == path; });
        if (waiting != _queue.end())
        {
            waiting->body = body; // the newer cycle replaces the one that has not been sent yet
            waiting->stop = &stop;
            log().information(origin + ": push to " + path +
                              " still waits for the one before it; it will send this newer cycle");
        }
        else
            _queue.push_back(Job{origin, path, body, &stop});
        const auto last = _lastOk.find(path);
        if (last != _lastOk.end())
            lastOk = last->second;
    }
    _cv.notify_all();
    return lastOk;
}

void GroupPusher::work()
{
    std::unique_lock<std::mutex> lock(_mutex);
    for (;;)
    {
        _cv.wait(lock, [this] { return _quit || !_queue.empty(); });
        if (_quit)
            break;
        Job job = std::move(_queue.front());
        _queue.pop_front();
        _busy = true;
        lock.unlock();
        Tally tally;
        bool ok = false;
        try
        {
            ok = pushNow(job.origin, job.path, job.body, std::chrono::steady_clock::now() + _pushTimeout,
                         *job.stop, tally);
        }
        catch (const std::exception& e)
        {
            log().error(job.origin + ": push to " + job.path + " failed: " + e.what());
            ++tally.outcomes[static_cast<std::size_t>(PushOutcome::Result::Transport)];
            ++tally.failures;
        }
        lock.lock();
        for (std::size_t i = 0; i < tally.outcomes.size(); ++i)
            _tally.outcomes[i] += tally.outcomes[i];
        _tally.failures += tally.failures;
        _tally.bytes += tally.bytes;
        _tally.lastSuccessUnix = std::max(_tally.lastSuccessUnix, tally.lastSuccessUnix);
        _tally.any = true;
        _lastOk[job.path] = ok;
        _busy = false;
        _cv.notify_all();
    }
}

bool GroupPusher::collect(SelfStats& self)
{
    std::lock_guard<std::mutex> lock(_mutex);
    return fold(self);
}

void GroupPusher::drain(SelfStats& self)
{
    std::unique_lock<std::mutex> lock(_mutex);
    if (_worker.joinable())
        _cv.wait(lock, [this] { return _quit || (_queue.empty() && !_busy); });
    fold(self);
}

} // namespace fleetprobe
