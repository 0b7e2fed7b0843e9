#pragma once

#include "engine/StopSignal.h"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace fleetprobe
{

/// The process-wide number of sockets scrapers may hold at once, so that a large config (or several) never
/// runs into EMFILE: sized from the open-file limit minus a reserve for pushes, state files and logs.
/// Scrapers take sockets before opening them and give them back after closing. Thread-safe.
class SocketBudget
{
public:
    /// The process's budget, sized from RLIMIT_NOFILE when first used (call after raising the limit).
    static SocketBudget& instance();

    /// A budget of `capacity` sockets (for tests).
    explicit SocketBudget(std::size_t capacity) : _capacity(capacity), _free(capacity) {}

    /// Takes `n` sockets at once when free; never waits.
    bool tryAcquire(std::size_t n);

    /// Takes `n` sockets at once, waiting until they are free or `deadline` passes (then returns false).
    /// `n` larger than the capacity can never succeed: use capacity() to size requests.
    bool acquire(std::size_t n, std::chrono::steady_clock::time_point deadline);

    /// The same, also ending (false) within about 100 ms of a request of `stop`.
    bool acquire(std::size_t n, std::chrono::steady_clock::time_point deadline, const StopSignal& stop);

    /// Gives back `n` sockets.
    void release(std::size_t n);

    /// The total number of sockets of the budget.
    std::size_t capacity() const { return _capacity; }

    /// File descriptors kept out of the budget for everything else.
    static constexpr std::size_t reserve = 128;

private:
    std::mutex _mutex;
    std::condition_variable _cv;
    std::size_t _capacity;
    std::size_t _free;
};

} // namespace fleetprobe
