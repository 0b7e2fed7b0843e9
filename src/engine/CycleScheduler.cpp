#include "engine/CycleScheduler.h"

namespace fleetprobe
{

CycleScheduler::Next CycleScheduler::advance(Clock::time_point now)
{
    Next next;
    const std::uint64_t following = _tick + 1;
    const auto followingStart = _start + _interval * static_cast<long long>(following);
    if (now <= followingStart)
    {
        _tick = following;
    }
    else
    {
        next.overrun = true;
        // The first tick strictly after now.
        const auto elapsed = now - _start;
        const std::uint64_t target = static_cast<std::uint64_t>(elapsed / _interval) + 1;
        next.skipped = target - following;
        _tick = target;
    }
    next.start = tickStart();
    return next;
}

} // namespace fleetprobe
