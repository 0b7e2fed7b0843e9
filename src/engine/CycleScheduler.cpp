#include "engine/CycleScheduler.h"

#include <algorithm>

namespace fleetprobe
{

std::uint64_t CycleScheduler::skipPast(Clock::time_point now)
{
    const std::uint64_t from = _tick;
    const std::uint64_t target =
        now < _start ? 0 : static_cast<std::uint64_t>((now - _start) / _interval) + 1;
    _tick = std::max(target, from + 1);
    return _tick - from - 1;
}

CycleScheduler::Next CycleScheduler::advance(Clock::time_point now)
{
    Next next;
    const auto followingStart = _start + _interval * static_cast<long long>(_tick + 1);
    if (now <= followingStart)
        ++_tick;
    else
    {
        next.overrun = true;
        next.skipped = skipPast(now);
    }
    next.start = tickStart();
    return next;
}

CycleScheduler::Clock::duration CycleScheduler::lateTolerance() const
{
    return std::min<Clock::duration>(_interval / 4, std::chrono::seconds(1));
}

CycleScheduler::Next CycleScheduler::wake(Clock::time_point now)
{
    Next next;
    if (now > tickStart() + lateTolerance())
    {
        next.overrun = true;
        next.skipped = skipPast(now) + 1; // the tick woken for is skipped too
    }
    next.start = tickStart();
    return next;
}

} // namespace fleetprobe
