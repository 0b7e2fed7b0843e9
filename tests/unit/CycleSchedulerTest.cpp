// The loop's schedule on an injected clock: the time points a loop would see are handed in, nothing sleeps.

#include "engine/CycleScheduler.h"

#include <boost/test/unit_test.hpp>

#include <vector>

using namespace fleetprobe;
using namespace std::chrono;

namespace
{

using Clock = CycleScheduler::Clock;

/// Drives a CycleScheduler the way ConfigRunner::runLoop does, on a fake clock: each cycle lasts
/// `cycleLength`; the process is frozen (SIGSTOP) from `stopAt` for `stopFor`. Returns the cycle starts.
struct Simulation
{
    Clock::time_point t0{};
    Clock::duration interval = seconds(2);
    Clock::duration cycleLength = milliseconds(100);
    Clock::time_point stopAt = Clock::time_point::max();
    Clock::duration stopFor{0};
    std::uint64_t missedEvents = 0;
    std::uint64_t skippedTicks = 0;

    /// The clock after waiting until `until`: a freeze that begins before the wake-up delays it.
    Clock::time_point waitUntil(Clock::time_point now, Clock::time_point until)
    {
        if (stopAt >= now && stopAt < until)
        {
            const auto resumed = stopAt + stopFor;
            stopAt = Clock::time_point::max();
            return std::max(until, resumed);
        }
        return std::max(now, until);
    }

    /// The clock after a cycle that began at `now`: a freeze during it makes it end later.
    Clock::time_point runCycle(Clock::time_point now)
    {
        auto end = now + cycleLength;
        if (stopAt >= now && stopAt < end)
        {
            end += stopFor;
            stopAt = Clock::time_point::max();
        }
        return end;
    }

    std::vector<Clock::time_point> run(Clock::time_point end)
    {
        std::vector<Clock::time_point> starts;
        CycleScheduler s(t0, interval);
        Clock::time_point now = t0;
        while (now < end)
        {
            const auto woke = s.wake(now);
            if (woke.overrun)
            {
                ++missedEvents;
                skippedTicks += woke.skipped;
                now = waitUntil(now, woke.start);
                continue;
            }
            starts.push_back(now);
            now = runCycle(now);
            const auto next = s.advance(now);
            if (next.overrun)
            {
                ++missedEvents;
                skippedTicks += next.skipped;
            }
            now = waitUntil(now, next.start);
        }
        return starts;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(CycleSchedulerTests)

BOOST_AUTO_TEST_CASE(a_late_wake_up_skips_the_missed_ticks_instead_of_running_them_late)
{
    const Clock::time_point t0{};
    CycleScheduler s(t0, seconds(2));
    BOOST_TEST(!s.wake(t0).overrun);
    auto n = s.advance(t0 + milliseconds(100));
    BOOST_TEST((n.start == t0 + seconds(2)));
    // Frozen from 0.5 s to 5.5 s: the wake-up for the tick of 2 s comes 3.5 s late.
    n = s.wake(t0 + milliseconds(5500));
    BOOST_TEST(n.overrun);
    BOOST_TEST(n.skipped == 2u); // the ticks of 2 s and 4 s
    BOOST_TEST((n.start == t0 + seconds(6)));
    BOOST_TEST(s.tick() == 3u);
    // Woken on time for 6 s (a little timer slack is not lateness).
    n = s.wake(t0 + milliseconds(6020));
    BOOST_TEST(!n.overrun);
    BOOST_TEST((n.start == t0 + seconds(6)));
}

BOOST_AUTO_TEST_CASE(lateness_tolerance_is_a_quarter_interval_at_most_one_second)
{
    const Clock::time_point t0{};
    BOOST_TEST((CycleScheduler(t0, seconds(2)).lateTolerance() == milliseconds(500)));
    BOOST_TEST((CycleScheduler(t0, seconds(60)).lateTolerance() == seconds(1)));
    CycleScheduler s(t0, seconds(2));
    BOOST_TEST(!s.wake(t0 + milliseconds(500)).overrun);
    BOOST_TEST(s.wake(t0 + milliseconds(501)).overrun);
}

BOOST_AUTO_TEST_CASE(sigstop_longer_than_the_interval_never_gives_cycles_back_to_back)
{
    // Defect 6 of issue 12: after SIGSTOP for ~5 s with a 2 s interval two cycles ran 0.5 s apart.
    for (const auto stopAt : {milliseconds(500), milliseconds(1950), milliseconds(2050), milliseconds(3999)})
        for (const auto stopFor :
             {milliseconds(2100), milliseconds(5000), milliseconds(5900), milliseconds(31000)})
        {
            Simulation sim;
            sim.stopAt = sim.t0 + stopAt;
            sim.stopFor = stopFor;
            const auto starts = sim.run(sim.t0 + seconds(60));
            BOOST_TEST_CONTEXT("stopped at " << stopAt.count() << " ms for " << stopFor.count() << " ms")
            {
                BOOST_TEST_REQUIRE(starts.size() > 5u);
                for (std::size_t i = 1; i < starts.size(); ++i)
                {
                    const auto gap = starts[i] - starts[i - 1];
                    BOOST_TEST(duration_cast<milliseconds>(gap).count() >= 1000,
                               "cycles " << i - 1 << " and " << i);
                    // Every cycle starts on the original grid, within the lateness tolerance.
                    const auto offset = (starts[i] - sim.t0) % sim.interval;
                    BOOST_TEST(duration_cast<milliseconds>(offset).count() <= 500);
                }
                BOOST_TEST(sim.missedEvents == 1u);
                BOOST_TEST(sim.skippedTicks >= 1u);
            }
        }
}

BOOST_AUTO_TEST_CASE(an_overrun_still_skips_to_the_first_tick_after_its_end)
{
    const Clock::time_point t0{};
    CycleScheduler s(t0, seconds(10));
    auto n = s.advance(t0 + milliseconds(45000)); // cycle 0 ran until 45 s: ticks 10 to 40 missed
    BOOST_TEST(n.overrun);
    BOOST_TEST(n.skipped == 4u);
    BOOST_TEST((n.start == t0 + seconds(50)));
    BOOST_TEST(!s.wake(t0 + seconds(50)).overrun);
}

BOOST_AUTO_TEST_SUITE_END()
