#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fleetprobe
{

/// A stop request shared by the loops of a process. Thread-safe.
class StopSignal
{
public:
    /// Asks every waiter to stop; wakes them at once.
    void request();
    /// True once stop was requested.
    bool requested() const;
    /// Waits until `deadline` or a stop request; returns true when stop was requested.
    bool waitUntil(std::chrono::steady_clock::time_point deadline) const;
    /// When stop was requested (the epoch of steady_clock when it was not).
    std::chrono::steady_clock::time_point requestedAt() const;

private:
    mutable std::mutex _mutex;
    mutable std::condition_variable _cv;
    bool _stop = false;
    std::chrono::steady_clock::time_point _at{};
};

} // namespace fleetprobe
