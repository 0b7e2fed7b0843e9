#include "WaitCondition.h"

#include <algorithm>
#include <thread>

namespace fleetprobe::test
{

bool WaitCondition::until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                          std::chrono::milliseconds interval)
{
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    for (;;)
    {
        if (condition())
            return true;
        const auto now = Clock::now();
        if (now >= deadline)
            return false;
        std::this_thread::sleep_for(std::min<Clock::duration>(interval, deadline - now));
    }
}

} // namespace fleetprobe::test
