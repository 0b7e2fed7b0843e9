#pragma once

#include <chrono>
#include <functional>

namespace fleetprobe::test
{

/// Waits for a condition by polling it until a deadline: tests wait on conditions, never on fixed sleeps.
class WaitCondition
{
public:
    /// Calls `condition` every `interval` until it returns true (then returns true) or `timeout` has passed
    /// (then returns false). The condition is always checked at least once, and once more at the deadline.
    static bool until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds interval = std::chrono::milliseconds(25));
};

} // namespace fleetprobe::test
