#pragma once

#include <chrono>
#include <cstdint>

namespace fleetprobe
{

/// Drift-free schedule of a config's cycles: cycle k starts at start + k * interval. A cycle that ends after
/// the next tick is an overrun; the ticks it missed are skipped, never piled up. Plain value; not
/// synchronized.
class CycleScheduler
{
public:
    using Clock = std::chrono::steady_clock;

    CycleScheduler(Clock::time_point start, Clock::duration interval) : _start(start), _interval(interval) {}

    /// What to do after a cycle that started at tick `tick()` and ended at `now`.
    struct Next
    {
        Clock::time_point start;   ///< when the next cycle starts
        bool overrun = false;      ///< the cycle ran past the next tick
        std::uint64_t skipped = 0; ///< ticks skipped because of the overrun
    };

    /// Advances to the next tick at or after `now` and tells whether the finished cycle overran.
    Next advance(Clock::time_point now);

    /// The index of the current tick (0 for the first cycle).
    std::uint64_t tick() const { return _tick; }

    /// The start time of the current tick.
    Clock::time_point tickStart() const { return _start + _interval * static_cast<long long>(_tick); }

private:
    Clock::time_point _start;
    Clock::duration _interval;
    std::uint64_t _tick = 0;
};

} // namespace fleetprobe
