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

bool GroupPusher::push(const std::string& origin, const std::string& path, const Body& body,
                       std::chrono::steady_clock::time_point deadline, const StopSignal& stop,
                       SelfStats& self)
{
    using namespace std::chrono;
    const auto stopDeadline = [&stop, grace = _policy.stopGrace]
    { return stop.requested() ? stop.requestedAt() + grace : steady_clock::time_point::max(); };
    const AbortCheck abort = [&stopDeadline] { return steady_clock::now() > stopDeadline(); };
    auto delay = _policy.retryDelay;
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
        outcome = _transport->put(path, body, left, abort);
        TrueClock::process().observeDate(outcome.serverDateUnix);
        if (outcome.ok())
        {
            ++self.pushOutcomes[static_cast<std::size_t>(PushOutcome::Result::Ok)];
            self.lastPushSuccessUnix = unixNow();
            return true;
        }
        if (outcome.result == PushOutcome::Result::Http4xx || outcome.local)
            break; // the body is refused or cannot be made: sending it again cannot help
        log().warning(origin + ": push to " + path + " failed (attempt " + std::to_string(attempt) + ", " +
                      outcome.resultName() + "): " + outcome.message);
        // Wait before the next attempt, but not past the budget; no new attempt after a stop request.
        const auto wake = steady_clock::now() + delay;
        if (wake >= deadline)
            break;
        if (stop.waitUntil(wake))
            break;
        delay = std::min(delay * 2, _policy.retryDelayMax);
    }
    ++self.pushOutcomes[static_cast<std::size_t>(outcome.result)];
    ++self.pushFailures;
    const std::string text = origin + ": push to " + path + " failed (" + outcome.resultName() +
                             "): " + outcome.message + "; the counters are kept and go with the next push";
    if (outcome.local)
        log().error(text);
    else
        log().warning(text);
    return false;
}

} // namespace fleetprobe
