#include "net/PollSet.h"

#include "engine/Scraper.h"

#include <algorithm>
#include <cerrno>

namespace fleetprobe
{

using Clock = std::chrono::steady_clock;

ProbeResult probeStopped()
{
    return ProbeResult::failure(FailureReason::Timeout, "the probe was stopped");
}

int waitSliceMs(Clock::time_point until, Clock::time_point now)
{
    if (until <= now)
        return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now);
    return static_cast<int>(std::min(ms, stopCheckInterval).count());
}

void PollSet::clear()
{
    _fds.clear();
}

void PollSet::add(int fd, short events, Clock::time_point deadline)
{
    if (_fds.empty() || deadline < _nearest)
        _nearest = deadline;
    _fds.push_back(pollfd{fd, events, 0});
}

bool PollSet::wait(const StopSignal& stop)
{
    for (auto& p : _fds)
        p.revents = 0;
    for (;;)
    {
        const auto now = Clock::now();
        const int n = ::poll(_fds.data(), _fds.size(), waitSliceMs(_fds.empty() ? now : _nearest, now));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
        if (stop.requested() || _fds.empty() || Clock::now() >= _nearest)
            return true;
    }
}

} // namespace fleetprobe
