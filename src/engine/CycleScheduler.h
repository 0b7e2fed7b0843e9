#pragma once

#include <chrono>
#include <cstdint>

namespace fleetprobe
{

/// Drift-free schedule of a config's cycles: cycle k starts at start + k * interval, on that grid only.
/// A tick is missed when the cycle before it ends after it (an overrun, advance()) or when the loop wakes up
/// for it more than lateTolerance() late (the process was stopped with SIGSTOP, the host was frozen or
/// overloaded; wake()). A missed tick is skipped, never run late or back to back: the next cycle starts at
/// the first tick after the moment the lateness was noticed. Plain value; not synchronized.
class CycleScheduler
{
public:
    using Clock = std::chrono::steady_clock;

    /// A schedule whose tick 0 is `start`; `interval` must be positive.
    CycleScheduler(Clock::time_point start, Clock::duration interval) : _start(start), _interval(interval) {}

    /// When the next cycle starts and which ticks were skipped to get there.
    struct Next
    {
        Clock::time_point start;   ///< when the next cycle starts (a tick of the grid)
        bool overrun = false;      ///< ticks were missed (the cycle overran, or the loop woke up late)
        std::uint64_t skipped = 0; ///< ticks skipped
    };

    /// After a cycle that started at tick `tick()` and ended at `now`: advances to the next tick, or when
    /// the cycle ended after it (an overrun) to the first tick after `now`.
    Next advance(Clock::time_point now);

    /// When the loop wakes up at `now` to run the cycle of tick `tick()`: on time (at most lateTolerance()
    /// after the tick) it keeps the tick and `start` is the tick; later, the tick and every other one already
    /// past are skipped, the schedule moves to the first tick after `now`, and the loop must wait again.
    Next wake(Clock::time_point now);

    /// How late a wake-up may be and still run its cycle: a quarter of the interval, at most 1 s.
    Clock::duration lateTolerance() const;

    /// The index of the current tick (0 for the first cycle).
    std::uint64_t tick() const { return _tick; }

    /// The start time of the current tick.
    Clock::time_point tickStart() const { return _start + _interval * static_cast<long long>(_tick); }

private:
    /// Moves to the first tick strictly after `now` (never backwards); returns the ticks skipped.
    std::uint64_t skipPast(Clock::time_point now);

    Clock::time_point _start;
    Clock::duration _interval;
    std::uint64_t _tick = 0;
};

} // namespace fleetprobe
